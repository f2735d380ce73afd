//! Routes, the upstream client, and the ladder a blocked call goes down, once for every dialect.
//!
//! A POST that a [`Dialect`] guards is judged; every other `/v1/*` or `/v1beta/*` request passes
//! through unchanged; `/healthz` and `/metrics` are the proxy's own. Request headers are forwarded
//! as they came (auth, `anthropic-version`, `anthropic-beta`), minus hop-by-hop ones and
//! `accept-encoding` (the proxy reads the answers). Nothing here logs a header value or a body.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Instant;

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::Response;
use axum::Router;
use bytes::Bytes;
use futures_util::StreamExt;
use microloop_core::{Action, Engine};
use serde_json::Value;
use tokio::sync::mpsc;

use crate::config::{Config, OnBlock};
use crate::dialect::{self, Dialect, ErrorKind, Follower, Outcome, SseSplitter};
use crate::metrics::Metrics;
use crate::store::{Store, Stored};
use crate::trajectory::{judge_logged, note, reask_results, replay};

/// Where the approval key is published.
pub const JWKS_PATH: &str = "/.well-known/microloop/jwks.json";

pub struct AppState {
    pub cfg: Config,
    pub engine: Arc<Engine>,
    /// Where every decision on a proposed call goes (the policy's `[audit]`), if anywhere, and the
    /// `[approval]` key published at [`JWKS_PATH`].
    pub events: Option<microloop_host::Events>,
    pub client: reqwest::Client,
    pub metrics: Metrics,
    /// Conversations kept between requests (Responses' `previous_response_id`).
    pub store: Store,
    /// Shadow mode (the policy's `mode = "observe"`, or `--observe`): where every verdict and
    /// result goes.
    pub observe: Option<microloop_host::ObserveLog>,
    /// `--max-concurrent`: one permit per request in flight (a stream holds its own to the end).
    pub limit: Arc<tokio::sync::Semaphore>,
}

impl AppState {
    pub fn new(cfg: Config, engine: Arc<Engine>) -> Result<AppState, String> {
        install_crypto();
        let client = reqwest::Client::builder()
            .connect_timeout(cfg.timeout.min(std::time::Duration::from_secs(10)))
            .read_timeout(cfg.timeout)
            .tcp_nodelay(true)
            .pool_max_idle_per_host(256)
            .no_proxy()
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        let store = Store::open(&cfg)?;
        let events = cfg.host()?.events();
        let observe = match engine.policy.observe {
            true => Some(microloop_host::ObserveLog::open(cfg.observe_log_path())?),
            false => None,
        };
        let limit = Arc::new(tokio::sync::Semaphore::new(cfg.max_concurrent));
        Ok(AppState { cfg, engine, events, client, metrics: Metrics::default(), store, observe, limit })
    }

    fn upstream_url(&self, path_and_query: &str) -> String {
        let base = match &self.cfg.upstream {
            Some(u) => u.as_str(),
            None => dialect::family(path_and_query.split('?').next().unwrap_or("")).default_upstream(),
        };
        // A base that already ends with the API version (`…/v1`) does not get it twice.
        let version = path_and_query[1..].split(['/', '?']).next().unwrap_or("");
        match path_and_query[1 + version.len()..].strip_prefix('/') {
            Some(rest) if !version.is_empty() && base.ends_with(&format!("/{version}")) => format!("{base}/{rest}"),
            _ => format!("{base}{path_and_query}"),
        }
    }
}

/// rustls with ring as its process-wide provider (an error means one is already installed).
pub fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

pub fn router(st: Arc<AppState>) -> Router {
    Router::new().fallback(handle).with_state(st)
}

