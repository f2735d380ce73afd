//! Each agent's hook protocol: its events read into one [`Event`], a verdict written back as that
//! agent's answer. The formats are those of the agents' documentation (see
//! `docs/coding-agents.md`).

use microloop_core::{Action, Verdict};
use serde_json::{json, Value};

/// The agents whose hook protocol is spoken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Agent {
    ClaudeCode,
    Codex,
    Gemini,
    Cursor,
    Cline,
}

pub const AGENTS: &[(&str, Agent)] = &[
    ("claude-code", Agent::ClaudeCode),
    ("codex", Agent::Codex),
    ("gemini", Agent::Gemini),
    ("cursor", Agent::Cursor),
    ("cline", Agent::Cline),
];

/// A hook event, whatever agent sent it.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A tool call about to run.
    Pre { session: String, cwd: Option<String>, tool: String, input: Value, id: Option<String> },
    /// A tool call that ran: its output, and whether it failed.
    Post { session: String, cwd: Option<String>, tool: String, input: Value, id: Option<String>, output: String, error: bool },
    /// The agent's session ended: its history can go.
    End { session: String },
    /// An event the hook has nothing to do with (named, for the stderr line).
    Other(String),
}

/// Why an event could not be read.
pub type BadEvent = String;

fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_owned)
}

