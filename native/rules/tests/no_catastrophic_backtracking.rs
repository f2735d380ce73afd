//! A classic catastrophic-backtracking pattern, `(a+)+$`, on a 50 KB argument gets its verdict.
//!
//! A backtracking engine needs about 2^50000 steps to reject `aaaa…a!`; the `regex` crate (field
//! rules) and jsonschema's `regex` pattern engine (schemas) match in linear time. The timeout is
//! generous on purpose: the test is about hanging, not speed (speed is measured by the benchmark).

use std::sync::{mpsc, Arc};
use std::thread;
use std::time::Duration;

use microloop_core::{Action, Session};

fn verdict_within(policy: &str, args: Vec<u8>, limit: Duration) -> (Action, String) {
    let engine = Arc::new(microloop_rules::compile(microloop_rules::load_toml(policy).unwrap()).unwrap());
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut session = Session::new(engine);
        let v = session.check("scan", &args, 0).unwrap();
        let _ = tx.send((v.action, v.rule.into_owned()));
    });
    rx.recv_timeout(limit).expect("no verdict in time: the pattern backtracks")
}

fn fifty_kb_of_a_then_bang() -> Vec<u8> {
    let mut text = "a".repeat(50 * 1024);
    text.push('!');
    serde_json::to_vec(&serde_json::json!({ "text": text })).unwrap()
}

#[test]
fn field_rule_regexes_cannot_hang() {
    let deny = r#"
        [[tools]]
        name = "scan"
        rules = [ { id = "deny-a", field = "/text", deny_regex = '(a+)+$' } ]
    "#;
    // No match: a backtracking engine would try every way to split the run of `a`s.
    let (action, rule) = verdict_within(deny, fifty_kb_of_a_then_bang(), Duration::from_secs(60));
    assert_eq!((action, rule.as_str()), (Action::Allow, ""));
    let only_a = serde_json::to_vec(&serde_json::json!({ "text": "a".repeat(50 * 1024) })).unwrap();
    let (action, rule) = verdict_within(deny, only_a, Duration::from_secs(60));
    assert_eq!((action, rule.as_str()), (Action::Block, "deny-a"));

    let require = r#"
        [[tools]]
        name = "scan"
        rules = [ { id = "require-a", field = "/text", require_regex = '^(a+)+$' } ]
    "#;
    let (action, rule) = verdict_within(require, fifty_kb_of_a_then_bang(), Duration::from_secs(60));
    assert_eq!((action, rule.as_str()), (Action::Block, "require-a"));
}

#[test]
fn schema_patterns_cannot_hang() {
    let policy = r#"
        [[tools]]
        name = "scan"
        schema = { type = "object", properties = { text = { type = "string", pattern = '^(a+)+$' } } }
    "#;
    let (action, rule) = verdict_within(policy, fifty_kb_of_a_then_bang(), Duration::from_secs(60));
    assert_eq!((action, rule.as_str()), (Action::Block, "schema"));
}
