//! `ml_check_call` through the C ABI, as every binding calls it.
//!
//! * `full_window`: 256-byte arguments against a full 256-call history (the DESIGN budget:
//!   p50 < 1 µs, p99 < 5 µs);
//! * `long_run`: the same after 10,000 calls, to show the cost does not grow with run length
//!   (the window is bounded);
//! * `rules_20`: `full_window` under a policy with 20 argument rules on the tool (one JSON Schema,
//!   three regexes, sixteen exact-value rules), all of which pass (the DESIGN budget's case).
//!
//! Criterion reports means and confidence intervals (of a check and the record of its result);
//! `percentiles` (run with `cargo bench -p microloop-ffi --bench check_call -- percentiles`)
//! times single calls and prints p50/p99 of `ml_check_call`, and of `ml_record_result` of the
//! call's 167-byte answer.
//!
//! `percentiles` also runs `full_window` with the audit log on (`audit`: the same policy with an
//! `[audit]` section writing to a temporary directory) and with approval tokens on (`approval`:
//! an `[approval]` section, a token signed for every call), alternating with both off in the same
//! run.
//!
//! Policies are chosen so that the measured call is allowed (a blocked call is cheaper: it stops
//! at the first rule that fires): the arguments cycle through 300 variants so exact repeats stay
//! below every threshold.

use std::hint::black_box;
use std::ptr;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion};
use microloop::*;

/// A policy for the benchmark: `MICROLOOP_BENCH_POLICY` if set (JSON text), else balanced.
fn policy() -> String {
    std::env::var("MICROLOOP_BENCH_POLICY").unwrap_or_else(|_| "balanced".to_string())
}

#[path = "support/workload.rs"]
mod workload;
use workload::{args, rules_policy, RESULT, TOOL};

fn new_session(policy: &str) -> *mut ml_session {
    let mut s = ptr::null_mut();
    let rc = unsafe { ml_session_new(policy.as_ptr(), policy.len(), &mut s, ptr::null_mut()) };
    assert_eq!(rc, ML_OK, "policy refused: {policy}");
    s
}

fn verdict() -> ml_verdict {
    ml_verdict {
        size: std::mem::size_of::<ml_verdict>(),
        action: 0,
        count: 0,
        call_id: 0,
        rule: ptr::null_mut(),
        rule_len: 0,
        message: ptr::null_mut(),
        message_len: 0,
        approval: ptr::null_mut(),
        approval_len: 0,
        approval_error: ptr::null_mut(),
        approval_error_len: 0,
        observed: 0,
    }
}

/// One check (and the record of its result when it may run); returns the action.
fn step(s: *mut ml_session, a: &[u8], record: bool) -> i32 {
    let mut v = verdict();
    let rc = unsafe { ml_check_call(s, TOOL.as_ptr(), TOOL.len(), a.as_ptr(), a.len(), &mut v, ptr::null_mut()) };
    assert_eq!(rc, ML_OK);
    if record && v.call_id != 0 {
        unsafe { ml_record_result(s, v.call_id, RESULT.as_ptr(), RESULT.len(), false, ptr::null_mut()) };
    }
    let action = v.action;
    unsafe { ml_verdict_clear(&mut v) };
    action
}

fn warm(s: *mut ml_session, variants: &[Vec<u8>], calls: usize) {
    for i in 0..calls {
        step(s, &variants[i % variants.len()], true);
    }
}

fn bench(c: &mut Criterion) {
    let policy = policy();
    let variants: Vec<Vec<u8>> = (0..300).map(args).collect();
    let mut group = c.benchmark_group("ml_check_call");

    let rules = rules_policy();
    for (name, history, policy) in [("full_window", 256usize, &policy), ("long_run", 10_000, &policy), ("rules_20", 256, &rules)] {
        let s = new_session(policy);
        warm(s, &variants, history);
        let mut i = history;
        group.bench_function(name, |b| {
            b.iter(|| {
                i += 1;
                black_box(step(s, &variants[i % variants.len()], true))
            })
        });
        unsafe { ml_session_free(s) };
    }
    group.finish();
}

