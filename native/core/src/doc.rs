//! A parsed JSON document that borrows its strings from the text it was parsed from.
//!
//! Argument rules (schemas, field rules) need to walk the arguments as a tree. Building a
//! `serde_json::Value` for that costs an allocation per string and per object, and as much again
//! to drop it: more than the rules themselves. A [`Doc`] is a flat list of `Item`s in document
//! order (a container is followed by its contents and knows where they end), filled while the
//! arguments are hashed ([`crate::canon::hash_json_doc`]), in the same pass. Strings are spans of
//! the source text; only strings with escapes are copied, once, into one buffer. A session keeps
//! one `Doc` and reuses its memory from call to call.
//!
//! A `Doc` holds no reference to its text, so it can live in a session; [`Args`] puts the two
//! together to read it.

use alloc::borrow::Cow;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use serde_json::{Map, Number, Value};

/// Where a string's bytes are: in the source text, or (when it had escapes) in the document's
/// own buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    /// The offset, with [`OWNED`] set for the document's buffer.
    start: u32,
    len: u32,
}

impl Span {
    /// The span of `text[start..end]` (a text of less than [`MAX_TEXT`] bytes).
    pub(crate) fn of(start: usize, end: usize) -> Span {
        Span { start: start as u32, len: (end - start) as u32 }
    }
}

/// In a [`Span`]'s `start`: the string is in the document's own buffer.
const OWNED: u32 = 1 << 31;
/// The longest text a document can be parsed from (its offsets are 31 bits).
pub const MAX_TEXT: usize = (OWNED - 1) as usize;

/// One value, or one object member's name, of a [`Doc`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Item {
    Null,
    Bool(bool),
    Num(Num),
    Str(Span),
    /// An object member's name; its value follows, and the next member starts at `next`.
    Key { name: Span, next: u32 },
    /// `len` elements follow; `end` is the index just past the last item of the array.
    Array { len: u32, end: u32 },
    /// `len` members (a `Key` and its value) follow; `end` as for arrays.
    Object { len: u32, end: u32 },
}

/// A JSON number as serde_json parsed it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Num {
    /// A non-negative integer.
    U64(u64),
    /// A negative integer.
    I64(i64),
    /// Any other number.
    F64(f64),
}

impl Num {
    pub fn as_u64(self) -> Option<u64> {
        match self {
            Num::U64(u) => Some(u),
            Num::I64(i) => u64::try_from(i).ok(),
            Num::F64(_) => None,
        }
    }

    pub fn as_i64(self) -> Option<i64> {
        match self {
            Num::U64(u) => i64::try_from(u).ok(),
            Num::I64(i) => Some(i),
            Num::F64(_) => None,
        }
    }

    pub fn as_f64(self) -> f64 {
        match self {
            Num::U64(u) => u as f64,
            Num::I64(i) => i as f64,
            Num::F64(f) => f,
        }
    }

    /// A serde_json number, as the document would hold it.
    pub fn of(n: &Number) -> Num {
        if let Some(u) = n.as_u64() {
            Num::U64(u)
        } else if let Some(i) = n.as_i64() {
            Num::I64(i)
        } else {
            Num::F64(n.as_f64().unwrap_or(f64::NAN))
        }
    }

    /// The number as serde_json holds it.
    pub fn to_number(self) -> Number {
        match self {
            Num::U64(u) => Number::from(u),
            Num::I64(i) => Number::from(i),
            // serde_json never parses a non-finite number; 0 is unreachable.
            Num::F64(f) => Number::from_f64(f).unwrap_or_else(|| Number::from(0)),
        }
    }

    /// Equal as numbers: `1`, `1.0` and `1e0` are the same value.
    pub fn same(self, other: Num) -> bool {
        match (self, other) {
            (Num::U64(a), Num::U64(b)) => a == b,
            (Num::F64(_), _) | (_, Num::F64(_)) => self.as_f64() == other.as_f64(),
            (a, b) => match (a.as_i64(), b.as_i64()) {
                (Some(x), Some(y)) => x == y,
                _ => a.as_u64().is_some() && a.as_u64() == b.as_u64(),
            },
        }
    }
}

