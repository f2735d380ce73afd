//! Sequences of C ABI calls on one session: `ml_check_call` and `ml_record_result` over arbitrary
//! tools, arguments, results and error flags (NULL, non-UTF-8, huge and deeply nested inputs among
//! them), with tool lists, resets, counters, snapshots (saved, reloaded, corrupted) and
//! fingerprints in between.
//!
//! The input is read with `arbitrary::Unstructured` in a simple layout that `native/fuzz/seeds.py`
//! writes from the shared vectors (tests/vectors): a policy, then ops. Each op is a byte, and each
//! text a kind byte, a little-endian u16 length and the bytes.
//!
//! Checked on every call: the status is one the header names (never `ML_ERR_PANIC`), an error
//! comes with an `ml_error` and success without one, a verdict's strings are NUL-terminated and of
//! the length it says, a call that may run has an id and one that may not has none, an id is
//! recorded once, and the counters count what happened.
#![no_main]

use std::ffi::CStr;
use std::ptr;

use arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use microloop::*;

/// Policies chosen by the first byte; 255 reads the policy text from the input.
const POLICIES: [&str; 6] = [
    "",
    "strict",
    "balanced",
    "permissive",
    r#"{"preset": "balanced", "max_args_bytes": 4096, "deny_unknown_tools": true, "ignore_fields": ["request_id", "id"],
        "tools": [{"name": "bash", "max_identical": 2}, {"name": "edit_file", "max_near_duplicate": 5}]}"#,
    "preset = \"strict\"\nwindow = 8\n[budget]\nmax_calls = 50\nmax_errors = 5\n",
];

/// A pointer and a length as a C caller passes them: NULL (with any length), or bytes.
enum Input {
    Null(usize),
    Bytes(Vec<u8>),
}

impl Input {
    fn ptr(&self) -> (*const u8, usize) {
        match self {
            Input::Null(len) => (ptr::null(), *len),
            Input::Bytes(b) => (b.as_ptr(), b.len()),
        }
    }
}

fn u16_le(u: &mut Unstructured) -> Result<u16> {
    let b = u.bytes(2)?;
    Ok(u16::from_le_bytes([b[0], b[1]]))
}

fn input(u: &mut Unstructured) -> Result<Input> {
    let kind: u8 = u.arbitrary()?;
    Ok(match kind % 8 {
        // NULL, with length 0 (allowed: empty) or not (ML_ERR_NULL_ARG).
        5 => Input::Null(if u.arbitrary::<bool>()? { 0 } else { usize::from(u16_le(u)?) + 1 }),
        // Huge: up to 4 MiB of JSON-looking text, over every size limit.
        6 => {
            let n = usize::from(u16_le(u)?) * 64;
            let fill: u8 = u.arbitrary()?;
            let mut v = Vec::with_capacity(n + 12);
            v.extend_from_slice(b"{\"data\":\"");
            v.resize(n + 9, if fill.is_ascii_graphic() && fill != b'"' && fill != b'\\' { fill } else { b'x' });
            v.extend_from_slice(b"\"}");
            Input::Bytes(v)
        }
        // Deep: `[` or `{"a":` nested up to 65,535 times, closed or not.
        7 => {
            let depth = usize::from(u16_le(u)?);
            let (object, closed): (bool, bool) = (u.arbitrary()?, u.arbitrary()?);
            let mut v = Vec::new();
            for _ in 0..depth {
                v.extend_from_slice(if object { b"{\"a\":" } else { b"[" });
            }
            v.extend_from_slice(b"1");
            if closed {
                v.extend(std::iter::repeat_n(if object { b'}' } else { b']' }, depth));
            }
            Input::Bytes(v)
        }
        // Bytes as they come: JSON, text, invalid UTF-8, NULs.
        _ => {
            let n = usize::from(u16_le(u)?);
            Input::Bytes(u.bytes(n.min(u.len()))?.to_vec())
        }
    })
}

