/* The C ABI from C: a loop scenario and every bad input, run under valgrind by `make test`.
 * Each bad input must give its status and a message, and leave the session's history unchanged. */
#define _POSIX_C_SOURCE 200809L /* mkdtemp */
#include <assert.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "microloop.h"

static int failures = 0;
static int checks = 0;

#define CHECK(cond, ...)                                                  \
    do {                                                                  \
        checks++;                                                         \
        if (!(cond)) {                                                    \
            failures++;                                                   \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);          \
            fprintf(stderr, __VA_ARGS__);                                 \
            fputc('\n', stderr);                                          \
        }                                                                 \
    } while (0)

#define U8(s) ((const uint8_t *)(s))

static ml_stats stats_of(ml_session *s) {
    ml_stats st;
    memset(&st, 0, sizeof st);
    st.size = sizeof st;
    ml_status rc = ml_session_stats(s, &st, NULL);
    CHECK(rc == ML_OK, "ml_session_stats: %d", rc);
    return st;
}

static int same_history(ml_stats a, ml_stats b) {
    return a.history_len == b.history_len && a.history_hash == b.history_hash;
}

/* Expects `rc` to be `want` with a non-empty message in `err`, then frees it. */
static void expect_error(ml_status rc, ml_status want, ml_error **errp, const char *what) {
    ml_error *err = *errp; /* read after the call: arguments are evaluated in any order */
    *errp = NULL;
    CHECK(rc == want, "%s: status %d (%s), want %d", what, rc, ml_status_str(rc), want);
    CHECK(err != NULL, "%s: no ml_error", what);
    if (err) {
        size_t len = 0;
        const char *msg = ml_error_message(err, &len);
        CHECK(len > 0 && strlen(msg) == len, "%s: empty message", what);
        CHECK(ml_error_code(err) == want, "%s: ml_error_code", what);
        ml_error_free(err);
    }
}

static ml_verdict check(ml_session *s, const char *tool, const char *args) {
    ml_verdict v;
    memset(&v, 0, sizeof v);
    v.size = sizeof v;
    ml_error *err = NULL;
    ml_status rc = ml_check_call(s, U8(tool), strlen(tool), U8(args), strlen(args), &v, &err);
    CHECK(rc == ML_OK, "check %s %s: %d", tool, args, rc);
    if (err) ml_error_free(err);
    return v;
}

static void loop_scenario(void) {
    ml_session *s = NULL;
    ml_error *err = NULL;
    CHECK(ml_session_new(U8("balanced"), 8, &s, &err) == ML_OK, "session_new");
    const char *args = "{\"url\": \"https://shop.example/item/42\"}";
    const char *captcha = "Please solve the CAPTCHA to continue.";
    int actions[3];
    for (int i = 0; i < 3; i++) {
        ml_verdict v = check(s, "open_page", args);
        actions[i] = v.action;
        if (v.action <= ML_ACTION_WARN) {
            CHECK(v.call_id != 0, "allowed call without id");
            CHECK(ml_record_result(s, v.call_id, U8(captcha), strlen(captcha), false, NULL) == ML_OK, "record");
        } else {
            CHECK(v.call_id == 0, "blocked call with an id");
            CHECK(v.rule && strcmp(v.rule, "loop.no_progress") == 0, "rule %s", v.rule ? v.rule : "(null)");
            CHECK(v.message && strlen(v.message) == v.message_len && strstr(v.message, "open_page"), "message");
        }
        ml_verdict_clear(&v);
        CHECK(v.rule == NULL && v.message == NULL, "clear");
        ml_verdict_clear(&v); /* twice is safe */
    }
    CHECK(actions[0] == ML_ACTION_ALLOW && actions[1] == ML_ACTION_WARN && actions[2] == ML_ACTION_BLOCK,
          "actions %d %d %d", actions[0], actions[1], actions[2]);

    /* Hallucinated tool. */
    const char *tools = "[\"open_page\", \"search\"]";
    CHECK(ml_session_set_tools(s, U8(tools), strlen(tools), NULL) == ML_OK, "set_tools");
    ml_verdict v = check(s, "serach", "{}");
    CHECK(v.action == ML_ACTION_BLOCK && strcmp(v.rule, "tool.unknown") == 0, "tool.unknown");
    CHECK(strstr(v.message, "open_page, search") != NULL, "lists the tools: %s", v.message);
    ml_verdict_clear(&v);

    CHECK(ml_session_reset(s, NULL) == ML_OK, "reset");
    CHECK(stats_of(s).history_len == 0, "reset empties the history");
    ml_session_free(s);
}

