//! The Streamable HTTP transport: `microloop-mcp --listen ADDR --upstream URL` in front of an MCP
//! server's HTTP endpoint.
//!
//! Every request to the relay other than `GET /healthz` and `GET /metrics` goes to the upstream
//! endpoint (one MCP endpoint: the request's path is not kept), headers as they came (auth
//! included; nothing here logs a header value or a body) minus hop-by-hop ones and
//! `accept-encoding` (the relay reads the answers). Each `Mcp-Session-Id` has its own [`Guard`]
//! (requests without one share a guard); a `DELETE` ends the session's. A POSTed message goes
//! through [`Guard::on_client`]: answered by the relay (200, JSON) or forwarded. The upstream's
//! answer, JSON or an SSE stream, goes through [`Guard::on_server`]: an SSE stream is relayed event
//! by event as it arrives, each event as it came unless the guard amends its data.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::Response;
use axum::Router;
use bytes::Bytes;
use futures_util::StreamExt;
use microloop_core::{Engine, Policy};
use microloop_host::SystemClock;
use microloop_proxy::dialect::SseSplitter;

use crate::guard::{Counters, FromClient, FromServer, Guard};

/// The largest message the relay reads from a client or takes whole from the server.
const MAX_BODY_BYTES: usize = 64 << 20;
const SESSION_HEADER: &str = "mcp-session-id";
const HOP_BY_HOP: [&str; 10] = [
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection", "te", "trailer",
    "transfer-encoding", "upgrade", "host",
];

pub struct Relay {
    upstream: String,
    client: reqwest::Client,
    policy: Policy,
    engine: Arc<Engine>,
    /// The policy's `[audit]` / `[approval]`, given to every session's guard.
    host: Option<Arc<microloop_host::Host>>,
    sessions: Mutex<HashMap<String, Arc<Mutex<Guard>>>>,
    /// Counters of sessions that ended, so `/metrics` keeps counting them.
    ended: Mutex<Counters>,
    requests: Mutex<BTreeMap<u16, u64>>,
    upstream_errors: AtomicU64,
    /// Observe mode: the log (when it could be opened).
    observe: Option<Option<Arc<microloop_host::ObserveLog>>>,
}

