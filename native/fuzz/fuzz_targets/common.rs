//! What the proxy targets share: an engine, and a plain request of each dialect.
#![allow(dead_code)]

use std::sync::{Arc, OnceLock};

use microloop_core::{Engine, Policy};
use microloop_proxy::dialect::{Dialect, DIALECTS};
use serde_json::{json, Value};

/// The default policy (balanced), compiled once.
pub fn engine() -> &'static Arc<Engine> {
    static E: OnceLock<Arc<Engine>> = OnceLock::new();
    E.get_or_init(|| microloop_host::engine_for(Policy::default()).expect("the default policy compiles"))
}

pub fn dialect(sel: u8) -> &'static dyn Dialect {
    DIALECTS[usize::from(sel) % DIALECTS.len()]
}

/// A plain streaming request in the dialect's own shape, offering the tool `bash`.
pub fn request(d: &dyn Dialect) -> Value {
    match d.name() {
        "openai" => json!({"model": "m", "stream": true, "messages": [{"role": "user", "content": "hi"}],
            "tools": [{"type": "function", "function": {"name": "bash", "parameters": {"type": "object"}}}]}),
        "responses" => json!({"model": "m", "stream": true, "store": true, "input": "hi",
            "tools": [{"type": "function", "name": "bash", "parameters": {"type": "object"}}]}),
        "anthropic" => json!({"model": "m", "max_tokens": 100, "stream": true, "messages": [{"role": "user", "content": "hi"}],
            "tools": [{"name": "bash", "input_schema": {"type": "object"}}]}),
        _ => json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}],
            "tools": [{"functionDeclarations": [{"name": "bash", "parameters": {"type": "object"}}]}]}),
    }
}

/// The text of an event's `data:` lines is JSON (or the OpenAI stream's `[DONE]`).
pub fn assert_event_is_json(ev: &[u8]) {
    let data = microloop_proxy::dialect::event_data(ev).unwrap_or_else(|| panic!("an event without data: {:?}", String::from_utf8_lossy(ev)));
    assert!(data == "[DONE]" || serde_json::from_str::<Value>(&data).is_ok(), "an event whose data is not JSON: {data:?}");
}

/// An upstream event the proxy held and relays as it came: its data is JSON, or what the OpenAI
/// follower reads as the stream's end (`[DONE]` with white space around it, as in
/// `data:\ndata: [DONE]`, whose data is "\n[DONE]"). The proxy relays the upstream's bytes; it
/// does not rewrite them.
pub fn assert_upstream_event_was_read(ev: &[u8]) {
    let data = microloop_proxy::dialect::event_data(ev).unwrap_or_else(|| panic!("an event without data: {:?}", String::from_utf8_lossy(ev)));
    assert!(data.trim() == "[DONE]" || serde_json::from_str::<Value>(&data).is_ok(), "a relayed event whose data is not JSON: {data:?}");
}
