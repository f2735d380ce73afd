//! The MCP side of the relay, whatever the transport: one client session's tools, history and
//! calls in flight.
//!
//! [`Guard::on_client`] reads each message the client sends and says whether it goes on to the
//! server or is answered here; [`Guard::on_server`] reads each message the server sends and says
//! whether it goes on unchanged or in an amended form. Only `tools/list` results, `tools/call`
//! requests, their answers, cancellations and `notifications/tools/list_changed` are read; every
//! other message passes as it came. Anything this module cannot read also passes as it came.
//!
//! What the guard acts on:
//! * a `tools/call` the history says must not run is answered with a `CallToolResult` whose
//!   `isError` is true and whose text tells the model what was repeated and what to do instead
//!   (the MCP spec's tool execution error: clients show it to the model);
//! * a call whose arguments break the tool's own `inputSchema` is answered the same way (the
//!   spec's input-validation error), before the server sees it;
//! * a call to a tool the server did not list gets the spec's JSON-RPC error `-32602`, naming the
//!   nearest real tools;
//! * a call the history warns about runs, and the warning is added to its result's content;
//! * a request id reused while the first request is unanswered is refused (`-32600`);
//! * when the server is gone, every request still waiting is answered with an error (`-32000`).

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use microloop_core::policy::ToolPolicy;
use microloop_core::{Action, Engine, Policy, Session, Verdict};
use microloop_host::{Clock, ObserveLog};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};

/// The rule id of a call refused by the tool's own `inputSchema`.
pub const INPUT_SCHEMA_RULE: &str = "mcp.input_schema";
/// The key under `_meta` where a result made by the guard says why.
pub const META_KEY: &str = "dev.microloop/verdict";
/// The key under a forwarded `tools/call`'s `params._meta` that carries its approval token.
pub const APPROVAL_KEY: &str = "dev.microloop/approval";
/// JSON-RPC: the request is not valid (here: its id is already in use).
const INVALID_REQUEST: i64 = -32600;
/// JSON-RPC: invalid params (the spec's code for an unknown tool).
const INVALID_PARAMS: i64 = -32602;
/// JSON-RPC server error range: the connection to the server is gone.
const CONNECTION_CLOSED: i64 = -32000;

/// What becomes of a message from the client.
#[derive(Debug, PartialEq, Eq)]
pub enum FromClient {
    /// Goes to the server as it came.
    Forward,
    /// Does not go to the server; this JSON (one line, no newline) goes back to the client.
    Answer(Vec<u8>),
    /// Goes to the server in this form (one line, no newline): a `tools/call` with its approval
    /// token in `params._meta["dev.microloop/approval"]`.
    Amend(Vec<u8>),
}

/// What becomes of a message from the server.
#[derive(Debug, PartialEq, Eq)]
pub enum FromServer {
    /// Goes to the client as it came.
    Forward,
    /// This JSON (one line, no newline) goes to the client in its place.
    Replace(Vec<u8>),
}

/// What the server said of one tool, as far as the policy cares.
#[derive(Debug, Clone, PartialEq)]
struct ToolSpec {
    schema: Option<Value>,
    read_only: Option<bool>,
    destructive: Option<bool>,
}

/// A request sent to the server and not yet answered.
#[derive(Debug)]
enum Pending {
    Other,
    /// `tools/list`; `first_page` when it had no cursor (a new listing starts).
    List { first_page: bool },
    /// A checked `tools/call`: its result is recorded under `call_id`.
    Call { call_id: u64, warning: Option<String> },
}

