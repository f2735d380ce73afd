//! The fast path of [`super::hash_json_doc`]: one pass over the bytes for the JSON that tool
//! arguments nearly always are, with serde_json kept as the judge of everything else.
//!
//! serde_json drives a visitor through its generic `Deserializer` interface: every value and key
//! goes through a seed, a `Result` and a `MapAccess` step, which costs more than the hashing. Most
//! arguments are small objects of unescaped strings, integers, booleans and lists, and for those
//! this module reads the bytes directly and produces *exactly* what the serde_json pass produces
//! (the same fingerprint, command, sketch and document; a differential test holds the two
//! together). Anything else it declines, and the caller runs serde_json from the start:
//!
//! * a string with a backslash escape or a control character;
//! * a number that is not an integer serde_json would read as one (`1.5`, `1e3`, `-0`, 20 digits);
//! * anything that is not valid JSON (so every error message is serde_json's), nesting deeper
//!   than [`MAX_DEPTH`], and text after the value.
//!
//! Declining is always safe: it only costs the work done so far.

use alloc::string::String;

use crate::doc::{Doc, Item, Num, Span};
use crate::sketch::{Builder, HEAVY};

use super::{finish_object, hash_int, hash_u64, member, ArrayHasher, SEED_BOOL, SEED_NULL};

/// Deeper nesting is left to serde_json (whose limit is 128 levels).
pub(super) const MAX_DEPTH: u32 = 100;

/// What the fast path produces (the fingerprint; the command string with its key's rank).
pub(super) struct Read<'t> {
    pub fingerprint: u64,
    pub command: Option<(usize, &'t str)>,
}

impl Read<'_> {
    pub fn hashed(&self, sketch: Option<crate::sketch::Sketch>) -> super::Hashed {
        super::Hashed { fingerprint: self.fingerprint, command: self.command.map(|(_, s)| String::from(s)), sketch }
    }
}

/// Hashes `text` (and fills `doc`, feeds `sketch`, when given) if it is in the fast path's
/// subset; `None` when it is not, with `doc` and `sketch` partly filled.
pub(super) fn read<'t>(text: &'t str, ignore: &[String], sketch: Option<&mut Builder>, doc: Option<&mut Doc>) -> Option<Read<'t>> {
    let mut r = Reader { text: text.as_bytes(), pos: 0, ignore, sketch, doc, command: None };
    let fingerprint = r.value(Place { depth: 0, capture: None, field: 0, skip: false })?;
    r.skip_ws();
    if r.pos != r.text.len() {
        return None;
    }
    // `text` is valid UTF-8 and the command's bounds are a string's quotes.
    let command = r.command.map(|(rank, (start, end))| (rank, &text[start..end]));
    Some(Read { fingerprint, command })
}

/// Where a value sits, as `HashSeed` in the serde_json pass.
#[derive(Clone, Copy)]
struct Place {
    depth: u32,
    /// The value of a top-level command key, with the key's rank.
    capture: Option<usize>,
    /// The hash of the innermost member name (0 at the top).
    field: u64,
    /// Inside an ignored member: into the document only.
    skip: bool,
}

