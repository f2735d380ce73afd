//! OpenAI Chat Completions: `POST /v1/chat/completions`.
//!
//! Calls are an assistant message's `tool_calls` (arguments as JSON text), results are `role:
//! "tool"` messages matched by `tool_call_id`. Every choice of an answer is judged (`n > 1`). A
//! stream is `data:` chunks ending with `data: [DONE]`; tool-call fragments are keyed by choice
//! and `index`.

use std::collections::BTreeMap;

use bytes::Bytes;
use serde_json::{json, Map, Value};

use super::{Hold, append_text, chunk_object, event_data, sse_data, Dialect, ErrorKind, Follower, Outcome, Step, ToolCall};
use microloop_host::conversation;

pub struct OpenAiChat;

impl Dialect for OpenAiChat {
    fn name(&self) -> &'static str {
        "openai"
    }

    fn route(&self) -> &'static str {
        "chat_completions"
    }

    fn guards(&self, path: &str) -> bool {
        path == "/v1/chat/completions"
    }

    fn tools(&self, req: &Value) -> Option<Vec<String>> {
        conversation::openai::tools(req)
    }

    fn steps<'a>(&self, req: &'a Value) -> Vec<Step<'a>> {
        conversation::openai::steps(req)
    }

    fn calls(&self, resp: &Value) -> Vec<Vec<ToolCall>> {
        let Some(choices) = resp.get("choices").and_then(Value::as_array) else { return Vec::new() };
        choices.iter().map(|c| c.get("message").map(message_calls).unwrap_or_default()).collect()
    }

    fn apply_warnings(&self, req: &mut Value, text: &str) -> bool {
        let Some(messages) = req.get_mut("messages").and_then(Value::as_array_mut) else { return false };
        let Some(m) = messages.iter_mut().rev().find(|m| m["role"] == "tool") else { return false };
        append_text(m, "content", text);
        true
    }

    fn reask(&self, req: &Value, resp: &Value, calls: &[ToolCall], results: &[String], stream: bool) -> Value {
        let mut body = req.clone();
        if let Some(o) = body.as_object_mut() {
            o.insert("stream".into(), Value::Bool(stream));
            if !stream {
                o.remove("stream_options");
            }
        }
        let Some(messages) = body.get_mut("messages").and_then(Value::as_array_mut) else { return body };
        let m = resp.pointer("/choices/0/message").cloned().unwrap_or_else(|| json!({}));
        let mut a = Map::new();
        a.insert("role".into(), "assistant".into());
        a.insert("content".into(), m.get("content").cloned().unwrap_or(Value::Null));
        a.insert("tool_calls".into(), m.get("tool_calls").cloned().unwrap_or_else(|| json!([])));
        messages.push(Value::Object(a));
        for (c, text) in calls.iter().zip(results) {
            messages.push(json!({"role": "tool", "tool_call_id": c.id, "content": text}));
        }
        body
    }

    fn stop_turn(&self, resp: &mut Value, choice: usize, text: &str) {
        let Some(choice) = resp.get_mut("choices").and_then(|c| c.get_mut(choice)) else { return };
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

    fn error_body(&self, message: &str, kind: ErrorKind, code: &str) -> Value {
        openai_error(message, kind, code)
    }

    fn follower(&self, req: &Value) -> Box<dyn Follower> {
        let include_usage = req.pointer("/stream_options/include_usage").and_then(Value::as_bool).unwrap_or(false);
        Box::new(ChatStream { include_usage, ..ChatStream::default() })
    }
}

/// The OpenAI error envelope (Chat Completions and Responses share it).
pub fn openai_error(message: &str, kind: ErrorKind, code: &str) -> Value {
    let kind = match kind {
        ErrorKind::InvalidRequest => "invalid_request_error",
        ErrorKind::Upstream => "upstream_error",
        ErrorKind::NotFound => "not_found",
    };
    json!({"error": {"message": message, "type": kind, "param": null, "code": code}})
}

pub use microloop_host::conversation::openai::message_calls;

/// One choice of a followed stream.
#[derive(Default)]
struct ChoiceState {
    text: String,
    /// Of `text`, what already went to the client.
    sent: usize,
    role_sent: bool,
    calls: BTreeMap<u64, (String, String, String)>,
    finish: Option<Value>,
}

/// A Chat Completions stream being followed, every choice.
#[derive(Default)]
struct ChatStream {
    include_usage: bool,
    hold: Hold,
    /// id, object, created, model… of the stream's chunks, to write chunks of our own.
    head: Option<Value>,
    choices: BTreeMap<u64, ChoiceState>,
    usage: Option<Value>,
    bad: Option<String>,
    /// `data: [DONE]` came: the stream is whole.
    done: bool,
}

impl ChatStream {
    fn chunk(&self, choices: Value) -> Value {
        let mut c = self.head.clone().unwrap_or_else(|| json!({"object": "chat.completion.chunk"}));
        c["choices"] = choices;
        c
    }
}

impl Follower for ChatStream {
    held_in_field!();

