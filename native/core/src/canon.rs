//! Canonical fingerprints of JSON values.
//!
//! Two tool calls are "the same call" when the tool name is the same and the arguments are the same
//! JSON value: key order and white space never matter, `1` and `1.0` are equal, and the fields named
//! in `ignore_fields` are left out at any depth. The fingerprint is a 64-bit xxh3 hash of that
//! canonical form, so every binding (and every process) sees the same value for the same call.
//!
//! Arguments are hashed while they are parsed ([`hash_json`]): no `serde_json::Value` is built.
//! When argument rules need to read them, the same pass fills a [`Doc`] ([`hash_json_doc`]).
//! Arguments without floats are read by a direct byte scanner (`fast`) that gives exactly what
//! the serde_json pass gives; serde_json reads everything else, and judges every error.
//! Object members are combined with a commutative sum of per-member hashes, which is what makes key
//! order irrelevant without sorting or allocating.

use alloc::string::String;
use core::cell::RefCell;
use core::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use xxhash_rust::xxh3::{xxh3_64, xxh3_64_with_seed};

use crate::doc::{Doc, Item, Num};
use crate::sketch::{ArgTokens, Builder, Sketch};

mod fast;
#[cfg(fuzzing)]
pub mod fuzzing;

/// A 64-bit fingerprint of a canonical value.
pub type Fingerprint = u64;

// One seed per JSON kind, so `"1"`, `1` and `[1]` never collide by construction.
const SEED_NULL: u64 = 0x6e75_6c6c;
const SEED_BOOL: u64 = 0x626f_6f6c;
const SEED_INT: u64 = 0x696e_7400;
const SEED_FLOAT: u64 = 0x666c_6f61;
const SEED_STR: u64 = 0x7374_7200;
const SEED_ARRAY: u64 = 0x6172_7200;
const SEED_OBJECT: u64 = 0x6f62_6a00;
const SEED_MEMBER: u64 = 0x6d65_6d00;
const SEED_BYTES: u64 = 0x6279_7465;
const SEED_CALL: u64 = 0x6361_6c6c;

/// Top-level argument names whose string value tells what a generic tool does
/// (`{"command": "ls -la"}`, `{"action": "screenshot"}`): used to infer the call's effect.
pub const COMMAND_KEYS: [&str; 3] = ["command", "cmd", "action"];

fn hash_u64(seed: u64, x: u64) -> u64 {
    xxh3_64_with_seed(&x.to_le_bytes(), seed)
}

pub(crate) fn hash_int(i: i128) -> u64 {
    xxh3_64_with_seed(&i.to_le_bytes(), SEED_INT)
}

fn hash_f64(f: f64) -> u64 {
    // Integral floats hash as integers, so `1.0` == `1`. 2^63 bounds the exact i64 range.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    if f > -LIMIT && f < LIMIT {
        let i = f as i64;
        if i as f64 == f {
            return hash_int(i as i128);
        }
    }
    xxh3_64_with_seed(&f.to_bits().to_le_bytes(), SEED_FLOAT)
}

fn hash_str(s: &str) -> u64 {
    hash_bytes(s.as_bytes())
}

fn hash_bytes(s: &[u8]) -> u64 {
    xxh3_64_with_seed(s, SEED_STR)
}

fn member(key: u64, value: u64) -> u64 {
    let mut buf = [0u8; 16];
    buf[..8].copy_from_slice(&key.to_le_bytes());
    buf[8..].copy_from_slice(&value.to_le_bytes());
    xxh3_64_with_seed(&buf, SEED_MEMBER)
}

fn finish_object(sum: u64, len: u64) -> u64 {
    let mut buf = [0u8; 16];
    buf[..8].copy_from_slice(&sum.to_le_bytes());
    buf[8..].copy_from_slice(&len.to_le_bytes());
    xxh3_64_with_seed(&buf, SEED_OBJECT)
}

/// Combines an array's element hashes in order.
struct ArrayHasher {
    state: u64,
    len: u64,
}

impl ArrayHasher {
    fn new() -> Self {
        ArrayHasher { state: SEED_ARRAY, len: 0 }
    }
    fn push(&mut self, h: u64) {
        self.state = hash_u64(self.state, h);
        self.len += 1;
    }
    fn finish(self) -> u64 {
        hash_u64(self.state ^ SEED_ARRAY, self.len)
    }
}

/// The fingerprint of a call: the tool name and the arguments' canonical hash.
pub fn call_fingerprint(tool: &str, args: Fingerprint) -> Fingerprint {
    member(tool_fingerprint(tool), args) ^ SEED_CALL
}

