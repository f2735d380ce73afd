//! Server-sent events: splitting a byte stream into events, and following an answer as it streams.
//!
//! Text passes through at once; from the first tool-call fragment on, events are held until the
//! answer is complete and its calls judged ([`OpenAiStream`], [`AnthropicStream`]).

use std::collections::BTreeMap;

use bytes::Bytes;
use serde_json::{json, Value};

/// Cuts a byte stream into whole events (each with its blank-line terminator).
#[derive(Default)]
pub struct SseSplitter {
    buf: Vec<u8>,
}

impl SseSplitter {
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<Bytes>) {
        self.buf.extend_from_slice(chunk);
        let mut start = 0;
        let mut i = 0;
        while i + 1 < self.buf.len() {
            let end = if self.buf[i] == b'\n' && self.buf[i + 1] == b'\n' {
                Some(i + 2)
            } else if self.buf[i..].starts_with(b"\r\n\r\n") {
                Some(i + 4)
            } else {
                None
            };
            match end {
                Some(e) => {
                    out.push(Bytes::copy_from_slice(&self.buf[start..e]));
                    start = e;
                    i = e;
                }
                None => i += 1,
            }
        }
        self.buf.drain(..start);
    }

    /// What is left when the stream ends (an event without its terminator).
    pub fn finish(self) -> Option<Bytes> {
        let rest = String::from_utf8_lossy(&self.buf);
        (!rest.trim().is_empty()).then(|| Bytes::from(format!("{}\n\n", rest.trim_end())))
    }
}

/// The `data:` payload of an event (lines joined).
pub fn event_data(raw: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(raw).ok()?;
    let mut data: Option<String> = None;
    for line in text.lines() {
        if let Some(d) = line.strip_prefix("data:") {
            let d = d.strip_prefix(' ').unwrap_or(d);
            match &mut data {
                Some(s) => {
                    s.push('\n');
                    s.push_str(d);
                }
                None => data = Some(d.to_owned()),
            }
        }
    }
    data
}

/// An OpenAI Chat Completions stream being followed (choice 0).
#[derive(Default)]
pub struct OpenAiStream {
    pub holding: bool,
    pub held: Vec<Bytes>,
    /// id, object, created, model… of the stream's chunks, to write chunks of our own.
    pub head: Option<Value>,
    pub role_sent: bool,
    pub saw_done: bool,
    text: String,
    calls: BTreeMap<u64, (String, String, String)>,
    finish: Option<Value>,
    usage: Option<Value>,
}

impl OpenAiStream {
    /// Takes one event; true when it goes to the client now, false when it is held.
    pub fn on_event(&mut self, raw: &Bytes) -> bool {
        let Some(data) = event_data(raw) else { return !self.holding };
        if data.trim() == "[DONE]" {
            self.saw_done = true;
            return !self.holding;
        }
        let Ok(chunk) = serde_json::from_str::<Value>(&data) else { return !self.holding };
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
        let choice = chunk
            .get("choices")
            .and_then(Value::as_array)
            .and_then(|cs| cs.iter().find(|c| c.get("index").and_then(Value::as_u64).unwrap_or(0) == 0));
        if let Some(choice) = choice {
            let delta = &choice["delta"];
            if let Some(t) = delta.get("content").and_then(Value::as_str) {
                self.text.push_str(t);
            }
            if let Some(calls) = delta.get("tool_calls").and_then(Value::as_array) {
                self.holding = true;
                for c in calls {
                    let idx = c.get("index").and_then(Value::as_u64).unwrap_or(0);
                    let e = self.calls.entry(idx).or_default();
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
            }
            if let Some(f) = choice.get("finish_reason").filter(|f| !f.is_null()) {
                self.finish = Some(f.clone());
            }
            if delta.get("role").is_some() && !self.holding {
                self.role_sent = true;
            }
        }
        !self.holding
    }

    pub fn has_calls(&self) -> bool {
        !self.calls.is_empty()
    }

    /// The answer so far, shaped like a non-streaming one.
    pub fn answer(&self) -> Value {
        let calls: Vec<Value> = self
            .calls
            .values()
            .map(|(id, name, args)| json!({"id": id, "type": "function", "function": {"name": name, "arguments": args}}))
            .collect();
        let mut resp = self.head.clone().unwrap_or_else(|| json!({}));
        resp["object"] = "chat.completion".into();
        let content = if self.text.is_empty() { Value::Null } else { Value::String(self.text.clone()) };
        let mut message = json!({"role": "assistant", "content": content});
        if !calls.is_empty() {
            message["tool_calls"] = Value::Array(calls);
        }
        resp["choices"] = json!([{"index": 0, "message": message,
            "finish_reason": self.finish.clone().unwrap_or_else(|| "tool_calls".into())}]);
        if let Some(u) = &self.usage {
            resp["usage"] = u.clone();
        }
        resp
    }

    /// The held usage chunk, to send after our own chunks.
    pub fn usage_chunk(&self) -> Option<Value> {
        let mut c = self.head.clone()?;
        c["choices"] = json!([]);
        c["usage"] = self.usage.clone()?;
        Some(c)
    }
}

/// An Anthropic Messages stream being followed.
#[derive(Default)]
pub struct AnthropicStream {
    pub holding: bool,
    pub held: Vec<Bytes>,
    /// Index of the first held block: a replacement starts there.
    pub first_held: Option<u64>,
    message: Option<Value>,
    blocks: BTreeMap<u64, Value>,
    partial_json: BTreeMap<u64, String>,
    stop_reason: Option<Value>,
    pub usage: Value,
}

impl AnthropicStream {
    pub fn on_event(&mut self, raw: &Bytes) -> bool {
        let Some(data) = event_data(raw) else { return !self.holding };
        let Ok(ev) = serde_json::from_str::<Value>(&data) else { return !self.holding };
        let index = ev.get("index").and_then(Value::as_u64).unwrap_or(0);
        match ev["type"].as_str() {
            Some("message_start") => {
                self.usage = ev.pointer("/message/usage").cloned().unwrap_or_else(|| json!({}));
                self.message = Some(ev["message"].clone());
            }
            Some("content_block_start") => {
                let block = ev["content_block"].clone();
                if block["type"] == "tool_use" {
                    self.holding = true;
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
            _ => {}
        }
        !self.holding
    }

    pub fn has_calls(&self) -> bool {
        self.first_held.is_some()
    }

    /// The message so far, shaped like a non-streaming one.
    pub fn answer(&self) -> Value {
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
}

fn push_str(b: &mut Value, key: &str, s: Option<&str>) {
    let cur = b.get(key).and_then(Value::as_str).unwrap_or("").to_owned();
    b[key] = Value::String(cur + s.unwrap_or(""));
}