impl Relay {
    pub fn new(upstream: String, policy: Policy, engine: Arc<Engine>) -> Result<Relay, String> {
        let observe = engine.policy.observe.then(crate::observe_log);
        // rustls with ring, as the LLM proxy has it (an https upstream needs a provider).
        microloop_proxy::server::install_crypto();
        let client = reqwest::Client::builder()
            .tcp_nodelay(true)
            .no_proxy()
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Relay {
            upstream,
            client,
            policy,
            engine,
            host: None,
            sessions: Mutex::new(HashMap::new()),
            ended: Mutex::new(Counters::default()),
            requests: Mutex::new(BTreeMap::new()),
            upstream_errors: AtomicU64::new(0),
            observe,
        })
    }

    fn guard(&self, session: &str) -> Arc<Mutex<Guard>> {
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        sessions
            .entry(session.to_owned())
            .or_insert_with(|| {
                let events = self.host.as_ref().and_then(|h| h.events());
                let mut g = Guard::new(self.policy.clone(), self.engine.clone(), Arc::new(SystemClock)).with_events(events);
                if let Some(log) = &self.observe {
                    g = g.observing(log.clone(), session);
                }
                Arc::new(Mutex::new(if session.is_empty() { g.shared() } else { g }))
            })
            .clone()
    }

    fn end_session(&self, session: &str) {
        let gone = self.sessions.lock().unwrap_or_else(|e| e.into_inner()).remove(session);
        if let Some(g) = gone {
            let c = lock(&g).counters.clone();
            add(&mut self.ended.lock().unwrap_or_else(|e| e.into_inner()), &c);
        }
    }

    fn metrics(&self) -> String {
        let mut total = self.ended.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let sessions: Vec<_> = self.sessions.lock().unwrap_or_else(|e| e.into_inner()).values().cloned().collect();
        for g in &sessions {
            add(&mut total, &lock(g).counters);
        }
        let mut o = String::new();
        o.push_str("# HELP microloop_mcp_requests_total HTTP requests answered, by status.\n# TYPE microloop_mcp_requests_total counter\n");
        for (status, n) in self.requests.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            let _ = writeln!(o, "microloop_mcp_requests_total{{status=\"{status}\"}} {n}");
        }
        o.push_str("# HELP microloop_mcp_blocks_total Tool calls answered by the relay, by rule.\n# TYPE microloop_mcp_blocks_total counter\n");
        for (rule, n) in &total.blocked_by_rule {
            let _ = writeln!(o, "microloop_mcp_blocks_total{{rule=\"{rule}\"}} {n}");
        }
        for (name, help, v) in [
            ("tool_calls", "Tool calls checked.", total.calls),
            ("warnings", "Warnings added to a tool result.", total.warned),
            ("unknown_tools", "Calls to a tool the server did not list.", total.unknown_tools),
            ("unchecked", "Calls that could not be checked and ran unchecked.", total.unchecked),
            ("upstream_errors", "Requests the upstream did not answer.", self.upstream_errors.load(Relaxed)),
        ] {
            let _ = writeln!(o, "# HELP microloop_mcp_{name}_total {help}\n# TYPE microloop_mcp_{name}_total counter\nmicroloop_mcp_{name}_total {v}");
        }
        o.push_str("# HELP microloop_mcp_observed_total Shadow mode: tool calls let run that would have been warned, blocked or halted, by action and rule.\n# TYPE microloop_mcp_observed_total counter\n");
        for ((action, rule), n) in &total.observed {
            let _ = writeln!(o, "microloop_mcp_observed_total{{action=\"{action}\",rule=\"{rule}\"}} {n}");
        }
        let _ = writeln!(o, "# HELP microloop_mcp_sessions Sessions with a history.\n# TYPE microloop_mcp_sessions gauge\nmicroloop_mcp_sessions {}", sessions.len());
        o
    }
}

fn lock(g: &Mutex<Guard>) -> std::sync::MutexGuard<'_, Guard> {
    g.lock().unwrap_or_else(|e| e.into_inner())
}

fn add(total: &mut Counters, c: &Counters) {
    total.calls += c.calls;
    total.blocked += c.blocked;
    total.warned += c.warned;
    total.unknown_tools += c.unknown_tools;
    total.unchecked += c.unchecked;
    for (k, n) in &c.observed {
        *total.observed.entry(k.clone()).or_default() += n;
    }
    for (rule, n) in &c.blocked_by_rule {
        *total.blocked_by_rule.entry(rule.clone()).or_default() += n;
    }
}

/// Runs `f` on the guard; a panic lets the message pass (and says so). Notes go to stderr.
fn judge<T>(g: &Mutex<Guard>, f: impl FnOnce(&mut Guard) -> T, open: T) -> T {
    let mut g = lock(g);
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&mut g)));
    for n in g.take_notes() {
        eprintln!("{n}");
    }
    r.unwrap_or_else(|_| {
        eprintln!("microloop-mcp: internal error; the message passes unchecked");
        open
    })
}

pub fn router(relay: Arc<Relay>) -> Router {
    Router::new().fallback(handle).with_state(relay)
}

async fn handle(State(relay): State<Arc<Relay>>, req: Request) -> Response {
    let resp = match (req.method(), req.uri().path()) {
        (&Method::GET, "/healthz") => plain(StatusCode::OK, "text/plain", "ok\n"),
        (&Method::GET, "/metrics") => plain(StatusCode::OK, "text/plain; version=0.0.4", relay.metrics()),
        _ => relay_request(&relay, req).await,
    };
    *relay.requests.lock().unwrap_or_else(|e| e.into_inner()).entry(resp.status().as_u16()).or_default() += 1;
    resp
}