/// A parsed JSON document: see the [module documentation](self).
#[derive(Debug, Default, Clone)]
pub struct Doc {
    pub(crate) items: Vec<Item>,
    /// The strings that had escapes, unescaped, end to end.
    pub(crate) owned: String,
}

impl Doc {
    /// Empties the document, keeping its memory.
    pub fn clear(&mut self) {
        self.items.clear();
        self.owned.clear();
    }

    /// The bytes of memory the document holds (kept by [`Doc::clear`]).
    pub fn footprint(&self) -> usize {
        self.items.capacity() * core::mem::size_of::<Item>() + self.owned.capacity()
    }

    /// Parses `text` into a document (standalone use; sessions fill theirs while hashing).
    pub fn parse(text: &str) -> Result<Doc, serde_json::Error> {
        let mut doc = Doc::default();
        crate::canon::hash_json_doc(text, &[], false, &mut doc, None)?;
        Ok(doc)
    }

    /// Reads the document with the text it was parsed from.
    pub fn with<'a>(&'a self, text: &'a str) -> Args<'a> {
        Args { doc: self, text }
    }

    /// Makes this the document of one string, the whole of the text it will be read with.
    pub fn set_string(&mut self, text: &str) {
        self.clear();
        self.items.push(Item::Str(Span { start: 0, len: text.len().min(MAX_TEXT) as u32 }));
    }

    pub(crate) fn push(&mut self, item: Item) -> u32 {
        self.items.push(item);
        (self.items.len() - 1) as u32
    }

    /// A span of the source text for a string serde_json borrowed from it (no escapes), or a copy
    /// for one it had to unescape.
    pub(crate) fn span(&mut self, text: &str, s: &str, borrowed: bool) -> Span {
        if borrowed {
            let start = (s.as_ptr() as usize).wrapping_sub(text.as_ptr() as usize);
            if start <= text.len() && start + s.len() <= text.len() {
                return Span { start: start as u32, len: s.len() as u32 };
            }
        }
        let start = self.owned.len() as u32 | OWNED;
        self.owned.push_str(s);
        Span { start, len: s.len() as u32 }
    }

    /// The member name at `key` was followed by its value: the next member starts here.
    pub(crate) fn end_member(&mut self, key: u32) {
        let here = self.items.len() as u32;
        if let Some(Item::Key { next, .. }) = self.items.get_mut(key as usize) {
            *next = here;
        }
    }

    /// Closes the container opened at `at`, now that its `len` children were pushed.
    pub(crate) fn close(&mut self, at: u32, n: u32) {
        let end = self.items.len() as u32;
        if let Some(Item::Array { len, end: e } | Item::Object { len, end: e }) = self.items.get_mut(at as usize) {
            *len = n;
            *e = end;
        }
    }
}

/// A [`Doc`] and its source text: a call's arguments, ready to be read.
#[derive(Debug, Clone, Copy)]
pub struct Args<'a> {
    doc: &'a Doc,
    text: &'a str,
}

impl<'a> Args<'a> {
    /// The top-level value (`null` for an empty document).
    pub fn root(self) -> Node<'a> {
        Node { args: self, at: 0 }
    }

    fn str(self, span: Span) -> &'a str {
        let source = if span.start & OWNED != 0 { self.doc.owned.as_str() } else { self.text };
        let start = (span.start & !OWNED) as usize;
        source.get(start..start + span.len as usize).unwrap_or("")
    }

    fn bytes(self, span: Span) -> &'a [u8] {
        let source = if span.start & OWNED != 0 { self.doc.owned.as_bytes() } else { self.text.as_bytes() };
        let start = (span.start & !OWNED) as usize;
        source.get(start..start + span.len as usize).unwrap_or(&[])
    }

}

/// What kind of JSON value a [`Node`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Null,
    Bool,
    Number,
    String,
    Array,
    Object,
}

/// One value of a document. Cheap to copy.
#[derive(Debug, Clone, Copy)]
pub struct Node<'a> {
    args: Args<'a>,
    at: u32,
}

impl<'a> Node<'a> {
    fn item(self) -> Item {
        self.args.doc.items.get(self.at as usize).copied().unwrap_or(Item::Null)
    }

