//! Differential: the core's byte scanner (the fast path of argument fingerprints) against
//! serde_json. For any text, the scanner gives exactly serde_json's fingerprint, command, sketch
//! and parsed document, or leaves the text to serde_json (`canon::fuzzing`); the public hashing
//! functions refuse exactly the texts serde_json refuses; and the fingerprint of a parsed
//! `serde_json::Value` (`hash_value`) is that of its text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use microloop_core::canon;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, text)) = data.split_first() else { return };
    let ignore: Vec<String> = match sel % 4 {
        0 => vec![],
        1 => vec!["secret".into()],
        2 => vec!["id".into(), "command".into(), "a".into()],
        _ => vec!["".into(), "timestamp".into()],
    };
    if let Ok(s) = std::str::from_utf8(text) {
        canon::fuzzing::fast_agrees_with_serde(s, &ignore);
    }
    // The same refusal: what the fingerprint takes is what serde_json takes. Except serde_json's
    // private key: with its `raw_value` feature (on in this crate, for mcp_guard) a `Value` reads
    // an object keyed "$serde_json::private::RawValue" as JSON text in a string, not as JSON says.
    if names_raw_value_key(text) {
        return;
    }
    let hashed = canon::hash_json(text, &ignore);
    let value = serde_json::from_slice::<Value>(text);
    assert_eq!(hashed.is_ok(), value.is_ok(), "hash_json {:?} vs serde_json {:?} on {:?}", hashed.as_ref().err(), value.as_ref().err(), String::from_utf8_lossy(text));
    let (Ok(hashed), Ok(value)) = (hashed, value) else { return };
    // Sketched or not, the fingerprint and command are the same.
    let sketched = canon::hash_json_sketched(text, &ignore, true).expect("taken once, taken again");
    assert_eq!((sketched.fingerprint, &sketched.command), (hashed.fingerprint, &hashed.command));
    // A value's fingerprint is its text's (serde_json writes each key once: no duplicates).
    let of_value = canon::hash_value(&value, &ignore);
    let text2 = serde_json::to_string(&value).expect("a value serializes");
    let of_text2 = canon::hash_json(text2.as_bytes(), &ignore).expect("serde_json's own text");
    assert_eq!(of_value.fingerprint, of_text2.fingerprint, "hash_value vs hash_json of {text2}");
    assert_eq!(of_value.command, of_text2.command, "{text2}");
    // Results: JSON compares as JSON (never a panic on any bytes).
    let _ = canon::result_fingerprint(text, &ignore);
});

/// The text holds serde_json's private raw-value key, `\u` escapes decoded.
fn names_raw_value_key(text: &[u8]) -> bool {
    let text = String::from_utf8_lossy(text);
    let mut plain = String::with_capacity(text.len());
    let mut rest = &*text;
    while let Some(at) = rest.find("\\u") {
        plain.push_str(&rest[..at]);
        let hex = rest.get(at + 2..at + 6).and_then(|h| u32::from_str_radix(h, 16).ok()).and_then(char::from_u32);
        match hex {
            Some(c) => {
                plain.push(c);
                rest = &rest[at + 6..];
            }
            None => {
                plain.push_str("\\u");
                rest = &rest[at + 2..];
            }
        }
    }
    plain.push_str(rest);
    plain.contains("$serde_json::private::RawValue")
}
