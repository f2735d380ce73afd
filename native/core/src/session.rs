//! One agent's history of calls, and the detectors that read it.
//!
//! A [`Session`] keeps a bounded window of executed calls (default 256): for each, the call's
//! fingerprint, its tool, its effect, and once recorded its result's fingerprint and error flag.
//! [`Session::check`] decides on a proposed call; only calls that may run enter the history, so a
//! blocked call never changes it. [`Session::record`] attaches a result.
//!
//! **Progress.** Every recorded result either is or is not a progress event: a `write` that
//! succeeded, or an answer different from the same call's previous answer (the world changed by
//! itself; two different errors are not a change). A global counter, the *epoch*, counts those
//! events; each recorded call keeps the epoch just before and just after its own event. Two
//! executions of the same call had no progress between them when the later one's "before" equals
//! the earlier one's "after", and there was none since the last one when the epoch has not moved.
//! The result-aware detectors count runs of executions without progress; the result-blind ones
//! (`loop.identical`, budgets) count calls.

use alloc::borrow::Cow;
use alloc::boxed::Box;
use alloc::collections::{BTreeMap, VecDeque};
use alloc::format;
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use crate::canon::{self, Fingerprint};
use crate::doc::Doc;
use crate::effect::{self, Effect};
use crate::engine::Engine;
use crate::mask::mask_volatile;
use crate::policy::{Limits, Resolved};
use crate::rule::Rule;
use crate::sketch::{self, ArgTokens, ErrorKey, Ids, Sketch};
use crate::verdict::{Action, Verdict};

mod snapshot;
pub use snapshot::{policy_hash, SnapshotError, SNAPSHOT_VERSION};

/// Why a call could not be checked (as opposed to a verdict on it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckError {
    /// The arguments are not valid JSON (serde_json's message, with line and column).
    InvalidJson(String),
    /// The tool name is empty.
    EmptyToolName,
    /// The arguments are not UTF-8: the offset of the first invalid byte.
    InvalidUtf8(usize),
}

impl fmt::Display for CheckError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            CheckError::InvalidJson(m) => write!(f, "the arguments are not valid JSON: {m}"),
            CheckError::EmptyToolName => f.write_str("the tool name is empty"),
            CheckError::InvalidUtf8(at) => write!(f, "the arguments are not valid UTF-8 (invalid byte at offset {at})"),
        }
    }
}

/// Why a result could not be recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordError {
    /// No call with this id was ever allowed in this session: never issued, or id 0 (a blocked
    /// call). A call that has left the window is not an error: its result is taken as *late*.
    UnknownCall(u64),
    /// The call already has a result.
    AlreadyRecorded(u64),
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            RecordError::UnknownCall(0) => f.write_str("call id 0 belongs to a call that was not allowed to run; there is nothing to record"),
            RecordError::UnknownCall(id) => write!(f, "no call {id} was issued in this session"),
            RecordError::AlreadyRecorded(id) => write!(f, "call {id} already has a result"),
        }
    }
}

/// What a call returned, and where it stands in the progress order.
#[derive(Debug, Clone)]
struct Outcome {
    result: Fingerprint,
    error: bool,
    transient: bool,
    /// The answer differs from the same call's previous answer.
    changed: bool,
    epoch_before: Epoch,
    epoch_after: Epoch,
    /// The masked result's similarity sketch, when the call's arguments have one; its ids are
    /// those of the arguments that the result names ([`Sketch::of_answer`]).
    sketch: Option<Sketch>,
    /// Every number, id, date, path or quoted string of the answer, when it has a sketch: two
    /// similar answers that differ in one of these are different answers.
    /// (Folded to 32 bits: only compared for equality.)
    answer_ids: u32,
    /// A failure's text with what it echoes of the call's arguments left out (see
    /// [`sketch::error_key`]); for failures only, out of line (most calls succeed).
    error_key: Option<Box<ErrorKey>>,
}

#[derive(Debug, Clone)]
struct Entry {
    fp: Fingerprint,
    tool_fp: Fingerprint,
    /// Shared with the session's other calls of the tool.
    tool: Arc<str>,
    effect: Effect,
    /// The arguments' similarity sketch; `None` when `loop.near_duplicate` is off for the tool.
    sketch: Option<Sketch>,
    /// The arguments have prose (a summary, a message: [`crate::sketch::Builder::split`]),
    /// whose sketch is in `Session::proses` (most calls have none).
    prose: bool,
    outcome: Option<Outcome>,
}

/// True when two calls' arguments are nearly the same: their sketches [`sketch::NEAR_ARGS`]
/// alike, and their prose, if any, [`sketch::NEAR_PROSE`] alike in words (prose in one call
/// only: not alike).
fn alike(a: &Sketch, a_prose: Option<&Sketch>, b: &Sketch, b_prose: Option<&Sketch>) -> bool {
    a.similar(b, sketch::NEAR_ARGS)
        && match (a_prose, b_prose) {
            (None, None) => true,
            (Some(x), Some(y)) => x.similar(y, sketch::NEAR_PROSE),
            _ => false,
        }
}

/// Counters a caller may read (and tests use to prove the history unchanged).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    /// Calls allowed to run since the session started (or was reset).
    pub calls: u64,
    /// Calls blocked or halted.
    pub blocked: u64,
    /// Recorded results flagged as errors.
    pub errors: u64,
    /// Results recorded, late ones included.
    pub results: u64,
    /// Results that came after their call had left the window (see [`Session::record`]).
    pub late: u64,
    /// Observe mode: calls let run although an enforcing guard would have warned, blocked or
    /// halted them (those blocked or halted are also counted in `blocked`).
    pub observed: u64,
    /// Calls in the history window now.
    pub history_len: u32,
    /// A hash of everything in the history: equal before and after a call that did not change it.
    pub history_hash: u64,
}

/// One detector's finding: `count` is what the rule counted, `max` its threshold.
struct Finding {
    rule: Rule,
    count: u32,
    max: u32,
    /// For `loop.cycle`, the cycle's period.
    period: usize,
    /// False when a warning would be noise (the answer just changed: the world is moving).
    warnable: bool,
}

