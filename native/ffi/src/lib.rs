//! The C ABI of MicroLoop: `libmicroloop.so` / `libmicroloop.a` and `include/microloop.h`.
//!
//! This crate is the one unsafe boundary. Every exported function checks its pointers, turns
//! (pointer, length) pairs into slices, calls safe Rust in `microloop-core`, and maps the result to
//! an `ml_status`, with the detail in an optional `ml_error` out-parameter (never a thread-local
//! "last error": Go and koffi callers change OS threads between calls). `catch_unwind` guards every
//! entry, so no panic crosses into the caller. Out-parameters are written only on success.
//!
//! The header is generated from this file by cbindgen (see `cbindgen.toml`), then laid out in the
//! sections marked below (`// ==== Title ====`, followed by `//` lines that introduce the section)
//! by `header_sections.py`: each public item goes in the section it is written under, in this
//! file's order. The doc comments here are the contract C callers read.
#![allow(non_camel_case_types)]
#![allow(clippy::missing_safety_doc)]

use std::ffi::{c_char, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Instant;

use microloop_core::{canon, CheckError, Engine, PolicyError, RecordError, Session, SnapshotError, Verdict};

// ==== Status codes and errors ====
// Every fallible function returns an ml_status (ML_OK is 0; codes are never renumbered) and takes an
// optional `ml_error **err_out`: on failure a new ml_error is written there (when err_out is not NULL)
// with a message and, for a refused policy, the path of the bad entry.

/// A status code: 0 is success. Codes are never renumbered.
pub type ml_status = i32;

/// Success.
pub const ML_OK: ml_status = 0;
/// A required pointer was NULL (or a NULL buffer came with a non-zero length).
pub const ML_ERR_NULL_ARG: ml_status = 1;
/// A string argument is not valid UTF-8.
pub const ML_ERR_INVALID_UTF8: ml_status = 2;
/// The arguments (or another JSON input) are not valid JSON, or nest deeper than 128 levels.
pub const ML_ERR_INVALID_JSON: ml_status = 3;
/// The policy was refused; the error's path names the bad entry.
pub const ML_ERR_INVALID_POLICY: ml_status = 4;
/// No call with this id was issued by the session (id 0 is a blocked call's).
pub const ML_ERR_UNKNOWN_CALL: ml_status = 5;
/// The call already has a result.
pub const ML_ERR_ALREADY_RECORDED: ml_status = 6;
/// Another argument is out of its domain (an empty tool name, a too small `ml_verdict.size`).
pub const ML_ERR_INVALID_ARG: ml_status = 7;
/// A bug inside the library was caught before it could cross the boundary.
pub const ML_ERR_PANIC: ml_status = 99;

/// The detail of a failure: a status code, a message and, for a refused policy, the path of the
/// bad entry. Owned by the caller once returned; free it with `ml_error_free`.
pub struct ml_error {
    code: ml_status,
    message: CString,
    path: CString,
}

/// Static text for a status code ("invalid JSON", ...); never NULL, never freed.
#[no_mangle]
pub extern "C" fn ml_status_str(status: ml_status) -> *const c_char {
    let s: &'static std::ffi::CStr = match status {
        ML_OK => c"ok",
        ML_ERR_NULL_ARG => c"NULL argument",
        ML_ERR_INVALID_UTF8 => c"invalid UTF-8",
        ML_ERR_INVALID_JSON => c"invalid JSON",
        ML_ERR_INVALID_POLICY => c"invalid policy",
        ML_ERR_UNKNOWN_CALL => c"unknown call id",
        ML_ERR_ALREADY_RECORDED => c"result already recorded",
        ML_ERR_INVALID_ARG => c"invalid argument",
        ML_ERR_INVALID_SNAPSHOT => c"invalid snapshot",
        ML_ERR_SNAPSHOT_VERSION => c"snapshot from a newer version",
        ML_ERR_POLICY_MISMATCH => c"snapshot of another policy",
        ML_ERR_PANIC => c"internal error",
        _ => c"unknown status",
    };
    s.as_ptr()
}

/// The status code of an error; `ML_ERR_NULL_ARG` for NULL.
#[no_mangle]
pub unsafe extern "C" fn ml_error_code(err: *const ml_error) -> ml_status {
    unsafe { err.as_ref() }.map_or(ML_ERR_NULL_ARG, |e| e.code)
}

/// The error's message: NUL-terminated UTF-8, borrowed until `ml_error_free`. Writes its length
/// (without the NUL) to `*len_out` when `len_out` is not NULL. An empty string for NULL.
#[no_mangle]
pub unsafe extern "C" fn ml_error_message(err: *const ml_error, len_out: *mut usize) -> *const c_char {
    error_text(err, len_out, |e| &e.message)
}

/// For `ML_ERR_INVALID_POLICY`, the path of the bad entry (`tools[2].rules[0].deny_regex`), else
/// empty. Borrowed until `ml_error_free`; length in `*len_out` when not NULL.
#[no_mangle]
pub unsafe extern "C" fn ml_error_path(err: *const ml_error, len_out: *mut usize) -> *const c_char {
    error_text(err, len_out, |e| &e.path)
}

