/* Runs every shared test vector (every .json file of tests/vectors, read at run time) through the C ABI, as
 * native/ffi/tests/vectors.rs does: same steps, same expectations, same invariants (an erroring
 * step or a blocked call leaves ml_session_stats' history_len and history_hash unchanged; a
 * non-allow verdict has a message; a blocked call has id 0). Format: tests/vectors/README.md.
 *
 * usage: vectors DIR    (exit 0 when every vector passes; run under valgrind by `make test`) */
#define _POSIX_C_SOURCE 200809L /* strdup, opendir */
#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "microloop.h"

typedef struct {
    uint8_t *data;
    size_t len;
} bytes;

static const char *status_name(ml_status s) {
    switch (s) {
    case ML_OK: return "ok";
    case ML_ERR_NULL_ARG: return "null_arg";
    case ML_ERR_INVALID_UTF8: return "invalid_utf8";
    case ML_ERR_INVALID_JSON: return "invalid_json";
    case ML_ERR_INVALID_POLICY: return "invalid_policy";
    case ML_ERR_UNKNOWN_CALL: return "unknown_call";
    case ML_ERR_ALREADY_RECORDED: return "already_recorded";
    case ML_ERR_INVALID_ARG: return "invalid_argument";
    case ML_ERR_INVALID_SNAPSHOT: return "invalid_snapshot";
    case ML_ERR_SNAPSHOT_VERSION: return "snapshot_version";
    case ML_ERR_POLICY_MISMATCH: return "policy_mismatch";
    case ML_ERR_PANIC: return "panic";
    default: return "unknown";
    }
}

static const char *action_name(int32_t a) {
    static const char *names[] = {"allow", "warn", "block", "halt"};
    return a >= 0 && a <= 3 ? names[a] : "?";
}

/* The failure of the vector being run; the first one wins. */
static char failure[2048];

static bool failf(size_t step, const char *fmt, ...) {
    if (failure[0])
        return false;
    int n = snprintf(failure, sizeof failure, "step %zu: ", step);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(failure + n, sizeof failure - (size_t)n, fmt, ap);
    va_end(ap);
    return false;
}

static bytes from_hex(const char *h) {
    size_t n = strlen(h) / 2;
    bytes b = {malloc(n + 1), n};
    for (size_t i = 0; i < n; i++) {
        unsigned v = 0;
        sscanf(h + 2 * i, "%2x", &v);
        b.data[i] = (uint8_t)v;
    }
    return b;
}

static bytes copy(const char *s, size_t len) {
    bytes b = {malloc(len + 1), len};
    memcpy(b.data, s, len);
    return b;
}

static bytes serialized(const json *v) {
    bytes b;
    b.data = (uint8_t *)json_write(v, &b.len);
    return b;
}

/* The argument bytes a call step describes (README: the first key present wins). */
static bytes args_of(const json *step) {
    const json *v;
    unsigned long long n;
    if ((v = json_get(step, "args_text")) && v->type == JSON_STRING)
        return copy(v->text, v->len);
    if ((v = json_get(step, "args_hex")) && v->type == JSON_STRING)
        return from_hex(v->text);
    if (json_u64(json_get(step, "args_nested"), &n)) {
        bytes b = {malloc(2 * n + 1), 2 * n};
        memset(b.data, '[', n);
        memset(b.data + n, ']', n);
        return b;
    }
    if (json_u64(json_get(step, "args_big"), &n)) {
        bytes b = {malloc(n + 1), n};
        memset(b.data, 'x', n);
        memcpy(b.data, "{\"data\":\"", 9);
        memcpy(b.data + n - 2, "\"}", 2);
        return b;
    }
    if ((v = json_get(step, "args")))
        return serialized(v);
    return copy("{}", 2);
}

/* A step's `result`: a string as its bytes, anything else as JSON; data NULL when absent. */
static bytes result_of(const json *step) {
    const json *v = json_get(step, "result");
    if (!v)
        return (bytes){NULL, 0};
    if (v->type == JSON_STRING)
        return copy(v->text, v->len);
    return serialized(v);
}

