//! `memory::give_back` returns memory that glibc's malloc would keep. A file of its own: its test
//! reads the process's RSS, which other tests running beside it would move.

#![cfg(all(target_os = "linux", target_env = "gnu"))]

fn rss_kb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn memory_freed_below_a_live_allocation_goes_back() {
    // A worker thread's burst: 32 MiB in 1 KiB blocks from that thread's arena, all freed but the
    // last, which pins the heap's top so that malloc alone cannot shrink it.
    let (last, freed) = std::thread::spawn(|| {
        let mut blocks: Vec<Vec<u8>> = (0..32 * 1024).map(|i| vec![i as u8; 1024]).collect();
        let last = blocks.pop().unwrap();
        drop(blocks);
        (last, rss_kb())
    })
    .join()
    .unwrap();
    microloop_proxy::memory::give_back();
    let after = rss_kb();
    drop(last);
    assert!(
        after + 16 * 1024 < freed,
        "RSS {freed} kB with 32 MiB freed, {after} kB after give_back: the freed memory was kept"
    );
}
