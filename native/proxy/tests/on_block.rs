//! The proxy end to end against a scripted upstream on loopback: each on-block mode, warnings,
//! streams, and an upstream that is down or answers nonsense.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use microloop_proxy::config::{Config, OnBlock};
use microloop_proxy::server::{router, AppState};
use serde_json::{json, Value};

#[derive(Default)]
struct Script {
    answers: Mutex<VecDeque<(u16, &'static str, String)>>,
    seen: Mutex<Vec<Value>>,
}

async fn upstream(State(s): State<Arc<Script>>, body: Bytes) -> Response {
    s.seen.lock().unwrap().push(serde_json::from_slice(&body).unwrap_or(Value::Null));
    let (status, ct, body) = s.answers.lock().unwrap().pop_front().expect("the upstream got an unscripted request");
    (StatusCode::from_u16(status).unwrap(), [(header::CONTENT_TYPE, ct)], body).into_response()
}

async fn serve(app: Router) -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    format!("http://{addr}")
}

/// A proxy in front of a scripted upstream; returns the proxy's URL and the script.
async fn setup(on_block: OnBlock, answers: Vec<(u16, &'static str, String)>) -> (String, Arc<Script>) {
    let script = Arc::new(Script::default());
    script.answers.lock().unwrap().extend(answers);
    let up = serve(Router::new().fallback(upstream).with_state(script.clone())).await;
    (proxy_to(&up, on_block).await, script)
}

async fn proxy_to(upstream: &str, on_block: OnBlock) -> String {
    let cfg = Config { upstream: Some(upstream.to_owned()), on_block, ..Config::default() };
    let engine = cfg.engine().unwrap();
    serve(router(Arc::new(AppState::new(cfg, engine).unwrap()))).await
}

fn read_call(id: &str) -> Value {
    json!({"id": id, "type": "function", "function": {"name": "read_file", "arguments": "{\"path\": \"a.txt\"}"}})
}

/// Two identical reads that returned the same text: a third is a loop.
fn looping_request(stream: bool) -> Value {
    json!({"model": "m", "stream": stream,
      "tools": [{"type": "function", "function": {"name": "read_file", "parameters": {}}}],
      "messages": [
        {"role": "user", "content": "summarise a.txt"},
        {"role": "assistant", "content": null, "tool_calls": [read_call("c1")]},
        {"role": "tool", "tool_call_id": "c1", "content": "CAPTCHA"},
        {"role": "assistant", "content": null, "tool_calls": [read_call("c2")]},
        {"role": "tool", "tool_call_id": "c2", "content": "CAPTCHA"}]})
}

fn tool_answer(id: &str) -> (u16, &'static str, String) {
    let v = json!({"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "m",
        "choices": [{"index": 0, "finish_reason": "tool_calls",
            "message": {"role": "assistant", "content": null, "tool_calls": [read_call(id)]}}],
        "usage": {"prompt_tokens": 50, "completion_tokens": 10, "total_tokens": 60}});
    (200, "application/json", v.to_string())
}

fn text_answer(text: &str) -> (u16, &'static str, String) {
    let v = json!({"id": "chatcmpl-2", "object": "chat.completion", "created": 1, "model": "m",
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}],
        "usage": {"prompt_tokens": 70, "completion_tokens": 5, "total_tokens": 75}});
    (200, "application/json", v.to_string())
}

async fn post(url: &str, body: &Value) -> (u16, reqwest::header::HeaderMap, String) {
    microloop_proxy::server::install_crypto();
    let r = reqwest::Client::new().post(format!("{url}/v1/chat/completions")).json(body).send().await.unwrap();
    let (s, h) = (r.status().as_u16(), r.headers().clone());
    (s, h, r.text().await.unwrap())
}

fn header<'a>(h: &'a reqwest::header::HeaderMap, k: &str) -> &'a str {
    h.get(k).map(|v| v.to_str().unwrap()).unwrap_or("")
}

#[tokio::test]
async fn reprompt_withholds_the_call_and_returns_the_second_answer() {
    let (url, script) = setup(OnBlock::Reprompt, vec![tool_answer("c3"), text_answer("The page needs a human.")]).await;
    let (status, h, body) = post(&url, &looping_request(false)).await;
    assert_eq!(status, 200);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "The page needs a human.");
    assert_eq!(header(&h, "x-microloop-action"), "reask");
    assert_eq!(header(&h, "x-microloop-rule"), "loop.no_progress");
    let seen = script.seen.lock().unwrap();
    assert_eq!(seen.len(), 2);
    let reask = seen[1]["messages"].as_array().unwrap();
    assert_eq!(reask[reask.len() - 2]["tool_calls"][0]["id"], "c3");
    assert_eq!(reask[reask.len() - 1]["tool_call_id"], "c3");
    assert!(reask[reask.len() - 1]["content"].as_str().unwrap().starts_with("[microloop] "));
    assert_eq!(seen[1]["stream"], false);
}