/// The history of one agent run and the verdicts on its calls.
pub struct Session {
    engine: Arc<Engine>,
    /// Executed calls, oldest first; call ids are consecutive within it.
    history: VecDeque<Entry>,
    /// The fingerprints of `history`, kept apart so the identical-call scan touches only them.
    fps: VecDeque<Fingerprint>,
    /// Where the proposed call ran before: its indexes in `history`, newest first. Found in one
    /// pass over `fps` per check and shared by the detectors that follow one call's executions
    /// (kept between checks so the buffer is allocated once).
    executions: Vec<u32>,
    /// How many fingerprints of the window fall in each of [`FP_SLOTS`] slots (by their top
    /// bits): a proposed call whose slot is empty never ran in the window, and most never did,
    /// so the scan of `fps` is skipped. Empty (no skipping) for windows too large for `u16`.
    fp_slots: Vec<u16>,
    /// Never restarts, not even on `reset`: a call id is issued once per session, so a result
    /// that comes late is never taken for another call's.
    next_call_id: u64,
    epoch: Epoch,
    calls: u64,
    blocked: u64,
    errors: u64,
    results: u64,
    late: u64,
    /// Observe mode: calls let run that an enforcing guard would have warned, blocked or halted.
    observed: u64,
    /// Calls that left the window before their result came, by call id, with their effect: a
    /// successful late write is still progress. At most a window's worth, the oldest dropped
    /// first.
    in_flight_evicted: BTreeMap<u64, Effect>,
    blocks_since_progress: u32,
    per_tool: BTreeMap<Fingerprint, u64>,
    /// Per tool, its newest error in the window (call id, the start of its text), quoted in
    /// block messages. One per tool rather than one per call: it is the only one quoted.
    last_errors: BTreeMap<Fingerprint, (u64, Box<str>)>,
    /// Start times of recent calls, for `budget.rate`.
    recent: VecDeque<u64>,
    /// The agent's tool names, sorted, when registered.
    tools: Option<Vec<String>>,
    resolved: BTreeMap<Fingerprint, Arc<ToolInfo>>,
    /// The distinct resolutions in `resolved` (a resolution depends only on the entries that
    /// apply).
    resolutions: Vec<Arc<Resolved>>,
    /// A halt is final until `reset`.
    halted: Option<(Cow<'static, str>, String)>,
    /// The arguments parsed for argument rules; kept between checks so its memory is reused.
    doc: Doc,
    /// The argument tokens of the newest calls still waiting for their result (by call id), for
    /// reading what their errors echo; a result that comes after [`ECHO_PENDING`] newer calls is
    /// compared without.
    echoes: VecDeque<(u64, ArgTokens)>,
    /// The prose sketches of the window's calls that have prose, by call fingerprint (the same
    /// arguments have the same prose), with how many calls of the window have it.
    proses: BTreeMap<Fingerprint, (Sketch, u32)>,
}

/// What the policy says about one tool name, and the effect its name alone implies (inferred
/// once per tool instead of once per call).
struct ToolInfo {
    /// The name, shared by the history's calls of the tool.
    name: Arc<str>,
    /// Shared by every tool the same policy entries apply to (most often all of them).
    resolved: Arc<Resolved>,
    /// `effect::infer(tool, None)`.
    by_name: Effect,
}

/// Distinct tool names whose resolution is cached; past it they are resolved per call.
const RESOLVE_CACHE_MAX: usize = 1024;
/// `loop.near_duplicate` looks back at most this many times `max_near_duplicate` executions of
/// the tool: variations of a call come close together.
const NEAR_LOOKBACK: u32 = 8;
/// Bytes of memory a session's [`Doc`] keeps between checks; a larger one is freed after use.
const DOC_KEEP_MAX: usize = 2 * 1024;
/// Calls whose argument tokens are kept until their result comes (`Session::echoes`).
const ECHO_PENDING: usize = 8;
/// Slots of `Session::fp_slots` (2 KiB).
const FP_SLOTS: usize = 1024;

fn fp_slot(fp: Fingerprint) -> usize {
    (fp >> 54) as usize
}

/// The progress counter. It is only ever compared for equality between calls of one window,
/// so 32 bits (wrapping) are plenty and keep the history small.
type Epoch = u32;

/// Bytes of an error kept to quote in messages.
const EXCERPT_MAX: usize = 160;

impl Session {
    pub fn new(engine: Arc<Engine>) -> Session {
        let window = engine.policy.window as usize;
        Session {
            engine,
            history: VecDeque::with_capacity(window),
            fps: VecDeque::with_capacity(window),
            executions: Vec::with_capacity(window),
            fp_slots: if window <= u16::MAX as usize { vec![0; FP_SLOTS] } else { Vec::new() },
            next_call_id: 1,
            epoch: 0,
            calls: 0,
            blocked: 0,
            errors: 0,
            results: 0,
            late: 0,
            observed: 0,
            in_flight_evicted: BTreeMap::new(),
            blocks_since_progress: 0,
            per_tool: BTreeMap::new(),
            last_errors: BTreeMap::new(),
            recent: VecDeque::new(),
            tools: None,
            resolved: BTreeMap::new(),
            resolutions: Vec::new(),
            halted: None,
            doc: Doc::default(),
            echoes: VecDeque::with_capacity(ECHO_PENDING),
            proses: BTreeMap::new(),
        }
    }

    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// Registers the agent's tool names: a call to any other tool is then blocked (`tool.unknown`).
    /// An empty list forgets them.
    pub fn set_tools<S: AsRef<str>>(&mut self, names: &[S]) {
        if names.is_empty() {
            self.tools = None;
            return;
        }
        let mut v: Vec<String> = names.iter().map(|s| String::from(s.as_ref())).collect();
        v.sort();
        v.dedup();
        self.tools = Some(v);
    }

    /// Forgets the history, counters and any halt; keeps the policy and the registered tools.
    /// Call ids go on from where they were: a result for a call issued before the reset is late.
    pub fn reset(&mut self) {
        let tools = self.tools.take();
        let next_call_id = self.next_call_id;
        *self = Session::new(self.engine.clone());
        self.tools = tools;
        self.next_call_id = next_call_id;
    }

    pub fn stats(&self) -> Stats {
        let mut h = 0u64;
        let first = self.first_call_id();
        for (i, e) in self.history.iter().enumerate() {
            let (r, err) = e.outcome.as_ref().map_or((0, 2), |o| (o.result, o.error as u64));
            let call_id = first + i as u64;
            h = canon::call_fingerprint("", h ^ e.fp ^ r.rotate_left(17) ^ err ^ call_id.rotate_left(40));
        }
        Stats {
            calls: self.calls,
            blocked: self.blocked,
            errors: self.errors,
            results: self.results,
            late: self.late,
            observed: self.observed,
            history_len: self.history.len() as u32,
            history_hash: h,
        }
    }

    /// The call id of the oldest call in the window (call ids are consecutive within it).
    /// The prose sketch of a call of the window.
    fn prose_of(&self, e: &Entry) -> Option<&Sketch> {
        if !e.prose {
            return None;
        }
        self.proses.get(&e.fp).map(|(p, _)| p)
    }

    /// A call with prose left the window.
    fn forget_prose(&mut self, fp: Fingerprint) {
        if let Some((_, n)) = self.proses.get_mut(&fp) {
            *n -= 1;
            if *n == 0 {
                self.proses.remove(&fp);
            }
        }
    }

    fn first_call_id(&self) -> u64 {
        self.next_call_id - self.history.len() as u64
    }

    fn resolve(&mut self, tool: &str, tool_fp: Fingerprint) -> Arc<ToolInfo> {
        if let Some(r) = self.resolved.get(&tool_fp) {
            return r.clone();
        }
        let resolved = self.engine.policy.resolve(tool);
        let cache = self.resolved.len() < RESOLVE_CACHE_MAX;
        let resolved = match self.resolutions.iter().find(|r| r.entries == resolved.entries) {
            Some(r) => r.clone(),
            None => {
                let r = Arc::new(resolved);
                if cache {
                    self.resolutions.push(r.clone());
                }
                r
            }
        };
        let r = Arc::new(ToolInfo { name: Arc::from(tool), resolved, by_name: effect::infer(tool, None) });
        if cache {
            self.resolved.insert(tool_fp, r.clone());
        }
        r
    }

    /// Decides on a call before it runs. `now_ms` is the caller's clock (milliseconds), used only
    /// by `budget.rate`.
    ///
    /// Allowed calls (`allow`, `warn`) enter the history and get a call id to record the result
    /// under; blocked ones leave the history as it was.
    ///
    /// Under a policy with `mode = "observe"` every call runs: the verdict is computed on the
    /// history as executed, and one that is not `allow` comes back as `allow` with the action it
    /// would have been in [`Verdict::observed`] (its rule, message and count kept); a call that
    /// would have been blocked or halted enters the history like any other, and a halt does not
    /// stick (each later call is judged on its own).
    pub fn check(&mut self, tool: &str, args: &[u8], now_ms: u64) -> Result<Verdict, CheckError> {
        let mut v = self.decide(tool, args, now_ms)?;
        if !self.engine.policy.observe || v.action == Action::Allow {
            return Ok(v);
        }
        self.observed += 1;
        if !v.action.runs() {
            self.halted = None;
            v.call_id = self.admit(tool, args, now_ms);
        }
        v.observed = Some(v.action);
        v.action = Action::Allow;
        Ok(v)
    }

