//! Routes, the upstream client, and the ladder a blocked call goes down.
//!
//! `POST /v1/chat/completions` and `POST /v1/messages` are guarded; every other `/v1/*` request
//! passes through unchanged; `/healthz` and `/metrics` are the proxy's own. Request headers are
//! forwarded as they came (auth, `anthropic-version`, `anthropic-beta`), minus hop-by-hop ones and
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
use crate::metrics::Metrics;
use crate::stream::{AnthropicStream, OpenAiStream, SseSplitter};
use crate::trajectory::{judge, replay};
use crate::wire;
use crate::Api;

pub struct AppState {
    pub cfg: Config,
    pub engine: Arc<Engine>,
    pub client: reqwest::Client,
    pub metrics: Metrics,
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
        Ok(AppState { cfg, engine, client, metrics: Metrics::default() })
    }

    fn upstream_url(&self, path_and_query: &str) -> String {
        let base = match &self.cfg.upstream {
            Some(u) => u.as_str(),
            None if path_and_query.starts_with("/v1/messages") => "https://api.anthropic.com",
            None => "https://api.openai.com",
        };
        match path_and_query.strip_prefix("/v1") {
            Some(rest) if base.ends_with("/v1") => format!("{base}{rest}"),
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
    let (route, resp) = match (req.method().clone(), path.as_str()) {
        (Method::GET, "/healthz") => ("healthz", plain(StatusCode::OK, "text/plain", "ok\n".into())),
        (Method::GET, "/metrics") => {
            ("metrics", plain(StatusCode::OK, "text/plain; version=0.0.4", st.metrics.render().into()))
        }
        (Method::POST, "/v1/chat/completions") => ("chat_completions", guarded(&st, Api::OpenAi, req).await),
        (Method::POST, "/v1/messages") => ("messages", guarded(&st, Api::Anthropic, req).await),
        _ if path.starts_with("/v1/") => ("passthrough", passthrough(&st, req).await),
        _ => {
            let body = wire::error_body(Api::OpenAi, "microloop-proxy serves /v1/* (and /healthz, /metrics)", "not_found", "not_found");
            ("other", json_response(StatusCode::NOT_FOUND, &body))
        }
    };
    st.metrics.request(route, resp.status().as_u16());
    resp
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

fn api_of(path: &str) -> Api {
    if path.starts_with("/v1/messages") {
        Api::Anthropic
    } else {
        Api::OpenAi
    }
}

/// A clear error of the proxy's own (the upstream is down, slow or talks nonsense).
fn proxy_error(api: Api, status: StatusCode, code: &str, message: String) -> Response {
    let kind = if api == Api::Anthropic { "api_error" } else { "upstream_error" };
    json_response(status, &wire::error_body(api, &format!("microloop-proxy: {message}"), kind, code))
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

async fn read_body(st: &AppState, api: Api, body: Body) -> Result<Bytes, Response> {
    to_bytes(body, st.cfg.max_body_bytes).await.map_err(|_| {
        let msg = format!("the request body is larger than {} bytes (--max-body-bytes)", st.cfg.max_body_bytes);
        json_response(StatusCode::PAYLOAD_TOO_LARGE, &wire::error_body(api, &msg, "invalid_request_error", "body_too_large"))
    })
}

async fn send(st: &AppState, api: Api, method: Method, url: &str, headers: HeaderMap, body: Bytes) -> Result<reqwest::Response, Response> {
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
        proxy_error(api, status, code, format!("the upstream {base} {what} ({})", error_chain(&e)))
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
    let api = api_of(req.uri().path());
    let (parts, body) = req.into_parts();
    let body = match read_body(st, api, body).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let pq = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let url = st.upstream_url(pq);
    let up = match send(st, api, parts.method, &url, request_headers(&parts.headers), body).await {
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
}

fn mark(headers: &mut HeaderMap, d: &Decision) {
    headers.insert(HeaderName::from_static("x-microloop-action"), HeaderValue::from_static(d.action));
    if let Ok(v) = HeaderValue::from_str(&d.rule) {
        if !d.rule.is_empty() {
            headers.insert(HeaderName::from_static("x-microloop-rule"), v);
        }
    }
}

async fn guarded(st: &Arc<AppState>, api: Api, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = match read_body(st, api, body).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let pq = parts.uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
    let url = st.upstream_url(&pq);
    let headers = request_headers(&parts.headers);
    // Not JSON: the upstream will say what is wrong with it, in its own words.
    let Ok(mut json) = serde_json::from_slice::<Value>(&body) else {
        return match send(st, api, Method::POST, &url, headers, body).await {
            Ok(up) => finish_plain(up, None).await,
            Err(r) => r,
        };
    };
    let rp = replay(api, &json, &st.engine);
    let mut decision = Decision { action: "allow", rule: String::new() };
    let body = if wire::apply_warnings(api, &mut json, &rp.warnings) {
        st.metrics.warnings.fetch_add(1, Relaxed);
        decision = Decision { action: "warn", rule: rp.warnings[0].rule.to_string() };
        Bytes::from(serde_json::to_vec(&json).unwrap_or_default())
    } else {
        body
    };
    drop(rp);
    let streaming = json.get("stream").and_then(Value::as_bool).unwrap_or(false);
    let up = match send(st, api, Method::POST, &url, headers.clone(), body).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    let is_sse = up
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    if !up.status().is_success() {
        return finish_plain(up, Some(&decision)).await;
    }
    if streaming && is_sse {
        return stream_response(st.clone(), api, url, headers, json, up, decision);
    }
    let status = up.status();
    let mut out_headers = response_headers(up.headers(), false);
    let bytes = match up.bytes().await {
        Ok(b) => b,
        Err(e) => {
            st.metrics.upstream_errors.fetch_add(1, Relaxed);
            return proxy_error(api, StatusCode::BAD_GATEWAY, "upstream_broken", format!("the upstream's answer broke off ({})", error_chain(&e)));
        }
    };
    let Ok(resp) = serde_json::from_slice::<Value>(&bytes) else {
        st.metrics.upstream_errors.fetch_add(1, Relaxed);
        return proxy_error(api, StatusCode::BAD_GATEWAY, "upstream_malformed", format!("the upstream answered {status} with a body that is not JSON ({} bytes)", bytes.len()));
    };
    match settle(st, api, &url, &headers, json, resp, decision).await {
        Ok(s) => {
            mark(&mut out_headers, &s.decision);
            let mut r = Response::new(Body::from(s.resp.to_string()));
            *r.status_mut() = status;
            out_headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            *r.headers_mut() = out_headers;
            r
        }
        Err((text, d)) => {
            let mut r = json_response(StatusCode::BAD_REQUEST, &wire::error_body(api, &text, "invalid_request_error", "tool_loop_blocked"));
            r.headers_mut().insert(HeaderName::from_static("x-should-retry"), HeaderValue::from_static("false"));
            mark(r.headers_mut(), &d);
            r
        }
    }
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
    /// Set when the turn was stopped: the text that replaced the calls.
    note: Option<String>,
    decision: Decision,
}

/// Judges the calls of `resp` against the history in `req`; on a block, re-asks or stops the turn
/// as configured. `Err` carries the note when the mode is `error`.
async fn settle(
    st: &AppState,
    api: Api,
    url: &str,
    headers: &HeaderMap,
    req: Value,
    mut resp: Value,
    mut decision: Decision,
) -> Result<Settled, (String, Decision)> {
    let mut req_cur = req;
    let mut reasks = 0u32;
    loop {
        let calls = wire::response_calls(api, &resp);
        if calls.is_empty() {
            return Ok(Settled { resp, reasked: reasks > 0, note: None, decision });
        }
        let mut rp = replay(api, &req_cur, &st.engine);
        let j = judge(&mut rp.session, &calls);
        let Some((bi, v)) = j.blocked.clone() else {
            return Ok(Settled { resp, reasked: reasks > 0, note: None, decision });
        };
        st.metrics.block(&v.rule);
        let stop = v.action == Action::Halt || st.cfg.on_block == OnBlock::Refuse || reasks >= st.cfg.max_reasks;
        let next = match st.cfg.on_block {
            OnBlock::Error => "error",
            _ if stop => "stop",
            _ => "reask",
        };
        eprintln!(
            "microloop-proxy: {} {} tool={} rule={} count={} then={next}",
            api.as_str(),
            v.action.as_str(),
            calls[bi].name,
            v.rule,
            v.count
        );
        decision = Decision { action: "block", rule: v.rule.to_string() };
        let text = wire::note(&v);
        if st.cfg.on_block == OnBlock::Error {
            return Err((text, decision));
        }
        if stop {
            wire::stop_turn(api, &mut resp, &text);
            return Ok(Settled { resp, reasked: reasks > 0, note: Some(text), decision });
        }
        reasks += 1;
        st.metrics.reasks.fetch_add(1, Relaxed);
        let next_req = wire::reask_body(api, &req_cur, &resp, &calls, &j);
        let body = Bytes::from(serde_json::to_vec(&next_req).unwrap_or_default());
        let answer = match send(st, api, Method::POST, url, headers.clone(), body).await {
            Ok(up) if up.status().is_success() => up.bytes().await.ok().and_then(|b| serde_json::from_slice::<Value>(&b).ok()),
            _ => None,
        };
        // The re-ask failed: the original answer, with its turn stopped, is still a valid answer.
        let Some(answer) = answer else {
            st.metrics.upstream_errors.fetch_add(1, Relaxed);
            wire::stop_turn(api, &mut resp, &text);
            return Ok(Settled { resp, reasked: reasks > 1, note: Some(text), decision });
        };
        resp = answer;
        req_cur = next_req;
        decision.action = "reask";
    }
}

type Tx = mpsc::Sender<Result<Bytes, std::io::Error>>;

fn stream_response(st: Arc<AppState>, api: Api, url: String, headers: HeaderMap, req: Value, up: reqwest::Response, decision: Decision) -> Response {
    let status = up.status();
    let mut out_headers = response_headers(up.headers(), false);
    mark(&mut out_headers, &decision);
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(64);
    tokio::spawn(async move {
        pump(&st, api, &url, &headers, req, up, tx, decision).await;
    });
    let body = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|b| (b, rx)) });
    let mut r = Response::new(Body::from_stream(body));
    *r.status_mut() = status;
    *r.headers_mut() = out_headers;
    r
}

enum Follower {
    OpenAi(OpenAiStream),
    Anthropic(AnthropicStream),
}

impl Follower {
    fn on_event(&mut self, ev: Bytes) -> Option<Bytes> {
        let (pass, held) = match self {
            Follower::OpenAi(s) => (s.on_event(&ev), &mut s.held),
            Follower::Anthropic(s) => (s.on_event(&ev), &mut s.held),
        };
        if pass {
            Some(ev)
        } else {
            held.push(ev);
            None
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn pump(st: &AppState, api: Api, url: &str, headers: &HeaderMap, req: Value, up: reqwest::Response, tx: Tx, decision: Decision) {
    let mut f = match api {
        Api::OpenAi => Follower::OpenAi(OpenAiStream::default()),
        Api::Anthropic => Follower::Anthropic(AnthropicStream::default()),
    };
    let mut split = SseSplitter::default();
    let mut events = Vec::new();
    let mut chunks = up.bytes_stream();
    while let Some(chunk) = chunks.next().await {
        let Ok(chunk) = chunk else {
            st.metrics.upstream_errors.fetch_add(1, Relaxed);
            break;
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
    let include_usage = req.pointer("/stream_options/include_usage").and_then(Value::as_bool).unwrap_or(false);
    let out: Vec<Bytes> = match f {
        Follower::OpenAi(s) if s.holding => {
            let answer = s.answer();
            let head = s.head.clone().unwrap_or_else(|| serde_json::json!({"object": "chat.completion.chunk"}));
            match settle(st, api, url, headers, req, answer, decision).await {
                Err((text, _)) => {
                    vec![wire::sse_data(&wire::error_body(api, &text, "invalid_request_error", "tool_loop_blocked"))]
                }
                Ok(x) if !x.reasked && x.note.is_none() => s.held,
                Ok(x) => {
                    let mut out = Vec::new();
                    if !s.role_sent {
                        let mut c = head.clone();
                        c["choices"] = serde_json::json!([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": null}]);
                        out.push(wire::sse_data(&c));
                    }
                    if x.reasked {
                        out.extend(wire::openai_answer_chunks(&head, &x.resp, include_usage));
                    } else {
                        out.extend(wire::openai_note_chunks(&head, x.note.as_deref().unwrap_or("")));
                        if let Some(u) = s.usage_chunk() {
                            out.push(wire::sse_data(&u));
                        }
                    }
                    out.push(Bytes::from_static(b"data: [DONE]\n\n"));
                    out
                }
            }
        }
        Follower::Anthropic(s) if s.holding => {
            let answer = s.answer();
            let index = s.first_held.unwrap_or(0);
            match settle(st, api, url, headers, req, answer, decision).await {
                Err((text, _)) => {
                    vec![wire::sse_event(&wire::error_body(api, &text, "invalid_request_error", "tool_loop_blocked"))]
                }
                Ok(x) if !x.reasked && x.note.is_none() => s.held,
                Ok(x) if !x.reasked => {
                    let text = serde_json::json!([{"type": "text", "text": x.note.unwrap_or_default()}]);
                    let mut out = wire::anthropic_block_events(text.as_array().unwrap(), index);
                    out.extend(wire::anthropic_end_events(&"end_turn".into(), &s.usage));
                    out
                }
                Ok(x) => {
                    let blocks = x.resp.get("content").and_then(Value::as_array).cloned().unwrap_or_default();
                    let mut out = wire::anthropic_block_events(&blocks, index);
                    let usage = x.resp.get("usage").cloned().unwrap_or_else(|| s.usage.clone());
                    let stop = x.resp.get("stop_reason").cloned().unwrap_or_else(|| "end_turn".into());
                    out.extend(wire::anthropic_end_events(&stop, &usage));
                    out
                }
            }
        }
        _ => Vec::new(),
    };
    for b in out {
        if tx.send(Ok(b)).await.is_err() {
            return;
        }
    }
}
