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
