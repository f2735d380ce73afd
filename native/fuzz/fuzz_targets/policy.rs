//! The policy loader over arbitrary text: JSON (a document or a preset name), TOML and bare preset
//! names, as the C ABI, the proxy, the hook and the MCP relay read them (`microloop_host`), and
//! JSON bytes as `Policy::from_json` reads them. A policy that loads must compile, and its engine
//! must judge calls; one that does not must say why, without a panic or a hang.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use microloop_core::{Engine, Policy, Session};

const CALLS: [(&str, &[u8]); 6] = [
    ("bash", br#"{"command": "rm -rf build && make"}"#),
    ("bash", br#"{"command": "cat README.md | grep -n loop"}"#),
    ("read_file", br#"{"path": "src/main.rs"}"#),
    ("open_page", br#"{"url": "https://shop.example.com/prices", "id": 7}"#),
    ("edit_file", br#"{"path": "a.py", "old": "x = 1", "new": "x = 2"}"#),
    ("send_email", br#"{"to": ["a@example.com"], "body": "hi", "attachments": [{"name": "r.pdf", "size": 1.5e3}]}"#),
];

/// Every call twice, with results: the engine's rules and detectors all run.
fn exercise(engine: Arc<Engine>) {
    let mut s = Session::new(engine);
    s.set_tools(&["bash", "read_file", "open_page", "edit_file"]);
    for round in 0..3u64 {
        for (i, (tool, args)) in CALLS.iter().enumerate() {
            let v = s.check(tool, args, round * 1000 + i as u64).expect("a valid call");
            if v.action.runs() {
                s.record(v.call_id, b"Error: connection reset by peer (request 42)", i % 2 == 0).expect("its result");
            }
        }
    }
    let _ = s.stats();
}

fuzz_target!(|data: &[u8]| {
    if let Ok(policy) = Policy::from_json(data) {
        if let Ok(engine) = microloop_host::engine_for(policy) {
            exercise(engine);
        }
    }
    let Ok(text) = std::str::from_utf8(data) else { return };
    // The host's reading (its [audit] section parsed, not opened) and the core's.
    match microloop_host::parse_host_text(text) {
        Ok((policy, _sections)) => {
            if let Ok(engine) = microloop_host::engine_for(policy) {
                exercise(engine);
            }
        }
        Err(e) => assert!(!e.message.is_empty(), "a refusal says why"),
    }
    let _ = microloop_host::parse_text(text);
});
