"""The proxy under upstream and client faults, with the official `openai` and `anthropic` clients in
front of a scripted upstream (fake_upstream.py). Each test fails on a proxy that hangs (every client
call has a deadline well under the fault's length), crashes (the proxy must still answer /healthz
after), or loses a request (the client gets an answer or an error in the API's shape, and the
upstream saw exactly the requests it should have).
"""
import json
import time
import urllib.request

import anthropic
import httpx2 as httpx
import openai
import pytest

import harness
from harness import script, seen
from test_proxy_clients import TOOLS, an_tool_stream, oa_tool_stream

DEADLINE = 20  # seconds a client waits at most: a proxy that hangs fails here


@pytest.fixture(scope="module")
def stack():
    # --timeout 2: the upstream's idle read timeout, so a stalled upstream is cut off in seconds.
    with harness.stack("--timeout", "2", "--max-body-bytes", "200000") as s:
        yield s


def alive(proxy):
    assert urllib.request.urlopen(f"{proxy}/healthz", timeout=5).status == 200, "the proxy must survive"


def oa(proxy):
    return openai.OpenAI(base_url=f"{proxy}/v1", api_key="sk-test", max_retries=0, timeout=DEADLINE)


def an(proxy):
    return anthropic.Anthropic(base_url=proxy, api_key="sk-ant-test", max_retries=0, timeout=DEADLINE)


def open_connections(upstream):
    return json.loads(urllib.request.urlopen(f"{upstream}/__open", timeout=5).read())["open"]


MESSAGES = [{"role": "user", "content": "Summarise a.txt"}]


def test_an_upstream_that_closes_mid_stream_ends_the_stream_with_an_error(stack):
    upstream, proxy = stack
    for cut in (1, 3):  # after the first chunk; in the middle of the tool call's arguments
        script(upstream, [{**oa_tool_stream(1), "cut": cut}])
        t0 = time.monotonic()
        with pytest.raises(openai.APIError) as e:
            for _ in oa(proxy).chat.completions.create(model="m", messages=MESSAGES, tools=TOOLS, stream=True):
                pass
        assert time.monotonic() - t0 < DEADLINE
        assert "microloop-proxy" in str(e.value) or "upstream" in str(e.value).lower()
    alive(proxy)


def test_an_anthropic_stream_cut_mid_tool_call_is_an_error_event_not_a_half_call(stack):
    upstream, proxy = stack
    script(upstream, [{**an_tool_stream(1), "cut": 7}])  # the tool_use block's arguments half sent
    with pytest.raises(anthropic.APIError):
        with an(proxy).messages.stream(model="m", max_tokens=100, messages=MESSAGES,
                                       tools=[{"name": "read_file", "input_schema": {"type": "object"}}]) as s:
            s.get_final_message()
    alive(proxy)


@pytest.mark.parametrize("events", [
    ["data: {not json\n\n"],
    ["event: message_start\ndata: [1, 2]\n\n", "data: [DONE]\n\n"],
    ["this is not server-sent events at all\n\n"],
], ids=["bad-json", "wrong-shape", "not-sse"])
def test_invalid_sse_from_the_upstream_is_an_error_in_the_apis_shape(stack, events):
    upstream, proxy = stack
    script(upstream, [{"sse": events}])
    t0 = time.monotonic()
    with pytest.raises(openai.APIError):
        for _ in oa(proxy).chat.completions.create(model="m", messages=MESSAGES, tools=TOOLS, stream=True):
            pass
    assert time.monotonic() - t0 < DEADLINE
    alive(proxy)


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_a_stalled_upstream_is_cut_off_by_the_timeout(stack, stream):
    upstream, proxy = stack
    answer = {**oa_tool_stream(1), "stall": 8} if stream else {"stall": 8, "body": {}}
    script(upstream, [answer])
    t0 = time.monotonic()
    with pytest.raises(openai.APIStatusError) as e:
        r = oa(proxy).chat.completions.create(model="m", messages=MESSAGES, tools=TOOLS, stream=stream)
        if stream:
            for _ in r:
                pass
    took = time.monotonic() - t0
    assert took < 7, f"the proxy waited {took:.1f}s for an upstream stalled 8s with --timeout 2"
    assert e.value.status_code == 504
    assert "did not answer in time" in str(e.value)
    alive(proxy)


def test_a_stall_in_the_middle_of_a_stream_is_cut_off_too(stack):
    upstream, proxy = stack
    script(upstream, [{**oa_tool_stream(1), "sse_delay": 6}])
    t0 = time.monotonic()
    with pytest.raises(openai.APIError):
        for _ in oa(proxy).chat.completions.create(model="m", messages=MESSAGES, tools=TOOLS, stream=True):
            pass
    assert time.monotonic() - t0 < 6 + 5, "cut off at the first idle gap, not after the whole stream"
    alive(proxy)


@pytest.mark.parametrize("status, error", [
    (429, openai.RateLimitError), (500, openai.InternalServerError), (503, openai.InternalServerError),
    (529, openai.InternalServerError),
])
def test_5xx_and_429_reach_the_client_as_they_came_and_are_never_retried(stack, status, error):
    upstream, proxy = stack
    body = {"error": {"message": f"upstream says {status}", "type": "rate_limit_error" if status == 429 else "server_error", "code": None}}
    script(upstream, [{"status": status, "body": body}, oa_tool_stream(2)])
    with pytest.raises(error) as e:
        oa(proxy).chat.completions.create(model="m", messages=MESSAGES, tools=TOOLS)
    assert e.value.status_code == status and f"upstream says {status}" in str(e.value)
    assert len(seen(upstream)) == 1, "the proxy must not retry: a retried answer may run a tool twice"


