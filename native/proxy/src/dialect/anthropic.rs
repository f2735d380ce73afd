//! Anthropic Messages: `POST /v1/messages`.
//!
//! Calls are `tool_use` blocks of an assistant message (input as a JSON object), results are
//! `tool_result` blocks of the next user message, matched by `tool_use_id`. Claude Code's shapes
//! are understood: `role: "system"` reminders between turns are not steps, a warning goes to the
//! latest tool result wherever it is, and tools marked `defer_loading` (loaded later through
//! ToolSearch) make the tool set open. A stream is `event:` + `data:` pairs; block indexes stay
//! contiguous and a stream never starts a second message.

use std::collections::BTreeMap;

use bytes::Bytes;
use serde_json::{json, Value};

use super::{Hold, append_text, event_data, sse_event, Dialect, ErrorKind, Follower, Outcome, Step, ToolCall};
use microloop_host::conversation;

pub struct Anthropic;

impl Dialect for Anthropic {
    fn name(&self) -> &'static str {
        "anthropic"
    }

    fn route(&self) -> &'static str {
        "messages"
    }

    fn guards(&self, path: &str) -> bool {
        path == "/v1/messages"
    }

    fn owns(&self, path: &str) -> bool {
        path.starts_with("/v1/messages")
    }

    fn default_upstream(&self) -> &'static str {
        "https://api.anthropic.com"
    }

    fn tools(&self, req: &Value) -> Option<Vec<String>> {
        conversation::anthropic::tools(req)
    }

    fn steps<'a>(&self, req: &'a Value) -> Vec<Step<'a>> {
        conversation::anthropic::steps(req)
    }

    fn calls(&self, resp: &Value) -> Vec<Vec<ToolCall>> {
        vec![resp.get("content").and_then(Value::as_array).map(|b| block_calls(b)).unwrap_or_default()]
    }

    fn apply_warnings(&self, req: &mut Value, text: &str) -> bool {
        let Some(messages) = req.get_mut("messages").and_then(Value::as_array_mut) else { return false };
        for m in messages.iter_mut().rev() {
            if m["role"] == "assistant" {
                return false;
            }
            let Some(blocks) = m.get_mut("content").and_then(Value::as_array_mut) else { continue };
            if let Some(b) = blocks.iter_mut().rev().find(|b| b["type"] == "tool_result") {
                append_text(b, "content", text);
                return true;
            }
        }
        false
    }

    fn reask(&self, req: &Value, resp: &Value, calls: &[ToolCall], results: &[String], stream: bool) -> Value {
        let mut body = req.clone();
        if let Some(o) = body.as_object_mut() {
            o.insert("stream".into(), Value::Bool(stream));
        }
        let Some(messages) = body.get_mut("messages").and_then(Value::as_array_mut) else { return body };
        let content = resp.get("content").cloned().unwrap_or_else(|| json!([]));
        messages.push(json!({"role": "assistant", "content": content}));
        let results: Vec<Value> = calls
            .iter()
            .zip(results)
            .map(|(c, text)| json!({"type": "tool_result", "tool_use_id": c.id, "content": text, "is_error": true}))
            .collect();
        messages.push(json!({"role": "user", "content": results}));
        body
    }

    fn stop_turn(&self, resp: &mut Value, _choice: usize, text: &str) {
        let Some(o) = resp.as_object_mut() else { return };
        if let Some(blocks) = o.get_mut("content").and_then(Value::as_array_mut) {
            blocks.retain(|b| b["type"] != "tool_use");
            blocks.push(json!({"type": "text", "text": text}));
        }
        o.insert("stop_reason".into(), "end_turn".into());
        o.insert("stop_sequence".into(), Value::Null);
    }

    fn error_body(&self, message: &str, kind: ErrorKind, _code: &str) -> Value {
        anthropic_error(message, kind)
    }

    fn follower(&self, _req: &Value) -> Box<dyn Follower> {
        Box::<MessageStream>::default()
    }
}

fn anthropic_error(message: &str, kind: ErrorKind) -> Value {
    let kind = match kind {
        ErrorKind::InvalidRequest => "invalid_request_error",
        ErrorKind::Upstream => "api_error",
        ErrorKind::NotFound => "not_found_error",
    };
    json!({"type": "error", "error": {"type": kind, "message": message}})
}

pub use microloop_host::conversation::anthropic::block_calls;

/// An Anthropic Messages stream being followed.
#[derive(Default)]
struct MessageStream {
    hold: Hold,
    /// Index of the first held block: a replacement starts there.
    first_held: Option<u64>,
    message: Option<Value>,
    blocks: BTreeMap<u64, Value>,
    partial_json: BTreeMap<u64, String>,
    stop_reason: Option<Value>,
    usage: Value,
    ended: bool,
    bad: Option<String>,
}

impl Follower for MessageStream {
    fn follow(&mut self, raw: &[u8]) -> bool {
        // After an event that is not the API's nothing more goes out: the stream ends with the error event.
        self.bad.is_none() && self.read(raw)
    }