fn error_text(err: *const ml_error, len_out: *mut usize, field: impl Fn(&ml_error) -> &CString) -> *const c_char {
    let text: &std::ffi::CStr = match unsafe { err.as_ref() } {
        Some(e) => field(e),
        None => c"",
    };
    if let Some(len) = unsafe { len_out.as_mut() } {
        *len = text.to_bytes().len();
    }
    text.as_ptr()
}

/// Frees an error. NULL is a no-op.
#[no_mangle]
pub unsafe extern "C" fn ml_error_free(err: *mut ml_error) {
    if !err.is_null() {
        let _ = catch_unwind(AssertUnwindSafe(|| drop(unsafe { Box::from_raw(err) })));
    }
}

// ==== Versions ====
// ML_VERSION_* and ML_ABI_VERSION are the header's; ml_version_number() and ml_abi_version() the
// library's. A binding refuses a library whose ABI version differs from the header it was built with.

pub const ML_VERSION_MAJOR: u32 = 0;
pub const ML_VERSION_MINOR: u32 = 1;
pub const ML_VERSION_PATCH: u32 = 0;
/// `MAJOR * 10000 + MINOR * 100 + PATCH` (a literal, so cffi can read it; a test checks it).
pub const ML_VERSION_NUMBER: u32 = 100;
/// Bumped whenever a change breaks callers compiled against an older header (2: `ml_fingerprint`
/// takes an engine).
pub const ML_ABI_VERSION: u32 = 2;

/// The library's version, "MAJOR.MINOR.PATCH"; static, never freed.
#[no_mangle]
pub extern "C" fn ml_version_string() -> *const c_char {
    static VERSION: OnceLock<CString> = OnceLock::new();
    VERSION
        .get_or_init(|| to_cstring(format!("{ML_VERSION_MAJOR}.{ML_VERSION_MINOR}.{ML_VERSION_PATCH}")))
        .as_ptr()
}

/// The library's `ML_VERSION_NUMBER`: compare with the header's to detect a mismatch.
#[no_mangle]
pub extern "C" fn ml_version_number() -> u32 {
    ML_VERSION_NUMBER
}

/// The library's `ML_ABI_VERSION`: bindings refuse to load a library whose ABI differs.
#[no_mangle]
pub extern "C" fn ml_abi_version() -> u32 {
    ML_ABI_VERSION
}

// ==== Engines ====
// A compiled policy shared by many sessions: compile it once with ml_engine_new, then make a session
// per thread, conversation or worker with ml_session_new_from_engine.

/// A compiled policy: its schemas, regexes and limits, ready for any number of sessions. Opaque.
///
/// Thread safety: an engine never changes after `ml_engine_new`, so any number of sessions and
/// threads may share it at once. Each session made from it holds its own reference: the engine may
/// be freed while its sessions live.
pub struct ml_engine {
    inner: Arc<Engine>,
    /// The policy's sinks (`[audit]`), given to every session made from the engine.
    host: Arc<microloop_host::Host>,
}

/// Compiles a policy once for many sessions (`ml_session_new_from_engine`): a session per thread or
/// per conversation then costs no second parse of the policy, compile of its schemas or regexes.
/// `policy` is read as by `ml_session_new` (NULL or empty: `balanced`), with the same errors.
/// On success writes a new engine to `*engine_out`; release it with `ml_engine_free`. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn ml_engine_new(
    policy: *const u8,
    policy_len: usize,
    engine_out: *mut *mut ml_engine,
    err_out: *mut *mut ml_error,
) -> ml_status {
    boundary(err_out, || {
        if engine_out.is_null() {
            return Err(Failure::new(ML_ERR_NULL_ARG, "engine_out is NULL"));
        }
        let engine = unsafe { compile(policy, policy_len)? };
        unsafe { *engine_out = Box::into_raw(Box::new(engine)) };
        Ok(())
    })
}

/// Releases the caller's reference to an engine. NULL is a no-op. Sessions made from the engine
/// keep working; it is freed with the last of them. Must not race with another call given this
/// same pointer.
#[no_mangle]
pub unsafe extern "C" fn ml_engine_free(engine: *mut ml_engine) {
    if engine.is_null() {
        return;
    }
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `engine` came from `ml_engine_new` and is freed once.
        drop(unsafe { Box::from_raw(engine) });
    }));
}

// ==== Sessions ====
// A session is one agent run's history of calls under one policy. Every function taking a session may
// be called from several threads at once: calls on one session are serialized by an internal lock.

/// A session: one agent run's history of calls under one policy. Opaque.
///
/// Thread safety: a session may be used from several threads at once; calls on one session are
/// serialized by an internal lock.
pub struct ml_session {
    inner: Mutex<Session>,
    /// The sinks the policy configures (`[audit]`); `None` costs nothing per check.
    events: Option<microloop_host::Events>,
}

