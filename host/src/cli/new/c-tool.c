// `{{name}}`: a Toka tool in C (clang for wasm32-wasi, `wit-bindgen c`).
// `{"text": "hi"}` → `{"text": "hi", "length": 2}`.
//
// The host checks the input against the manifest's `parameters` before the
// tool runs, so `text` is there and a string; the reader below still refuses
// anything else rather than trusting that.

#include "tool.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char SCHEMA[] =
    "{\"type\":\"object\",\"properties\":{\"text\":{\"type\":\"string\"}},\"required\":[\"text\"]}";

void exports_toka_plugin_handler_describe(exports_toka_plugin_handler_tool_info_t *ret) {
    tool_string_dup(&ret->name, "{{name}}");
    tool_string_dup(&ret->version, "0.1.0");
    tool_string_dup(&ret->description, "Says how long a text is.");
    tool_string_dup(&ret->input_schema, SCHEMA);
}

typedef struct {
    const char *p, *end;
} reader_t;

static void skip_ws(reader_t *r) {
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r')) r->p++;
}

// Reads a JSON string at r->p; counts its characters (code points) into
// *chars when chars is not NULL. Leaves r->p after the closing quote.
static bool read_string(reader_t *r, size_t *chars) {
    size_t n = 0;
    if (r->p >= r->end || *r->p != '"') return false;
    r->p++;
    while (r->p < r->end && *r->p != '"') {
        unsigned char c = (unsigned char)*r->p;
        if (c == '\\') {
            if (r->end - r->p < 2) return false;
            if (r->p[1] == 'u') {
                if (r->end - r->p < 6) return false;
                unsigned v = (unsigned)strtoul((char[5]){r->p[2], r->p[3], r->p[4], r->p[5], 0}, NULL, 16);
                if (v < 0xDC00 || v > 0xDFFF) n++; // a low surrogate ends a pair already counted
                r->p += 6;
            } else {
                n++;
                r->p += 2;
            }
            continue;
        }
        if ((c & 0xC0) != 0x80) n++; // not a UTF-8 continuation byte
        r->p++;
    }
    if (r->p >= r->end) return false;
    r->p++;
    if (chars) *chars = n;
    return true;
}

// Skips any JSON value (the other fields of the input).
static bool skip_value(reader_t *r, int depth) {
    skip_ws(r);
    if (r->p >= r->end || depth > 64) return false;
    char open = *r->p;
    if (open == '"') return read_string(r, NULL);
    if (open != '{' && open != '[') {
        while (r->p < r->end && !strchr(",}] \t\r\n", *r->p)) r->p++;
        return true;
    }
    char close = open == '{' ? '}' : ']';
    r->p++;
    skip_ws(r);
    if (r->p < r->end && *r->p == close) return r->p++, true;
    for (;;) {
        if (open == '{') {
            skip_ws(r);
            if (!read_string(r, NULL)) return false;
            skip_ws(r);
            if (r->p >= r->end || *r->p++ != ':') return false;
        }
        if (!skip_value(r, depth + 1)) return false;
        skip_ws(r);
        if (r->p < r->end && *r->p == ',') { r->p++; continue; }
        if (r->p < r->end && *r->p == close) return r->p++, true;
        return false;
    }
}

static bool invalid(exports_toka_plugin_handler_tool_error_t *err, const char *message) {
    err->tag = TOKA_PLUGIN_TYPES_TOOL_ERROR_INVALID_INPUT;
    tool_string_dup(&err->val.invalid_input, message);
    return false;
}

bool exports_toka_plugin_handler_invoke(tool_string_t *input, tool_string_t *ret,
                                        exports_toka_plugin_handler_tool_error_t *err) {
    reader_t r = {(const char *)input->ptr, (const char *)input->ptr + input->len};
    const char *text = NULL;
    size_t text_bytes = 0, length = 0;
    bool ok = false;

    skip_ws(&r);
    if (r.p < r.end && *r.p == '{') {
        r.p++;
        skip_ws(&r);
        ok = r.p < r.end && *r.p == '}';
        while (!ok) {
            skip_ws(&r);
            const char *key = r.p;
            if (!read_string(&r, NULL)) break;
            bool is_text = r.p - key == 6 && memcmp(key, "\"text\"", 6) == 0;
            skip_ws(&r);
            if (r.p >= r.end || *r.p++ != ':') break;
            skip_ws(&r);
            const char *start = r.p;
            if (is_text && r.p < r.end && *r.p == '"') {
                if (!read_string(&r, &length)) break;
                text = start;
                text_bytes = (size_t)(r.p - start);
            } else {
                if (is_text) text = NULL;
                if (!skip_value(&r, 0)) break;
            }
            skip_ws(&r);
            if (r.p < r.end && *r.p == ',') { r.p++; continue; }
            ok = r.p < r.end && *r.p == '}';
            break;
        }
    }
    if (!ok || !text) {
        tool_string_free(input);
        return invalid(err, ok ? "`text` (a string) is required" : "input is not a JSON object");
    }

    // The text's JSON string, quotes and escapes as sent, is valid JSON as it is.
    size_t cap = text_bytes + 64;
    char *out = malloc(cap);
    if (!out) {
        tool_string_free(input);
        return invalid(err, "out of memory");
    }
    int len = snprintf(out, cap, "{\"text\":%.*s,\"length\":%zu}", (int)text_bytes, text, length);
    tool_string_free(input);
    ret->ptr = (uint8_t *)out;
    ret->len = (size_t)len;
    return true;
}