struct Reader<'a, 'b> {
    text: &'a [u8],
    pos: usize,
    ignore: &'a [String],
    sketch: Option<&'b mut Builder>,
    doc: Option<&'b mut Doc>,
    /// The command string's rank and byte bounds.
    command: Option<(usize, (usize, usize))>,
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// The high bit of each byte of the result is set where `w`'s byte is `"`, `\` or a control
/// character (below 0x20): where a plain string stops. Exact for the first such byte, which is
/// all that is read of it.
fn stops(w: u64) -> u64 {
    let zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    zero(w ^ (ONES * b'"' as u64)) | zero(w ^ (ONES * b'\\' as u64)) | (w.wrapping_sub(ONES * 0x20) & !w & HIGH)
}

/// The rank of `name` in [`COMMAND_KEYS`] (one length test for most names).
fn command_rank(name: &[u8]) -> Option<usize> {
    match name {
        b"command" => Some(0),
        b"cmd" => Some(1),
        b"action" => Some(2),
        _ => None,
    }
}

impl<'a> Reader<'a, '_> {
    fn peek(&self) -> Option<u8> {
        self.text.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\t' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    /// Consumes `b` after optional white space.
    fn eat(&mut self, b: u8) -> Option<()> {
        self.skip_ws();
        (self.peek()? == b).then(|| self.pos += 1)
    }

    fn push(&mut self, item: Item) -> u32 {
        self.doc.as_deref_mut().map_or(0, |d| d.push(item))
    }

    /// A sketch token for a scalar's hash, outside ignored members.
    fn token(&mut self, at: Place, hash: u64, weight: u32) -> u64 {
        if let (Some(b), false) = (self.sketch.as_deref_mut(), at.skip) {
            b.add_hashed(at.field, hash, weight);
        }
        hash
    }

    fn value(&mut self, at: Place) -> Option<u64> {
        self.skip_ws();
        match self.peek()? {
            b'"' => {
                let (start, end) = self.string()?;
                self.push(Item::Str(Span::of(start, end)));
                if at.skip {
                    return Some(0);
                }
                let s = &self.text[start..end];
                if let Some(b) = self.sketch.as_deref_mut() {
                    b.add_text(at.field, s);
                }
                if let Some(rank) = at.capture {
                    if self.command.map_or(true, |(r, _)| rank < r) {
                        self.command = Some((rank, (start, end)));
                    }
                }
                Some(super::hash_bytes(s))
            }
            b'{' => self.object(at),
            b'[' => self.array(at),
            b't' => self.literal(b"true", Item::Bool(true), at, hash_u64(SEED_BOOL, 1)),
            b'f' => self.literal(b"false", Item::Bool(false), at, hash_u64(SEED_BOOL, 0)),
            b'n' => self.literal(b"null", Item::Null, at, hash_u64(SEED_NULL, 0)),
            b'-' | b'0'..=b'9' => {
                let n = self.integer()?;
                self.push(Item::Num(n));
                let hash = match n {
                    Num::U64(u) => hash_int(u as i128),
                    Num::I64(i) => hash_int(i as i128),
                    Num::F64(_) => return None,
                };
                Some(self.token(at, hash, HEAVY))
            }
            _ => None,
        }
    }

    fn literal(&mut self, word: &[u8], item: Item, at: Place, hash: u64) -> Option<u64> {
        if !self.text[self.pos..].starts_with(word) {
            return None;
        }
        self.pos += word.len();
        self.push(item);
        Some(self.token(at, hash, 1))
    }

    /// An integer as serde_json reads it: a `u64`, or an `i64` when negative; declines floats,
    /// `-0` (a float to serde_json) and integers past 19 digits.
    fn integer(&mut self) -> Option<Num> {
        let negative = self.peek() == Some(b'-');
        self.pos += negative as usize;
        let start = self.pos;
        let mut n = 0u64;
        while let Some(d @ b'0'..=b'9') = self.peek() {
            n = n.wrapping_mul(10).wrapping_add((d - b'0') as u64);
            self.pos += 1;
        }
        let digits = self.pos - start;
        if digits == 0 || digits > 19 || (digits > 1 && self.text[start] == b'0') {
            return None;
        }
        if let Some(b'.' | b'e' | b'E') = self.peek() {
            return None;
        }
        if !negative {
            return Some(Num::U64(n));
        }
        if n == 0 || n > i64::MAX as u64 {
            return None;
        }
        Some(Num::I64(-(n as i64)))
    }

    /// A string without escapes or control characters, at its opening quote; its bounds.
    fn string(&mut self) -> Option<(usize, usize)> {
        let start = self.pos + 1;
        let mut i = start;
        while let Some(w) = self.text.get(i..i + 8) {
            let hit = stops(u64::from_le_bytes(w.try_into().expect("8 bytes")));
            if hit != 0 {
                i += hit.trailing_zeros() as usize / 8;
                return self.close_string(start, i);
            }
            i += 8;
        }
        while let Some(&b) = self.text.get(i) {
            if b == b'"' || b == b'\\' || b < 0x20 {
                return self.close_string(start, i);
            }
            i += 1;
        }
        None
    }

    fn close_string(&mut self, start: usize, end: usize) -> Option<(usize, usize)> {
        if self.text[end] != b'"' {
            return None;
        }
        self.pos = end + 1;
        Some((start, end))
    }

    fn array(&mut self, at: Place) -> Option<u64> {
        if at.depth >= MAX_DEPTH {
            return None;
        }
        self.pos += 1;
        let open = self.push(Item::Array { len: 0, end: 0 });
        let inner = Place { depth: at.depth + 1, capture: None, ..at };
        let mut h = ArrayHasher::new();
        self.skip_ws();
        if self.peek()? == b']' {
            self.pos += 1;
        } else {
            loop {
                h.push(self.value(inner)?);
                self.skip_ws();
                match self.peek()? {
                    b',' => self.pos += 1,
                    b']' => {
                        self.pos += 1;
                        break;
                    }
                    _ => return None,
                }
            }
        }
        if let Some(d) = self.doc.as_deref_mut() {
            d.close(open, h.len as u32);
        }
        Some(h.finish())
    }

    fn object(&mut self, at: Place) -> Option<u64> {
        if at.depth >= MAX_DEPTH {
            return None;
        }
        self.pos += 1;
        let open = self.push(Item::Object { len: 0, end: 0 });
        let (mut sum, mut len, mut members) = (0u64, 0u64, 0u32);
        self.skip_ws();
        if self.peek()? == b'}' {
            self.pos += 1;
        } else {
            loop {
                self.skip_ws();
                if self.peek()? != b'"' {
                    return None;
                }
                let (start, end) = self.string()?;
                let key_at = self.push(Item::Key { name: Span::of(start, end), next: 0 });
                self.eat(b':')?;
                let name = &self.text[start..end];
                let key = super::hash_bytes(name);
                members += 1;
                let ignored = self.ignore.iter().any(|f| f.as_bytes() == name);
                if ignored || at.skip {
                    // Left out of the fingerprint and the sketch; still in the document.
                    self.value(Place { depth: at.depth + 1, capture: None, skip: true, ..at })?;
                } else {
                    let top = at.depth == 0;
                    let capture = if top { command_rank(name) } else { None };
                    let value = self.value(Place { depth: at.depth + 1, capture, field: key, skip: false })?;
                    sum = sum.wrapping_add(member(key, value));
                    len += 1;
                }
                if let Some(d) = self.doc.as_deref_mut() {
                    d.end_member(key_at);
                }
                self.skip_ws();
                match self.peek()? {
                    b',' => self.pos += 1,
                    b'}' => {
                        self.pos += 1;
                        break;
                    }
                    _ => return None,
                }
            }
        }
        if let Some(d) = self.doc.as_deref_mut() {
            d.close(open, members);
        }
        Some(finish_object(sum, len))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canon::{serde_doc, Hashed};
    use alloc::format;
    use alloc::string::ToString;
    use alloc::vec;
    use alloc::vec::Vec;
    use proptest::prelude::*;
    use serde_json::Value;

    /// The fast path's answer, with the document it filled.
    fn fast(text: &str, ignore: &[String]) -> Option<(Hashed, Vec<Item>)> {
        let (mut builder, mut doc) = (Builder::new(), Doc::default());
        let read = read(text, ignore, Some(&mut builder), Some(&mut doc))?;
        // Without a sketch or a document, the same fingerprint and command.
        let bare = read_bare(text, ignore).expect("taken with a document, taken without");
        assert_eq!((bare.fingerprint, bare.command), (read.fingerprint, read.command));
        Some((read.hashed(Some(builder.finish())), doc.items))
    }

    fn read_bare<'t>(text: &'t str, ignore: &[String]) -> Option<Read<'t>> {
        read(text, ignore, None, None)
    }