/// Creates a session under a policy (compiled for this session alone: to share one compiled policy
/// between sessions, use `ml_engine_new` and `ml_session_new_from_engine`).
///
/// `policy` is the policy's text: JSON (a policy document, or a preset name as a JSON string),
/// TOML, or a bare preset name (`strict`, `balanced`, `permissive`); NULL or empty means
/// `balanced`. Not NUL-terminated. A policy with an `[audit]` section logs every decision of the
/// session to that audit log (see docs/audit.md), opened now: a log or key that cannot be opened
/// is `ML_ERR_INVALID_POLICY`, the error's path `audit.path` or `audit.key_file`.
/// On success writes a new session to `*session_out`; free it with `ml_session_free`.
/// Errors: `ML_ERR_NULL_ARG`, `ML_ERR_INVALID_UTF8`, `ML_ERR_INVALID_POLICY` (the error's path names
/// the bad entry). Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn ml_session_new(
    policy: *const u8,
    policy_len: usize,
    session_out: *mut *mut ml_session,
    err_out: *mut *mut ml_error,
) -> ml_status {
    boundary(err_out, || {
        if session_out.is_null() {
            return Err(Failure::new(ML_ERR_NULL_ARG, "session_out is NULL"));
        }
        // A session of its own engine: `ml_engine_new` then `ml_session_new_from_engine`.
        unsafe { *session_out = compile(policy, policy_len)?.session() };
        Ok(())
    })
}

/// Creates a session under an engine's policy: an empty history, no tool names. The session holds
/// its own reference to the engine. On success writes the session to `*session_out`; free it with
/// `ml_session_free`. Errors: `ML_ERR_NULL_ARG`. Thread-safe: sessions of one engine may be created
/// and used on any threads.
#[no_mangle]
pub unsafe extern "C" fn ml_session_new_from_engine(
    engine: *const ml_engine,
    session_out: *mut *mut ml_session,
    err_out: *mut *mut ml_error,
) -> ml_status {
    boundary(err_out, || {
        // SAFETY: a non-NULL engine comes from `ml_engine_new` and is not yet freed.
        let engine = unsafe { engine.as_ref() }.ok_or_else(|| Failure::new(ML_ERR_NULL_ARG, "the engine is NULL"))?;
        if session_out.is_null() {
            return Err(Failure::new(ML_ERR_NULL_ARG, "session_out is NULL"));
        }
        unsafe { *session_out = engine.session() };
        Ok(())
    })
}

/// Frees a session. NULL is a no-op. The session must not be in use by another thread.
#[no_mangle]
pub unsafe extern "C" fn ml_session_free(session: *mut ml_session) {
    if session.is_null() {
        return;
    }
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `session` came from `ml_session_new` and is freed once.
        drop(unsafe { Box::from_raw(session) });
    }));
}

/// Registers the agent's tool names, as a JSON array of strings (`["search", "open_page"]`): a call
/// to any other tool is then blocked with rule `tool.unknown`, whose message lists these names.
/// An empty array forgets them. Errors: `ML_ERR_NULL_ARG`, `ML_ERR_INVALID_UTF8`,
/// `ML_ERR_INVALID_JSON` (not an array of strings). Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn ml_session_set_tools(
    session: *mut ml_session,
    names_json: *const u8,
    names_len: usize,
    err_out: *mut *mut ml_error,
) -> ml_status {
    boundary(err_out, || {
        let s = unsafe { session_ref(session)? };
        let text = unsafe { str_arg(names_json, names_len, "the tool names")? };
        let names: Vec<String> = serde_json::from_str(text).map_err(|e| {
            Failure::new(ML_ERR_INVALID_JSON, format!("the tool names must be a JSON array of strings: {e}"))
        })?;
        s.lock().set_tools(&names);
        Ok(())
    })
}

/// Forgets the session's history, counters and any halt; keeps the policy and the tool names.
/// Errors: `ML_ERR_NULL_ARG`. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn ml_session_reset(session: *mut ml_session, err_out: *mut *mut ml_error) -> ml_status {
    boundary(err_out, || {
        unsafe { session_ref(session)? }.lock().reset();
        Ok(())
    })
}

/// Replays a recorded LLM API conversation into the session, as the proxy reads each request it
/// guards: every tool call of an assistant turn is checked, every tool result recorded under the
/// call it answers (matched by the transport's call id), and the request's `tools` become the
/// session's tool names when it lists them. Every call is checked at the same instant, so
/// `budget.rate` does not apply.
///
/// `dialect` (not NUL-terminated): `openai` (Chat Completions: `tool_calls`, `tool` messages) or
/// `anthropic` (Messages: `tool_use`, `tool_result` blocks). `conversation`: a request body
/// (`{"messages": [...], "tools": [...]}`) or the bare list of messages, JSON.
/// On success writes a JSON report to `*json_out` (UTF-8, `*len_out` bytes, no NUL; free it with
/// `ml_bytes_free(json, len)`): `{"calls": [{"id", "tool", "args", "action", "rule", "message",
/// "count", "result": null | {"text", "error"}}], "warnings": [{"rule", "message"}], "results",
/// "orphan_results"}`, one entry per call in order; `action` is `allow`, `warn`, `block`, `halt`,
/// or `error` for arguments that cannot be checked (`rule` is then `InvalidJSON`, `InvalidUTF8` or
/// `InvalidArgument`, and the replay goes on). Decisions of a replay are not sent to the audit log.
/// Errors (the session is unchanged): `ML_ERR_NULL_ARG`, `ML_ERR_INVALID_UTF8`,
/// `ML_ERR_INVALID_JSON` (the conversation is not JSON), `ML_ERR_INVALID_ARG` (an unknown dialect).
/// Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn ml_session_replay(
    session: *mut ml_session,
    dialect: *const u8,
    dialect_len: usize,
    conversation: *const u8,
    conversation_len: usize,
    json_out: *mut *mut u8,
    len_out: *mut usize,
    err_out: *mut *mut ml_error,
) -> ml_status {
    boundary(err_out, || {
        let s = unsafe { session_ref(session)? };
        if json_out.is_null() || len_out.is_null() {
            return Err(Failure::new(ML_ERR_NULL_ARG, "json_out or len_out is NULL"));
        }
        let name = unsafe { str_arg(dialect, dialect_len, "the dialect")? };
        let format = microloop_host::conversation::Format::from_name(name).ok_or_else(|| {
            Failure::new(ML_ERR_INVALID_ARG, format!("unknown dialect `{name}`: use `openai` or `anthropic`"))
        })?;
        let text = unsafe { str_arg(conversation, conversation_len, "the conversation")? };
        let doc: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| Failure::new(ML_ERR_INVALID_JSON, format!("the conversation is not JSON: {e}")))?;
        let report = microloop_host::conversation::replay_json(&mut s.lock(), format, &doc);
        let bytes = serde_json::to_vec(&report).unwrap_or_default().into_boxed_slice();
        let len = bytes.len();
        unsafe {
            *json_out = Box::into_raw(bytes) as *mut u8;
            *len_out = len;
        }
        Ok(())
    })
}