/// The fingerprint of a tool name alone.
pub fn tool_fingerprint(tool: &str) -> Fingerprint {
    xxh3_64(tool.as_bytes())
}

/// The fingerprint of raw bytes that are not JSON (a plain-text tool result).
pub fn bytes_fingerprint(bytes: &[u8]) -> Fingerprint {
    xxh3_64_with_seed(bytes, SEED_BYTES)
}

/// What hashing arguments learns besides the fingerprint.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Hashed {
    /// The canonical fingerprint of the whole value.
    pub fingerprint: Fingerprint,
    /// The top-level `command` / `cmd` / `action` string, when there is one.
    pub command: Option<String>,
    /// The arguments' similarity sketch, when it was asked for ([`hash_json_sketched`]).
    pub sketch: Option<Sketch>,
    /// With the sketch, when some string argument is prose (a summary, a message): the sketch of
    /// its plain words, which the arguments' sketch then leaves out ([`crate::sketch::Builder::split`]).
    pub prose: Option<alloc::boxed::Box<Sketch>>,
}

/// Where [`hash_json_str`] and [`hash_json_doc`] put the arguments' tokens, with the sketch: what
/// an error of the call may echo. An out-parameter, not a member of [`Hashed`]: the list is large
/// and the check path would copy it at every move.
pub type EchoOut<'a> = Option<&'a mut ArgTokens>;

/// The fingerprint of a tool's answer: canonical when it is JSON ([`hash_json`]), of its bytes
/// when it is not ([`bytes_fingerprint`]). Most plain text is told apart by its last byte alone,
/// and a JSON value followed by more text (a list, then "3 results") by one pass of the byte
/// scanner; serde_json is asked only about what the scanner leaves to it.
pub fn result_fingerprint(text: &[u8], ignore: &[String]) -> Fingerprint {
    // JSON text ends in `}`, `]`, `"`, a digit, or the last letter of `true`, `false` or `null`.
    let last = text.iter().rev().find(|b| !matches!(b, b' ' | b'\n' | b'\t' | b'\r'));
    if !matches!(last, Some(b'}' | b']' | b'"' | b'0'..=b'9' | b'e' | b'l')) {
        return bytes_fingerprint(text);
    }
    let json = match core::str::from_utf8(text) {
        Ok(s) => match hash_fast(s, ignore, false, None, None) {
            Ok(hashed) => Ok(hashed),
            Err(fast::Decline::Trailing) => return bytes_fingerprint(text),
            Err(fast::Decline::Other) => serde_hash(s, ignore, false, None),
        },
        Err(_) => hash_json(text, ignore),
    };
    json.map_or_else(|_| bytes_fingerprint(text), |h| h.fingerprint)
}

/// Hashes JSON text into its canonical fingerprint without building a value.
///
/// `ignore` names object members left out at any depth. Fails on invalid JSON, on trailing
/// characters and past serde_json's nesting limit (128 levels), with serde_json's message.
pub fn hash_json(text: &[u8], ignore: &[String]) -> Result<Hashed, serde_json::Error> {
    hash_json_sketched(text, ignore, false)
}

/// [`hash_json`], and when `sketch` is true the arguments' similarity sketch in the same pass:
/// every string's tokens and every number, salted with the name of the member they sit in
/// (ignored members are left out here too).
pub fn hash_json_sketched(text: &[u8], ignore: &[String], sketch: bool) -> Result<Hashed, serde_json::Error> {
    match core::str::from_utf8(text) {
        Ok(s) => hash_json_str(s, ignore, sketch, None),
        // Invalid UTF-8 takes the byte path, so its error is serde_json's own, with line and column.
        // Bytes that are not UTF-8 are not JSON, wherever they are (inside an ignored member too).
        Err(e) => hash_with(|ctx| hash_from(&mut serde_json::Deserializer::from_slice(text), ctx), ignore, sketch, None, None)
            .and_then(|_| Err(de::Error::custom(format_args!("invalid UTF-8 at byte {}", e.valid_up_to())))),
    }
}

/// [`hash_json_sketched`] of text already known to be UTF-8: serde_json then skips checking every
/// string and key again (the larger cost on short strings).
pub fn hash_json_str(text: &str, ignore: &[String], sketch: bool, mut echo: EchoOut) -> Result<Hashed, serde_json::Error> {
    if let Ok(hashed) = hash_fast(text, ignore, sketch, None, echo.as_deref_mut()) {
        return Ok(hashed);
    }
    serde_hash(text, ignore, sketch, echo)
}

