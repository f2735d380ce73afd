//! The benchmark's workload, shared by `benches/check_call.rs` and `examples/check_profile.rs`
//! so wall-clock and instruction-count figures measure the same calls.

/// 20 argument rules on the benchmark's tool, all passing: one schema, three regexes, the rest
/// exact values.
pub fn rules_policy() -> String {
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

/// 256 bytes of arguments, the `i`-th of 300 variants.
pub fn args(i: usize) -> Vec<u8> {
    let mut a = format!(
        r#"{{"query":"flights from SFO to JFK on 2024-05-{:02}","max_results":{},"filters":{{"airline":"UA","cabin":"economy","stops":[0,1]}},"page":{},"note":""#,
        1 + i % 28,
        10 + i % 7,
        i
    )
    .into_bytes();
    a.resize(254, b'x');
    a.extend_from_slice(b"\"}");
    assert_eq!(a.len(), 256);
    a
}

pub const TOOL: &[u8] = b"search_flights";
pub const RESULT: &[u8] = b"[{\"flight\":\"UA100\",\"departs\":\"08:00\",\"price\":420},{\"flight\":\"UA200\",\"departs\":\"12:30\",\"price\":380},{\"flight\":\"UA300\",\"departs\":\"18:45\",\"price\":455}] 3 results in 120ms";
