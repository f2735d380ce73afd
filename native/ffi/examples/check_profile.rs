//! A driver for instruction counts of `ml_check_call` (wall time on a shared machine is noisy):
//! the `full_window` case of `benches/check_call.rs` (256-byte arguments, a full 256-call window,
//! each allowed call's result recorded), run `MICROLOOP_PROFILE_CALLS` times (default 10,000)
//! under `MICROLOOP_BENCH_POLICY` (default `balanced`); `rules` as first argument uses the bench's
//! 20-rule policy instead. Count only the checks with
//!
//! ```text
//! valgrind --tool=callgrind --toggle-collect=ml_check_call target/release/examples/check_profile
//! ```

use std::ptr;

use microloop::*;

fn rules_policy() -> String {
    serde_json::json!({"tools": [{"name": "search_flights",
        "schema": {"type": "object", "required": ["query"], "properties": {
            "query": {"type": "string", "maxLength": 200},
            "max_results": {"type": "integer", "minimum": 1, "maximum": 50},
            "filters": {"type": "object"}, "page": {"type": "integer", "minimum": 0},
            "note": {"type": "string"}}},
        "rules": [
            {"field": "/query", "require_regex": "^flights from [A-Z]{3} to [A-Z]{3}"},
            {"field": "/query", "deny_regex": "(?i)\\b(drop|delete)\\b"},
            {"field": "/note", "deny_regex": "(?i)password|secret"},
            {"field": "/filters/airline", "allow_values": ["UA", "AA", "DL"]},
            {"field": "/filters/cabin", "allow_values": ["economy", "business"]},
            {"field": "/filters/stops", "deny_values": [3, 4]},
            {"field": "/filters/airline", "deny_values": ["XX"]},
            {"field": "/max_results", "deny_values": [0]},
            {"field": "/max_results", "allow_values": [10, 11, 12, 13, 14, 15, 16, 20, 25]},
            {"field": "/filters/cabin", "deny_values": ["first"]},
            {"field": "/currency", "equals": "USD", "optional": true},
            {"field": "/filters/stops", "allow_values": [0, 1, 2]},
            {"field": "/page", "deny_values": [-1]},
            {"field": "/debug", "equals": false, "optional": true},
            {"field": "/filters/airline", "deny_values": ["ZZ", "YY"]},
            {"field": "/mode", "allow_values": ["search"], "optional": true},
            {"field": "/note", "deny_values": ["DROP"]},
            {"field": "/filters/cabin", "equals": "economy"},
            {"field": "/query", "deny_values": [""]}]}]})
    .to_string()
}

/// The bench's arguments: 256 bytes, the `i`-th of 300 variants.
fn args(i: usize) -> Vec<u8> {
    let mut a = format!(
        r#"{{"query":"flights from SFO to JFK on 2024-05-{:02}","max_results":{},"filters":{{"airline":"UA","cabin":"economy","stops":[0,1]}},"page":{},"note":""#,
        1 + i % 28,
        10 + i % 7,
        i
    )
    .into_bytes();
    a.resize(254, b'x');
    a.extend_from_slice(b"\"}");
    a
}

const TOOL: &[u8] = b"search_flights";
const RESULT: &[u8] = b"[{\"flight\":\"UA100\",\"departs\":\"08:00\",\"price\":420},{\"flight\":\"UA200\",\"departs\":\"12:30\",\"price\":380},{\"flight\":\"UA300\",\"departs\":\"18:45\",\"price\":455}] 3 results in 120ms";

fn main() {
    let policy = match std::env::args().nth(1).as_deref() {
        Some("rules") => rules_policy(),
        _ => std::env::var("MICROLOOP_BENCH_POLICY").unwrap_or_else(|_| "balanced".to_string()),
    };
    let calls: usize = std::env::var("MICROLOOP_PROFILE_CALLS").ok().and_then(|n| n.parse().ok()).unwrap_or(10_000);
    let variants: Vec<Vec<u8>> = (0..300).map(args).collect();
    let mut s = ptr::null_mut();
    assert_eq!(unsafe { ml_session_new(policy.as_ptr(), policy.len(), &mut s, ptr::null_mut()) }, ML_OK);
    let mut actions = [0usize; 4];
    for i in 0..256 + calls {
        let a = &variants[i % variants.len()];
        let mut v = ml_verdict { size: std::mem::size_of::<ml_verdict>(), action: 0, count: 0, call_id: 0, rule: ptr::null_mut(), rule_len: 0, message: ptr::null_mut(), message_len: 0 };
        let rc = unsafe { ml_check_call(s, TOOL.as_ptr(), TOOL.len(), a.as_ptr(), a.len(), &mut v, ptr::null_mut()) };
        assert_eq!(rc, ML_OK);
        if v.call_id != 0 {
            unsafe { ml_record_result(s, v.call_id, RESULT.as_ptr(), RESULT.len(), false, ptr::null_mut()) };
        }
        if i >= 256 {
            actions[v.action as usize] += 1;
        }
        unsafe { ml_verdict_clear(&mut v) };
    }
    println!("{calls} checks after a 256-call warm-up; actions allow/warn/block/halt: {actions:?}");
    unsafe { ml_session_free(s) };
}