/// [`hash_json_str`] by serde_json alone: for everything the fast path declines.
fn serde_hash(text: &str, ignore: &[String], sketch: bool, echo: EchoOut) -> Result<Hashed, serde_json::Error> {
    hash_with(|ctx| hash_from(&mut serde_json::Deserializer::from_str(text), ctx), ignore, sketch, None, echo)
}

/// [`hash_json_str`], and the parsed arguments in `doc` (cleared first; ignored members are in it
/// too), for rules to read with [`Doc::with`]`(text)`.
pub fn hash_json_doc(text: &str, ignore: &[String], sketch: bool, doc: &mut Doc, mut echo: EchoOut) -> Result<Hashed, serde_json::Error> {
    if text.len() > crate::doc::MAX_TEXT {
        return Err(de::Error::custom("arguments of 2 GiB or more cannot be read"));
    }
    doc.clear();
    if let Ok(hashed) = hash_fast(text, ignore, sketch, Some(&mut *doc), echo.as_deref_mut()) {
        return Ok(hashed);
    }
    serde_doc(text, ignore, sketch, doc, echo)
}

/// The byte scanner's answer (`fast`), when it takes the text.
fn hash_fast(text: &str, ignore: &[String], sketch: bool, doc: Option<&mut Doc>, echo: EchoOut) -> Result<Hashed, fast::Decline> {
    let mut builder = Builder::new();
    let read = fast::read(text, ignore, sketch.then_some(&mut builder), doc)?;
    if let (true, Some((_, line))) = (sketch, &read.command) {
        builder.add_search_terms(line);
    }
    if let (true, Some(out)) = (sketch, echo) {
        *out = *builder.echo();
    }
    if sketch && builder.maybe_prose() {
        return split_prose(read.hashed(None), text, ignore);
    }
    Ok(read.hashed(sketch.then(|| builder.finish())))
}

/// `hashed` with the arguments sketched again with prose apart ([`Builder::split`]), when the
/// first pass found a string that may be prose; the echo stays the first pass's (every token).
#[cold]
#[inline(never)]
fn split_prose(mut hashed: Hashed, text: &str, ignore: &[String]) -> Result<Hashed, fast::Decline> {
    let mut split = Builder::split();
    fast::read(text, ignore, Some(&mut split), None)?;
    if let Some(line) = &hashed.command {
        split.add_search_terms(line);
    }
    hashed.sketch = Some(split.finish());
    hashed.prose = split.take_prose().map(alloc::boxed::Box::new);
    Ok(hashed)
}

/// [`hash_json_doc`] by serde_json alone: for everything the fast path declines.
fn serde_doc(text: &str, ignore: &[String], sketch: bool, doc: &mut Doc, echo: EchoOut) -> Result<Hashed, serde_json::Error> {
    doc.clear();
    let cell = RefCell::new(core::mem::take(doc));
    let tape = Tape { text, doc: &cell };
    let hashed = hash_with(|ctx| hash_from(&mut serde_json::Deserializer::from_str(text), ctx), ignore, sketch, Some(tape), echo);
    *doc = cell.into_inner();
    hashed
}

fn hash_with(
    hash: impl Fn(&Ctx) -> Result<u64, serde_json::Error>,
    ignore: &[String],
    sketch: bool,
    tape: Option<Tape>,
    echo: EchoOut,
) -> Result<Hashed, serde_json::Error> {
    let command = RefCell::new(None);
    let builder = RefCell::new(Builder::new());
    let ctx = Ctx { ignore, command: &command, sketch: sketch.then_some(&builder), tape };
    let fingerprint = hash(&ctx)?;
    if let (true, Some((_, line))) = (sketch, &*command.borrow()) {
        builder.borrow_mut().add_search_terms(line);
    }
    if let (true, Some(out)) = (sketch, echo) {
        *out = *builder.borrow().echo();
    }
    let mut prose = None;
    if sketch && builder.borrow().maybe_prose() {
        // Sketched again with prose apart, as [`hash_fast`] does.
        builder.replace(Builder::split());
        let again = Ctx { ignore, command: &RefCell::new(None), sketch: Some(&builder), tape: None };
        hash(&again)?;
        if let Some((_, line)) = &*command.borrow() {
            builder.borrow_mut().add_search_terms(line);
        }
        prose = builder.borrow_mut().take_prose().map(alloc::boxed::Box::new);
    }
    let sketch = sketch.then(|| builder.borrow().finish());
    Ok(Hashed { fingerprint, command: command.into_inner().map(|(_, s)| s), sketch, prose })
}