/// Counters for `/metrics` and tests.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Counters {
    pub calls: u64,
    pub blocked: u64,
    pub warned: u64,
    pub unknown_tools: u64,
    pub unchecked: u64,
    pub blocked_by_rule: BTreeMap<String, u64>,
    /// Observe mode: calls let run that would have been warned, blocked or halted, by would-be
    /// action and rule.
    pub observed: BTreeMap<(&'static str, String), u64>,
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    id: Option<&'a RawValue>,
    #[serde(borrow)]
    method: Option<Cow<'a, str>>,
    #[serde(borrow)]
    params: Option<&'a RawValue>,
    #[serde(borrow)]
    result: Option<&'a RawValue>,
    #[serde(borrow)]
    error: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct CallParams<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
    #[serde(borrow)]
    arguments: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Cursor<'a> {
    #[serde(borrow)]
    cursor: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Cancelled<'a> {
    #[serde(borrow, rename = "requestId")]
    request_id: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct IsError {
    #[serde(rename = "isError")]
    is_error: Option<bool>,
}

#[derive(Deserialize)]
struct ToolList {
    tools: Vec<ToolDef>,
    #[serde(rename = "nextCursor")]
    next_cursor: Option<Value>,
}

#[derive(Deserialize)]
struct ToolDef {
    name: String,
    #[serde(rename = "inputSchema")]
    input_schema: Option<Value>,
    annotations: Option<Annotations>,
}

#[derive(Deserialize)]
struct Annotations {
    #[serde(rename = "readOnlyHint")]
    read_only: Option<bool>,
    #[serde(rename = "destructiveHint")]
    destructive: Option<bool>,
}

/// One client session's guard.
pub struct Guard {
    /// The user's policy, before the server's tools are added to it.
    base: Policy,
    session: Session,
    clock: Arc<dyn Clock>,
    /// The tools the server listed; `None` until it lists them.
    tools: Option<BTreeMap<String, ToolSpec>>,
    /// The list may have changed since (`list_changed`, or a listing still paging): unknown
    /// names are not refused until the next complete listing.
    stale: bool,
    /// The listing being paged in.
    listing: BTreeMap<String, ToolSpec>,
    pending: HashMap<String, Pending>,
    /// The server is gone: requests are answered here.
    closed: Option<String>,
    /// Several clients share this guard (HTTP requests without a session): their ids may meet.
    shared: bool,
    pub counters: Counters,
    /// Lines for stderr, taken by the transport.
    notes: Vec<String>,
    /// The policy's `[audit]` and `[approval]`: every decision logged, every call that runs signed.
    events: Option<microloop_host::Events>,
    /// Observe mode: the log every verdict and result goes to (when it could be opened), and this
    /// session's name in it.
    observe: Option<(Option<Arc<ObserveLog>>, String)>,
}

impl Guard {
    pub fn new(base: Policy, engine: Arc<Engine>, clock: Arc<dyn Clock>) -> Guard {
        Guard {
            base,
            session: Session::new(engine),
            clock,
            tools: None,
            stale: false,
            listing: BTreeMap::new(),
            pending: HashMap::new(),
            closed: None,
            shared: false,
            counters: Counters::default(),
            notes: Vec::new(),
            events: None,
            observe: None,
        }
    }

    /// Shadow mode (the policy's `mode = "observe"`): nothing is refused, every verdict and result
    /// goes to `log` under `session`.
    pub fn observing(mut self, log: Option<Arc<ObserveLog>>, session: &str) -> Guard {
        self.observe = Some((log, session.to_owned()));
        self
    }

    /// Observe mode: the session's stats in one line for stderr; `None` otherwise.
    pub fn observe_summary(&self) -> Option<String> {
        self.observe.as_ref()?;
        let c = &self.counters;
        let by: Vec<String> = c.observed.iter().map(|((a, r), n)| format!("{a} {r}: {n}")).collect();
        Some(format!("microloop-mcp: observe: {} calls checked, {} would have been warned, blocked or halted ({})",
            c.calls, c.observed.values().sum::<u64>(), if by.is_empty() { "none".to_owned() } else { by.join(", ") }))
    }

    /// Observe mode: counts a would-be verdict and logs the verdict.
    fn observed(&mut self, call: u64, tool: &str, args: &str, v: &Verdict) {
        let Some((log, session)) = &self.observe else { return };
        if let Some(a) = v.observed {
            *self.counters.observed.entry((microloop_host::events::action_name(a), v.rule.to_string())).or_default() += 1;
        }
        if let Some(log) = log {
            if let Err(e) = log.check(session, &call.to_string(), self.clock.now_ms(), tool, args.as_bytes(), v) {
                self.notes.push(format!("microloop-mcp: {e}"));
            }
        }
    }

    /// This guard with the session's events (`Host::events`): decisions go to the audit log, and
    /// calls that run go to the server with their approval token.
    pub fn with_events(mut self, events: Option<microloop_host::Events>) -> Guard {
        self.events = events;
        self
    }

    /// For a guard several clients share (HTTP requests without a session id): a request id
    /// already waiting is not refused, since another client may have sent it; the newer request
    /// takes the id's place.
    pub fn shared(mut self) -> Guard {
        self.shared = true;
        self
    }

    /// Lines for stderr since the last call.
    pub fn take_notes(&mut self) -> Vec<String> {
        std::mem::take(&mut self.notes)
    }

    /// Requests sent to the server and not answered yet.
    #[cfg(test)]
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    #[cfg(test)]
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// A message from the client.
    pub fn on_client(&mut self, line: &[u8]) -> FromClient {
        let Some(env) = envelope(line) else { return FromClient::Forward };
        let Some(method) = env.method.as_deref() else { return FromClient::Forward };
        let Some(id) = env.id else {
            if method == "notifications/cancelled" {
                if let Some(c) = env.params.and_then(|p| serde_json::from_str::<Cancelled>(p.get()).ok()) {
                    if let Some(key) = c.request_id.and_then(id_key) {
                        self.pending.remove(&key);
                    }
                }
            }
            return FromClient::Forward;
        };
        let Some(key) = id_key(id) else { return FromClient::Forward };
        if let Some(why) = &self.closed {
            let msg = format!("the MCP server is gone ({why}); the request was not sent");
            return FromClient::Answer(error_response(id, CONNECTION_CLOSED, &msg, None));
        }
        if !self.shared && self.pending.contains_key(&key) {
            let msg = format!("the request id {} is already in use by a request still waiting for its answer; give each request its own id", id.get());
            return FromClient::Answer(error_response(id, INVALID_REQUEST, &msg, None));
        }
        let pending = match method {
            "tools/list" => {
                let first_page = env
                    .params
                    .and_then(|p| serde_json::from_str::<Cursor>(p.get()).ok())
                    .is_none_or(|c| c.cursor.is_none());
                Pending::List { first_page }
            }
            "tools/call" => match env.params.and_then(|p| serde_json::from_str::<CallParams>(p.get()).ok()) {
                Some(call) => match self.check_call(id, &call) {
                    Ok((p, Some(token))) => {
                        let amended = env.params.and_then(|params| with_approval(line, params, &token));
                        self.pending.insert(key, p);
                        return match amended {
                            Some(l) => FromClient::Amend(l),
                            None => {
                                self.notes.push("microloop-mcp: the approval token could not be added to the call's params".into());
                                FromClient::Forward
                            }
                        };
                    }
                    Ok((p, None)) => p,
                    Err(answer) => return FromClient::Answer(answer),
                },
                // Malformed params: the server answers them.
                None => Pending::Other,
            },
            _ => Pending::Other,
        };
        self.pending.insert(key, pending);
        FromClient::Forward
    }

    /// Decides on a `tools/call`: what to remember until its answer, or the answer itself.
    fn check_call(&mut self, id: &RawValue, call: &CallParams) -> Result<(Pending, Option<String>), Vec<u8>> {
        let tool = call.name.as_ref();
        let args = match call.arguments.map(RawValue::get) {
            None | Some("null") => "{}",
            Some(a) => a,
        };
        if let (Some(tools), false) = (&self.tools, self.stale) {
            if !tools.contains_key(tool) && self.observe.is_some() {
                // Shadow mode: the server answers it; the log says it would have been refused.
                let nearest = nearest(tool, tools.keys().map(String::as_str), 3);
                let v = Verdict { action: Action::Allow, rule: Cow::Borrowed("mcp.unknown_tool"), message: format!("Unknown tool: {tool}. The nearest tools are: {}.", nearest.join(", ")),
                    call_id: 0, count: 1, observed: Some(Action::Block) };
                self.counters.unknown_tools += 1;
                self.observed(0, tool, args, &v);
                return Ok((Pending::Other, None));
            }
            if !tools.contains_key(tool) {
                self.counters.unknown_tools += 1;
                let nearest = nearest(tool, tools.keys().map(String::as_str), 3);
                let msg = if nearest.is_empty() {
                    format!("Unknown tool: {tool}. This server has no tools.")
                } else {
                    format!("Unknown tool: {tool}. The nearest tools are: {}.", nearest.join(", "))
                };
                let data = json!({"tool": tool, "nearest": nearest});
                return Err(error_response(id, INVALID_PARAMS, &msg, Some(data)));
            }
        }
        let v = match self.session.check(tool, args.as_bytes(), self.clock.now_ms()) {
            Ok(v) => v,
            Err(e) => {
                self.counters.unchecked += 1;
                self.notes.push(format!("microloop-mcp: cannot check `{tool}` ({e}); the call runs unchecked"));
                return Ok((Pending::Other, None));
            }
        };
        self.counters.calls += 1;
        self.observed(v.call_id, tool, args, &v);
        let token = match &self.events {
            Some(ev) => match ev.decide(&self.session, tool, args.as_bytes(), &v, self.clock.now_ms(), true).approval {
                Some(microloop_host::Approval::Token(t)) => Some(t),
                Some(microloop_host::Approval::Refused(why)) => {
                    self.notes.push(format!("microloop-mcp: `{tool}` goes without a token: {why}"));
                    None
                }
                None => None,
            },
            None => None,
        };
        match v.action {
            Action::Allow => Ok((Pending::Call { call_id: v.call_id, warning: None }, token)),
            Action::Warn => {
                self.counters.warned += 1;
                Ok((Pending::Call { call_id: v.call_id, warning: Some(v.message) }, token))
            }
            Action::Block | Action::Halt => {
                self.counters.blocked += 1;
                *self.counters.blocked_by_rule.entry(v.rule.to_string()).or_default() += 1;
                Err(blocked_result(id, &v))
            }
        }
    }

    /// A message from the server.
    pub fn on_server(&mut self, line: &[u8]) -> FromServer {
        if self.pending.is_empty() && memchr(line, b"list_changed").is_none() {
            return FromServer::Forward;
        }
        let Some(env) = envelope(line) else { return FromServer::Forward };
        if let Some(method) = env.method.as_deref() {
            if method == "notifications/tools/list_changed" {
                self.stale = true;
            }
            return FromServer::Forward;
        }
        let Some(key) = env.id.and_then(id_key) else { return FromServer::Forward };
        let Some(pending) = self.pending.remove(&key) else { return FromServer::Forward };
        match pending {
            Pending::Other => FromServer::Forward,
            Pending::List { first_page } => {
                if let Some(result) = env.result {
                    self.learn(result, first_page);
                }
                FromServer::Forward
            }
            Pending::Call { call_id, warning } => {
                let (output, is_error) = match (env.result, env.error) {
                    (Some(r), _) => {
                        let flagged = serde_json::from_str::<IsError>(r.get()).ok().and_then(|e| e.is_error);
                        (r.get(), flagged.unwrap_or(false))
                    }
                    (None, Some(e)) => (e.get(), true),
                    (None, None) => ("", true),
                };
                // A result recorded twice (a server answering one id twice) counts once.
                self.session.record(call_id, output.as_bytes(), is_error).ok();
                if let Some((Some(log), session)) = &self.observe {
                    if let Err(e) = log.record(session, &call_id.to_string(), output.as_bytes(), is_error) {
                        self.notes.push(format!("microloop-mcp: {e}"));
                    }
                }
                match (warning, env.result) {
                    (Some(w), Some(_)) => with_warning(line, &w).map_or(FromServer::Forward, FromServer::Replace),
                    _ => FromServer::Forward,
                }
            }
        }
    }

    /// The server is gone: the answers for every request still waiting (one JSON line each),
    /// and from now on requests are answered here.
    pub fn server_closed(&mut self, why: &str) -> Vec<Vec<u8>> {
        self.closed.get_or_insert_with(|| why.to_owned());
        let mut ids: Vec<String> = self.pending.drain().map(|(k, _)| k).collect();
        ids.sort();
        let msg = format!("the MCP server exited before answering ({why})");
        ids.iter()
            .filter_map(|k| RawValue::from_string(k.clone()).ok())
            .map(|id| error_response(&id, CONNECTION_CLOSED, &msg, None))
            .collect()
    }

    /// A request that never reached the server (HTTP: the upstream failed): it no longer waits,
    /// and the client gets this error for it (`None` for a notification or a response).
    pub fn not_delivered(&mut self, line: &[u8], why: &str) -> Option<Vec<u8>> {
        let env = envelope(line)?;
        env.method.as_ref()?;
        let id = env.id?;
        self.pending.remove(&id_key(id)?);
        Some(error_response(id, CONNECTION_CLOSED, &format!("the MCP server could not be reached ({why})"), None))
    }

    /// Takes in one page of a `tools/list` result.
    fn learn(&mut self, result: &RawValue, first_page: bool) {
        let list: ToolList = match serde_json::from_str(result.get()) {
            Ok(l) => l,
            Err(e) => {
                self.notes.push(format!("microloop-mcp: the server's tools/list result is not readable ({e}); tool names and schemas are not checked"));
                return;
            }
        };
        if first_page {
            self.listing.clear();
        }
        for t in list.tools {
            let (read_only, destructive) = t.annotations.map_or((None, None), |a| (a.read_only, a.destructive));
            self.listing.insert(t.name, ToolSpec { schema: t.input_schema, read_only, destructive });
        }
        let complete = list.next_cursor.is_none_or(|c| c.is_null());
        self.stale = !complete;
        if self.tools.as_ref() != Some(&self.listing) {
            self.tools = Some(self.listing.clone());
            self.rebuild();
        }
    }

    /// The user's policy with the server's tools added: each tool's `inputSchema`, and its effect
    /// from the annotations where the policy gives none. The history moves to the new engine.
    fn rebuild(&mut self) {
        let Some(tools) = &self.tools else { return };
        let base_len = self.base.tools.len();
        let mut entries: Vec<(String, Value)> = Vec::new();
        for (name, spec) in tools {
            if name.is_empty() || name.contains(['*', '?', '[', ']']) {
                continue; // a glob in the policy's language, not a name
            }
            let mut entry = json!({"name": name});
            let effect = match (spec.read_only, spec.destructive) {
                (Some(true), _) => Some("read"),
                (Some(false), _) | (None, Some(_)) => Some("write"),
                (None, None) => None,
            };
            if let Some(effect) = effect.filter(|_| self.base.resolve(name).effect.is_none()) {
                entry["effect"] = effect.into();
            }
            if let Some(schema) = spec.schema.as_ref().filter(|s| s.is_object() || s.is_boolean()) {
                entry["schema"] = schema.clone();
                entry["schema_id"] = INPUT_SCHEMA_RULE.into();
            }
            if entry.as_object().is_some_and(|o| o.len() > 1) {
                entries.push((name.clone(), entry));
            }
        }
        // A schema the rule engine cannot compile is left out (and said), not the whole list.
        for _ in 0..=entries.len() {
            let mut policy = self.base.clone();
            let mut parsed = Vec::with_capacity(entries.len());
            for (name, e) in &entries {
                match serde_json::from_value::<ToolPolicy>(e.clone()) {
                    Ok(t) => parsed.push(t),
                    Err(err) => self.notes.push(format!("microloop-mcp: the tool `{name}` is not added to the policy ({err})")),
                }
            }
            policy.tools.extend(parsed);
            match microloop_host::engine_for(policy) {
                Ok(engine) => {
                    let snapshot = self.session.save();
                    match Session::load(engine, &snapshot, true) {
                        Ok(s) => self.session = s,
                        Err(e) => self.notes.push(format!("microloop-mcp: the history could not move to the server's tool list ({e}); schemas are not checked")),
                    }
                    return;
                }
                Err(e) => {
                    let bad = e
                        .path
                        .strip_prefix("tools[")
                        .and_then(|r| r.split(']').next())
                        .and_then(|i| i.parse::<usize>().ok())
                        .and_then(|i| i.checked_sub(base_len))
                        .filter(|&i| i < entries.len());
                    match bad {
                        Some(i) => {
                            let (name, entry) = &mut entries[i];
                            self.notes.push(format!("microloop-mcp: the inputSchema of `{name}` is not checked: {}", e.message));
                            if let Some(o) = entry.as_object_mut() {
                                o.remove("schema");
                                o.remove("schema_id");
                            }
                        }
                        None => {
                            self.notes.push(format!("microloop-mcp: the server's tools could not be added to the policy ({e})"));
                            return;
                        }
                    }
                }
            }
        }
    }
}

/// The request `line` with `token` in `params._meta["dev.microloop/approval"]` (`params` is a
/// slice of `line`); `None` when `params` is not an object.
fn with_approval(line: &[u8], params: &RawValue, token: &str) -> Option<Vec<u8>> {
    let text = params.get();
    let start = (text.as_ptr() as usize).checked_sub(line.as_ptr() as usize)?;
    let end = start.checked_add(text.len()).filter(|&e| e <= line.len())?;
    // Every other value stays as the client wrote it (the arguments the token hashes included).
    let mut map: BTreeMap<String, Box<RawValue>> = serde_json::from_str(text).ok()?;
    let mut meta: BTreeMap<String, Box<RawValue>> = match map.get("_meta") {
        Some(m) => serde_json::from_str(m.get()).ok()?,
        None => BTreeMap::new(),
    };
    meta.insert(APPROVAL_KEY.to_owned(), serde_json::value::to_raw_value(token).ok()?);
    map.insert("_meta".to_owned(), serde_json::value::to_raw_value(&meta).ok()?);
    let mut out = Vec::with_capacity(line.len() + token.len() + 64);
    out.extend_from_slice(&line[..start]);
    serde_json::to_writer(&mut out, &map).ok()?;
    out.extend_from_slice(&line[end..]);
    while out.last().is_some_and(|b| b.is_ascii_whitespace()) {
        out.pop();
    }
    Some(out)
}

fn envelope(line: &[u8]) -> Option<Envelope<'_>> {
    let start = line.iter().position(|b| !b.is_ascii_whitespace())?;
    if line[start] != b'{' {
        return None; // not JSON, or a batch: passed as it came
    }
    serde_json::from_slice(line).ok()
}