static void bad_inputs(void) {
    ml_session *s = NULL;
    ml_error *err = NULL;
    ml_verdict v;
    memset(&v, 0, sizeof v);
    v.size = sizeof v;

    /* Broken policies. */
    const char *bad_policies[] = {"{\"loops\": {\"max_identicl\": 3}}", "{\"loops\": {\"max_identical\": 100000}}",
                                  "{\"preset\": \"paranoid\"}", "[1, 2]", "{not json"};
    for (size_t i = 0; i < sizeof bad_policies / sizeof *bad_policies; i++) {
        err = NULL;
        s = (ml_session *)0x1; /* must stay untouched */
        ml_status rc = ml_session_new(U8(bad_policies[i]), strlen(bad_policies[i]), &s, &err);
        CHECK(s == (ml_session *)0x1, "out-param written on failure");
        expect_error(rc, ML_ERR_INVALID_POLICY, &err, bad_policies[i]);
    }
    err = NULL;
    ml_status rc = ml_session_new(U8("{\"loops\": {\"max_identicl\": 3}}"), 30, &s, &err);
    if (err) {
        size_t n = 0;
        const char *path = ml_error_path(err, &n);
        CHECK(strcmp(path, "loops.max_identicl") == 0, "policy path %s", path);
        ml_error_free(err);
    }
    (void)rc;
    err = NULL;
    expect_error(ml_session_new(NULL, 5, &s, &err), ML_ERR_NULL_ARG, &err, "NULL policy with a length");
    err = NULL;
    expect_error(ml_session_new(U8("balanced"), 8, NULL, &err), ML_ERR_NULL_ARG, &err, "NULL session_out");
    CHECK(ml_session_new(NULL, 0, &s, NULL) == ML_OK, "NULL, 0 policy is balanced");

    /* A little history to protect. */
    ml_verdict ok = check(s, "search", "{\"q\": \"a\"}");
    CHECK(ml_record_result(s, ok.call_id, U8("r"), 1, false, NULL) == ML_OK, "record");
    ml_stats before = stats_of(s);

    err = NULL;
    expect_error(ml_check_call(NULL, U8("t"), 1, U8("{}"), 2, &v, &err), ML_ERR_NULL_ARG, &err, "NULL session");
    err = NULL;
    expect_error(ml_check_call(s, NULL, 4, U8("{}"), 2, &v, &err), ML_ERR_NULL_ARG, &err, "NULL tool");
    err = NULL;
    expect_error(ml_check_call(s, U8("t"), 1, NULL, 2, &v, &err), ML_ERR_NULL_ARG, &err, "NULL args");
    err = NULL;
    expect_error(ml_check_call(s, U8("t"), 1, U8("{}"), 2, NULL, &err), ML_ERR_NULL_ARG, &err, "NULL verdict");
    err = NULL;
    ml_verdict small = {.size = 4};
    expect_error(ml_check_call(s, U8("t"), 1, U8("{}"), 2, &small, &err), ML_ERR_INVALID_ARG, &err, "small verdict");
    err = NULL;
    expect_error(ml_check_call(s, U8("search"), 6, U8("{not json"), 9, &v, &err), ML_ERR_INVALID_JSON, &err, "invalid JSON");
    err = NULL;
    expect_error(ml_check_call(s, U8("search"), 6, U8("{\"q\":\"\xff\"}"), 9, &v, &err), ML_ERR_INVALID_UTF8, &err,
                 "non-UTF-8 args");
    err = NULL;
    expect_error(ml_check_call(s, U8("se\xffrch"), 6, U8("{}"), 2, &v, &err), ML_ERR_INVALID_UTF8, &err, "non-UTF-8 tool");
    err = NULL;
    expect_error(ml_check_call(s, U8(""), 0, U8("{}"), 2, &v, &err), ML_ERR_INVALID_ARG, &err, "empty tool");
    /* NULL err_out is allowed. */
    CHECK(ml_check_call(s, U8("search"), 6, U8("{"), 1, &v, NULL) == ML_ERR_INVALID_JSON, "NULL err_out");

    /* 100,000 levels of nesting. */
    size_t depth = 100000;
    char *nested = malloc(2 * depth);
    memset(nested, '[', depth);
    memset(nested + depth, ']', depth);
    err = NULL;
    expect_error(ml_check_call(s, U8("search"), 6, U8(nested), 2 * depth, &v, &err), ML_ERR_INVALID_JSON, &err, "deep nesting");
    free(nested);

    /* 100 MiB of arguments: blocked by budget.args_size before any parsing. */
    size_t big = (size_t)100 << 20;
    char *huge = malloc(big);
    memset(huge, 'x', big);
    memcpy(huge, "{\"data\":\"", 9);
    memcpy(huge + big - 2, "\"}", 2);
    ml_status brc = ml_check_call(s, U8("upload"), 6, U8(huge), big, &v, NULL);
    CHECK(brc == ML_OK && v.action == ML_ACTION_BLOCK && strcmp(v.rule, "budget.args_size") == 0, "huge args: %d", brc);
    ml_verdict_clear(&v);
    free(huge);

    /* Recording errors. */
    err = NULL;
    expect_error(ml_record_result(s, 999, U8("x"), 1, false, &err), ML_ERR_UNKNOWN_CALL, &err, "unknown call id");
    err = NULL;
    expect_error(ml_record_result(s, ok.call_id, U8("x"), 1, false, &err), ML_ERR_ALREADY_RECORDED, &err, "recorded twice");
    err = NULL;
    expect_error(ml_record_result(s, ok.call_id, NULL, 3, false, &err), ML_ERR_NULL_ARG, &err, "NULL output");
    err = NULL;
    expect_error(ml_session_set_tools(s, U8("{\"a\":1}"), 7, &err), ML_ERR_INVALID_JSON, &err, "tools not an array");

    CHECK(same_history(before, stats_of(s)), "bad inputs changed the history");
    ml_session_free(s);

    /* NULL is a no-op for every free. */
    ml_session_free(NULL);
    ml_error_free(NULL);
    ml_verdict_clear(NULL);
    CHECK(ml_error_code(NULL) == ML_ERR_NULL_ARG, "ml_error_code(NULL)");
    CHECK(strlen(ml_error_message(NULL, NULL)) == 0, "ml_error_message(NULL)");
}