    /// The index just past this value and everything in it.
    fn end(self) -> u32 {
        match self.item() {
            Item::Array { end, .. } | Item::Object { end, .. } => end,
            _ => self.at + 1,
        }
    }

    pub fn kind(self) -> Kind {
        match self.item() {
            Item::Null | Item::Key { .. } => Kind::Null,
            Item::Bool(_) => Kind::Bool,
            Item::Num(_) => Kind::Number,
            Item::Str(_) => Kind::String,
            Item::Array { .. } => Kind::Array,
            Item::Object { .. } => Kind::Object,
        }
    }

    /// What tells this value from any other value alive: its document's address and its
    /// position in it.
    pub fn address(self) -> (usize, u32) {
        (self.args.doc as *const Doc as usize, self.at)
    }

    pub fn is_null(self) -> bool {
        self.kind() == Kind::Null
    }

    pub fn as_bool(self) -> Option<bool> {
        match self.item() {
            Item::Bool(b) => Some(b),
            _ => None,
        }
    }

    pub fn as_number(self) -> Option<Num> {
        match self.item() {
            Item::Num(n) => Some(n),
            _ => None,
        }
    }

    pub fn as_str(self) -> Option<&'a str> {
        match self.item() {
            Item::Str(s) => Some(self.args.str(s)),
            _ => None,
        }
    }

    /// The number of elements of an array or members of an object (0 for anything else).
    pub fn len(self) -> usize {
        match self.item() {
            Item::Array { len, .. } | Item::Object { len, .. } => len as usize,
            _ => 0,
        }
    }

    pub fn is_empty(self) -> bool {
        self.len() == 0
    }

    /// An array's elements, in order (none for anything else).
    pub fn elements(self) -> Elements<'a> {
        let (next, end) = match self.item() {
            Item::Array { end, .. } => (self.at + 1, end),
            _ => (0, 0),
        };
        Elements { args: self.args, next, end }
    }

    /// An object's members, in document order (none for anything else).
    pub fn members(self) -> Members<'a> {
        let (next, end) = match self.item() {
            Item::Object { end, .. } => (self.at + 1, end),
            _ => (0, 0),
        };
        Members { args: self.args, next, end }
    }

    /// An object's member (the last one, when a name is repeated, as serde_json keeps it).
    pub fn get(self, key: &str) -> Option<Node<'a>> {
        let Item::Object { end, .. } = self.item() else { return None };
        let (mut i, mut found) = (self.at + 1, None);
        // Member names are compared as bytes, length and first byte first: most differ there.
        let (len, head) = (key.len(), key.as_bytes().first());
        while i < end {
            let Some(&Item::Key { name, next }) = self.args.doc.items.get(i as usize) else { break };
            if name.len as usize == len {
                let bytes = self.args.bytes(name);
                if bytes.first() == head && bytes == key.as_bytes() {
                    found = Some(i + 1);
                }
            }
            i = next;
        }
        found.map(|at| Node { args: self.args, at })
    }

    /// An array's element.
    pub fn index(self, i: usize) -> Option<Node<'a>> {
        self.elements().nth(i)
    }

    /// The value as a `serde_json::Value` (for messages and other cold paths: it allocates).
    pub fn to_value(self) -> Value {
        match self.item() {
            Item::Null | Item::Key { .. } => Value::Null,
            Item::Bool(b) => Value::Bool(b),
            Item::Num(n) => Value::Number(n.to_number()),
            Item::Str(s) => Value::String(String::from(self.args.str(s))),
            Item::Array { .. } => Value::Array(self.elements().map(Node::to_value).collect()),
            Item::Object { .. } => {
                let mut map = Map::new();
                for (k, v) in self.members() {
                    map.insert(String::from(k), v.to_value());
                }
                Value::Object(map)
            }
        }
    }

    /// The text a regex sees: a string's content, or the compact JSON text of anything else.
    pub fn text(self) -> Cow<'a, str> {
        match self.as_str() {
            Some(s) => Cow::Borrowed(s),
            None => Cow::Owned(self.to_value().to_string()),
        }
    }

    /// JSON equality with `v`, where numbers compare by value (`1` equals `1.0`) and member
    /// order does not matter.
    pub fn same(self, v: &Value) -> bool {
        match (self.item(), v) {
            (Item::Null, Value::Null) => true,
            (Item::Bool(a), Value::Bool(b)) => a == *b,
            (Item::Num(a), Value::Number(b)) => a.same(Num::of(b)),
            (Item::Str(s), Value::String(b)) => self.args.str(s) == b,
            (Item::Array { len, .. }, Value::Array(b)) => {
                len as usize == b.len() && self.elements().zip(b).all(|(x, y)| x.same(y))
            }
            (Item::Object { .. }, Value::Object(b)) => {
                // Repeated names: serde_json keeps the last one, so compare the parsed map's view.
                let mut n = 0;
                for (k, x) in self.members() {
                    match b.get(k) {
                        Some(y) if self.get(k).is_some_and(|last| last.at == x.at) => {
                            if !x.same(y) {
                                return false;
                            }
                            n += 1;
                        }
                        Some(_) => {}
                        None => return false,
                    }
                }
                n == b.len()
            }
            _ => false,
        }
    }
}