fn plain(status: StatusCode, content_type: &'static str, body: impl Into<Body>) -> Response {
    let mut r = Response::new(body.into());
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

fn request_headers(h: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::with_capacity(h.len());
    for (k, v) in h {
        let n = k.as_str();
        if !(HOP_BY_HOP.contains(&n) || n == "content-length" || n == "accept-encoding") {
            out.append(k.clone(), v.clone());
        }
    }
    out
}

fn response_headers(h: &HeaderMap, keep_length: bool) -> HeaderMap {
    let mut out = HeaderMap::with_capacity(h.len());
    for (k, v) in h {
        let n = k.as_str();
        if !(HOP_BY_HOP.contains(&n) || (!keep_length && n == "content-length")) {
            out.append(k.clone(), v.clone());
        }
    }
    out
}

async fn relay_request(relay: &Relay, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let session = parts.headers.get(SESSION_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let body = match to_bytes(body, MAX_BODY_BYTES).await {
        Ok(b) => b,
        Err(_) => {
            let msg = format!("microloop-mcp: the request body is larger than {} MiB\n", MAX_BODY_BYTES >> 20);
            return plain(StatusCode::PAYLOAD_TOO_LARGE, "text/plain", msg);
        }
    };
    let guard = relay.guard(&session);
    let mut body = body;
    if parts.method == Method::POST {
        match judge(&guard, |g| g.on_client(&body), FromClient::Forward) {
            FromClient::Answer(a) => {
                let mut r = plain(StatusCode::OK, "application/json", a);
                if let Some(v) = parts.headers.get(SESSION_HEADER) {
                    r.headers_mut().insert(SESSION_HEADER, v.clone());
                }
                return r;
            }
            FromClient::Amend(b) => body = Bytes::from(b),
            FromClient::Forward => {}
        }
    }
    let mut url = relay.upstream.clone();
    if let Some(q) = parts.uri.query() {
        url.push(if url.contains('?') { '&' } else { '?' });
        url.push_str(q);
    }
    let sent = relay
        .client
        .request(parts.method.clone(), url)
        .headers(request_headers(&parts.headers))
        .body(body.clone())
        .send()
        .await;
    let upstream = match sent {
        Ok(r) => r,
        Err(e) => {
            relay.upstream_errors.fetch_add(1, Relaxed);
            // reqwest's message names the URL, never a header.
            let why = e.to_string();
            let answer = (parts.method == Method::POST).then(|| judge(&guard, |g| g.not_delivered(&body, &why), None)).flatten();
            return match answer {
                Some(a) => plain(StatusCode::BAD_GATEWAY, "application/json", a),
                None => plain(StatusCode::BAD_GATEWAY, "text/plain", format!("microloop-mcp: the MCP server could not be reached ({why})\n")),
            };
        }
    };
    if parts.method == Method::DELETE && upstream.status().is_success() {
        relay.end_session(&session);
    }
    let status = upstream.status();
    let is_sse = upstream
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("text/event-stream"));
    let is_json = upstream
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("application/json"));
    // A session the server just opened gets its own history.
    if let Some(new) = upstream.headers().get(SESSION_HEADER).and_then(|v| v.to_str().ok()) {
        if new != session {
            relay.guard(new);
        }
    }
    if is_sse {
        let headers = response_headers(upstream.headers(), false);
        let body = sse_body(upstream, guard);
        let mut r = Response::new(body);
        *r.status_mut() = status;
        *r.headers_mut() = headers;
        return r;
    }
    if is_json {
        let headers = upstream.headers().clone();
        let bytes = match upstream.bytes().await {
            Ok(b) => b,
            Err(e) => {
                relay.upstream_errors.fetch_add(1, Relaxed);
                let why = e.to_string();
                return match judge(&guard, |g| g.not_delivered(&body, &why), None) {
                    Some(a) => plain(StatusCode::BAD_GATEWAY, "application/json", a),
                    None => plain(StatusCode::BAD_GATEWAY, "text/plain", format!("microloop-mcp: the MCP server's answer broke off ({why})\n")),
                };
            }
        };
        let (out, keep_length) = match judge(&guard, |g| g.on_server(&bytes), FromServer::Forward) {
            FromServer::Forward => (bytes, true),
            FromServer::Replace(r) => (Bytes::from(r), false),
        };
        let mut r = Response::new(Body::from(out));
        *r.status_mut() = status;
        *r.headers_mut() = response_headers(&headers, keep_length);
        return r;
    }
    let headers = response_headers(upstream.headers(), true);
    let mut r = Response::new(Body::from_stream(upstream.bytes_stream()));
    *r.status_mut() = status;
    *r.headers_mut() = headers;
    r
}