/// Hashes the one value `de` holds, and checks nothing follows it.
fn hash_from<'de, R: serde_json::de::Read<'de>>(de: &mut serde_json::Deserializer<R>, ctx: &Ctx) -> Result<u64, serde_json::Error> {
    let fingerprint = HashSeed { ctx, depth: 0, capture: None, field: 0, skip: false }.deserialize(&mut *de)?;
    de.end()?;
    Ok(fingerprint)
}

/// The fingerprint of an already parsed value; equal to [`hash_json`] of its text.
pub fn hash_value(value: &Value, ignore: &[String]) -> Hashed {
    let command = match value {
        Value::Object(map) => COMMAND_KEYS
            .iter()
            .filter(|k| !ignore.iter().any(|f| f == *k))
            .find_map(|k| map.get(*k).and_then(Value::as_str))
            .map(String::from),
        _ => None,
    };
    Hashed { fingerprint: hash_value_inner(value, ignore), command, sketch: None, prose: None }
}

fn hash_value_inner(value: &Value, ignore: &[String]) -> u64 {
    match value {
        Value::Null => hash_u64(SEED_NULL, 0),
        Value::Bool(b) => hash_u64(SEED_BOOL, *b as u64),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                hash_int(u as i128)
            } else if let Some(i) = n.as_i64() {
                hash_int(i as i128)
            } else {
                hash_f64(n.as_f64().unwrap_or(0.0))
            }
        }
        Value::String(s) => hash_str(s),
        Value::Array(items) => {
            let mut h = ArrayHasher::new();
            for item in items {
                h.push(hash_value_inner(item, ignore));
            }
            h.finish()
        }
        Value::Object(map) => {
            let (mut sum, mut len) = (0u64, 0u64);
            for (k, v) in map {
                if ignore.iter().any(|f| f == k) {
                    continue;
                }
                sum = sum.wrapping_add(member(hash_str(k), hash_value_inner(v, ignore)));
                len += 1;
            }
            finish_object(sum, len)
        }
    }
}

struct Ctx<'a> {
    ignore: &'a [String],
    /// The command string found so far, with the rank of its key in [`COMMAND_KEYS`].
    command: &'a RefCell<Option<(usize, String)>>,
    /// The arguments' sketch under construction, when one was asked for.
    sketch: Option<&'a RefCell<Builder>>,
    /// The document being filled, when one was asked for.
    tape: Option<Tape<'a>>,
}

/// A document being filled, and the text its spans point into.
#[derive(Clone, Copy)]
struct Tape<'a> {
    text: &'a str,
    doc: &'a RefCell<Doc>,
}

impl Tape<'_> {
    fn push(self, item: Item) -> u32 {
        self.doc.borrow_mut().push(item)
    }

    fn string(self, s: &str, borrowed: bool, key: bool) {
        let mut doc = self.doc.borrow_mut();
        let span = doc.span(self.text, s, borrowed);
        doc.push(if key { Item::Key { name: span, next: 0 } } else { Item::Str(span) });
    }
}

#[derive(Clone, Copy)]
struct HashSeed<'c, 'a> {
    ctx: &'c Ctx<'a>,
    depth: u32,
    /// This value is a top-level command string to remember, with its key's rank.
    capture: Option<usize>,
    /// The hash of the innermost member name this value sits under (0 at the top).
    field: u64,
    /// An ignored member's value: into the document only, not into the command or the sketch.
    skip: bool,
}

