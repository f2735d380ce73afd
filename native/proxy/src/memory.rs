//! Memory freed after a burst goes back to the system.
//!
//! A burst of requests in flight at once (a client that sends many together, or one that stalls
//! and then catches up) takes memory for each: its connections' buffers, its body, the upstream
//! connection opened for it. When the burst is over that memory is freed, but glibc's malloc keeps
//! it: each worker thread allocates from its own arena, and an arena gives memory back to the
//! system only from the top of its heap, which one live allocation above the freed ones pins. The
//! proxy's RSS would then be the high-water mark of its bursts, for as long as it runs.
//!
//! [`give_back_every`] asks glibc (`malloc_trim`, which walks every arena since glibc 2.8) to
//! return every whole free page, once per period: 0.1-0.5 ms a time for the proxy at 18 MB RSS
//! under 1,000 requests a second (measured; bench/RESULTS.md "Proxy soak"). Other allocators and
//! other C libraries manage their own memory: there it is a no-op.

use std::time::Duration;

/// How often freed memory is given back: memory freed by a burst is returned within this time.
pub const PERIOD: Duration = Duration::from_secs(10);

/// Gives freed memory back to the system, once per `period`, for as long as the runtime runs.
pub async fn give_back_every(period: Duration) {
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await; // the first tick is at once; nothing was freed yet
    loop {
        tick.tick().await;
        give_back();
    }
}

/// Returns the free pages of every malloc arena to the system now (glibc); elsewhere a no-op.
pub fn give_back() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only takes the arenas' locks and releases free pages; its argument is
    // the padding to leave at the top of the main heap.
    unsafe {
        libc::malloc_trim(0);
    }
}