/// The upstream's event stream, each event passed on as soon as it is whole.
fn sse_body(upstream: reqwest::Response, guard: Arc<Mutex<Guard>>) -> Body {
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(64);
    tokio::spawn(async move {
        let mut stream = upstream.bytes_stream();
        let mut splitter = SseSplitter::default();
        let mut events = Vec::new();
        while let Some(chunk) = stream.next().await {
            let Ok(chunk) = chunk else { break };
            splitter.push(&chunk, &mut events);
            for ev in events.drain(..) {
                let out = amend_event(&guard, ev);
                if tx.send(out).await.is_err() {
                    return; // the client went away
                }
            }
        }
        if let Some(rest) = splitter.finish() {
            let _ = tx.send(amend_event(&guard, rest)).await;
        }
    });
    Body::from_stream(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, Infallible>(b), rx))
    }))
}

/// One SSE event, as it came or with its data replaced by the guard's.
fn amend_event(guard: &Mutex<Guard>, ev: Bytes) -> Bytes {
    let Ok(text) = std::str::from_utf8(&ev) else { return ev };
    let mut data = String::new();
    let mut has_data = false;
    for line in text.lines() {
        if let Some(d) = line.strip_prefix("data:") {
            if has_data {
                data.push('\n');
            }
            data.push_str(d.strip_prefix(' ').unwrap_or(d));
            has_data = true;
        }
    }
    if !has_data {
        return ev;
    }
    match judge(guard, |g| g.on_server(data.as_bytes()), FromServer::Forward) {
        FromServer::Forward => ev,
        FromServer::Replace(r) => {
            let mut out = String::with_capacity(text.len() + 64);
            let mut wrote = false;
            for line in text.lines() {
                if line.starts_with("data:") {
                    if !wrote {
                        out.push_str("data: ");
                        out.push_str(std::str::from_utf8(&r).unwrap_or(""));
                        out.push('\n');
                        wrote = true;
                    }
                } else if !line.is_empty() {
                    out.push_str(line);
                    out.push('\n');
                }
            }
            out.push('\n');
            Bytes::from(out)
        }
    }
}

/// Serves until SIGINT or SIGTERM.
pub fn serve(listen: &str, upstream: String, policy: Policy, host: Arc<microloop_host::Host>) -> Result<(), String> {
    let mut relay = Relay::new(upstream, policy, host.engine().clone())?;
    relay.host = Some(host);
    let relay = Arc::new(relay);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| e.to_string())?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen).await.map_err(|e| format!("cannot listen on {listen}: {e}"))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        eprintln!("microloop-mcp: listening on http://{addr}, upstream {}", relay.upstream);
        axum::serve(listener, router(relay))
            .with_graceful_shutdown(async {
                use tokio::signal::unix::{signal, SignalKind};
                let (Ok(mut int), Ok(mut term)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) else {
                    return std::future::pending().await;
                };
                tokio::select! { _ = int.recv() => {}, _ = term.recv() => {} }
            })
            .await
            .map_err(|e| e.to_string())
    })
}
