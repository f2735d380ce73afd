/* See json.h. Recursive descent over a (pointer, end) pair; every failure frees what it built. */
#include "json.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 512

typedef struct {
    const char *start, *p, *end;
    char *error;
    int depth;
} parser;

typedef struct {
    char *data;
    size_t len, cap;
} buffer;

static bool buf_reserve(buffer *b, size_t more) {
    if (b->len + more + 1 <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + more + 1)
        cap *= 2;
    char *data = realloc(b->data, cap);
    if (!data)
        return false;
    b->data = data;
    b->cap = cap;
    return true;
}

static bool buf_put(buffer *b, const char *s, size_t n) {
    if (!buf_reserve(b, n))
        return false;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
    return true;
}

static bool fail(parser *ps, const char *what) {
    if (ps->error && !ps->error[0])
        snprintf(ps->error, 128, "%s at byte %td", what, ps->p - ps->start);
    return false;
}

static void skip_ws(parser *ps) {
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
        ps->p++;
}

static bool literal(parser *ps, const char *word) {
    size_t n = strlen(word);
    if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0)
        return fail(ps, "unexpected token");
    ps->p += n;
    return true;
}

static int hex4(const char *p) {
    int v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= c - '0';
        else if (c >= 'a' && c <= 'f')
            v |= c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            v |= c - 'A' + 10;
        else
            return -1;
    }
    return v;
}

