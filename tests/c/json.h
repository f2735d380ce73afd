/* A small JSON reader for the C vector runner: parses a whole document into a tree, and writes a
 * value back as compact JSON. Strings are decoded to UTF-8 bytes (with their length: they may hold
 * NUL); numbers keep their source text, so writing them back never rounds. Not a general library:
 * no streaming, keys kept in document order, duplicate keys kept (lookups find the first). */
#ifndef MICROLOOP_TEST_JSON_H
#define MICROLOOP_TEST_JSON_H

#include <stdbool.h>
#include <stddef.h>

typedef enum { JSON_NULL, JSON_BOOL, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT } json_type;

typedef struct json {
    json_type type;
    bool boolean;
    char *text;         /* JSON_STRING: decoded bytes, NUL-terminated; JSON_NUMBER: source text */
    size_t len;         /* of text */
    size_t n;           /* JSON_ARRAY / JSON_OBJECT: number of members */
    struct json *items; /* members */
    char **keys;        /* JSON_OBJECT: decoded keys, NUL-terminated */
} json;

/* Parses `len` bytes; returns NULL on a syntax error (with a message of at most 128 bytes in
 * `error`, which may be NULL). Free the result with json_free. */
json *json_parse(const char *text, size_t len, char *error);
void json_free(json *v);

/* The member `key` of an object, or NULL (also when `v` is NULL or not an object). */
const json *json_get(const json *v, const char *key);
/* The decoded string of a JSON_STRING, else NULL. */
const char *json_str(const json *v);
/* A non-negative integer; false when `v` is not one. */
bool json_u64(const json *v, unsigned long long *out);

/* Compact JSON text of `v` in a new malloc'd buffer (free it with free); its length in `*len`. */
char *json_write(const json *v, size_t *len);

#endif
