//! Conversations replayed into a session: one reading of an LLM API conversation for every host.
//!
//! An agent sends its whole conversation to the model on every turn, so the history is in it.
//! [`replay_into`] walks it in order, checking every tool call an assistant turn made and recording
//! every tool result under the call it answers (matched by the transport's id), as an in-process
//! guard would have done. The proxy does this for each request it guards; `ml_session_replay` (the
//! C ABI) and `microloop replay` do it for a recorded conversation; both read the conversation with
//! the same [`openai`] and [`anthropic`] readers here, so they cannot judge it differently.
//!
//! Time is not in a conversation, so every call is checked at the same instant (`now_ms = 0`):
//! `budget.rate` does not apply to a replay.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use microloop_core::{Action, CheckError, Engine, Session, Verdict};
use serde_json::{json, Value};

/// One tool call as the model proposed it.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    /// The transport's call id (Gemini calls may have none: the reader makes one up, stable within
    /// a request).
    pub id: String,
    pub name: String,
    /// The arguments as JSON text.
    pub args: String,
}

/// One tool result in a conversation.
pub struct ToolResult<'a> {
    pub call_id: Cow<'a, str>,
    pub output: Vec<u8>,
    pub is_error: bool,
}

/// One step of a conversation, in order.
pub enum Step<'a> {
    Calls(Vec<ToolCall>),
    Results(Vec<ToolResult<'a>>),
    /// Any other message (user text, an assistant answer without calls): what came before it is
    /// no longer pending.
    Other,
}

/// A conversation replayed.
pub struct Replay {
    pub session: Session,
    /// Warnings earned by the calls whose results the conversation delivers last (the tool results
    /// after the last assistant turn): the model should read them with those results.
    pub warnings: Vec<Verdict>,
    /// Calls replayed, results recorded, results whose call was not found.
    pub calls: u32,
    pub results: u32,
    pub orphan_results: u32,
}

/// One replayed call, for a report: the call, its verdict, and the result the conversation gave it.
pub struct Replayed {
    pub call: ToolCall,
    pub verdict: Result<Verdict, CheckError>,
    /// The result the conversation gives it (output, failed), if any: recorded in the session when
    /// the call ran, only reported when it did not.
    pub result: Option<(Vec<u8>, bool)>,
}

