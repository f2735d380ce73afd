//! The edits the proxy makes to requests and answers, in each API's own format.
//!
//! Every edit keeps the conversation valid for the API: each tool call the client sees can be
//! answered, each tool call sent upstream is followed by its result, Anthropic block indexes stay
//! contiguous and a stream never starts a second message.

use bytes::Bytes;
use microloop_core::Verdict;
use serde_json::{json, Map, Value};

use crate::trajectory::{anthropic_calls, openai_calls, Judgement, ToolCall};
use crate::Api;

/// The text the model (or the user) reads for a verdict.
pub fn note(v: &Verdict) -> String {
    format!("[microloop] {}", v.message)
}

/// The result given to a call withheld because another call of the same answer was blocked.
const NOT_RUN: &str =
    "[microloop] Not run: another call in the same turn was blocked. Call it again if it is still needed.";

/// Appends the warnings' notes to the latest tool result of the request. Returns whether it did.
pub fn apply_warnings(api: Api, req: &mut Value, warnings: &[Verdict]) -> bool {
    if warnings.is_empty() {
        return false;
    }
    let text = warnings.iter().map(note).collect::<Vec<_>>().join("\n");
    let Some(messages) = req.get_mut("messages").and_then(Value::as_array_mut) else { return false };
    match api {
        Api::OpenAi => {
            let Some(m) = messages.iter_mut().rev().find(|m| m["role"] == "tool") else { return false };
            append_text(m, "content", &text);
        }
        Api::Anthropic => {
            let Some(m) = messages.last_mut() else { return false };
            let Some(blocks) = m.get_mut("content").and_then(Value::as_array_mut) else { return false };
            let Some(b) = blocks.iter_mut().rev().find(|b| b["type"] == "tool_result") else { return false };
            append_text(b, "content", &text);
        }
    }
    true
}

fn append_text(obj: &mut Value, key: &str, text: &str) {
    let Some(o) = obj.as_object_mut() else { return };
    match o.get_mut(key) {
        Some(Value::String(s)) => {
            if !s.is_empty() {
                s.push_str("\n\n");
            }
            s.push_str(text);
        }
        Some(Value::Array(parts)) => parts.push(json!({"type": "text", "text": text})),
        _ => {
            o.insert(key.to_owned(), Value::String(text.to_owned()));
        }
    }
}

/// The tool calls an answer proposes (OpenAI: the first choice).
pub fn response_calls(api: Api, resp: &Value) -> Vec<ToolCall> {
    match api {
        Api::OpenAi => resp.pointer("/choices/0/message").map(openai_calls).unwrap_or_default(),
        Api::Anthropic => resp.get("content").and_then(Value::as_array).map(|b| anthropic_calls(b)).unwrap_or_default(),
    }
}

/// The request for a re-ask: the same request, then the blocked answer, then a result for each of
/// its calls (the verdict's message for the blocked one). Never streamed.
pub fn reask_body(api: Api, req: &Value, resp: &Value, calls: &[ToolCall], j: &Judgement) -> Value {
    let mut body = req.clone();
    let result_text = |i: usize| match &j.blocked {
        Some((b, v)) if *b == i => note(v),
        _ => NOT_RUN.to_owned(),
    };
    if let Some(o) = body.as_object_mut() {
        o.insert("stream".into(), Value::Bool(false));
        o.remove("stream_options");
    }
    let Some(messages) = body.get_mut("messages").and_then(Value::as_array_mut) else { return body };
    match api {
        Api::OpenAi => {
            let m = resp.pointer("/choices/0/message").cloned().unwrap_or_else(|| json!({}));
            let mut a = Map::new();
            a.insert("role".into(), "assistant".into());
            a.insert("content".into(), m.get("content").cloned().unwrap_or(Value::Null));
            a.insert("tool_calls".into(), m.get("tool_calls").cloned().unwrap_or_else(|| json!([])));
            messages.push(Value::Object(a));
            for (i, c) in calls.iter().enumerate() {
                messages.push(json!({"role": "tool", "tool_call_id": c.id, "content": result_text(i)}));
            }
        }
        Api::Anthropic => {
            let content = resp.get("content").cloned().unwrap_or_else(|| json!([]));
            messages.push(json!({"role": "assistant", "content": content}));
            let results: Vec<Value> = calls
                .iter()
                .enumerate()
                .map(|(i, c)| json!({"type": "tool_result", "tool_use_id": c.id, "content": result_text(i), "is_error": true}))
                .collect();
            messages.push(json!({"role": "user", "content": results}));
        }
    }
    body
}