    held_in_field!();

    fn answer(&self) -> Value {
        let mut msg = self.message.clone().unwrap_or_else(|| json!({"type": "message", "role": "assistant"}));
        let content: Vec<Value> = self
            .blocks
            .iter()
            .map(|(i, b)| {
                let mut b = b.clone();
                if b["type"] == "tool_use" {
                    let text = self.partial_json.get(i).map(String::as_str).unwrap_or("");
                    b["input"] = if text.trim().is_empty() {
                        json!({})
                    } else {
                        serde_json::from_str(text).unwrap_or(Value::String(text.to_owned()))
                    };
                }
                b
            })
            .collect();
        msg["content"] = Value::Array(content);
        msg["stop_reason"] = self.stop_reason.clone().unwrap_or_else(|| "tool_use".into());
        msg["usage"] = self.usage.clone();
        msg
    }

    fn complete(&self) -> bool {
        self.ended
    }

    fn broken(&self) -> Option<String> {
        self.bad.clone().or_else(|| (!self.ended).then(|| "the upstream's stream ended before message_stop".to_owned()))
    }

    fn finish(self: Box<Self>, outcome: Outcome) -> Vec<Bytes> {
        let (resp, usage, stop) = match outcome {
            Outcome::Allowed => return self.hold.events,
            Outcome::Stopped(r) => (r, self.usage.clone(), Value::from("end_turn")),
            Outcome::Reasked(r) => (
                r,
                r.get("usage").cloned().unwrap_or_else(|| self.usage.clone()),
                r.get("stop_reason").cloned().unwrap_or_else(|| "end_turn".into()),
            ),
        };
        let index = self.first_held.unwrap_or(0);
        let blocks = resp.get("content").and_then(Value::as_array).cloned().unwrap_or_default();
        // A stopped turn keeps the blocks already sent; a re-asked one starts where the held part did.
        let skip = if matches!(outcome, Outcome::Stopped(_)) { index as usize } else { 0 };
        let mut out = block_events(blocks.get(skip..).unwrap_or(&[]), index);
        out.push(sse_event(&json!({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": null}, "usage": usage})));
        out.push(sse_event(&json!({"type": "message_stop"})));
        out
    }

    fn error_event(&mut self, message: &str, kind: ErrorKind, _code: &str) -> Bytes {
        sse_event(&anthropic_error(message, kind))
    }
}

impl MessageStream {
    fn read(&mut self, raw: &[u8]) -> bool {
        let Some(data) = event_data(raw) else { return true };
        let Ok(ev) = serde_json::from_str::<Value>(&data) else {
            self.bad.get_or_insert_with(|| "the upstream sent a stream event that is not JSON".to_owned());
            return false;
        };
        let index = ev.get("index").and_then(Value::as_u64).unwrap_or(0);
        match ev["type"].as_str() {
            Some("message_start") => {
                self.usage = ev.pointer("/message/usage").cloned().unwrap_or_else(|| json!({}));
                // The answer is built on it: anything but an object is left for the default.
                self.message = Some(ev["message"].clone()).filter(Value::is_object);
            }
            Some("content_block_start") => {
                let block = ev["content_block"].clone();
                if block["type"] == "tool_use" {
                    self.hold.on = true;
                    self.first_held.get_or_insert(index);
                }
                self.blocks.insert(index, block);
            }
            Some("content_block_delta") => {
                let d = &ev["delta"];
                if let Some(b) = self.blocks.get_mut(&index) {
                    match d["type"].as_str() {
                        Some("text_delta") => push_str(b, "text", d["text"].as_str()),
                        Some("thinking_delta") => push_str(b, "thinking", d["thinking"].as_str()),
                        Some("signature_delta") => b["signature"] = d["signature"].clone(),
                        Some("input_json_delta") => {
                            self.partial_json.entry(index).or_default().push_str(d["partial_json"].as_str().unwrap_or(""))
                        }
                        _ => {}
                    }
                }
            }
            Some("message_delta") => {
                self.stop_reason = ev.pointer("/delta/stop_reason").cloned();
                if let (Some(u), Some(o)) = (ev.get("usage").and_then(Value::as_object), self.usage.as_object_mut()) {
                    for (k, v) in u {
                        o.insert(k.clone(), v.clone());
                    }
                }
            }
            // An upstream error event is the upstream's word: it passes as it is and ends the stream.
            Some("message_stop") | Some("error") => self.ended = true,
            _ => {}
        }
        true
    }
}

fn push_str(b: &mut Value, key: &str, s: Option<&str>) {
    let cur = b.get(key).and_then(Value::as_str).unwrap_or("").to_owned();
    b[key] = Value::String(cur + s.unwrap_or(""));
}

/// Content blocks as stream events from `index` on (a replacement keeps the index).
fn block_events(blocks: &[Value], mut index: u64) -> Vec<Bytes> {
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
