//! Decision events: every verdict a host reaches, handed to pluggable sinks.
//!
//! A host (the C ABI, the proxy, the hook, the MCP relay) calls [`Events::emit`] right after each
//! check. A [`Sink`] sees the session, the tool, the arguments as sent, the verdict and the time; the
//! call's fingerprint and the history hash are computed only when a sink asks for them, so a sink
//! that does not need them costs nothing for them. The audit log ([`crate::audit::AuditSink`]) is
//! one sink; a transport's log lines can be another.

use std::sync::Arc;

use microloop_core::{canon, Action, Rule, Session, Verdict};

use crate::approval::{Approval, Approver, Request};

/// One decision, as sinks see it.
pub struct Decision<'a> {
    /// The host's id of the session (random, one per session).
    pub session: &'a Arc<str>,
    /// Wall-clock milliseconds since the Unix epoch.
    pub time_ms: u64,
    pub tool: &'a str,
    /// The arguments exactly as the agent sent them.
    pub args: &'a [u8],
    pub verdict: &'a Verdict,
    state: &'a Session,
}

impl Decision<'_> {
    pub fn new<'a>(session: &'a Arc<str>, time_ms: u64, tool: &'a str, args: &'a [u8], verdict: &'a Verdict, state: &'a Session) -> Decision<'a> {
        Decision { session, time_ms, tool, args, verdict, state }
    }

    /// The verdict's action as the logs spell it: `allow`, `warn`, `block`, `halt`.
    pub fn action(&self) -> &'static str {
        action_name(self.verdict.action)
    }

    /// The built-in rule that decided, typed; `None` for `allow` and for a policy's own rules
    /// (whose ids are in `verdict.rule`).
    pub fn rule(&self) -> Option<Rule> {
        self.verdict.builtin_rule()
    }

    /// The call's canonical fingerprint (what `ml_fingerprint` returns; the policy's
    /// `ignore_fields` left out). `None` for arguments that are not JSON.
    pub fn fingerprint(&self) -> Option<u64> {
        let ignore = &self.state.engine().policy.ignore_fields;
        let h = canon::hash_json(self.args, ignore).ok()?;
        Some(canon::call_fingerprint(self.tool, h.fingerprint))
    }

    /// The session's history hash after this decision (`ml_stats.history_hash`).
    pub fn history_hash(&self) -> u64 {
        self.state.stats().history_hash
    }
}

/// `allow`, `warn`, `block`, `halt`.
pub fn action_name(a: Action) -> &'static str {
    a.as_str()
}

/// Receives every decision of the sessions it is attached to. Called on the checking thread with
/// the session locked: a sink must return quickly (queue, do not write).
pub trait Sink: Send + Sync {
    /// Takes a decision; returns its audit sequence number when the sink assigns one.
    fn decision(&self, d: &Decision<'_>) -> Option<u64>;
}

/// A session's sinks, its approver and its id.
#[derive(Clone)]
pub struct Events {
    session: Arc<str>,
    sinks: Arc<[Arc<dyn Sink>]>,
    approver: Option<Arc<Approver>>,
}

/// What the host layer adds to a verdict.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Emitted {
    /// The decision's audit sequence number, when an audit log took it.
    pub audit_seq: Option<u64>,
    /// For a call that may run under `[approval]`: its token, or why it has none.
    pub approval: Option<Approval>,
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "Events(session {}, {} sinks)", self.session, self.sinks.len())
    }
}

impl Events {
    pub fn new(sinks: Arc<[Arc<dyn Sink>]>) -> Events {
        Events { session: new_session_id().into(), sinks, approver: None }
    }

    /// Events under a session id the host chose.
    pub fn with_session(session: &str, sinks: Arc<[Arc<dyn Sink>]>) -> Events {
        Events { session: session.into(), sinks, approver: None }
    }

    /// These events with an approver signing a token for every call that may run.
    pub fn with_approver(mut self, approver: Option<Arc<Approver>>) -> Events {
        self.approver = approver;
        self
    }

    pub fn approver(&self) -> Option<&Arc<Approver>> {
        self.approver.as_ref()
    }

    pub fn session_id(&self) -> &str {
        &self.session
    }

    /// Hands one decision to every sink; returns the first audit sequence number one assigned.
    pub fn emit(&self, state: &Session, tool: &str, args: &[u8], verdict: &Verdict, time_ms: u64) -> Option<u64> {
        let d = Decision::new(&self.session, time_ms, tool, args, verdict, state);
        let mut seq = None;
        for s in self.sinks.iter() {
            let got = s.decision(&d);
            seq = seq.or(got);
        }
        seq
    }

    /// [`Events::emit`], then, under `[approval]` and when `approve` is true, the token of a call
    /// that may run (allow, warn), bound to its audit sequence number. Blocked and halted calls
    /// get no token, so none pays for a signature.
    pub fn decide(&self, state: &Session, tool: &str, args: &[u8], verdict: &Verdict, time_ms: u64, approve: bool) -> Emitted {
        let audit_seq = if self.sinks.is_empty() { None } else { self.emit(state, tool, args, verdict, time_ms) };
        let approval = match (&self.approver, verdict.action) {
            (Some(a), Action::Allow | Action::Warn) if approve => Some(a.issue(&Request {
                session: &self.session,
                call_id: verdict.call_id,
                tool,
                args,
                action: action_name(verdict.action),
                audit_seq,
                time_ms,
            })),
            _ => None,
        };
        Emitted { audit_seq, approval }
    }
}

/// 128 random bits in hex.
pub fn new_session_id() -> String {
    let mut b = [0u8; 16];
    if getrandom::fill(&mut b).is_err() {
        // No random source: still unique within the process and across restarts.
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        b = (t ^ ((std::process::id() as u128) << 64) ^ (n as u128) << 96).to_le_bytes();
    }
    microloop_audit::jcs::hex(&b)
}