    /// Observe mode: puts a call the verdict would have kept from running into the history, as
    /// it runs anyway. Its arguments were valid (or too large to read): the check said so.
    fn admit(&mut self, tool: &str, args: &[u8], now_ms: u64) -> u64 {
        let engine = self.engine.clone();
        let policy = &engine.policy;
        let tool_fp = canon::tool_fingerprint(tool);
        let info = self.resolve(tool, tool_fp);
        let limits = &info.resolved.limits;
        let want_sketch = limits.max_near_duplicate > 0 || limits.max_near_errors > 0;
        let mut echo = ArgTokens::new();
        let hashed = core::str::from_utf8(args)
            .ok()
            .filter(|_| args.len() <= policy.budget.max_args_bytes)
            .and_then(|text| canon::hash_json_str(text, &policy.ignore_fields, want_sketch, Some(&mut echo)).ok());
        let (fp, sketches, effect) = match hashed {
            Some(h) => {
                let effect = info.resolved.effect.unwrap_or_else(|| match h.command.as_deref() {
                    None => info.by_name,
                    command => effect::infer(tool, command),
                });
                (canon::call_fingerprint(tool, h.fingerprint), (h.sketch, h.prose), effect)
            }
            None => (canon::call_fingerprint(tool, canon::bytes_fingerprint(args)), (None, None), info.resolved.effect.unwrap_or(info.by_name)),
        };
        let call_id = self.push(fp, tool_fp, info.name.clone(), effect, sketches, now_ms);
        if want_sketch {
            self.keep_echo(call_id, echo);
        }
        call_id
    }

    fn decide(&mut self, tool: &str, args: &[u8], now_ms: u64) -> Result<Verdict, CheckError> {
        if tool.is_empty() {
            return Err(CheckError::EmptyToolName);
        }
        // Oversized arguments are judged without reading them (bounded time); the others are
        // checked for UTF-8 once, here, and parsed as `str` from then on.
        let oversized = args.len() > self.engine.policy.budget.max_args_bytes;
        let text = if oversized {
            ""
        } else {
            core::str::from_utf8(args).map_err(|e| CheckError::InvalidUtf8(e.valid_up_to()))?
        };
        if let Some((rule, message)) = &self.halted {
            let v = Verdict { action: Action::Halt, rule: rule.clone(), message: message.clone(), call_id: 0, count: self.blocks_since_progress, observed: None };
            self.blocked += 1;
            return Ok(v);
        }
        let engine = self.engine.clone();
        let policy = &engine.policy;

        if oversized {
            let msg = format!(
                "Blocked: the arguments of `{tool}` are {} bytes, more than the {} bytes this agent may send in one call. Send a smaller request: split the work, or pass a reference (a path, an id) instead of the content.",
                args.len(), policy.budget.max_args_bytes
            );
            return Ok(self.block(Rule::BudgetArgsSize, msg, 1));
        }
        let tool_fp = canon::tool_fingerprint(tool);
        let info = self.resolve(tool, tool_fp);
        let resolved = &info.resolved;

        if let Some(i) = resolved.denied_by {
            let msg = policy.tools[i].message.clone().unwrap_or_else(|| {
                format!("Blocked: the tool `{tool}` is not allowed by this agent's policy. Do not call it again; reach the goal with the other tools, or tell the user it needs `{tool}`.")
            });
            return Ok(self.block(Rule::ToolDenied, msg, 1));
        }
        if policy.deny_unknown_tools {
            if let Some(known) = &self.tools {
                if known.binary_search_by(|t| t.as_str().cmp(tool)).is_err() {
                    let msg = format!(
                        "Blocked: there is no tool named `{tool}`. The available tools are: {}. Call one of these instead.",
                        known.join(", ")
                    );
                    return Ok(self.block(Rule::ToolUnknown, msg, 1));
                }
            }
        }

        let limits = &resolved.limits;
        let want_sketch = limits.max_near_duplicate > 0 || limits.max_near_errors > 0;
        let mut echo = ArgTokens::new();
        let hashed = match (&engine.rules, resolved.has_rules) {
            (Some(rules), true) => {
                // One pass parses, hashes and sketches the arguments; the rules read the result.
                let mut doc = core::mem::take(&mut self.doc);
                let hashed = canon::hash_json_doc(text, &policy.ignore_fields, want_sketch, &mut doc, Some(&mut echo));
                let hit = hashed.is_ok().then(|| rules.check_call(&resolved.entries, doc.with(text).root())).flatten();
                // Keep the memory for the next call, unless these arguments made it large.
                if doc.footprint() <= DOC_KEEP_MAX {
                    self.doc = doc;
                }
                let hashed = hashed.map_err(|e| CheckError::InvalidJson(e.to_string()))?;
                if let Some(hit) = hit {
                    return Ok(self.block_owned(hit.id, hit.message, 1));
                }
                hashed
            }
            _ => canon::hash_json_str(text, &policy.ignore_fields, want_sketch, Some(&mut echo))
                .map_err(|e| CheckError::InvalidJson(e.to_string()))?,
        };
        let fp = canon::call_fingerprint(tool, hashed.fingerprint);
        let effect = resolved.effect.unwrap_or_else(|| match hashed.command.as_deref() {
            None => info.by_name,
            command => effect::infer(tool, command),
        });

        if let Some(v) = self.check_budgets(tool, tool_fp, resolved, now_ms) {
            return Ok(v);
        }
        self.find_executions(fp);

        let findings = [
            self.identical(limits),
            self.no_progress(limits),
            self.transient(fp, limits),
            self.errors_in_a_row(limits),
            self.same_error(tool_fp, limits),
            self.cycle(fp, limits),
            self.near_errors(tool_fp, fp, hashed.sketch.as_ref(), hashed.prose.as_deref(), limits),
            self.near_duplicate(tool_fp, fp, hashed.sketch.as_ref(), hashed.prose.as_deref(), limits),
        ];
        if let Some(f) = findings.iter().flatten().find(|f| f.count >= f.max) {
            let msg = self.block_message(f, tool);
            return Ok(self.block(f.rule, msg, f.count));
        }
        let warning = findings.iter().flatten().find(|f| f.warnable && f.count + 1 == f.max && f.count > 0);
        let previous = self.executions.len() as u32;
        let call_id = self.push(fp, tool_fp, info.name.clone(), effect, (hashed.sketch, hashed.prose), now_ms);
        if want_sketch {
            self.keep_echo(call_id, echo);
        }
        Ok(match warning {
            None => Verdict::allow(call_id, previous),
            Some(f) => Verdict {
                action: Action::Warn,
                rule: Cow::Borrowed(f.rule.name()),
                message: self.warn_message(f, tool),
                call_id,
                count: f.count,
                observed: None,
            },
        })
    }