const STATUSES: [ml_status; 11] = [
    ML_OK,
    ML_ERR_NULL_ARG,
    ML_ERR_INVALID_UTF8,
    ML_ERR_INVALID_JSON,
    ML_ERR_INVALID_POLICY,
    ML_ERR_UNKNOWN_CALL,
    ML_ERR_ALREADY_RECORDED,
    ML_ERR_INVALID_ARG,
    ML_ERR_INVALID_SNAPSHOT,
    ML_ERR_SNAPSHOT_VERSION,
    ML_ERR_POLICY_MISMATCH,
];

/// Checks the status/error pair every C ABI function returns, frees the error; returns the status.
fn settle(what: &str, status: ml_status, err: *mut ml_error) -> ml_status {
    assert!(STATUSES.contains(&status), "{what}: status {status} is none the header names");
    if status == ML_OK {
        assert!(err.is_null(), "{what}: ML_OK with an error");
        return status;
    }
    assert!(!err.is_null(), "{what}: status {status} without an error");
    unsafe {
        assert_eq!(ml_error_code(err), status, "{what}: the error's code is not the status");
        let mut len = usize::MAX;
        let msg = ml_error_message(err, &mut len);
        assert!(!msg.is_null() && CStr::from_ptr(msg).to_bytes().len() == len, "{what}: the error's message");
        assert!(std::str::from_utf8(CStr::from_ptr(msg).to_bytes()).is_ok(), "{what}: the message is not UTF-8");
        let path = ml_error_path(err, &mut len);
        assert!(!path.is_null() && CStr::from_ptr(path).to_bytes().len() == len, "{what}: the error's path");
        ml_error_free(err);
    }
    status
}

fn c_text(p: *mut std::ffi::c_char, len: usize) -> Option<String> {
    if p.is_null() {
        assert_eq!(len, 0);
        return None;
    }
    let bytes = unsafe { CStr::from_ptr(p) }.to_bytes();
    assert_eq!(bytes.len(), len, "a verdict string's length");
    Some(String::from_utf8(bytes.to_vec()).expect("a verdict string is UTF-8"))
}

struct Run {
    engine: *mut ml_engine,
    session: *mut ml_session,
    /// Ids issued, and whether each was recorded.
    issued: Vec<(u64, bool)>,
    /// What the counters must say: calls allowed, calls blocked or halted.
    calls: u64,
    blocked: u64,
}

impl Run {
    fn stats(&self) -> ml_stats {
        let mut st = ml_stats { size: std::mem::size_of::<ml_stats>(), calls: 0, blocked: 0, errors: 0, history_len: 0, history_hash: 0, results: 0, late: 0, observed: 0 };
        let mut err = ptr::null_mut();
        let s = unsafe { ml_session_stats(self.session, &mut st, &mut err) };
        assert_eq!(settle("ml_session_stats", s, err), ML_OK);
        assert_eq!((st.calls, st.blocked), (self.calls, self.blocked), "the counters");
        assert!(st.late <= st.results && st.errors <= st.results, "results {}, late {}, errors {}", st.results, st.late, st.errors);
        st
    }

    fn check(&mut self, tool: &Input, args: &Input) {
        let (tp, tl) = tool.ptr();
        let (ap, al) = args.ptr();
        let mut v = ml_verdict { size: std::mem::size_of::<ml_verdict>(), action: -1, count: 0, call_id: 0, rule: ptr::null_mut(), rule_len: 0, message: ptr::null_mut(), message_len: 0, approval: ptr::null_mut(), approval_len: 0, approval_error: ptr::null_mut(), approval_error_len: 0, observed: 0 };
        let mut err = ptr::null_mut();
        let s = unsafe { ml_check_call(self.session, tp, tl, ap, al, &mut v, &mut err) };
        if settle("ml_check_call", s, err) != ML_OK {
            return;
        }
        let rule = c_text(v.rule, v.rule_len);
        let message = c_text(v.message, v.message_len);
        match v.action {
            ML_ACTION_ALLOW | ML_ACTION_WARN => {
                assert_ne!(v.call_id, 0, "a call that may run has an id");
                assert!(!self.issued.iter().any(|(id, _)| *id == v.call_id), "id {} issued twice", v.call_id);
                assert_eq!(v.action == ML_ACTION_WARN, rule.is_some() && message.is_some(), "a warning has a rule and a message, an allow neither");
                self.issued.push((v.call_id, false));
                self.calls += 1;
            }
            ML_ACTION_BLOCK | ML_ACTION_HALT => {
                assert_eq!(v.call_id, 0, "a blocked call has no id");
                assert!(rule.is_some() && message.is_some(), "a block has a rule and a message");
                self.blocked += 1;
            }
            a => panic!("action {a}"),
        }
        unsafe {
            ml_verdict_clear(&mut v);
            ml_verdict_clear(&mut v);
        }
        assert!(v.rule.is_null() && v.message.is_null());
    }