async fn handle(State(st): State<Arc<AppState>>, req: Request) -> Response {
    let path = req.uri().path().to_owned();
    let guard = if req.method() == Method::POST { dialect::guarding(&path) } else { None };
    let (route, resp) = match (req.method().clone(), path.as_str()) {
        (Method::GET, "/healthz") => ("healthz", plain(StatusCode::OK, "text/plain", "ok\n".into())),
        // The public key of the policy's `[approval]` section as a JWK Set (docs/approval.md).
        (Method::GET, JWKS_PATH) => match st.events.as_ref().and_then(|e| e.approver()) {
            Some(a) => ("jwks", plain(StatusCode::OK, "application/json", a.jwks().to_string().into())),
            None => ("jwks", plain(StatusCode::NOT_FOUND, "text/plain", "no [approval] section in the policy: no key to publish\n".into())),
        },
        (Method::GET, "/metrics") => {
            ("metrics", plain(StatusCode::OK, "text/plain; version=0.0.4", st.metrics.render().into()))
        }
        _ if guard.is_some() => {
            let d = guard.unwrap();
            match st.limit.clone().try_acquire_owned() {
                Ok(permit) => (d.route(), guarded(&st, d, req, permit).await),
                Err(_) => (d.route(), overloaded(&st, d)),
            }
        }
        _ if path.starts_with("/v1/") || path.starts_with("/v1beta/") => match st.limit.clone().try_acquire_owned() {
            Ok(_permit) => ("passthrough", passthrough(&st, req).await),
            Err(_) => ("passthrough", overloaded(&st, dialect::family(&path))),
        },
        _ => {
            let msg = "microloop-proxy serves /v1/* and /v1beta/* (and /healthz, /metrics)";
            ("other", json_response(StatusCode::NOT_FOUND, &dialect::family(&path).error_body(msg, ErrorKind::NotFound, "not_found")))
        }
    };
    st.metrics.request(route, resp.status().as_u16());
    resp
}

/// `--max-concurrent` requests are in flight: 503 at once, in the API's error format.
fn overloaded(st: &AppState, d: &dyn Dialect) -> Response {
    st.metrics.overloaded.fetch_add(1, Relaxed);
    let msg = format!("microloop-proxy is handling {} requests already (--max-concurrent); retry shortly", st.cfg.max_concurrent);
    let mut r = json_response(StatusCode::SERVICE_UNAVAILABLE, &d.error_body(&msg, ErrorKind::Upstream, "proxy_overloaded"));
    r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    r
}