/* A caller compiled against the first ABI passes a smaller ml_stats: it gets the fields it knows
 * and nothing is written past them. */
static void old_stats_size(void) {
    ml_session *s = NULL;
    CHECK(ml_session_new(U8("balanced"), 8, &s, NULL) == ML_OK, "session");
    ml_verdict v = check(s, "search", "{}");
    ml_verdict_clear(&v);
    ml_stats st;
    memset(&st, 0xab, sizeof st);
    st.size = offsetof(ml_stats, results);
    CHECK(ml_session_stats(s, &st, NULL) == ML_OK, "stats with the first ABI's size");
    CHECK(st.calls == 1, "calls from an old-size stats: %llu", (unsigned long long)st.calls);
    CHECK(st.results == 0xababababababababULL && st.late == 0xababababababababULL, "written past the caller's size");
    st.size = offsetof(ml_stats, history_hash);
    ml_error *err = NULL;
    expect_error(ml_session_stats(s, &st, &err), ML_ERR_INVALID_ARG, &err, "stats size too small");
    ml_session_free(s);
}

/* Observe mode: the same loop runs to the end; each would-be verdict comes back as allow with the
 * action in `observed`, rule and message kept, and the call in the history. A caller compiled
 * before `observed` existed still gets its verdicts, and nothing is written past its size. */
