// `text-stats` in C (Debian clang + wasi-libc, `wit-bindgen c`, `wasm-tools
// component new` with the preview1 reactor adapter): the same tool as the
// Rust, Python and JavaScript versions, answer for answer. See
// plugins/rust/text-stats for the rules.
//
// The input is a JSON object; the small parser below reads the two fields
// the tool takes (`text`, `top`) and skips everything else.

#include "tool.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char SCHEMA[] =
    "{\"type\":\"object\",\"properties\":{\"text\":{\"type\":\"string\"},"
    "\"top\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":50}},\"required\":[\"text\"]}";

static void set_string(tool_string_t *s, const char *text) {
    tool_string_dup(s, text);
}

void exports_toka_plugin_handler_describe(exports_toka_plugin_handler_tool_info_t *ret) {
    set_string(&ret->name, "text-stats-c");
    set_string(&ret->version, "0.1.0");
    set_string(&ret->description,
               "Counts bytes, characters, lines and words of a text and lists its most frequent words.");
    set_string(&ret->input_schema, SCHEMA);
}

// ---- a minimal JSON reader -------------------------------------------------

typedef struct {
    const char *p, *end;
} reader_t;

static void skip_ws(reader_t *r) {
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r')) r->p++;
}

static int hex4(const char *p) {
    int v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= c - '0';
        else if (c >= 'a' && c <= 'f') v |= c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') v |= c - 'A' + 10;
        else return -1;
    }
    return v;
}

static size_t put_utf8(char *out, uint32_t cp) {
    if (cp < 0x80) { out[0] = (char)cp; return 1; }
    if (cp < 0x800) { out[0] = (char)(0xC0 | (cp >> 6)); out[1] = (char)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12)); out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F)); return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18)); out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); out[3] = (char)(0x80 | (cp & 0x3F)); return 4;
}

// Reads a JSON string at r->p (which points at '"'). With `out`, stores the
// decoded UTF-8 (malloc'd) and its length. Returns false on bad JSON.
static bool read_string(reader_t *r, char **out, size_t *out_len) {
    if (r->p >= r->end || *r->p != '"') return false;
    r->p++;
    // Decoded text is never longer than the escaped source.
    char *buf = out ? malloc((size_t)(r->end - r->p) + 1) : NULL;
    size_t n = 0;
    while (r->p < r->end && *r->p != '"') {
        char c = *r->p++;
        if (c != '\\') {
            if (buf) buf[n++] = c;
            continue;
        }
        if (r->p >= r->end) break;
        char e = *r->p++;
        uint32_t cp;
        switch (e) {
        case '"': cp = '"'; break;
        case '\\': cp = '\\'; break;
        case '/': cp = '/'; break;
        case 'b': cp = '\b'; break;
        case 'f': cp = '\f'; break;
        case 'n': cp = '\n'; break;
        case 'r': cp = '\r'; break;
        case 't': cp = '\t'; break;
        case 'u': {
            if (r->end - r->p < 4 || hex4(r->p) < 0) { free(buf); return false; }
            cp = (uint32_t)hex4(r->p);
            r->p += 4;
            if (cp >= 0xD800 && cp <= 0xDBFF && r->end - r->p >= 6 && r->p[0] == '\\' && r->p[1] == 'u') {
                int lo = hex4(r->p + 2);
                if (lo >= 0xDC00 && lo <= 0xDFFF) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + ((uint32_t)lo - 0xDC00);
                    r->p += 6;
                }
            }
            break;
        }
        default: free(buf); return false;
        }
        if (buf) n += put_utf8(buf + n, cp);
    }
    if (r->p >= r->end) { free(buf); return false; }
    r->p++; // closing quote
    if (out) { buf[n] = 0; *out = buf; *out_len = n; }
    return true;
}

// Skips any JSON value.
static bool skip_value(reader_t *r, int depth) {
    skip_ws(r);
    if (r->p >= r->end || depth > 64) return false;
    char c = *r->p;
    if (c == '"') return read_string(r, NULL, NULL);
    if (c == '{' || c == '[') {
        char close = c == '{' ? '}' : ']';
        r->p++;
        skip_ws(r);
        if (r->p < r->end && *r->p == close) { r->p++; return true; }
        for (;;) {
            if (c == '{') {
                skip_ws(r);
                if (!read_string(r, NULL, NULL)) return false;
                skip_ws(r);
                if (r->p >= r->end || *r->p++ != ':') return false;
            }
            if (!skip_value(r, depth + 1)) return false;
            skip_ws(r);
            if (r->p >= r->end) return false;
            if (*r->p == ',') { r->p++; continue; }
            if (*r->p == close) { r->p++; return true; }
            return false;
        }
    }
    // number, true, false, null
    const char *start = r->p;
    while (r->p < r->end && strchr(",}] \t\r\n", *r->p) == NULL) r->p++;
    return r->p > start;
}

// ---- the tool ----------------------------------------------------------------

typedef struct {
    const char *word;
    size_t len;
    uint64_t count;
} entry_t;

static int by_word(const void *a, const void *b) {
    const entry_t *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->word, y->word, n);
    if (c) return c;
    return (x->len > y->len) - (x->len < y->len);
}

static int by_count_then_word(const void *a, const void *b) {
    const entry_t *x = a, *y = b;
    if (x->count != y->count) return x->count < y->count ? 1 : -1;
    return by_word(a, b);
}