fn plain(status: StatusCode, content_type: &'static str, body: Body) -> Response {
    let mut r = Response::new(body);
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

fn json_response(status: StatusCode, v: &Value) -> Response {
    plain(status, "application/json", Body::from(v.to_string()))
}

/// A clear error of the proxy's own (the upstream is down, slow or talks nonsense).
fn proxy_error(d: &dyn Dialect, status: StatusCode, code: &str, message: String) -> Response {
    json_response(status, &d.error_body(&format!("microloop-proxy: {message}"), ErrorKind::Upstream, code))
}

const HOP_BY_HOP: [&str; 10] = [
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection", "te", "trailer",
    "transfer-encoding", "upgrade", "host",
];

fn request_headers(h: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::with_capacity(h.len());
    for (k, v) in h {
        let n = k.as_str();
        if HOP_BY_HOP.contains(&n) || n == "content-length" || n == "accept-encoding" {
            continue;
        }
        out.append(k.clone(), v.clone());
    }
    out
}

fn response_headers(h: &HeaderMap, keep_length: bool) -> HeaderMap {
    let mut out = HeaderMap::with_capacity(h.len() + 2);
    for (k, v) in h {
        let n = k.as_str();
        if HOP_BY_HOP.contains(&n) || (!keep_length && n == "content-length") {
            continue;
        }
        out.append(k.clone(), v.clone());
    }
    out
}

async fn read_body(st: &AppState, d: &dyn Dialect, body: Body) -> Result<Bytes, Response> {
    to_bytes(body, st.cfg.max_body_bytes).await.map_err(|_| {
        let msg = format!("the request body is larger than {} bytes (--max-body-bytes)", st.cfg.max_body_bytes);
        json_response(StatusCode::PAYLOAD_TOO_LARGE, &d.error_body(&msg, ErrorKind::InvalidRequest, "body_too_large"))
    })
}

async fn send(st: &AppState, d: &dyn Dialect, method: Method, url: &str, headers: HeaderMap, body: Bytes) -> Result<reqwest::Response, Response> {
    let t0 = Instant::now();
    let r = st.client.request(method, url).headers(headers).body(body).send().await;
    st.metrics.upstream_latency(t0.elapsed());
    r.map_err(|e| {
        st.metrics.upstream_errors.fetch_add(1, Relaxed);
        let (status, code, what) = if e.is_timeout() {
            (StatusCode::GATEWAY_TIMEOUT, "upstream_timeout", "did not answer in time")
        } else {
            (StatusCode::BAD_GATEWAY, "upstream_unreachable", "is unreachable")
        };
        let base = url.split('/').take(3).collect::<Vec<_>>().join("/");
        proxy_error(d, status, code, format!("the upstream {base} {what} ({})", error_chain(&e)))
    })
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

async fn passthrough(st: &AppState, req: Request) -> Response {
    let d = dialect::family(req.uri().path());
    let (parts, body) = req.into_parts();
    let body = match read_body(st, d, body).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let pq = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let url = st.upstream_url(pq);
    let up = match send(st, d, parts.method, &url, request_headers(&parts.headers), body).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    finish_plain(up, None).await
}

/// What the proxy did with a request, for the `x-microloop-*` headers.
#[derive(Clone)]
struct Decision {
    action: &'static str,
    rule: String,
    /// For a request continuing a stored response: `found`, or `missing` (judged on what it carries).
    previous: Option<&'static str>,
}

fn mark(headers: &mut HeaderMap, d: &Decision) {
    headers.insert(HeaderName::from_static("x-microloop-action"), HeaderValue::from_static(d.action));
    if let Ok(v) = HeaderValue::from_str(&d.rule) {
        if !d.rule.is_empty() {
            headers.insert(HeaderName::from_static("x-microloop-rule"), v);
        }
    }
    if let Some(p) = d.previous {
        headers.insert(HeaderName::from_static("x-microloop-previous-response"), HeaderValue::from_static(p));
    }
}

/// One guarded exchange: where it goes and with which headers, and the conversation as judged.
struct Turn {
    d: &'static dyn Dialect,
    /// Path and query of the client's request.
    pq: String,
    headers: HeaderMap,
    streaming: bool,
    /// The request with a stored conversation before its own items (`previous_response_id`), when
    /// it continues one the proxy kept: what replay and judging read. `None`: the request itself.
    joined: Option<Value>,
    /// Shadow mode: the conversation's id in the observe log (see [`conversation_id`]).
    session: String,
}

/// Shadow mode's name for a conversation: the client's `x-microloop-session` header, else a hash of
/// how the conversation starts (its system prompt and first message), the same on every turn.
fn conversation_id(headers: &HeaderMap, req: &Value) -> String {
    if let Some(h) = headers.get("x-microloop-session").and_then(|v| v.to_str().ok()).filter(|h| !h.is_empty()) {
        return h.to_owned();
    }
    let first = ["messages", "input", "contents"].iter().find_map(|k| match req.get(*k) {
        Some(Value::Array(a)) => a.first(),
        other => other,
    });
    let system = ["system", "instructions", "systemInstruction"].iter().find_map(|k| req.get(*k));
    let text = serde_json::to_vec(&(system, first)).unwrap_or_default();
    format!("{:016x}", microloop_core::canon::bytes_fingerprint(&text))
}

/// Shadow mode: logs and counts the verdicts on an answer's calls (none of them blocks).
fn observed(st: &AppState, turn: &Turn, calls: &[crate::dialect::ToolCall], j: &crate::trajectory::Judgement) {
    let Some(log) = &st.observe else { return };
    let now = microloop_host::Clock::now_ms(&microloop_host::SystemClock);
    for (c, v) in calls.iter().zip(&j.verdicts) {
        let Some(v) = v else { continue };
        st.metrics.observed_calls.fetch_add(1, Relaxed);
        if let Some(a) = v.observed {
            st.metrics.observed(microloop_host::events::action_name(a), &v.rule);
            eprintln!("microloop-proxy: {} observe: would {} tool={} rule={} count={}", turn.d.name(), a.as_str(), c.name, v.rule, v.count);
        }
        if let Err(e) = log.check(&turn.session, &c.id, now, &c.name, c.args.as_bytes(), v) {
            eprintln!("microloop-proxy: {e}");
        }
    }
}

async fn guarded(st: &Arc<AppState>, d: &'static dyn Dialect, req: Request, permit: tokio::sync::OwnedSemaphorePermit) -> Response {
    let (parts, body) = req.into_parts();
    let body = match read_body(st, d, body).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let pq = parts.uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
    let url = st.upstream_url(&pq);
    let headers = request_headers(&parts.headers);
    // Not JSON: the upstream will say what is wrong with it, in its own words.
    let Ok(mut json) = serde_json::from_slice::<Value>(&body) else {
        return match send(st, d, Method::POST, &url, headers, body).await {
            Ok(up) => finish_plain(up, None).await,
            Err(r) => return r,
        };
    };
    let mut decision = Decision { action: "allow", rule: String::new(), previous: None };
    let mut edited = false;
    let mut joined = None;
    if let Some(prev) = d.continues(&json).map(str::to_owned) {
        match st.store.get(&prev).await {
            Ok(Some(stored)) => {
                decision.previous = Some("found");
                edited |= d.answer_hidden(&mut json, &stored.hidden);
                joined = Some(d.joined(&json, &stored.items));
            }
            Ok(None) => decision.previous = Some("missing"),
            Err(e) => {
                eprintln!("microloop-proxy: store: {e}; judging what the request carries");
                decision.previous = Some("missing");
            }
        }
    }
    let rp = replay(d, joined.as_ref().unwrap_or(&json), &st.engine);
    let session = match &st.observe {
        Some(log) => {
            let session = conversation_id(&parts.headers, joined.as_ref().unwrap_or(&json));
            for (call, output, error) in &crate::trajectory::fresh_results(d, joined.as_ref().unwrap_or(&json)) {
                if let Err(e) = log.record(&session, call, output, *error) {
                    eprintln!("microloop-proxy: {e}");
                }
            }
            session
        }
        None => String::new(),
    };
    if !rp.warnings.is_empty() {
        let text = rp.warnings.iter().map(note).collect::<Vec<_>>().join("\n");
        if d.apply_warnings(&mut json, &text) {
            if let Some(j) = &mut joined {
                d.apply_warnings(j, &text);
            }
            st.metrics.warnings.fetch_add(1, Relaxed);
            decision.action = "warn";
            decision.rule = rp.warnings[0].rule.to_string();
            edited = true;
        }
    }
    drop(rp);
    let body = if edited { Bytes::from(serde_json::to_vec(&json).unwrap_or_default()) } else { body };
    let streaming = d.streaming(&json, &pq);
    let turn = Turn { d, pq, headers, streaming, joined, session };
    let up = match send(st, d, Method::POST, &url, turn.headers.clone(), body).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    if !up.status().is_success() {
        return finish_plain(up, Some(&decision)).await;
    }
    if streaming && is_sse(&up) {
        return stream_response(st.clone(), turn, json, up, decision, permit);
    }
    let status = up.status();
    let mut out_headers = response_headers(up.headers(), false);
    let bytes = match up.bytes().await {
        Ok(b) => b,
        Err(e) => {
            st.metrics.upstream_errors.fetch_add(1, Relaxed);
            return proxy_error(d, StatusCode::BAD_GATEWAY, "upstream_broken", format!("the upstream's answer broke off ({})", error_chain(&e)));
        }
    };
    let Ok(resp) = serde_json::from_slice::<Value>(&bytes) else {
        st.metrics.upstream_errors.fetch_add(1, Relaxed);
        return proxy_error(d, StatusCode::BAD_GATEWAY, "upstream_malformed", format!("the upstream answered {status} with a body that is not JSON ({} bytes)", bytes.len()));
    };
    match settle(st, &turn, json, resp, decision).await {
        Ok(s) => {
            mark(&mut out_headers, &s.decision);
            keep(st, &turn, &s).await;
            let mut r = Response::new(Body::from(s.resp.to_string()));
            *r.status_mut() = status;
            out_headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            *r.headers_mut() = out_headers;
            r
        }
        Err((text, dec)) => {
            let mut r = json_response(StatusCode::BAD_REQUEST, &d.error_body(&text, ErrorKind::InvalidRequest, "tool_loop_blocked"));
            r.headers_mut().insert(HeaderName::from_static("x-should-retry"), HeaderValue::from_static("false"));
            mark(r.headers_mut(), &dec);
            r
        }
    }
}

fn is_sse(up: &reqwest::Response) -> bool {
    up.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"))
}

async fn finish_plain(up: reqwest::Response, d: Option<&Decision>) -> Response {
    let status = up.status();
    let mut headers = response_headers(up.headers(), false);
    if let Some(d) = d {
        mark(&mut headers, d);
    }
    let mut r = Response::new(Body::from_stream(up.bytes_stream()));
    *r.status_mut() = status;
    *r.headers_mut() = headers;
    r
}

/// The answer after the on-block ladder.
struct Settled {
    resp: Value,
    reasked: bool,
    /// Whether a turn was stopped (its calls replaced by the note).
    stopped: bool,
    /// The request as last sent upstream (the re-ask, after one), as judged.
    judged: Value,
    /// Calls of the answer the client never saw and the upstream may still expect results for.
    hidden: Vec<String>,
    decision: Decision,
}

/// Keeps the conversation through this answer, for requests that will continue it.
async fn keep(st: &AppState, turn: &Turn, s: &Settled) {
    if !turn.d.keeps(&s.judged) {
        return;
    }
    let Some((id, items)) = turn.d.kept(&s.judged, &s.resp) else { return };
    if let Err(e) = st.store.put(&id, &Stored { items, hidden: s.hidden.clone() }).await {
        eprintln!("microloop-proxy: store: {e}; a request continuing {id} will be judged on what it carries");
    }
}

/// Judges the calls of `resp` against the history in `req` (every choice); on a block, re-asks or
/// stops the turn as configured. `Err` carries the note when the mode is `error`. With several
/// choices, a blocked choice is stopped (a re-ask answers one choice).
async fn settle(st: &AppState, turn: &Turn, req: Value, mut resp: Value, mut decision: Decision) -> Result<Settled, (String, Decision)> {
    let d = turn.d;
    let mut req_cur = req;
    let mut joined = turn.joined.clone();
    let mut reasks = 0u32;
    loop {
        let choices = d.calls(&resp);
        if choices.iter().all(Vec::is_empty) {
            let judged = joined.unwrap_or(req_cur);
            return Ok(Settled { resp, reasked: reasks > 0, stopped: false, judged, hidden: Vec::new(), decision });
        }
        if choices.len() > 1 {
            let mut stopped = false;
            for (ci, calls) in choices.iter().enumerate().filter(|(_, c)| !c.is_empty()) {
                let mut rp = replay(d, joined.as_ref().unwrap_or(&req_cur), &st.engine);
                let j = judge_logged(&mut rp.session, calls, st.events.as_ref());
                observed(st, turn, calls, &j);
                let Some((bi, v)) = j.blocked else { continue };
                blocked_log(st, d, &calls[bi].name, &v, "stop");
                decision.action = "block";
                decision.rule = v.rule.to_string();
                if st.cfg.on_block == OnBlock::Error {
                    return Err((note(&v), decision));
                }
                d.stop_turn(&mut resp, ci, &note(&v));
                stopped = true;
            }
            let judged = joined.unwrap_or(req_cur);
            return Ok(Settled { resp, reasked: false, stopped, judged, hidden: Vec::new(), decision });
        }
        let calls = &choices[0];
        let mut rp = replay(d, joined.as_ref().unwrap_or(&req_cur), &st.engine);
        let j = judge_logged(&mut rp.session, calls, st.events.as_ref());
        observed(st, turn, calls, &j);
        let Some((bi, v)) = j.blocked.clone() else {
            let judged = joined.unwrap_or(req_cur);
            return Ok(Settled { resp, reasked: reasks > 0, stopped: false, judged, hidden: Vec::new(), decision });
        };
        let stop = v.action == Action::Halt || st.cfg.on_block == OnBlock::Refuse || reasks >= st.cfg.max_reasks;
        let next = match st.cfg.on_block {
            OnBlock::Error => "error",
            _ if stop => "stop",
            _ => "reask",
        };
        blocked_log(st, d, &calls[bi].name, &v, next);
        decision.action = "block";
        decision.rule = v.rule.to_string();
        let text = note(&v);
        if st.cfg.on_block == OnBlock::Error {
            return Err((text, decision));
        }
        let hidden: Vec<String> = calls.iter().map(|c| c.id.clone()).collect();
        if stop {
            d.stop_turn(&mut resp, 0, &text);
            let judged = joined.unwrap_or(req_cur);
            return Ok(Settled { resp, reasked: reasks > 0, stopped: true, judged, hidden, decision });
        }
        reasks += 1;
        st.metrics.reasks.fetch_add(1, Relaxed);
        let results = reask_results(calls, &j);
        // A client that streams gets a streamed re-ask, collected here: a real upstream may refuse
        // a long request (large max_tokens, thinking) that does not stream.
        let next_req = d.reask(&req_cur, &resp, calls, &results, turn.streaming);
        let answer = fetch_answer(st, turn, &next_req).await;
        // The re-ask failed: the original answer, with its turn stopped, is still a valid answer.
        let Some(answer) = answer else {
            st.metrics.upstream_errors.fetch_add(1, Relaxed);
            d.stop_turn(&mut resp, 0, &text);
            let judged = joined.unwrap_or(req_cur);
            return Ok(Settled { resp, reasked: reasks > 1, stopped: true, judged, hidden, decision });
        };
        joined = joined.map(|jq| d.reask(&jq, &resp, calls, &results, turn.streaming));
        resp = answer;
        req_cur = next_req;
        decision.action = "reask";
    }
}

fn blocked_log(st: &AppState, d: &dyn Dialect, tool: &str, v: &microloop_core::Verdict, next: &str) {
    st.metrics.block(&v.rule);
    eprintln!("microloop-proxy: {} {} tool={tool} rule={} count={} then={next}", d.name(), v.action.as_str(), v.rule, v.count);
}

/// Sends a re-ask and reads its answer whole (a stream is followed to its end and assembled).
async fn fetch_answer(st: &AppState, turn: &Turn, body: &Value) -> Option<Value> {
    let url = st.upstream_url(&turn.d.reask_path(&turn.pq, turn.streaming));
    let bytes = Bytes::from(serde_json::to_vec(body).unwrap_or_default());
    let up = send(st, turn.d, Method::POST, &url, turn.headers.clone(), bytes).await.ok()?;
    if !up.status().is_success() {
        return None;
    }
    if !is_sse(&up) {
        return serde_json::from_slice::<Value>(&up.bytes().await.ok()?).ok();
    }
    let mut f = turn.d.follower(body);
    let mut split = SseSplitter::default();
    let mut events = Vec::new();
    let mut chunks = up.bytes_stream();
    while let Some(chunk) = chunks.next().await {
        split.push(&chunk.ok()?, &mut events);
        for ev in events.drain(..) {
            f.on_event(ev);
        }
    }
    if let Some(ev) = split.finish() {
        f.on_event(ev);
    }
    f.broken().is_none().then(|| f.answer())
}

type Tx = mpsc::Sender<Result<Bytes, std::io::Error>>;

fn stream_response(st: Arc<AppState>, turn: Turn, req: Value, up: reqwest::Response, decision: Decision, permit: tokio::sync::OwnedSemaphorePermit) -> Response {
    let status = up.status();
    let mut out_headers = response_headers(up.headers(), false);
    mark(&mut out_headers, &decision);
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(64);
    tokio::spawn(async move {
        pump(&st, &turn, req, up, tx, decision).await;
        drop(permit); // the stream is over: the next request may come in
    });
    let body = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|b| (b, rx)) });
    let mut r = Response::new(Body::from_stream(body));
    *r.status_mut() = status;
    *r.headers_mut() = out_headers;
    r
}