    /// Whenever the fast path answers, serde_json accepts the text and gives the same answer.
    fn agrees(text: &str, ignore: &[String]) -> bool {
        let Some((hashed, items)) = fast(text, ignore) else { return false };
        let mut doc = Doc::default();
        let slow = serde_doc(text, ignore, true, &mut doc).unwrap_or_else(|e| panic!("fast path accepted invalid JSON {text:?}: {e}"));
        assert_eq!(hashed, slow, "{text}");
        assert_eq!(items, doc.items, "{text}");
        assert!(doc.owned.is_empty(), "{text}");
        true
    }

    fn ignore() -> Vec<String> {
        vec!["secret".to_string()]
    }

    #[test]
    fn plain_arguments_take_the_fast_path_and_agree() {
        for text in [
            r#"{"query":"flights from SFO to JFK","max_results":10,"filters":{"airline":"UA","stops":[0,1]},"page":-3}"#,
            r#" { "command" : "ls -la" , "cmd": "x", "action": "y", "a": [ ], "b": { }, "c": [true, false, null] } "#,
            r#"{"secret": {"command": "rm", "n": [1, 2]}, "command": "git status", "é": "naïve ☕"}"#,
            r#"{"a": 1, "a": 2}"#,
            r#"[9999999999999999999, -9223372036854775807, 0, "", {}]"#,
            "\"plain\"",
            "7",
            "null",
        ] {
            assert!(agrees(text, &ignore()), "declined: {text}");
        }
    }

