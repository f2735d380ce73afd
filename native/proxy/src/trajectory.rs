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

use std::sync::Arc;

use microloop_core::{Engine, Session, Verdict};
use serde_json::Value;

use crate::dialect::{Dialect, Step, ToolCall};

pub use microloop_host::conversation::{content_text, looks_like_error, mask_volatile, replay_steps, Replay};

/// Rebuilds the session from the request's messages.
pub fn replay(d: &dyn Dialect, req: &Value, engine: &Arc<Engine>) -> Replay {
    replay_steps(d.tools(req), &d.steps(req), engine)
}

/// The tool results a request delivers (after its last assistant turn): the transport's call id,
/// the output, whether it failed. Shadow mode logs them.
pub fn fresh_results(d: &dyn Dialect, req: &Value) -> Vec<(String, Vec<u8>, bool)> {
    let steps = d.steps(req);
    let after_last_turn = steps.iter().rposition(|s| !matches!(s, Step::Results(_))).map_or(0, |l| l + 1);
    let mut out = Vec::new();
    for step in &steps[after_last_turn..] {
        if let Step::Results(results) = step {
            out.extend(results.iter().map(|r| (r.call_id.to_string(), r.output.clone(), r.is_error)));
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
