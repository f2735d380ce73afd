//! The built `microloop-hook` driven as the agents run it: one process per event, the event's
//! JSON on stdin, the state in a directory shared by the processes of a session.
#![cfg(unix)]

use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const HOOK: &str = env!("CARGO_BIN_EXE_microloop-hook");

/// A scratch directory, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        static N: AtomicU32 = AtomicU32::new(0);
        let d = std::env::temp_dir().join(format!(
            "microloop-hook-it-{}-{}-{name}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::remove_dir_all(&d).ok();
        std::fs::create_dir_all(&d).unwrap();
        Scratch(d)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.0).ok();
    }
}

fn command(agent: &str, state: &Path) -> Command {
    let mut c = Command::new(HOOK);
    c.arg(agent)
        .env("MICROLOOP_STATE_DIR", state)
        .env_remove("MICROLOOP_POLICY")
        .current_dir(state)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

fn run_bytes(agent: &str, state: &Path, input: &[u8]) -> Output {
    let mut child = command(agent, state).spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    // Written from a thread: a hook that stops reading must not wedge the test.
    let writer = std::thread::spawn(move || {
        stdin.write_all(&input).ok();
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out
}

fn run(agent: &str, state: &Path, event: &Value) -> Output {
    run_bytes(agent, state, event.to_string().as_bytes())
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The state files of a directory.
fn state_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "state"))
        .collect();
    v.sort();
    v
}

/// The meta line of the one state file in `dir`, after checking the file is whole: the magic
/// line, a JSON line, and a snapshot the core loads.
fn meta(dir: &Path) -> Value {
    let files = state_files(dir);
    assert_eq!(files.len(), 1, "{files:?}");
    read_state(&files[0])
}

fn read_state(path: &Path) -> Value {
    let bytes = std::fs::read(path).unwrap();
    let rest = bytes.strip_prefix(b"microloop-hook 1\n".as_slice()).expect("the magic line");
    let nl = rest.iter().position(|&b| b == b'\n').expect("the meta line");
    let meta: Value = serde_json::from_slice(&rest[..nl]).expect("JSON meta");
    let engine = microloop_host::engine_for(microloop_core::Policy::default()).unwrap();
    let s = microloop_core::Session::load(engine, &rest[nl + 1..], true).expect("a snapshot the core loads");
    let st = s.stats();
    assert_eq!(meta["stats"]["calls"], st.calls, "the meta's stats are the snapshot's");
    assert_eq!(meta["stats"]["results"], st.results);
    meta
}

fn claude_pre(session: &str, id: &str, command: &str) -> Value {
    json!({"session_id": session, "transcript_path": "/t.jsonl", "cwd": "/", "hook_event_name": "PreToolUse",
           "tool_name": "Bash", "tool_input": {"command": command, "description": "run it"}, "tool_use_id": id})
}

fn claude_post(session: &str, id: &str, command: &str, i: usize) -> Value {
    if i.is_multiple_of(3) {
        json!({"session_id": session, "cwd": "/", "hook_event_name": "PostToolUseFailure", "tool_name": "Bash",
               "tool_input": {"command": command, "description": "run it"}, "tool_use_id": id, "error": format!("Exit code 1\nfailure {i}")})
    } else {
        json!({"session_id": session, "cwd": "/", "hook_event_name": "PostToolUse", "tool_name": "Bash",
               "tool_input": {"command": command, "description": "run it"}, "tool_use_id": id,
               "tool_response": {"stdout": format!("output {i}"), "stderr": "", "interrupted": false, "isImage": false}})
    }
}

/// 250 calls, each a pre-tool event then its result: 500 events.
fn events(session: &str) -> Vec<(Value, Value)> {
    (0..250)
        .map(|i| {
            let id = format!("toolu_{i:04}");
            let cmd = format!("cat part-{i}.txt");
            (claude_pre(session, &id, &cmd), claude_post(session, &id, &cmd, i))
        })
        .collect()
}

fn assert_quiet(out: &Output, what: &str) {
    assert!(out.status.success(), "{what}: {:?} {}", out.status, text(&out.stderr));
    assert!(out.stdout.is_empty(), "{what}: an allowed call gets no answer, got {}", text(&out.stdout));
    assert!(out.stderr.is_empty(), "{what}: {}", text(&out.stderr));
}

#[test]
fn eight_parallel_processes_of_one_session_lose_no_event() {
    let seq = Scratch::new("seq");
    for (pre, post) in events("s") {
        assert_quiet(&run("claude-code", &seq.0, &pre), "pre");
        assert_quiet(&run("claude-code", &seq.0, &post), "post");
    }
    let sequential = meta(&seq.0);

    let par = Scratch::new("par");
    let all = events("s");
    std::thread::scope(|scope| {
        for worker in 0..8 {
            let mine: Vec<&(Value, Value)> = all.iter().skip(worker).step_by(8).collect();
            let dir = &par.0;
            scope.spawn(move || {
                for (pre, post) in mine {
                    assert_quiet(&run("claude-code", dir, pre), "pre");
                    assert_quiet(&run("claude-code", dir, post), "post");
                }
            });
        }
    });
    let parallel = meta(&par.0);

    let expected = json!({"calls": 250, "blocked": 0, "errors": 84, "results": 250, "late": 0, "history_len": 250, "observed": 0});
    assert_eq!(sequential["stats"], expected);
    assert_eq!(parallel["stats"], sequential["stats"], "every call and result, exactly once");
    assert_eq!(parallel["pending"], json!([]), "no result left without its call");
    assert_eq!(parallel["answers"].as_array().unwrap().len(), 32, "the newest answers, bounded");
    assert!(std::fs::read_dir(&par.0).unwrap().flatten().all(|e| !e.file_name().to_string_lossy().contains(".tmp.")));
}

#[test]
fn a_hook_killed_at_any_moment_leaves_a_readable_state() {
    let dir = Scratch::new("kill");
    // A session with a full window first: its snapshot is the largest a write can be.
    for (pre, post) in events("k").into_iter().take(200) {
        run("claude-code", &dir.0, &pre);
        run("claude-code", &dir.0, &post);
    }
    let before = meta(&dir.0);
    assert_eq!(before["stats"]["calls"], 200);

    // How long one event takes, then kills spread over that time.
    let t = Instant::now();
    for i in 0..10 {
        run("claude-code", &dir.0, &claude_pre("k", &format!("warm{i}"), &format!("ls dir{i}")));
    }
    let span = t.elapsed() / 10;
    let mut killed = 0;
    for i in 0..120u32 {
        let ev = claude_pre("k", &format!("kill{i}"), &format!("ls kill{i}"));
        let mut child = command("claude-code", &dir.0).spawn().unwrap();
        child.stdin.take().unwrap().write_all(ev.to_string().as_bytes()).unwrap();
        std::thread::sleep(span * (i % 24) / 16);
        child.kill().ok();
        if child.wait().unwrap().signal() == Some(9) {
            killed += 1;
        }
        let m = meta(&dir.0);
        let calls = m["stats"]["calls"].as_u64().unwrap();
        assert!((210..=210 + 1 + u64::from(i)).contains(&calls), "{calls}");
    }
    assert!(killed >= 10, "only {killed} hooks were killed while running");
    // And the next hook reads it without a word.
    let out = run("claude-code", &dir.0, &claude_pre("k", "after", "ls after"));
    assert_quiet(&out, "after the kills");
}

#[test]
fn bad_input_fails_open_with_one_line_and_leaves_the_state_alone() {
    let dir = Scratch::new("bad");
    for (pre, post) in events("b").into_iter().take(5) {
        run("claude-code", &dir.0, &pre);
        run("claude-code", &dir.0, &post);
    }
    let file = state_files(&dir.0).pop().unwrap();
    let before = std::fs::read(&file).unwrap();

    let big = "x".repeat(10 << 20);
    let huge = json!({"session_id": "b", "hook_event_name": "PreToolUse", "tool_name": "Write", "tool_input": {"file_path": "a", "content": big}, "tool_use_id": "t"});
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty stdin", Vec::new(), "no event on stdin"),
        ("not JSON", b"{\"session_id\": \"b\", oops".to_vec(), "not JSON"),
        ("not an object", b"[1, 2]".to_vec(), "not a JSON object"),
        ("missing session_id", json!({"hook_event_name": "PreToolUse", "tool_name": "Bash", "tool_input": {}}).to_string().into_bytes(), "no session_id"),
        ("unknown event", json!({"session_id": "b", "hook_event_name": "Notification", "message": "hi"}).to_string().into_bytes(), "ignoring the `Notification` event"),
        ("10 MB tool_input", huge.to_string().into_bytes(), "larger than 8 MiB"),
    ];
    for (what, input, says) in cases {
        let out = run_bytes("claude-code", &dir.0, &input);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{what}: the call must run");
        assert!(out.stdout.is_empty(), "{what}: {}", text(&out.stdout));
        assert_eq!(err.lines().count(), 1, "{what}: one line, got {err:?}");
        assert!(err.starts_with("microloop-hook: ") && err.contains(says), "{what}: {err}");
        assert_eq!(std::fs::read(&file).unwrap(), before, "{what}: the state is untouched");
    }
    // An unknown agent, a state directory that cannot be made: the call runs too.
    let out = run_bytes("vim", &dir.0, b"{}");
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stderr).contains("unknown argument `vim`"));
    let mut c = command("claude-code", &dir.0);
    c.env("MICROLOOP_STATE_DIR", file.join("sub"));
    let mut child = c.spawn().unwrap();
    child.stdin.take().unwrap().write_all(claude_pre("b", "x", "ls").to_string().as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stderr).contains("the call runs unchecked"), "{}", text(&out.stderr));
    // A foreign state file is reported and replaced.
    std::fs::write(&file, b"not a state file").unwrap();
    let out = run("claude-code", &dir.0, &claude_pre("b", "y", "ls y"));
    assert!(text(&out.stderr).contains("starting a fresh history"));
    assert_eq!(meta(&dir.0)["stats"]["calls"], 1);
}

