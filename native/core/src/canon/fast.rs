//! The fast path of [`super::hash_json_doc`]: one pass over the bytes for the JSON that tool
//! arguments nearly always are, with serde_json kept as the judge of everything else.
//!
//! serde_json drives a visitor through its generic `Deserializer` interface: every value and key
//! goes through a seed, a `Result` and a `MapAccess` step, which costs more than the hashing. Most
//! arguments are objects of strings, integers, booleans and lists, and for those this module reads
//! the bytes directly and produces *exactly* what the serde_json pass produces (the same
//! fingerprint, command, sketch and document; a differential test holds the two together).
//! Anything else it declines, and the caller runs serde_json from the start:
//!
//! * a string with a control character, a `\u` escape of a lone surrogate, or a bad escape;
//! * a number that is not an integer serde_json would read as one (`1.5`, `1e3`, `-0`, 20 digits);
//! * anything that is not valid JSON (so every error message is serde_json's), nesting deeper
//!   than [`MAX_DEPTH`], and text after the value.
//!
//! Declining is always safe: it only costs the work done so far.

use alloc::string::String;

use crate::doc::{Doc, Item, Num, Span};
use crate::sketch::Builder;

use super::{finish_object, hash_int, hash_u64, member, ArrayHasher, SEED_BOOL, SEED_NULL};

/// Deeper nesting is left to serde_json (whose limit is 128 levels).
pub(super) const MAX_DEPTH: u32 = 100;

/// What the fast path produces.
pub(super) struct Read {
    pub fingerprint: u64,
    /// The command string, with its key's rank in [`super::COMMAND_KEYS`].
    pub command: Option<(usize, String)>,
}

impl Read {
    pub fn hashed(self, sketch: Option<crate::sketch::Sketch>) -> super::Hashed {
        super::Hashed { fingerprint: self.fingerprint, command: self.command.map(|(_, s)| s), sketch, prose: None }
    }
}

/// Why the fast path left a text to serde_json.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Decline {
    /// A whole value followed by more than white space: certainly not JSON (serde_json reads
    /// the same value and then fails with "trailing characters"), such as a tool's answer that
    /// is a JSON list followed by a summary line.
    Trailing,
    /// Anything else: serde_json decides.
    Other,
}