    fn record(&mut self, which: u8, raw: u64, output: &Input, is_error: bool) {
        // Mostly an id issued (the latest first), sometimes any number.
        let (id, known) = match which {
            255 => (raw, self.issued.iter().position(|(i, _)| *i == raw)),
            w if !self.issued.is_empty() => {
                let i = self.issued.len() - 1 - usize::from(w) % self.issued.len();
                (self.issued[i].0, Some(i))
            }
            _ => (raw, None),
        };
        let (op, ol) = output.ptr();
        let mut err = ptr::null_mut();
        let s = settle("ml_record_result", unsafe { ml_record_result(self.session, id, op, ol, is_error, &mut err) }, err);
        if matches!(output, Input::Null(n) if *n > 0) {
            assert_eq!(s, ML_ERR_NULL_ARG);
            return;
        }
        match known {
            // A second result is refused, or taken as late once the call has left the window
            // (Session::record: it may go unnoticed then).
            Some(i) if self.issued[i].1 => assert!(s == ML_ERR_ALREADY_RECORDED || s == ML_OK, "id {id} recorded twice: {s}"),
            Some(i) => {
                assert_eq!(s, ML_OK, "the first result of id {id}");
                self.issued[i].1 = true;
            }
            None => assert_eq!(s, ML_ERR_UNKNOWN_CALL, "a result for id {id}, never issued"),
        }
    }

    fn save(&self) -> Vec<u8> {
        let (mut bytes, mut len, mut err) = (ptr::null_mut(), 0usize, ptr::null_mut());
        let s = unsafe { ml_session_save(self.session, &mut bytes, &mut len, &mut err) };
        assert_eq!(settle("ml_session_save", s, err), ML_OK);
        let v = unsafe { std::slice::from_raw_parts(bytes, len) }.to_vec();
        unsafe { ml_bytes_free(bytes, len) };
        v
    }

    /// Loads `bytes`; on success the loaded session replaces this one.
    fn load(&mut self, bytes: &[u8], flags: u32) -> ml_status {
        let (mut loaded, mut err) = (ptr::null_mut(), ptr::null_mut());
        let s = unsafe { ml_session_load(self.engine, bytes.as_ptr(), bytes.len(), flags, &mut loaded, &mut err) };
        let s = settle("ml_session_load", s, err);
        if s == ML_OK {
            assert!(!loaded.is_null());
            unsafe { ml_session_free(self.session) };
            self.session = loaded;
        }
        s
    }
}

fn run(u: &mut Unstructured) -> Result<()> {
    let which: u8 = u.arbitrary()?;
    let policy = match which {
        255 => match input(u)? {
            // A policy with an [audit] section would open files: not here.
            Input::Bytes(b) if b.windows(5).any(|w| w == b"audit") => return Ok(()),
            p => p,
        },
        w => Input::Bytes(POLICIES[usize::from(w) % POLICIES.len()].as_bytes().to_vec()),
    };
    let (pp, pl) = policy.ptr();
    let (mut engine, mut err) = (ptr::null_mut(), ptr::null_mut());
    if settle("ml_engine_new", unsafe { ml_engine_new(pp, pl, &mut engine, &mut err) }, err) != ML_OK {
        // A session under the same text fails the same way.
        let (mut session, mut err) = (ptr::null_mut(), ptr::null_mut());
        assert_ne!(settle("ml_session_new", unsafe { ml_session_new(pp, pl, &mut session, &mut err) }, err), ML_OK);
        return Ok(());
    }
    let (mut session, mut err) = (ptr::null_mut(), ptr::null_mut());
    assert_eq!(settle("ml_session_new_from_engine", unsafe { ml_session_new_from_engine(engine, &mut session, &mut err) }, err), ML_OK);
    let mut r = Run { engine, session, issued: Vec::new(), calls: 0, blocked: 0 };
    let result = ops(&mut r, u);
    unsafe {
        ml_session_free(r.session);
        ml_engine_free(r.engine);
    }
    result
}