typedef struct {
    uint64_t len, hash;
} history;

static history history_of(ml_session *s) {
    ml_stats st = {.size = sizeof st};
    if (ml_session_stats(s, &st, NULL) != ML_OK) {
        fprintf(stderr, "ml_session_stats failed\n");
        exit(2);
    }
    return (history){st.history_len, st.history_hash};
}

static bool same(history a, history b) {
    return a.len == b.len && a.hash == b.hash;
}

/* Compares a status with a step's `expect_error` name, checks and frees the error. */
static bool expect_status(size_t i, const char *what, ml_status got, ml_error *err, const json *want) {
    bool ok = json_str(want) && strcmp(status_name(got), json_str(want)) == 0;
    size_t len = 0;
    const char *msg = ml_error_message(err, &len);
    if (!ok)
        failf(i, "%s gave %s (%s), expected %s", what, status_name(got), msg, json_str(want) ? json_str(want) : "?");
    else if (!err || len == 0 || strlen(msg) != len || ml_error_code(err) != got)
        ok = failf(i, "%s: an error without a message or with the wrong code", what);
    ml_error_free(err);
    return ok;
}

static bool json_true(const json *v) {
    return v && v->type == JSON_BOOL && v->boolean;
}

/* An `expect_stats` step: each named counter has the given value. */
static bool expect_stats(ml_session *s, size_t i, const json *want) {
    ml_stats st = {.size = sizeof st};
    if (ml_session_stats(s, &st, NULL) != ML_OK)
        return failf(i, "ml_session_stats failed");
    const struct {
        const char *name;
        uint64_t value;
    } counters[] = {{"calls", st.calls},     {"blocked", st.blocked}, {"errors", st.errors},
                    {"history_len", st.history_len}, {"results", st.results}, {"late", st.late}};
    for (size_t k = 0; want->type == JSON_OBJECT && k < want->n; k++) {
        size_t c = 0;
        while (c < sizeof counters / sizeof counters[0] && strcmp(counters[c].name, want->keys[k]) != 0)
            c++;
        unsigned long long expected;
        if (c == sizeof counters / sizeof counters[0] || !json_u64(&want->items[k], &expected))
            return failf(i, "expect_stats: no counter named %s", want->keys[k]);
        if (counters[c].value != expected)
            return failf(i, "stats.%s is %llu, expected %llu", want->keys[k], (unsigned long long)counters[c].value, expected);
    }
    return true;
}

/* Saves *s, loads the bytes under an engine of the same policy, and puts the loaded session in
 * its place: counters and history must come through unchanged. */
static bool save_and_load(ml_session **s, size_t i, bytes policy) {
    ml_stats before = { .size = sizeof before }, after = { .size = sizeof after };
    ml_session_stats(*s, &before, NULL);
    uint8_t *snap = NULL;
    size_t len = 0;
    ml_status rc = ml_session_save(*s, &snap, &len, NULL);
    if (rc != ML_OK || !snap || !len)
        return failf(i, "ml_session_save gave %s", status_name(rc));
    ml_engine *e = NULL;
    ml_session *loaded = NULL;
    rc = ml_engine_new(policy.data, policy.len, &e, NULL);
    if (rc == ML_OK)
        rc = ml_session_load(e, snap, len, 0, &loaded, NULL);
    ml_engine_free(e);
    ml_bytes_free(snap, len);
    if (rc != ML_OK)
        return failf(i, "ml_session_load gave %s", status_name(rc));
    ml_session_free(*s);
    *s = loaded;
    ml_session_stats(*s, &after, NULL);
    return memcmp(&before, &after, sizeof before) == 0 || failf(i, "the loaded session's counters differ");
}