static void observe_mode(void) {
    ml_session *s = NULL;
    const char *policy = "{\"mode\": \"observe\"}";
    CHECK(ml_session_new(U8(policy), strlen(policy), &s, NULL) == ML_OK, "observe session");
    const char *args = "{\"url\": \"https://shop.example/item/42\"}";
    const char *captcha = "Please solve the CAPTCHA to continue.";
    int observed[4];
    for (int i = 0; i < 4; i++) {
        ml_verdict v = check(s, "open_page", args);
        observed[i] = v.observed;
        CHECK(v.action == ML_ACTION_ALLOW && v.call_id != 0, "observe call %d: action %d id %llu", i, v.action, (unsigned long long)v.call_id);
        CHECK(ml_record_result(s, v.call_id, U8(captcha), strlen(captcha), false, NULL) == ML_OK, "record observed call %d", i);
        if (v.observed == ML_ACTION_ALLOW)
            CHECK(v.rule == NULL && v.message == NULL, "allow has no rule");
        else
            CHECK(v.rule && v.message && strstr(v.message, "open_page"), "would-be verdict kept: %s", v.rule ? v.rule : "(null)");
        if (v.observed == ML_ACTION_BLOCK) CHECK(strcmp(v.rule, "loop.no_progress") == 0, "rule %s", v.rule);
        ml_verdict_clear(&v);
    }
    CHECK(observed[0] == ML_ACTION_ALLOW && observed[1] == ML_ACTION_WARN && observed[2] == ML_ACTION_BLOCK,
          "observed %d %d %d", observed[0], observed[1], observed[2]);
    ml_stats st = stats_of(s);
    CHECK(st.calls == 4 && st.results == 4 && st.history_len == 4, "every call ran: %llu", (unsigned long long)st.calls);
    CHECK(st.observed == 3 && st.blocked == 2, "observed %llu blocked %llu", (unsigned long long)st.observed, (unsigned long long)st.blocked);

    ml_verdict old;
    memset(&old, 0xab, sizeof old);
    old.size = offsetof(ml_verdict, observed);
    CHECK(ml_check_call(s, U8("open_page"), 9, U8(args), strlen(args), &old, NULL) == ML_OK, "old verdict size");
    CHECK(old.action == ML_ACTION_ALLOW && old.call_id != 0 && old.observed == (int32_t)0xabababab, "old-size verdict");
    ml_verdict_clear(&old);
    ml_session_free(s);

    ml_session *e = NULL;
    CHECK(ml_session_new(U8("balanced"), 8, &e, NULL) == ML_OK, "enforcing session");
    ml_verdict v = check(e, "search", "{}");
    CHECK(v.observed == ML_ACTION_ALLOW, "enforcing: observed is allow");
    ml_verdict_clear(&v);
    CHECK(stats_of(e).observed == 0, "enforcing: nothing observed");
    ml_session_free(e);
}

static void versions(void) {
    CHECK(ml_version_number() == ML_VERSION_NUMBER, "version number");
    CHECK(strcmp(ml_version_string(), ML_VERSION_STRING) == 0, "version string");
    CHECK(ml_abi_version() == ML_ABI_VERSION, "abi version");
    CHECK(strcmp(ml_status_str(ML_ERR_INVALID_JSON), "invalid JSON") == 0, "status_str");
    CHECK(strcmp(ml_status_str(12345), "unknown status") == 0, "status_str unknown");
    uint64_t a = 0, b = 1;
    CHECK(ml_fingerprint(NULL, U8("t"), 1, U8("{\"a\":1,\"b\":2}"), 13, &a, NULL) == ML_OK, "fingerprint");
    CHECK(ml_fingerprint(NULL, U8("t"), 1, U8("{\"b\":2.0, \"a\":1}"), 16, &b, NULL) == ML_OK, "fingerprint");
    CHECK(a == b, "key order changed the fingerprint");
}

