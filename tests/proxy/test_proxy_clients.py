"""The proxy with the official `openai` and `anthropic` clients, in front of a scripted upstream.

A scripted agent loop runs tools for real; the upstream keeps proposing the same call. The proxy
must keep the looping call from ever reaching the tool, re-ask the upstream, and stay parseable.
"""
import json
import urllib.request

import anthropic
import openai
import pytest

import harness
from harness import script, seen


@pytest.fixture(scope="module")
def stack():
    with harness.stack() as s:
        yield s


# --- OpenAI ---------------------------------------------------------------------------------------

TOOLS = [{"type": "function", "function": {"name": "read_file", "parameters": {"type": "object", "properties": {"path": {"type": "string"}}}}}]


def oa_tool_answer(n):
    return {"body": {"id": f"chatcmpl-{n}", "object": "chat.completion", "created": 1, "model": "m",
                     "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant", "content": None,
                                  "tool_calls": [{"id": f"call_{n}", "type": "function", "function": {"name": "read_file", "arguments": "{\"path\": \"a.txt\"}"}}]}}],
                     "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}}}


def oa_text_answer(text):
    return {"body": {"id": "chatcmpl-t", "object": "chat.completion", "created": 1, "model": "m",
                     "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}],
                     "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}}}


def oa_tool_stream(n):
    def chunk(delta, finish=None):
        return "data: " + json.dumps({"id": f"chatcmpl-{n}", "object": "chat.completion.chunk", "created": 1, "model": "m",
                                      "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}) + "\n\n"
    return {"sse": [chunk({"role": "assistant", "content": "Let me look. "}),
                    chunk({"tool_calls": [{"index": 0, "id": f"call_{n}", "type": "function", "function": {"name": "read_file", "arguments": ""}}]}),
                    chunk({"tool_calls": [{"index": 0, "function": {"arguments": "{\"path\": "}}]}),
                    chunk({"tool_calls": [{"index": 0, "function": {"arguments": "\"a.txt\"}"}}]}),
                    chunk({}, "tool_calls"), "data: [DONE]\n\n"]}


def run_openai_agent(client, stream, max_turns=8):
    """A minimal agent: call the model, run the tools it asks for, until it answers in text."""
    ran = []
    messages = [{"role": "user", "content": "Summarise a.txt"}]
    for _ in range(max_turns):
        if stream:
            text, calls, finish = "", {}, None
            for chunk in client.chat.completions.create(model="m", messages=messages, tools=TOOLS, stream=True):
                for choice in chunk.choices:
                    text += choice.delta.content or ""
                    for tc in choice.delta.tool_calls or []:
                        c = calls.setdefault(tc.index, {"id": "", "name": "", "arguments": ""})
                        c["id"] += tc.id or ""
                        c["name"] += (tc.function.name or "") if tc.function else ""
                        c["arguments"] += (tc.function.arguments or "") if tc.function else ""
                    finish = choice.finish_reason or finish
            calls = [{"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}} for c in calls.values()]
        else:
            r = client.chat.completions.create(model="m", messages=messages, tools=TOOLS)
            m = r.choices[0].message
            text, finish = m.content or "", r.choices[0].finish_reason
            calls = [{"id": c.id, "type": "function", "function": {"name": c.function.name, "arguments": c.function.arguments}} for c in m.tool_calls or []]
        if not calls:
            return ran, text, finish
        messages.append({"role": "assistant", "content": text or None, "tool_calls": calls})
        for c in calls:
            ran.append(json.loads(c["function"]["arguments"]))
            messages.append({"role": "tool", "tool_call_id": c["id"], "content": "Please solve the CAPTCHA"})
    raise AssertionError("the agent never stopped")


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_openai_looping_call_never_reaches_the_tool_and_the_model_is_reasked(stack, stream):
    upstream, proxy = stack
    tool = oa_tool_stream if stream else oa_tool_answer
    script(upstream, [tool(1), tool(2), tool(3), oa_text_answer("The file is behind a CAPTCHA; I stop here.")])
    client = openai.OpenAI(base_url=f"{proxy}/v1", api_key="sk-test", max_retries=0)
    ran, text, finish = run_openai_agent(client, stream)
    assert len(ran) == 2, "the third identical read returning the same page never runs"
    assert text.endswith("The file is behind a CAPTCHA; I stop here.") and finish == "stop"
    reqs = seen(upstream)
    assert len(reqs) == 4
    reask = reqs[3]["body"]["messages"]
    assert reask[-2]["tool_calls"][0]["id"] == "call_3"
    assert reask[-1]["tool_call_id"] == "call_3" and reask[-1]["content"].startswith("[microloop] ")
    assert all(r["has_auth"] for r in reqs)


def test_openai_plain_traffic_is_unchanged(stack):
    upstream, proxy = stack
    answer = oa_text_answer("hello")
    script(upstream, [answer, {"body": {"object": "list", "data": [{"id": "m", "object": "model"}]}}])
    client = openai.OpenAI(base_url=f"{proxy}/v1", api_key="sk-test", max_retries=0)
    raw = client.chat.completions.with_raw_response.create(model="m", messages=[{"role": "user", "content": "hi"}])
    assert raw.parse().model_dump(exclude_none=True) == openai.types.chat.ChatCompletion(**answer["body"]).model_dump(exclude_none=True)
    assert raw.headers["x-microloop-action"] == "allow"
    assert [m.id for m in client.models.list()] == ["m"]
    assert seen(upstream)[1]["path"] == "/v1/models"


# --- Anthropic ------------------------------------------------------------------------------------

A_TOOLS = [{"name": "read_file", "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}}}]


def an_tool_stream(n):
    ev = harness.sse_event
    return {"sse": [
        ev({"type": "message_start", "message": {"id": f"msg_{n}", "type": "message", "role": "assistant", "model": "m", "content": [],
                                                  "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 10, "output_tokens": 1}}}),
        ev({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ev({"type": "ping"}),
        ev({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Reading it."}}),
        ev({"type": "content_block_stop", "index": 0}),
        ev({"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": f"toolu_{n}", "name": "read_file", "input": {}}}),
        ev({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "{\"path\": "}}),
        ev({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "\"a.txt\"}"}}),
        ev({"type": "content_block_stop", "index": 1}),
        ev({"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": None}, "usage": {"output_tokens": 20}}),
        ev({"type": "message_stop"})]}


def an_text_answer(text):
    return {"body": {"id": "msg_t", "type": "message", "role": "assistant", "model": "m", "content": [{"type": "text", "text": text}],
                     "stop_reason": "end_turn", "stop_sequence": None, "usage": {"input_tokens": 30, "output_tokens": 7}}}


def test_anthropic_stream_keeps_block_indexes_and_one_message(stack):
    upstream, proxy = stack
    script(upstream, [an_tool_stream(1), an_tool_stream(2), an_tool_stream(3), an_text_answer("Blocked page; stopping.")])
    client = anthropic.Anthropic(base_url=proxy, api_key="sk-ant-test", max_retries=0)
    ran = []
    messages = [{"role": "user", "content": "Summarise a.txt"}]
    for _ in range(8):
        with client.messages.stream(model="m", max_tokens=100, messages=messages, tools=A_TOOLS) as s:
            events = [e.type for e in s]
            final = s.get_final_message()
        assert events.count("message_start") == 1
        uses = [b for b in final.content if b.type == "tool_use"]
        if not uses:
            break
        messages.append({"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in final.content]})
        results = []
        for u in uses:
            ran.append(u.input)
            results.append({"type": "tool_result", "tool_use_id": u.id, "content": "Please solve the CAPTCHA"})
        messages.append({"role": "user", "content": results})
    assert ran == [{"path": "a.txt"}, {"path": "a.txt"}]
    assert [b.type for b in final.content] == ["text", "text"]
    assert final.content[0].text == "Reading it." and final.content[1].text == "Blocked page; stopping."
    assert final.stop_reason == "end_turn"
    reqs = seen(upstream)
    assert len(reqs) == 4 and reqs[3]["body"]["stream"] is True, "a client that streams gets a streamed re-ask"
    last = reqs[3]["body"]["messages"][-1]["content"][0]
    assert last["tool_use_id"] == "toolu_3" and last["is_error"] is True and last["content"].startswith("[microloop] ")
    versions = {r["anthropic-version"] for r in reqs}
    assert len(versions) == 1 and None not in versions, versions  # forwarded as the client sent it


def test_anthropic_count_tokens_passes_through(stack):
    upstream, proxy = stack
    script(upstream, [{"body": {"input_tokens": 42}}])
    client = anthropic.Anthropic(base_url=proxy, api_key="sk-ant-test", max_retries=0)
    r = client.messages.count_tokens(model="m", messages=[{"role": "user", "content": "hi"}])
    assert r.input_tokens == 42
    assert seen(upstream)[0]["path"] == "/v1/messages/count_tokens"


def test_metrics_count_blocks_by_rule(stack):
    _, proxy = stack
    text = urllib.request.urlopen(f"{proxy}/metrics").read().decode()
    assert 'microloop_proxy_blocks_total{rule="loop.no_progress"}' in text
    assert "microloop_proxy_upstream_seconds_count" in text
