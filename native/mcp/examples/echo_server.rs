//! A minimal MCP server over stdio for the relay's benchmark: it lists one tool (`lookup`, with an
//! input schema) and answers each `tools/call` at once with a text naming the call's argument, so
//! what is measured is the transport, not the server.

use std::io::{self, BufRead, Write};

fn main() {
    let stdin = io::stdin();
    let mut out = io::stdout().lock();
    let mut line = String::new();
    let mut input = stdin.lock();
    loop {
        line.clear();
        if input.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(&line) else { continue };
        let Some(id) = msg.get("id") else { continue };
        let result = match msg["method"].as_str() {
            Some("initialize") => serde_json::json!({"protocolVersion": "2025-06-18", "capabilities": {"tools": {}}, "serverInfo": {"name": "echo", "version": "1"}}),
            Some("tools/list") => serde_json::json!({"tools": [{"name": "lookup", "inputSchema": {"type": "object", "properties": {"key": {"type": "string"}}, "required": ["key"]}}]}),
            Some("tools/call") => {
                let key = msg["params"]["arguments"]["key"].as_str().unwrap_or("");
                serde_json::json!({"content": [{"type": "text", "text": format!("value of {key}")}]})
            }
            _ => serde_json::json!({}),
        };
        let answer = serde_json::json!({"jsonrpc": "2.0", "id": id, "result": result});
        let _ = writeln!(out, "{answer}");
        let _ = out.flush();
    }
}
