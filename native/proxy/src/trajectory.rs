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
    /// Any other message (user text, an assistant answer without calls): what came before it is
    /// no longer pending.
    Other,
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
    let last_turn = steps.iter().rposition(|s| !matches!(s, Step::Results(_)));
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
            Step::Other => {}
            Step::Results(results) => {
                for r in results {
                    match ids.remove(r.call_id) {
                        Some((call_id, action, vi)) => {
                            if out.session.record(call_id, &r.output, r.is_error).is_ok() {
                                out.results += 1;
                            }
                            let pending = last_turn.map_or(true, |l| i > l);
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

/// Where the proxy's own note starts in a tool result it edited (see `wire::apply_warnings`).
const NOTE_MARK: &str = "\n\n[microloop] ";

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
                steps.push(if calls.is_empty() { Step::Other } else { Step::Calls(calls) });
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
            _ => steps.push(Step::Other),
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
        let Some(blocks) = m.get("content").and_then(Value::as_array) else {
            steps.push(Step::Other);
            continue;
        };
        match m.get("role").and_then(Value::as_str) {
            Some("assistant") => {
                let calls = anthropic_calls(blocks);
                steps.push(if calls.is_empty() { Step::Other } else { Step::Calls(calls) });
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
                steps.push(if results.is_empty() { Step::Other } else { Step::Results(results) });
            }
            _ => steps.push(Step::Other),
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

#[cfg(test)]
mod tests {
    use super::*;
    use microloop_core::Policy;
    use serde_json::json;

    fn engine() -> Arc<Engine> {
        Arc::new(Engine::new(Policy::from_json(b"balanced").unwrap()).unwrap())
    }

    fn call(id: &str, path: &str) -> Value {
        json!({"id": id, "type": "function", "function": {"name": "read_file", "arguments": format!("{{\"path\":\"{path}\"}}")}})
    }

    fn tools() -> Value {
        json!([{"type": "function", "function": {"name": "read_file", "parameters": {}}},
               {"type": "function", "function": {"name": "write_file", "parameters": {}}}])
    }

    fn proposed(path: &str) -> Vec<ToolCall> {
        vec![ToolCall { id: "new".into(), name: "read_file".into(), args: format!("{{\"path\":\"{path}\"}}") }]
    }

    #[test]
    fn results_are_matched_to_calls_by_id_not_by_position() {
        // Two parallel calls answered in reverse order: each result lands on its own call.
        let req = json!({"tools": tools(), "messages": [
            {"role": "user", "content": "go"},
            {"role": "assistant", "content": null, "tool_calls": [call("a", "x"), call("b", "y")]},
            {"role": "tool", "tool_call_id": "b", "content": "Y"},
            {"role": "tool", "tool_call_id": "a", "content": "X"},
            {"role": "assistant", "content": null, "tool_calls": [call("c", "x")]},
            {"role": "tool", "tool_call_id": "c", "content": "X"},
        ]});
        let mut r = replay(Api::OpenAi, &req, &engine());
        assert_eq!((r.calls, r.results, r.orphan_results), (3, 3, 0));
        // read_file(x) answered X twice: a third is blocked; read_file(y) answered once: allowed.
        let j = judge(&mut r.session, &proposed("x"));
        assert_eq!(j.blocked.as_ref().map(|(_, v)| v.rule.as_ref()), Some("loop.no_progress"));
        let j = judge(&mut r.session, &proposed("y"));
        assert!(j.blocked.is_none());
    }

    #[test]
    fn a_call_without_a_result_only_counts_for_result_blind_rules() {
        let req = json!({"tools": tools(), "messages": [
            {"role": "assistant", "tool_calls": [call("a", "x")]},
            {"role": "assistant", "tool_calls": [call("b", "x")]},
            {"role": "tool", "tool_call_id": "zzz", "content": "X"},
        ]});
        let mut r = replay(Api::OpenAi, &req, &engine());
        assert_eq!((r.calls, r.results, r.orphan_results), (2, 0, 1));
        assert!(judge(&mut r.session, &proposed("x")).blocked.is_none());
    }

    #[test]
    fn the_request_tools_are_the_agent_tools() {
        let req = json!({"tools": tools(), "messages": []});
        let mut r = replay(Api::OpenAi, &req, &engine());
        let calls = vec![ToolCall { id: "1".into(), name: "delete_everything".into(), args: "{}".into() }];
        let j = judge(&mut r.session, &calls);
        assert_eq!(j.blocked.map(|(_, v)| v.rule.to_string()).as_deref(), Some("tool.unknown"));
    }

    #[test]
    fn one_blocked_call_blocks_the_whole_answer_and_names_its_index() {
        let req = json!({"tools": tools(), "messages": [
            {"role": "assistant", "tool_calls": [call("a", "x")]},
            {"role": "tool", "tool_call_id": "a", "content": "X"},
            {"role": "assistant", "tool_calls": [call("b", "x")]},
            {"role": "tool", "tool_call_id": "b", "content": "X"},
        ]});
        let mut r = replay(Api::OpenAi, &req, &engine());
        let mut calls = proposed("y");
        calls.extend(proposed("x"));
        let j = judge(&mut r.session, &calls);
        assert_eq!(j.blocked.as_ref().map(|(i, _)| *i), Some(1));
        assert!(j.verdicts[0].as_ref().unwrap().action.runs());
    }

    #[test]
    fn the_pending_result_of_a_warned_call_carries_the_warning() {
        let req = json!({"tools": tools(), "messages": [
            {"role": "assistant", "tool_calls": [call("a", "x")]},
            {"role": "tool", "tool_call_id": "a", "content": "X"},
            {"role": "assistant", "tool_calls": [call("b", "x")]},
            {"role": "tool", "tool_call_id": "b", "content": "X"},
        ]});
        let r = replay(Api::OpenAi, &req, &engine());
        assert_eq!(r.warnings.len(), 1);
        assert_eq!(r.warnings[0].rule, "loop.no_progress");
        // The same history followed by a user message: nothing pending, nothing to warn about.
        let mut later = req.clone();
        later["messages"].as_array_mut().unwrap().push(json!({"role": "user", "content": "thanks"}));
        assert!(replay(Api::OpenAi, &later, &engine()).warnings.is_empty());
    }

    #[test]
    fn anthropic_tool_use_and_tool_result_blocks_are_replayed() {
        let use_ = |id: &str| json!({"type": "tool_use", "id": id, "name": "read_file", "input": {"path": "x"}});
        let result = |id: &str, err: bool| json!({"type": "tool_result", "tool_use_id": id, "content": [{"type": "text", "text": "boom"}], "is_error": err});
        let req = json!({"tools": [{"name": "read_file", "input_schema": {}}], "messages": [
            {"role": "user", "content": "go"},
            {"role": "assistant", "content": [{"type": "text", "text": "ok"}, use_("t1")]},
            {"role": "user", "content": [result("t1", true)]},
            {"role": "assistant", "content": [use_("t2")]},
            {"role": "user", "content": [result("t2", true)]},
        ]});
        let mut r = replay(Api::Anthropic, &req, &engine());
        assert_eq!((r.calls, r.results), (2, 2));
        assert_eq!(request_tools(Api::Anthropic, &req), vec!["read_file".to_owned()]);
        let j = judge(&mut r.session, &proposed("x"));
        assert!(j.blocked.is_some(), "the same failure twice: a third attempt is blocked");
    }

    #[test]
    fn openai_error_results_are_recognised_by_their_opening() {
        assert!(looks_like_error(b"Error: file not found"));
        assert!(looks_like_error(b"  Traceback (most recent call last)"));
        assert!(!looks_like_error(b"the error log is empty"));
    }
}