/// A tool's output as text: strings as they are, anything else as compact JSON.
fn output_text(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

impl Agent {
    pub fn from_name(name: &str) -> Option<Agent> {
        AGENTS.iter().find(|(n, _)| *n == name).map(|(_, a)| *a)
    }

    pub fn name(self) -> &'static str {
        AGENTS.iter().find(|(_, a)| *a == self).map(|(n, _)| *n).unwrap_or("?")
    }

    /// The tools of the agent whose effect its name does not tell (MicroLoop infers the rest,
    /// and shell tools by their command): read-only ones, then ones that write.
    pub fn builtin_effects(self) -> (&'static [&'static str], &'static [&'static str]) {
        match self {
            Agent::ClaudeCode => (
                &["Read", "Grep", "Glob", "LS", "WebFetch", "WebSearch", "NotebookRead", "BashOutput", "ToolSearch"],
                &["Edit", "MultiEdit", "Write", "NotebookEdit", "TodoWrite"],
            ),
            Agent::Codex => (&["view_image", "web_search"], &["apply_patch", "write_stdin"]),
            Agent::Gemini => (
                &["read_file", "read_many_files", "list_directory", "glob", "search_file_content", "google_web_search", "web_fetch"],
                &["write_file", "replace", "save_memory"],
            ),
            Agent::Cursor => (&["Read", "Grep", "Glob", "LS", "codebase_search", "read_file", "list_dir", "grep_search", "file_search"], &["Edit", "Write", "edit_file", "delete_file"]),
            Agent::Cline => (
                &["read_file", "list_files", "search_files", "list_code_definition_names", "browser_action"],
                &["write_to_file", "replace_in_file"],
            ),
        }
    }

    /// Reads one event of the agent's hook protocol.
    pub fn parse(self, v: &Value) -> Result<Event, BadEvent> {
        if !v.is_object() {
            return Err("the event is not a JSON object".into());
        }
        match self {
            Agent::ClaudeCode | Agent::Codex | Agent::Gemini => self.parse_common(v),
            Agent::Cursor => parse_cursor(v),
            Agent::Cline => parse_cline(v),
        }
    }

    /// Claude Code, Codex CLI and Gemini CLI share the shape: `session_id`, `hook_event_name`,
    /// `tool_name`, `tool_input` (and `tool_use_id`, except Gemini's).
    fn parse_common(self, v: &Value) -> Result<Event, BadEvent> {
        let name = text(v, "hook_event_name").ok_or("the event has no hook_event_name")?;
        let mut session = text(v, "session_id").ok_or("the event has no session_id")?;
        if let (Agent::ClaudeCode | Agent::Codex, Some(agent)) = (self, text(v, "agent_id")) {
            // A subagent has its own history.
            session = format!("{session}/{agent}");
        }
        let cwd = text(v, "cwd");
        let tool = || text(v, "tool_name").ok_or_else(|| format!("the {name} event has no tool_name"));
        let input = v.get("tool_input").cloned().unwrap_or(Value::Object(Default::default()));
        let id = text(v, "tool_use_id");
        match name.as_str() {
            "PreToolUse" | "BeforeTool" => Ok(Event::Pre { session, cwd, tool: tool()?, input, id }),
            "PostToolUse" | "AfterTool" | "PostToolUseFailure" => {
                let (output, error) = match (name.as_str(), self) {
                    ("PostToolUseFailure", _) => (output_text(v.get("error")), true),
                    (_, Agent::Gemini) => {
                        let r = v.get("tool_response");
                        let err = r.and_then(|r| r.get("error")).filter(|e| !e.is_null());
                        match err {
                            Some(e) => (output_text(Some(e)), true),
                            None => gemini_output(&output_text(r.and_then(|r| r.get("llmContent")).or(r))),
                        }
                    }
                    (_, Agent::Codex) => codex_response(v.get("tool_response")),
                    _ => claude_output(v.get("tool_response")),
                };
                Ok(Event::Post { session, cwd, tool: tool()?, input, id, output, error })
            }
            "SessionEnd" => Ok(Event::End { session }),
            other => Ok(Event::Other(other.to_owned())),
        }
    }

    /// The agent's answer to a verdict: what to print on stdout, and the exit status. A call that
    /// may run gets no answer at all: an `allow` would skip the user's own permission prompt.
    pub fn answer(self, v: &Verdict, reason: &str) -> (Option<String>, i32) {
        let (deny, halt) = match v.action {
            Action::Allow | Action::Warn => {
                // Cline reads an answer from every hook; not cancelling grants nothing.
                return (matches!(self, Agent::Cline).then(|| json!({"cancel": false}).to_string()), 0);
            }
            Action::Block => (true, false),
            Action::Halt => (true, true),
        };
        debug_assert!(deny);
        match self {
            Agent::ClaudeCode => {
                let mut out = json!({"hookSpecificOutput": {
                    "hookEventName": "PreToolUse",
                    "permissionDecision": "deny",
                    "permissionDecisionReason": reason,
                }});
                if halt {
                    out["continue"] = false.into();
                    out["stopReason"] = reason.into();
                }
                (Some(out.to_string()), 0)
            }
            // Codex takes a deny as exit 2 with the reason on stderr; it has no way to stop the
            // agent from a hook, so a halt is a deny with the final message.
            Agent::Codex => (None, 2),
            Agent::Gemini => {
                let mut out = json!({"decision": "deny", "reason": reason});
                if halt {
                    out["continue"] = false.into();
                    out["stopReason"] = reason.into();
                }
                (Some(out.to_string()), 0)
            }
            Agent::Cursor => (
                Some(json!({"permission": "deny", "agent_message": reason, "user_message": format!("MicroLoop blocked a repeated call ({})", v.rule)}).to_string()),
                0,
            ),
            Agent::Cline => (Some(json!({"cancel": true, "errorMessage": reason}).to_string()), 0),
        }
    }
}

/// What the model reads when a call is denied: who says so, what was repeated (`call`, the tool
/// and the start of its arguments), the answer it keeps getting (`answer`, when the hook saw
/// it), and what to do instead.
pub fn reason(v: &Verdict, call: &str, answer: Option<&str>) -> String {
    let tail = if v.action == Action::Halt {
        "The run is stopped: report what you found and what blocked you."
    } else {
        "This call was not run. This is not the user speaking and not a permission problem: keep working on the task another way (fix the cause, change the approach, or move on to the next step) without waiting for the user."
    };
    let mut out = format!("MicroLoop loop guard (an automatic check, not the user) [{}]: {}", v.rule, v.message.trim_end());
    out.push_str(&format!(" The repeated call: {call}."));
    // The core quotes the error itself for error loops.
    if let Some(a) = answer.filter(|_| !v.message.contains("The error was")) {
        out.push_str(&format!(" The answer it keeps getting: \"{a}\"."));
    }
    out.push(' ');
    out.push_str(tail);
    out
}

