// A hostile C program for the host's tests, built like the C tool (clang +
// wasi-libc, then `wasm-tools component new` with the preview1 *command*
// adapter): shows that C code is confined exactly like Rust code.
//
//   c-probe read PATH    print the file, or "denied: <error>" and exit 1
//   c-probe write PATH   create/overwrite PATH, or "denied: ..." and exit 1
//   c-probe env          print every environment variable
//   c-probe spin         loop forever
//   c-probe grow         allocate until something stops it

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern char **environ;

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: c-probe read|write PATH | env | spin | grow\n");
        return 2;
    }
    const char *op = argv[1];
    if ((strcmp(op, "read") == 0 || strcmp(op, "write") == 0) && argc == 3) {
        FILE *f = fopen(argv[2], op[0] == 'r' ? "r" : "w");
        if (!f) {
            printf("denied: %s\n", strerror(errno));
            return 1;
        }
        if (op[0] == 'w') {
            fputs("written by c-probe\n", f);
            fclose(f);
            printf("ok: written\n");
            return 0;
        }
        char buf[4096];
        size_t n;
        printf("ok: ");
        while ((n = fread(buf, 1, sizeof buf, f)) > 0) fwrite(buf, 1, n, stdout);
        fclose(f);
        return 0;
    }
    if (strcmp(op, "env") == 0) {
        for (char **e = environ; e && *e; e++) printf("%s\n", *e);
        return 0;
    }
    if (strcmp(op, "spin") == 0) {
        volatile unsigned long n = 0;
        for (;;) n++;
    }
    if (strcmp(op, "grow") == 0) {
        // Chained, so the compiler cannot drop the allocations.
        static char *volatile head = NULL;
        for (;;) {
            char *p = malloc(1 << 20);
            if (!p) {
                printf("malloc failed\n");
                return 1;
            }
            memset(p, 1, 1 << 20);
            *(char **)p = head;
            head = p;
        }
    }
    fprintf(stderr, "unknown operation %s\n", op);
    return 2;
}