impl<'de> DeserializeSeed<'de> for HashSeed<'_, '_> {
    type Value = u64;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<u64, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for HashSeed<'_, '_> {
    type Value = u64;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<u64, E> {
        self.item(Item::Null);
        Ok(self.token(hash_u64(SEED_NULL, 0), 1))
    }
    fn visit_bool<E>(self, b: bool) -> Result<u64, E> {
        self.item(Item::Bool(b));
        Ok(self.token(hash_u64(SEED_BOOL, b as u64), 1))
    }
    fn visit_i64<E>(self, i: i64) -> Result<u64, E> {
        self.item(Item::Num(Num::I64(i)));
        Ok(self.int(i < 0, i.unsigned_abs()))
    }
    fn visit_u64<E>(self, u: u64) -> Result<u64, E> {
        self.item(Item::Num(Num::U64(u)));
        Ok(self.int(false, u))
    }
    fn visit_f64<E>(self, f: f64) -> Result<u64, E> {
        self.item(Item::Num(Num::F64(f)));
        Ok(self.token(hash_f64(f), crate::sketch::HEAVY))
    }
    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<u64, E> {
        Ok(self.string(s, true))
    }
    fn visit_str<E>(self, s: &str) -> Result<u64, E> {
        Ok(self.string(s, false))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<u64, A::Error> {
        let at = self.item(Item::Array { len: 0, end: 0 });
        let mut h = ArrayHasher::new();
        let inner = HashSeed { depth: self.depth + 1, capture: None, ..self };
        while let Some(x) = seq.next_element_seed(inner)? {
            h.push(x);
        }
        self.close(at, h.len);
        Ok(h.finish())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<u64, A::Error> {
        let at = self.item(Item::Object { len: 0, end: 0 });
        let (mut sum, mut len, mut members) = (0u64, 0u64, 0u64);
        while let Some(key) = map.next_key_seed(KeySeed { ctx: self.ctx, top: self.depth == 0 && !self.skip })? {
            members += 1;
            let key_at = self.ctx.tape.map(|t| t.doc.borrow().items.len() as u32 - 1);
            if key.ignored || self.skip {
                // Left out of the fingerprint and the sketch, but rules may still read it. Read in
                // full, never skipped (serde's `IgnoredAny` takes numbers out of f64's range and
                // bytes that are not UTF-8): what is taken is exactly what serde_json takes.
                map.next_value_seed(HashSeed { depth: self.depth + 1, capture: None, skip: true, ..self })?;
                self.end_member(key_at);
                continue;
            }
            let inner = HashSeed { ctx: self.ctx, depth: self.depth + 1, capture: key.command, field: key.hash, skip: false };
            let value = map.next_value_seed(inner)?;
            self.end_member(key_at);
            sum = sum.wrapping_add(member(key.hash, value));
            len += 1;
        }
        self.close(at, members);
        Ok(finish_object(sum, len))
    }
}

impl HashSeed<'_, '_> {
    /// Feeds an integer to the sketch (as an id, and echoable as written), if one is being
    /// built; returns its canonical hash.
    fn int(self, negative: bool, magnitude: u64) -> u64 {
        let hash = hash_int(if negative { -(magnitude as i128) } else { magnitude as i128 });
        if let (Some(b), false) = (self.ctx.sketch, self.skip) {
            b.borrow_mut().add_int(self.field, negative, magnitude, hash);
        }
        hash
    }

    /// Feeds a scalar's canonical hash to the sketch, if one is being built; returns the hash.
    fn token(self, hash: u64, weight: u32) -> u64 {
        if let (Some(b), false) = (self.ctx.sketch, self.skip) {
            b.borrow_mut().add_hashed(self.field, hash, weight);
        }
        hash
    }

    fn string(self, s: &str, borrowed: bool) -> u64 {
        if let Some(tape) = self.ctx.tape {
            tape.string(s, borrowed, false);
        }
        if self.skip {
            return 0;
        }
        if let Some(b) = self.ctx.sketch {
            b.borrow_mut().add_text(self.field, s.as_bytes());
        }
        if let Some(rank) = self.capture {
            let mut slot = self.ctx.command.borrow_mut();
            if slot.as_ref().map_or(true, |(r, _)| rank < *r) {
                *slot = Some((rank, String::from(s)));
            }
        }
        hash_str(s)
    }

    /// Adds a value to the document, if one is being filled; returns its index.
    fn item(self, item: Item) -> u32 {
        self.ctx.tape.map_or(0, |t| t.push(item))
    }

    fn end_member(self, key: Option<u32>) {
        if let (Some(t), Some(key)) = (self.ctx.tape, key) {
            t.doc.borrow_mut().end_member(key);
        }
    }

    fn close(self, at: u32, len: u64) {
        if let Some(t) = self.ctx.tape {
            t.doc.borrow_mut().close(at, len as u32);
        }
    }
}

struct Key {
    hash: u64,
    ignored: bool,
    command: Option<usize>,
}

struct KeySeed<'c, 'a> {
    ctx: &'c Ctx<'a>,
    top: bool,
}

impl<'de> DeserializeSeed<'de> for KeySeed<'_, '_> {
    type Value = Key;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Key, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed<'_, '_> {
    type Value = Key;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object key")
    }
    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Key, E> {
        Ok(self.key(s, true))
    }
    fn visit_str<E>(self, s: &str) -> Result<Key, E> {
        Ok(self.key(s, false))
    }
}

impl KeySeed<'_, '_> {
    fn key(self, s: &str, borrowed: bool) -> Key {
        if let Some(tape) = self.ctx.tape {
            tape.string(s, borrowed, true);
        }
        Key {
            hash: hash_str(s),
            ignored: self.ctx.ignore.iter().any(|f| f == s),
            command: if self.top { COMMAND_KEYS.iter().position(|k| *k == s) } else { None },
        }
    }
}