/// The start of a text on one line, at most `max` bytes (cut at a character boundary).
pub fn excerpt(text: &str, max: usize) -> String {
    let mut out = String::new();
    for c in text.trim().chars() {
        if out.len() + c.len_utf8() > max {
            out.push('…');
            break;
        }
        out.push(if c.is_control() { ' ' } else { c });
    }
    out
}

/// Claude Code's `tool_response`: Bash gives `{stdout, stderr, interrupted, ...}`; others vary.
fn claude_output(r: Option<&Value>) -> (String, bool) {
    match r {
        Some(Value::Object(m)) if m.contains_key("stdout") => {
            let stdout = output_text(m.get("stdout"));
            let stderr = output_text(m.get("stderr"));
            let interrupted = m.get("interrupted").and_then(Value::as_bool).unwrap_or(false);
            (if stderr.is_empty() { stdout } else { format!("{stdout}\n{stderr}") }, interrupted)
        }
        Some(Value::Object(m)) if m.get("is_error").and_then(Value::as_bool) == Some(true) => (output_text(r), true),
        other => (output_text(other), false),
    }
}

/// Codex's `tool_response`: the text the model reads (shell output with its header), or an
/// object with that text under `output` and maybe an `exit_code`.
fn codex_response(r: Option<&Value>) -> (String, bool) {
    match r {
        Some(Value::Object(m)) => {
            let text = m.get("output").or_else(|| m.get("stdout")).map(|o| output_text(Some(o)));
            let failed = m.get("exit_code").and_then(Value::as_i64).is_some_and(|c| c != 0);
            match text {
                Some(t) => {
                    let (out, error) = codex_output(&t);
                    (out, error || failed)
                }
                None => (output_text(r), failed),
            }
        }
        other => codex_output(&output_text(other)),
    }
}

/// Codex's shell output opens with lines that change on every call (`Chunk ID`, `Wall time`,
/// token counts): they are left out, and the exit code read from `Process exited with code N`.
fn codex_output(raw: &str) -> (String, bool) {
    let mut error = false;
    let mut kept = String::with_capacity(raw.len());
    let mut header = true;
    for line in raw.split_inclusive('\n') {
        if header {
            let l = line.trim_end();
            if l.starts_with("Chunk ID:") || l.starts_with("Wall time:") || l.starts_with("Original token count:") {
                continue;
            }
            if let Some(code) = l.strip_prefix("Process exited with code ") {
                error = code.trim() != "0";
                continue;
            }
            if l == "Output:" {
                header = false;
                continue;
            }
            header = false;
        }
        kept.push_str(line);
    }
    (kept, error)
}

/// Gemini CLI's shell output ends with lines that change on every run (`Process Group PGID: N`,
/// `Background PIDs: …`): they are left out, and the exit code read from `Exit Code: N`.
fn gemini_output(raw: &str) -> (String, bool) {
    let mut error = false;
    let mut kept = String::with_capacity(raw.len());
    for line in raw.split_inclusive('\n') {
        let l = line.trim_end();
        if l.starts_with("Process Group PGID:") || l.starts_with("Background PIDs:") {
            continue;
        }
        if let Some(code) = l.strip_prefix("Exit Code: ") {
            error = code.trim() != "0";
        }
        kept.push_str(line);
    }
    (kept, error)
}

