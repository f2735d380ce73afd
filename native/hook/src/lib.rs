//! `microloop-hook AGENT`: MicroLoop as a coding agent's pre-tool hook.
//!
//! The agent runs it once per event with the event's JSON on stdin. A tool call about to run is
//! checked against the session's history (kept in a state file between processes); a call that
//! must not run is denied in the agent's own format, with a reason the model reads. A call that
//! may run gets no answer at all. A finished call's result is recorded against it; the end of a
//! session deletes its state.
//!
//! Whatever goes wrong inside the hook, the agent goes on: the call runs unchecked and one line
//! on stderr says why (exit status 0, which no agent takes as a deny).

mod agent;
mod state;

use std::io::{self, Read, Write};
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use microloop_core::policy::ToolPolicy;
use microloop_core::{Action, Session};
use microloop_host::{Clock, SystemClock};
use serde_json::{json, Value};

use agent::{Agent, Event};
use state::{Locked, Meta};

const USAGE: &str = "\
microloop-hook: MicroLoop as a coding agent's pre-tool hook

usage: microloop-hook AGENT [--policy P] [--observe]
  AGENT          claude-code | codex | gemini | cursor | cline
  --policy P     a preset name or a .toml/.json file (MICROLOOP_POLICY; default: a .microloop.toml
                 found upward from the event's cwd, else balanced)
  --observe      shadow mode whatever the policy's mode says (below)

Reads one hook event as JSON on stdin and answers in the agent's format. State lives in
$MICROLOOP_STATE_DIR, else $XDG_STATE_HOME/microloop/hooks, else ~/.local/state/microloop/hooks.
`microloop hooks install AGENT` registers it.

Under a policy with mode = \"observe\" (shadow mode) nothing is ever denied: every call runs and
its result is recorded; every verdict (the would-be one) and result is appended to
$MICROLOOP_OBSERVE_LOG, else observe.jsonl in the state directory, a log `microloop replay` reads,
and counted in the state file's stats (`observed`).";

/// Events larger than this are not read: the call runs unchecked.
const MAX_EVENT_BYTES: u64 = 8 << 20;

/// What the hook does with the agent: what to print and how to exit.
struct Answer {
    stdout: Option<String>,
    stderr: Option<String>,
    code: u8,
}

impl Answer {
    fn none() -> Answer {
        Answer { stdout: None, stderr: None, code: 0 }
    }
    /// The call goes ahead unchecked; `why` goes to stderr.
    fn fail_open(why: impl std::fmt::Display) -> Answer {
        Answer { stdout: None, stderr: Some(format!("microloop-hook: {why}; the call runs unchecked")), code: 0 }
    }
}

/// The command: `args` without the program's name; the answer is printed here.
pub fn main(args: &[String]) -> ExitCode {
    let mut answer = match panic::catch_unwind(AssertUnwindSafe(|| run(args))) {
        Ok(a) => a,
        Err(_) => Answer::fail_open("internal error"),
    };
    if answer.stdout.is_none() && answer.code == 0 && args.iter().any(|a| a == "cline") {
        // Cline reads a JSON answer from every hook run, even one that failed open.
        answer.stdout = Some(json!({"cancel": false}).to_string());
    }
    // A reader that went away (`microloop-hook --help | head -1`) is no reason to panic.
    if let Some(out) = answer.stdout {
        let _ = writeln!(io::stdout().lock(), "{out}");
    }
    if let Some(err) = answer.stderr {
        let _ = writeln!(io::stderr().lock(), "{err}");
    }
    ExitCode::from(answer.code)
}

fn run(args: &[String]) -> Answer {
    let env = |k: &str| std::env::var(k).ok();
    let mut agent = None;
    let mut policy = env("MICROLOOP_POLICY").filter(|p| !p.is_empty());
    let mut observe = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "-h" | "--help" => return Answer { stdout: Some(USAGE.into()), stderr: None, code: 0 },
            "--observe" => observe = true,
            "--policy" => policy = it.next().cloned(),
            s if s.starts_with("--policy=") => policy = Some(s["--policy=".len()..].to_owned()),
            s => match Agent::from_name(s) {
                Some(a) if agent.is_none() => agent = Some(a),
                _ => return Answer::fail_open(format_args!("unknown argument `{s}` (see --help)")),
            },
        }
    }
    let Some(agent) = agent else {
        return Answer::fail_open("no agent named (claude-code, codex, gemini, cursor or cline)");
    };

    let mut input = Vec::new();
    if let Err(e) = io::stdin().take(MAX_EVENT_BYTES + 1).read_to_end(&mut input) {
        return Answer::fail_open(format_args!("cannot read the event: {e}"));
    }
    if input.len() as u64 > MAX_EVENT_BYTES {
        // Drain the rest so the agent's write does not fail, then let the call go.
        io::copy(&mut io::stdin(), &mut io::sink()).ok();
        return Answer::fail_open(format_args!("the event is larger than {} MiB", MAX_EVENT_BYTES >> 20));
    }
    if input.iter().all(u8::is_ascii_whitespace) {
        return Answer::fail_open("no event on stdin");
    }
    let value: Value = match serde_json::from_slice(&input) {
        Ok(v) => v,
        Err(e) => return Answer::fail_open(format_args!("the event is not JSON ({e})")),
    };
    let event = match agent.parse(&value) {
        Ok(e) => e,
        Err(why) => return Answer::fail_open(why),
    };
    let Some(dir) = state::state_dir(env) else {
        return Answer::fail_open("no state directory: set HOME, XDG_STATE_HOME or MICROLOOP_STATE_DIR");
    };
    match handle(agent, event, &dir, Spec { policy: policy.as_deref(), observe }, &SystemClock) {
        Ok(a) => a,
        Err(why) => Answer::fail_open(why),
    }
}

