//! JSON Schema validation of the core's parsed arguments ([`microloop_core::doc`]) without
//! building a `serde_json::Value`: `jsonschema`'s custom-representation interface
//! (`jsonschema::options_for::<Tape>()`), implemented over a [`Node`].

use std::borrow::Cow;

use jsonschema::json::{Array, Json, JsonNumber, NodeIdentity, Object};
use jsonschema::JsonType;
use microloop_core::doc::{Doc, Elements, Kind, Members, Node, Num};
use serde_json::Value;

/// The representation: validators built with `jsonschema::options_for::<Tape>()` take a
/// [`Node`] of a [`Doc`].
pub struct Tape;

/// A document holding one string, for `propertyNames`.
#[derive(Default)]
pub struct StringDoc {
    doc: Doc,
    text: String,
}

impl Json for Tape {
    type Node<'a> = Node<'a>;
    type PreparedKey = String;
    type StringBuffer = StringDoc;
    /// Looking a member up is a scan of the object's members; one pass over them is cheaper
    /// than a few lookups.
    const KEYS_PER_LOOKUP: usize = 4;
    /// A document is a tree.
    const ACYCLIC: bool = true;

    fn prepare_key(key: &str) -> String {
        key.to_owned()
    }

    fn with_string_node<T>(buffer: &mut StringDoc, string: &str, f: impl FnOnce(Node<'_>) -> T) -> T {
        buffer.text.clear();
        buffer.text.push_str(string);
        buffer.doc.set_string(&buffer.text);
        f(buffer.doc.with(&buffer.text).root())
    }
}

/// A number of a document.
pub struct Number(Num);

impl JsonNumber for Number {
    fn as_u64(&self) -> Option<u64> {
        self.0.as_u64()
    }
    fn as_i64(&self) -> Option<i64> {
        self.0.as_i64()
    }
    fn as_f64(&self) -> Option<f64> {
        Some(self.0.as_f64())
    }
    fn as_str(&self) -> Cow<'_, str> {
        Cow::Owned(self.0.to_number().to_string())
    }
    fn to_number(&self) -> Cow<'_, serde_json::Number> {
        Cow::Owned(self.0.to_number())
    }
    fn is_integer(&self) -> bool {
        match self.0 {
            Num::U64(_) | Num::I64(_) => true,
            Num::F64(f) => f.fract() == 0.0,
        }
    }
    /// serde_json reads a number written with a fraction or an exponent as a float.
    fn is_written_as_integer(&self) -> bool {
        !matches!(self.0, Num::F64(_))
    }
}

impl<'a> jsonschema::json::Node<'a, Tape> for Node<'a> {
    type Object = ObjectNode<'a>;
    type Array = ArrayNode<'a>;
    type Number = Number;

    fn as_object(&self) -> Option<ObjectNode<'a>> {
        (self.kind() == Kind::Object).then_some(ObjectNode(*self))
    }
    fn as_array(&self) -> Option<ArrayNode<'a>> {
        (self.kind() == Kind::Array).then_some(ArrayNode(*self))
    }
    fn as_string(&self) -> Option<Cow<'a, str>> {
        Node::as_str(*self).map(Cow::Borrowed)
    }
    fn as_number(&self) -> Option<Number> {
        Node::as_number(*self).map(Number)
    }
    fn as_boolean(&self) -> Option<bool> {
        self.as_bool()
    }
    fn is_null(&self) -> bool {
        Node::is_null(*self)
    }
    fn json_type(&self) -> JsonType {
        match self.kind() {
            Kind::Null => JsonType::Null,
            Kind::Bool => JsonType::Boolean,
            Kind::Number => JsonType::Number,
            Kind::String => JsonType::String,
            Kind::Array => JsonType::Array,
            Kind::Object => JsonType::Object,
        }
    }
    fn equals_value(&self, expected: &Value) -> bool {
        self.same(expected)
    }
    fn to_value(&self) -> Cow<'a, Value> {
        Cow::Owned(Node::to_value(*self))
    }
    fn identity(&self) -> Option<NodeIdentity> {
        let (doc, position) = self.address();
        Some(NodeIdentity::tagged(doc, position))
    }
}

/// An object node.
pub struct ObjectNode<'a>(Node<'a>);

impl<'a> Object<'a, Tape> for ObjectNode<'a> {
    type Node = Node<'a>;
    type MemberName = &'a str;
    type MembersIter = Members<'a>;

    fn len(&self) -> usize {
        self.0.len()
    }
    fn get(&self, key: &String) -> Option<Node<'a>> {
        self.0.get(key)
    }
    fn members(&self) -> Members<'a> {
        self.0.members()
    }
}

/// An array node.
pub struct ArrayNode<'a>(Node<'a>);

impl<'a> Array<'a, Tape> for ArrayNode<'a> {
    type Node = Node<'a>;
    type ElementsIter = Elements<'a>;

    fn len(&self) -> usize {
        self.0.len()
    }
    fn elements(&self) -> Elements<'a> {
        self.0.elements()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_meet_the_contract_jsonschema_relies_on() {
        let text = jsonschema::json::conformance::document().to_string();
        let doc = Doc::parse(&text).unwrap();
        jsonschema::json::conformance::assert_conformance::<Tape>(&doc.with(&text).root());
    }

    #[test]
    fn a_schema_sees_what_serde_json_would() {
        let schema = serde_json::json!({"type": "object", "required": ["q"], "properties": {
            "q": {"type": "string", "minLength": 2, "pattern": "^[a-z]+$"},
            "n": {"type": "integer", "maximum": 3}, "tags": {"type": "array", "uniqueItems": true},
            "mode": {"enum": ["a", 1.0]}}, "additionalProperties": false, "propertyNames": {"maxLength": 4}});
        let ours = jsonschema::options_for::<Tape>().build(&schema).unwrap();
        let reference = jsonschema::validator_for(&schema).unwrap();
        for text in [
            r#"{"q": "ab"}"#, r#"{"q": "a"}"#, r#"{"q": "AB"}"#, r#"{"n": 1}"#, r#"{"q": "ab", "n": 3.0}"#,
            r#"{"q": "ab", "n": 4}"#, r#"{"q": "ab", "tags": [1, 1.0]}"#, r#"{"q": "ab", "tags": [1, "1"]}"#,
            r#"{"q": "ab", "mode": 1}"#, r#"{"q": "ab", "mode": "b"}"#, r#"{"q": "ab", "extra": 1}"#, r#"{"q": "a\u00e9"}"#,
            r#"{"q": "ab", "q": "x"}"#, "[]", "null",
        ] {
            let doc = Doc::parse(text).unwrap();
            let value: Value = serde_json::from_str(text).unwrap();
            assert_eq!(ours.is_valid(doc.with(text).root()), reference.is_valid(&value), "{text}");
            let (a, b) = (ours.validate(doc.with(text).root()).err(), reference.validate(&value).err());
            assert_eq!(a.map(|e| (e.to_string(), e.instance_path().to_string())), b.map(|e| (e.to_string(), e.instance_path().to_string())), "{text}");
        }
    }
}