#[tokio::test]
async fn reprompt_stops_the_turn_when_the_model_insists() {
    let (url, script) = setup(OnBlock::Reprompt, vec![tool_answer("c3"), tool_answer("c4")]).await;
    let (status, h, body) = post(&url, &looping_request(false)).await;
    assert_eq!(status, 200);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert!(v["choices"][0]["message"].get("tool_calls").is_none());
    assert_eq!(header(&h, "x-microloop-action"), "block");
    assert_eq!(script.seen.lock().unwrap().len(), 2, "one re-ask, no more");
}

#[tokio::test]
async fn refuse_stops_the_turn_at_once_and_keeps_the_usage() {
    let (url, script) = setup(OnBlock::Refuse, vec![tool_answer("c3")]).await;
    let (status, _, body) = post(&url, &looping_request(false)).await;
    assert_eq!(status, 200);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert!(v["choices"][0]["message"]["content"].as_str().unwrap().contains("[microloop]"));
    assert_eq!(v["usage"]["total_tokens"], 60);
    assert_eq!(script.seen.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn error_mode_answers_400_in_the_openai_format() {
    let (url, _) = setup(OnBlock::Error, vec![tool_answer("c3")]).await;
    let (status, h, body) = post(&url, &looping_request(false)).await;
    assert_eq!(status, 400);
    assert_eq!(header(&h, "x-should-retry"), "false");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["error"]["code"], "tool_loop_blocked");
}

#[tokio::test]
async fn an_allowed_answer_passes_unchanged() {
    let (url, _) = setup(OnBlock::Reprompt, vec![text_answer("hello")]).await;
    let req = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]});
    let (status, h, body) = post(&url, &req).await;
    assert_eq!(status, 200);
    assert_eq!(header(&h, "x-microloop-action"), "allow");
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap(), serde_json::from_str::<Value>(&text_answer("hello").2).unwrap());
}

#[tokio::test]
async fn a_warning_is_appended_to_the_latest_tool_result() {
    let (url, script) = setup(OnBlock::Reprompt, vec![text_answer("ok")]).await;
    let mut req = looping_request(false);
    req["messages"].as_array_mut().unwrap().truncate(4);
    req["messages"].as_array_mut().unwrap().push(json!({"role": "tool", "tool_call_id": "c2", "content": "CAPTCHA"}));
    let (_, h, _) = post(&url, &req).await;
    assert_eq!(header(&h, "x-microloop-action"), "warn");
    let seen = script.seen.lock().unwrap();
    let last = seen[0]["messages"].as_array().unwrap().last().unwrap()["content"].as_str().unwrap().to_owned();
    assert!(last.starts_with("CAPTCHA\n\n[microloop] "), "{last}");
}

#[tokio::test]
async fn a_blocked_streamed_call_is_replaced_by_text_and_the_stream_stays_valid() {
    let chunk = |delta: Value, finish: Value| {
        format!("data: {}\n\n", json!({"id": "chatcmpl-9", "object": "chat.completion.chunk", "created": 1, "model": "m",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}))
    };
    let sse = [
        chunk(json!({"role": "assistant", "content": "Trying again."}), Value::Null),
        chunk(json!({"tool_calls": [{"index": 0, "id": "c3", "type": "function", "function": {"name": "read_file", "arguments": ""}}]}), Value::Null),
        chunk(json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"path\": \"a.txt\"}"}}]}), Value::Null),
        chunk(json!({}), "tool_calls".into()),
        "data: [DONE]\n\n".to_owned(),
    ]
    .concat();
    let (url, _) = setup(OnBlock::Refuse, vec![(200, "text/event-stream", sse)]).await;
    let (status, _, body) = post(&url, &looping_request(true)).await;
    assert_eq!(status, 200);
    assert!(body.contains("Trying again."));
    assert!(!body.contains("tool_calls\":[{"), "the call never reaches the client: {body}");
    assert!(body.contains("[microloop]") && body.contains("\"finish_reason\":\"stop\""));
    assert!(body.trim_end().ends_with("data: [DONE]"));
}

