//! `ml_session_replay` through the C ABI: a conversation replayed into a session, its report, and
//! the errors that leave the session unchanged. (Its verdicts on recorded conversations are checked
//! against the proxy's by the shared vectors in tests/vectors/replay.)

use std::ptr;

use microloop::*;
use serde_json::{json, Value};

fn session(policy: &str) -> *mut ml_session {
    let mut s = ptr::null_mut();
    assert_eq!(unsafe { ml_session_new(policy.as_ptr(), policy.len(), &mut s, ptr::null_mut()) }, ML_OK);
    s
}

/// Replays `conversation` in `dialect`: the report, or the status.
fn replay(s: *mut ml_session, dialect: &str, conversation: &[u8]) -> Result<Value, ml_status> {
    let (mut out, mut len) = (ptr::null_mut(), 0usize);
    let status = unsafe {
        ml_session_replay(s, dialect.as_ptr(), dialect.len(), conversation.as_ptr(), conversation.len(), &mut out, &mut len, ptr::null_mut())
    };
    if status != ML_OK {
        assert!(out.is_null(), "nothing is handed out on an error");
        return Err(status);
    }
    let report = serde_json::from_slice(unsafe { std::slice::from_raw_parts(out, len) }).unwrap();
    unsafe { ml_bytes_free(out, len) };
    Ok(report)
}

fn stats(s: *mut ml_session) -> ml_stats {
    let mut st: ml_stats = unsafe { std::mem::zeroed() };
    st.size = std::mem::size_of::<ml_stats>();
    assert_eq!(unsafe { ml_session_stats(s, &mut st, ptr::null_mut()) }, ML_OK);
    st
}

fn turn(id: &str) -> [Value; 2] {
    [
        json!({"role": "assistant", "tool_calls": [{"id": id, "type": "function", "function": {"name": "get", "arguments": "{\"q\":1}"}}]}),
        json!({"role": "tool", "tool_call_id": id, "content": "the same"}),
    ]
}

#[test]
fn a_conversation_is_replayed_into_the_session_and_reported() {
    let s = session("balanced");
    let messages: Vec<Value> = ["1", "2", "3"].iter().flat_map(|id| turn(id)).collect();
    let report = replay(s, "openai", json!({"messages": messages}).to_string().as_bytes()).unwrap();
    let actions: Vec<&str> = report["calls"].as_array().unwrap().iter().map(|c| c["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["allow", "warn", "block"]);
    assert_eq!(report["calls"][2]["rule"], "loop.no_progress");
    assert_eq!(report["calls"][2]["result"]["text"], "the same", "a blocked call's recorded answer is reported, not recorded");
    assert_eq!((report["results"].as_u64(), report["orphan_results"].as_u64()), (Some(2), Some(1)));
    // The session goes on from the replayed history: the same call is blocked now.
    let st = stats(s);
    assert_eq!(st.calls, 2);
    let mut v: ml_verdict = unsafe { std::mem::zeroed() };
    v.size = std::mem::size_of::<ml_verdict>();
    assert_eq!(unsafe { ml_check_call(s, b"get".as_ptr(), 3, b"{\"q\":1}".as_ptr(), 7, &mut v, ptr::null_mut()) }, ML_OK);
    assert_eq!(v.action, ML_ACTION_BLOCK);
    unsafe { ml_verdict_clear(&mut v) };
    unsafe { ml_session_free(s) };
}

#[test]
fn bad_input_is_an_error_and_changes_nothing() {
    let s = session("balanced");
    let one: Vec<Value> = turn("1").into();
    let text = Value::Array(one).to_string();
    assert_eq!(replay(s, "cohere", text.as_bytes()).unwrap_err(), ML_ERR_INVALID_ARG);
    assert_eq!(replay(s, "openai", b"{not json").unwrap_err(), ML_ERR_INVALID_JSON);
    assert_eq!(replay(s, "anthropic", b"\xff").unwrap_err(), ML_ERR_INVALID_UTF8);
    assert_eq!(stats(s).calls, 0);
    let mut out = ptr::null_mut();
    let status = unsafe { ml_session_replay(s, b"openai".as_ptr(), 6, text.as_ptr(), text.len(), &mut out, ptr::null_mut(), ptr::null_mut()) };
    assert_eq!(status, ML_ERR_NULL_ARG);
    let status = unsafe { ml_session_replay(ptr::null_mut(), b"openai".as_ptr(), 6, text.as_ptr(), text.len(), &mut out, ptr::null_mut(), ptr::null_mut()) };
    assert_eq!(status, ML_ERR_NULL_ARG);
    // Arguments that are not JSON are reported, and the replay goes on.
    let bad = json!([{"role": "assistant", "tool_calls": [{"id": "x", "function": {"name": "get", "arguments": "{oops"}}]}, turn("2")[0], turn("2")[1]]);
    let report = replay(s, "openai", bad.to_string().as_bytes()).unwrap();
    assert_eq!(report["calls"][0]["action"], "error");
    assert_eq!(report["calls"][0]["rule"], "InvalidJSON");
    assert_eq!(report["calls"][1]["action"], "allow");
    unsafe { ml_session_free(s) };
}