static bool put_utf8(buffer *b, uint32_t cp) {
    char out[4];
    size_t n;
    if (cp < 0x80) {
        out[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        out[0] = (char)(0xF0 | (cp >> 18));
        out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    return buf_put(b, out, n);
}

/* A string token at ps->p (the opening quote); its decoded bytes go to a new buffer. */
static bool parse_string(parser *ps, char **out, size_t *out_len) {
    buffer b = {0};
    ps->p++;
    for (;;) {
        if (ps->p >= ps->end) {
            free(b.data);
            return fail(ps, "unterminated string");
        }
        unsigned char c = (unsigned char)*ps->p;
        if (c == '"') {
            ps->p++;
            break;
        }
        if (c < 0x20) {
            free(b.data);
            return fail(ps, "control character in string");
        }
        if (c != '\\') {
            const char *start = ps->p;
            while (ps->p < ps->end && *ps->p != '"' && *ps->p != '\\' && (unsigned char)*ps->p >= 0x20)
                ps->p++;
            if (!buf_put(&b, start, (size_t)(ps->p - start))) {
                free(b.data);
                return fail(ps, "out of memory");
            }
            continue;
        }
        if (ps->end - ps->p < 2) {
            free(b.data);
            return fail(ps, "bad escape");
        }
        char e = ps->p[1];
        ps->p += 2;
        const char *simple = NULL;
        switch (e) {
        case '"': simple = "\""; break;
        case '\\': simple = "\\"; break;
        case '/': simple = "/"; break;
        case 'b': simple = "\b"; break;
        case 'f': simple = "\f"; break;
        case 'n': simple = "\n"; break;
        case 'r': simple = "\r"; break;
        case 't': simple = "\t"; break;
        case 'u': break;
        default:
            free(b.data);
            return fail(ps, "bad escape");
        }
        bool ok;
        if (simple) {
            ok = buf_put(&b, simple, 1);
        } else {
            int hi = ps->end - ps->p >= 4 ? hex4(ps->p) : -1;
            if (hi < 0) {
                free(b.data);
                return fail(ps, "bad \\u escape");
            }
            ps->p += 4;
            uint32_t cp = (uint32_t)hi;
            if (hi >= 0xD800 && hi <= 0xDBFF) {
                int lo = ps->end - ps->p >= 6 && ps->p[0] == '\\' && ps->p[1] == 'u' ? hex4(ps->p + 2) : -1;
                if (lo < 0xDC00 || lo > 0xDFFF) {
                    free(b.data);
                    return fail(ps, "lone surrogate");
                }
                ps->p += 6;
                cp = 0x10000 + (((uint32_t)hi - 0xD800) << 10) + ((uint32_t)lo - 0xDC00);
            } else if (hi >= 0xDC00 && hi <= 0xDFFF) {
                free(b.data);
                return fail(ps, "lone surrogate");
            }
            ok = put_utf8(&b, cp);
        }
        if (!ok) {
            free(b.data);
            return fail(ps, "out of memory");
        }
    }
    if (!b.data) {
        if (!buf_reserve(&b, 0))
            return fail(ps, "out of memory");
        b.data[0] = '\0';
    }
    *out = b.data;
    *out_len = b.len;
    return true;
}

static bool parse_number(parser *ps, json *v) {
    const char *start = ps->p;
    const char *p = ps->p;
#define DIGITS(p) ((p) < ps->end && *(p) >= '0' && *(p) <= '9')
    if (p < ps->end && *p == '-')
        p++;
    if (!DIGITS(p))
        return fail(ps, "bad number");
    if (*p == '0')
        p++;
    else
        while (DIGITS(p))
            p++;
    if (p < ps->end && *p == '.') {
        p++;
        if (!DIGITS(p))
            return fail(ps, "bad number");
        while (DIGITS(p))
            p++;
    }
    if (p < ps->end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < ps->end && (*p == '+' || *p == '-'))
            p++;
        if (!DIGITS(p))
            return fail(ps, "bad number");
        while (DIGITS(p))
            p++;
    }
#undef DIGITS
    v->len = (size_t)(p - start);
    v->text = malloc(v->len + 1);
    if (!v->text)
        return fail(ps, "out of memory");
    memcpy(v->text, start, v->len);
    v->text[v->len] = '\0';
    v->type = JSON_NUMBER;
    ps->p = p;
    return true;
}

static void free_members(json *v);

static bool parse_value(parser *ps, json *v);

/* Adds a member to an array or object under construction, growing its arrays. */
static json *add_member(json *v, size_t *cap) {
    if (v->n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 4;
        json *items = realloc(v->items, ncap * sizeof *items);
        if (!items)
            return NULL;
        v->items = items;
        if (v->type == JSON_OBJECT) {
            char **keys = realloc(v->keys, ncap * sizeof *keys);
            if (!keys)
                return NULL;
            v->keys = keys;
        }
        *cap = ncap;
    }
    json *m = &v->items[v->n];
    memset(m, 0, sizeof *m);
    if (v->type == JSON_OBJECT)
        v->keys[v->n] = NULL;
    v->n++;
    return m;
}

static bool parse_container(parser *ps, json *v, bool object) {
    char close = object ? '}' : ']';
    v->type = object ? JSON_OBJECT : JSON_ARRAY;
    size_t cap = 0;
    if (++ps->depth > MAX_DEPTH)
        return fail(ps, "nested too deep");
    ps->p++;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == close) {
        ps->p++;
        ps->depth--;
        return true;
    }
    for (;;) {
        json *m = add_member(v, &cap);
        if (!m)
            return fail(ps, "out of memory");
        skip_ws(ps);
        if (object) {
            size_t klen;
            if (ps->p >= ps->end || *ps->p != '"')
                return fail(ps, "expected a key");
            if (!parse_string(ps, &v->keys[v->n - 1], &klen))
                return false;
            skip_ws(ps);
            if (ps->p >= ps->end || *ps->p != ':')
                return fail(ps, "expected ':'");
            ps->p++;
        }
        if (!parse_value(ps, m))
            return false;
        skip_ws(ps);
        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            continue;
        }
        if (ps->p < ps->end && *ps->p == close) {
            ps->p++;
            ps->depth--;
            return true;
        }
        return fail(ps, object ? "expected ',' or '}'" : "expected ',' or ']'");
    }
}