// ==== Checking a call and recording its result ====
// ml_check_call decides on a call before it runs and fills an ml_verdict; an allowed call is then run
// and what it returned is given to ml_record_result under the verdict's call_id.

/// `ml_verdict.action`: run the call.
pub const ML_ACTION_ALLOW: i32 = 0;
/// Run the call and show `message` to the model with its result: the next like call is blocked.
pub const ML_ACTION_WARN: i32 = 1;
/// Do not run the call; give `message` to the model in place of a result.
pub const ML_ACTION_BLOCK: i32 = 2;
/// Do not run the call; stop the run.
pub const ML_ACTION_HALT: i32 = 3;

/// The verdict on one call. Set `size = sizeof(ml_verdict)` before passing it to `ml_check_call`
/// (newer library versions may add fields at the end and fill only what `size` covers; a caller
/// compiled against an older header, whose `size` ends before `approval`, gets the fields it
/// knows).
///
/// `rule`, `message`, `approval` and `approval_error` are NUL-terminated UTF-8 owned by the
/// verdict (NULL when absent); release them with `ml_verdict_clear` once read, before the struct
/// is reused or goes out of scope.
#[repr(C)]
pub struct ml_verdict {
    /// `sizeof(ml_verdict)`, set by the caller.
    pub size: usize,
    /// `ML_ACTION_ALLOW`, `ML_ACTION_WARN`, `ML_ACTION_BLOCK` or `ML_ACTION_HALT`.
    pub action: i32,
    /// For allow: how many times this exact call already ran in the window; otherwise the count
    /// the deciding rule reached.
    pub count: u32,
    /// The id to pass to `ml_record_result`; 0 when the call must not run.
    pub call_id: u64,
    /// The deciding rule's id (`loop.no_progress`, a policy rule's id); NULL for allow.
    pub rule: *mut c_char,
    pub rule_len: usize,
    /// Written for the model; NULL for allow.
    pub message: *mut c_char,
    pub message_len: usize,
    /// Under a policy with an `[approval]` section, for a call that may run (allow, warn): the
    /// approval token, a compact JWS (`alg: EdDSA`) binding the session, the call id, the tool,
    /// the SHA-256 of the arguments' RFC 8785 canonical JSON, the audience, the times and the
    /// audit sequence number (docs/approval.md). NULL otherwise. Added after ABI 2's first header.
    pub approval: *mut c_char,
    pub approval_len: usize,
    /// Why a call that may run under `[approval]` has no token (its arguments have no RFC 8785
    /// canonical form: an integer outside ±(2^53 - 1), a duplicate key); NULL otherwise.
    pub approval_error: *mut c_char,
    pub approval_error_len: usize,
    /// Observe mode (a policy with `mode = "observe"`): the action an enforcing guard would have
    /// taken (`ML_ACTION_WARN`, `ML_ACTION_BLOCK` or `ML_ACTION_HALT`) on a call that is let run.
    /// `action` is then `ML_ACTION_ALLOW`, `call_id` is the call's (record its result), and
    /// `rule`, `message` and `count` are the would-be verdict's. `ML_ACTION_ALLOW` otherwise.
    /// Filled when `size` covers it.
    pub observed: i32,
}

/// The least `ml_verdict.size` accepted: the struct as ABI 2's first header declared it.
const VERDICT_SIZE_V1: usize = std::mem::offset_of!(ml_verdict, approval);

