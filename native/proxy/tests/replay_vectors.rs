//! The shared replay vectors (`tests/vectors/replay/*.json`): recorded OpenAI and Anthropic
//! conversations with the verdict on every call, as the proxy gives it.
//!
//! The proxy's own path: for each assistant turn, the request it would have received (the
//! conversation up to that turn) is replayed by the dialect ([`trajectory::replay`]) and the turn's
//! calls, read from the answer by the dialect, are judged ([`trajectory::judge`]). The same files are
//! replayed by `microloop replay` (`tests/python/test_replay_vectors.py`) through `ml_session_replay`:
//! both must give these verdicts. `MICROLOOP_BLESS=1` writes the proxy's verdicts into the files.

use std::path::PathBuf;
use std::sync::Arc;

use microloop_core::{Engine, Policy};
use microloop_proxy::dialect::anthropic::Anthropic;
use microloop_proxy::dialect::openai::OpenAiChat;
use microloop_proxy::dialect::Dialect;
use microloop_proxy::trajectory::{judge, replay};
use serde_json::{json, Value};

fn vectors() -> Vec<(PathBuf, Value)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors/replay");
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|x| x == "json")).collect();
    files.sort();
    assert!(files.len() >= 4, "the replay vectors are missing from {}", dir.display());
    files.into_iter().map(|p| (p.clone(), serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap())).collect()
}

/// The answer that carried assistant message `m`, as the upstream would have sent it.
fn answer(dialect: &str, m: &Value) -> Value {
    match dialect {
        "openai" => json!({"choices": [{"index": 0, "message": m, "finish_reason": "tool_calls"}]}),
        _ => json!({"type": "message", "role": "assistant", "content": m["content"], "stop_reason": "tool_use"}),
    }
}

/// The proxy's verdict on every call of the conversation, in order.
fn proxy_verdicts(v: &Value) -> Vec<Value> {
    let dialect_name = v["dialect"].as_str().unwrap();
    let d: &dyn Dialect = match dialect_name {
        "openai" => &OpenAiChat,
        "anthropic" => &Anthropic,
        other => panic!("unknown dialect {other}"),
    };
    let policy = match &v["policy"] {
        Value::String(s) => Policy::from_json(s.as_bytes()),
        other => Policy::from_value(other.clone()),
    }
    .unwrap();
    let engine = Arc::new(Engine::new(policy).unwrap());
    let conversation = &v["conversation"];
    let messages = conversation["messages"].as_array().unwrap();
    let mut out = Vec::new();
    for (k, m) in messages.iter().enumerate() {
        if m["role"] != "assistant" {
            continue;
        }
        let mut req = conversation.clone();
        req["messages"] = Value::Array(messages[..k].to_vec());
        let mut r = replay(d, &req, &engine);
        let calls = d.calls(&answer(dialect_name, m)).into_iter().next().unwrap_or_default();
        let j = judge(&mut r.session, &calls);
        for (c, verdict) in calls.iter().zip(j.verdicts) {
            let v = verdict.expect("the vectors' arguments are JSON");
            out.push(json!({"id": c.id, "tool": c.name, "action": v.action.as_str(), "rule": v.rule, "count": v.count}));
        }
    }
    out
}

#[test]
fn the_proxy_gives_the_recorded_verdicts() {
    let bless = std::env::var_os("MICROLOOP_BLESS").is_some_and(|v| v == "1");
    for (path, mut v) in vectors() {
        let got = proxy_verdicts(&v);
        if bless {
            v["expected"] = Value::Array(got);
            std::fs::write(&path, serde_json::to_string_pretty(&v).unwrap() + "\n").unwrap();
            continue;
        }
        let want = v["expected"].as_array().unwrap();
        assert_eq!(&got, want, "{}", path.display());
    }
}

#[test]
fn the_vectors_block_something_in_both_dialects() {
    // A vector set that allows everything would agree with anything.
    for dialect in ["openai", "anthropic"] {
        let stopped = vectors()
            .iter()
            .filter(|(_, v)| v["dialect"] == dialect)
            .flat_map(|(_, v)| v["expected"].as_array().unwrap().clone())
            .filter(|e| e["action"] == "block" || e["action"] == "halt")
            .count();
        assert!(stopped >= 2, "{dialect}: {stopped} blocked calls in the vectors");
    }
}