/* An engine: one compiled policy, many sessions with their own histories; sessions outlive it. */
static void engines(void) {
    ml_engine *e = NULL;
    ml_error *err = NULL;
    expect_error(ml_engine_new(U8("{\"loops\": {\"max_identicl\": 3}}"), 30, &e, &err), ML_ERR_INVALID_POLICY, &err, "bad policy");
    CHECK(e == NULL, "engine_out written on failure");
    expect_error(ml_engine_new(U8("strict"), 6, NULL, &err), ML_ERR_NULL_ARG, &err, "NULL engine_out");
    ml_session *s = NULL;
    expect_error(ml_session_new_from_engine(NULL, &s, &err), ML_ERR_NULL_ARG, &err, "NULL engine");
    CHECK(s == NULL, "session_out written on failure");

    CHECK(ml_engine_new(U8("strict"), 6, &e, NULL) == ML_OK, "engine_new");
    expect_error(ml_session_new_from_engine(e, NULL, &err), ML_ERR_NULL_ARG, &err, "NULL session_out");
    ml_session *one = NULL, *two = NULL;
    CHECK(ml_session_new_from_engine(e, &one, NULL) == ML_OK && one != NULL, "session one");
    CHECK(ml_session_new_from_engine(e, &two, NULL) == ML_OK && two != NULL, "session two");
    ml_engine_free(e); /* the sessions hold their own references */
    ml_engine_free(NULL);
    ml_verdict v = check(one, "open_page", "{\"url\": \"x\"}");
    CHECK(v.action == ML_ACTION_ALLOW, "one: the first call is allowed (action %d)", v.action);
    CHECK(ml_record_result(one, v.call_id, U8("CAPTCHA"), 7, false, NULL) == ML_OK, "record");
    ml_verdict_clear(&v);
    /* strict (max_no_progress 1): the same call after the same answer is a loop in `one`; `two`
     * has its own, empty history. */
    v = check(one, "open_page", "{\"url\": \"x\"}");
    CHECK(v.action == ML_ACTION_BLOCK, "one: the second call under strict is blocked (action %d)", v.action);
    ml_verdict_clear(&v);
    v = check(two, "open_page", "{\"url\": \"x\"}");
    CHECK(v.action == ML_ACTION_ALLOW && v.count == 0, "two shares nothing with one");
    ml_verdict_clear(&v);
    ml_session_free(one);
    ml_session_free(two);
}

/* ml_fingerprint under an engine leaves out its policy's ignore_fields, as the session does. */
static void fingerprint_ignore_fields(void) {
    const char *policy = "{\"loops\": {\"ignore_fields\": [\"request_id\"]}}";
    ml_engine *e = NULL;
    CHECK(ml_engine_new(U8(policy), strlen(policy), &e, NULL) == ML_OK, "engine");
    const char *a1 = "{\"q\": \"x\", \"meta\": {\"request_id\": 1}}", *a2 = "{\"q\": \"x\", \"meta\": {\"request_id\": 2}}";
    uint64_t f1 = 0, f2 = 1, g1 = 0, g2 = 0;
    CHECK(ml_fingerprint(e, U8("search"), 6, U8(a1), strlen(a1), &f1, NULL) == ML_OK, "fp 1");
    CHECK(ml_fingerprint(e, U8("search"), 6, U8(a2), strlen(a2), &f2, NULL) == ML_OK, "fp 2");
    CHECK(f1 == f2, "the engine's ignore_fields were not left out");
    CHECK(ml_fingerprint(NULL, U8("search"), 6, U8(a1), strlen(a1), &g1, NULL) == ML_OK, "fp without engine");
    CHECK(ml_fingerprint(NULL, U8("search"), 6, U8(a2), strlen(a2), &g2, NULL) == ML_OK, "fp without engine");
    CHECK(g1 != g2, "without an engine every field counts");
    ml_error *err = NULL;
    expect_error(ml_fingerprint(e, U8("search"), 6, U8("{"), 1, &f1, &err), ML_ERR_INVALID_JSON, &err, "fp of bad JSON");
    expect_error(ml_fingerprint(e, U8("search"), 6, U8("{}"), 2, NULL, &err), ML_ERR_NULL_ARG, &err, "fp NULL out");
    /* The session under the same engine takes the two calls as the same call. */
    ml_session *s = NULL;
    CHECK(ml_session_new_from_engine(e, &s, NULL) == ML_OK, "session");
    ml_verdict v = check(s, "search", a1);
    ml_verdict_clear(&v);
    v = check(s, "search", a2);
    CHECK(v.action == ML_ACTION_ALLOW && v.count == 1, "the session counted the call once before (count %u)", v.count);
    ml_verdict_clear(&v);
    ml_session_free(s);
    ml_engine_free(e);
}