#[tokio::test]
async fn malformed_upstream_json_is_a_clear_502() {
    let (url, _) = setup(OnBlock::Reprompt, vec![(200, "application/json", "{\"choices\": [".into())]).await;
    let (status, _, body) = post(&url, &looping_request(false)).await;
    assert_eq!(status, 502);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["error"]["code"], "upstream_malformed");
}

#[tokio::test]
async fn an_unreachable_upstream_is_a_clear_502() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}", l.local_addr().unwrap());
    drop(l);
    let url = proxy_to(&dead, OnBlock::Reprompt).await;
    let (status, _, body) = post(&url, &looping_request(false)).await;
    assert_eq!(status, 502);
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["error"]["code"], "upstream_unreachable");
}

#[tokio::test]
async fn upstream_errors_pass_through_unmodified() {
    let err = json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}).to_string();
    let (url, _) = setup(OnBlock::Reprompt, vec![(529, "application/json", err.clone())]).await;
    let (status, _, body) = post(&url, &looping_request(false)).await;
    assert_eq!((status, body), (529, err));
}

/// Two choices (`n: 2`): the looping one is stopped, the other passes; both were judged.
#[tokio::test]
async fn every_choice_is_judged() {
    let v = json!({"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "m",
        "choices": [
            {"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant", "content": null,
                "tool_calls": [{"id": "c3", "type": "function", "function": {"name": "read_file", "arguments": "{\"path\": \"b.txt\"}"}}]}},
            {"index": 1, "finish_reason": "tool_calls", "message": {"role": "assistant", "content": null, "tool_calls": [read_call("c4")]}}],
        "usage": {"prompt_tokens": 50, "completion_tokens": 10, "total_tokens": 60}});
    let (url, script) = setup(OnBlock::Reprompt, vec![(200, "application/json", v.to_string())]).await;
    let mut req = looping_request(false);
    req["n"] = 2.into();
    let (status, h, body) = post(&url, &req).await;
    assert_eq!(status, 200);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["choices"][0]["message"]["tool_calls"][0]["id"], "c3", "a new read passes");
    assert_eq!(v["choices"][1]["finish_reason"], "stop");
    assert!(v["choices"][1]["message"].get("tool_calls").is_none());
    assert!(v["choices"][1]["message"]["content"].as_str().unwrap().starts_with("[microloop] "));
    assert_eq!(header(&h, "x-microloop-action"), "block");
    assert_eq!(script.seen.lock().unwrap().len(), 1, "a blocked choice among several is stopped, not re-asked");
}

#[tokio::test]
async fn every_streamed_choice_is_judged() {
    let chunk = |index: u64, delta: Value, finish: Value| {
        format!("data: {}\n\n", json!({"id": "chatcmpl-9", "object": "chat.completion.chunk", "created": 1, "model": "m",
            "choices": [{"index": index, "delta": delta, "finish_reason": finish}]}))
    };
    let call = |id: &str, path: &str| json!({"tool_calls": [{"index": 0, "id": id, "type": "function",
        "function": {"name": "read_file", "arguments": format!("{{\"path\": \"{path}\"}}")}}]});
    let sse = [
        chunk(0, json!({"role": "assistant", "content": "One."}), Value::Null),
        chunk(1, json!({"role": "assistant", "content": "Two."}), Value::Null),
        chunk(0, call("c3", "b.txt"), Value::Null),
        chunk(1, call("c4", "a.txt"), Value::Null),
        chunk(0, json!({}), "tool_calls".into()),
        chunk(1, json!({}), "tool_calls".into()),
        "data: [DONE]\n\n".to_owned(),
    ]
    .concat();
    let (url, _) = setup(OnBlock::Reprompt, vec![(200, "text/event-stream", sse)]).await;
    let mut req = looping_request(true);
    req["n"] = 2.into();
    let (status, _, body) = post(&url, &req).await;
    assert_eq!(status, 200);
    let chunks: Vec<Value> = body
        .split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    let of = |i: u64| chunks.iter().flat_map(|c| c["choices"].as_array().unwrap().clone()).filter(|c| c["index"] == i).collect::<Vec<_>>();
    let text = |cs: &[Value]| cs.iter().filter_map(|c| c["delta"]["content"].as_str()).collect::<String>();
    let (zero, one) = (of(0), of(1));
    assert!(zero.iter().any(|c| c["delta"]["tool_calls"][0]["id"] == "c3"), "{body}");
    assert!(!one.iter().any(|c| c["delta"].get("tool_calls").is_some()), "{body}");
    assert!(text(&one).starts_with("Two.\n\n[microloop] "), "{body}");
    assert_eq!(text(&zero), "One.");
    assert_eq!(one.last().unwrap()["finish_reason"], "stop");
    assert!(body.trim_end().ends_with("data: [DONE]"));
}

