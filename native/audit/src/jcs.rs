//! The SHA-256 of a JSON value's RFC 8785 canonical form (JCS), the hash other languages recompute
//! with `rfc8785` (Python), `canonicalize` (JavaScript) or `gowebpki/jcs` (Go).
//!
//! JCS is defined on I-JSON (RFC 7493): a document with duplicate object keys, or an integer
//! outside I-JSON's exact range [-(2^53 - 1), 2^53 - 1], has no single canonical form
//! (implementations round or refuse it differently: Python's `rfc8785` refuses, JavaScript's
//! `canonicalize` rounds), so it is refused here rather than hashed one way. Integers written
//! in exponent or fraction form (`1e20`, `3.0`) are numbers, read as doubles everywhere.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// Why a document has no RFC 8785 canonical form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JcsError(pub String);

impl fmt::Display for JcsError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for JcsError {}

/// The largest integer I-JSON (RFC 7493 §2.2) lets a document carry: 2^53 - 1.
pub const MAX_EXACT: u64 = (1 << 53) - 1;

/// A JSON value read under I-JSON's restrictions.
struct IJson(Value);

impl<'de> Deserialize<'de> for IJson {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<IJson, D::Error> {
        d.deserialize_any(IJsonVisitor).map(IJson)
    }
}

struct IJsonVisitor;

impl<'de> Visitor<'de> for IJsonVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        if v.unsigned_abs() > MAX_EXACT {
            return Err(E::custom(format!("the integer {v} is outside I-JSON's exact range ±(2^53 - 1): JCS cannot represent it exactly")));
        }
        Ok(Value::from(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        if v > MAX_EXACT {
            return Err(E::custom(format!("the integer {v} is outside I-JSON's exact range ±(2^53 - 1): JCS cannot represent it exactly")));
        }
        Ok(Value::from(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        serde_json::Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("a number is not finite"))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(IJson(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(k) = map.next_key::<String>()? {
            let IJson(v) = map.next_value()?;
            if out.contains_key(&k) {
                return Err(de::Error::custom(format!("the key {k:?} appears twice in one object")));
            }
            out.insert(k, v);
        }
        Ok(Value::Object(out))
    }
}

/// Refuses an integer literal (no fraction, no exponent) too long for `u64`, which serde_json
/// would otherwise read as a double and round without a word.
fn check_long_integers(json: &[u8]) -> Result<(), JcsError> {
    let mut i = 0;
    while i < json.len() {
        match json[i] {
            b'"' => {
                i += 1;
                while i < json.len() && json[i] != b'"' {
                    i += if json[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                let mut integer = true;
                while i < json.len() && matches!(json[i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9') {
                    integer &= !matches!(json[i], b'.' | b'e' | b'E');
                    i += 1;
                }
                let digits = json[start..i].iter().filter(|b| b.is_ascii_digit()).count();
                if integer && digits > 16 {
                    let text = String::from_utf8_lossy(&json[start..i]);
                    return Err(JcsError(format!(
                        "the integer {text} is outside I-JSON's exact range ±(2^53 - 1): JCS cannot represent it exactly"
                    )));
                }
            }
            _ => i += 1,
        }
    }
    Ok(())
}

/// The RFC 8785 canonical form of a JSON document.
pub fn canonicalize(json: &[u8]) -> Result<Vec<u8>, JcsError> {
    check_long_integers(json)?;
    let mut de = serde_json::Deserializer::from_slice(json);
    let IJson(v) = IJson::deserialize(&mut de).map_err(|e| JcsError(e.to_string()))?;
    de.end().map_err(|e| JcsError(e.to_string()))?;
    serde_json_canonicalizer::to_vec(&v).map_err(|e| JcsError(e.to_string()))
}

/// The SHA-256 of a JSON document's RFC 8785 canonical form.
pub fn sha256(json: &[u8]) -> Result<[u8; 32], JcsError> {
    Ok(Sha256::digest(canonicalize(json)?).into())
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    const D: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(D[(b >> 4) as usize] as char);
        s.push(D[(b & 15) as usize] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(s: &str) -> String {
        String::from_utf8(canonicalize(s.as_bytes()).unwrap()).unwrap()
    }

    #[test]
    fn rfc8785_examples() {
        // RFC 8785 §3.2.2 (numbers, literals, strings) and §3.2.3 (key order by UTF-16 units).
        assert_eq!(
            canon(r#"{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
                "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/", "literals": [null, true, false]}"#),
            r#"{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}"#
        );
        assert_eq!(
            canon("{\"\\u20ac\": 1, \"\\r\": 2, \"\\ud83d\\ude00\": 3, \"1\": 4, \"\\u0080\": 5, \"\\u00f6\": 6, \"\\ufb33\": 7}"),
            "{\"\\r\":2,\"1\":4,\"\u{80}\":5,\"ö\":6,\"€\":1,\"😀\":3,\"\u{fb33}\":7}"
        );
    }

    #[test]
    fn what_jcs_cannot_represent_is_refused() {
        assert!(canonicalize(b"9007199254740991").is_ok());
        assert!(canonicalize(b"-9007199254740991").is_ok());
        assert!(canonicalize(b"[1e20, 9007199254740993.0, \"12345678901234567890\"]").is_ok());
        for bad in ["9007199254740992", "-9007199254740992", "9007199254740993", "-9007199254740993",
            "[100000000000000000000]", "{\"a\": -123456789012345678901234567890}", "18446744073709551616", "{\"a\":1,\"a\":1}", "[{\"b\":{\"x\":1,\"x\":2}}]", "{", "1 2"] {
            assert!(canonicalize(bad.as_bytes()).is_err(), "{bad}");
        }
        assert!(canonicalize(b"{\"a\":1,\"a\":1}").unwrap_err().0.contains("twice"));
    }
}