/// Runs a failing command `n` times through an agent's events until it is denied; returns the
/// attempt it was denied at and that answer.
fn loop_until_denied(
    agent: &str,
    dir: &Path,
    n: usize,
    pre: impl Fn(usize) -> Value,
    post: impl Fn(usize) -> Value,
    denied: impl Fn(&Output) -> bool,
) -> Option<(usize, Output)> {
    for i in 1..=n {
        let out = run(agent, dir, &pre(i));
        assert!(out.status.code().is_some(), "the hook ended by a signal: {:?}", out.status);
        if denied(&out) {
            return Some((i, out));
        }
        let p = run(agent, dir, &post(i));
        assert!(p.status.success(), "{}", text(&p.stderr));
    }
    None
}

fn json_out(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out.stdout)))
}

#[test]
fn claude_code_denies_in_its_format_with_a_reason_the_model_can_act_on() {
    let dir = Scratch::new("claude");
    let cmd = "npm install -D @vitest/coverage-v8";
    let err = "npm ERR! code ERESOLVE\nnpm ERR! unable to resolve dependency tree";
    let (at, out) = loop_until_denied(
        "claude-code",
        &dir.0,
        6,
        |i| claude_pre("c", &format!("toolu_{i}"), cmd),
        |i| json!({"session_id": "c", "hook_event_name": "PostToolUseFailure", "tool_name": "Bash",
                   "tool_input": {"command": cmd, "description": "run it"}, "tool_use_id": format!("toolu_{i}"), "error": err}),
        |o| !o.stdout.is_empty(),
    )
    .expect("denied");
    assert!(at <= 3, "denied at attempt {at}");
    assert_eq!(out.status.code(), Some(0));
    let v = json_out(&out);
    assert_eq!(v["hookSpecificOutput"]["hookEventName"], "PreToolUse");
    assert_eq!(v["hookSpecificOutput"]["permissionDecision"], "deny");
    let reason = v["hookSpecificOutput"]["permissionDecisionReason"].as_str().unwrap();
    for part in ["automatic check, not the user", cmd, "npm ERR! code ERESOLVE", "another way"] {
        assert!(reason.contains(part), "{part:?} missing from {reason}");
    }
    // The log says what was blocked.
    let m = meta(&dir.0);
    let log = m["log"].as_array().unwrap();
    let blocked: Vec<&Value> = log.iter().filter(|e| e["action"] == "block").collect();
    assert_eq!(blocked.len(), 1, "{log:?}");
    assert_eq!(blocked[0]["reason"], reason);
    assert!(log.iter().filter(|e| e["action"] == "warn").all(|e| !e["reason"].as_str().unwrap().contains("not run")), "a warned call ran");
    // A subagent of the session keeps its own history: the same command runs there.
    let mut sub = claude_pre("c", "toolu_sub", cmd);
    sub["agent_id"] = json!("agent-7");
    sub["agent_type"] = json!("general-purpose");
    assert_quiet(&run("claude-code", &dir.0, &sub), "subagent");
    assert_eq!(state_files(&dir.0).len(), 2);
    // The end of the session deletes its state.
    let end = run("claude-code", &dir.0, &json!({"session_id": "c", "hook_event_name": "SessionEnd", "reason": "exit"}));
    assert_quiet(&end, "end");
    assert_eq!(state_files(&dir.0).len(), 1);
}