/// Decides on a tool call before it runs.
///
/// `tool` is the tool's name and `args` its arguments as JSON text, both UTF-8 and not
/// NUL-terminated. On success fills `*verdict_out` (whose `size` the caller set); an allowed call
/// (`ML_ACTION_ALLOW` / `ML_ACTION_WARN`) enters the history under `verdict_out->call_id`: report
/// what it returned with `ml_record_result`. A blocked or halted call leaves the history unchanged.
/// Under a policy with `mode = "observe"` every call is allowed and enters the history: a verdict
/// that would have warned, blocked or halted comes back as `ML_ACTION_ALLOW` with that action in
/// `observed` and its rule and message kept (counted in `ml_stats.observed`).
/// Arguments over the policy's `max_args_bytes` are blocked (`budget.args_size`) before parsing.
/// Errors (the history is unchanged): `ML_ERR_NULL_ARG`, `ML_ERR_INVALID_UTF8`,
/// `ML_ERR_INVALID_JSON`, `ML_ERR_INVALID_ARG` (empty tool name, `size` too small). Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn ml_check_call(
    session: *mut ml_session,
    tool: *const u8,
    tool_len: usize,
    args: *const u8,
    args_len: usize,
    verdict_out: *mut ml_verdict,
    err_out: *mut *mut ml_error,
) -> ml_status {
    boundary(err_out, || {
        let s = unsafe { session_ref(session)? };
        // SAFETY: a non-NULL verdict points to a caller-owned `ml_verdict` of at least `size` bytes.
        let out = unsafe { verdict_out.as_mut() }.ok_or_else(|| Failure::new(ML_ERR_NULL_ARG, "verdict_out is NULL"))?;
        if out.size < VERDICT_SIZE_V1 {
            return Err(Failure::new(ML_ERR_INVALID_ARG, "verdict_out->size is smaller than sizeof(ml_verdict); set it first"));
        }
        // Room for the approval fields (added after ABI 2's first header; `observed` came later).
        let full = out.size >= std::mem::offset_of!(ml_verdict, observed);
        let tool = unsafe { str_arg(tool, tool_len, "the tool name")? };
        let args = unsafe { bytes_arg(args, args_len, "the arguments")? };
        // The core checks UTF-8 (once) after judging the size, so oversized arguments are
        // answered in time independent of their length.
        let mut session = s.lock();
        let v = session.check(tool, args, now_ms()).map_err(check_error)?;
        let approval = match &s.events {
            Some(events) => {
                let now = microloop_host::Clock::now_ms(&microloop_host::SystemClock);
                // A caller whose struct has no room for the token does not pay for one.
                events.decide(&session, tool, args, &v, now, full).approval
            }
            None => None,
        };
        drop(session);
        write_verdict(out, &v);
        if full {
            let (token, error) = match &approval {
                Some(microloop_host::Approval::Token(t)) => (owned_c(t), (ptr::null_mut(), 0)),
                Some(microloop_host::Approval::Refused(why)) => ((ptr::null_mut(), 0), owned_c(why)),
                None => ((ptr::null_mut(), 0), (ptr::null_mut(), 0)),
            };
            (out.approval, out.approval_len) = token;
            (out.approval_error, out.approval_error_len) = error;
        }
        Ok(())
    })
}

/// Releases the strings a verdict owns and sets them to NULL. NULL, or a verdict without strings,
/// is a no-op; calling it twice is safe.
#[no_mangle]
pub unsafe extern "C" fn ml_verdict_clear(verdict: *mut ml_verdict) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: a non-NULL verdict was filled by `ml_check_call` (or zeroed by the caller).
        let Some(v) = (unsafe { verdict.as_mut() }) else { return };
        let mut strings = vec![(&mut v.rule, &mut v.rule_len), (&mut v.message, &mut v.message_len)];
        // The fields a caller compiled against ABI 2's first header does not have are not touched.
        if v.size >= std::mem::offset_of!(ml_verdict, observed) {
            strings.push((&mut v.approval, &mut v.approval_len));
            strings.push((&mut v.approval_error, &mut v.approval_error_len));
        }
        for (p, len) in strings {
            if !p.is_null() {
                // SAFETY: the pointer came from `CString::into_raw` in `write_verdict`.
                drop(unsafe { CString::from_raw(*p) });
            }
            *p = ptr::null_mut();
            *len = 0;
        }
    }));
}

/// Records what an allowed call returned: `output` (UTF-8 or any bytes; JSON is compared as JSON,
/// anything else as bytes after volatile parts are masked) and whether it failed.
///
/// A result that comes after its call has left the history window (a slow tool beside many fast
/// ones) is accepted as *late* (`ml_stats.late`): it still counts toward the error budget, and a
/// successful write is still progress, but it is compared with nothing.
/// Errors: `ML_ERR_NULL_ARG`, `ML_ERR_UNKNOWN_CALL` (id 0, or never issued by this session),
/// `ML_ERR_ALREADY_RECORDED`. Thread-safe; results may be recorded in any order.
#[no_mangle]
pub unsafe extern "C" fn ml_record_result(
    session: *mut ml_session,
    call_id: u64,
    output: *const u8,
    output_len: usize,
    is_error: bool,
    err_out: *mut *mut ml_error,
) -> ml_status {
    boundary(err_out, || {
        let s = unsafe { session_ref(session)? };
        let output = unsafe { bytes_arg(output, output_len, "the output")? };
        s.lock().record(call_id, output, is_error).map_err(record_error)
    })
}

// ==== Counters ====
// A session's counters and a hash of its history.