/// The policy asked for: a spec (see `--policy`), and `--observe`.
#[derive(Clone, Copy, Default)]
struct Spec<'a> {
    policy: Option<&'a str>,
    observe: bool,
}

fn handle(agent: Agent, event: Event, dir: &Path, spec: Spec<'_>, clock: &dyn Clock) -> Result<Answer, String> {
    let (session, cwd) = match &event {
        Event::Pre { session, cwd, .. } | Event::Post { session, cwd, .. } => (session.clone(), cwd.clone()),
        Event::End { session } => {
            let locked = Locked::open(state::state_file(dir, agent.name(), session)).map_err(|e| format!("state: {e}"))?;
            locked.remove().map_err(|e| format!("cannot delete the session's state: {e}"))?;
            return Ok(Answer::none());
        }
        Event::Other(name) => {
            return Ok(Answer { stderr: Some(format!("microloop-hook: ignoring the `{name}` event")), ..Answer::none() });
        }
    };
    let host = engine(agent, spec, cwd.as_deref().map(Path::new))?;
    let engine = host.engine().clone();
    let path = state::state_file(dir, agent.name(), &session);
    let locked = Locked::open(path).map_err(|e| format!("cannot open the session's state in {}: {e}", dir.display()))?;
    let mut notes = Vec::new();
    let (mut meta, mut s) = match locked.read() {
        Ok(Some((meta, bytes))) => match Session::load(engine.clone(), &bytes, true) {
            Ok(s) => (meta, s),
            Err(e) => {
                notes.push(format!("microloop-hook: the state file {} is unusable ({e}); starting a fresh history", locked.path().display()));
                (Meta::default(), Session::new(engine))
            }
        },
        Ok(None) => {
            state::clean_old(dir, state::MAX_AGE);
            (Meta::default(), Session::new(engine))
        }
        Err(why) => {
            notes.push(format!("microloop-hook: the state file {} is unusable ({why}); starting a fresh history", locked.path().display()));
            (Meta::default(), Session::new(engine))
        }
    };

    let observe = s.engine().policy.observe;
    let mut answer = Answer::none();
    match event {
        Event::Pre { tool, input, id, .. } => {
            let args = serde_json::to_vec(&input).map_err(|e| e.to_string())?;
            let v = s.check(&tool, &args, clock.now_ms()).map_err(|e| format!("cannot check `{tool}`: {e}"))?;
            if let Some(events) = host.events_for(&session) {
                events.emit(&s, &tool, &args, &v, SystemClock.now_ms());
            }
            if observe {
                // Shadow mode: the verdict (the would-be one) is logged and counted; the call runs.
                let line = microloop_host::observe::check_line(&session, &v.call_id.to_string(), clock.now_ms(), &tool, &args, &v);
                notes.extend(observe_log(dir, &line).err());
                if v.observed.is_some() {
                    let n = meta.stats.get("observed").and_then(Value::as_u64).unwrap_or(0);
                    meta.stats["observed"] = json!(n + 1);
                }
            }
            if v.action.runs() {
                state::add_pending(&mut meta, pending_key(&tool, &args, id.as_deref()), v.call_id);
            }
            let call = || format!("`{tool}` {}", agent::excerpt(&String::from_utf8_lossy(&args), state::ANSWER_BYTES));
            let log = |reason: &str, call: String| {
                json!({"at_ms": clock.now_ms(), "tool": tool, "call": call, "action": v.action.as_str(), "rule": v.rule, "count": v.count, "reason": reason})
            };
            let (stdout, code, stderr) = if !v.action.runs() {
                let reason = agent::reason(&v, &call(), state::answer(&meta, &call_key(&tool, &args)));
                state::add_log(&mut meta, log(&reason, call()));
                let (out, code) = agent.answer(&v, &reason);
                (out, code, (code == 2).then_some(reason))
            } else {
                if v.action == Action::Warn {
                    // The call runs (no answer: that would widen nothing, but say nothing either).
                    state::add_log(&mut meta, log(&v.message, call()));
                }
                let (out, code) = agent.answer(&v, "");
                (out, code, None)
            };
            answer = Answer { stdout, stderr, code: code as u8 };
        }
        Event::Post { tool, input, id, output, error, .. } => {
            let args = serde_json::to_vec(&input).map_err(|e| e.to_string())?;
            if let Some(call_id) = state::take_pending(&mut meta, &pending_key(&tool, &args, id.as_deref())) {
                // A call recorded twice (a retried event) is not worth a line: the first counts.
                s.record(call_id, output.as_bytes(), error).ok();
                if observe {
                    let line = microloop_host::observe::record_line(&session, &call_id.to_string(), output.as_bytes(), error);
                    notes.extend(observe_log(dir, &line).err());
                }
            }
            let quoted = agent::excerpt(&output, state::ANSWER_BYTES);
            state::set_answer(&mut meta, call_key(&tool, &args), if error { format!("error: {quoted}") } else { quoted });
        }
        Event::End { .. } | Event::Other(_) => unreachable!("handled above"),
    }
    let st = s.stats();
    // Observe counts are the state file's own: a snapshot does not carry them.
    let observed = meta.stats.get("observed").and_then(Value::as_u64).unwrap_or(0);
    meta.stats = json!({"calls": st.calls, "blocked": st.blocked, "errors": st.errors, "results": st.results, "late": st.late,
        "history_len": st.history_len, "observed": observed});
    locked.write(agent.name(), &session, &meta, &s.save()).map_err(|e| format!("cannot save the session's state: {e}"))?;
    if !notes.is_empty() {
        notes.extend(answer.stderr.take());
        answer.stderr = Some(notes.join("\n"));
    }
    Ok(answer)
}

