"""The OpenAI Responses API through the proxy: the official `openai` client (`responses.create`,
plain and streamed), the OpenAI Agents SDK with its default (Responses) model, `previous_response_id`
conversations, and a broken upstream stream. The upstream is scripted; the tools run for real.
"""
import asyncio
import json

import openai
import pytest

import harness
from harness import script, seen

TOOLS = [{"type": "function", "name": "read_file", "parameters": {"type": "object", "properties": {"path": {"type": "string"}}}}]
ev = harness.sse_event


@pytest.fixture(scope="module")
def stack():
    with harness.stack() as s:
        yield s


def call_item(n):
    return {"type": "function_call", "id": f"fc_{n}", "call_id": f"call_{n}", "name": "read_file",
            "arguments": "{\"path\": \"a.txt\"}", "status": "completed"}


def response(n, output):
    return {"id": f"resp_{n}", "object": "response", "created_at": 1, "status": "completed", "model": "m",
            "output": output, "parallel_tool_calls": True, "tool_choice": "auto", "tools": [],
            "usage": {"input_tokens": 10, "output_tokens": 5, "total_tokens": 15,
                      "input_tokens_details": {"cached_tokens": 0}, "output_tokens_details": {"reasoning_tokens": 0}}}


def text_item(text, n="t"):
    return {"type": "message", "id": f"msg_{n}", "status": "completed", "role": "assistant",
            "content": [{"type": "output_text", "text": text, "annotations": []}]}


def tool_answer(n):
    return {"body": response(n, [call_item(n)])}


def text_answer(text, n="t"):
    return {"body": response(n, [text_item(text, n)])}


def tool_stream(n):
    """A streamed answer: a line of text, then the call."""
    item = call_item(n)
    seq = iter(range(100))
    head = dict(response(n, []), status="in_progress")
    events = [
        {"type": "response.created", "response": head},
        {"type": "response.in_progress", "response": head},
        {"type": "response.output_item.added", "output_index": 0, "item": dict(text_item("", n), status="in_progress", content=[])},
        {"type": "response.content_part.added", "item_id": f"msg_{n}", "output_index": 0, "content_index": 0,
         "part": {"type": "output_text", "text": "", "annotations": []}},
        {"type": "response.output_text.delta", "item_id": f"msg_{n}", "output_index": 0, "content_index": 0, "delta": "Reading it.", "logprobs": []},
        {"type": "response.output_text.done", "item_id": f"msg_{n}", "output_index": 0, "content_index": 0, "text": "Reading it.", "logprobs": []},
        {"type": "response.content_part.done", "item_id": f"msg_{n}", "output_index": 0, "content_index": 0,
         "part": {"type": "output_text", "text": "Reading it.", "annotations": []}},
        {"type": "response.output_item.done", "output_index": 0, "item": text_item("Reading it.", n)},
        {"type": "response.output_item.added", "output_index": 1, "item": dict(item, arguments="", status="in_progress")},
        {"type": "response.function_call_arguments.delta", "item_id": f"fc_{n}", "output_index": 1, "delta": "{\"path\": "},
        {"type": "response.function_call_arguments.delta", "item_id": f"fc_{n}", "output_index": 1, "delta": "\"a.txt\"}"},
        {"type": "response.function_call_arguments.done", "item_id": f"fc_{n}", "output_index": 1, "arguments": item["arguments"], "name": "read_file"},
        {"type": "response.output_item.done", "output_index": 1, "item": item},
        {"type": "response.completed", "response": response(n, [text_item("Reading it.", n), item])},
    ]
    return {"sse": [ev(dict(e, sequence_number=next(seq))) for e in events]}


def run_agent(client, stream, chain=False, max_turns=8):
    """A minimal Responses agent: run the function calls until the model answers in text. With
    `chain`, each request carries only its new items and `previous_response_id`."""
    ran, events = [], []
    items = [{"role": "user", "content": "Summarise a.txt"}]
    new, prev = list(items), None
    for _ in range(max_turns):
        kw = {"model": "m", "tools": TOOLS, "input": new if chain else items}
        if chain and prev:
            kw["previous_response_id"] = prev
        if stream:
            r = None
            for e in client.responses.create(stream=True, **kw):
                events.append(e)
                if e.type == "response.completed":
                    r = e.response
        else:
            r = client.responses.create(**kw)
        prev = r.id
        calls = [o for o in r.output if o.type == "function_call"]
        if not calls:
            return ran, r, events
        new = []
        for o in r.output:
            if o.type == "function_call":
                new.append({"type": "function_call", "call_id": o.call_id, "name": o.name, "arguments": o.arguments})
        for c in calls:
            ran.append(json.loads(c.arguments))
            new.append({"type": "function_call_output", "call_id": c.call_id, "output": "Please solve the CAPTCHA"})
        items += new
    raise AssertionError("the agent never stopped")


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_the_looping_call_never_reaches_the_tool_and_the_model_is_reasked(stack, stream):
    upstream, proxy = stack
    tool = tool_stream if stream else tool_answer
    script(upstream, [tool(1), tool(2), tool(3), text_answer("The file is behind a CAPTCHA; I stop here.", 4)])
    client = openai.OpenAI(base_url=f"{proxy}/v1", api_key="sk-test", max_retries=0)
    ran, final, events = run_agent(client, stream)
    assert ran == [{"path": "a.txt"}] * 2, "the third identical read returning the same page never runs"
    assert final.output_text.endswith("The file is behind a CAPTCHA; I stop here.")
    reqs = seen(upstream)
    assert len(reqs) == 4
    reask = reqs[3]["body"]
    assert reask["stream"] is stream
    assert reask["input"][-2]["call_id"] == "call_3" and reask["input"][-2]["type"] == "function_call"
    assert reask["input"][-1]["type"] == "function_call_output" and reask["input"][-1]["call_id"] == "call_3"
    assert reask["input"][-1]["output"].startswith("[microloop] ")
    if stream:
        last = [e for e in events if e.sequence_number is not None]
        # The last turn's events: one response.completed, sequence numbers increasing, no call.
        turn = events[max(i for i, e in enumerate(events) if e.type == "response.created"):]
        seqs = [e.sequence_number for e in turn]
        assert seqs == sorted(set(seqs)), seqs
        assert [e.type for e in turn].count("response.completed") == 1 and turn[-1].type == "response.completed"
        assert not any(e.type.startswith("response.function_call") for e in turn)
        assert final.id == "resp_4" and last