/* A saved session loads under its policy only; bad bytes get their status and create nothing. */
static void snapshots(void) {
    ml_session *s = NULL;
    ml_error *err = NULL;
    CHECK(ml_session_new(U8("balanced"), 8, &s, NULL) == ML_OK, "session");
    ml_verdict v = check(s, "open_page", "{\"url\": \"x\"}");
    CHECK(ml_record_result(s, v.call_id, U8("CAPTCHA"), 7, false, NULL) == ML_OK, "record");
    ml_verdict_clear(&v);
    uint8_t *bytes = NULL;
    size_t len = 0;
    expect_error(ml_session_save(s, NULL, &len, &err), ML_ERR_NULL_ARG, &err, "save NULL bytes_out");
    expect_error(ml_session_save(NULL, &bytes, &len, &err), ML_ERR_NULL_ARG, &err, "save NULL session");
    CHECK(ml_session_save(s, &bytes, &len, NULL) == ML_OK && bytes && len > 16, "save");
    ml_session_free(s);

    ml_engine *balanced = NULL, *strict = NULL;
    CHECK(ml_engine_new(U8("balanced"), 8, &balanced, NULL) == ML_OK, "engine");
    CHECK(ml_engine_new(U8("strict"), 6, &strict, NULL) == ML_OK, "engine");
    ml_session *loaded = NULL;
    expect_error(ml_session_load(strict, bytes, len, 0, &loaded, &err), ML_ERR_POLICY_MISMATCH, &err, "another policy");
    CHECK(loaded == NULL, "session_out written on failure");
    CHECK(ml_session_load(strict, bytes, len, ML_LOAD_ANY_POLICY, &loaded, NULL) == ML_OK, "ML_LOAD_ANY_POLICY");
    ml_session_free(loaded);
    loaded = NULL;
    expect_error(ml_session_load(balanced, bytes, len, 2, &loaded, &err), ML_ERR_INVALID_ARG, &err, "unknown flag");
    expect_error(ml_session_load(balanced, bytes, len - 1, 0, &loaded, &err), ML_ERR_INVALID_SNAPSHOT, &err, "truncated");
    expect_error(ml_session_load(balanced, U8("GIF89a"), 6, 0, &loaded, &err), ML_ERR_INVALID_SNAPSHOT, &err, "foreign");
    expect_error(ml_session_load(balanced, NULL, 0, 0, &loaded, &err), ML_ERR_INVALID_SNAPSHOT, &err, "empty");
    expect_error(ml_session_load(balanced, NULL, 5, 0, &loaded, &err), ML_ERR_NULL_ARG, &err, "NULL with a length");
    uint8_t *copy = malloc(len);
    memcpy(copy, bytes, len);
    copy[len / 2] ^= 1;
    expect_error(ml_session_load(balanced, copy, len, 0, &loaded, &err), ML_ERR_INVALID_SNAPSHOT, &err, "corrupt");
    memcpy(copy, bytes, len);
    copy[4] = 99;
    expect_error(ml_session_load(balanced, copy, len, 0, &loaded, &err), ML_ERR_SNAPSHOT_VERSION, &err, "future version");
    free(copy);
    CHECK(loaded == NULL, "session_out written on failure");
    CHECK(ml_session_load(balanced, bytes, len, 0, &loaded, NULL) == ML_OK, "load");
    v = check(loaded, "open_page", "{\"url\": \"x\"}");
    CHECK(v.action == ML_ACTION_WARN, "the loaded session goes on (action %d)", v.action);
    ml_verdict_clear(&v);
    ml_session_free(loaded);
    ml_bytes_free(bytes, len);
    ml_bytes_free(NULL, 0);
    ml_engine_free(balanced);
    ml_engine_free(strict);
}

