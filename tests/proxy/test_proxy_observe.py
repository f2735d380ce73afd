"""Shadow mode in the proxy (`--observe`, or a policy's mode = "observe"), with the official `openai`
and `anthropic` clients in front of a scripted upstream that keeps proposing the same call.

Every call reaches the tool (no re-ask, no stopped turn), every verdict and result is in the log,
`/metrics` counts the would-be blocks, and `microloop replay` reads the log and finds, under the same
policy, the verdicts the proxy logged.
"""
import json
import os
import subprocess
import urllib.request

import anthropic
import openai
import pytest

import harness
from harness import script, seen
from test_proxy_clients import an_tool_stream, oa_text_answer, oa_tool_answer, oa_tool_stream, run_openai_agent

# The `microloop` command of the package's virtualenv (make test-proxy passes it).
MICROLOOP = os.environ.get("MICROLOOP_CLI", str(harness.ROOT / ".venv/bin/microloop"))
LOOPS = 6  # the same read, answered the same: balanced warns on the 2nd and would block from the 3rd


def oa_text_stream(text):
    def chunk(delta, finish=None):
        return "data: " + json.dumps({"id": "chatcmpl-t", "object": "chat.completion.chunk", "created": 1, "model": "m",
                                      "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}) + "\n\n"
    return {"sse": [chunk({"role": "assistant", "content": text}), chunk({}, "stop"), "data: [DONE]\n\n"]}


def an_text_stream(text):
    ev = harness.sse_event
    return {"sse": [
        ev({"type": "message_start", "message": {"id": "msg_t", "type": "message", "role": "assistant", "model": "m", "content": [],
                                                  "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 10, "output_tokens": 1}}}),
        ev({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ev({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}}),
        ev({"type": "content_block_stop", "index": 0}),
        ev({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None}, "usage": {"output_tokens": 2}}),
        ev({"type": "message_stop"})]}


def read_log(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def metric(proxy, name):
    text = urllib.request.urlopen(f"{proxy}/metrics").read().decode()
    return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name)}


@pytest.mark.parametrize("how", ["flag", "policy"])
@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_openai_every_call_runs_and_every_verdict_is_logged_and_counted(tmp_path, stream, how):
    log = str(tmp_path / "observe.jsonl")
    if how == "flag":
        args = ["--observe", "--observe-log", log]
    else:
        policy = tmp_path / "shadow.toml"
        policy.write_text('mode = "observe"\npreset = "balanced"\n')
        args = ["--policy", str(policy), "--observe-log", log]
    tool = oa_tool_stream if stream else oa_tool_answer
    with harness.stack(*args) as (upstream, proxy):
        script(upstream, [tool(n) for n in range(1, LOOPS + 1)] + [(oa_text_stream if stream else oa_text_answer)("done")])
        client = openai.OpenAI(base_url=f"{proxy}/v1", api_key="sk-test", max_retries=0)
        ran, text, finish = run_openai_agent(client, stream, max_turns=LOOPS + 2)
        assert len(ran) == LOOPS, "shadow mode runs every call the model makes"
        assert text.endswith("done") and finish == "stop"
        reqs = seen(upstream)
        assert len(reqs) == LOOPS + 1, "no re-ask"
        assert not any("[microloop]" in json.dumps(r["body"]) for r in reqs), "the model reads nothing from MicroLoop"
        observed = metric(proxy, "microloop_proxy_observed")
    lines = read_log(log)
    checks = [d for d in lines if d["event"] == "check"]
    records = [d for d in lines if d["event"] == "record"]
    assert [d["call"] for d in checks] == [f"call_{n}" for n in range(1, LOOPS + 1)]
    assert [d["call"] for d in records] == [f"call_{n}" for n in range(1, LOOPS + 1)], "every call ran, so every result is recorded"
    assert all(d["output"] == "Please solve the CAPTCHA" for d in records)
    assert len({d["session"] for d in lines}) == 1, "one conversation, one session"
    actions = [d["action"] for d in checks]
    assert actions[:3] == ["allow", "warn", "block"], actions
    blocks = [d for d in checks if d["action"] in ("block", "halt")]
    assert blocks and all(d["rule"] and d["message"] for d in blocks)
    assert observed["microloop_proxy_observed_calls_total"] == LOOPS
    by_rule = {k: v for k, v in observed.items() if k.startswith("microloop_proxy_observed_total{")}
    assert sum(by_rule.values()) == sum(a != "allow" for a in actions)
    assert by_rule[f'microloop_proxy_observed_total{{action="block",rule="{blocks[0]["rule"]}"}}'] >= 1

    # microloop replay reads the log; under the same policy in observe mode it finds the logged verdicts.
    policy = tmp_path / "replay.toml"
    policy.write_text('mode = "observe"\n')
    out = subprocess.run([MICROLOOP, "replay", "--json", "--policy", str(policy), log], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    runs = json.loads(out.stdout)["runs"]
    assert len(runs) == 1 and runs[0]["format"] == "microloop-observe"
    assert [s["action"] for s in runs[0]["steps"]] == actions


def test_anthropic_stream_in_observe_mode_is_passed_whole(tmp_path):
    log = str(tmp_path / "observe.jsonl")
    with harness.stack("--observe", "--observe-log", log) as (upstream, proxy):
        script(upstream, [an_tool_stream(n) for n in range(1, LOOPS + 1)] + [an_text_stream("done")])
        client = anthropic.Anthropic(base_url=proxy, api_key="sk-ant-test", max_retries=0)
        messages = [{"role": "user", "content": "Summarise a.txt"}]
        ran = 0
        for _ in range(LOOPS + 2):
            with client.messages.stream(model="m", max_tokens=100, messages=messages,
                                        tools=[{"name": "read_file", "input_schema": {"type": "object"}}]) as s:
                msg = s.get_final_message()
            uses = [b for b in msg.content if b.type == "tool_use"]
            if not uses:
                break
            messages.append({"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in msg.content]})
            messages.append({"role": "user", "content": [{"type": "tool_result", "tool_use_id": u.id, "content": "Please solve the CAPTCHA"} for u in uses]})
            ran += len(uses)
        assert ran == LOOPS
        assert len(seen(upstream)) == LOOPS + 1
    checks = [d for d in read_log(log) if d["event"] == "check"]
    assert len(checks) == LOOPS and any(d["action"] in ("block", "halt") for d in checks)
    assert sum(d["event"] == "record" for d in read_log(log)) == LOOPS
