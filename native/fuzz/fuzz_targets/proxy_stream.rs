//! Each proxy dialect following a streamed answer, as the server's pump does: the bytes cut into
//! chunks, chunks into events (`SseSplitter`), each event followed; then, when calls were held,
//! the answer assembled, judged, and the stream finished as allowed, stopped or re-asked. Checked:
//! what the proxy writes itself (its error events, its endings) is well-formed SSE with JSON data.
//! The first byte picks the dialect, the outcome and the chunk size; the rest is the stream.
#![no_main]

mod common;

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use microloop_proxy::dialect::{ErrorKind, Outcome, SseSplitter};
use microloop_proxy::trajectory::{judge, note};

fuzz_target!(|data: &[u8]| {
    let Some((&sel, stream)) = data.split_first() else { return };
    let d = common::dialect(sel);
    let chunk = match (sel >> 2) & 7 {
        0 => stream.len().max(1),
        n => usize::from(n) * usize::from(n) * 3,
    };
    let req = common::request(d);
    let mut f = d.follower(&req);
    let mut split = SseSplitter::default();
    let mut events = Vec::new();
    let mut passed = 0usize;
    for c in stream.chunks(chunk) {
        split.push(c, &mut events);
        for ev in events.drain(..) {
            assert!(ev.ends_with(b"\n\n") || ev.ends_with(b"\r\n\r\n"), "an event without its terminator");
            passed += f.on_event(ev).is_some() as usize;
        }
    }
    if let Some(ev) = split.finish() {
        passed += f.on_event(ev).is_some() as usize;
    }
    let _ = passed;
    if let Some(why) = f.broken() {
        assert!(!why.is_empty());
        let ev = f.error_event(&format!("microloop-proxy: {why}"), ErrorKind::Upstream, "upstream_malformed");
        common::assert_event_is_json(&ev);
        return;
    }
    if !f.holding() {
        let _ = f.answer();
        return;
    }
    let answer = f.answer();
    let choices = d.calls(&answer);
    let mut settled = answer.clone();
    let mut text = "[microloop] stopped".to_owned();
    if let Some(calls) = choices.first() {
        let mut s = microloop_core::Session::new(common::engine().clone());
        if let Some((_, v)) = judge(&mut s, calls).blocked {
            text = note(&v);
        }
    }
    let outcome = (sel >> 5) % 4;
    let out: Vec<Bytes> = match outcome {
        0 => f.finish(Outcome::Allowed),
        1 => {
            d.stop_turn(&mut settled, 0, &text);
            f.finish(Outcome::Stopped(&settled))
        }
        2 => f.finish(Outcome::Reasked(&answer)),
        _ => vec![f.error_event(&text, ErrorKind::InvalidRequest, "tool_loop_blocked")],
    };
    // Every event out carries JSON: the proxy's own exactly (or `[DONE]`), the upstream's it held
    // and relays as they came (allowed) as the follower read them (JSON, or the end of the stream).
    for ev in &out {
        if microloop_proxy::dialect::event_data(ev).is_some() {
            if outcome == 0 {
                common::assert_upstream_event_was_read(ev);
            } else {
                common::assert_event_is_json(ev);
            }
        }
    }
});