    #[test]
    fn the_command_ranks_are_those_of_command_keys() {
        for (rank, key) in crate::canon::COMMAND_KEYS.iter().enumerate() {
            assert_eq!(command_rank(key.as_bytes()), Some(rank));
        }
        assert_eq!(command_rank(b"commands"), None);
    }

    #[test]
    fn everything_else_is_left_to_serde_json() {
        let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        for text in [
            "1.5", "1e3", "1E3", "-0", "01", "-", "-a", "18446744073709551616", "12345678901234567890",
            "-9223372036854775808", r#""a\nb""#, "\"tab\there\"", "\"a\u{1}b\"", "", "  ", "tru", "nul", "[1,]", "[1 2]",
            r#"{"a":1,}"#, r#"{"a"}"#, r#"{a:1}"#, r#"{"a":1}x"#, "[1]]", "\"open", "{\"a\":", &deep(MAX_DEPTH as usize + 1),
        ] {
            assert!(fast(text, &[]).is_none(), "taken: {text}");
        }
        assert!(agrees(&deep(MAX_DEPTH as usize), &[]));
    }

    /// JSON values with every kind of string and number the fast path must tell apart.
    fn value() -> impl Strategy<Value = Value> {
        let key = prop_oneof![
            Just("command".to_string()),
            Just("cmd".to_string()),
            Just("action".to_string()),
            Just("secret".to_string()),
            "[a-z]{0,6}",
        ];
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            (-3i64..3).prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            "[a-z0-9 ./:-]{0,20}".prop_map(Value::String),
            "\\PC{0,12}".prop_map(Value::String),
            "[\"\\\\\n\t\u{1}é☕a]{0,6}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 40, 6, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::vec((key.clone(), inner), 0..6).prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// The values generated below take the fast path often enough for the tests to mean something.
    #[test]
    fn generated_values_often_take_the_fast_path() {
        use proptest::strategy::ValueTree;
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        let taken = (0..400).filter(|_| agrees(&value().new_tree(&mut runner).unwrap().current().to_string(), &[])).count();
        assert!(taken >= 100, "only {taken} of 400 taken");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn the_fast_path_agrees_with_serde_json(v in value(), pretty in any::<bool>()) {
            let text = if pretty { serde_json::to_string_pretty(&v).unwrap() } else { v.to_string() };
            agrees(&text, &ignore());
            agrees(&text, &[]);
        }

        /// Broken texts: the fast path declines them or agrees with serde_json (which then
        /// accepts them too).
        #[test]
        fn edited_texts_never_split_the_two(v in value(), edits in prop::collection::vec((any::<prop::sample::Index>(), 0u8..4, "[\\[\\]{}:,\" 0-9a-z.\\\\-]"), 1..4)) {
            let mut chars: Vec<char> = v.to_string().chars().collect();
            for (at, how, c) in edits {
                let c = c.chars().next().unwrap_or(' ');
                let i = at.index(chars.len() + 1);
                match how {
                    0 => chars.insert(i, c),
                    1 if i < chars.len() => { chars.remove(i); }
                    2 => chars.truncate(i),
                    _ if i < chars.len() => chars[i] = c,
                    _ => {}
                }
            }
            let text: String = chars.into_iter().collect();
            agrees(&text, &ignore());
        }
    }
}