/// Counters of a session. Set `size = sizeof(ml_stats)` before calling `ml_session_stats`.
/// Fields are only ever added at the end; a caller compiled against an older header gets the
/// fields its `size` covers.
#[repr(C)]
pub struct ml_stats {
    pub size: usize,
    /// Calls allowed to run.
    pub calls: u64,
    /// Calls blocked or halted.
    pub blocked: u64,
    /// Results recorded as errors.
    pub errors: u64,
    /// Calls in the history window now.
    pub history_len: u64,
    /// A hash of the whole history: unchanged by any call that did not change it.
    pub history_hash: u64,
    /// Results recorded, late ones included.
    pub results: u64,
    /// Results recorded after their call had left the window.
    pub late: u64,
    /// Observe mode: calls let run although an enforcing guard would have warned, blocked or
    /// halted them (the blocked and halted ones are also in `blocked`).
    pub observed: u64,
}

/// Reads the session's counters into `*stats_out` (whose `size` the caller set).
/// Errors: `ML_ERR_NULL_ARG`, `ML_ERR_INVALID_ARG` (`size` too small). Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn ml_session_stats(
    session: *mut ml_session,
    stats_out: *mut ml_stats,
    err_out: *mut *mut ml_error,
) -> ml_status {
    boundary(err_out, || {
        let s = unsafe { session_ref(session)? };
        let out = unsafe { stats_out.as_mut() }.ok_or_else(|| Failure::new(ML_ERR_NULL_ARG, "stats_out is NULL"))?;
        // The size of `ml_stats` in the first ABI is the least a caller may pass.
        if out.size < std::mem::offset_of!(ml_stats, results) {
            return Err(Failure::new(ML_ERR_INVALID_ARG, "stats_out->size is smaller than sizeof(ml_stats); set it first"));
        }
        let st = s.lock().stats();
        out.calls = st.calls;
        out.blocked = st.blocked;
        out.errors = st.errors;
        out.history_len = st.history_len as u64;
        out.history_hash = st.history_hash;
        if out.size >= std::mem::offset_of!(ml_stats, observed) {
            out.results = st.results;
            out.late = st.late;
        }
        if out.size >= std::mem::size_of::<ml_stats>() {
            out.observed = st.observed;
        }
        Ok(())
    })
}

// ==== Snapshots ====
// A session's history as bytes, so a run can go on in another process or on another machine (a
// worker that resumes a conversation, a serverless step): ml_session_save, then ml_session_load
// under an engine. The bytes are versioned and checksummed; they hold the history window, the
// counters, the registered tool names and any halt, not the policy: they name the policy's hash,
// and a session is loaded under another policy only when the caller says so.

/// `ml_session_load`: the bytes are not a MicroLoop snapshot, or are corrupt or truncated.
pub const ML_ERR_INVALID_SNAPSHOT: ml_status = 8;
/// `ml_session_load`: the snapshot was written by a newer MicroLoop, in a format this one cannot read.
pub const ML_ERR_SNAPSHOT_VERSION: ml_status = 9;
/// `ml_session_load`: the snapshot was saved under another policy (and `ML_LOAD_ANY_POLICY` was not given).
pub const ML_ERR_POLICY_MISMATCH: ml_status = 10;

/// `ml_session_load` flag: load a snapshot saved under another policy; its history is then judged
/// by the engine's rules.
pub const ML_LOAD_ANY_POLICY: u32 = 1;

/// Saves a session as bytes for `ml_session_load`: its history window, counters, registered tool
/// names and any halt (calls still waiting for their result included: record them on the loaded
/// session under the same ids). Compact (about 40 bytes per call in the window) and independent
/// of the machine.
/// On success writes the bytes to `*bytes_out` and their length to `*len_out`; the bytes are the
/// caller's: free them with `ml_bytes_free(bytes, len)`. The session is unchanged.
/// Errors: `ML_ERR_NULL_ARG`. Thread-safe (the save sees the session between two calls).
#[no_mangle]
pub unsafe extern "C" fn ml_session_save(
    session: *mut ml_session,
    bytes_out: *mut *mut u8,
    len_out: *mut usize,
    err_out: *mut *mut ml_error,
) -> ml_status {
    boundary(err_out, || {
        let s = unsafe { session_ref(session)? };
        if bytes_out.is_null() || len_out.is_null() {
            return Err(Failure::new(ML_ERR_NULL_ARG, "bytes_out or len_out is NULL"));
        }
        let bytes = s.lock().save().into_boxed_slice();
        let len = bytes.len();
        unsafe {
            *bytes_out = Box::into_raw(bytes) as *mut u8;
            *len_out = len;
        }
        Ok(())
    })
}

/// Frees bytes returned by `ml_session_save` or `ml_session_replay`, given with their length.
/// NULL is a no-op.
#[no_mangle]
pub unsafe extern "C" fn ml_bytes_free(bytes: *mut u8, len: usize) {
    if bytes.is_null() {
        return;
    }
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `bytes` and `len` came from `ml_session_save` and are freed once.
        drop(unsafe { Box::from_raw(ptr::slice_from_raw_parts_mut(bytes, len)) });
    }));
}

