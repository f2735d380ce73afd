/* make demo: a scripted agent falls into two classic loops, and MicroLoop stops each one. */
#include <stdio.h>
#include <string.h>

#include "microloop.h"

#define U8(s) ((const uint8_t *)(s))

struct step {
    const char *tool, *args, *result;
    bool error;
};

static void run(const char *title, const struct step *steps, size_t n) {
    ml_session *s = NULL;
    ml_error *err = NULL;
    if (ml_session_new(U8("balanced"), 8, &s, &err) != ML_OK) {
        fprintf(stderr, "policy refused: %s\n", ml_error_message(err, NULL));
        ml_error_free(err);
        return;
    }
    printf("\n== %s ==\n", title);
    for (size_t i = 0; i < n; i++) {
        ml_verdict v = {.size = sizeof v};
        if (ml_check_call(s, U8(steps[i].tool), strlen(steps[i].tool), U8(steps[i].args), strlen(steps[i].args), &v, &err) != ML_OK) {
            printf("  error: %s\n", ml_error_message(err, NULL));
            ml_error_free(err);
            err = NULL;
            continue;
        }
        static const char *names[] = {"allow", "WARN ", "BLOCK", "HALT "};
        printf("  %2zu. %-5s %s %s\n", i + 1, names[v.action], steps[i].tool, steps[i].args);
        if (v.action <= ML_ACTION_WARN) {
            printf("        -> %s\n", steps[i].result);
            ml_record_result(s, v.call_id, U8(steps[i].result), strlen(steps[i].result), steps[i].error, NULL);
        }
        if (v.message)
            printf("        [%s] %s\n", v.rule, v.message);
        int stop = v.action == ML_ACTION_HALT;
        ml_verdict_clear(&v);
        if (stop)
            break;
    }
    ml_session_free(s);
}

int main(void) {
    const char *captcha = "Please verify you are human: solve the CAPTCHA to continue.";
    const struct step browser[] = {
        {"open_page", "{\"url\": \"https://shop.example/item/42\"}", captcha, false},
        {"screenshot", "{}", "<png: a CAPTCHA box>", false},
        {"open_page", "{\"url\": \"https://shop.example/item/42\"}", captcha, false},
        {"screenshot", "{}", "<png: a CAPTCHA box>", false},
        {"open_page", "{\"url\": \"https://shop.example/item/42\"}", captcha, false},
        {"search", "{\"q\": \"shop.example item 42 price\"}", "Item 42: $19.99 (via a price index)", false},
    };
    const char *failure = "FAILED tests/test_dates.py::test_parse - ValueError: unconverted data remains: Z\n1 failed, 41 passed in 1.20s";
    const struct step coder[] = {
        {"bash", "{\"command\": \"pytest tests/test_dates.py\"}", failure, true},
        {"bash", "{\"command\": \"cat src/dates.py\"}", "def parse(s): return datetime.strptime(s, FMT)", false},
        {"bash", "{\"command\": \"pytest tests/test_dates.py\"}", failure, true},
        {"bash", "{\"command\": \"grep -n FMT src/dates.py\"}", "3:FMT = '%Y-%m-%dT%H:%M:%S'", false},
        {"bash", "{\"command\": \"pytest tests/test_dates.py\"}", failure, true},
        {"bash", "{\"command\": \"sed -i 's/%S/%SZ/' src/dates.py\"}", "", false},
        {"bash", "{\"command\": \"pytest tests/test_dates.py\"}", "42 passed in 1.31s", false},
    };
    printf("MicroLoop %s: every tool call is checked before it runs.\n", ml_version_string());
    run("A browser agent behind a CAPTCHA", browser, sizeof browser / sizeof *browser);
    run("A coding agent re-running a failing test", coder, sizeof coder / sizeof *coder);
    return 0;
}
