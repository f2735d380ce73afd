/* The workload of native/ffi/examples/check_profile.rs (and benches/check_call.rs), driven through a
 * built libmicroloop.so from C: instruction counts of the library a wheel ships (stripped, cargo's
 * `dist` profile), where check_profile needs a build with symbols. `make bench-wheel-check` links it
 * and counts `ml_check_call` + `ml_record_result` with callgrind on two libraries in the same run.
 *
 *   check_so [rules]      (MICROLOOP_PROFILE_CALLS checks after a 256-call warm-up, default 10,000)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "microloop.h"

/* workload.rs rules_policy(): 20 argument rules on the benchmark's tool, all passing. */
static const char RULES[] =
    "{\"tools\":[{\"name\":\"search_flights\",\"rules\":["
    "{\"field\":\"/query\",\"require_regex\":\"^flights from [A-Z]{3} to [A-Z]{3}\"},"
    "{\"deny_regex\":\"(?i)\\\\b(drop|delete)\\\\b\",\"field\":\"/query\"},"
    "{\"deny_regex\":\"(?i)password|secret\",\"field\":\"/note\"},"
    "{\"allow_values\":[\"UA\",\"AA\",\"DL\"],\"field\":\"/filters/airline\"},"
    "{\"allow_values\":[\"economy\",\"business\"],\"field\":\"/filters/cabin\"},"
    "{\"deny_values\":[3,4],\"field\":\"/filters/stops\"},"
    "{\"deny_values\":[\"XX\"],\"field\":\"/filters/airline\"},"
    "{\"deny_values\":[0],\"field\":\"/max_results\"},"
    "{\"allow_values\":[10,11,12,13,14,15,16,20,25],\"field\":\"/max_results\"},"
    "{\"deny_values\":[\"first\"],\"field\":\"/filters/cabin\"},"
    "{\"equals\":\"USD\",\"field\":\"/currency\",\"optional\":true},"
    "{\"allow_values\":[0,1,2],\"field\":\"/filters/stops\"},"
    "{\"deny_values\":[-1],\"field\":\"/page\"},"
    "{\"equals\":false,\"field\":\"/debug\",\"optional\":true},"
    "{\"deny_values\":[\"ZZ\",\"YY\"],\"field\":\"/filters/airline\"},"
    "{\"allow_values\":[\"search\"],\"field\":\"/mode\",\"optional\":true},"
    "{\"deny_values\":[\"DROP\"],\"field\":\"/note\"},"
    "{\"equals\":\"economy\",\"field\":\"/filters/cabin\"},"
    "{\"deny_values\":[\"\"],\"field\":\"/query\"}],"
    "\"schema\":{\"properties\":{\"filters\":{\"type\":\"object\"},"
    "\"max_results\":{\"maximum\":50,\"minimum\":1,\"type\":\"integer\"},"
    "\"note\":{\"type\":\"string\"},\"page\":{\"minimum\":0,\"type\":\"integer\"},"
    "\"query\":{\"maxLength\":200,\"type\":\"string\"}},\"required\":[\"query\"],\"type\":\"object\"}}]}";

static const char TOOL[] = "search_flights";
static const char RESULT[] =
    "[{\"flight\":\"UA100\",\"departs\":\"08:00\",\"price\":420},{\"flight\":\"UA200\",\"departs\":\"12:30\","
    "\"price\":380},{\"flight\":\"UA300\",\"departs\":\"18:45\",\"price\":455}] 3 results in 120ms";

/* workload.rs args(i): 256 bytes of arguments, the i-th of 300 variants. */
static void args(size_t i, char out[256]) {
    int n = snprintf(out, 256,
                     "{\"query\":\"flights from SFO to JFK on 2024-05-%02zu\",\"max_results\":%zu,"
                     "\"filters\":{\"airline\":\"UA\",\"cabin\":\"economy\",\"stops\":[0,1]},\"page\":%zu,\"note\":\"",
                     1 + i % 28, 10 + i % 7, i);
    memset(out + n, 'x', 254 - (size_t)n);
    out[254] = '"';
    out[255] = '}';
}

static void fail(const char *what, ml_error *err) {
    size_t len = 0;
    fprintf(stderr, "check_so: %s: %s\n", what, err ? ml_error_message(err, &len) : "?");
    exit(1);
}

int main(int argc, char **argv) {
    const char *policy = argc > 1 && strcmp(argv[1], "rules") == 0 ? RULES : "balanced";
    const char *env = getenv("MICROLOOP_PROFILE_CALLS");
    size_t calls = env ? strtoul(env, NULL, 10) : 10000;
    static char variants[300][256];
    for (size_t i = 0; i < 300; i++) args(i, variants[i]);
    ml_session *s = NULL;
    ml_error *err = NULL;
    if (ml_session_new((const uint8_t *)policy, strlen(policy), &s, &err) != ML_OK) fail("ml_session_new", err);
    size_t actions[4] = {0};
    for (size_t i = 0; i < 256 + calls; i++) {
        ml_verdict v;
        memset(&v, 0, sizeof v);
        v.size = sizeof v;
        if (ml_check_call(s, (const uint8_t *)TOOL, sizeof TOOL - 1, (const uint8_t *)variants[i % 300], 256, &v, &err) != ML_OK)
            fail("ml_check_call", err);
        if (v.call_id != 0) ml_record_result(s, v.call_id, (const uint8_t *)RESULT, sizeof RESULT - 1, false, NULL);
        if (i >= 256 && v.action >= 0 && v.action < 4) actions[v.action]++;
        ml_verdict_clear(&v);
    }
    printf("%zu checks after a 256-call warm-up; actions allow/warn/block/halt: [%zu, %zu, %zu, %zu]\n", calls,
           actions[0], actions[1], actions[2], actions[3]);
    ml_session_free(s);
    return 0;
}