    /// Attaches what a call returned. `is_error` marks a failed call.
    ///
    /// A result that comes after its call has left the window (a slow tool beside many fast
    /// ones) is *late*: it is accepted and counted in [`Stats::late`], and used where it still
    /// can be: a failure counts toward `budget.errors`, a write that succeeded is progress. It
    /// can no longer be compared with other answers. A second result for a call that has left
    /// the window may go unnoticed.
    pub fn record(&mut self, call_id: u64, output: &[u8], is_error: bool) -> Result<(), RecordError> {
        let first = self.first_call_id();
        if call_id == 0 || call_id >= self.next_call_id {
            return Err(RecordError::UnknownCall(call_id));
        }
        if call_id < first {
            self.record_late(call_id, is_error);
            return Ok(());
        }
        let idx = (call_id - first) as usize;
        if self.history[idx].outcome.is_some() {
            return Err(RecordError::AlreadyRecorded(call_id));
        }
        self.results += 1;
        let engine = self.engine.clone();
        let policy = &engine.policy;
        let masked: Cow<[u8]> = if policy.normalize_results { mask_volatile(output) } else { Cow::Borrowed(output) };
        let masked = match &engine.rules {
            Some(r) => r.mask(masked),
            None => masked,
        };
        let result = canon::result_fingerprint(&masked, &policy.ignore_fields);
        let previous = self.previous_outcome(idx);
        let changed = previous.is_some_and(|p| p.result != result && !(p.error && is_error));
        let write_ok = !is_error && self.history[idx].effect == Effect::Write;

        let epoch_before = self.epoch;
        if write_ok || changed {
            self.epoch = self.epoch.wrapping_add(1);
            self.blocks_since_progress = 0;
        }
        if is_error {
            self.errors += 1;
        }
        if is_error {
            let tool_fp = self.history[idx].tool_fp;
            let newer = self.last_errors.get(&tool_fp).map_or(true, |(id, _)| *id < call_id);
            if newer {
                self.last_errors.insert(tool_fp, (call_id, excerpt(&masked).into_boxed_str()));
            }
        }
        let echo = self.echoes.iter().position(|(id, _)| *id == call_id).and_then(|i| self.echoes.remove(i)).map(|(_, e)| e);
        // The filter of the arguments' tokens, built only for a failure (the only result read with it).
        let echo = echo.filter(|_| is_error).map(|tokens| tokens.filter());
        let (sketch, answer_ids) = match self.history[idx].sketch.as_ref() {
            Some(args) => {
                let (sketch, ids) = Sketch::of_answer_and_ids(&masked, args);
                (Some(sketch), ids.folded())
            }
            None => (None, 0),
        };
        let error_key = (is_error && self.history[idx].sketch.is_some()).then(|| Box::new(sketch::error_key(&masked, echo.as_ref())));
        self.history[idx].outcome = Some(Outcome {
            result,
            error: is_error,
            transient: is_error && effect::is_transient(output),
            changed,
            epoch_before,
            epoch_after: self.epoch,
            sketch,
            answer_ids,
            error_key,
        });
        Ok(())
    }

    /// A result for a call that has left the window (see [`Session::record`]).
    fn record_late(&mut self, call_id: u64, is_error: bool) {
        self.results += 1;
        self.late += 1;
        if is_error {
            self.errors += 1;
        }
        let write = self.in_flight_evicted.remove(&call_id)== Some(Effect::Write);
        if write && !is_error {
            self.epoch = self.epoch.wrapping_add(1);
            self.blocks_since_progress = 0;
        }
    }

    /// The outcome of the newest earlier execution of the call at `idx` in the window, if any
    /// (later executions may have been recorded first, when calls run in parallel).
    fn previous_outcome(&mut self, idx: usize) -> Option<&Outcome> {
        let fp = self.history[idx].fp;
        // Most calls are the only one of their fingerprint slot in the window.
        if self.fp_slots.get(fp_slot(fp)) == Some(&1) {
            return None;
        }
        // The scan the check uses (its list is rebuilt by every check).
        self.find_executions(fp);
        self.executions.iter().filter(|&&i| (i as usize) < idx).find_map(|&i| self.history[i as usize].outcome.as_ref())
    }

    /// Keeps a call's argument tokens until its result comes (an error that echoes them is masked).
    fn keep_echo(&mut self, call_id: u64, echo: ArgTokens) {
        if self.echoes.len() == ECHO_PENDING {
            self.echoes.pop_front();
        }
        self.echoes.push_back((call_id, echo));
    }

    fn push(&mut self, fp: Fingerprint, tool_fp: Fingerprint, tool: Arc<str>, effect: Effect, sketches: (Option<Sketch>, Option<Box<Sketch>>), now_ms: u64) -> u64 {
        let (sketch, prose) = sketches;
        let call_id = self.next_call_id;
        self.next_call_id += 1;
        let window = self.engine.policy.window as usize;
        if self.history.len() >= window {
            let oldest = call_id - self.history.len() as u64;
            if let (Some(old), false) = (self.fps.pop_front(), self.fp_slots.is_empty()) {
                self.fp_slots[fp_slot(old)] -= 1;
            }
            if let Some(e) = self.history.pop_front() {
                if e.prose {
                    self.forget_prose(e.fp);
                }
                // Its tool's newest error leaves the window with it (any older one already has).
                if self.last_errors.get(&e.tool_fp).is_some_and(|(id, _)| *id == oldest) {
                    self.last_errors.remove(&e.tool_fp);
                }
                if e.outcome.is_none() {
                    if self.in_flight_evicted.len() >= window {
                        self.in_flight_evicted.pop_first();
                    }
                    self.in_flight_evicted.insert(oldest, e.effect);
                }
            }
        }
        if let Some(p) = &prose {
            self.proses.entry(fp).or_insert((**p, 0)).1 += 1;
        }
        self.history.push_back(Entry { fp, tool_fp, tool, effect, sketch, prose: prose.is_some(), outcome: None });
        self.fps.push_back(fp);
        if let Some(n) = self.fp_slots.get_mut(fp_slot(fp)) {
            *n += 1;
        }
        self.calls += 1;
        *self.per_tool.entry(tool_fp).or_insert(0) += 1;
        if self.engine.policy.budget.max_calls_per_minute.is_some() {
            self.recent.push_back(now_ms);
        }
        call_id
    }

    fn block(&mut self, rule: Rule, message: String, count: u32) -> Verdict {
        self.block_owned_rule(Cow::Borrowed(rule.name()), message, count)
    }

    fn block_owned(&mut self, rule: String, message: String, count: u32) -> Verdict {
        self.block_owned_rule(Cow::Owned(rule), message, count)
    }

    fn block_owned_rule(&mut self, rule: Cow<'static, str>, message: String, count: u32) -> Verdict {
        self.blocked += 1;
        let max = self.engine.policy.max_blocked;
        if max > 0 && self.blocks_since_progress >= max {
            let msg = format!(
                "Halted: the agent kept trying calls that were blocked ({} in a row without progress; the last one by `{rule}`). The run is stopped. {message}",
                self.blocks_since_progress + 1
            );
            let rule = Cow::Borrowed(Rule::HaltIgnoredBlocks.name());
            self.halted = Some((rule.clone(), msg.clone()));
            return Verdict { action: Action::Halt, rule, message: msg, call_id: 0, count: self.blocks_since_progress + 1, observed: None };
        }
        self.blocks_since_progress += 1;
        Verdict { action: Action::Block, rule, message, call_id: 0, count, observed: None }
    }

    fn halt(&mut self, rule: Rule, message: String, count: u32) -> Verdict {
        self.blocked += 1;
        self.halted = Some((Cow::Borrowed(rule.name()), message.clone()));
        Verdict { action: Action::Halt, rule: Cow::Borrowed(rule.name()), message, call_id: 0, count, observed: None }
    }