#[test]
fn claude_code_halts_the_agent_that_keeps_trying_blocked_calls() {
    let dir = Scratch::new("halt");
    let mut halted = None;
    for i in 1..=20 {
        let out = run("claude-code", &dir.0, &claude_pre("h", &format!("t{i}"), "make test"));
        if !out.stdout.is_empty() && json_out(&out).get("continue") == Some(&json!(false)) {
            halted = Some(json_out(&out));
            break;
        }
        if out.stdout.is_empty() {
            run("claude-code", &dir.0, &json!({"session_id": "h", "hook_event_name": "PostToolUseFailure", "tool_name": "Bash",
                "tool_input": {"command": "make test", "description": "run it"}, "tool_use_id": format!("t{i}"), "error": "Error 2"}));
        }
    }
    let v = halted.expect("halted");
    assert_eq!(v["hookSpecificOutput"]["permissionDecision"], "deny");
    assert!(v["stopReason"].as_str().unwrap().contains("stopped"));
}

#[test]
fn codex_denies_with_exit_2_and_the_reason_on_stderr() {
    let dir = Scratch::new("codex");
    let pre = |i: usize| {
        json!({"session_id": "019a-th", "turn_id": "1", "transcript_path": null, "cwd": "/", "hook_event_name": "PreToolUse",
               "model": "gpt-5", "permission_mode": "bypassPermissions", "tool_name": "Bash",
               "tool_input": {"command": "cargo test"}, "tool_use_id": format!("call_{i}")})
    };
    let post = |i: usize| {
        json!({"session_id": "019a-th", "turn_id": "1", "transcript_path": null, "cwd": "/", "hook_event_name": "PostToolUse",
               "model": "gpt-5", "permission_mode": "bypassPermissions", "tool_name": "Bash",
               "tool_input": {"command": "cargo test"}, "tool_use_id": format!("call_{i}"),
               "tool_response": format!("Chunk ID: {i:06x}\nWall time: 0.{i}0 seconds\nProcess exited with code 101\nOriginal token count: 9\nOutput:\nerror[E0425]: cannot find value `x`\n")})
    };
    let (at, out) = loop_until_denied("codex", &dir.0, 6, pre, post, |o| o.status.code() == Some(2)).expect("denied");
    assert!(at <= 3, "{at}");
    assert!(out.stdout.is_empty(), "Codex takes no JSON with exit 2");
    let reason = text(&out.stderr);
    assert!(reason.contains("not the user") && reason.contains("cargo test") && reason.contains("cannot find value"), "{reason}");
}