fn ops(r: &mut Run, u: &mut Unstructured) -> Result<()> {
    for _ in 0..256 {
        let op: u8 = u.arbitrary()?;
        match op % 10 {
            0..=2 => {
                let (tool, args) = (input(u)?, input(u)?);
                r.check(&tool, &args);
            }
            3..=4 => {
                let which: u8 = u.arbitrary()?;
                let raw = if which == 255 { u.arbitrary()? } else { 0 };
                let output = input(u)?;
                let is_error: bool = u.arbitrary()?;
                r.record(which, raw, &output, is_error);
            }
            5 => {
                let names = input(u)?;
                let (np, nl) = names.ptr();
                let mut err = ptr::null_mut();
                settle("ml_session_set_tools", unsafe { ml_session_set_tools(r.session, np, nl, &mut err) }, err);
            }
            6 => {
                let mut err = ptr::null_mut();
                assert_eq!(settle("ml_session_reset", unsafe { ml_session_reset(r.session, &mut err) }, err), ML_OK);
                r.calls = 0;
                r.blocked = 0;
                // Ids still waiting may be recorded after a reset (as late); none is issued twice.
            }
            7 => {
                // A snapshot round trip keeps every counter.
                let before = r.stats();
                let bytes = r.save();
                assert_eq!(r.load(&bytes, 0), ML_OK, "a session's own snapshot loads");
                let after = r.stats();
                assert_eq!(
                    (before.calls, before.blocked, before.errors, before.history_len, before.history_hash, before.results, before.late),
                    (after.calls, after.blocked, after.errors, after.history_len, after.history_hash, after.results, after.late),
                    "the counters after a snapshot round trip"
                );
            }
            8 => {
                // A corrupted or made-up snapshot is refused, or loads as some valid session.
                let mut bytes = r.save();
                let (pos, xor, cut, flags): (u16, u8, u16, u8) = (u16_le(u)?, u.arbitrary()?, u16_le(u)?, u.arbitrary()?);
                if !bytes.is_empty() {
                    let i = usize::from(pos) % bytes.len();
                    bytes[i] ^= xor;
                    bytes.truncate(bytes.len() - usize::from(cut) % (bytes.len() + 1) / 4);
                }
                if u.arbitrary::<bool>()? {
                    bytes = match input(u)? {
                        Input::Bytes(b) => b,
                        Input::Null(_) => Vec::new(),
                    };
                }
                if r.load(&bytes, u32::from(flags % 3)) == ML_OK {
                    // Its counters are its own now; its history may have any ids.
                    let mut st = ml_stats { size: std::mem::size_of::<ml_stats>(), calls: 0, blocked: 0, errors: 0, history_len: 0, history_hash: 0, results: 0, late: 0, observed: 0 };
                    let mut err = ptr::null_mut();
                    assert_eq!(settle("ml_session_stats", unsafe { ml_session_stats(r.session, &mut st, &mut err) }, err), ML_OK);
                    r.calls = st.calls;
                    r.blocked = st.blocked;
                    r.issued.clear();
                    return Ok(());
                }
            }
            _ => {
                let (tool, args) = (input(u)?, input(u)?);
                let (tp, tl) = tool.ptr();
                let (ap, al) = args.ptr();
                let (mut fp, mut err) = (0u64, ptr::null_mut());
                let engine = if u.arbitrary::<bool>()? { r.engine as *const ml_engine } else { ptr::null() };
                settle("ml_fingerprint", unsafe { ml_fingerprint(engine, tp, tl, ap, al, &mut fp, &mut err) }, err);
            }
        }
        r.stats();
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = run(&mut Unstructured::new(data));
});