static bool parse_value(parser *ps, json *v) {
    skip_ws(ps);
    if (ps->p >= ps->end)
        return fail(ps, "unexpected end");
    switch (*ps->p) {
    case '{':
        return parse_container(ps, v, true);
    case '[':
        return parse_container(ps, v, false);
    case '"':
        v->type = JSON_STRING;
        return parse_string(ps, &v->text, &v->len);
    case 't':
        v->type = JSON_BOOL;
        v->boolean = true;
        return literal(ps, "true");
    case 'f':
        v->type = JSON_BOOL;
        return literal(ps, "false");
    case 'n':
        v->type = JSON_NULL;
        return literal(ps, "null");
    default:
        return parse_number(ps, v);
    }
}

static void free_members(json *v) {
    for (size_t i = 0; i < v->n; i++) {
        free_members(&v->items[i]);
        if (v->keys)
            free(v->keys[i]);
    }
    free(v->items);
    free(v->keys);
    free(v->text);
}

json *json_parse(const char *text, size_t len, char *error) {
    parser ps = {text, text, text + len, error, 0};
    if (error)
        error[0] = '\0';
    json *v = calloc(1, sizeof *v);
    if (!v)
        return NULL;
    bool ok = parse_value(&ps, v);
    if (ok) {
        skip_ws(&ps);
        if (ps.p != ps.end)
            ok = fail(&ps, "trailing characters");
    }
    if (!ok) {
        json_free(v);
        return NULL;
    }
    return v;
}

void json_free(json *v) {
    if (!v)
        return;
    free_members(v);
    free(v);
}

const json *json_get(const json *v, const char *key) {
    if (!v || v->type != JSON_OBJECT)
        return NULL;
    for (size_t i = 0; i < v->n; i++)
        if (strcmp(v->keys[i], key) == 0)
            return &v->items[i];
    return NULL;
}

const char *json_str(const json *v) {
    return v && v->type == JSON_STRING ? v->text : NULL;
}

bool json_u64(const json *v, unsigned long long *out) {
    if (!v || v->type != JSON_NUMBER || v->len == 0 || v->len > 19)
        return false;
    unsigned long long n = 0;
    for (size_t i = 0; i < v->len; i++) {
        if (v->text[i] < '0' || v->text[i] > '9')
            return false;
        n = n * 10 + (unsigned long long)(v->text[i] - '0');
    }
    *out = n;
    return true;
}

static bool write_string(buffer *b, const char *s, size_t len) {
    if (!buf_put(b, "\"", 1))
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            if (!buf_put(b, esc, 2))
                return false;
        } else if (c < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            if (!buf_put(b, esc, 6))
                return false;
        } else if (!buf_put(b, (const char *)&s[i], 1)) {
            return false;
        }
    }
    return buf_put(b, "\"", 1);
}

static bool write_value(buffer *b, const json *v) {
    switch (v->type) {
    case JSON_NULL:
        return buf_put(b, "null", 4);
    case JSON_BOOL:
        return v->boolean ? buf_put(b, "true", 4) : buf_put(b, "false", 5);
    case JSON_NUMBER:
        return buf_put(b, v->text, v->len);
    case JSON_STRING:
        return write_string(b, v->text, v->len);
    case JSON_ARRAY:
    case JSON_OBJECT: {
        bool object = v->type == JSON_OBJECT;
        if (!buf_put(b, object ? "{" : "[", 1))
            return false;
        for (size_t i = 0; i < v->n; i++) {
            if (i && !buf_put(b, ",", 1))
                return false;
            if (object && (!write_string(b, v->keys[i], strlen(v->keys[i])) || !buf_put(b, ":", 1)))
                return false;
            if (!write_value(b, &v->items[i]))
                return false;
        }
        return buf_put(b, object ? "}" : "]", 1);
    }
    }
    return false;
}

char *json_write(const json *v, size_t *len) {
    buffer b = {0};
    if (!buf_reserve(&b, 0))
        return NULL;
    b.data[0] = '\0';
    if (!write_value(&b, v)) {
        free(b.data);
        return NULL;
    }
    *len = b.len;
    return b.data;
}