/// A request id as a map key: its JSON text (`1` and `"1"` are different ids).
fn id_key(id: &RawValue) -> Option<String> {
    match serde_json::from_str::<Value>(id.get()).ok()? {
        v @ (Value::Number(_) | Value::String(_)) => serde_json::to_string(&v).ok(),
        _ => None,
    }
}

fn memchr(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn error_response(id: &RawValue, code: i64, message: &str, data: Option<Value>) -> Vec<u8> {
    let mut error = json!({"code": code, "message": message});
    if let Some(d) = data {
        error["data"] = d;
    }
    let id: Value = serde_json::from_str(id.get()).unwrap_or(Value::Null);
    serde_json::to_vec(&json!({"jsonrpc": "2.0", "id": id, "error": error})).unwrap_or_default()
}

/// The `CallToolResult` a blocked call gets in place of the server's.
fn blocked_result(id: &RawValue, v: &Verdict) -> Vec<u8> {
    let id: Value = serde_json::from_str(id.get()).unwrap_or(Value::Null);
    let result = json!({
        "content": [{"type": "text", "text": v.message}],
        "isError": true,
        "_meta": {META_KEY: {"action": v.action.as_str(), "rule": v.rule, "count": v.count}},
    });
    serde_json::to_vec(&json!({"jsonrpc": "2.0", "id": id, "result": result})).unwrap_or_default()
}

/// The server's answer with the warning added to its content, or `None` when it has no content
/// list to add to.
fn with_warning(line: &[u8], warning: &str) -> Option<Vec<u8>> {
    let mut v: Value = serde_json::from_slice(line).ok()?;
    let content = v.get_mut("result")?.get_mut("content")?.as_array_mut()?;
    content.push(json!({"type": "text", "text": warning}));
    serde_json::to_vec(&v).ok()
}

/// Up to `n` of `names` nearest to `name` (edit distance, case folded; a name containing the
/// other counts as near), nearest first.
pub fn nearest<'a>(name: &str, names: impl Iterator<Item = &'a str>, n: usize) -> Vec<String> {
    let target = name.to_lowercase();
    let mut scored: Vec<(usize, &str)> = names
        .map(|c| {
            let lc = c.to_lowercase();
            let d = if !target.is_empty() && (lc.contains(&target) || target.contains(&lc)) {
                lc.len().abs_diff(target.len()).min(1)
            } else {
                levenshtein(&target, &lc)
            };
            (d, c)
        })
        .collect();
    scored.sort();
    scored.into_iter().take(n).map(|(_, c)| c.to_owned()).collect()
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for j in 0..b.len() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != b[j])).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests;
