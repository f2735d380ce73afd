//! Runs every shared test vector (`tests/vectors/*.json`) through the C ABI, then again with the
//! session saved and loaded (`ml_session_save` / `ml_session_load`) before every step: a loaded
//! session must give exactly the verdicts of the uninterrupted one.
//!
//! The Python, C, Go and Node bindings run the same files; all must agree. The format is described
//! in `tests/vectors/README.md`. Besides each step's expectation, the runner checks two invariants:
//! a call that errors, and a call that is blocked or halted, leave the history unchanged.

use std::ffi::CStr;
use std::path::{Path, PathBuf};
use std::ptr;

use microloop::*;
use serde_json::Value;

struct Session(*mut ml_session);

impl Drop for Session {
    fn drop(&mut self) {
        unsafe { ml_session_free(self.0) };
    }
}

fn status_name(s: ml_status) -> &'static str {
    match s {
        ML_OK => "ok",
        ML_ERR_NULL_ARG => "null_arg",
        ML_ERR_INVALID_UTF8 => "invalid_utf8",
        ML_ERR_INVALID_JSON => "invalid_json",
        ML_ERR_INVALID_POLICY => "invalid_policy",
        ML_ERR_UNKNOWN_CALL => "unknown_call",
        ML_ERR_ALREADY_RECORDED => "already_recorded",
        ML_ERR_INVALID_ARG => "invalid_argument",
        ML_ERR_INVALID_SNAPSHOT => "invalid_snapshot",
        ML_ERR_SNAPSHOT_VERSION => "snapshot_version",
        ML_ERR_POLICY_MISMATCH => "policy_mismatch",
        ML_ERR_PANIC => "panic",
        _ => "unknown",
    }
}

fn action_name(a: i32) -> &'static str {
    ["allow", "warn", "block", "halt"][a as usize]
}

/// Takes an error's message and frees it.
fn take_error(err: *mut ml_error) -> (String, String) {
    let mut len = 0;
    let msg = unsafe { CStr::from_ptr(ml_error_message(err, &mut len)) }.to_string_lossy().into_owned();
    assert_eq!(len, msg.len());
    let path = unsafe { CStr::from_ptr(ml_error_path(err, ptr::null_mut())) }.to_string_lossy().into_owned();
    unsafe { ml_error_free(err) };
    (msg, path)
}

fn all_stats(s: &Session) -> ml_stats {
    let mut st = ml_stats {
        size: std::mem::size_of::<ml_stats>(),
        calls: 0,
        blocked: 0,
        errors: 0,
        history_len: 0,
        history_hash: 0,
        results: 0,
        late: 0,
        observed: 0,
    };
    assert_eq!(unsafe { ml_session_stats(s.0, &mut st, ptr::null_mut()) }, ML_OK);
    st
}

fn stats(s: &Session) -> (u64, u64) {
    let st = all_stats(s);
    (st.history_len, st.history_hash)
}