/* Threads share one engine: each makes its own session and runs the same loop to its block. */
#define THREADS 4
static void *engine_worker(void *arg) {
    ml_engine *e = arg;
    ml_session *s = NULL;
    intptr_t blocked_at = -1;
    if (ml_session_new_from_engine(e, &s, NULL) != ML_OK) return (void *)(intptr_t)-2;
    for (int i = 0; i < 4 && blocked_at < 0; i++) {
        ml_verdict v;
        memset(&v, 0, sizeof v);
        v.size = sizeof v;
        if (ml_check_call(s, U8("poll"), 4, U8("{\"job\": 7}"), 10, &v, NULL) != ML_OK) blocked_at = -3;
        else if (v.action >= ML_ACTION_BLOCK) blocked_at = i;
        else ml_record_result(s, v.call_id, U8("pending"), 7, false, NULL);
        ml_verdict_clear(&v);
    }
    ml_session_free(s);
    return (void *)blocked_at;
}

static void engine_shared_by_threads(void) {
    ml_engine *e = NULL;
    CHECK(ml_engine_new(U8("balanced"), 8, &e, NULL) == ML_OK, "engine");
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++) CHECK(pthread_create(&t[i], NULL, engine_worker, e) == 0, "pthread_create");
    for (int i = 0; i < THREADS; i++) {
        void *r = NULL;
        pthread_join(t[i], &r);
        /* balanced: the same answer twice is warned, the third try is blocked. */
        CHECK((intptr_t)r == 2, "thread %d: blocked at call %ld, want 2", i, (long)(intptr_t)r);
    }
    ml_engine_free(e);
}

/* [approval]: a token on every call that may run, none on a blocked one, a reason instead of a
 * token for arguments JCS cannot represent, and nothing written past an old-size verdict. */
