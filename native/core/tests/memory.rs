//! Memory per session (DESIGN budget: < 64 KiB with the default window), measured with a
//! counting allocator: every byte a session holds on the heap once its window is full, plus the
//! session itself. Allocator overhead per block is not counted (it depends on the allocator).
//!
//! `cargo test -p microloop-core --test memory -- --nocapture` prints the figures.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::Arc;

use microloop_core::{Engine, Policy, Session};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size as isize - layout.size() as isize, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// A busy agent: 2,000 calls over 40 tools with long names, 256-byte arguments, 200-byte results,
/// one call in five failing with a long error, under `policy`.
fn fill(policy: &str) -> usize {
    let engine = Arc::new(Engine::new(Policy::from_json(policy.as_bytes()).unwrap()).unwrap());
    let before = LIVE.load(Ordering::Relaxed);
    let mut session = Box::new(Session::new(engine));
    // Under Miri (`make miri`) 300 calls, the window (256) full and sliding: 2,000 are too slow there.
    let calls = if cfg!(miri) { 300 } else { 2_000u32 };
    for i in 0..calls {
        let tool = format!("workspace_tool_with_a_long_name_{}", i % 40);
        let mut args = format!(r#"{{"query":"item {i} of the sweep","page":{i},"path":"/srv/data/{}.json","note":""#, i % 97).into_bytes();
        args.resize(254, b'x');
        args.extend_from_slice(b"\"}");
        let v = session.check(&tool, &args, u64::from(i) * 10).unwrap();
        if v.call_id != 0 {
            let error = i % 5 == 0;
            let result = if error {
                format!("Error: the service refused request {i}: {}", "quota exceeded for this project; ".repeat(8))
            } else {
                format!("{{\"items\": [{i}, {}], \"took_ms\": {}, \"next\": \"cursor-{i}\"}} {}", i + 1, i % 13, "y".repeat(120))
            };
            session.record(v.call_id, result.as_bytes(), error).unwrap();
        }
    }
    let used = LIVE.load(Ordering::Relaxed) - before;
    drop(session);
    used as usize
}

#[test]
fn a_full_window_stays_within_the_budget() {
    for policy in ["strict", "balanced", "permissive"] {
        let bytes = fill(policy);
        println!("{policy}: {bytes} bytes ({:.1} KiB) per session with a full window", bytes as f64 / 1024.0);
        assert!(bytes < 64 * 1024, "{policy}: {bytes} bytes");
    }
}