    fn follow(&mut self, ev: &[u8]) -> bool {
        // After an event that is not the API's nothing more goes out, not even [DONE]: the stream
        // ends with the error event.
        if self.bad.is_some() {
            return false;
        }
        let Some(data) = event_data(ev) else { return true };
        if data.trim() == "[DONE]" {
            self.done = true;
            return true;
        }
        let chunk = match chunk_object(&data) {
            Ok(chunk) => chunk,
            Err(why) => {
                self.bad.get_or_insert_with(|| why.to_owned());
                return false;
            }
        };
        if self.head.is_none() {
            let mut head = chunk.clone();
            if let Some(o) = head.as_object_mut() {
                for k in ["choices", "usage", "obfuscation"] {
                    o.remove(k);
                }
            }
            self.head = Some(head);
        }
        if let Some(u) = chunk.get("usage").filter(|u| !u.is_null()) {
            self.usage = Some(u.clone());
        }
        for choice in chunk.get("choices").and_then(Value::as_array).into_iter().flatten() {
            let index = choice.get("index").and_then(Value::as_u64).unwrap_or(0);
            let delta = &choice["delta"];
            if delta.get("tool_calls").and_then(Value::as_array).is_some_and(|c| !c.is_empty()) {
                self.hold.on = true;
            }
            let st = self.choices.entry(index).or_default();
            if let Some(t) = delta.get("content").and_then(Value::as_str) {
                st.text.push_str(t);
                if !self.hold.on {
                    st.sent = st.text.len();
                }
            }
            for c in delta.get("tool_calls").and_then(Value::as_array).into_iter().flatten() {
                let idx = c.get("index").and_then(Value::as_u64).unwrap_or(0);
                let e = st.calls.entry(idx).or_default();
                if let Some(id) = c.get("id").and_then(Value::as_str) {
                    e.0.push_str(id);
                }
                if let Some(n) = c.pointer("/function/name").and_then(Value::as_str) {
                    e.1.push_str(n);
                }
                if let Some(a) = c.pointer("/function/arguments").and_then(Value::as_str) {
                    e.2.push_str(a);
                }
            }
            if let Some(f) = choice.get("finish_reason").filter(|f| !f.is_null()) {
                st.finish = Some(f.clone());
            }
            if delta.get("role").is_some() && !self.hold.on {
                st.role_sent = true;
            }
        }
        true
    }

    fn answer(&self) -> Value {
        let mut resp = self.head.clone().unwrap_or_else(|| json!({}));
        resp["object"] = "chat.completion".into();
        let choices: Vec<Value> = self
            .choices
            .iter()
            .map(|(i, st)| {
                let calls: Vec<Value> = st
                    .calls
                    .values()
                    .map(|(id, name, args)| json!({"id": id, "type": "function", "function": {"name": name, "arguments": args}}))
                    .collect();
                let content = if st.text.is_empty() { Value::Null } else { Value::String(st.text.clone()) };
                let mut message = json!({"role": "assistant", "content": content});
                let finish = st.finish.clone().unwrap_or_else(|| if calls.is_empty() { "stop" } else { "tool_calls" }.into());
                if !calls.is_empty() {
                    message["tool_calls"] = Value::Array(calls);
                }
                json!({"index": i, "message": message, "finish_reason": finish})
            })
            .collect();
        resp["choices"] = Value::Array(choices);
        if let Some(u) = &self.usage {
            resp["usage"] = u.clone();
        }
        resp
    }

    fn broken(&self) -> Option<String> {
        self.bad.clone().or_else(|| (!self.done).then(|| "the upstream's stream ended before data: [DONE]".to_owned()))
    }

    fn finish(self: Box<Self>, outcome: Outcome) -> Vec<Bytes> {
        let (resp, fresh) = match outcome {
            Outcome::Allowed => return self.hold.events,
            Outcome::Stopped(r) => (r, false),
            Outcome::Reasked(r) => (r, true),
        };
        let mut out = Vec::new();
        for (pos, choice) in resp.get("choices").and_then(Value::as_array).into_iter().flatten().enumerate() {
            let index = choice.get("index").and_then(Value::as_u64).unwrap_or(pos as u64);
            let st = self.choices.get(&index);
            let one = |delta: Value, finish: Value| sse_data(&self.chunk(json!([{"index": index, "delta": delta, "finish_reason": finish}])));
            if !st.is_some_and(|s| s.role_sent) {
                out.push(one(json!({"role": "assistant", "content": ""}), Value::Null));
            }
            let m = &choice["message"];
            let text = m.get("content").and_then(Value::as_str).unwrap_or("");
            // What the client has of this choice's text already is not sent twice.
            let sent = st.map_or("", |s| &s.text[..s.sent]);
            let rest = if !fresh && text.starts_with(sent) { &text[sent.len()..] } else { text };
            if !rest.is_empty() {
                out.push(one(json!({"content": rest}), Value::Null));
            }
            if let Some(calls) = m.get("tool_calls").and_then(Value::as_array).filter(|c| !c.is_empty()) {
                let deltas: Vec<Value> = calls
                    .iter()
                    .enumerate()
                    .map(|(i, c)| {
                        json!({"index": i, "id": c["id"], "type": "function",
                               "function": {"name": c["function"]["name"], "arguments": c["function"]["arguments"]}})
                    })
                    .collect();
                out.push(one(json!({"tool_calls": deltas}), Value::Null));
            }
            let finish = choice.get("finish_reason").cloned().filter(|f| !f.is_null()).unwrap_or_else(|| "stop".into());
            out.push(one(json!({}), finish));
        }
        if self.include_usage {
            let usage = if fresh { resp.get("usage").or(self.usage.as_ref()) } else { self.usage.as_ref() };
            if let Some(u) = usage {
                let mut c = self.chunk(json!([]));
                c["usage"] = u.clone();
                out.push(sse_data(&c));
            }
        }
        out.push(Bytes::from_static(b"data: [DONE]\n\n"));
        out
    }

    fn error_event(&mut self, message: &str, kind: ErrorKind, code: &str) -> Bytes {
        sse_data(&openai_error(message, kind, code))
    }
}