/// The elements of an array [`Node`].
#[derive(Debug, Clone)]
pub struct Elements<'a> {
    args: Args<'a>,
    next: u32,
    end: u32,
}

impl<'a> Iterator for Elements<'a> {
    type Item = Node<'a>;
    fn next(&mut self) -> Option<Node<'a>> {
        (self.next < self.end).then(|| {
            let n = Node { args: self.args, at: self.next };
            self.next = n.end();
            n
        })
    }
}

/// The members (name, value) of an object [`Node`].
#[derive(Debug, Clone)]
pub struct Members<'a> {
    args: Args<'a>,
    next: u32,
    end: u32,
}

impl<'a> Iterator for Members<'a> {
    type Item = (&'a str, Node<'a>);
    fn next(&mut self) -> Option<(&'a str, Node<'a>)> {
        if self.next >= self.end {
            return None;
        }
        let Some(&Item::Key { name, next }) = self.args.doc.items.get(self.next as usize) else {
            self.next = self.end;
            return None;
        };
        let value = Node { args: self.args, at: self.next + 1 };
        self.next = next;
        Some((self.args.str(name), value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parsed(text: &str) -> Value {
        let doc = Doc::parse(text).unwrap();
        doc.with(text).root().to_value()
    }

    #[test]
    fn a_document_reads_back_as_the_value_it_was_parsed_from() {
        for text in [
            "null", "true", "0", "-7", "18446744073709551615", "1.5e3", "\"\"", "\"a\\\"b\\u00e9\"", "[]", "{}",
            r#"{"a": [1, {"b": null, "c\n": "x"}, []], "d": {"e": {}}, "f": -0.25}"#,
        ] {
            assert_eq!(parsed(text), serde_json::from_str::<Value>(text).unwrap(), "{text}");
        }
    }

    #[test]
    fn navigation() {
        let text = r#"{"q": "x", "f": {"tags": ["a", "b\tc"], "n": 2}, "q": "last"}"#;
        let doc = Doc::parse(text).unwrap();
        let root = doc.with(text).root();
        assert_eq!(root.kind(), Kind::Object);
        assert_eq!(root.get("q").and_then(Node::as_str), Some("last"));
        let tags = root.get("f").and_then(|f| f.get("tags")).unwrap();
        assert_eq!(tags.len(), 2);
        assert_eq!(tags.index(1).and_then(Node::as_str), Some("b\tc"));
        assert!(tags.index(2).is_none());
        assert_eq!(root.get("f").and_then(|f| f.get("n")).and_then(Node::as_number).and_then(Num::as_u64), Some(2));
        assert!(root.same(&json!({"f": {"n": 2.0, "tags": ["a", "b\tc"]}, "q": "last"})));
        assert!(!root.same(&json!({"q": "last"})));
    }

    #[test]
    fn numbers_compare_by_value() {
        assert!(Num::U64(1).same(Num::F64(1.0)));
        assert!(Num::I64(-1).same(Num::F64(-1.0)));
        assert!(!Num::U64(u64::MAX).same(Num::I64(-1)));
        assert!(Num::U64(u64::MAX).same(Num::U64(u64::MAX)));
        assert!(!Num::F64(0.5).same(Num::U64(0)));
    }
}