static void approval_tokens(void) {
    char dir[] = "/tmp/ml-approval-XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    char key[64], policy[512];
    snprintf(key, sizeof key, "%s/approval.key", dir);
    FILE *f = fopen(key, "w");
    CHECK(f != NULL, "key file");
    if (!f) return;
    fputs("PRIVATE+KEY+approval-test+47b6c8a2+AQABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f\n", f);
    fclose(f);
    snprintf(policy, sizeof policy,
             "[loops]\nmax_identical = 2\n[approval]\nkey_file = \"%s\"\naudience = \"tools.test\"\nttl_seconds = 30\n", key);
    ml_session *s = NULL;
    ml_error *err = NULL;
    CHECK(ml_session_new(U8(policy), strlen(policy), &s, &err) == ML_OK, "session with [approval]: %s",
          err ? ml_error_message(err, NULL) : "");
    if (err) ml_error_free(err);
    if (!s) return;
    ml_verdict v = check(s, "search", "{\"q\": \"caf\\u00e9\", \"n\": 1.0}");
    CHECK(v.action == ML_ACTION_ALLOW, "allowed");
    CHECK(v.approval != NULL && v.approval_len == strlen(v.approval), "a token on an allowed call");
    CHECK(v.approval_error == NULL && v.approval_error_len == 0, "no reason with a token");
    if (v.approval) {
        const char *dot1 = strchr(v.approval, '.');
        CHECK(dot1 && strchr(dot1 + 1, '.') && strncmp(v.approval, "eyJ", 3) == 0, "a compact JWS: %s", v.approval);
    }
    ml_verdict_clear(&v);
    CHECK(v.approval == NULL && v.approval_len == 0, "ml_verdict_clear released the token");
    /* The same call again and again (its result recorded): a warned call runs, so it has a token
     * too; a blocked one has none. */
    int warned = 0, blocked = 0;
    for (int i = 0; i < 10 && !blocked; i++) {
        v = check(s, "search", "{\"q\": \"caf\\u00e9\", \"n\": 1.0}");
        if (v.action <= ML_ACTION_WARN) {
            CHECK(v.approval != NULL, "a call that may run (action %d) has a token", v.action);
            ml_record_result(s, v.call_id, U8("same"), 4, false, NULL);
        } else {
            CHECK(v.approval == NULL && v.approval_error == NULL, "no token for a blocked call");
        }
        warned += v.action == ML_ACTION_WARN;
        blocked += v.action >= ML_ACTION_BLOCK;
        ml_verdict_clear(&v);
    }
    CHECK(warned && blocked, "the loop was warned about (%d) and blocked (%d)", warned, blocked);
    v = check(s, "lookup", "{\"id\": 9007199254740993}");
    CHECK(v.action == ML_ACTION_ALLOW, "a huge integer is allowed by the checks");
    CHECK(v.approval == NULL, "no token over an integer JCS cannot represent");
    CHECK(v.approval_error != NULL && strstr(v.approval_error, "RFC 8785") != NULL, "the reason: %s",
          v.approval_error ? v.approval_error : "(null)");
    ml_verdict_clear(&v);
    v = check(s, "lookup", "{\"a\": 1, \"a\": 2}");
    CHECK(v.approval == NULL && v.approval_error != NULL, "no token over a duplicate key");
    ml_verdict_clear(&v);

    /* A caller compiled against the first ABI 2 header: its struct ends before `approval`. */
    union {
        ml_verdict v;
        unsigned char bytes[sizeof(ml_verdict)];
    } old;
    memset(&old, 0xab, sizeof old);
    old.v.size = offsetof(ml_verdict, approval);
    old.v.rule = NULL;
    old.v.message = NULL;
    CHECK(ml_check_call(s, U8("open"), 4, U8("{}"), 2, &old.v, NULL) == ML_OK, "an old-size verdict is accepted");
    CHECK(old.v.action == ML_ACTION_ALLOW, "old-size verdict filled");
    int untouched = 1;
    for (size_t i = offsetof(ml_verdict, approval); i < sizeof old; i++) untouched &= old.bytes[i] == 0xab;
    CHECK(untouched, "written past the caller's size");
    ml_verdict_clear(&old.v);
    ml_session_free(s);

    /* A key that cannot be read is an error when the policy is loaded, naming the entry. */
    const char *missing = "[approval]\nkey_file = \"/nonexistent/approval.key\"\naudience = \"a\"\n";
    err = NULL;
    s = NULL;
    ml_status rc = ml_session_new(U8(missing), strlen(missing), &s, &err);
    CHECK(rc == ML_ERR_INVALID_POLICY && s == NULL, "a missing key: %d", rc);
    if (err) {
        CHECK(strcmp(ml_error_path(err, NULL), "approval.key_file") == 0, "path %s", ml_error_path(err, NULL));
        ml_error_free(err);
    }
    unlink(key);
    rmdir(dir);
}

int main(void) {
    versions();
    loop_scenario();
    bad_inputs();
    old_stats_size();
    observe_mode();
    engines();
    fingerprint_ignore_fields();
    engine_shared_by_threads();
    snapshots();
    approval_tokens();
    printf("%d passed, %d failed\n", checks - failures, failures);
    return failures ? 1 : 0;
}