/// Creates a session from `ml_session_save`'s bytes, under `engine`'s policy. `flags`: 0, or
/// `ML_LOAD_ANY_POLICY`. The loaded session gives exactly the verdicts the saved one would have
/// given. On success writes it to `*session_out`; free it with `ml_session_free`.
/// Errors (nothing is created): `ML_ERR_NULL_ARG`, `ML_ERR_INVALID_SNAPSHOT` (not a snapshot,
/// corrupt or truncated), `ML_ERR_SNAPSHOT_VERSION` (written by a newer MicroLoop),
/// `ML_ERR_POLICY_MISMATCH` (saved under another policy), `ML_ERR_INVALID_ARG` (an unknown flag).
/// Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn ml_session_load(
    engine: *const ml_engine,
    bytes: *const u8,
    len: usize,
    flags: u32,
    session_out: *mut *mut ml_session,
    err_out: *mut *mut ml_error,
) -> ml_status {
    boundary(err_out, || {
        // SAFETY: a non-NULL engine comes from `ml_engine_new` and is not yet freed.
        let engine = unsafe { engine.as_ref() }.ok_or_else(|| Failure::new(ML_ERR_NULL_ARG, "the engine is NULL"))?;
        if session_out.is_null() {
            return Err(Failure::new(ML_ERR_NULL_ARG, "session_out is NULL"));
        }
        if flags & !ML_LOAD_ANY_POLICY != 0 {
            return Err(Failure::new(ML_ERR_INVALID_ARG, format!("unknown flags {flags:#x} (ML_LOAD_ANY_POLICY is {ML_LOAD_ANY_POLICY})")));
        }
        let bytes = unsafe { bytes_arg(bytes, len, "the snapshot")? };
        let session = Session::load(Arc::clone(&engine.inner), bytes, flags & ML_LOAD_ANY_POLICY != 0).map_err(|e| {
            let code = match e {
                SnapshotError::FutureVersion(_) => ML_ERR_SNAPSHOT_VERSION,
                SnapshotError::PolicyMismatch { .. } => ML_ERR_POLICY_MISMATCH,
                SnapshotError::Foreign | SnapshotError::Corrupt | SnapshotError::Malformed(_) => ML_ERR_INVALID_SNAPSHOT,
            };
            Failure::new(code, e.to_string())
        })?;
        unsafe { *session_out = engine.handle(session) };
        Ok(())
    })
}

// ==== Fingerprints ====
// The canonical fingerprint every binding computes for a call, equal to the one the session keeps.

/// The canonical fingerprint of a call (tool name + arguments JSON), as a session under `engine`
/// computes it: key order, white space and `1` vs `1.0` do not change it, and the fields the
/// engine's policy names in `ignore_fields` are left out at any depth. `engine` may be NULL: then
/// every field counts. On success writes the fingerprint to `*fingerprint_out`.
/// Errors: `ML_ERR_NULL_ARG`, `ML_ERR_INVALID_UTF8`, `ML_ERR_INVALID_JSON`. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn ml_fingerprint(
    engine: *const ml_engine,
    tool: *const u8,
    tool_len: usize,
    args: *const u8,
    args_len: usize,
    fingerprint_out: *mut u64,
    err_out: *mut *mut ml_error,
) -> ml_status {
    boundary(err_out, || {
        if fingerprint_out.is_null() {
            return Err(Failure::new(ML_ERR_NULL_ARG, "fingerprint_out is NULL"));
        }
        let tool = unsafe { str_arg(tool, tool_len, "the tool name")? };
        let args = unsafe { str_arg(args, args_len, "the arguments")? };
        // SAFETY: a non-NULL engine comes from `ml_engine_new` and is not yet freed.
        let ignore: &[String] = match unsafe { engine.as_ref() } {
            Some(e) => &e.inner.policy.ignore_fields,
            None => &[],
        };
        let h = canon::hash_json(args.as_bytes(), ignore)
            .map_err(|e| Failure::new(ML_ERR_INVALID_JSON, format!("the arguments are not valid JSON: {e}")))?;
        unsafe { *fingerprint_out = canon::call_fingerprint(tool, h.fingerprint) };
        Ok(())
    })
}

// ---- the boundary (internal) ---------------------------------------------------------------

struct Failure {
    code: ml_status,
    message: String,
    path: String,
}

impl Failure {
    fn new(code: ml_status, message: impl Into<String>) -> Failure {
        Failure { code, message: message.into(), path: String::new() }
    }
}

impl From<PolicyError> for Failure {
    fn from(e: PolicyError) -> Failure {
        Failure { code: ML_ERR_INVALID_POLICY, message: e.to_string(), path: e.path }
    }
}

/// Runs `f` behind `catch_unwind`, turning a failure into a status and an `ml_error`.
fn boundary(err_out: *mut *mut ml_error, f: impl FnOnce() -> Result<(), Failure>) -> ml_status {
    let result = catch_unwind(AssertUnwindSafe(f))
        .unwrap_or_else(|_| Err(Failure::new(ML_ERR_PANIC, "internal error (a panic was caught); please report it")));
    match result {
        Ok(()) => ML_OK,
        Err(failure) => {
            if !err_out.is_null() {
                let e = ml_error {
                    code: failure.code,
                    message: to_cstring(failure.message),
                    path: to_cstring(failure.path),
                };
                // SAFETY: checked non-NULL; the caller passes a writable `ml_error *`.
                unsafe { *err_out = Box::into_raw(Box::new(e)) };
            }
            failure.code
        }
    }
}

