"""Two proxy replicas sharing a real redis-server (`--store redis://…`): a Responses conversation
continued by `previous_response_id` is judged whole whichever replica answers each turn.
"""
import os
import sys

import openai
import pytest

import harness
from harness import script, seen
from test_proxy_responses import TOOLS, text_answer, tool_answer

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from redis_server import redis_server  # noqa: E402


@pytest.fixture(scope="module")
def redis_url():
    with redis_server() as port:
        yield f"redis://127.0.0.1:{port}/0"


def test_two_replicas_continue_one_conversation(redis_url):
    with harness.upstream() as upstream, harness.proxy(upstream, "--store", redis_url) as a, \
            harness.proxy(upstream, "--store", redis_url) as b:
        script(upstream, [tool_answer(41), tool_answer(42), tool_answer(43), text_answer("Stopping.", 44)])
        clients = [openai.OpenAI(base_url=f"{p}/v1", api_key="sk-test", max_retries=0) for p in (a, b)]
        ran, prev, new, found = [], None, [{"role": "user", "content": "Summarise a.txt"}], []
        for turn in range(6):
            kw = {"model": "m", "tools": TOOLS, "input": new}
            if prev:
                kw["previous_response_id"] = prev
            raw = clients[turn % 2].responses.with_raw_response.create(**kw)
            found.append(raw.headers.get("x-microloop-previous-response"))
            r = raw.parse()
            prev = r.id
            calls = [o for o in r.output if o.type == "function_call"]
            if not calls:
                break
            ran += [c.arguments for c in calls]
            new = [{"type": "function_call_output", "call_id": c.call_id, "output": "Please solve the CAPTCHA"} for c in calls]
        assert len(ran) == 2, "replica a kept what replica b needed, and the other way round"
        assert r.output_text == "Stopping."
        assert found == [None, "found", "found"]
        assert len(seen(upstream)) == 4


def test_a_store_that_is_down_is_a_miss_not_a_failure():
    with harness.upstream() as upstream, harness.proxy(upstream, "--store", f"redis://127.0.0.1:{harness.free_port()}") as px:
        script(upstream, [text_answer("hi", 1), text_answer("again", 2)])
        c = openai.OpenAI(base_url=f"{px}/v1", api_key="sk-test", max_retries=0)
        first = c.responses.create(model="m", input="hello")
        raw = c.responses.with_raw_response.create(model="m", input="more", previous_response_id=first.id)
        assert raw.parse().output_text == "again"
        assert raw.headers["x-microloop-previous-response"] == "missing"
