//! Each proxy dialect reading an upstream's answer (not streamed): the calls it proposes, judged
//! against the request's history; the turn stopped in each choice; the re-ask built from it; what
//! is kept for a conversation that continues it. The first byte picks the dialect; the rest is
//! the answer, or a request, a 0xFF byte (never in UTF-8 JSON), then the answer.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use microloop_proxy::dialect::ErrorKind;
use microloop_proxy::trajectory::{judge, note, reask_results, replay};
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else { return };
    let d = common::dialect(sel);
    let stream = sel & 0x80 != 0;
    let (req, body) = match rest.iter().position(|&b| b == 0xFF) {
        Some(i) => match serde_json::from_slice::<Value>(&rest[..i]) {
            Ok(req) => (req, &rest[i + 1..]),
            Err(_) => return,
        },
        None => (common::request(d), rest),
    };
    let Ok(resp) = serde_json::from_slice::<Value>(body) else { return };
    let choices = d.calls(&resp);
    let mut stopped = resp.clone();
    for (ci, calls) in choices.iter().enumerate() {
        let mut rp = replay(d, &req, common::engine());
        let j = judge(&mut rp.session, calls);
        assert_eq!(j.verdicts.len(), calls.len());
        let text = j.blocked.as_ref().map_or_else(|| "[microloop] stopped".to_owned(), |(_, v)| note(v));
        d.stop_turn(&mut stopped, ci, &text);
        if ci == 0 {
            let results = reask_results(calls, &j);
            assert_eq!(results.len(), calls.len());
            let next = d.reask(&req, &resp, calls, &results, stream);
            serde_json::to_vec(&next).expect("a re-ask serializes");
            let _ = d.reask_path("/v1beta/models/m:generateContent", stream);
        }
    }
    // A stopped turn proposes no call any more.
    if choices.len() == 1 {
        assert!(d.calls(&stopped).iter().all(Vec::is_empty), "calls left after stop_turn: {stopped}");
    }
    d.stop_turn(&mut stopped.clone(), 0, "[microloop] stopped");
    d.stop_turn(&mut stopped.clone(), choices.len() + 1, "[microloop] stopped");
    let _ = d.kept(&req, &resp);
    for kind in [ErrorKind::InvalidRequest, ErrorKind::Upstream, ErrorKind::NotFound] {
        let _ = d.error_body("the upstream answered something else", kind, "upstream_malformed");
    }
});