def test_refuse_ends_the_streamed_turn_with_a_message_item(stack):
    upstream, _ = stack
    with harness.proxy(upstream, "--on-block", "refuse") as proxy:
        script(upstream, [tool_stream(1), tool_stream(2), tool_stream(3)])
        client = openai.OpenAI(base_url=f"{proxy}/v1", api_key="sk-test", max_retries=0)
        ran, final, events = run_agent(client, True)
    assert len(ran) == 2
    assert [o.type for o in final.output] == ["message", "message"]
    assert final.output[0].content[0].text == "Reading it."
    assert final.output[1].content[0].text.startswith("[microloop] ")
    assert final.status == "completed" and final.usage.total_tokens == 15
    assert len(seen(upstream)) == 3


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_a_previous_response_id_conversation_is_judged_whole(stack, stream):
    upstream, proxy = stack
    tool = tool_stream if stream else tool_answer
    script(upstream, [tool(11), tool(12), tool(13), text_answer("Stopping.", 14)])
    client = openai.OpenAI(base_url=f"{proxy}/v1", api_key="sk-test", max_retries=0)
    ran, final, _ = run_agent(client, stream, chain=True)
    assert len(ran) == 2, "each request carries one output; the proxy kept the rest"
    assert final.output_text.endswith("Stopping.")
    reqs = seen(upstream)
    assert reqs[2]["body"]["previous_response_id"] == "resp_12" and len(reqs[2]["body"]["input"]) == 2


def test_an_unknown_previous_response_id_is_judged_on_what_it_carries_and_says_so(stack):
    upstream, proxy = stack
    script(upstream, [text_answer("hi")])
    client = openai.OpenAI(base_url=f"{proxy}/v1", api_key="sk-test", max_retries=0)
    raw = client.responses.with_raw_response.create(model="m", input="hello", previous_response_id="resp_nobody_kept")
    assert raw.parse().output_text == "hi"
    assert raw.headers["x-microloop-previous-response"] == "missing"
    assert raw.headers["x-microloop-action"] == "allow"


def test_a_stopped_turn_s_hidden_call_is_answered_in_the_next_request(stack):
    upstream, _ = stack
    with harness.proxy(upstream, "--on-block", "refuse") as proxy:
        script(upstream, [tool_answer(21), tool_answer(22), tool_answer(23), text_answer("ok", 24)])
        client = openai.OpenAI(base_url=f"{proxy}/v1", api_key="sk-test", max_retries=0)
        ran, final, _ = run_agent(client, False, chain=True)
        assert len(ran) == 2 and final.output[0].content[0].text.startswith("[microloop] ")
        raw = client.responses.with_raw_response.create(model="m", input="try something else", previous_response_id=final.id)
        assert raw.headers["x-microloop-previous-response"] == "found"
    sent = seen(upstream)[3]["body"]["input"]
    assert sent[0] == {"type": "function_call_output", "call_id": "call_23", "output": sent[0]["output"]}
    assert sent[0]["output"].startswith("[microloop] ") and sent[1]["role"] == "user"


@pytest.mark.parametrize("events", [
    [{"type": "response.created", "response": response(1, [])}],
    [{"type": "response.created", "response": response(1, [])}, "not json at all"],
], ids=["cut-off", "not-json"])
def test_a_broken_upstream_stream_is_a_clear_error_not_a_hang(stack, events):
    upstream, proxy = stack
    sse = [ev(dict(e, sequence_number=i)) if isinstance(e, dict) else f"data: {e}\n\n" for i, e in enumerate(events)]
    script(upstream, [{"sse": sse}, text_answer("still up")])
    client = openai.OpenAI(base_url=f"{proxy}/v1", api_key="sk-test", max_retries=0, timeout=20)
    with pytest.raises(openai.APIError, match="microloop-proxy: the upstream"):
        for _ in client.responses.create(model="m", input="hi", stream=True):
            pass
    assert client.responses.create(model="m", input="hi").output_text == "still up"


def test_the_agents_sdk_default_model_is_guarded(stack):
    agents = pytest.importorskip("agents")
    upstream, proxy = stack
    script(upstream, [tool_answer(31), tool_answer(32), tool_answer(33), text_answer("The page needs a human; stopping.", 34)])
    ran = []

    @agents.function_tool
    def read_file(path: str) -> str:
        """Read a file."""
        ran.append(path)
        return "Please solve the CAPTCHA"

    agents.set_tracing_disabled(True)
    # The SDK's defaults: its own client pointed at the proxy, the Responses model, no model named.
    agents.set_default_openai_client(openai.AsyncOpenAI(base_url=f"{proxy}/v1", api_key="sk-test", max_retries=0))
    agent = agents.Agent(name="a", instructions="Summarise files.", tools=[read_file])
    result = asyncio.run(agents.Runner.run(agent, "Summarise a.txt"))
    assert ran == ["a.txt", "a.txt"]
    assert result.final_output == "The page needs a human; stopping."
    assert all(r["path"] == "/v1/responses" for r in seen(upstream))
