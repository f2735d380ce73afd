//! Rebuilding an agent's history from one request, and judging the calls in an answer.
//!
//! The proxy keeps no state between requests: agents resend the whole conversation each turn, so
//! the history is in the request. [`replay`] walks it in order, checking every tool call an
//! assistant turn made and recording every tool result under the call it answers (matched by id),
//! in a fresh [`Session`] whose tool set is the request's `tools`. What the session then says about
//! the calls the model proposes next ([`judge`]) is what an in-process adapter would have said.
//!
//! Time is not in the request, so every call is checked at the same instant (`now_ms = 0`):
//! `budget.rate` cannot be enforced by the proxy.

use std::collections::HashMap;
use std::sync::Arc;

use microloop_core::{Action, Engine, Session, Verdict};
use serde_json::Value;

use crate::Api;

/// One tool call as the model proposed it.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    /// The arguments as JSON text.
    pub args: String,
}

/// A session rebuilt from a request.
pub struct Replay {
    pub session: Session,
    /// Warnings earned by the calls whose results this request delivers (the tool results after the
    /// last assistant turn): the model should read them with those results.
    pub warnings: Vec<Verdict>,
    /// Calls replayed, results recorded, results whose call was not found.
    pub calls: u32,
    pub results: u32,
    pub orphan_results: u32,
}

/// One tool result in a request.
struct ToolResult<'a> {
    call_id: &'a str,
    output: Vec<u8>,
    is_error: bool,
}

/// One step of a conversation, in order.
enum Step<'a> {
    Calls(Vec<ToolCall>),
    Results(Vec<ToolResult<'a>>),
}

/// The tool names the request gives the model.
pub fn request_tools(api: Api, req: &Value) -> Vec<String> {
    let Some(tools) = req.get("tools").and_then(Value::as_array) else { return Vec::new() };
    tools
        .iter()
        .filter_map(|t| match api {
            // {"type":"function","function":{"name":…}}, or {"type":"custom","custom":{"name":…}}
            Api::OpenAi => t
                .get("function")
                .or_else(|| t.get("custom"))
                .and_then(|f| f.get("name"))
                .or_else(|| t.get("name")),
            Api::Anthropic => t.get("name"),
        })
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect()
}

/// Rebuilds the session from the request's messages.
pub fn replay(api: Api, req: &Value, engine: &Arc<Engine>) -> Replay {
    let mut session = Session::new(engine.clone());
    let tools = request_tools(api, req);
    session.set_tools(&tools);
    let steps = match api {
        Api::OpenAi => openai_steps(req),
        Api::Anthropic => anthropic_steps(req),
    };
    let mut ids: HashMap<String, (u64, Action, usize)> = HashMap::new();
    let mut out = Replay { session, warnings: Vec::new(), calls: 0, results: 0, orphan_results: 0 };
    let mut verdicts: Vec<Verdict> = Vec::new();
    let last_calls = steps.iter().rposition(|s| matches!(s, Step::Calls(_)));
    for (i, step) in steps.iter().enumerate() {
        match step {
            Step::Calls(calls) => {
                for c in calls {
                    out.calls += 1;
                    // Invalid arguments: the agent got them too and answered somehow; nothing to learn.
                    if let Ok(v) = out.session.check(&c.name, c.args.as_bytes(), 0) {
                        if v.action.runs() {
                            ids.insert(c.id.clone(), (v.call_id, v.action, verdicts.len()));
                        }
                        verdicts.push(v);
                    }
                }
            }
            Step::Results(results) => {
                for r in results {
                    match ids.remove(r.call_id) {
                        Some((call_id, action, vi)) => {
                            if out.session.record(call_id, &r.output, r.is_error).is_ok() {
                                out.results += 1;
                            }
                            let pending = last_calls.is_some_and(|l| i > l);
                            if pending && action == Action::Warn {
                                out.warnings.push(verdicts[vi].clone());
                            }
                        }
                        None => out.orphan_results += 1,
                    }
                }
            }
        }
    }
    out
}

