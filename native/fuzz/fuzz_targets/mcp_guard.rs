//! The MCP relay's reading of JSON-RPC messages (native/mcp's guard, compiled here from its
//! source: the relay is a binary): newline-delimited messages from the client and the server,
//! in any order, as the stdio and HTTP transports hand them over. Every line the guard writes in a
//! message's place is one JSON value on one line; none panics.
//!
//! Input: lines; a line starting with `S` is from the server, `X` closes the server, `N` is a
//! client message that could not be delivered, `C` (or anything else) is from the client.
#![no_main]

mod common;
#[allow(dead_code)]
#[path = "../../mcp/src/guard.rs"]
mod guard;

use std::sync::Arc;

use guard::{FromClient, FromServer, Guard};
use libfuzzer_sys::fuzz_target;
use microloop_core::Policy;
use serde_json::Value;

fn assert_one_json_line(what: &str, bytes: &[u8]) {
    assert!(!bytes.contains(&b'\n'), "{what}: a newline inside the message");
    if let Err(e) = serde_json::from_slice::<Value>(bytes) {
        panic!("{what}: not JSON ({e}): {:?}", String::from_utf8_lossy(bytes));
    }
}

fuzz_target!(|data: &[u8]| {
    let (policy, engine) = (Policy::default(), common::engine().clone());
    let clock = Arc::new(microloop_host::FixedClock::new(0));
    let mut g = Guard::new(policy, engine, clock.clone());
    if data.first() == Some(&b'H') {
        g = g.shared();
    }
    for line in data.split(|&b| b == b'\n') {
        clock.advance(10);
        match line.first() {
            Some(b'S') => match g.on_server(&line[1..]) {
                FromServer::Forward => {}
                FromServer::Replace(r) => assert_one_json_line("on_server", &r),
            },
            Some(b'X') => {
                for a in g.server_closed("exit status 1") {
                    assert_one_json_line("server_closed", &a);
                }
            }
            Some(b'N') => {
                if let Some(a) = g.not_delivered(&line[1..], "connection refused") {
                    assert_one_json_line("not_delivered", &a);
                }
            }
            _ => {
                let l = line.strip_prefix(b"C").unwrap_or(line);
                match g.on_client(l) {
                    FromClient::Forward => {}
                    FromClient::Answer(a) => assert_one_json_line("on_client", &a),
                    FromClient::Amend(a) => assert_one_json_line("on_client (amended)", &a),
                }
            }
        }
        let _ = g.take_notes();
    }
});