    fn check_budgets(&mut self, tool: &str, tool_fp: Fingerprint, resolved: &Resolved, now_ms: u64) -> Option<Verdict> {
        let budget = &self.engine.policy.budget;
        if let Some(max) = budget.max_calls {
            if self.calls >= max {
                let msg = format!("Halted: this run has used its budget of {max} tool calls. Stop here and report what you have found so far.");
                return Some(self.halt(Rule::BudgetCalls, msg, clamp(self.calls)));
            }
        }
        if let Some(max) = budget.max_errors {
            if self.errors >= max {
                let msg = format!("Halted: {} tool calls have failed in this run, the most allowed is {max}. Stop here and report the failures.", self.errors);
                return Some(self.halt(Rule::BudgetErrors, msg, clamp(self.errors)));
            }
        }
        if let Some(max) = resolved.max_calls {
            let used = self.per_tool.get(&tool_fp).copied().unwrap_or(0);
            if used >= max {
                let msg = format!("Blocked: `{tool}` has been called {used} times in this run, the most allowed is {max}. Continue without it, using the results you already have.");
                return Some(self.block(Rule::BudgetToolCalls, msg, clamp(used)));
            }
        }
        if let Some(max) = budget.max_calls_per_minute {
            while self.recent.front().is_some_and(|&t| now_ms.saturating_sub(t) >= 60_000) {
                self.recent.pop_front();
            }
            if self.recent.len() as u64 >= max as u64 {
                let msg = format!("Blocked: {} tool calls in the last minute, the most allowed is {max}. Slow down: wait before calling `{tool}` again.", self.recent.len());
                return Some(self.block(Rule::BudgetRate, msg, self.recent.len() as u32));
            }
        }
        None
    }

    // ---- detectors -------------------------------------------------------------------------

    /// Finds the executions of `fp` in the window (into `self.executions`, newest first).
    fn find_executions(&mut self, fp: Fingerprint) {
        let found = &mut self.executions;
        found.clear();
        if self.fp_slots.get(fp_slot(fp)) == Some(&0) {
            return;
        }
        let (a, b) = self.fps.as_slices();
        for (start, part) in [(0, a), (a.len(), b)] {
            // Most proposed calls never ran in the window: test eight fingerprints at a time,
            // without a branch per fingerprint, and look closer only at a block with a match.
            let mut first = start;
            for block in part.chunks(8) {
                let hit = match *block {
                    [a, b, c, d, e, f, g, h] => {
                        ((a == fp) | (b == fp)) | ((c == fp) | (d == fp)) | ((e == fp) | (f == fp)) | ((g == fp) | (h == fp))
                    }
                    _ => block.contains(&fp),
                };
                if hit {
                    found.extend(block.iter().enumerate().filter(|(_, &x)| x == fp).map(|(i, _)| (first + i) as u32));
                }
                first += block.len();
            }
        }
        found.reverse();
    }

    /// Executions of the proposed call in the window, newest first (see `find_executions`).
    fn executions(&self) -> impl Iterator<Item = &Entry> {
        self.executions.iter().map(move |&i| &self.history[i as usize])
    }

    fn identical(&self, l: &Limits) -> Option<Finding> {
        (l.max_identical > 0).then_some(Finding {
            rule: Rule::Identical,
            count: self.executions.len() as u32,
            max: l.max_identical,
            period: 0,
            warnable: true,
        })
    }

    /// Counts a run of recorded outcomes (newest first) that pass `keep`, with no progress between
    /// two of them nor since the newest. In-flight calls are skipped; a transient failure ends the
    /// run (time passing is a chance to recover).
    fn quiet_run<'a>(&self, outcomes: impl Iterator<Item = &'a Outcome>, keep: impl Fn(&Outcome, &Outcome) -> bool) -> u32 {
        let mut run = 0;
        let mut newest: Option<&Outcome> = None;
        let mut later: Option<&Outcome> = None;
        for o in outcomes {
            if o.transient {
                break;
            }
            let quiet = match later {
                None => o.epoch_after == self.epoch,
                Some(l) => l.epoch_before == o.epoch_after,
            };
            if !quiet || !keep(newest.unwrap_or(o), o) {
                break;
            }
            newest.get_or_insert(o);
            later = Some(o);
            run += 1;
        }
        run
    }

    fn no_progress(&self, l: &Limits) -> Option<Finding> {
        if l.max_no_progress == 0 {
            return None;
        }
        let mut outcomes = self.executions().filter_map(|e| e.outcome.as_ref()).peekable();
        // A poll whose answer just changed is watching a moving world: no nudge for it.
        let warnable = outcomes.peek().is_some_and(|o| !o.changed);
        let count = self.quiet_run(outcomes, |newest, o| o.result == newest.result);
        Some(Finding { rule: Rule::NoProgress, count, max: l.max_no_progress, period: 0, warnable })
    }

    fn errors_in_a_row(&self, l: &Limits) -> Option<Finding> {
        if l.max_consecutive_errors == 0 {
            return None;
        }
        let outcomes = self.executions().filter_map(|e| e.outcome.as_ref());
        let count = self.quiet_run(outcomes, |_, o| o.error);
        Some(Finding { rule: Rule::Error, count, max: l.max_consecutive_errors, period: 0, warnable: true })
    }

    fn same_error(&self, tool_fp: Fingerprint, l: &Limits) -> Option<Finding> {
        if l.max_same_error == 0 {
            return None;
        }
        let outcomes = self.history.iter().rev().filter(|e| e.tool_fp == tool_fp).filter_map(|e| e.outcome.as_ref());
        let count = self.quiet_run(outcomes, |newest, o| o.error && o.result == newest.result);
        Some(Finding { rule: Rule::SameError, count, max: l.max_same_error, period: 0, warnable: true })
    }

    /// The same call failing with the same transient error, back to back: any other call in
    /// between resets the count.
    fn transient(&self, fp: Fingerprint, l: &Limits) -> Option<Finding> {
        if l.max_transient_retries == 0 {
            return None;
        }
        let mut count = 0;
        let mut first: Option<Fingerprint> = None;
        for e in self.history.iter().rev() {
            match &e.outcome {
                Some(o) if e.fp == fp && o.transient && first.map_or(true, |r| r == o.result) => {
                    first = Some(o.result);
                    count += 1;
                }
                None if e.fp == fp => continue,
                _ => break,
            }
        }
        Some(Finding { rule: Rule::Transient, count, max: l.max_transient_retries, period: 0, warnable: true })
    }

    /// The last calls repeat a cycle of period 2..=max_cycle_period with the same answers each
    /// round, and the proposed call continues it. `count` is the rounds completed.
    fn cycle(&self, fp: Fingerprint, l: &Limits) -> Option<Finding> {
        if l.max_cycle_period < 2 || l.max_cycle_repeats < 2 {
            return None;
        }
        let h = &self.history;
        let n = h.len();
        let mut best: Option<Finding> = None;
        for p in 2..=l.max_cycle_period as usize {
            if n < p || h[n - p].fp != fp {
                continue;
            }
            // A cycle of one call repeated is `loop.identical`'s business.
            if h.range(n - p..).all(|e| e.fp == fp) {
                continue;
            }
            let need = p * l.max_cycle_repeats as usize;
            let mut len = p; // calls at the tail forming the periodic run
            while len < need.min(n) {
                let (a, b) = (&h[n - 1 - len], &h[n - 1 - len + p]);
                let same = a.fp == b.fp
                    && matches!((&a.outcome, &b.outcome), (Some(x), Some(y)) if x.result == y.result && !x.transient);
                if !same {
                    break;
                }
                len += 1;
            }
            // The tail's own answers must be known too.
            if h.range(n - p..).any(|e| e.outcome.is_none()) {
                continue;
            }
            let max = l.max_cycle_repeats;
            if len >= need {
                return Some(Finding { rule: Rule::Cycle, count: max, max, period: p, warnable: true });
            }
            // Once this call runs, the cycle is complete: the next round will be blocked.
            if len + 1 == need && best.is_none() {
                best = Some(Finding { rule: Rule::Cycle, count: max - 1, max, period: p, warnable: true });
            }
        }
        best
    }