/// The verdicts on the calls of one answer. When any is blocked, the whole answer is: the agent
/// must not run half a turn.
pub struct Judgement {
    pub verdicts: Vec<Option<Verdict>>,
    /// The first call not allowed to run, and its verdict.
    pub blocked: Option<(usize, Verdict)>,
}

pub fn judge(session: &mut Session, calls: &[ToolCall]) -> Judgement {
    let mut j = Judgement { verdicts: Vec::with_capacity(calls.len()), blocked: None };
    for (i, c) in calls.iter().enumerate() {
        let v = session.check(&c.name, c.args.as_bytes(), 0).ok();
        if let Some(v) = &v {
            if !v.action.runs() && j.blocked.is_none() {
                j.blocked = Some((i, v.clone()));
            }
        }
        j.verdicts.push(v);
    }
    j
}

/// Text of a tool result content: a string, or the text parts of an array.
pub fn content_text(content: Option<&Value>) -> Vec<u8> {
    match content {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => s.as_bytes().to_vec(),
        Some(Value::Array(parts)) => {
            let mut out = Vec::new();
            for p in parts {
                if let Some(t) = p.get("text").and_then(Value::as_str) {
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

/// OpenAI tool messages carry no error flag: a result reads as an error when it starts like one.
pub fn looks_like_error(output: &[u8]) -> bool {
    let s = String::from_utf8_lossy(&output[..output.len().min(64)]).trim_start().to_ascii_lowercase();
    ["error", "exception", "traceback", "failed", "fatal"].iter().any(|p| s.starts_with(p))
}

fn openai_steps(req: &Value) -> Vec<Step<'_>> {
    let mut steps = Vec::new();
    let Some(messages) = req.get("messages").and_then(Value::as_array) else { return steps };
    for m in messages {
        match m.get("role").and_then(Value::as_str) {
            Some("assistant") => {
                let calls = openai_calls(m);
                if !calls.is_empty() {
                    steps.push(Step::Calls(calls));
                }
            }
            Some("tool") => {
                let Some(id) = m.get("tool_call_id").and_then(Value::as_str) else { continue };
                let output = content_text(m.get("content"));
                let is_error = looks_like_error(&output);
                let r = ToolResult { call_id: id, output, is_error };
                match steps.last_mut() {
                    Some(Step::Results(rs)) => rs.push(r),
                    _ => steps.push(Step::Results(vec![r])),
                }
            }
            _ => {}
        }
    }
    steps
}

/// The function calls of an OpenAI assistant message.
pub fn openai_calls(message: &Value) -> Vec<ToolCall> {
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

fn anthropic_steps(req: &Value) -> Vec<Step<'_>> {
    let mut steps = Vec::new();
    let Some(messages) = req.get("messages").and_then(Value::as_array) else { return steps };
    for m in messages {
        let Some(blocks) = m.get("content").and_then(Value::as_array) else { continue };
        match m.get("role").and_then(Value::as_str) {
            Some("assistant") => {
                let calls = anthropic_calls(blocks);
                if !calls.is_empty() {
                    steps.push(Step::Calls(calls));
                }
            }
            Some("user") => {
                let results: Vec<ToolResult> = blocks
                    .iter()
                    .filter(|b| b.get("type").and_then(Value::as_str) == Some("tool_result"))
                    .filter_map(|b| {
                        Some(ToolResult {
                            call_id: b.get("tool_use_id")?.as_str()?,
                            output: content_text(b.get("content")),
                            is_error: b.get("is_error").and_then(Value::as_bool).unwrap_or(false),
                        })
                    })
                    .collect();
                if !results.is_empty() {
                    steps.push(Step::Results(results));
                }
            }
            _ => {}
        }
    }
    steps
}

/// The `tool_use` blocks of an Anthropic assistant content.
pub fn anthropic_calls(blocks: &[Value]) -> Vec<ToolCall> {
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