fn to_cstring(s: String) -> CString {
    CString::new(s).unwrap_or_else(|e| {
        let mut bytes = e.into_vec();
        bytes.retain(|&b| b != 0);
        CString::new(bytes).expect("NUL bytes removed")
    })
}

/// A (pointer, length) input as bytes: NULL only with length 0.
unsafe fn bytes_arg<'a>(ptr: *const u8, len: usize, what: &str) -> Result<&'a [u8], Failure> {
    if ptr.is_null() {
        if len == 0 {
            return Ok(&[]);
        }
        return Err(Failure::new(ML_ERR_NULL_ARG, format!("{what} is NULL but its length is {len}")));
    }
    // SAFETY: the caller promises `len` readable bytes at `ptr`.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

unsafe fn str_arg<'a>(ptr: *const u8, len: usize, what: &str) -> Result<&'a str, Failure> {
    let bytes = unsafe { bytes_arg(ptr, len, what)? };
    // Names are short and nearly always ASCII, which is tested a word at a time; the general
    // validation goes byte by byte on short inputs.
    if bytes.is_ascii() {
        // SAFETY: ASCII is valid UTF-8.
        return Ok(unsafe { std::str::from_utf8_unchecked(bytes) });
    }
    std::str::from_utf8(bytes).map_err(|e| {
        Failure::new(ML_ERR_INVALID_UTF8, format!("{what} is not valid UTF-8 (invalid byte at offset {})", e.valid_up_to()))
    })
}

unsafe fn session_ref<'a>(s: *const ml_session) -> Result<&'a ml_session, Failure> {
    // SAFETY: a non-NULL session comes from `ml_session_new` and is not yet freed.
    unsafe { s.as_ref() }.ok_or_else(|| Failure::new(ML_ERR_NULL_ARG, "the session is NULL"))
}

impl ml_session {
    fn lock(&self) -> MutexGuard<'_, Session> {
        // A panic caught while the lock was held poisons it; the session stays usable.
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn now_ms() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_millis() as u64
}

fn check_error(e: CheckError) -> Failure {
    match e {
        CheckError::InvalidJson(_) => Failure::new(ML_ERR_INVALID_JSON, e.to_string()),
        CheckError::EmptyToolName => Failure::new(ML_ERR_INVALID_ARG, e.to_string()),
        CheckError::InvalidUtf8(_) => Failure::new(ML_ERR_INVALID_UTF8, e.to_string()),
    }
}

fn record_error(e: RecordError) -> Failure {
    let code = match e {
        RecordError::UnknownCall(_) => ML_ERR_UNKNOWN_CALL,
        RecordError::AlreadyRecorded(_) => ML_ERR_ALREADY_RECORDED,
    };
    Failure::new(code, e.to_string())
}

fn owned_c(s: &str) -> (*mut c_char, usize) {
    if s.is_empty() {
        return (ptr::null_mut(), 0);
    }
    let c = to_cstring(s.to_owned());
    let len = c.as_bytes().len();
    (c.into_raw(), len)
}

fn write_verdict(out: &mut ml_verdict, v: &Verdict) {
    let (rule, rule_len) = owned_c(&v.rule);
    let (message, message_len) = owned_c(&v.message);
    out.action = v.action as i32;
    out.count = v.count;
    out.call_id = v.call_id;
    out.rule = rule;
    out.rule_len = rule_len;
    out.message = message;
    out.message_len = message_len;
    if out.size >= std::mem::offset_of!(ml_verdict, observed) + std::mem::size_of::<i32>() {
        out.observed = v.observed.map_or(ML_ACTION_ALLOW, |a| a as i32);
    }
}

/// Parses and compiles policy text (see `ml_session_new`).
/// Loads policy text and opens the sinks its sections configure (`[audit]`).
/// The policy's text compiled: what `ml_engine_new` hands out, and what `ml_session_new` makes its
/// session from.
unsafe fn compile(policy: *const u8, policy_len: usize) -> Result<ml_engine, Failure> {
    let text = unsafe { str_arg(policy, policy_len, "the policy")? };
    let host = Arc::new(microloop_host::Host::from_text(text)?);
    Ok(ml_engine { inner: Arc::clone(host.engine()), host })
}

impl ml_engine {
    /// A new session under this engine's policy, with the policy's sinks.
    fn session(&self) -> *mut ml_session {
        self.handle(Session::new(Arc::clone(&self.inner)))
    }

    /// `session` (of this engine's policy) as a handle, with the policy's sinks.
    fn handle(&self, session: Session) -> *mut ml_session {
        Box::into_raw(Box::new(ml_session { inner: Mutex::new(session), events: self.host.events() }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_constants_agree() {
        assert_eq!(ML_VERSION_NUMBER, ML_VERSION_MAJOR * 10000 + ML_VERSION_MINOR * 100 + ML_VERSION_PATCH);
        let cargo = env!("CARGO_PKG_VERSION");
        assert_eq!(cargo, format!("{ML_VERSION_MAJOR}.{ML_VERSION_MINOR}.{ML_VERSION_PATCH}"));
        let header = include_str!("../../../include/microloop.h");
        assert!(header.contains(&format!("#define ML_VERSION_STRING \"{cargo}\"")), "ML_VERSION_STRING in cbindgen.toml is stale");
    }
}