/// Rebuilds a session from a conversation's steps, with `tools` as the tool set (open if none).
pub fn replay_steps(tools: Option<Vec<String>>, steps: &[Step<'_>], engine: &Arc<Engine>) -> Replay {
    let mut session = Session::new(engine.clone());
    let (warnings, calls, results, orphan_results) = replay_into(&mut session, tools, steps, None);
    Replay { session, warnings, calls, results, orphan_results }
}

/// Replays `steps` into `session` (after what it already holds), with `tools` as the tool set when
/// given. When `log` is given, every call is appended to it with its verdict and result.
/// Returns the fields of a [`Replay`] but the session: warnings, calls, results, orphan results.
pub fn replay_into(
    session: &mut Session,
    tools: Option<Vec<String>>,
    steps: &[Step<'_>],
    mut log: Option<&mut Vec<Replayed>>,
) -> (Vec<Verdict>, u32, u32, u32) {
    if let Some(tools) = tools {
        session.set_tools(&tools);
    }
    // The transport's id -> (the session's call id, its action, its index in `verdicts`, in `log`).
    let mut ids: HashMap<String, (u64, Action, usize, usize)> = HashMap::new();
    let (mut warnings, mut checked_calls, mut recorded, mut orphans) = (Vec::new(), 0u32, 0u32, 0u32);
    let mut verdicts: Vec<Verdict> = Vec::new();
    // Calls logged that did not run (blocked, or arguments that cannot be checked): id -> index in `log`.
    let mut unrun: HashMap<String, usize> = HashMap::new();
    let last_turn = steps.iter().rposition(|s| !matches!(s, Step::Results(_)));
    for (i, step) in steps.iter().enumerate() {
        match step {
            Step::Calls(calls) => {
                for c in calls {
                    checked_calls += 1;
                    let checked = session.check(&c.name, c.args.as_bytes(), 0);
                    let at = log.as_ref().map_or(0, |l| l.len());
                    // Invalid arguments: the agent got them too and answered somehow; nothing to learn.
                    let ran = matches!(&checked, Ok(v) if v.action.runs());
                    if let Ok(v) = &checked {
                        if ran {
                            ids.insert(c.id.clone(), (v.call_id, v.action, verdicts.len(), at));
                        }
                        verdicts.push(v.clone());
                    }
                    if let Some(l) = log.as_mut() {
                        if !ran {
                            // Not run under the policy: its recorded answer is what a report says
                            // the agent would not have read.
                            unrun.insert(c.id.clone(), at);
                        }
                        l.push(Replayed { call: c.clone(), verdict: checked, result: None });
                    }
                }
            }
            Step::Other => {}
            Step::Results(results) => {
                for r in results {
                    match ids.remove(r.call_id.as_ref()) {
                        Some((call_id, action, vi, at)) => {
                            if session.record(call_id, &r.output, r.is_error).is_ok() {
                                recorded += 1;
                            }
                            if let Some(l) = log.as_mut() {
                                l[at].result = Some((r.output.clone(), r.is_error));
                            }
                            let pending = last_turn.is_none_or(|l| i > l);
                            if pending && action == Action::Warn {
                                warnings.push(verdicts[vi].clone());
                            }
                        }
                        None => {
                            orphans += 1;
                            if let (Some(l), Some(at)) = (log.as_mut(), unrun.remove(r.call_id.as_ref())) {
                                l[at].result = Some((r.output.clone(), r.is_error));
                            }
                        }
                    }
                }
            }
        }
    }
    (warnings, checked_calls, recorded, orphans)
}

/// The conversation formats [`replay_json`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// OpenAI Chat Completions: `messages` with `tool_calls` and `tool` messages.
    OpenAiChat,
    /// Anthropic Messages: `tool_use` and `tool_result` content blocks.
    Anthropic,
}

impl Format {
    /// `openai` (or `openai-chat`), `anthropic`.
    pub fn from_name(name: &str) -> Option<Format> {
        match name {
            "openai" | "openai-chat" => Some(Format::OpenAiChat),
            "anthropic" => Some(Format::Anthropic),
            _ => None,
        }
    }

    pub fn tools(self, req: &Value) -> Option<Vec<String>> {
        match self {
            Format::OpenAiChat => openai::tools(req),
            Format::Anthropic => anthropic::tools(req),
        }
    }

    pub fn steps(self, req: &Value) -> Vec<Step<'_>> {
        match self {
            Format::OpenAiChat => openai::steps(req),
            Format::Anthropic => anthropic::steps(req),
        }
    }
}

/// Replays a conversation (a request body: `{"messages": [...], "tools": [...]}`, or the bare list
/// of messages) into `session` and returns the report as JSON: every call in order with its
/// verdict (`action`, `rule`, `message`, `count`; `action` `error` and `rule` the kind of error for
/// arguments that cannot be checked) and the result recorded for it, then the counts.
pub fn replay_json(session: &mut Session, format: Format, conversation: &Value) -> Value {
    let wrapped;
    let req = match conversation {
        Value::Array(_) => {
            wrapped = json!({ "messages": conversation });
            &wrapped
        }
        other => other,
    };
    let mut log = Vec::new();
    let (warnings, _, results, orphans) = replay_into(session, format.tools(req), &format.steps(req), Some(&mut log));
    let calls: Vec<Value> = log
        .into_iter()
        .map(|c| {
            let (action, rule, message, count) = match &c.verdict {
                Ok(v) => (v.action.as_str(), v.rule.to_string(), v.message.clone(), v.count),
                Err(e) => ("error", error_kind(e).to_owned(), e.to_string(), 0),
            };
            let result = c.result.map(|(out, err)| json!({"text": String::from_utf8_lossy(&out), "error": err}));
            json!({"id": c.call.id, "tool": c.call.name, "args": c.call.args, "action": action, "rule": rule,
                   "message": message, "count": count, "result": result})
        })
        .collect();
    let warnings: Vec<Value> = warnings.iter().map(|v| json!({"rule": v.rule, "message": v.message})).collect();
    json!({"calls": calls, "warnings": warnings, "results": results, "orphan_results": orphans})
}

