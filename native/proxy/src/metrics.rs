//! Prometheus text metrics: requests, upstream latency, blocks by rule.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::Duration;

const BUCKETS_S: [f64; 12] = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 60.0];

#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(&'static str, u16), u64>>,
    blocks: Mutex<BTreeMap<String, u64>>,
    /// Shadow mode: verdicts that would have warned, blocked or halted, by (action, rule).
    observed: Mutex<BTreeMap<(&'static str, String), u64>>,
    /// Shadow mode: every call judged.
    pub observed_calls: AtomicU64,
    latency_buckets: [AtomicU64; BUCKETS_S.len()],
    latency_count: AtomicU64,
    latency_sum_us: AtomicU64,
    pub reasks: AtomicU64,
    pub warnings: AtomicU64,
    pub upstream_errors: AtomicU64,
    pub overloaded: AtomicU64,
}

impl Metrics {
    pub fn request(&self, route: &'static str, status: u16) {
        *self.requests.lock().unwrap().entry((route, status)).or_default() += 1;
    }

    pub fn block(&self, rule: &str) {
        *self.blocks.lock().unwrap().entry(rule.to_owned()).or_default() += 1;
    }

    pub fn observed(&self, action: &'static str, rule: &str) {
        *self.observed.lock().unwrap().entry((action, rule.to_owned())).or_default() += 1;
    }

    pub fn upstream_latency(&self, d: Duration) {
        let s = d.as_secs_f64();
        for (i, b) in BUCKETS_S.iter().enumerate() {
            if s <= *b {
                self.latency_buckets[i].fetch_add(1, Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Relaxed);
        self.latency_sum_us.fetch_add(d.as_micros() as u64, Relaxed);
    }

    pub fn render(&self) -> String {
        let mut o = String::new();
        o.push_str("# HELP microloop_proxy_requests_total Requests answered, by route and status.\n");
        o.push_str("# TYPE microloop_proxy_requests_total counter\n");
        for ((route, status), n) in self.requests.lock().unwrap().iter() {
            let _ = writeln!(o, "microloop_proxy_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}");
        }
        o.push_str("# HELP microloop_proxy_blocks_total Tool calls withheld, by rule.\n");
        o.push_str("# TYPE microloop_proxy_blocks_total counter\n");
        for (rule, n) in self.blocks.lock().unwrap().iter() {
            let _ = writeln!(o, "microloop_proxy_blocks_total{{rule=\"{rule}\"}} {n}");
        }
        o.push_str("# HELP microloop_proxy_observed_total Shadow mode: tool calls let run that would have been warned, blocked or halted, by action and rule.\n");
        o.push_str("# TYPE microloop_proxy_observed_total counter\n");
        for ((action, rule), n) in self.observed.lock().unwrap().iter() {
            let _ = writeln!(o, "microloop_proxy_observed_total{{action=\"{action}\",rule=\"{rule}\"}} {n}");
        }
        for (name, help, v) in [
            ("observed_calls", "Shadow mode: tool calls judged and let run.", &self.observed_calls),
            ("reasks", "Re-asks sent upstream after a block.", &self.reasks),
            ("warnings", "Notes appended to a tool result.", &self.warnings),
            ("upstream_errors", "Upstream unreachable, timed out or malformed.", &self.upstream_errors),
            ("overloaded", "Requests refused with 503: --max-concurrent in flight.", &self.overloaded),
        ] {
            let _ = writeln!(o, "# HELP microloop_proxy_{name}_total {help}\n# TYPE microloop_proxy_{name}_total counter");
            let _ = writeln!(o, "microloop_proxy_{name}_total {}", v.load(Relaxed));
        }
        o.push_str("# HELP microloop_proxy_upstream_seconds Time to the upstream's response headers.\n");
        o.push_str("# TYPE microloop_proxy_upstream_seconds histogram\n");
        for (i, b) in BUCKETS_S.iter().enumerate() {
            let _ = writeln!(o, "microloop_proxy_upstream_seconds_bucket{{le=\"{b}\"}} {}", self.latency_buckets[i].load(Relaxed));
        }
        let count = self.latency_count.load(Relaxed);
        let _ = writeln!(o, "microloop_proxy_upstream_seconds_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(o, "microloop_proxy_upstream_seconds_sum {}", self.latency_sum_us.load(Relaxed) as f64 / 1e6);
        let _ = writeln!(o, "microloop_proxy_upstream_seconds_count {count}");
        o
    }
}