/// Appends one line to the observe log: `$MICROLOOP_OBSERVE_LOG`, else `observe.jsonl` in the state
/// directory. One `write` of a whole line, in append mode, so sessions writing at once do not mix.
fn observe_log(dir: &Path, line: &Value) -> Result<(), String> {
    let path = std::env::var_os(microloop_host::observe::ENV).filter(|p| !p.is_empty()).map(PathBuf::from).unwrap_or_else(|| dir.join("observe.jsonl"));
    let mut text = line.to_string();
    text.push('\n');
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|e| format!("microloop-hook: cannot write the observe log {}: {e}", path.display()))
}

/// How a result finds its call: the agent's call id (hashed when long), or for agents without
/// one the call itself.
fn pending_key(tool: &str, args: &[u8], id: Option<&str>) -> String {
    match id {
        Some(id) if id.len() <= 128 => format!("id:{id}"),
        Some(id) => format!("idh:{:016x}", xxhash_rust::xxh3::xxh3_64(id.as_bytes())),
        None => format!("call:{}", call_key(tool, args)),
    }
}

/// A call's fingerprint: its tool (cut when long) and a hash of its arguments.
fn call_key(tool: &str, args: &[u8]) -> String {
    format!("{}:{:016x}", agent::excerpt(tool, 64), xxhash_rust::xxh3::xxh3_64(args))
}

