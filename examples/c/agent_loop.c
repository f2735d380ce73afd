/* A small agent loop in C: a scripted "model" asks for tool calls, MicroLoop checks each one
 * before it runs, and a blocked call's message goes back to the model in place of a result, so
 * it can change course. Built against an installed MicroLoop through pkg-config:
 *
 *     make install PREFIX=$HOME/.local
 *     PKG_CONFIG_PATH=$HOME/.local/lib/pkgconfig make -C examples/c run
 *
 * Exits 0 when the run went as it should: the loop was blocked and the agent still finished. */
#include <stdio.h>
#include <string.h>

#include <microloop.h>

#define U8(s) ((const uint8_t *)(s))

/* The tools: fake, deterministic. The page is stuck behind a CAPTCHA; the price index works. */
static const char *run_tool(const char *tool, const char *args, bool *failed) {
    *failed = false;
    if (strcmp(tool, "open_page") == 0)
        return "Please verify you are human: solve the CAPTCHA to continue.";
    if (strcmp(tool, "search") == 0 && strstr(args, "price"))
        return "Item 42: $19.99 (via a price index)";
    *failed = true;
    return "no such tool";
}

/* The model: keeps opening the page until told it is looping, then searches, then answers. */
struct call {
    const char *tool, *args;
};

static struct call next_call(int turn, const char *feedback, bool *done) {
    static bool pivoted = false;
    *done = false;
    if (feedback && strstr(feedback, "CAPTCHA") == NULL && !pivoted) /* a MicroLoop message */
        pivoted = true;
    if (!pivoted)
        return (struct call){"open_page", "{\"url\": \"https://shop.example/item/42\"}"};
    if (feedback && strstr(feedback, "$19.99"))
        *done = true;
    (void)turn;
    return (struct call){"search", "{\"q\": \"shop.example item 42 price\"}"};
}

static int fail(const char *what, ml_error *err) {
    fprintf(stderr, "%s: %s\n", what, ml_error_message(err, NULL));
    ml_error_free(err);
    return 1;
}

int main(void) {
    printf("MicroLoop %s\n", ml_version_string());
    if (ml_version_number() / 100 != ML_VERSION_NUMBER / 100) {
        fprintf(stderr, "header %s, library %s: rebuild against the installed header\n", ML_VERSION_STRING, ml_version_string());
        return 1;
    }
    ml_session *s = NULL;
    ml_error *err = NULL;
    const char *policy = "{\"preset\": \"balanced\", \"budget\": {\"max_calls\": 20}}";
    if (ml_session_new(U8(policy), strlen(policy), &s, &err) != ML_OK)
        return fail("policy refused", err);
    const char *tools = "[\"open_page\", \"search\"]";
    if (ml_session_set_tools(s, U8(tools), strlen(tools), &err) != ML_OK)
        return fail("set_tools", err);

    const char *feedback = NULL; /* what the model saw last: a tool result or MicroLoop's message */
    char message[512];
    int blocked = 0, finished = 0;
    for (int turn = 1; turn <= 10 && !finished; turn++) {
        bool done;
        struct call c = next_call(turn, feedback, &done);
        if (done) {
            printf("%2d. model answers: %s\n", turn, feedback);
            finished = 1;
            break;
        }
        ml_verdict v = {.size = sizeof v};
        if (ml_check_call(s, U8(c.tool), strlen(c.tool), U8(c.args), strlen(c.args), &v, &err) != ML_OK)
            return fail("check", err);
        if (v.action <= ML_ACTION_WARN) {
            bool failed;
            feedback = run_tool(c.tool, c.args, &failed);
            if (ml_record_result(s, v.call_id, U8(feedback), strlen(feedback), failed, &err) != ML_OK)
                return fail("record", err);
            printf("%2d. %-5s %s %s -> %s\n", turn, v.action == ML_ACTION_WARN ? "warn" : "run", c.tool, c.args, feedback);
            if (v.message)
                printf("      warning [%s]: %s\n", v.rule, v.message);
        } else {
            snprintf(message, sizeof message, "%s", v.message);
            feedback = message;
            blocked++;
            printf("%2d. %-5s %s %s\n      [%s] %s\n", turn, v.action == ML_ACTION_HALT ? "HALT" : "BLOCK", c.tool, c.args, v.rule, v.message);
            if (v.action == ML_ACTION_HALT) {
                ml_verdict_clear(&v);
                break;
            }
        }
        ml_verdict_clear(&v);
    }
    ml_stats st = {.size = sizeof st};
    if (ml_session_stats(s, &st, &err) != ML_OK)
        return fail("stats", err);
    printf("calls run: %llu, blocked: %llu\n", (unsigned long long)st.calls, (unsigned long long)st.blocked);
    ml_session_free(s);
    return blocked > 0 && finished ? 0 : 1;
}