    /// `loop.near_error`: the agent re-sends a call that already failed, after near-identical
    /// variations of it failed with the identical error, with no progress between: the
    /// variations count as the same call failing the same way (the third attempt at 2). Errors
    /// are compared with what they echo of each call's own arguments left out
    /// ([`sketch::error_key`]: `old_str `…` did not appear`, `paid 957`). Variations that never
    /// come back to an earlier call are left to `loop.near_duplicate`.
    ///
    /// A variation is another call of the tool whose arguments are [`sketch::NEAR_ARGS`] alike.
    /// A variation that lacks a number, id, date, path or quoted string the proposed call has
    /// asked another question (the next id of a sweep), and is looked past, unless its error
    /// shows the change did not matter: the error names each value the variation had in its
    /// place (echoed, so masked) and carries information of its own the agent did not send
    /// (`total price is 1002, but paid 957`, then `… but paid 1047`). An error that only
    /// repeats the changed value (`flight HAT1 not available`) is an answer about that value.
    /// The run ends at a success, a transient failure, or a different error; a run of exact
    /// repeats alone is left to the exact rules, and so is an error that a call unlike this one
    /// (not a variation) got too, nearly word for word, since it does not come from these
    /// arguments. Bounded like
    /// `loop.near_duplicate`.
    fn near_errors(&self, tool_fp: Fingerprint, fp: Fingerprint, args: Option<&Sketch>, prose: Option<&Sketch>, l: &Limits) -> Option<Finding> {
        let anchor = args.filter(|_| l.max_near_errors > 0)?;
        let none = Finding { rule: Rule::NearError, count: 0, max: l.max_near_errors, period: 0, warnable: true };
        // No failure of the tool in the window (its newest error is kept while in it).
        if !self.last_errors.contains_key(&tool_fp) {
            return Some(none);
        }
        let (mut run, mut varied, mut returned) = (0u32, false, false);
        let mut key: Option<u64> = None;
        let mut later: Option<&Outcome> = None;
        let mut budget = NEAR_LOOKBACK.saturating_mul(l.max_near_errors);
        // Errors of the tool's calls unlike this one (not variations): the same or nearly the
        // same error there (the answers compared as returned, since each call echoes its own
        // arguments) says it does not come from these arguments (a noisy environment), so
        // repeating it proves nothing about them; that is `loop.same_error`'s business.
        let mut unlike: [Option<&Sketch>; 8] = [None; 8];
        let mut n_unlike = 0;
        let mut newest: Option<&Sketch> = None;
        for e in self.history.iter().rev() {
            if e.tool_fp != tool_fp {
                continue;
            }
            if budget == 0 {
                break;
            }
            budget -= 1;
            let Some(o) = &e.outcome else { continue };
            let quiet = match later {
                None => o.epoch_after == self.epoch,
                Some(l) => l.epoch_before == o.epoch_after,
            };
            if !quiet {
                break;
            }
            let exact = e.fp == fp;
            if !exact {
                let Some(s) = &e.sketch else { continue };
                if !alike(s, self.prose_of(e), anchor, prose) {
                    if o.error && n_unlike < unlike.len() {
                        unlike[n_unlike] = o.sketch.as_ref();
                        n_unlike += 1;
                    }
                    continue;
                }
                if anchor.introduces(s) {
                    // Every value the variation had that the proposed call lacks is echoed.
                    let echoed = o.error_key.as_deref().is_some_and(|k| k.own_ids && s.ids().within(&k.echoed.or(&anchor.ids())));
                    if !echoed {
                        continue;
                    }
                }
            }
            let Some(ek) = o.error_key.as_deref().filter(|_| o.error && !o.transient) else { break };
            match key {
                None => {
                    key = Some(ek.key);
                    newest = o.sketch.as_ref();
                }
                Some(k) if k != ek.key => break,
                Some(_) => {}
            }
            varied |= !exact;
            returned |= exact;
            later = Some(o);
            run += 1;
        }
        let general = newest.is_some_and(|n| unlike[..n_unlike].iter().flatten().any(|u| u.similar(n, sketch::NEAR_RESULT)));
        Some(Finding { count: if varied && returned && !general { run } else { 0 }, ..none })
    }

    /// Executions of the same tool with nearly the same arguments, each a small variation of the
    /// next (newest first, starting from the proposed call), that got the same or nearly the same
    /// answer, with no progress between them nor since. A variation that brings a number, id,
    /// date or path the earlier call did not have is a new target (a sweep), not a repeat, unless
    /// the answers show that the change did not matter: the later call has run too, both failed
    /// (not transiently) with the same answer, and their answers name ids of their arguments, all
    /// of which every variation of the run kept, the proposed call included (`Error: item KT-4410
    /// is out of stock`, again after another item was swapped but KT-4410 kept, is the same
    /// mistake). The proposed call has no answer yet: a new id in it is always a new target.
    /// Executions of the tool with other arguments are looked past (they are other work, and a
    /// read is no progress); a changed answer or a successful write ends the run. A run made only
    /// of exact repeats of the proposed call is left to the exact rules. Only the tool's last
    /// [`NEAR_LOOKBACK`] × `max_near_duplicate` executions are looked at, which bounds the cost.
    fn near_duplicate(&self, tool_fp: Fingerprint, fp: Fingerprint, args: Option<&Sketch>, prose: Option<&Sketch>, l: &Limits) -> Option<Finding> {
        let mut anchor = args.filter(|_| l.max_near_duplicate > 0)?;
        let mut anchor_prose = prose;
        // The ids every variation of the run so far holds, the proposed call's included.
        let mut kept = anchor.ids();
        let (mut run, mut varied) = (0u32, false);
        let mut newest: Option<&Outcome> = None;
        let mut later: Option<&Outcome> = None;
        let mut budget = NEAR_LOOKBACK.saturating_mul(l.max_near_duplicate);
        for e in self.history.iter().rev() {
            if e.tool_fp != tool_fp {
                continue;
            }
            if budget == 0 {
                break;
            }
            budget -= 1;
            let (Some(o), Some(s)) = (&e.outcome, &e.sketch) else { continue };
            // Progress since this execution: neither it nor an older one can be part of the run.
            // (Checked before the sketches: it is cheaper.)
            let quiet = match later {
                None => o.epoch_after == self.epoch,
                Some(l) => l.epoch_before == o.epoch_after,
            };
            if !quiet {
                break;
            }
            // A new id is tested first: it is a few bit operations, and in a sweep it is what
            // tells the calls apart, so the similarity is mostly not needed. A new target that
            // still counts must have got the same answer: one that did not is other work, looked
            // past like any other call.
            if anchor.introduces(s)
                && !later.is_some_and(|l| Self::change_did_not_matter(o, l, s, &kept) && Self::same_answer(newest, o))
            {
                continue;
            }
            let e_prose = self.prose_of(e);
            if !alike(s, e_prose, anchor, anchor_prose) {
                continue;
            }
            if !Self::same_answer(newest, o) {
                break;
            }
            newest.get_or_insert(o);
            later = Some(o);
            anchor = s;
            anchor_prose = e_prose;
            kept = kept.and(&s.ids());
            varied |= e.fp != fp;
            run += 1;
        }
        let count = if varied { run } else { 0 };
        Some(Finding { rule: Rule::NearDuplicate, count, max: l.max_near_duplicate, period: 0, warnable: true })
    }

