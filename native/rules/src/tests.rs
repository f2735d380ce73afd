use std::borrow::Cow;

use serde_json::json;

use super::*;

fn rules(doc: Value) -> Rules {
    Rules::new(&Policy::from_value(doc).unwrap()).unwrap()
}

fn refused(doc: Value) -> PolicyError {
    match Policy::from_value(doc) {
        Err(e) => e,
        Ok(p) => Rules::new(&p).err().expect("the policy should be refused"),
    }
}

fn one_rule(rule: Value) -> Rules {
    rules(json!({"tools": [{"name": "t", "rules": [rule]}]}))
}

/// Checks `args` as the engine does: from their JSON text, parsed into a document.
fn check_with<T>(args: &Value, f: impl FnOnce(microloop_core::doc::Node) -> T) -> T {
    let text = args.to_string();
    let doc = microloop_core::doc::Doc::parse(&text).unwrap();
    f(doc.with(&text).root())
}

fn hit(r: &Rules, args: Value) -> Option<(String, String)> {
    check_with(&args, |a| r.check_call(&[0], a)).map(|h| (h.id, h.message))
}

#[test]
fn deny_regex_blocks_matching_strings_only() {
    let r = one_rule(json!({"id": "no-rm", "field": "/cmd", "deny_regex": r"rm\s+-rf\s+/(\s|$)"}));
    let (id, msg) = hit(&r, json!({"cmd": "rm -rf /"})).unwrap();
    assert_eq!(id, "no-rm");
    assert!(msg.contains("`/cmd`") && msg.contains("forbidden pattern"), "{msg}");
    assert_eq!(hit(&r, json!({"cmd": "rm -rf ./build"})), None);
    assert_eq!(hit(&r, json!({"other": "rm -rf /"})), None, "a missing field has nothing to deny");
}

#[test]
fn require_regex_and_a_missing_field() {
    let r = one_rule(json!({"field": "/branch", "require_regex": "^feature/"}));
    assert_eq!(hit(&r, json!({"branch": "feature/x"})), None);
    let (id, msg) = hit(&r, json!({"branch": "main"})).unwrap();
    assert_eq!(id, "tools[0].rules[0]");
    assert!(msg.contains("does not match the required pattern `^feature/`"), "{msg}");
    let (_, msg) = hit(&r, json!({})).unwrap();
    assert!(msg.contains("is missing"), "{msg}");
    let r = one_rule(json!({"field": "/branch", "require_regex": "^feature/", "optional": true}));
    assert_eq!(hit(&r, json!({})), None);
    assert!(hit(&r, json!({"branch": "main"})).is_some());
}