#[test]
fn gemini_recorded_events_are_checked_and_answered_in_its_format() {
    let dir = Scratch::new("gemini");
    let base = |name: &str| {
        json!({"session_id": "6f1c2a", "transcript_path": "/h/.gemini/tmp/chats/session.json", "cwd": "/",
               "hook_event_name": name, "timestamp": "2026-01-01T00:00:00.000Z", "tool_name": "replace",
               "tool_input": {"file_path": "/w/a.py", "old_string": "x = 1", "new_string": "x = 2"}})
    };
    let pre = |_| base("BeforeTool");
    let post = |_| {
        let mut v = base("AfterTool");
        v["tool_response"] = json!({"llmContent": "", "returnDisplay": "", "error": {"message": "Failed to edit, 0 occurrences found for old_string"}});
        v
    };
    let (at, out) = loop_until_denied("gemini", &dir.0, 6, pre, post, |o| !o.stdout.is_empty()).expect("denied");
    assert!(at <= 3, "{at}");
    let v = json_out(&out);
    assert_eq!(v["decision"], "deny");
    assert!(v["reason"].as_str().unwrap().contains("0 occurrences found"), "{v}");
    assert_quiet(&run("gemini", &dir.0, &json!({"session_id": "6f1c2a", "hook_event_name": "SessionEnd", "reason": "exit", "cwd": "/"})), "end");
    assert!(state_files(&dir.0).is_empty());
}