    /// True when `o` got the same or nearly the same answer as `newest`, the run's newest
    /// execution (any answer, when there is none yet). Unlike the exact rules, a transient error
    /// does not end the run: re-sending a variation is not waiting for the service to recover.
    fn same_answer(newest: Option<&Outcome>, o: &Outcome) -> bool {
        newest.map_or(true, |n| {
            n.error == o.error
                && (n.result == o.result
                    || (n.answer_ids == o.answer_ids
                        && matches!((&n.sketch, &o.sketch), (Some(a), Some(b)) if a.similar(b, sketch::NEAR_RESULT))))
        })
    }

    /// True when `o` and `later` (the next variation, which brought a new id and got the same
    /// answer) failed, not transiently, and their answers name at least one id of their
    /// arguments, and only ids that `s` (the arguments of `o`) and every later variation
    /// (`kept`) hold: what the answer is about was the same in every variation, so what changed
    /// did not matter.
    fn change_did_not_matter(o: &Outcome, later: &Outcome, s: &Sketch, kept: &Ids) -> bool {
        match (&o.sketch, &later.sketch) {
            (Some(a), Some(b)) if o.error && !o.transient => {
                !a.ids().is_empty() && a.ids().or(&b.ids()).within(&kept.and(&s.ids()))
            }
            _ => false,
        }
    }

    // ---- messages --------------------------------------------------------------------------

    fn last_error(&self, tool: &str) -> Option<&str> {
        self.last_errors.get(&canon::tool_fingerprint(tool)).map(|(_, text)| &**text)
    }

    fn cycle_names(&self, period: usize) -> String {
        let n = self.history.len();
        let names: Vec<&str> = self.history.range(n - period.min(n)..).map(|e| &*e.tool).collect();
        names.join(" → ")
    }

    fn block_message(&self, f: &Finding, tool: &str) -> String {
        let err = self.last_error(tool).map(|e| format!(" The error was: \"{e}\".")).unwrap_or_default();
        match f.rule {
            Rule::Identical => format!(
                "Blocked: `{tool}` has already run {} times with exactly these arguments in this run. Repeating it will not give you anything new. Use the results you already have, change the arguments, or try a different approach.",
                f.count
            ),
            Rule::NoProgress => format!(
                "Blocked: `{tool}` with these exact arguments returned the same result {}, and nothing that could change it happened in between. Calling it again will return the same thing. Do not repeat this call: change something first (a different tool, different arguments, a fix), or tell the user what is in the way.",
                times(f.count)
            ),
            Rule::Transient => format!(
                "Blocked: `{tool}` failed {} times in a row with the same temporary error.{err} Retrying at once will not help: do something else first and come back to it later, or report that the service is unavailable.",
                f.count
            ),
            Rule::Error => format!(
                "Blocked: `{tool}` with these arguments failed {} times in a row, and nothing changed between the attempts.{err} Read the error and fix its cause, or change the arguments, before trying again.",
                f.count
            ),
            Rule::SameError => format!(
                "Blocked: the last {} calls to `{tool}` all failed with the same error, whatever their arguments.{err} Changing the arguments is not fixing it: deal with the error itself, or use another tool.",
                f.count
            ),
            Rule::Cycle => format!(
                "Blocked: your last calls repeat the same cycle ({}) {} times, with the same results every round. Going round again will not change anything: break the cycle with a different step, or stop and report what is blocking you.",
                self.cycle_names(f.period), f.count
            ),
            Rule::NearError => format!(
                "Blocked: `{tool}` with these or nearly the same arguments already failed {} with the same error, and nothing changed in between.{err} Small changes to the call are not fixing it: read the error and act on what it says (the value it asks for, a missing step), or tell the user what is in the way.",
                times(f.count)
            ),
            Rule::NearDuplicate => format!(
                "Blocked: the last {} calls to `{tool}` sent nearly the same arguments and got the same answer each time, with nothing changed in between.{err} Your variations do not change the outcome, so another one will not either. Stop rewording the call: read the answer and fix its cause (other values, a missing step first, a different tool), or tell the user what is in the way.",
                f.count
            ),
            _ => format!("Blocked: `{tool}` was blocked by rule {}.", f.rule),
        }
    }

    fn warn_message(&self, f: &Finding, tool: &str) -> String {
        match f.rule {
            Rule::Identical => format!(
                "Note: `{tool}` has now run {} times with exactly these arguments; the next identical call will be blocked.",
                f.count + 1
            ),
            Rule::NoProgress => format!(
                "Note: `{tool}` with these exact arguments already returned this result {} with nothing changed since. If the answer is the same again, do not repeat the call: it will be blocked.",
                times(f.count)
            ),
            Rule::Transient => format!(
                "Note: `{tool}` already failed {} in a row with the same temporary error. If this attempt fails too, do something else before retrying: an immediate retry will be blocked.",
                times(f.count)
            ),
            Rule::Error => format!(
                "Note: `{tool}` with these arguments already failed {} in a row. If it fails again, fix the cause or change the arguments: the same call will be blocked.",
                times(f.count)
            ),
            Rule::SameError => format!(
                "Note: the last {} calls to `{tool}` failed with the same error. If this one fails the same way, further calls to `{tool}` will be blocked until something changes.",
                f.count
            ),
            Rule::Cycle => format!(
                "Note: your recent calls are going round a cycle with the same results each time ({} rounds). Going round once more will be blocked: try a different step.",
                f.count
            ),
            Rule::NearError => format!(
                "Note: `{tool}` with these or nearly the same arguments already failed {} with the same error. If this attempt fails the same way, the next variation will be blocked: act on what the error says instead.",
                times(f.count)
            ),
            Rule::NearDuplicate => format!(
                "Note: `{tool}` already got the same answer {} to nearly these arguments, with nothing changed since. Small variations are not changing the outcome: if this attempt gets the same answer, the next variation will be blocked. Try a different approach instead.",
                times(f.count)
            ),
            _ => format!("Note: `{tool}` is close to the limit of rule {}.", f.rule),
        }
    }
}

/// "once", "twice", "3 times".
fn times(n: u32) -> String {
    match n {
        1 => String::from("once"),
        2 => String::from("twice"),
        n => format!("{n} times"),
    }
}

fn clamp(n: u64) -> u32 {
    n.min(u32::MAX as u64) as u32
}

