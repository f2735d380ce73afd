//! Property tests of the invariants every caller relies on.

use std::sync::Arc;

use microloop_core::canon::{bytes_fingerprint, hash_json, hash_value, result_fingerprint};
use microloop_core::{Engine, Policy, Session};
use proptest::prelude::*;
use serde_json::{Map, Value};

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        (-1e9f64..1e9).prop_map(Value::from),
        "[a-z0-9 _/.-]{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,6}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<String, Value>>())),
        ]
    })
}

/// Serializes `v` with object keys in an order derived from `seed`, and optional white space.
fn shuffled_json(v: &Value, seed: u64, spaced: bool) -> String {
    let sep = if spaced { " " } else { "" };
    match v {
        Value::Object(map) => {
            let mut members: Vec<(&String, &Value)> = map.iter().collect();
            if !members.is_empty() {
                let k = (seed as usize) % members.len();
                members.rotate_left(k);
                if seed & 1 == 1 {
                    members.reverse();
                }
            }
            let inner: Vec<String> = members
                .iter()
                .map(|(k, v)| format!("{}:{sep}{}", Value::String((*k).clone()), shuffled_json(v, seed.rotate_left(7), spaced)))
                .collect();
            format!("{{{sep}{}{sep}}}", inner.join(&format!(",{sep}")))
        }
        Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(|x| shuffled_json(x, seed.rotate_left(3), spaced)).collect();
            format!("[{}]", inner.join(&format!(",{sep}")))
        }
        other => other.to_string(),
    }
}

fn session(policy: &str) -> Session {
    Session::new(Arc::new(Engine::new(Policy::from_json(policy.as_bytes()).unwrap()).unwrap()))
}

/// A scripted run: (tool index, argument variant, result variant, failed).
fn script() -> impl Strategy<Value = Vec<(u8, u8, u8, bool)>> {
    prop::collection::vec((0u8..3, 0u8..3, 0u8..3, prop::bool::weighted(0.2)), 1..60)
}

const TOOLS: [&str; 3] = ["get_page", "bash", "submit_form"];
const RESULTS: [&str; 3] = ["same answer", "Error: 503 Service Unavailable", "{\"ok\": true}"];

fn run(policy: &str, steps: &[(u8, u8, u8, bool)]) -> Vec<String> {
    let mut s = session(policy);
    steps
        .iter()
        .map(|&(t, a, r, failed)| {
            let args = format!(r#"{{"command":"cat f{a}","n":{a}}}"#);
            let v = s.check(TOOLS[t as usize], args.as_bytes(), 0).unwrap();
            if v.action.runs() {
                s.record(v.call_id, RESULTS[r as usize].as_bytes(), failed).unwrap();
            }
            format!("{:?} {} {}", v.action, v.rule, v.count)
        })
        .collect()
}

proptest! {
    // Under Miri (`make miri`) a generated case takes seconds to minutes: a few cases only.
    #![proptest_config(if cfg!(miri) { ProptestConfig::with_cases(4) } else { ProptestConfig::default() })]

    #[test]
    fn key_order_and_white_space_never_change_a_fingerprint(v in json_value(), seed in any::<u64>(), spaced in any::<bool>()) {
        let canonical = hash_json(v.to_string().as_bytes(), &[]).unwrap();
        let shuffled = hash_json(shuffled_json(&v, seed, spaced).as_bytes(), &[]).unwrap();
        prop_assert_eq!(canonical.fingerprint, shuffled.fingerprint);
        prop_assert_eq!(canonical.fingerprint, hash_value(&v, &[]).fingerprint);
    }

    /// An answer's fingerprint is its JSON fingerprint when it is JSON, its bytes' otherwise,
    /// however it is told apart (JSON followed by a summary line included).
    #[test]
    fn an_answer_is_hashed_as_json_exactly_when_it_is_json(v in json_value(), tail in prop::sample::select(vec!["", " ", "\n", " 3 results in 120ms", "]", "x", ",", " {}", "\u{1}"]), cut in any::<prop::sample::Index>()) {
        let mut text = format!("{v}{tail}").into_bytes();
        if tail == "," {
            text.truncate(cut.index(text.len() + 1));
        }
        let expected = hash_json(&text, &[]).map_or_else(|_| bytes_fingerprint(&text), |h| h.fingerprint);
        prop_assert_eq!(result_fingerprint(&text, &[]), expected);
    }

    #[test]
    fn a_blocked_call_never_changes_the_history(steps in script()) {
        let mut s = session(r#"{"preset":"strict"}"#);
        for (t, a, r, failed) in steps {
            let before = s.stats();
            let args = format!(r#"{{"n":{a}}}"#);
            let v = s.check(TOOLS[t as usize], args.as_bytes(), 0).unwrap();
            if v.action.runs() {
                s.record(v.call_id, RESULTS[r as usize].as_bytes(), failed).unwrap();
            } else {
                let after = s.stats();
                prop_assert_eq!(v.call_id, 0);
                prop_assert_eq!((before.history_len, before.history_hash), (after.history_len, after.history_hash));
            }
        }
    }

    #[test]
    fn the_same_inputs_always_give_the_same_verdicts(steps in script(), preset in prop::sample::select(vec!["strict", "balanced", "permissive"])) {
        prop_assert_eq!(run(preset, &steps), run(preset, &steps));
    }

    #[test]
    fn invalid_json_never_panics_and_leaves_the_history(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let mut s = session("balanced");
        let v = s.check("t", b"{}", 0).unwrap();
        s.record(v.call_id, b"x", false).unwrap();
        let before = s.stats();
        if s.check("t", &bytes, 0).is_err() {
            prop_assert_eq!(before, s.stats());
        }
    }
}
