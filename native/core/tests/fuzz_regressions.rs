//! Inputs the fuzz targets (native/fuzz) found, kept as tests once fixed.

use microloop_core::canon::hash_json;

/// fingerprint_diff: bytes that are not UTF-8 inside an ignored member were skipped unread, so
/// `hash_json` took text serde_json refuses ("invalid unicode code point"). Not UTF-8 is not JSON.
#[test]
fn invalid_utf8_in_an_ignored_member_is_not_json() {
    let text = b"{\"command\": \"grep -c x <\xb1< \\\"$(ls; cat notes.txt)\\\"\"}";
    assert!(serde_json::from_slice::<serde_json::Value>(text).is_err());
    let ignore = ["id".to_string(), "command".to_string(), "a".to_string()];
    assert!(hash_json(text, &ignore).is_err(), "hash_json took text that is not UTF-8");
    assert!(hash_json(b"{\"a\": [\"\xff\"], \"b\": 1}", &ignore).is_err());
    // Outside an ignored member it always was refused.
    assert!(hash_json(text, &[]).is_err());
}

/// fingerprint_diff: a number past f64's range inside an *ignored* member ("a": 9…e9999999) was
/// skipped unread (serde's `IgnoredAny` does not compute it), so `hash_json` took text that
/// serde_json refuses ("number out of range").
#[test]
fn a_number_out_of_range_in_an_ignored_member_is_not_json() {
    let text = b"{ \"b\" : [1, 2.0], \"a\" : 999999999999999999900e00000000000009999999}";
    assert!(serde_json::from_slice::<serde_json::Value>(text).is_err());
    let ignore = ["id".to_string(), "command".to_string(), "a".to_string()];
    assert!(hash_json(text, &ignore).is_err(), "hash_json took a number serde_json refuses");
    // At any depth, and where the fast path declines first (the 2.0 above) or not.
    assert!(hash_json(b"{\"a\": {\"x\": [1e400]}, \"b\": 1.5}", &ignore).is_err());
    assert!(hash_json(b"{\"a\": -1e400}", &ignore).is_err());
    assert!(hash_json(text, &[]).is_err());
    // In range, an ignored float is fine.
    assert!(hash_json(b"{\"a\": 1e300, \"b\": 2.0}", &ignore).is_ok());
}
