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

use crate::dialect::{Dialect, Step, ToolCall};

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

/// Rebuilds the session from the request's messages.
pub fn replay(d: &dyn Dialect, req: &Value, engine: &Arc<Engine>) -> Replay {
    replay_steps(d.tools(req), &d.steps(req), engine)
}

/// Rebuilds the session from a conversation's steps, with `tools` as the tool set (open if none).
pub fn replay_steps(tools: Option<Vec<String>>, steps: &[Step<'_>], engine: &Arc<Engine>) -> Replay {
    let mut session = Session::new(engine.clone());
    if let Some(tools) = tools {
        session.set_tools(&tools);
    }
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
                    match ids.remove(r.call_id.as_ref()) {
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

/// The text the model (or the user) reads for a verdict.
pub fn note(v: &Verdict) -> String {
    format!("[microloop] {}", v.message)
}

/// The result given to a call withheld because another call of the same answer was blocked.
pub const NOT_RUN: &str =
    "[microloop] Not run: another call in the same turn was blocked. Call it again if it is still needed.";

/// The results a re-ask gives the calls of a blocked answer: the verdict for the blocked one.
pub fn reask_results(calls: &[ToolCall], j: &Judgement) -> Vec<String> {
    (0..calls.len())
        .map(|i| match &j.blocked {
            Some((b, v)) if *b == i => note(v),
            _ => NOT_RUN.to_owned(),
        })
        .collect()
}

/// The verdicts on the calls of one answer. When any is blocked, the whole answer is: the agent
/// must not run half a turn.
pub struct Judgement {
    pub verdicts: Vec<Option<Verdict>>,
    /// The first call not allowed to run, and its verdict.
    pub blocked: Option<(usize, Verdict)>,
}

pub fn judge(session: &mut Session, calls: &[ToolCall]) -> Judgement {
    judge_logged(session, calls, None)
}

/// [`judge`], handing each decision to the host's sinks (the audit log).
pub fn judge_logged(session: &mut Session, calls: &[ToolCall], events: Option<&microloop_host::Events>) -> Judgement {
    let mut j = Judgement { verdicts: Vec::with_capacity(calls.len()), blocked: None };
    for (i, c) in calls.iter().enumerate() {
        let v = session.check(&c.name, c.args.as_bytes(), 0).ok();
        if let (Some(ev), Some(v)) = (events, &v) {
            ev.emit(session, &c.name, c.args.as_bytes(), v, microloop_host::Clock::now_ms(&microloop_host::SystemClock));
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialect::anthropic::Anthropic;
    use crate::dialect::openai::OpenAiChat;
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
    fn every_judged_call_reaches_the_hosts_sinks() {
        use std::sync::atomic::{AtomicU64, Ordering};
        struct Seen(AtomicU64);
        impl microloop_host::Sink for Seen {
            fn decision(&self, d: &microloop_host::Decision<'_>) -> Option<u64> {
                assert_eq!(d.tool, "read_file");
                Some(self.0.fetch_add(1, Ordering::Relaxed))
            }
        }
        let seen = Arc::new(Seen(AtomicU64::new(0)));
        let ev = microloop_host::Events::new(vec![seen.clone() as Arc<dyn microloop_host::Sink>].into());
        let mut s = Session::new(engine());
        judge_logged(&mut s, &proposed("x"), Some(&ev));
        judge_logged(&mut s, &proposed("y"), Some(&ev));
        judge(&mut s, &proposed("z"));
        assert_eq!(seen.0.load(Ordering::Relaxed), 2);
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
        let mut r = replay(&OpenAiChat, &req, &engine());
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
        let mut r = replay(&OpenAiChat, &req, &engine());
        assert_eq!((r.calls, r.results, r.orphan_results), (2, 0, 1));
        assert!(judge(&mut r.session, &proposed("x")).blocked.is_none());
    }

    #[test]
    fn the_request_tools_are_the_agent_tools() {
        let req = json!({"tools": tools(), "messages": []});
        let mut r = replay(&OpenAiChat, &req, &engine());
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
        let mut r = replay(&OpenAiChat, &req, &engine());
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
        let r = replay(&OpenAiChat, &req, &engine());
        assert_eq!(r.warnings.len(), 1);
        assert_eq!(r.warnings[0].rule, "loop.no_progress");
        // The same history followed by a user message: nothing pending, nothing to warn about.
        let mut later = req.clone();
        later["messages"].as_array_mut().unwrap().push(json!({"role": "user", "content": "thanks"}));
        assert!(replay(&OpenAiChat, &later, &engine()).warnings.is_empty());
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
        let mut r = replay(&Anthropic, &req, &engine());
        assert_eq!((r.calls, r.results), (2, 2));
        assert_eq!(Anthropic.tools(&req), Some(vec!["read_file".to_owned()]));
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