/// Follows an upstream stream to the client: text at once, tool calls once judged; a stream that
/// breaks off or is not the API's ends with an error event in the API's format, never a hang.
async fn pump(st: &AppState, turn: &Turn, req: Value, up: reqwest::Response, tx: Tx, decision: Decision) {
    let d = turn.d;
    let mut f: Box<dyn Follower> = d.follower(&req);
    let mut split = SseSplitter::default();
    let mut events = Vec::new();
    let mut chunks = up.bytes_stream();
    let mut cut = None;
    while let Some(chunk) = chunks.next().await {
        let chunk = match chunk {
            Ok(c) => c,
            Err(e) => {
                cut = Some(format!("the upstream's stream broke off ({})", error_chain(&e)));
                break;
            }
        };
        split.push(&chunk, &mut events);
        for ev in events.drain(..) {
            if let Some(ev) = f.on_event(ev) {
                if tx.send(Ok(ev)).await.is_err() {
                    return; // the client left
                }
            }
        }
    }
    if let Some(ev) = split.finish() {
        if let Some(ev) = f.on_event(ev) {
            let _ = tx.send(Ok(ev)).await;
        }
    }
    if let Some(why) = cut.or_else(|| f.broken()) {
        st.metrics.upstream_errors.fetch_add(1, Relaxed);
        eprintln!("microloop-proxy: {} stream: {why}", d.name());
        let ev = f.error_event(&format!("microloop-proxy: {why}"), ErrorKind::Upstream, "upstream_malformed");
        let _ = tx.send(Ok(ev)).await;
        return;
    }
    if !f.holding() {
        if !d.keeps(&req) {
            return;
        }
        let judged = turn.joined.clone().unwrap_or(req);
        let s = Settled { resp: f.answer(), reasked: false, stopped: false, judged, hidden: Vec::new(), decision };
        keep(st, turn, &s).await;
        return;
    }
    let answer = f.answer();
    let out: Vec<Bytes> = match settle(st, turn, req, answer, decision).await {
        Err((text, _)) => vec![f.error_event(&text, ErrorKind::InvalidRequest, "tool_loop_blocked")],
        Ok(s) => {
            keep(st, turn, &s).await;
            if s.reasked {
                f.finish(Outcome::Reasked(&s.resp))
            } else if s.stopped {
                f.finish(Outcome::Stopped(&s.resp))
            } else {
                f.finish(Outcome::Allowed)
            }
        }
    };
    for b in out {
        if tx.send(Ok(b)).await.is_err() {
            return;
        }
    }
}