#[test]
fn cursor_documented_events_are_checked_and_answered_in_its_format() {
    let dir = Scratch::new("cursor");
    let common = |name: &str| {
        json!({"conversation_id": "conv-123", "generation_id": "gen-456", "hook_event_name": name,
               "workspace_roots": ["/"], "model": "gpt-4", "cursor_version": "2.0.77"})
    };
    let pre = |_| {
        let mut v = common("beforeShellExecution");
        v["command"] = json!("pytest tests/test_login.py");
        v["cwd"] = json!("/");
        v
    };
    let post = |_| {
        let mut v = common("afterShellExecution");
        v["command"] = json!("pytest tests/test_login.py");
        v["output"] = json!("FAILED tests/test_login.py::test_login - AssertionError");
        v["duration"] = json!(150);
        v
    };
    let (at, out) = loop_until_denied("cursor", &dir.0, 6, pre, post, |o| !o.stdout.is_empty()).expect("denied");
    assert!(at <= 3, "{at}");
    let v = json_out(&out);
    assert_eq!(v["permission"], "deny");
    assert!(v["agent_message"].as_str().unwrap().contains("AssertionError"), "{v}");
    assert!(v["user_message"].as_str().unwrap().contains("MicroLoop"));
    // MCP calls, their input as JSON text; `stop` (the end of a turn) keeps the history.
    let mut mcp = common("beforeMCPExecution");
    mcp["tool_name"] = json!("database_query");
    mcp["tool_input"] = json!("{\"query\": \"SELECT 1\"}");
    assert_quiet(&run("cursor", &dir.0, &mcp), "mcp");
    let stop = run("cursor", &dir.0, &common("stop"));
    assert!(stop.status.success() && stop.stdout.is_empty());
    assert_eq!(state_files(&dir.0).len(), 1);
    assert_quiet(&run("cursor", &dir.0, &common("sessionEnd")), "end");
    assert!(state_files(&dir.0).is_empty());
}

#[test]
fn cline_documented_events_are_checked_and_answered_in_its_format() {
    let dir = Scratch::new("cline");
    let base = |name: &str| {
        json!({"clineVersion": "3.36.0", "hookName": name, "timestamp": "1735689600000", "taskId": "task-1",
               "workspaceRoots": ["/"], "userId": "u1"})
    };
    let params = json!({"command": "npm run build", "requires_approval": "false"});
    let pre = |_| {
        let mut v = base("PreToolUse");
        v["preToolUse"] = json!({"toolName": "execute_command", "parameters": params});
        v
    };
    let post = |_| {
        let mut v = base("PostToolUse");
        v["postToolUse"] = json!({"toolName": "execute_command", "parameters": params,
            "result": "Command executed.\nOutput:\nsrc/a.ts(3,1): error TS2304: Cannot find name 'foo'.", "success": false, "executionTimeMs": 812});
        v
    };
    // Every answer is JSON; allowed calls say cancel: false.
    let first = run("cline", &dir.0, &pre(0));
    assert_eq!(json_out(&first), json!({"cancel": false}));
    run("cline", &dir.0, &post(0));
    let (at, out) = loop_until_denied("cline", &dir.0, 6, pre, post, |o| json_out(o)["cancel"] == true).expect("denied");
    assert!(at <= 2, "{at}");
    let v = json_out(&out);
    assert!(v["errorMessage"].as_str().unwrap().contains("Cannot find name 'foo'"), "{v}");
    // Bad input still answers JSON.
    let bad = run_bytes("cline", &dir.0, b"");
    assert_eq!(json_out(&bad), json!({"cancel": false}));
    assert!(text(&bad.stderr).contains("no event on stdin"));
    assert_eq!(json_out(&run("cline", &dir.0, &base("TaskCancel"))), json!({"cancel": false}));
    assert!(state_files(&dir.0).is_empty());
}

#[test]
fn old_sessions_are_cleaned_up_when_a_new_one_starts() {
    let dir = Scratch::new("clean");
    run("claude-code", &dir.0, &claude_pre("old", "t", "ls"));
    let old = state_files(&dir.0).pop().unwrap();
    let f = std::fs::File::options().write(true).open(&old).unwrap();
    f.set_modified(std::time::SystemTime::now() - Duration::from_secs(8 * 24 * 3600)).unwrap();
    drop(f);
    run("claude-code", &dir.0, &claude_pre("new", "t", "ls"));
    let left = state_files(&dir.0);
    assert_eq!(left.len(), 1);
    assert_ne!(left[0], old);
}

#[test]
fn a_reader_that_goes_away_is_no_panic() {
    // `microloop-hook --help | grep -q usage`: the pipe's reader may leave before the hook writes.
    for _ in 0..5 {
        let mut child = Command::new(HOOK)
            .arg("--help")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{:?}: {}", out.status, text(&out.stderr));
        assert!(!text(&out.stderr).contains("panicked"), "{}", text(&out.stderr));
    }
}