/// Hashes `text` (and fills `doc`, feeds `sketch`, when given) if it is in the fast path's
/// subset; why not when it is not, with `doc` and `sketch` partly filled.
pub(super) fn read(text: &str, ignore: &[String], sketch: Option<&mut Builder>, doc: Option<&mut Doc>) -> Result<Read, Decline> {
    let mut r = Reader { src: text, text: text.as_bytes(), pos: 0, ignore, sketch, doc, command: None, buf: String::new() };
    let fingerprint = r.value(Place { depth: 0, capture: None, field: 0, skip: false }).ok_or(Decline::Other)?;
    r.skip_ws();
    if r.pos != r.text.len() {
        return Err(Decline::Trailing);
    }
    Ok(Read { fingerprint, command: r.command })
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

/// Where a string's bytes are.
#[derive(Clone, Copy)]
enum Str {
    /// `text[start..end]`: no escapes.
    Plain(usize, usize),
    /// Unescaped, in `Reader::buf`.
    Unescaped,
}

impl Str {
    /// The string's bytes, given the reader's text and buffer (passed apart, so the reader's
    /// sketch can be borrowed beside them).
    fn bytes<'s>(self, text: &'s [u8], buf: &'s str) -> &'s [u8] {
        match self {
            Str::Plain(start, end) => &text[start..end],
            Str::Unescaped => buf.as_bytes(),
        }
    }
}

struct Reader<'a, 'b> {
    src: &'a str,
    text: &'a [u8],
    pos: usize,
    ignore: &'a [String],
    sketch: Option<&'b mut Builder>,
    doc: Option<&'b mut Doc>,
    command: Option<(usize, String)>,
    /// The last string that had escapes, unescaped.
    buf: String,
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// The high bit of each byte of the result is set where `w`'s byte is `"`, `\` or a control
/// character (below 0x20): where a plain run of a string stops. Exact for the first such byte,
/// which is all that is read of it.
fn stops(w: u64) -> u64 {
    let zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    zero(w ^ (ONES * b'"' as u64)) | zero(w ^ (ONES * b'\\' as u64)) | (w.wrapping_sub(ONES * 0x20) & !w & HIGH)
}

/// The rank of `name` in [`super::COMMAND_KEYS`] (one length test for most names).
fn command_rank(name: &[u8]) -> Option<usize> {
    match name {
        b"command" => Some(0),
        b"cmd" => Some(1),
        b"action" => Some(2),
        _ => None,
    }
}

/// The value of four hex digits.
fn hex4(b: &[u8]) -> Option<u32> {
    let mut v = 0;
    for &c in b.get(..4)? {
        v = v * 16 + (c as char).to_digit(16)?;
    }
    Some(v)
}

impl Reader<'_, '_> {
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

    /// Just inside a container: consumes its `close` if it is empty, and says whether it was.
    fn empty(&mut self, close: u8) -> Option<bool> {
        self.skip_ws();
        let empty = self.peek()? == close;
        self.pos += empty as usize;
        Some(empty)
    }

    /// After a container's element: consumes a comma (`false`) or its `close` (`true`).
    fn ended(&mut self, close: u8) -> Option<bool> {
        self.skip_ws();
        let b = self.peek()?;
        self.pos += 1;
        match b {
            b',' => Some(false),
            _ if b == close => Some(true),
            _ => None,
        }
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

    /// A string just read, as text (for the rare uses that need a `str`).
    fn text_of(&self, s: Str) -> &str {
        match s {
            Str::Plain(start, end) => &self.src[start..end],
            Str::Unescaped => &self.buf,
        }
    }

    /// The document's span for a string just read (copied into the document when it had
    /// escapes, as serde_json's pass does).
    fn span(&mut self, s: Str) -> Span {
        match (s, self.doc.as_deref_mut()) {
            (Str::Plain(start, end), _) => Span::of(start, end),
            (Str::Unescaped, Some(d)) => d.span(self.src, &self.buf, false),
            (Str::Unescaped, None) => Span::of(0, 0),
        }
    }

    fn value(&mut self, at: Place) -> Option<u64> {
        self.skip_ws();
        match self.peek()? {
            b'"' => {
                let s = self.string()?;
                let span = self.span(s);
                self.push(Item::Str(span));
                if at.skip {
                    return Some(0);
                }
                let bytes = s.bytes(self.text, &self.buf);
                if let Some(b) = self.sketch.as_deref_mut() {
                    b.add_text(at.field, bytes);
                }
                let hash = super::hash_bytes(bytes);
                if let Some(rank) = at.capture {
                    if self.command.as_ref().map_or(true, |(r, _)| rank < *r) {
                        self.command = Some((rank, String::from(self.text_of(s))));
                    }
                }
                Some(hash)
            }
            b'{' => self.object(at),
            b'[' => self.array(at),
            b't' => self.literal(b"true", Item::Bool(true), at, hash_u64(SEED_BOOL, 1)),
            b'f' => self.literal(b"false", Item::Bool(false), at, hash_u64(SEED_BOOL, 0)),
            b'n' => self.literal(b"null", Item::Null, at, hash_u64(SEED_NULL, 0)),
            b'-' | b'0'..=b'9' => {
                let n = self.integer()?;
                self.push(Item::Num(n));
                let (negative, magnitude) = match n {
                    Num::U64(u) => (false, u),
                    Num::I64(i) => (i < 0, i.unsigned_abs()),
                    Num::F64(_) => return None,
                };
                let hash = hash_int(if negative { -(magnitude as i128) } else { magnitude as i128 });
                if let (Some(b), false) = (self.sketch.as_deref_mut(), at.skip) {
                    b.add_int(at.field, negative, magnitude, hash);
                }
                Some(hash)
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

    /// The end of the plain run that starts at `i`: the first `"`, `\` or control character.
    #[inline(always)]
    fn run_end(&self, mut i: usize) -> Option<usize> {
        while let Some(w) = self.text.get(i..i + 8) {
            let hit = stops(u64::from_le_bytes(w.try_into().expect("8 bytes")));
            if hit != 0 {
                return Some(i + hit.trailing_zeros() as usize / 8);
            }
            i += 8;
        }
        while *self.text.get(i)? >= 0x20 && self.text[i] != b'"' && self.text[i] != b'\\' {
            i += 1;
        }
        Some(i)
    }

    /// A string, at its opening quote.
    #[inline(always)]
    fn string(&mut self) -> Option<Str> {
        let start = self.pos + 1;
        let end = self.run_end(start)?;
        if self.text[end] == b'"' {
            self.pos = end + 1;
            return Some(Str::Plain(start, end));
        }
        self.buf.clear();
        self.buf.push_str(&self.src[start..end]);
        self.unescape(end)
    }

    /// The rest of a string with escapes, from the backslash at `i`, into `buf`.
    #[inline(never)]
    fn unescape(&mut self, mut i: usize) -> Option<Str> {
        loop {
            match self.text[i] {
                b'"' => {
                    self.pos = i + 1;
                    return Some(Str::Unescaped);
                }
                b'\\' => {
                    let c = match *self.text.get(i + 1)? {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let hi = hex4(self.text.get(i + 2..)?)?;
                            i += 4;
                            match hi {
                                0xD800..=0xDBFF => {
                                    // A surrogate pair: `\uD83D\uDE00`.
                                    if self.text.get(i + 2..i + 4)? != b"\\u" {
                                        return None;
                                    }
                                    let lo = hex4(self.text.get(i + 4..)?)?;
                                    if !(0xDC00..=0xDFFF).contains(&lo) {
                                        return None;
                                    }
                                    i += 6;
                                    char::from_u32(0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00))?
                                }
                                _ => char::from_u32(hi)?,
                            }
                        }
                        _ => return None,
                    };
                    self.buf.push(c);
                    i += 2;
                }
                // A control character.
                _ => return None,
            }
            let end = self.run_end(i)?;
            self.buf.push_str(&self.src[i..end]);
            i = end;
        }
    }

    fn array(&mut self, at: Place) -> Option<u64> {
        if at.depth >= MAX_DEPTH {
            return None;
        }
        self.pos += 1;
        let open = self.push(Item::Array { len: 0, end: 0 });
        let inner = Place { depth: at.depth + 1, capture: None, ..at };
        let mut h = ArrayHasher::new();
        if !self.empty(b']')? {
            loop {
                h.push(self.value(inner)?);
                if self.ended(b']')? {
                    break;
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
        if !self.empty(b'}')? {
            loop {
                self.skip_ws();
                if self.peek()? != b'"' {
                    return None;
                }
                let name = self.string()?;
                let span = self.span(name);
                let key_at = self.push(Item::Key { name: span, next: 0 });
                let (key, ignored, capture) = {
                    let name = name.bytes(self.text, &self.buf);
                    let top = at.depth == 0 && !at.skip;
                    (super::hash_bytes(name), self.ignore.iter().any(|f| f.as_bytes() == name), if top { command_rank(name) } else { None })
                };
                self.eat(b':')?;
                members += 1;
                if ignored || at.skip {
                    // Left out of the fingerprint and the sketch; still in the document.
                    self.value(Place { depth: at.depth + 1, capture: None, skip: true, ..at })?;
                } else {
                    let value = self.value(Place { depth: at.depth + 1, capture, field: key, skip: false })?;
                    sum = sum.wrapping_add(member(key, value));
                    len += 1;
                }
                if let Some(d) = self.doc.as_deref_mut() {
                    d.end_member(key_at);
                }
                if self.ended(b'}')? {
                    break;
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
    use crate::sketch::ArgTokens;
    use alloc::format;
    use alloc::string::ToString;
    use alloc::vec;
    use alloc::vec::Vec;
    use proptest::prelude::*;
    use serde_json::Value;

    /// The fast path's answer, with the document it filled and the arguments' tokens.
    fn fast(text: &str, ignore: &[String]) -> Option<(Hashed, Doc, ArgTokens)> {
        let (mut builder, mut doc) = (Builder::new(), Doc::default());
        let read = read(text, ignore, Some(&mut builder), Some(&mut doc)).ok()?;
        // Without a sketch or a document, the same fingerprint and command.
        let bare = read_bare(text, ignore).expect("taken with a document, taken without");
        assert_eq!((bare.fingerprint, &bare.command), (read.fingerprint, &read.command));
        if let Some((_, line)) = &read.command {
            builder.add_search_terms(line);
        }
        let hashed = match builder.maybe_prose() {
            true => crate::canon::split_prose(read.hashed(None), text, ignore).expect("taken once, taken again"),
            false => read.hashed(Some(builder.finish())),
        };
        Some((hashed, doc, *builder.echo()))
    }

    fn read_bare(text: &str, ignore: &[String]) -> Option<Read> {
        read(text, ignore, None, None).ok()
    }

    /// Whenever the fast path answers, serde_json accepts the text and gives the same answer.
    /// A text the fast path calls certainly not JSON is not (see [`Decline::Trailing`]).
    fn agrees(text: &str, ignore: &[String]) -> bool {
        if read(text, ignore, None, None).err() == Some(Decline::Trailing) {
            let slow = serde_doc(text, ignore, true, &mut Doc::default(), None);
            assert!(slow.is_err(), "serde_json took a text with trailing characters: {text:?}");
            return false;
        }
        let Some((hashed, fast_doc, fast_echo)) = fast(text, ignore) else { return false };
        let (mut doc, mut echo) = (Doc::default(), ArgTokens::new());
        let slow = serde_doc(text, ignore, true, &mut doc, Some(&mut echo)).unwrap_or_else(|e| panic!("fast path accepted invalid JSON {text:?}: {e}"));
        assert_eq!(hashed, slow, "{text}");
        assert_eq!(fast_echo, echo, "{text}");
        assert_eq!(fast_doc.items, doc.items, "{text}");
        assert_eq!(fast_doc.owned, doc.owned, "{text}");
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
            r#"{"patch": "line 1\nline \"2\"\t\\ \/ \b\f\r \u00e9 \ud83d\ude00 \u0000", "k\u0065y": "command", "cm\u0064": "ls\n"}"#,
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
    fn search_terms_and_prose_agree_with_serde_json() {
        let ignore = ignore();
        assert!(agrees(r#"{"command": "grep -rn Foo src/ | grep -v 'class Bar'", "n": 3}"#, &ignore));
        assert!(agrees(r#"{"summary": "The customer wants to cancel the whole trip and get a full refund, not allowed.", "id": "QZX417"}"#, &ignore));
        let (hashed, _, _) = fast(r#"{"summary": "The customer wants to cancel the whole trip and get a full refund, not allowed."}"#, &ignore).expect("fast");
        assert!(hashed.prose.is_some());
    }

    #[test]
    fn everything_else_is_left_to_serde_json() {
        let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        for text in [
            "1.5", "1e3", "1E3", "-0", "01", "-", "-a", "18446744073709551616", "12345678901234567890",
            "-9223372036854775808", "\"tab\there\"", r#""\x""#, r#""\u12""#, r#""\ud83d""#, r#""\ud83dx""#, r#""\ud83d\u0041""#,
            r#""\udc00""#, r#""a\"#, "\"a\u{1}b\"", "", "  ", "tru", "nul", "[1,]", "[1 2]",
            r#"{"a":1,}"#, r#"{"a"}"#, r#"{a:1}"#, r#"{"a":1}x"#, "[1]]", "\"open", "{\"a\":", &deep(MAX_DEPTH as usize + 1),
        ] {
            assert!(fast(text, &[]).is_none(), "taken: {text}");
        }
        assert!(agrees(&deep(MAX_DEPTH as usize), &[]));
    }

    #[test]
    fn a_value_with_text_after_it_is_certainly_not_json() {
        for text in [r#"{"a":1}x"#, "[1]]", "[1] 3 results in 120ms", "7 apples", "\"ok\" yes", "null null", "[1] \u{1}"] {
            assert_eq!(read(text, &[], None, None).err(), Some(Decline::Trailing), "{text}");
            assert!(serde_json::from_str::<Value>(text).is_err(), "{text}");
        }
        for text in ["1.5 x", "[1.5] x", "x [1]", "[1", "{\"a\" 1} x"] {
            assert_eq!(read(text, &[], None, None).err(), Some(Decline::Other), "{text}");
        }
        assert!(read(" [1] \n", &[], None, None).is_ok());
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
    #[cfg_attr(miri, ignore = "400 generated values: hours under Miri")]
    fn generated_values_often_take_the_fast_path() {
        use proptest::strategy::ValueTree;
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        let taken = (0..400).filter(|_| agrees(&value().new_tree(&mut runner).unwrap().current().to_string(), &[])).count();
        assert!(taken >= 100, "only {taken} of 400 taken");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(if cfg!(miri) { 8 } else { 2000 }))]

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