/// Ends the turn: the answer's tool calls are replaced by the note; usage is kept.
pub fn stop_turn(api: Api, resp: &mut Value, text: &str) {
    match api {
        Api::OpenAi => {
            let Some(choice) = resp.pointer_mut("/choices/0") else { return };
            if let Some(m) = choice.get_mut("message").and_then(Value::as_object_mut) {
                m.remove("tool_calls");
                m.remove("function_call");
                let content = match m.get("content").and_then(Value::as_str) {
                    Some(s) if !s.is_empty() => format!("{s}\n\n{text}"),
                    _ => text.to_owned(),
                };
                m.insert("content".into(), Value::String(content));
            }
            choice["finish_reason"] = "stop".into();
        }
        Api::Anthropic => {
            let Some(o) = resp.as_object_mut() else { return };
            if let Some(blocks) = o.get_mut("content").and_then(Value::as_array_mut) {
                blocks.retain(|b| b["type"] != "tool_use");
                blocks.push(json!({"type": "text", "text": text}));
            }
            o.insert("stop_reason".into(), "end_turn".into());
            o.insert("stop_sequence".into(), Value::Null);
        }
    }
}

/// An error body in the API's own format.
pub fn error_body(api: Api, message: &str, kind: &str, code: &str) -> Value {
    match api {
        Api::OpenAi => json!({"error": {"message": message, "type": kind, "param": null, "code": code}}),
        Api::Anthropic => json!({"type": "error", "error": {"type": kind, "message": message}}),
    }
}

pub fn sse_data(v: &Value) -> Bytes {
    Bytes::from(format!("data: {v}\n\n"))
}

pub fn sse_event(v: &Value) -> Bytes {
    Bytes::from(format!("event: {}\ndata: {v}\n\n", v["type"].as_str().unwrap_or("message")))
}

/// Chunks carrying `text` then a `stop` finish (OpenAI stream, the turn stopped by the proxy).
pub fn openai_note_chunks(head: &Value, text: &str) -> Vec<Bytes> {
    let chunk = |delta: Value, finish: Value| {
        let mut c = head.clone();
        c["choices"] = json!([{"index": 0, "delta": delta, "finish_reason": finish}]);
        sse_data(&c)
    };
    vec![chunk(json!({"content": text}), Value::Null), chunk(json!({}), "stop".into())]
}

/// A whole answer as stream chunks, under the original stream's id (the re-ask's answer).
pub fn openai_answer_chunks(head: &Value, resp: &Value, include_usage: bool) -> Vec<Bytes> {
    let mut out = Vec::new();
    let chunk = |delta: Value, finish: Value| {
        let mut c = head.clone();
        c["choices"] = json!([{"index": 0, "delta": delta, "finish_reason": finish}]);
        sse_data(&c)
    };
    let m = resp.pointer("/choices/0/message").cloned().unwrap_or_else(|| json!({}));
    if let Some(text) = m.get("content").and_then(Value::as_str).filter(|s| !s.is_empty()) {
        out.push(chunk(json!({"content": text}), Value::Null));
    }
    if let Some(calls) = m.get("tool_calls").and_then(Value::as_array) {
        let deltas: Vec<Value> = calls
            .iter()
            .enumerate()
            .map(|(i, c)| {
                json!({"index": i, "id": c["id"], "type": "function",
                       "function": {"name": c["function"]["name"], "arguments": c["function"]["arguments"]}})
            })
            .collect();
        out.push(chunk(json!({"tool_calls": deltas}), Value::Null));
    }
    let finish = resp.pointer("/choices/0/finish_reason").cloned().unwrap_or_else(|| "stop".into());
    out.push(chunk(json!({}), finish));
    if include_usage {
        if let Some(u) = resp.get("usage") {
            let mut c = head.clone();
            c["choices"] = json!([]);
            c["usage"] = u.clone();
            out.push(sse_data(&c));
        }
    }
    out
}

/// Content blocks as stream events from `index` on (Anthropic: a replacement keeps the index).
pub fn anthropic_block_events(blocks: &[Value], mut index: u64) -> Vec<Bytes> {
    let mut out = Vec::new();
    for b in blocks {
        let (start, deltas): (Value, Vec<Value>) = match b["type"].as_str() {
            Some("text") => (json!({"type": "text", "text": ""}), vec![json!({"type": "text_delta", "text": b["text"]})]),
            Some("tool_use") => (
                json!({"type": "tool_use", "id": b["id"], "name": b["name"], "input": {}}),
                vec![json!({"type": "input_json_delta", "partial_json": b["input"].to_string()})],
            ),
            Some("thinking") => (
                json!({"type": "thinking", "thinking": ""}),
                vec![
                    json!({"type": "thinking_delta", "thinking": b["thinking"]}),
                    json!({"type": "signature_delta", "signature": b["signature"]}),
                ],
            ),
            _ => (b.clone(), Vec::new()),
        };
        out.push(sse_event(&json!({"type": "content_block_start", "index": index, "content_block": start})));
        for d in deltas {
            out.push(sse_event(&json!({"type": "content_block_delta", "index": index, "delta": d})));
        }
        out.push(sse_event(&json!({"type": "content_block_stop", "index": index})));
        index += 1;
    }
    out
}

/// The closing events of an Anthropic stream.
pub fn anthropic_end_events(stop_reason: &Value, usage: &Value) -> Vec<Bytes> {
    vec![
        sse_event(&json!({"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": null}, "usage": usage})),
        sse_event(&json!({"type": "message_stop"})),
    ]
}