/// Cursor: `conversation_id`, `hook_event_name`, and per event `tool_name`/`tool_input`,
/// `command` (shell) or the MCP tool's name and input.
fn parse_cursor(v: &Value) -> Result<Event, BadEvent> {
    let name = text(v, "hook_event_name").ok_or("the event has no hook_event_name")?;
    let session = text(v, "conversation_id").ok_or("the event has no conversation_id")?;
    let cwd = v.get("workspace_roots").and_then(|r| r.get(0)).and_then(Value::as_str).map(str::to_owned).or_else(|| text(v, "cwd"));
    let id = text(v, "tool_use_id").or_else(|| text(v, "tool_call_id"));
    let pre = matches!(name.as_str(), "preToolUse" | "beforeShellExecution" | "beforeMCPExecution");
    let post = matches!(name.as_str(), "postToolUse" | "afterShellExecution" | "afterMCPExecution" | "postToolUseFailure");
    if !pre && !post {
        return Ok(if name == "sessionEnd" {
            Event::End { session }
        } else {
            // `stop` ends one turn of the agent loop, not the conversation: the history stays.
            Event::Other(name)
        });
    }
    let (tool, input) = match name.as_str() {
        "beforeShellExecution" | "afterShellExecution" => {
            ("Shell".to_owned(), json!({"command": text(v, "command").ok_or("the shell event has no command")?}))
        }
        _ => {
            let input = match v.get("tool_input") {
                // MCP events may carry their input as a JSON text.
                Some(Value::String(s)) => serde_json::from_str(s).unwrap_or_else(|_| Value::String(s.clone())),
                Some(i) => i.clone(),
                None => Value::Object(Default::default()),
            };
            (text(v, "tool_name").ok_or_else(|| format!("the {name} event has no tool_name"))?, input)
        }
    };
    if pre {
        return Ok(Event::Pre { session, cwd, tool, input, id });
    }
    if name == "postToolUseFailure" {
        let output = output_text(v.get("error").or_else(|| v.get("error_message")));
        return Ok(Event::Post { session, cwd, tool, input, id, output, error: true });
    }
    let output = output_text(v.get("tool_output").or_else(|| v.get("output")).or_else(|| v.get("result_json")));
    Ok(Event::Post { session, cwd, tool, input, id, output, error: false })
}

