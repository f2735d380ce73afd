//! Each proxy dialect (OpenAI Chat Completions, Responses, Anthropic Messages, Gemini) reading a
//! client's request: the tools it offers, the conversation it carries (replayed into a session),
//! warnings written into it, hidden calls answered, a stored conversation joined. The first byte
//! picks the dialect; the rest is the request body.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use microloop_proxy::trajectory::{note, replay};
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, body)) = data.split_first() else { return };
    let d = common::dialect(sel);
    let Ok(mut req) = serde_json::from_slice::<Value>(body) else { return };
    let _ = d.tools(&req);
    let _ = d.streaming(&req, "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse");
    let _ = d.keeps(&req);
    let rp = replay(d, &req, common::engine());
    let text = match rp.warnings.first() {
        Some(v) => note(v),
        None => "[microloop] a warning".to_owned(),
    };
    drop(rp);
    // What the server does to a request it forwards: every edit keeps it serializable.
    if let Some(prev) = d.continues(&req).map(str::to_owned) {
        let prior = vec![serde_json::json!({"type": "message", "role": "user", "content": "before"})];
        let hidden = vec!["call_1".to_owned(), prev];
        d.answer_hidden(&mut req, &hidden);
        let joined = d.joined(&req, &prior);
        let _ = replay(d, &joined, common::engine());
    }
    d.apply_warnings(&mut req, &text);
    let out = serde_json::to_vec(&req).expect("an edited request serializes");
    serde_json::from_slice::<Value>(&out).expect("and reads back");
    let f = d.follower(&req);
    let _ = f.answer();
    let _ = f.broken();
});
