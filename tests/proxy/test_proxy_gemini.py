"""Google's Gemini API through the proxy, with the official `google-genai` client (`generate_content`
and `generate_content_stream`, `http_options` base URL at the proxy), in front of a scripted upstream.
"""
import json

import pytest
from google import genai
from google.genai import errors, types

import harness
from harness import script, seen

DECL = types.FunctionDeclaration(name="read_file", description="Read a file.",
                                 parameters=types.Schema(type="OBJECT", properties={"path": types.Schema(type="STRING")}))
CONFIG = types.GenerateContentConfig(tools=[types.Tool(function_declarations=[DECL])],
                                     automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True))
USAGE = {"promptTokenCount": 10, "candidatesTokenCount": 5, "totalTokenCount": 15}


@pytest.fixture(scope="module")
def stack():
    with harness.stack() as s:
        yield s


def chunk(parts, finish=None, n=1):
    cand = {"content": {"role": "model", "parts": parts}, "index": 0}
    if finish:
        cand["finishReason"] = finish
    return {"candidates": [cand], "usageMetadata": USAGE, "modelVersion": "m", "responseId": f"r{n}"}


CALL = {"functionCall": {"name": "read_file", "args": {"path": "a.txt"}}}


def tool_answer(n):
    return {"body": chunk([CALL], "STOP", n)}


def text_answer(text):
    return {"body": chunk([{"text": text}], "STOP")}


def tool_stream(n):
    return {"sse": [f"data: {json.dumps(chunk([{'text': 'Reading it. '}], None, n))}\r\n\r\n",
                    f"data: {json.dumps(chunk([CALL], 'STOP', n))}\r\n\r\n"]}


def text_stream(text):
    return {"sse": [f"data: {json.dumps(chunk([{'text': text}], 'STOP'))}\r\n\r\n"]}


def client(proxy):
    return genai.Client(api_key="test-key", http_options=types.HttpOptions(base_url=proxy))


def run_agent(c, stream, max_turns=8):
    ran = []
    contents = [types.Content(role="user", parts=[types.Part.from_text(text="Summarise a.txt")])]
    for _ in range(max_turns):
        if stream:
            parts, text = [], ""
            for ch in c.models.generate_content_stream(model="gemini-test", contents=contents, config=CONFIG):
                for p in ch.candidates[0].content.parts or []:
                    parts.append(p)
                    text += p.text or ""
            calls = [p.function_call for p in parts if p.function_call]
            content = types.Content(role="model", parts=parts)
        else:
            r = c.models.generate_content(model="gemini-test", contents=contents, config=CONFIG)
            calls, content = r.function_calls or [], r.candidates[0].content
            text = "".join(p.text or "" for p in content.parts or [])
        if not calls:
            return ran, text
        contents.append(content)
        answers = []
        for fc in calls:
            ran.append(dict(fc.args))
            answers.append(types.Part.from_function_response(name=fc.name, response={"output": "Please solve the CAPTCHA"}))
        contents.append(types.Content(role="user", parts=answers))
    raise AssertionError("the agent never stopped")


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_the_looping_call_never_reaches_the_tool_and_the_model_is_reasked(stack, stream):
    upstream, proxy = stack
    tool = tool_stream if stream else tool_answer
    script(upstream, [tool(1), tool(2), tool(3), (text_stream if stream else text_answer)("Behind a CAPTCHA; stopping.")])
    ran, text = run_agent(client(proxy), stream)
    assert ran == [{"path": "a.txt"}] * 2, "the third identical read returning the same page never runs"
    assert text.endswith("Behind a CAPTCHA; stopping.")
    reqs = seen(upstream)
    assert len(reqs) == 4
    # The client's API version (v1beta, or v1 with a base URL of one's own) is kept.
    path = "/models/gemini-test:" + ("streamGenerateContent?alt=sse" if stream else "generateContent")
    assert {r["path"].split("/", 2)[2] for r in reqs} == {path[1:]}, "a streamed turn is re-asked streamed"
    reask = reqs[3]["body"]["contents"]
    assert reask[-2]["role"] == "model" and reask[-2]["parts"][-1]["functionCall"]["name"] == "read_file"
    fr = reask[-1]["parts"][0]["functionResponse"]
    assert fr["name"] == "read_file" and fr["response"]["error"].startswith("[microloop] ")


def test_refuse_ends_the_streamed_turn_with_text(stack):
    upstream, _ = stack
    with harness.proxy(upstream, "--on-block", "refuse") as proxy:
        script(upstream, [tool_stream(1), tool_stream(2), tool_stream(3)])
        ran, text = run_agent(client(proxy), True)
    assert len(ran) == 2
    assert text.startswith("Reading it. [microloop] ")
    assert len(seen(upstream)) == 3


def test_a_warning_is_appended_to_the_latest_function_response(stack):
    upstream, proxy = stack
    script(upstream, [tool_answer(1), tool_answer(2), text_answer("ok")])
    ran, _ = run_agent(client(proxy), False)
    last = seen(upstream)[2]["body"]["contents"][-1]["parts"]
    output = last[-1]["functionResponse"]["response"]["output"]
    assert output.startswith("Please solve the CAPTCHA\n\n[microloop] "), output


def test_a_broken_upstream_stream_is_a_clear_error_not_a_hang(stack):
    upstream, proxy = stack
    cut = {"sse": [f"data: {json.dumps(chunk([{'text': 'Half'}]))}\r\n\r\n"]}
    script(upstream, [cut, text_answer("still up")])
    c = client(proxy)
    with pytest.raises(errors.ServerError, match="microloop-proxy: the upstream"):
        for _ in c.models.generate_content_stream(model="gemini-test", contents="hi", config=CONFIG):
            pass
    assert c.models.generate_content(model="gemini-test", contents="hi").text == "still up"
