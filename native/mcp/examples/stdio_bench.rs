//! Added latency of the stdio relay per `tools/call`:
//!
//!     cargo run --release -p microloop-mcp --example stdio_bench -- RELAY SERVER [CALLS]
//!
//! Starts SERVER twice, once directly and once under RELAY (`RELAY -- SERVER`), initializes both,
//! lists the tools, then sends CALLS `tools/call` requests to each, alternating between the two so
//! both see the same machine load, one at a time, each with different arguments (so none is
//! blocked). Prints the round-trip percentiles of each and their differences.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Instant;

struct Peer {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    line: String,
}

impl Peer {
    fn start(cmd: &[String]) -> Peer {
        let mut child = Command::new(&cmd[0]).args(&cmd[1..]).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().expect("spawn");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut p = Peer { child, stdin, stdout, line: String::new() };
        p.round_trip(r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}}"#);
        p.stdin.write_all(b"{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}\n").unwrap();
        p.round_trip(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#);
        p
    }

    fn round_trip(&mut self, msg: &str) -> u64 {
        let t0 = Instant::now();
        self.stdin.write_all(msg.as_bytes()).unwrap();
        self.stdin.write_all(b"\n").unwrap();
        self.stdin.flush().unwrap();
        self.line.clear();
        self.stdout.read_line(&mut self.line).unwrap();
        let ns = t0.elapsed().as_nanos() as u64;
        assert!(!self.line.contains("\"isError\":true") && self.line.contains("\"result\""), "{}", self.line);
        ns
    }
}

fn pct(sorted: &[u64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize] as f64 / 1000.0
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (relay, server) = (&args[0], &args[1]);
    let calls: usize = args.get(2).map_or(20_000, |n| n.parse().unwrap());
    let mut direct = Peer::start(std::slice::from_ref(server));
    let mut relayed = Peer::start(&[relay.clone(), "--".into(), server.clone()]);
    let (mut d, mut r) = (Vec::with_capacity(calls), Vec::with_capacity(calls));
    for i in 0..calls + 1000 {
        let msg = format!(r#"{{"jsonrpc":"2.0","id":{},"method":"tools/call","params":{{"name":"lookup","arguments":{{"key":"k{i}"}}}}}}"#, i + 10);
        let (a, b) = if i % 2 == 0 {
            (direct.round_trip(&msg), relayed.round_trip(&msg))
        } else {
            let b = relayed.round_trip(&msg);
            (direct.round_trip(&msg), b)
        };
        if i >= 1000 {
            d.push(a);
            r.push(b);
        }
    }
    d.sort_unstable();
    r.sort_unstable();
    println!("calls per side: {calls} (after 1000 warm-up)");
    println!("{:<10} {:>10} {:>10} {:>10}", "", "p50 us", "p90 us", "p99 us");
    for (name, v) in [("direct", &d), ("relayed", &r)] {
        println!("{name:<10} {:>10.1} {:>10.1} {:>10.1}", pct(v, 0.5), pct(v, 0.9), pct(v, 0.99));
    }
    println!("{:<10} {:>10.1} {:>10.1} {:>10.1}", "added", pct(&r, 0.5) - pct(&d, 0.5), pct(&r, 0.9) - pct(&d, 0.9), pct(&r, 0.99) - pct(&d, 0.99));
    drop(direct.stdin);
    drop(relayed.stdin);
    let _ = direct.child.wait();
    let _ = relayed.child.wait();
}