/// The policy, with the agent's built-in tools' effects added where the policy says none, and the
/// sinks its sections configure (`[audit]`).
fn engine(agent: Agent, spec: Spec<'_>, cwd: Option<&Path>) -> Result<microloop_host::Host, String> {
    let (text, file) = microloop_host::load_text(spec.policy, cwd).map_err(|e| format!("policy: {e}"))?;
    let text = text.unwrap_or_default();
    let in_file = file.map(|f| format!("{}: ", f.display())).unwrap_or_default();
    let (mut policy, sections) = microloop_host::parse_host_text(&text).map_err(|e| format!("policy: {in_file}{e}"))?;
    policy.observe |= spec.observe;
    let (reads, writes) = agent.builtin_effects();
    let tagged = reads.iter().map(|t| (t, "read")).chain(writes.iter().map(|t| (t, "write")));
    for (tool, effect) in tagged {
        if policy.resolve(tool).effect.is_none() {
            let entry: ToolPolicy = serde_json::from_value(json!({"name": tool, "effect": effect})).map_err(|e| e.to_string())?;
            policy.tools.push(entry);
        }
    }
    microloop_host::Host::new(policy, sections, text.as_bytes()).map_err(|e| format!("policy: {in_file}{e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use microloop_host::FixedClock;

    fn scratch(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("microloop-hook-main-{}-{name}", std::process::id()));
        std::fs::remove_dir_all(&d).ok();
        d
    }

    fn event(agent: Agent, v: Value) -> Event {
        agent.parse(&v).unwrap()
    }

    #[test]
    fn a_failing_command_is_denied_on_its_third_identical_run_and_then_the_state_goes() {
        let dir = scratch("claude");
        let clock = FixedClock::new(1_000);
        let mut denied_at = None;
        for i in 1..=5 {
            let id = format!("toolu_{i}");
            let pre = json!({"session_id":"s","hook_event_name":"PreToolUse","tool_name":"Bash","tool_input":{"command":"make test"},"tool_use_id":id});
            let a = handle(Agent::ClaudeCode, event(Agent::ClaudeCode, pre), &dir, Spec::default(), &clock).unwrap();
            if let Some(out) = a.stdout {
                let v: Value = serde_json::from_str(&out).unwrap();
                assert_eq!(v["hookSpecificOutput"]["permissionDecision"], "deny");
                denied_at.get_or_insert(i);
                continue;
            }
            let post = json!({"session_id":"s","hook_event_name":"PostToolUseFailure","tool_name":"Bash","tool_input":{"command":"make test"},"tool_use_id":id,"error":"make: *** [test] Error 2"});
            handle(Agent::ClaudeCode, event(Agent::ClaudeCode, post), &dir, Spec::default(), &clock).unwrap();
        }
        assert!(denied_at.is_some_and(|i| i <= 3), "{denied_at:?}");
        let path = state::state_file(&dir, "claude-code", "s");
        assert!(path.exists());
        handle(Agent::ClaudeCode, event(Agent::ClaudeCode, json!({"session_id":"s","hook_event_name":"SessionEnd"})), &dir, Spec::default(), &clock).unwrap();
        assert!(!path.exists());
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn in_observe_mode_nothing_is_denied_and_every_verdict_and_result_is_logged() {
        for (name, spec) in [("observe-policy", Spec { policy: Some(r#"{"mode":"observe"}"#), observe: false }),
                             ("observe-flag", Spec { policy: Some("balanced"), observe: true })] {
            let dir = scratch(name);
            let clock = FixedClock::new(1_000);
            for i in 1..=5 {
                let id = format!("toolu_{i}");
                let pre = json!({"session_id":"s","hook_event_name":"PreToolUse","tool_name":"Bash","tool_input":{"command":"make test"},"tool_use_id":id});
                let a = handle(Agent::ClaudeCode, event(Agent::ClaudeCode, pre), &dir, spec, &clock).unwrap();
                assert_eq!((a.stdout, a.code), (None, 0), "call {i} must run");
                let post = json!({"session_id":"s","hook_event_name":"PostToolUseFailure","tool_name":"Bash","tool_input":{"command":"make test"},"tool_use_id":id,"error":"make: *** [test] Error 2"});
                handle(Agent::ClaudeCode, event(Agent::ClaudeCode, post), &dir, spec, &clock).unwrap();
            }
            let log = std::fs::read_to_string(dir.join("observe.jsonl")).unwrap();
            let lines: Vec<Value> = log.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
            let checks: Vec<&str> = lines.iter().filter(|l| l["event"] == "check").map(|l| l["action"].as_str().unwrap()).collect();
            assert_eq!(checks.len(), 5);
            assert!(checks.iter().any(|a| *a == "block" || *a == "halt"), "{checks:?}");
            assert!(lines.iter().all(|l| l["microloop"] == "observe" && l["session"] == "s"));
            // Every call ran, the would-be-blocked ones too: each has its result, under its own id.
            let ids = |event: &str| lines.iter().filter(|l| l["event"] == event).map(|l| l["call"].as_str().unwrap().to_owned()).collect::<Vec<_>>();
            assert_eq!(ids("record"), ids("check"));
            assert_eq!(ids("check").iter().collect::<std::collections::HashSet<_>>().len(), 5);
            let (meta, _) = Locked::open(state::state_file(&dir, "claude-code", "s")).unwrap().read().unwrap().unwrap();
            assert_eq!(meta.stats["results"], 5);
            assert_eq!(meta.stats["observed"], checks.iter().filter(|a| **a != "allow").count());
            std::fs::remove_dir_all(&dir).ok();
        }
    }

    #[test]
    fn a_corrupt_state_file_is_reported_and_replaced() {
        let dir = scratch("corrupt");
        std::fs::create_dir_all(&dir).unwrap();
        let path = state::state_file(&dir, "gemini", "g");
        std::fs::write(&path, b"\xff\xfe not ours").unwrap();
        let pre = json!({"session_id":"g","hook_event_name":"BeforeTool","tool_name":"read_file","tool_input":{"path":"a"}});
        let a = handle(Agent::Gemini, event(Agent::Gemini, pre), &dir, Spec::default(), &FixedClock::new(0)).unwrap();
        assert!(a.stderr.unwrap().contains("starting a fresh history"));
        assert_eq!(a.stdout, None);
        assert!(std::fs::read(&path).unwrap().starts_with(b"microloop-hook 1\n"));
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn builtin_effects_fill_in_only_where_the_policy_is_silent() {
        let host = engine(Agent::ClaudeCode, Spec { policy: Some(r#"{"tools":[{"name":"Read","effect":"write"}]}"#), observe: false }, None).unwrap();
        let e = host.engine();
        assert_eq!(e.policy.resolve("Read").effect, Some(microloop_core::effect::Effect::Write));
        assert_eq!(e.policy.resolve("Grep").effect, Some(microloop_core::effect::Effect::Read));
        assert_eq!(e.policy.resolve("Bash").effect, None, "shell tools are judged by their command");
    }

    #[test]
    fn an_audit_section_logs_each_hook_decision_under_the_agents_session_id() {
        let dir = scratch("audit");
        std::fs::create_dir_all(&dir).unwrap();
        let key = microloop_audit::log::new_key_file(&dir.join("audit.key"), "example.com/hook").unwrap().verifier();
        let log = dir.join("audit.log");
        let policy = format!("[audit]\npath = {:?}\nkey_file = {:?}\n", log.to_str().unwrap(), dir.join("audit.key").to_str().unwrap());
        let clock = FixedClock::new(1_000);
        let mut denied = 0;
        for i in 1..=4 {
            let pre = json!({"session_id":"sess-42","hook_event_name":"PreToolUse","tool_name":"Bash","tool_input":{"command":"make test"},"tool_use_id":format!("t{i}")});
            let a = handle(Agent::ClaudeCode, event(Agent::ClaudeCode, pre), &dir, Spec { policy: Some(&policy), observe: false }, &clock).unwrap();
            denied += a.stdout.is_some_and(|o| o.contains("deny")) as u32;
            let post = json!({"session_id":"sess-42","hook_event_name":"PostToolUse","tool_name":"Bash","tool_input":{"command":"make test"},"tool_use_id":format!("t{i}"),"tool_response":{"stdout":"FAILED","exit_code":1}});
            handle(Agent::ClaudeCode, event(Agent::ClaudeCode, post), &dir, Spec { policy: Some(&policy), observe: false }, &clock).unwrap();
        }
        assert!(denied >= 1);
        // Four processes' worth of decisions, each closed with its own checkpoint: one log.
        let v = microloop_audit::verify::verify(&std::fs::read(&log).unwrap(), &key, None).unwrap();
        assert_eq!((v.records, v.checkpoints), (4, 4));
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(text.lines().filter(|l| l.starts_with("{\"seq\"")).all(|l| l.contains("\"session\":\"sess-42\"") && l.contains("\"tool\":\"Bash\"")));
        assert!(text.contains("\"action\":\"block\""));
        std::fs::remove_dir_all(&dir).ok();
    }
}