/// The counters a `expect_stats` step may name.
fn stat_named(st: &ml_stats, name: &str) -> Option<u64> {
    Some(match name {
        "calls" => st.calls,
        "blocked" => st.blocked,
        "errors" => st.errors,
        "history_len" => st.history_len,
        "results" => st.results,
        "late" => st.late,
        _ => return None,
    })
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

/// The argument bytes a step describes.
fn args_of(step: &Value) -> Vec<u8> {
    if let Some(t) = step.get("args_text").and_then(Value::as_str) {
        t.as_bytes().to_vec()
    } else if let Some(h) = step.get("args_hex").and_then(Value::as_str) {
        hex(h)
    } else if let Some(n) = step.get("args_nested").and_then(Value::as_u64) {
        let n = n as usize;
        let mut v = vec![b'['; n];
        v.extend(std::iter::repeat(b']').take(n));
        v
    } else if let Some(n) = step.get("args_big").and_then(Value::as_u64) {
        let mut v = br#"{"data":""#.to_vec();
        v.resize(n as usize - 2, b'x');
        v.extend_from_slice(br#""}"#);
        v
    } else {
        serde_json::to_vec(step.get("args").unwrap_or(&Value::Object(Default::default()))).unwrap()
    }
}

fn result_of(step: &Value) -> Option<Vec<u8>> {
    match step.get("result")? {
        Value::String(s) => Some(s.as_bytes().to_vec()),
        other => Some(serde_json::to_vec(other).unwrap()),
    }
}

/// Saves the session, loads the bytes under an engine of the same policy and puts the loaded session
/// in its place; the counters and the history must come through unchanged.
fn save_and_load(session: &mut Session, policy: &str) -> Result<(), String> {
    let before = all_stats(session);
    let (mut bytes, mut len) = (ptr::null_mut(), 0usize);
    let status = unsafe { ml_session_save(session.0, &mut bytes, &mut len, ptr::null_mut()) };
    if status != ML_OK || bytes.is_null() || len == 0 {
        return Err(format!("ml_session_save gave {}", status_name(status)));
    }
    let mut engine = ptr::null_mut();
    assert_eq!(unsafe { ml_engine_new(policy.as_ptr(), policy.len(), &mut engine, ptr::null_mut()) }, ML_OK);
    let mut raw = ptr::null_mut();
    let mut err = ptr::null_mut();
    let status = unsafe { ml_session_load(engine, bytes, len, 0, &mut raw, &mut err) };
    unsafe { ml_engine_free(engine) };
    unsafe { ml_bytes_free(bytes, len) };
    if status != ML_OK {
        return Err(format!("ml_session_load gave {}: {:?}", status_name(status), take_error(err)));
    }
    *session = Session(raw);
    let after = all_stats(session);
    let key = |s: &ml_stats| (s.calls, s.blocked, s.errors, s.history_len, s.history_hash, s.results, s.late);
    if key(&before) != key(&after) {
        return Err(format!("the loaded session's counters differ: {:?} then {:?}", key(&before), key(&after)));
    }
    Ok(())
}

fn run_vector(path: &Path, reload_every_step: bool) -> Result<(), String> {
    let doc: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).map_err(|e| e.to_string())?;
    let policy = match &doc["policy"] {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let mut raw = ptr::null_mut();
    let mut err = ptr::null_mut();
    let status = unsafe { ml_session_new(policy.as_ptr(), policy.len(), &mut raw, &mut err) };
    if let Some(expected) = doc.get("policy_error") {
        if status != ML_ERR_INVALID_POLICY {
            return Err(format!("policy was accepted (status {status}), expected {expected}"));
        }
        let (msg, path) = take_error(err);
        if expected["path"] != path.as_str() || expected["message"] != msg.as_str() {
            return Err(format!("policy error was path={path:?} message={msg:?}, expected {expected}"));
        }
        return Ok(());
    }
    if status != ML_OK {
        return Err(format!("policy refused: {:?}", take_error(err)));
    }
    let mut session = Session(raw);
    let mut last_call_id = 0u64;

    for (i, step) in doc["steps"].as_array().unwrap().iter().enumerate() {
        let fail = |what: String| Err(format!("step {i} ({step}): {what}"));
        if reload_every_step || step.get("save_and_load").is_some() {
            save_and_load(&mut session, &policy).map_err(|e| format!("step {i}: {e}"))?;
            if step.get("save_and_load").is_some() {
                continue;
            }
        }
        let before = stats(&session);
        if let Some(tools) = step.get("tools") {
            let text = tools.to_string();
            assert_eq!(unsafe { ml_session_set_tools(session.0, text.as_ptr(), text.len(), ptr::null_mut()) }, ML_OK);
            continue;
        }
        if step.get("reset").is_some() {
            assert_eq!(unsafe { ml_session_reset(session.0, ptr::null_mut()) }, ML_OK);
            continue;
        }
        if let Some(expected) = step.get("expect_stats").and_then(Value::as_object) {
            let st = all_stats(&session);
            for (name, want) in expected {
                let got = stat_named(&st, name).ok_or_else(|| format!("step {i}: no counter named {name}"))?;
                if Some(got) != want.as_u64() {
                    return fail(format!("stats.{name} is {got}"));
                }
            }
            continue;
        }
        if step.get("record_id").is_some() || step.get("record_last").is_some() {
            let id = step.get("record_id").and_then(Value::as_u64).unwrap_or(last_call_id);
            let out = result_of(step).unwrap_or_default();
            let is_error = step.get("error").and_then(Value::as_bool).unwrap_or(false);
            let mut err = ptr::null_mut();
            let status = unsafe { ml_record_result(session.0, id, out.as_ptr(), out.len(), is_error, &mut err) };
            let expected = step.get("expect_error").and_then(Value::as_str).unwrap_or("ok");
            if status_name(status) != expected {
                return fail(format!("record gave {}", status_name(status)));
            }
            if status != ML_OK {
                take_error(err);
                if stats(&session) != before {
                    return fail("a failed record changed the history".into());
                }
            }
            continue;
        }

        let tool = match step.get("tool_hex").and_then(Value::as_str) {
            Some(h) => hex(h),
            None => step["call"].as_str().unwrap().as_bytes().to_vec(),
        };
        let args = args_of(step);
        let mut v = ml_verdict {
            size: std::mem::size_of::<ml_verdict>(),
            action: -1,
            count: 0,
            call_id: 0,
            rule: ptr::null_mut(),
            rule_len: 0,
            message: ptr::null_mut(),
            message_len: 0,
            approval: ptr::null_mut(),
            approval_len: 0,
            approval_error: ptr::null_mut(),
            approval_error_len: 0,
            observed: -1,
        };
        let mut err = ptr::null_mut();
        let status = unsafe { ml_check_call(session.0, tool.as_ptr(), tool.len(), args.as_ptr(), args.len(), &mut v, &mut err) };
        if let Some(expected) = step.get("expect_error") {
            if status_name(status) != expected {
                return fail(format!("status {}", status_name(status)));
            }
            let (msg, _) = take_error(err);
            if msg.is_empty() {
                return fail("an error without a message".into());
            }
            if stats(&session) != before {
                return fail("an erroring call changed the history".into());
            }
            continue;
        }
        if status != ML_OK {
            return fail(format!("status {} ({:?})", status_name(status), take_error(err)));
        }
        let action = action_name(v.action);
        let rule = if v.rule.is_null() { String::new() } else { unsafe { CStr::from_ptr(v.rule) }.to_string_lossy().into_owned() };
        let message = if v.message.is_null() { String::new() } else { unsafe { CStr::from_ptr(v.message) }.to_string_lossy().into_owned() };
        assert_eq!(rule.len(), v.rule_len);
        assert_eq!(message.len(), v.message_len);
        let (count, call_id) = (v.count, v.call_id);
        unsafe { ml_verdict_clear(&mut v) };

        let got = format!("{action} {rule} count={count}: {message}");
        if step["expect"] != action {
            return fail(format!("got {got}"));
        }
        match step.get("rule").and_then(Value::as_str) {
            Some(r) if r != rule => return fail(format!("got {got}")),
            None if action == "allow" && !rule.is_empty() => return fail(format!("got {got}")),
            _ => {}
        }
        if let Some(c) = step.get("count").and_then(Value::as_u64) {
            if c != count as u64 {
                return fail(format!("got {got}"));
            }
        }
        for needle in step.get("message_contains").and_then(Value::as_array).into_iter().flatten() {
            if !message.contains(needle.as_str().unwrap()) {
                return fail(format!("message lacks {needle}: {got}"));
            }
        }
        if action != "allow" && message.is_empty() {
            return fail("a non-allow verdict without a message".into());
        }
        if matches!(action, "block" | "halt") {
            if call_id != 0 || stats(&session) != before {
                return fail("a blocked call entered the history".into());
            }
            continue;
        }
        last_call_id = call_id;
        if let Some(out) = result_of(step) {
            let is_error = step.get("error").and_then(Value::as_bool).unwrap_or(false);
            let status = unsafe { ml_record_result(session.0, call_id, out.as_ptr(), out.len(), is_error, ptr::null_mut()) };
            if status != ML_OK {
                return fail(format!("record failed: {}", status_name(status)));
            }
        }
    }
    Ok(())
}

fn vector_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_shared_vector_passes() {
    let files = vector_files();
    assert!(files.len() >= 40, "only {} vectors", files.len());
    let failures: Vec<String> = files
        .iter()
        .filter_map(|f| run_vector(f, false).err().map(|e| format!("{}: {e}", f.file_name().unwrap().to_string_lossy())))
        .collect();
    assert!(failures.is_empty(), "{} of {} vectors failed:\n{}", failures.len(), files.len(), failures.join("\n"));
}

#[test]
fn every_shared_vector_passes_with_the_session_saved_and_loaded_before_each_step() {
    let files = vector_files();
    let failures: Vec<String> = files
        .iter()
        .filter_map(|f| run_vector(f, true).err().map(|e| format!("{}: {e}", f.file_name().unwrap().to_string_lossy())))
        .collect();
    assert!(failures.is_empty(), "{} of {} vectors failed:\n{}", failures.len(), files.len(), failures.join("\n"));
}