/// The name an error of a check has in every binding (`ML_ERR_INVALID_JSON`: `InvalidJSON`).
fn error_kind(e: &CheckError) -> &'static str {
    match e {
        CheckError::InvalidJson(_) => "InvalidJSON",
        CheckError::EmptyToolName => "InvalidArgument",
        CheckError::InvalidUtf8(_) => "InvalidUTF8",
    }
}

/// Where the proxy's own note starts in a tool result it edited.
pub const NOTE_MARK: &str = "\n\n[microloop] ";

/// Text of a tool result content: a string, or the text parts of an array; a note the proxy
/// appended is left out, so the result reads as the tool returned it.
pub fn content_text(content: Option<&Value>) -> Vec<u8> {
    match content {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => s.split(NOTE_MARK).next().unwrap_or("").as_bytes().to_vec(),
        Some(Value::Array(parts)) => {
            let mut out = Vec::new();
            for p in parts {
                if let Some(t) = p.get("text").and_then(Value::as_str) {
                    if t.starts_with(&NOTE_MARK[2..]) {
                        continue;
                    }
                    if !out.is_empty() {
                        out.push(b'\n');
                    }
                    out.extend_from_slice(t.as_bytes());
                } else {
                    out.extend_from_slice(serde_json::to_string(p).unwrap_or_default().as_bytes());
                }
            }
            out
        }
        Some(other) => serde_json::to_vec(other).unwrap_or_default(),
    }
}

/// Lines of a tool's output that change on every run whatever the command did: Codex's `Chunk ID:`
/// and `Wall time:` header, Gemini CLI's `Process Group PGID:` footer. They are left out, so the
/// same output reads the same.
pub fn mask_volatile(output: Vec<u8>) -> Vec<u8> {
    const VOLATILE: [&str; 3] = ["Chunk ID:", "Wall time:", "Process Group PGID:"];
    let text = String::from_utf8_lossy(&output);
    if !VOLATILE.iter().any(|v| text.contains(v)) {
        return output;
    }
    let kept: Vec<&str> = text.split('\n').filter(|l| !VOLATILE.iter().any(|v| l.starts_with(v))).collect();
    kept.join("\n").into_bytes()
}

/// OpenAI tool messages carry no error flag: a result reads as an error when it starts like one.
pub fn looks_like_error(output: &[u8]) -> bool {
    let s = String::from_utf8_lossy(&output[..output.len().min(64)]).trim_start().to_ascii_lowercase();
    ["error", "exception", "traceback", "failed", "fatal"].iter().any(|p| s.starts_with(p))
}

/// OpenAI Chat Completions conversations.
pub mod openai {
    use super::*;

    /// The request's tool names: `{"type":"function","function":{"name":…}}`, or
    /// `{"type":"custom","custom":{"name":…}}`.
    pub fn tools(req: &Value) -> Option<Vec<String>> {
        let tools = req.get("tools").and_then(Value::as_array)?;
        let names: Vec<String> = tools
            .iter()
            .filter_map(|t| t.get("function").or_else(|| t.get("custom")).and_then(|f| f.get("name")).or_else(|| t.get("name")))
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect();
        (!names.is_empty()).then_some(names)
    }