def test_an_anthropic_overload_reaches_the_client_in_anthropics_shape(stack):
    upstream, proxy = stack
    body = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    script(upstream, [{"status": 529, "body": body}])
    with pytest.raises(anthropic.APIStatusError) as e:
        an(proxy).messages.create(model="m", max_tokens=10, messages=MESSAGES)
    assert e.value.status_code == 529 and e.value.body["error"]["type"] == "overloaded_error"
    assert len(seen(upstream)) == 1


def test_a_client_that_leaves_mid_stream_leaves_no_upstream_connection():
    with harness.stack() as (upstream, proxy):  # its own: no pooled connection from another test
        # 20 chunks a second apart: the whole stream would take 20 s.
        chunk = 'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"x"},"finish_reason":null}]}\n\n'
        script(upstream, [{"sse": [chunk] * 20 + ["data: [DONE]\n\n"], "sse_delay": 1}])
        with httpx.Client(timeout=DEADLINE) as http:
            with http.stream("POST", f"{proxy}/v1/chat/completions", json={"model": "m", "messages": MESSAGES, "stream": True},
                             headers={"authorization": "Bearer sk-test"}) as r:
                assert r.status_code == 200
                next(r.iter_bytes())
                assert open_connections(upstream) == 1
        t0 = time.monotonic()
        while open_connections(upstream) and time.monotonic() - t0 < 8:
            time.sleep(0.2)
        assert open_connections(upstream) == 0, "the proxy kept reading an upstream stream nobody reads"
        alive(proxy)


def test_a_request_at_the_body_limit_passes_and_one_byte_more_is_refused_in_the_apis_shape(stack):
    upstream, proxy = stack
    limit = 200000
    base = json.dumps({"model": "m", "messages": [{"role": "user", "content": ""}]})
    filler = "a" * (limit - len(base))
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": filler}]}).encode()
    assert len(body) == limit
    script(upstream, [{"body": {"id": "x", "object": "chat.completion", "created": 1, "model": "m",
                                "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "ok"}}]}}])
    with httpx.Client(timeout=DEADLINE) as http:
        r = http.post(f"{proxy}/v1/chat/completions", content=body, headers={"content-type": "application/json"})
        assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"] == "ok"
        assert len(seen(upstream)) == 1 and len(seen(upstream)[0]["body"]["messages"][0]["content"]) == len(filler)
        r = http.post(f"{proxy}/v1/chat/completions", content=body + b" ", headers={"content-type": "application/json"})
        assert r.status_code == 413
        assert "--max-body-bytes" in r.json()["error"]["message"]
    assert len(seen(upstream)) == 1, "the refused request never went upstream"
    alive(proxy)


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS"))


def test_ten_times_the_concurrency_limit_is_answered_or_refused_with_503_and_none_is_lost():
    """--max-concurrent 8 and an upstream that takes a second per answer: 80 requests at once (10x).
    Every one gets 200 or a 503 in the API's shape, at once; none hangs or vanishes; the upstream
    sees exactly the ones answered 200; the proxy's memory stays bounded."""
    from concurrent.futures import ThreadPoolExecutor

    limit, n = 8, 80
    with harness.upstream() as upstream:
        port = harness.free_port()
        proc = __import__("subprocess").Popen([harness.PROXY, "--listen", f"127.0.0.1:{port}", "--upstream", upstream, "--max-concurrent", str(limit)])
        try:
            proxy = f"http://127.0.0.1:{port}"
            harness.wait_up(f"{proxy}/healthz")
            answer = {"stall": 1, "body": {"id": "x", "object": "chat.completion", "created": 1, "model": "m",
                                           "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "ok"}}]}}
            before = rss_kb(proc.pid)
            for wave in range(3):
                script(upstream, [answer] * n)

                def one(i):
                    try:
                        r = oa(proxy).chat.completions.with_raw_response.create(model="m", messages=MESSAGES)
                        return r.http_response.status_code, r.parse().choices[0].message.content
                    except openai.APIStatusError as e:
                        return e.status_code, e.body

                t0 = time.monotonic()
                with ThreadPoolExecutor(n) as pool:
                    results = list(pool.map(one, range(n)))
                assert time.monotonic() - t0 < DEADLINE
                ok = [r for r in results if r[0] == 200]
                refused = [r for r in results if r[0] == 503]
                assert len(ok) + len(refused) == n, [r for r in results if r[0] not in (200, 503)]
                assert len(ok) >= limit and refused, (len(ok), len(refused))
                assert all(body["code"] == "proxy_overloaded" and "--max-concurrent" in body["message"] for _, body in refused)
                assert all(text == "ok" for _, text in ok)
                assert len(seen(upstream)) == len(ok), "a request refused must never reach the upstream, an answered one exactly once"
            assert rss_kb(proc.pid) < before + 64 * 1024, "memory must stay bounded"
            text = urllib.request.urlopen(f"{proxy}/metrics").read().decode()
            assert "microloop_proxy_overloaded_total" in text
            alive(proxy)
        finally:
            proc.terminate()
            proc.wait(timeout=10)