static bool check_step(ml_session *s, size_t i, const json *step, uint64_t *last_call_id) {
    history before = history_of(s);
    const json *v;
    if ((v = json_get(step, "tools"))) {
        bytes t = serialized(v);
        ml_status rc = ml_session_set_tools(s, t.data, t.len, NULL);
        free(t.data);
        return rc == ML_OK || failf(i, "set_tools gave %s", status_name(rc));
    }
    if (json_get(step, "reset")) {
        ml_status rc = ml_session_reset(s, NULL);
        return rc == ML_OK || failf(i, "reset gave %s", status_name(rc));
    }
    if ((v = json_get(step, "expect_stats")))
        return expect_stats(s, i, v);
    if (json_get(step, "record_id") || json_get(step, "record_last")) {
        unsigned long long id = *last_call_id;
        json_u64(json_get(step, "record_id"), &id);
        bytes out = result_of(step);
        ml_error *err = NULL;
        ml_status rc = ml_record_result(s, id, out.data, out.len, json_true(json_get(step, "error")), &err);
        free(out.data);
        const json *want = json_get(step, "expect_error");
        if (!want)
            return rc == ML_OK || failf(i, "record gave %s: %s", status_name(rc), ml_error_message(err, NULL));
        if (!expect_status(i, "record", rc, err, want))
            return false;
        return same(history_of(s), before) || failf(i, "a failed record changed the history");
    }

    const char *tool_hex = json_str(json_get(step, "tool_hex"));
    const json *call = json_get(step, "call");
    if (!tool_hex && !json_str(call))
        return failf(i, "a step of no known kind");
    bytes tool = tool_hex ? from_hex(tool_hex) : copy(call->text, call->len);
    bytes args = args_of(step);
    ml_verdict vd = {.size = sizeof vd, .action = -1};
    ml_error *err = NULL;
    ml_status rc = ml_check_call(s, tool.data, tool.len, args.data, args.len, &vd, &err);
    free(tool.data);
    free(args.data);

    if ((v = json_get(step, "expect_error"))) {
        if (!expect_status(i, "check", rc, err, v))
            return false;
        return same(history_of(s), before) || failf(i, "an erroring call changed the history");
    }
    if (rc != ML_OK) {
        failf(i, "check gave %s: %s", status_name(rc), ml_error_message(err, NULL));
        ml_error_free(err);
        return false;
    }
    const char *action = action_name(vd.action);
    char rule[256], message[1024];
    snprintf(rule, sizeof rule, "%s", vd.rule ? vd.rule : "");
    snprintf(message, sizeof message, "%s", vd.message ? vd.message : "");
    bool lengths_ok = (vd.rule ? strlen(vd.rule) : 0) == vd.rule_len && (vd.message ? strlen(vd.message) : 0) == vd.message_len;
    bool message_found = true;
    const char *missing = "";
    const json *needles = json_get(step, "message_contains");
    for (size_t k = 0; needles && needles->type == JSON_ARRAY && k < needles->n; k++) {
        const char *needle = json_str(&needles->items[k]);
        if (!needle || !vd.message || !strstr(vd.message, needle)) {
            message_found = false;
            missing = needle ? needle : "?";
            break;
        }
    }
    uint32_t count = vd.count;
    uint64_t call_id = vd.call_id;
    ml_verdict_clear(&vd);
    if (vd.rule || vd.message)
        return failf(i, "ml_verdict_clear left a string");

    if (!lengths_ok)
        return failf(i, "rule_len or message_len disagrees with the string");
    const char *want = json_str(json_get(step, "expect"));
    if (!want || strcmp(want, action) != 0)
        return failf(i, "got %s %s count=%u: %s; expected %s", action, rule, count, message, want ? want : "?");
    const char *want_rule = json_str(json_get(step, "rule"));
    if (want_rule ? strcmp(want_rule, rule) != 0 : (strcmp(action, "allow") == 0 && rule[0]))
        return failf(i, "got rule '%s', expected '%s'", rule, want_rule ? want_rule : "");
    unsigned long long want_count;
    if (json_u64(json_get(step, "count"), &want_count) && want_count != count)
        return failf(i, "got count %u, expected %llu (%s %s)", count, want_count, action, rule);
    if (!message_found)
        return failf(i, "message lacks '%s': %s", missing, message);
    if (strcmp(action, "allow") != 0 && !message[0])
        return failf(i, "a %s verdict without a message", action);
    if (strcmp(action, "block") == 0 || strcmp(action, "halt") == 0) {
        if (call_id != 0 || !same(history_of(s), before))
            return failf(i, "a blocked call entered the history");
        return true;
    }
    *last_call_id = call_id;
    bytes out = result_of(step);
    if (out.data) {
        rc = ml_record_result(s, call_id, out.data, out.len, json_true(json_get(step, "error")), NULL);
        free(out.data);
        if (rc != ML_OK)
            return failf(i, "record failed: %s", status_name(rc));
    }
    return true;
}