/// `policy` with an `[audit]` section: a fresh key and log in a temporary directory.
fn audit_policy(policy: &str) -> String {
    let dir = std::env::temp_dir().join(format!("microloop-bench-audit-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    microloop_audit::log::new_key_file(&dir.join("audit.key"), "bench.example/audit").unwrap();
    let mut doc: serde_json::Value = match serde_json::from_str(policy) {
        Ok(v @ serde_json::Value::Object(_)) => v,
        _ => serde_json::json!({ "preset": policy }),
    };
    doc["audit"] = serde_json::json!({ "path": dir.join("audit.log"), "key_file": dir.join("audit.key") });
    doc.to_string()
}

/// `policy` with an `[approval]` section: a fresh signer key in a temporary directory.
fn approval_policy(policy: &str) -> String {
    let dir = std::env::temp_dir().join(format!("microloop-bench-approval-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    microloop_audit::log::new_key_file(&dir.join("approval.key"), "bench.example/approval").unwrap();
    let mut doc: serde_json::Value = match serde_json::from_str(policy) {
        Ok(v @ serde_json::Value::Object(_)) => v,
        _ => serde_json::json!({ "preset": policy }),
    };
    doc["approval"] = serde_json::json!({ "key_file": dir.join("approval.key"), "audience": "bench.example" });
    doc.to_string()
}

/// p50 / p99 of single calls (check + record), timed one by one.
fn percentiles(_: &mut Criterion) {
    let policy = policy();
    let variants: Vec<Vec<u8>> = (0..300).map(args).collect();
    let rules = rules_policy();
    let audit = audit_policy(&policy);
    let approval = approval_policy(&policy);
    let cases = [
        ("full_window", 256usize, &policy),
        ("audit", 256, &audit),
        ("approval", 256, &approval),
        ("full_window", 256, &policy),
        ("audit", 256, &audit),
        ("approval", 256, &approval),
        ("long_run", 10_000, &policy),
        ("rules_20", 256, &rules),
    ];
    for (name, history, policy) in cases {
        let s = new_session(policy);
        warm(s, &variants, history);
        let mut check_ns = Vec::with_capacity(200_000);
        let mut record_ns = Vec::with_capacity(200_000);
        let mut i = history;
        for _ in 0..200_000 {
            i += 1;
            let a = &variants[i % variants.len()];
            let mut v = verdict();
            let t = Instant::now();
            let rc = unsafe { ml_check_call(s, TOOL.as_ptr(), TOOL.len(), a.as_ptr(), a.len(), &mut v, ptr::null_mut()) };
            check_ns.push(t.elapsed().as_nanos() as u64);
            assert_eq!(rc, ML_OK);
            assert!(v.action <= ML_ACTION_WARN, "the benchmark call was blocked: adjust the policy");
            assert_eq!(v.approval.is_null(), name != "approval", "a token exactly under [approval]");
            let t = Instant::now();
            let rc = unsafe { ml_record_result(s, v.call_id, RESULT.as_ptr(), RESULT.len(), false, ptr::null_mut()) };
            record_ns.push(t.elapsed().as_nanos() as u64);
            assert_eq!(rc, ML_OK);
            unsafe { ml_verdict_clear(&mut v) };
        }
        for (call, what, ns) in [("ml_check_call", "256-byte args", &mut check_ns), ("ml_record_result", "167-byte answer", &mut record_ns)] {
            ns.sort_unstable();
            let p = |q: f64| ns[((ns.len() - 1) as f64 * q) as usize];
            println!("{call}/{name}: p50 {} ns, p90 {} ns, p99 {} ns, p99.9 {} ns (200000 calls, {what})", p(0.5), p(0.9), p(0.99), p(0.999));
        }
        unsafe { ml_session_free(s) };
    }
}

criterion_group!(benches, bench, percentiles);
criterion_main!(benches);