/// Claude Code: tools loaded through ToolSearch are not in `tools`; a system reminder follows the
/// latest tool result; the client streams, so the re-ask streams too.
#[tokio::test]
async fn claude_code_request_shapes() {
    let ev = |v: Value| format!("event: {}\ndata: {v}\n\n", v["type"].as_str().unwrap());
    let use_ = |id: &str| json!({"type": "tool_use", "id": id, "name": "mcp__files__read", "input": {"path": "a.txt"}});
    let result = |id: &str| json!({"role": "user", "content": [{"type": "tool_result", "tool_use_id": id, "content": "CAPTCHA", "is_error": false}]});
    let reminder = json!({"role": "system", "content": "<system-reminder>keep going</system-reminder>"});
    let req = |n: usize| {
        let mut messages = vec![json!({"role": "user", "content": "summarise a.txt"})];
        for i in 0..n {
            messages.push(json!({"role": "assistant", "content": [use_(&format!("t{i}"))]}));
            messages.push(result(&format!("t{i}")));
            messages.push(reminder.clone());
        }
        json!({"model": "m", "max_tokens": 128000, "stream": true, "thinking": {"type": "adaptive"},
               "tools": [{"name": "Bash", "input_schema": {}}, {"name": "ToolSearch", "input_schema": {}},
                         {"name": "mcp__files__placeholder", "input_schema": {}, "defer_loading": true}],
               "messages": messages})
    };
    let stream = |text: &str, tool: Option<(&str, &str)>| {
        let mut evs = vec![
            ev(json!({"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant", "content": [], "usage": {"input_tokens": 5, "output_tokens": 1}}})),
            ev(json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})),
            ev(json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}})),
            ev(json!({"type": "content_block_stop", "index": 0})),
        ];
        if let Some((id, path)) = tool {
            evs.push(ev(json!({"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": id, "name": "mcp__files__read", "input": {}}})));
            evs.push(ev(json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": format!("{{\"path\": \"{path}\"}}")}})));
            evs.push(ev(json!({"type": "content_block_stop", "index": 1})));
        }
        let stop = if tool.is_some() { "tool_use" } else { "end_turn" };
        evs.push(ev(json!({"type": "message_delta", "delta": {"stop_reason": stop}, "usage": {"output_tokens": 9}})));
        evs.push(ev(json!({"type": "message_stop"})));
        (200, "text/event-stream", evs.concat())
    };
    let post_messages = |url: String, body: Value| async move {
        let r = reqwest::Client::new().post(format!("{url}/v1/messages")).json(&body).send().await.unwrap();
        let h = r.headers().clone();
        (h, r.text().await.unwrap())
    };
    // A deferred tool is not unknown; the warning lands on the latest tool result despite the reminder.
    let (url, script) = setup(OnBlock::Reprompt, vec![stream("Reading.", Some(("t2", "b.txt")))]).await;
    let (h, body) = post_messages(url, req(2)).await;
    assert_eq!(header(&h, "x-microloop-action"), "warn", "{body}");
    assert!(body.contains("mcp__files__read"), "a tool loaded through ToolSearch passes: {body}");
    let sent = script.seen.lock().unwrap()[0]["messages"].clone();
    let last_result = &sent.as_array().unwrap()[5]["content"][0];
    assert_eq!(last_result["tool_use_id"], "t1");
    assert_eq!(sent.as_array().unwrap()[6]["role"], "system", "the reminder stays where it was");
    assert!(last_result["content"].as_str().unwrap().starts_with("CAPTCHA\n\n[microloop] "), "{last_result}");
    // The third identical read is blocked; the re-ask streams and its answer is collected.
    let (url, script) = setup(OnBlock::Reprompt, vec![stream("Reading.", Some(("t2", "a.txt"))), stream("It needs a human.", None)]).await;
    let (h, body) = post_messages(url, req(2)).await;
    assert_eq!(header(&h, "x-microloop-action"), "warn");
    assert!(!body.contains("mcp__files__read"), "{body}");
    assert!(body.contains("It needs a human.") && body.contains("end_turn"), "{body}");
    assert_eq!(body.matches("event: message_start").count(), 1);
    let seen = script.seen.lock().unwrap();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1]["stream"], true, "the re-ask streams like the client");
    assert_eq!(seen[1]["messages"].as_array().unwrap().last().unwrap()["content"][0]["tool_use_id"], "t2");
}
