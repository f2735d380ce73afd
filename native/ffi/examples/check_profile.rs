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

#[path = "../benches/support/workload.rs"]
mod workload;
use workload::{args, rules_policy, RESULT, TOOL};

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
        let mut v = ml_verdict { size: std::mem::size_of::<ml_verdict>(), action: 0, count: 0, call_id: 0, rule: ptr::null_mut(), rule_len: 0, message: ptr::null_mut(), message_len: 0, approval: ptr::null_mut(), approval_len: 0, approval_error: ptr::null_mut(), approval_error_len: 0, observed: 0 };
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