/// Cline: `taskId`, `hookName`, and `preToolUse{toolName, parameters}` /
/// `postToolUse{toolName, parameters, result, success}`.
fn parse_cline(v: &Value) -> Result<Event, BadEvent> {
    let session = text(v, "taskId").ok_or("the event has no taskId")?;
    let cwd = v.get("workspaceRoots").and_then(|r| r.get(0)).and_then(Value::as_str).map(str::to_owned);
    let call = |key: &str| -> Result<(String, Value), BadEvent> {
        let c = &v[key];
        let tool = text(c, "toolName").ok_or_else(|| format!("{key} has no toolName"))?;
        Ok((tool, c.get("parameters").cloned().unwrap_or(Value::Object(Default::default()))))
    };
    if v.get("preToolUse").is_some_and(Value::is_object) {
        let (tool, input) = call("preToolUse")?;
        return Ok(Event::Pre { session, cwd, tool, input, id: None });
    }
    if v.get("postToolUse").is_some_and(Value::is_object) {
        let (tool, input) = call("postToolUse")?;
        let p = &v["postToolUse"];
        let error = p.get("success").and_then(Value::as_bool) == Some(false);
        return Ok(Event::Post { session, cwd, tool, input, id: None, output: output_text(p.get("result")), error });
    }
    let hook = text(v, "hookName");
    if v.get("taskCancel").is_some() || v.get("taskComplete").is_some() || matches!(hook.as_deref(), Some("TaskCancel" | "TaskComplete")) {
        return Ok(Event::End { session });
    }
    Ok(Event::Other(hook.unwrap_or_else(|| "an event without preToolUse or postToolUse".into())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    fn verdict(action: Action) -> Verdict {
        Verdict { action, rule: Cow::Borrowed("loop.identical"), message: "`Bash` ran 3 times with the same arguments.".into(), call_id: 0, count: 3, observed: None }
    }

    #[test]
    fn claude_code_events() {
        let pre = json!({"session_id":"s1","hook_event_name":"PreToolUse","tool_name":"Bash","tool_input":{"command":"make"},"tool_use_id":"toolu_1","cwd":"/w"});
        assert_eq!(
            Agent::ClaudeCode.parse(&pre).unwrap(),
            Event::Pre { session: "s1".into(), cwd: Some("/w".into()), tool: "Bash".into(), input: json!({"command":"make"}), id: Some("toolu_1".into()) }
        );
        let sub = json!({"session_id":"s1","agent_id":"a7","hook_event_name":"PreToolUse","tool_name":"Read","tool_input":{}});
        assert!(matches!(Agent::ClaudeCode.parse(&sub).unwrap(), Event::Pre { session, .. } if session == "s1/a7"));
        let post = json!({"session_id":"s1","hook_event_name":"PostToolUse","tool_name":"Bash","tool_input":{"command":"make"},"tool_use_id":"toolu_1","tool_response":{"stdout":"ok","stderr":"","interrupted":false}});
        assert!(matches!(Agent::ClaudeCode.parse(&post).unwrap(), Event::Post { output, error: false, .. } if output == "ok"));
        let fail = json!({"session_id":"s1","hook_event_name":"PostToolUseFailure","tool_name":"Bash","tool_input":{},"tool_use_id":"t","error":"Exit code 2"});
        assert!(matches!(Agent::ClaudeCode.parse(&fail).unwrap(), Event::Post { output, error: true, .. } if output == "Exit code 2"));
        assert_eq!(Agent::ClaudeCode.parse(&json!({"session_id":"s1","hook_event_name":"SessionEnd"})).unwrap(), Event::End { session: "s1".into() });
        assert!(Agent::ClaudeCode.parse(&json!({"hook_event_name":"PreToolUse","tool_name":"Bash"})).unwrap_err().contains("session_id"));
        assert!(Agent::ClaudeCode.parse(&json!([1])).is_err());
    }

    #[test]
    fn codex_output_loses_its_volatile_header_and_keeps_the_exit_code() {
        let a = "Chunk ID: e5a8fa\nWall time: 0.0012 seconds\nProcess exited with code 1\nOriginal token count: 32\nOutput:\nmake: *** No rule\n";
        let b = "Chunk ID: 77ab01\nWall time: 0.0450 seconds\nProcess exited with code 1\nOriginal token count: 32\nOutput:\nmake: *** No rule\n";
        assert_eq!(codex_output(a), ("make: *** No rule\n".into(), true));
        assert_eq!(codex_output(a), codex_output(b));
        assert!(!codex_output("Process exited with code 0\nOutput:\nfine\n").1);
        assert_eq!(codex_output("plain text\n"), ("plain text\n".into(), false));
    }

    fn block_reason() -> String {
        reason(&verdict(Action::Block), "`Bash` {\"command\":\"make\"}", Some("make: *** Error 2"))
    }

    #[test]
    fn the_reason_names_the_call_the_answer_and_who_speaks() {
        let r = block_reason();
        for part in ["automatic check, not the user", "[loop.identical]", "ran 3 times", "`Bash` {\"command\":\"make\"}", "\"make: *** Error 2\"", "another way"] {
            assert!(r.contains(part), "{part:?} missing from {r}");
        }
        let mut v = verdict(Action::Block);
        v.message = "Blocked: failed. The error was: \"E\".".into();
        assert!(!reason(&v, "c", Some("E")).contains("keeps getting"), "the core already quoted it");
        assert_eq!(excerpt("  a\nb  ", 10), "a b");
        assert_eq!(excerpt("ééé", 4), "éé…");
    }

    #[test]
    fn answers_never_allow_and_deny_in_each_dialect() {
        for (_, agent) in AGENTS {
            let (out, code) = agent.answer(&verdict(Action::Allow), "r");
            assert_eq!(code, 0);
            assert!(out.as_deref().is_none_or(|o| !o.contains("allow")), "{agent:?} {out:?}");
        }
        let (out, code) = Agent::ClaudeCode.answer(&verdict(Action::Block), &block_reason());
        let v: Value = serde_json::from_str(&out.unwrap()).unwrap();
        assert_eq!((code, v["hookSpecificOutput"]["permissionDecision"].as_str()), (0, Some("deny")));
        assert!(v["hookSpecificOutput"]["permissionDecisionReason"].as_str().unwrap().contains("not the user"));
        assert!(v.get("continue").is_none());
        let (out, _) = Agent::ClaudeCode.answer(&verdict(Action::Halt), &block_reason());
        assert_eq!(serde_json::from_str::<Value>(&out.unwrap()).unwrap()["continue"], false);
        assert_eq!(Agent::Codex.answer(&verdict(Action::Block), &block_reason()), (None, 2));
        let (out, _) = Agent::Gemini.answer(&verdict(Action::Block), &block_reason());
        assert_eq!(serde_json::from_str::<Value>(&out.unwrap()).unwrap()["decision"], "deny");
        let (out, _) = Agent::Cursor.answer(&verdict(Action::Block), &block_reason());
        assert_eq!(serde_json::from_str::<Value>(&out.unwrap()).unwrap()["permission"], "deny");
        let (out, _) = Agent::Cline.answer(&verdict(Action::Block), &block_reason());
        assert_eq!(serde_json::from_str::<Value>(&out.unwrap()).unwrap()["cancel"], true);
    }

    #[test]
    fn cursor_and_cline_events() {
        let shell = json!({"conversation_id":"c1","generation_id":"g","hook_event_name":"beforeShellExecution","command":"npm test","cwd":"/w"});
        assert!(matches!(Agent::Cursor.parse(&shell).unwrap(), Event::Pre { tool, input, .. } if tool == "Shell" && input["command"] == "npm test"));
        let fail = json!({"conversation_id":"c1","hook_event_name":"postToolUseFailure","tool_name":"Shell","tool_input":{"command":"npm test"},"error":"exit 1"});
        assert!(matches!(Agent::Cursor.parse(&fail).unwrap(), Event::Post { error: true, .. }));
        let pre = json!({"taskId":"t1","hookName":"PreToolUse","preToolUse":{"toolName":"execute_command","parameters":{"command":"ls"}}});
        assert!(matches!(Agent::Cline.parse(&pre).unwrap(), Event::Pre { session, tool, .. } if session == "t1" && tool == "execute_command"));
        let post = json!({"taskId":"t1","hookName":"PostToolUse","postToolUse":{"toolName":"execute_command","parameters":{"command":"ls"},"result":"a b","success":false}});
        assert!(matches!(Agent::Cline.parse(&post).unwrap(), Event::Post { error: true, output, .. } if output == "a b"));
        let mcp = json!({"conversation_id":"c1","hook_event_name":"beforeMCPExecution","tool_name":"db_query","tool_input":"{\"q\": 1}"});
        assert!(matches!(Agent::Cursor.parse(&mcp).unwrap(), Event::Pre { input, .. } if input == json!({"q": 1})));
        assert!(matches!(Agent::Cursor.parse(&json!({"conversation_id":"c1","hook_event_name":"stop"})).unwrap(), Event::Other(_)));
        assert!(matches!(Agent::Cline.parse(&json!({"taskId":"t1","hookName":"TaskCancel"})).unwrap(), Event::End { .. }));
    }

    #[test]
    fn codex_events_name_the_shell_bash_and_subagents_have_their_own_history() {
        let pre = json!({"session_id":"th","turn_id":"1","hook_event_name":"PreToolUse","tool_name":"Bash","tool_input":{"command":"make"},"tool_use_id":"call_1","cwd":"/w","model":"m","permission_mode":"default","transcript_path":null});
        assert!(matches!(Agent::Codex.parse(&pre).unwrap(), Event::Pre { tool, id: Some(id), .. } if tool == "Bash" && id == "call_1"));
        let sub = json!({"session_id":"th","agent_id":"a2","hook_event_name":"PreToolUse","tool_name":"Bash","tool_input":{}});
        assert!(matches!(Agent::Codex.parse(&sub).unwrap(), Event::Pre { session, .. } if session == "th/a2"));
        let post = json!({"session_id":"th","hook_event_name":"PostToolUse","tool_name":"Bash","tool_input":{"command":"make"},"tool_use_id":"call_1",
            "tool_response":"Chunk ID: 1a\nWall time: 0.1 seconds\nProcess exited with code 2\nOutput:\nmake: *** Error 2\n"});
        assert!(matches!(Agent::Codex.parse(&post).unwrap(), Event::Post { output, error: true, .. } if output == "make: *** Error 2\n"));
        let obj = json!({"session_id":"th","hook_event_name":"PostToolUse","tool_name":"Bash","tool_input":{},"tool_use_id":"c","tool_response":{"output":"x","exit_code":1}});
        assert!(matches!(Agent::Codex.parse(&obj).unwrap(), Event::Post { output, error: true, .. } if output == "x"));
    }

    #[test]
    fn gemini_shell_output_loses_its_process_ids_and_keeps_the_exit_code() {
        let run = |pgid: u32| {
            let content = format!("<untrusted_context>\nOutput: FAIL test_split\nmake: *** Error 1\nExit Code: 2\nProcess Group PGID: {pgid}\n</untrusted_context>");
            json!({"session_id":"g","hook_event_name":"AfterTool","tool_name":"run_shell_command","tool_input":{"command":"make test"},"tool_response":{"llmContent":content}})
        };
        let (a, b) = (Agent::Gemini.parse(&run(8541)).unwrap(), Agent::Gemini.parse(&run(8550)).unwrap());
        assert_eq!(a, b);
        assert!(matches!(a, Event::Post { output, error: true, .. } if !output.contains("PGID") && output.contains("Exit Code: 2")));
        assert!(!gemini_output("Output: ok\nExit Code: 0\nProcess Group PGID: 7\n").1);
    }

    #[test]
    fn gemini_after_tool_reads_llm_content_or_error() {
        let ok = json!({"session_id":"g","hook_event_name":"AfterTool","tool_name":"read_file","tool_input":{"path":"a"},"tool_response":{"llmContent":"text","error":null}});
        assert!(matches!(Agent::Gemini.parse(&ok).unwrap(), Event::Post { output, error: false, .. } if output == "text"));
        let shell = |pgid: u32| json!({"session_id":"g","hook_event_name":"AfterTool","tool_name":"run_shell_command","tool_input":{"command":"make"},
            "tool_response":{"llmContent": format!("Command: make\nDirectory: (root)\nOutput: make: *** Error 2\nError: (none)\nExit Code: 2\nSignal: (none)\nBackground PIDs: (none)\nProcess Group PGID: {pgid}"),"error":null}});
        let (a, b) = (Agent::Gemini.parse(&shell(4242)).unwrap(), Agent::Gemini.parse(&shell(4343)).unwrap());
        assert_eq!(a, b, "the PGID line is masked");
        assert!(matches!(a, Event::Post { output, error: true, .. } if output.ends_with("Exit Code: 2\nSignal: (none)\n")));
        let bad = json!({"session_id":"g","hook_event_name":"AfterTool","tool_name":"replace","tool_input":{},"tool_response":{"llmContent":"","error":"old_string not unique"}});
        assert!(matches!(Agent::Gemini.parse(&bad).unwrap(), Event::Post { output, error: true, .. } if output == "old_string not unique"));
    }
}