#[test]
fn allow_and_deny_values_compare_json_values() {
    let r = one_rule(json!({"field": "/db", "allow_values": ["analytics", "reporting"]}));
    assert_eq!(hit(&r, json!({"db": "analytics"})), None);
    let (_, msg) = hit(&r, json!({"db": "prod"})).unwrap();
    assert!(msg.contains(r#""prod""#) && msg.contains(r#""analytics", "reporting""#), "{msg}");
    let r = one_rule(json!({"field": "/n", "deny_values": [1, "x"]}));
    assert!(hit(&r, json!({"n": 1.0})).is_some(), "1.0 is the value 1");
    assert!(hit(&r, json!({"n": "x"})).is_some());
    assert_eq!(hit(&r, json!({"n": "1"})), None, "a string is not a number");
}

#[test]
fn equals_including_null() {
    let r = one_rule(json!({"field": "/dry_run", "equals": true, "message": "Always use a dry run."}));
    assert_eq!(hit(&r, json!({"dry_run": true})), None);
    assert_eq!(hit(&r, json!({"dry_run": false})).unwrap().1, "Always use a dry run.");
    let r = one_rule(json!({"field": "/parent", "equals": null}));
    assert_eq!(hit(&r, json!({"parent": null})), None);
    assert!(hit(&r, json!({"parent": 3})).is_some());
}

#[test]
fn a_rule_on_a_list_applies_to_each_element() {
    let r = one_rule(json!({"field": "/urls", "require_regex": "^https://([a-z]+\\.)?example\\.com/"}));
    assert_eq!(hit(&r, json!({"urls": ["https://example.com/a", "https://docs.example.com/b"]})), None);
    let (_, msg) = hit(&r, json!({"urls": ["https://example.com/a", "http://evil.test/"]})).unwrap();
    assert!(msg.contains("`/urls/1`"), "{msg}");
    let r = one_rule(json!({"field": "/tags", "allow_values": ["a", "b"]}));
    assert_eq!(hit(&r, json!({"tags": ["a", "b", "a"]})), None);
    assert!(hit(&r, json!({"tags": ["a", "c"]})).is_some());
    let r = one_rule(json!({"field": "/tags", "deny_values": ["secret"]}));
    assert!(hit(&r, json!({"tags": ["ok", "secret"]})).is_some());
}

#[test]
fn regexes_see_numbers_as_their_json_text() {
    let r = one_rule(json!({"field": "/id", "require_regex": "^[0-9]{1,6}$"}));
    assert_eq!(hit(&r, json!({"id": 12345})), None);
    assert!(hit(&r, json!({"id": 1234567})).is_some());
}

#[test]
fn schema_failure_names_the_path_and_the_expectation() {
    let r = rules(json!({"tools": [{"name": "run_sql", "schema": {
        "type": "object", "required": ["sql"], "additionalProperties": false,
        "properties": {"sql": {"type": "string"}, "limit": {"type": "integer", "maximum": 1000}}}}]}));
    assert_eq!(hit(&r, json!({"sql": "select 1"})), None);
    let (id, msg) = hit(&r, json!({"sql": 5})).unwrap();
    assert_eq!(id, "schema");
    assert!(msg.contains("at `/sql`, 5 is not of type \"string\""), "{msg}");
    let (_, msg) = hit(&r, json!({"sql": "x", "limit": 5000})).unwrap();
    assert!(msg.contains("`/limit`") && msg.contains("1000"), "{msg}");
    let (_, msg) = hit(&r, json!({})).unwrap();
    assert!(msg.contains("at the arguments") && msg.contains("\"sql\" is a required property"), "{msg}");
}

#[test]
fn schema_drafts_7_and_2020_12() {
    let draft7 = json!({"$schema": "http://json-schema.org/draft-07/schema#", "type": "array",
        "items": [{"type": "string"}], "additionalItems": false});
    let r = rules(json!({"tools": [{"name": "t", "schema": draft7, "schema_id": "args-shape"}]}));
    assert_eq!(hit(&r, json!(["a"])), None);
    assert_eq!(hit(&r, json!(["a", 1])).unwrap().0, "args-shape");
    let d2020 = json!({"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "array",
        "prefixItems": [{"type": "string"}], "items": false});
    let r = rules(json!({"tools": [{"name": "t", "schema": d2020}]}));
    assert_eq!(hit(&r, json!(["a"])), None);
    assert!(hit(&r, json!(["a", 1])).is_some());
}

#[test]
fn schema_pattern_and_format_are_checked() {
    let r = rules(json!({"tools": [{"name": "t", "schema": {"properties": {
        "id": {"type": "string", "pattern": "^[A-Z]{3}-[0-9]+$"},
        "mail": {"type": "string", "format": "email"}}}}]}));
    assert_eq!(hit(&r, json!({"id": "ABC-12", "mail": "a@b.example"})), None);
    assert!(hit(&r, json!({"id": "abc"})).is_some());
    assert!(hit(&r, json!({"mail": "not an address"})).is_some());
}

#[test]
fn every_schema_before_any_field_rule() {
    let r = rules(json!({"tools": [
        {"name": "*", "rules": [{"id": "global", "field": "/x", "deny_values": [1]}]},
        {"name": "t", "schema": {"properties": {"x": {"type": "string"}}}}]}));
    assert_eq!(hit_entries(&r, &[0, 1], json!({"x": 1})).unwrap(), "schema");
    assert_eq!(check_with(&json!({"x": 1}), |a| r.check(0, a)).unwrap().id, "global");
}

fn hit_entries(r: &Rules, entries: &[usize], args: Value) -> Option<String> {
    check_with(&args, |a| r.check_call(entries, a)).map(|h| h.id)
}

#[test]
fn long_values_are_cut_in_messages() {
    let r = one_rule(json!({"field": "/q", "deny_regex": "x"}));
    let (_, msg) = hit(&r, json!({"q": "x".repeat(10_000)})).unwrap();
    assert!(msg.len() < 400 && msg.contains('…'), "{msg}");
}

#[test]
fn mask_patterns_replace_matches() {
    let r = rules(json!({"loops": {"mask_patterns": ["job-[0-9]+", "pid=\\d+"]}}));
    let out = r.mask(Cow::Borrowed(b"started job-42 with pid=7".as_slice()));
    assert_eq!(&*out, b"started <masked> with <masked>");
    assert!(matches!(r.mask(Cow::Borrowed(b"nothing".as_slice())), Cow::Borrowed(_)));
}

#[test]
fn broken_policies_are_refused_with_their_path() {
    let cases = [
        (json!({"tools": [{"name": "a"}, {"name": "b"}, {"name": "c", "rules": [{"field": "/x", "deny_regex": "(foo"}]}]}),
         "tools[2].rules[0].deny_regex", "`(foo` is not a valid regex: unclosed group"),
        (json!({"tools": [{"name": "a", "rules": [{"field": "/x", "equals": 1}, {"field": "/x", "require_regex": "\\w{5000}"}]}]}),
         "tools[0].rules[1].require_regex", "too big"),
        (json!({"tools": [{"name": "a", "schema": {"type": "strin"}}]}), "tools[0].schema", "at `/type`"),
        (json!({"tools": [{"name": "a", "schema": {"type": "string", "pattern": "(?<=a)b"}}]}), "tools[0].schema", "not a valid JSON Schema"),
        (json!({"tools": [{"name": "a", "schema": {"$ref": "https://example.com/s.json"}}]}), "tools[0].schema", "not a valid JSON Schema"),
        (json!({"loops": {"mask_patterns": ["ok", "[z-a]"]}}), "loops.mask_patterns[1]", "invalid character class range"),
    ];
    for (doc, path, part) in cases {
        let e = refused(doc);
        assert_eq!(e.path, path, "{e}");
        assert!(e.message.contains(part), "{e}");
    }
}

#[test]
fn toml_and_json_mean_the_same() {
    let toml = load_toml(
        r#"
        preset = "strict"
        [loops]
        max_identical = 4
        [[tools]]
        name = "run_sql"
        schema = { type = "object", required = ["sql"], properties = { sql = { type = "string" } } }
        rules = [ { id = "no-drop", field = "/sql", deny_regex = '(?i)\bdrop\s+table\b', message = "No DROP TABLE." } ]
        "#,
    )
    .unwrap();
    let json = Policy::from_value(json!({"preset": "strict", "loops": {"max_identical": 4}, "tools": [{
        "name": "run_sql",
        "schema": {"type": "object", "required": ["sql"], "properties": {"sql": {"type": "string"}}},
        "rules": [{"id": "no-drop", "field": "/sql", "deny_regex": "(?i)\\bdrop\\s+table\\b", "message": "No DROP TABLE."}]}]}))
    .unwrap();
    assert_eq!(toml, json);
    assert_eq!(load_toml("permissive").unwrap().preset, Preset::Permissive);
    let e = load_toml("[loops\nmax_identical = 3").unwrap_err();
    assert!(e.message.starts_with("the policy is not valid TOML"), "{e}");
    let e = load_toml("[[tools]]\nname = \"a\"\nmax_calls = \"ten\"").unwrap_err();
    assert_eq!(e.path, "tools[0].max_calls");
}

#[test]
fn pointers_are_resolved_like_rfc_6901() {
    let doc = json!({"a/b": {"~k": [10, 11]}, "list": ["x", "y"], "m": {"01": "zero-one", "1": "one"}});
    let at = |p: &str| check_with(&doc, |a| lookup(a, &tokens(p)).map(|n| n.to_value()));
    assert_eq!(at("/a~1b/~0k/1"), Some(json!(11)));
    assert_eq!(at("/list/0"), Some(json!("x")));
    assert_eq!(at("/list/01"), None, "a leading zero is not an index");
    assert_eq!(at("/list/2"), None);
    assert_eq!(at("/m/01"), Some(json!("zero-one")), "on an object every token is a key");
    assert_eq!(at("/m/1"), Some(json!("one")));
    assert_eq!(at(""), Some(doc.clone()));
    for p in ["/a~1b/~0k/1", "/list/0", "/list/01", "/m/01", ""] {
        assert_eq!(at(p).as_ref(), doc.pointer(p), "{p}");
    }
}

#[test]
fn the_first_broken_rule_in_the_policy_is_named_whatever_the_fields() {
    // Field rules are checked field by field (each field looked up once); the verdict must still
    // name the rule that comes first in the policy.
    let r = rules(json!({"tools": [{"name": "t", "rules": [
        {"id": "first", "field": "/a/x", "deny_values": [1]},
        {"id": "second", "field": "/b", "deny_values": [1]},
        {"id": "third", "field": "/a", "require_regex": "^never$"}]}]}));
    assert_eq!(hit(&r, json!({"a": {"x": 1}, "b": 1})).unwrap().0, "first");
    assert_eq!(hit(&r, json!({"a": {"x": 2}, "b": 1})).unwrap().0, "second");
    assert_eq!(hit(&r, json!({"a": {"x": 2}, "b": 2})).unwrap().0, "third");
}

fn hit_text(r: &Rules, text: &str) -> Option<String> {
    let doc = microloop_core::doc::Doc::parse(text).unwrap();
    r.check_call(&[0], doc.with(text).root()).map(|h| h.id)
}

#[test]
fn a_repeated_member_is_judged_by_its_last_value_as_serde_json_keeps_it() {
    let r = one_rule(json!({"id": "no-prod", "field": "/db/name", "deny_values": ["prod"]}));
    assert_eq!(hit_text(&r, r#"{"db": {"name": "prod", "name": "dev"}}"#), None);
    assert_eq!(hit_text(&r, r#"{"db": {"name": "dev", "name": "prod"}}"#).as_deref(), Some("no-prod"));
    assert_eq!(hit_text(&r, r#"{"db": {"name": "prod"}, "db": {}}"#), None);
}

#[test]
fn many_fields_under_one_object() {
    // More fields under one object than are looked up in a single pass: each is looked up alone.
    let rules: Vec<Value> = (0..20).map(|i| json!({"id": format!("r{i}"), "field": format!("/o/f{i}"), "deny_values": [i]})).collect();
    let r = Rules::new(&Policy::from_value(json!({"tools": [{"name": "t", "rules": rules}]})).unwrap()).unwrap();
    let mut args = serde_json::Map::new();
    for i in 0..20 {
        args.insert(format!("f{i}"), json!(i + 100));
    }
    assert_eq!(hit(&r, json!({"o": args.clone()})), None);
    args.insert("f17".into(), json!(17));
    assert_eq!(hit(&r, json!({"o": args})).unwrap().0, "r17");
}

/// JSON values that are easy to confuse when compared by kind and by value.
const TRICKY: &[&str] = &[
    "1", "1.0", "1e0", "\"1\"", "-1", "-1.0", "0", "-0", "0.0", "-0.0", "63", "63.0", "64", "64.5", "-64",
    "9223372036854775807", "9223372036854775808", "18446744073709551615", "1.8446744073709552e19",
    "-9223372036854775808", "-9223372036854775809", "9007199254740993", "9007199254740992", "9007199254740992.0",
    "\"\"", "\"a\"", "\"b\"", "\"ab\"", "\"ba\"", "\"é\"", "\"e\\u0301\"", "\"\\u00e9\"", "\"abcdefg\"", "\"abcdefh\"",
    "\"abcdefgh\"", "\"bbcdefgh\"", "\"abcdefghi\"", "\"abcdefghijklmnop\"", "\"abcdefghijklmnoq\"",
    "\"abcdefghijklmnopq\"", "\"abcdefgh-middle-ijklmnop\"", "\"abcdefgh_middle-ijklmnop\"", "true", "false", "null",
    "[]", "[1]", "[1.0]", "[\"1\"]", "{}", "{\"a\": 1}", "{\"a\": 1.0}",
];

#[test]
fn value_lists_compare_as_json_equality() {
    let values: Vec<Value> = TRICKY.iter().map(|t| serde_json::from_str(t).unwrap()).collect();
    let mut lists: Vec<Vec<Value>> = values.iter().map(|v| vec![v.clone()]).collect();
    lists.push(values.clone());
    lists.push(values.iter().step_by(3).cloned().collect());
    lists.push(values.iter().skip(1).step_by(2).cloned().collect());
    for list in &lists {
        let compiled = Values::new(list);
        for text in TRICKY {
            let doc = microloop_core::doc::Doc::parse(text).unwrap();
            let node = doc.with(text).root();
            let expected = list.iter().any(|x| node.same(x));
            assert_eq!(compiled.contain(Arg::of(node)), expected, "{text} in {list:?}");
        }
    }
}

#[test]
fn probes_tell_strings_apart_as_their_bytes_do() {
    let mut texts: Vec<String> = vec!["".into(), "é".into(), "e\u{301}".into(), "\u{1F600}".into(), "ab\u{0}".into(), "ab".into()];
    for n in 1..=40 {
        let base: String = (0..n).map(|i| (b'a' + (i % 26) as u8) as char).collect();
        texts.push(base.clone());
        // The same length, one byte different: first, in the middle, last.
        for at in [0, n / 2, n - 1] {
            let mut b = base.clone().into_bytes();
            b[at] = b'Z';
            texts.push(String::from_utf8(b).unwrap());
        }
    }
    for a in &texts {
        for b in &texts {
            let (pa, pb) = (Probe::of(a.as_bytes()), Probe::of(b.as_bytes()));
            assert_eq!(pa.same(a.as_bytes(), pb, b.as_bytes()), a == b, "{a:?} {b:?}");
        }
    }
}

#[test]
fn several_broken_rules_on_different_fields_name_the_first_in_the_policy() {
    // Each field's tests run together, level by level; whatever breaks, the verdict names the
    // rule that comes first in the policy, and a repeated member is judged by its last value.
    let r = rules(json!({"tools": [{"name": "t", "rules": [
        {"id": "a", "field": "/z/list", "allow_values": [1]},
        {"id": "b", "field": "/missing", "equals": "x"},
        {"id": "c", "field": "/y", "deny_values": ["bad"]},
        {"id": "d", "field": "/z/deep/er", "require_regex": "^ok$"},
        {"id": "e", "field": "/z/list", "deny_values": [1]}]}]}));
    let (id, msg) = hit(&r, json!({"y": "bad", "z": {"list": [1, 2], "deep": {}}})).unwrap();
    assert_eq!(id, "a");
    assert!(msg.contains("`/z/list/1`"), "{msg}");
    let (id, msg) = hit(&r, json!({"y": "bad", "z": {"list": [1], "deep": {}}})).unwrap();
    assert_eq!(id, "b");
    assert!(msg.contains("is missing, and it must be \"x\""), "{msg}");
    assert_eq!(hit(&r, json!({"missing": "x", "y": "bad", "z": {"list": [1], "deep": {}}})).unwrap().0, "c");
    let (id, msg) = hit(&r, json!({"missing": "x", "y": "ok", "z": {"list": [1], "deep": {}}})).unwrap();
    assert_eq!(id, "d");
    assert!(msg.contains("`/z/deep/er` is missing"), "{msg}");
    assert_eq!(hit(&r, json!({"missing": "x", "y": "ok", "z": {"list": [1], "deep": {"er": "ok"}}})).unwrap().0, "e");
    let ok = r#"{"missing": "x", "z": {"list": [], "deep": {"er": "ok"}}, "#;
    assert_eq!(hit_text(&r, &format!(r#"{ok}"y": "bad", "y": "ok"}}"#)), None);
    assert_eq!(hit_text(&r, &format!(r#"{ok}"y": "ok", "y": "bad"}}"#)).as_deref(), Some("c"));
    assert_eq!(hit_text(&r, r#"{"missing": "x", "y": "ok", "z": {"list": [], "deep": {"er": "no"}, "deep": {"er": "ok"}}}"#), None);
}

#[test]
fn member_names_alike_in_length_and_ends_are_told_apart() {
    // Names a level's table cannot tell apart (same length, first and last bytes) and names
    // that are not fields but land on a field's slot.
    let rules: Vec<Value> = ["ab", "axb", "ayb", "a", "", "abcdefghijklmnopqrstuvwxyz", "abcdefghijklmnopqrstuvwxyZ"]
        .iter()
        .map(|k| json!({"id": format!("r-{k}"), "field": format!("/{k}"), "deny_values": [k]}))
        .collect();
    let r = Rules::new(&Policy::from_value(json!({"tools": [{"name": "t", "rules": rules}]})).unwrap()).unwrap();
    for k in ["ab", "axb", "ayb", "a", "", "abcdefghijklmnopqrstuvwxyz", "abcdefghijklmnopqrstuvwxyZ"] {
        assert_eq!(hit(&r, json!({ k: k })).unwrap().0, format!("r-{k}"));
        assert_eq!(hit(&r, json!({ k: "other" })), None);
    }
    for other in ["azb", "b", "ba", "abcdefghijklmnopqrstuvwxyY", "abcdefghijklmnopqrstuvwxyzz"] {
        assert_eq!(hit(&r, json!({ other: other, "x": 1 })), None, "{other}");
    }
}