static bool run_vector(const char *path) {
    failure[0] = '\0';
    FILE *f = fopen(path, "rb");
    if (!f)
        return failf(0, "cannot open");
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *text = malloc((size_t)size + 1);
    size_t got = fread(text, 1, (size_t)size, f);
    fclose(f);
    char perr[128];
    json *doc = json_parse(text, got, perr);
    free(text);
    if (!doc)
        return failf(0, "not JSON: %s", perr);

    const json *pv = json_get(doc, "policy");
    bytes policy = !pv ? copy("", 0) : pv->type == JSON_STRING ? copy(pv->text, pv->len) : serialized(pv);
    ml_session *s = NULL;
    ml_error *err = NULL;
    ml_status rc = ml_session_new(policy.data, policy.len, &s, &err);
    bool ok = true;
    const json *pe = json_get(doc, "policy_error");
    if (pe) {
        if (rc != ML_ERR_INVALID_POLICY) {
            ok = failf(0, "policy was accepted (status %s)", status_name(rc));
        } else {
            const char *msg = ml_error_message(err, NULL), *epath = ml_error_path(err, NULL);
            const char *want_path = json_str(json_get(pe, "path")), *want_msg = json_str(json_get(pe, "message"));
            if (!want_path || !want_msg || strcmp(want_path, epath) != 0 || strcmp(want_msg, msg) != 0)
                ok = failf(0, "policy error was path='%s' message='%s'", epath, msg);
        }
        ml_error_free(err);
        ml_session_free(s);
        free(policy.data);
        json_free(doc);
        return ok;
    }
    if (rc != ML_OK) {
        failf(0, "policy refused: %s (%s)", ml_error_message(err, NULL), ml_error_path(err, NULL));
        ml_error_free(err);
        free(policy.data);
        json_free(doc);
        return false;
    }
    const json *steps = json_get(doc, "steps");
    uint64_t last_call_id = 0;
    for (size_t i = 0; ok && steps && steps->type == JSON_ARRAY && i < steps->n; i++) {
        if (json_get(&steps->items[i], "save_and_load"))
            ok = save_and_load(&s, i, policy);
        else
            ok = check_step(s, i, &steps->items[i], &last_call_id);
    }
    free(policy.data);
    ml_session_free(s);
    json_free(doc);
    return ok;
}

static int by_name(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    DIR *dir = opendir(argv[1]);
    if (!dir) {
        perror(argv[1]);
        return 2;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(dir))) {
        size_t len = strlen(e->d_name);
        if (len < 6 || strcmp(e->d_name + len - 5, ".json") != 0)
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            names = realloc(names, cap * sizeof *names);
        }
        names[n++] = strdup(e->d_name);
    }
    closedir(dir);
    qsort(names, n, sizeof *names, by_name);

    size_t passed = 0, failed = 0;
    for (size_t i = 0; i < n; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", argv[1], names[i]);
        if (run_vector(path)) {
            passed++;
        } else {
            failed++;
            fprintf(stderr, "FAIL %s: %s\n", names[i], failure);
        }
        free(names[i]);
    }
    free(names);
    if (n < 40) {
        fprintf(stderr, "only %zu vectors in %s\n", n, argv[1]);
        failed++;
    }
    printf("vectors: %zu passed, %zu failed\n", passed, failed);
    return failed ? 1 : 0;
}