static bool is_word_byte(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static bool fail(exports_toka_plugin_handler_tool_error_t *err, const char *message) {
    err->tag = TOKA_PLUGIN_TYPES_TOOL_ERROR_INVALID_INPUT;
    set_string(&err->val.invalid_input, message);
    return false;
}

bool exports_toka_plugin_handler_invoke(tool_string_t *input, tool_string_t *ret,
                                        exports_toka_plugin_handler_tool_error_t *err) {
    reader_t r = {(const char *)input->ptr, (const char *)input->ptr + input->len};
    char *text = NULL;
    size_t text_len = 0;
    long long top = 5;
    bool ok = true, have_text = false, bad_top = false;

    skip_ws(&r);
    if (r.p >= r.end || *r.p != '{') ok = false;
    else {
        r.p++;
        skip_ws(&r);
        if (r.p < r.end && *r.p == '}') r.p++;
        else for (;;) {
            char *key = NULL;
            size_t key_len = 0;
            skip_ws(&r);
            if (!read_string(&r, &key, &key_len)) { ok = false; break; }
            skip_ws(&r);
            if (r.p >= r.end || *r.p++ != ':') { free(key); ok = false; break; }
            skip_ws(&r);
            if (strcmp(key, "text") == 0 && r.p < r.end && *r.p == '"') {
                free(text);
                have_text = read_string(&r, &text, &text_len);
                if (!have_text) { free(key); ok = false; break; }
            } else if (strcmp(key, "top") == 0) {
                const char *start = r.p;
                if (!skip_value(&r, 0)) { free(key); ok = false; break; }
                char num[32] = {0};
                size_t n = (size_t)(r.p - start);
                bad_top = true;
                if (n > 0 && n < sizeof num) {
                    memcpy(num, start, n);
                    char *endp = NULL;
                    long long v = strtoll(num, &endp, 10);
                    if (endp && *endp == 0 && num[0] != '+') { top = v; bad_top = false; }
                }
            } else {
                if (strcmp(key, "text") == 0) have_text = false;
                if (!skip_value(&r, 0)) { free(key); ok = false; break; }
            }
            free(key);
            skip_ws(&r);
            if (r.p < r.end && *r.p == ',') { r.p++; continue; }
            if (r.p < r.end && *r.p == '}') { r.p++; break; }
            ok = false;
            break;
        }
    }
    tool_string_free(input);
    if (!ok) { free(text); return fail(err, "input is not JSON"); }
    if (!have_text) { free(text); return fail(err, "`text` (a string) is required"); }
    if (bad_top || top < 1 || top > 50) { free(text); return fail(err, "`top` must be an integer from 1 to 50"); }

    // Count, lowercasing words in place (they are ASCII).
    uint64_t characters = 0, newlines = 0, words = 0;
    size_t cap = 16, n = 0;
    entry_t *all = malloc(cap * sizeof *all);
    for (size_t i = 0; i < text_len; i++) {
        unsigned char c = (unsigned char)text[i];
        if ((c & 0xC0) != 0x80) characters++; // not a UTF-8 continuation byte
        if (c == '\n') newlines++;
    }
    for (size_t i = 0; i < text_len;) {
        if (!is_word_byte((unsigned char)text[i])) { i++; continue; }
        size_t start = i;
        while (i < text_len && is_word_byte((unsigned char)text[i])) {
            if (text[i] >= 'A' && text[i] <= 'Z') text[i] = (char)(text[i] - 'A' + 'a');
            i++;
        }
        words++;
        if (n == cap) { cap *= 2; all = realloc(all, cap * sizeof *all); }
        all[n++] = (entry_t){text + start, i - start, 1};
    }
    uint64_t lines = newlines + (text_len > 0 && text[text_len - 1] != '\n' ? 1 : 0);

    // Merge equal words, then rank.
    qsort(all, n, sizeof *all, by_word);
    size_t unique = 0;
    for (size_t i = 0; i < n; i++) {
        if (unique > 0 && by_word(&all[unique - 1], &all[i]) == 0) all[unique - 1].count++;
        else all[unique++] = all[i];
    }
    qsort(all, unique, sizeof *all, by_count_then_word);

    size_t shown = unique < (size_t)top ? unique : (size_t)top;
    size_t out_cap = 256;
    for (size_t i = 0; i < shown; i++) out_cap += all[i].len + 48;
    char *out = malloc(out_cap);
    int len = snprintf(out, out_cap,
                       "{\"bytes\":%zu,\"characters\":%llu,\"lines\":%llu,\"words\":%llu,"
                       "\"unique_words\":%zu,\"top_words\":[",
                       text_len, (unsigned long long)characters, (unsigned long long)lines,
                       (unsigned long long)words, unique);
    for (size_t i = 0; i < shown; i++) {
        len += snprintf(out + len, out_cap - (size_t)len, "%s{\"word\":\"%.*s\",\"count\":%llu}",
                        i ? "," : "", (int)all[i].len, all[i].word, (unsigned long long)all[i].count);
    }
    len += snprintf(out + len, out_cap - (size_t)len, "]}");
    free(all);
    free(text);
    ret->ptr = (uint8_t *)out;
    ret->len = (size_t)len;
    return true;
}