/// The start of an error's text, cut at a character boundary, on one line.
fn excerpt(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(EXCERPT_MAX * 2)]);
    let mut out = String::new();
    for c in text.chars() {
        if out.len() + c.len_utf8() > EXCERPT_MAX {
            out.push('…');
            break;
        }
        out.push(if c.is_control() { ' ' } else { c });
    }
    String::from(out.trim())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Policy;

    fn session_of(policy: &str) -> Session {
        Session::new(Arc::new(Engine::new(Policy::from_json(policy.as_bytes()).unwrap()).unwrap()))
    }

    /// Observe mode: each verdict is the enforcing one on the history as executed, returned as
    /// `allow` with the would-be action in `observed`; every call enters the history and takes
    /// its result; a halt does not stick.
    #[test]
    fn observe_mode_lets_every_call_run_and_keeps_the_would_be_verdict() {
        let rules = r#""loops": {"max_identical": 3, "max_no_progress": 0, "max_cycle_repeats": 0, "max_near_duplicate": 0, "max_blocked": 2}"#;
        let mut enforce = session_of(&alloc::format!("{{{rules}}}"));
        let mut observe = session_of(&alloc::format!(r#"{{{rules}, "mode": "observe"}}"#));
        let mut would = Vec::new();
        for i in 0..8u64 {
            let e = enforce.check("search", br#"{"q": "same"}"#, i).unwrap();
            let o = observe.check("search", br#"{"q": "same"}"#, i).unwrap();
            assert_eq!(o.action, Action::Allow, "call {i}");
            assert_ne!(o.call_id, 0, "call {i} runs, so it has an id");
            observe.record(o.call_id, b"nothing new", false).unwrap();
            if e.call_id != 0 {
                enforce.record(e.call_id, b"nothing new", false).unwrap();
            }
            if i < 3 {
                // Until the first block both see the same history, so the same verdicts.
                assert_eq!((e.action, &e.rule, &e.message, e.count), (o.observed.unwrap_or(Action::Allow), &o.rule, &o.message, o.count));
            }
            would.push(o.observed);
        }
        assert_eq!(would[..4], [None, None, Some(Action::Warn), Some(Action::Block)]);
        assert!(would.contains(&Some(Action::Halt)), "{would:?}");
        assert_eq!(would.last(), Some(&Some(Action::Halt)), "judged again, not latched: {would:?}");
        let st = observe.stats();
        assert_eq!(st.calls, 8);
        assert_eq!(st.results, 8);
        assert_eq!(st.observed, would.iter().flatten().count() as u64);
        assert_eq!(st.blocked, would.iter().flatten().filter(|a| !a.runs()).count() as u64);
        assert_eq!(enforce.stats().observed, 0);
        // A call the policy denies outright runs too, under its own fingerprint.
        let mut denied = session_of(r#"{"mode": "observe", "tools": [{"name": "rm", "allow": false}]}"#);
        let v = denied.check("rm", br#"{"path": "/"}"#, 0).unwrap();
        assert_eq!((v.action, v.observed, v.rule.as_ref()), (Action::Allow, Some(Action::Block), "tool.denied"));
        denied.record(v.call_id, b"ok", false).unwrap();
        assert_eq!(denied.stats().history_len, 1);
    }

    /// The slot counts let `find_executions` skip the scan only for calls that never ran in the
    /// window: through evictions, it finds exactly what a plain scan of the window finds.
    #[test]
    fn slot_counts_skip_only_calls_that_never_ran() {
        let policy = Policy::from_json(
            br#"{"loops": {"window": 7, "max_identical": 0, "max_no_progress": 0, "max_transient_retries": 0,
                "max_consecutive_errors": 0, "max_same_error": 0, "max_near_duplicate": 0, "max_cycle_repeats": 0}}"#,
        ).unwrap();
        let mut s = Session::new(Arc::new(Engine::new(policy).unwrap()));
        let mut state = 0x2545_f491_4f6c_dd1du64;
        // Under Miri (`make miri`) 100 calls (the window of 7 slides 14 times): 2,000 are too slow there.
        let calls = if cfg!(miri) { 100 } else { 2_000u64 };
        for i in 0..calls {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let args = alloc::format!(r#"{{"n": {}}}"#, state % 11);
            let v = s.check("t", args.as_bytes(), i).unwrap();
            if v.call_id != 0 {
                s.record(v.call_id, alloc::format!("r{i}").as_bytes(), false).unwrap();
            }
            for n in 0..11 {
                let fp = canon::call_fingerprint("t", canon::hash_json(alloc::format!(r#"{{"n": {n}}}"#).as_bytes(), &[]).unwrap().fingerprint);
                s.find_executions(fp);
                let expected: Vec<u32> = (0..s.fps.len() as u32).rev().filter(|&j| s.fps[j as usize] == fp).collect();
                assert_eq!(s.executions, expected, "call {i}, n = {n}");
            }
        }
        assert_eq!(s.fp_slots.iter().map(|&n| n as usize).sum::<usize>(), s.fps.len());
    }

    /// A result that comes after its call left the window is accepted and counted, never an
    /// error, and a late successful write is still progress; ids never issued stay errors, also
    /// after a reset (ids are never reused).
    #[test]
    fn a_late_result_is_accepted_and_counted() {
        let policy = Policy::from_json(br#"{"loops": {"window": 16, "max_identical": 16}, "tools": [{"name": "save", "effect": "write"}]}"#).unwrap();
        let mut s = Session::new(Arc::new(Engine::new(policy).unwrap()));
        let slow_write = s.check("save", br#"{"doc": 1}"#, 0).unwrap().call_id;
        let slow_read = s.check("get", br#"{"doc": 1}"#, 0).unwrap().call_id;
        for n in 0..16 {
            let id = s.check("get", alloc::format!(r#"{{"n": {n}}}"#).as_bytes(), 0).unwrap().call_id;
            s.record(id, b"same", false).unwrap();
        }
        let before = s.stats();
        let epoch = s.epoch;
        s.record(slow_read, b"boom", true).unwrap();
        assert_eq!(s.epoch, epoch, "a late read is no progress");
        s.record(slow_write, b"saved", false).unwrap();
        assert_ne!(s.epoch, epoch, "a late successful write is progress");
        let after = s.stats();
        assert_eq!((after.late, after.results, after.errors), (2, 18, 1));
        assert_eq!((after.history_len, after.history_hash), (before.history_len, before.history_hash));
        assert_eq!(s.record(0, b"x", false), Err(RecordError::UnknownCall(0)));
        assert_eq!(s.record(99, b"x", false), Err(RecordError::UnknownCall(99)));
        let pending = s.check("get", br#"{"n": 9}"#, 0).unwrap().call_id;
        s.reset();
        let fresh = s.check("get", br#"{"n": 9}"#, 0).unwrap().call_id;
        assert!(fresh > pending, "ids go on after a reset");
        s.record(pending, b"old", false).unwrap();
        assert_eq!(s.stats().late, 1);
        assert!(s.history[0].outcome.is_none(), "the old result is not taken for the new call's");
    }

    /// A result is compared with the newest *earlier* execution's, even when a later execution
    /// of the same call (run in parallel) was recorded first.
    #[test]
    fn a_result_is_compared_with_the_previous_execution_not_a_later_one() {
        let policy = Policy::from_json(br#"{"loops": {"max_identical": 0, "max_no_progress": 0}}"#).unwrap();
        let mut s = Session::new(Arc::new(Engine::new(policy).unwrap()));
        let check = |s: &mut Session| s.check("t", br#"{"q": 1}"#, 0).unwrap().call_id;
        let first = check(&mut s);
        s.record(first, b"same", false).unwrap();
        let (second, third) = (check(&mut s), check(&mut s));
        s.record(third, b"other", false).unwrap();
        s.record(second, b"same", false).unwrap();
        let changed = |s: &Session, id: u64| s.history[(id - s.first_call_id()) as usize].outcome.as_ref().unwrap().changed;
        assert!(changed(&s, third), "\"other\" after \"same\"");
        assert!(!changed(&s, second), "\"same\" after \"same\" (the later \"other\" does not count)");
    }
}