    pub fn steps(req: &Value) -> Vec<Step<'_>> {
        let mut steps = Vec::new();
        let Some(messages) = req.get("messages").and_then(Value::as_array) else { return steps };
        for m in messages {
            match m.get("role").and_then(Value::as_str) {
                Some("assistant") => {
                    let calls = message_calls(m);
                    steps.push(if calls.is_empty() { Step::Other } else { Step::Calls(calls) });
                }
                Some("tool") => {
                    let Some(id) = m.get("tool_call_id").and_then(Value::as_str) else { continue };
                    let output = content_text(m.get("content"));
                    let is_error = looks_like_error(&output);
                    let r = ToolResult { call_id: Cow::Borrowed(id), output, is_error };
                    match steps.last_mut() {
                        Some(Step::Results(rs)) => rs.push(r),
                        _ => steps.push(Step::Results(vec![r])),
                    }
                }
                _ => steps.push(Step::Other),
            }
        }
        steps
    }

    /// The `tool_calls` of an assistant message.
    pub fn message_calls(message: &Value) -> Vec<ToolCall> {
        let Some(calls) = message.get("tool_calls").and_then(Value::as_array) else { return Vec::new() };
        calls
            .iter()
            .filter_map(|c| {
                let f = c.get("function")?;
                Some(ToolCall {
                    id: c.get("id").and_then(Value::as_str).unwrap_or("").to_owned(),
                    name: f.get("name")?.as_str()?.to_owned(),
                    args: match f.get("arguments") {
                        Some(Value::String(s)) => s.clone(),
                        Some(v) => v.to_string(),
                        None => "{}".to_owned(),
                    },
                })
            })
            .collect()
    }
}

/// Anthropic Messages conversations.
pub mod anthropic {
    use super::*;

    /// The request's tool names; `None` (any name may come) when a tool is loaded later
    /// (`defer_loading`, ToolSearch).
    pub fn tools(req: &Value) -> Option<Vec<String>> {
        let tools = req.get("tools").and_then(Value::as_array)?;
        if tools.iter().any(|t| t.get("defer_loading").and_then(Value::as_bool) == Some(true)) {
            return None;
        }
        let names: Vec<String> = tools.iter().filter_map(|t| t.get("name")?.as_str().map(str::to_owned)).collect();
        (!names.is_empty()).then_some(names)
    }

    pub fn steps(req: &Value) -> Vec<Step<'_>> {
        let mut steps = Vec::new();
        let Some(messages) = req.get("messages").and_then(Value::as_array) else { return steps };
        for m in messages {
            let role = m.get("role").and_then(Value::as_str);
            // Reminders a client inserts between turns do not answer or end anything.
            if role == Some("system") {
                continue;
            }
            let Some(blocks) = m.get("content").and_then(Value::as_array) else {
                steps.push(Step::Other);
                continue;
            };
            match role {
                Some("assistant") => {
                    let calls = block_calls(blocks);
                    steps.push(if calls.is_empty() { Step::Other } else { Step::Calls(calls) });
                }
                Some("user") => {
                    let results: Vec<ToolResult> = blocks
                        .iter()
                        .filter(|b| b.get("type").and_then(Value::as_str) == Some("tool_result"))
                        .filter_map(|b| {
                            Some(ToolResult {
                                call_id: Cow::Borrowed(b.get("tool_use_id")?.as_str()?),
                                output: content_text(b.get("content")),
                                is_error: b.get("is_error").and_then(Value::as_bool).unwrap_or(false),
                            })
                        })
                        .collect();
                    steps.push(if results.is_empty() { Step::Other } else { Step::Results(results) });
                }
                _ => steps.push(Step::Other),
            }
        }
        steps
    }

    /// The `tool_use` blocks of an Anthropic assistant content.
    pub fn block_calls(blocks: &[Value]) -> Vec<ToolCall> {
        blocks
            .iter()
            .filter(|b| b.get("type").and_then(Value::as_str) == Some("tool_use"))
            .filter_map(|b| {
                Some(ToolCall {
                    id: b.get("id").and_then(Value::as_str).unwrap_or("").to_owned(),
                    name: b.get("name")?.as_str()?.to_owned(),
                    args: b.get("input").map_or_else(|| "{}".to_owned(), Value::to_string),
                })
            })
            .collect()
    }
}
