//! The wire formats the proxy speaks, one module each, behind one trait.
//!
//! A [`Dialect`] knows everything about its format that the server needs: which paths it guards,
//! the tools a request offers, the conversation a request carries ([`Step`]s), the calls an answer
//! proposes, and how to write a warning, a re-ask, a stopped turn, an error and a followed stream
//! in its own words. `server.rs` is written once against this trait; adding an API is adding a
//! module and a line in [`DIALECTS`].


use bytes::Bytes;
use serde_json::Value;

/// A [`Follower`]'s `hold` and `holding` when it keeps what it holds in a field `hold`: every
/// follower does.
macro_rules! held_in_field {
    () => {
        fn hold(&mut self) -> &mut Hold {
            &mut self.hold
        }

        fn holding(&self) -> bool {
            self.hold.on
        }
    };
}

pub mod anthropic;
pub mod gemini;
pub mod openai;
pub mod responses;

pub use microloop_host::conversation::{Step, ToolCall, ToolResult};

/// The kinds of error the proxy reports; each dialect words them its own way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The client's request (too large), or a blocked call in `--on-block error` mode.
    InvalidRequest,
    /// The upstream is down, slow, or answered something that is not the API.
    Upstream,
    /// A path the proxy does not serve.
    NotFound,
}

/// How a followed stream ends after its calls were judged.
pub enum Outcome<'a> {
    /// Every call may run: the held events go out unchanged.
    Allowed,
    /// A turn was stopped: this is the answer as settled (the follower's [`Follower::answer`]
    /// with the blocked calls replaced by the note); what was not sent yet goes out.
    Stopped(&'a Value),
    /// The model was re-asked: this fresh answer (non-streaming shape) replaces the held part.
    Reasked(&'a Value),
}

/// A wire format.
pub trait Dialect: Sync {
    /// Short name, for logs (`openai`, `anthropic`, `responses`, `gemini`).
    fn name(&self) -> &'static str;
    /// The metrics label of the guarded route.
    fn route(&self) -> &'static str;
    /// Whether a POST to `path` is a turn of this dialect, to be guarded.
    fn guards(&self, path: &str) -> bool;
    /// Whether other requests under `path` belong to this API's family (its error shape, its
    /// default upstream). The OpenAI dialect is the fallback.
    fn owns(&self, _path: &str) -> bool {
        false
    }
    /// Where the API lives when no `--upstream` is given.
    fn default_upstream(&self) -> &'static str {
        "https://api.openai.com"
    }
    /// Whether the client asked for a stream.
    fn streaming(&self, req: &Value, _path_and_query: &str) -> bool {
        req.get("stream").and_then(Value::as_bool).unwrap_or(false)
    }
    /// The tool names the request offers the model; `None` when the set is open (no tools listed,
    /// or tools loaded later that the request does not name).
    fn tools(&self, req: &Value) -> Option<Vec<String>>;
    /// The conversation the request carries, in order.
    fn steps<'a>(&self, req: &'a Value) -> Vec<Step<'a>>;
    /// The tool calls an answer proposes, one list per choice (candidate).
    fn calls(&self, resp: &Value) -> Vec<Vec<ToolCall>>;
    /// Appends `text` to the latest tool result of the request. Returns whether it did.
    fn apply_warnings(&self, req: &mut Value, text: &str) -> bool;
    /// The request for a re-ask: `req`, then choice 0 of the blocked answer `resp`, then a result
    /// for each of its calls (`results`, in the calls' order). `stream` says whether it streams.
    fn reask(&self, req: &Value, resp: &Value, calls: &[ToolCall], results: &[String], stream: bool) -> Value;
    /// The path (and query) a re-ask goes to (Gemini says in the URL whether it streams).
    fn reask_path(&self, path_and_query: &str, _stream: bool) -> String {
        path_and_query.to_owned()
    }
    /// Ends the turn of choice `choice`: its tool calls are replaced by `text`; usage is kept.
    fn stop_turn(&self, resp: &mut Value, choice: usize, text: &str);
    /// An error body in the API's own format.
    fn error_body(&self, message: &str, kind: ErrorKind, code: &str) -> Value;
    /// A follower for a streamed answer to `req`.
    fn follower(&self, req: &Value) -> Box<dyn Follower>;
    /// The id of a stored answer this request continues (Responses' `previous_response_id`).
    fn continues<'a>(&self, _req: &'a Value) -> Option<&'a str> {
        None
    }
    /// The request as judged: the stored conversation `prior` before the request's own items.
    fn joined(&self, req: &Value, _prior: &[Value]) -> Value {
        req.clone()
    }
    /// Gives a result to each call `hidden` from the client (a stopped turn) that the upstream
    /// still expects one for, at the front of the request. Returns whether it changed anything.
    fn answer_hidden(&self, _req: &mut Value, _hidden: &[String]) -> bool {
        false
    }
    /// Whether answers to `req` are kept for requests that will continue them (cheap: checked
    /// before an answer is assembled for [`Dialect::kept`]).
    fn keeps(&self, _req: &Value) -> bool {
        false
    }
    /// What to keep of a settled exchange for requests that will continue it: the answer's id and
    /// the conversation through it (`judged` as sent, `resp` as the client got it). `None`: nothing.
    fn kept(&self, _judged: &Value, _resp: &Value) -> Option<(String, Vec<Value>)> {
        None
    }
}

/// A streamed answer being followed: text passes at once; from the first tool-call fragment on,
/// events are held until the answer is complete and its calls judged.
pub trait Follower: Send {
    /// Reads one event into the follower's state; false when it is not the API's (not JSON).
    fn follow(&mut self, raw: &[u8]) -> bool;
    /// The events held back, and whether holding has begun.
    fn hold(&mut self) -> &mut Hold;
    /// Takes one event; returns what goes to the client now, or `None` when it is held (or
    /// dropped: an event that is not the API's is not forwarded, the stream ends with an error).
    fn on_event(&mut self, ev: Bytes) -> Option<Bytes> {
        let ok = self.follow(&ev);
        self.hold().route(ev, ok)
    }
    /// Whether events are held (a tool call was seen).
    fn holding(&self) -> bool;
    /// The answer so far, in the dialect's non-streaming shape.
    fn answer(&self) -> Value;
    /// Whether the stream ended the way its format requires. An incomplete stream gets an error
    /// event instead of a silent end.
    fn complete(&self) -> bool {
        true
    }
    /// Why the stream is malformed, when it is (an event that is not JSON, a missing end).
    fn broken(&self) -> Option<String> {
        (!self.complete()).then(|| "the upstream's stream ended before its last event".to_owned())
    }
    /// The events that end the stream, the held part settled by `outcome`.
    fn finish(self: Box<Self>, outcome: Outcome) -> Vec<Bytes>;
    /// An in-stream error event in the API's own format.
    fn error_event(&mut self, message: &str, kind: ErrorKind, code: &str) -> Bytes;
}

/// What a follower holds back: from the first tool-call fragment on, every event.
#[derive(Default)]
pub struct Hold {
    pub on: bool,
    pub events: Vec<Bytes>,
}

impl Hold {
    fn route(&mut self, ev: Bytes, valid: bool) -> Option<Bytes> {
        if !valid {
            return None;
        }
        if self.on {
            self.events.push(ev);
            return None;
        }
        Some(ev)
    }
}

/// Every dialect, in routing order.
pub static DIALECTS: [&dyn Dialect; 4] =
    [&openai::OpenAiChat, &responses::Responses, &anthropic::Anthropic, &gemini::Gemini];

/// The dialect that guards a POST to `path`.
pub fn guarding(path: &str) -> Option<&'static dyn Dialect> {
    DIALECTS.iter().copied().find(|d| d.guards(path))
}

/// The dialect whose family `path` belongs to (OpenAI when none claims it).
pub fn family(path: &str) -> &'static dyn Dialect {
    DIALECTS.iter().copied().find(|d| d.owns(path)).unwrap_or(&openai::OpenAiChat)
}

pub fn sse_data(v: &Value) -> Bytes {
    Bytes::from(format!("data: {v}\n\n"))
}

pub fn sse_event(v: &Value) -> Bytes {
    Bytes::from(format!("event: {}\ndata: {v}\n\n", v["type"].as_str().unwrap_or("message")))
}

/// Appends `text` to `obj[key]`: to a string after a blank line, to an array as a text part.
pub fn append_text(obj: &mut Value, key: &str, text: &str) {
    let Some(o) = obj.as_object_mut() else { return };
    match o.get_mut(key) {
        Some(Value::String(s)) => {
            if !s.is_empty() {
                s.push_str("\n\n");
            }
            s.push_str(text);
        }
        Some(Value::Array(parts)) => parts.push(serde_json::json!({"type": "text", "text": text})),
        _ => {
            o.insert(key.to_owned(), Value::String(text.to_owned()));
        }
    }
}

/// Cuts a byte stream into whole events (each with its blank-line terminator).
#[derive(Default)]
pub struct SseSplitter {
    buf: Vec<u8>,
}

impl SseSplitter {
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<Bytes>) {
        self.buf.extend_from_slice(chunk);
        let mut start = 0;
        let mut i = 0;
        while i + 1 < self.buf.len() {
            let end = if self.buf[i] == b'\n' && self.buf[i + 1] == b'\n' {
                Some(i + 2)
            } else if self.buf[i..].starts_with(b"\r\n\r\n") {
                Some(i + 4)
            } else {
                None
            };
            match end {
                Some(e) => {
                    out.push(Bytes::copy_from_slice(&self.buf[start..e]));
                    start = e;
                    i = e;
                }
                None => i += 1,
            }
        }
        self.buf.drain(..start);
    }

    /// What is left when the stream ends (an event without its terminator).
    pub fn finish(self) -> Option<Bytes> {
        let rest = String::from_utf8_lossy(&self.buf);
        (!rest.trim().is_empty()).then(|| Bytes::from(format!("{}\n\n", rest.trim_end())))
    }
}

/// A stream event's data as the JSON object every chunk is; or why not, for the error event.
pub fn chunk_object(data: &str) -> Result<Value, &'static str> {
    match serde_json::from_str::<Value>(data) {
        Ok(v) if v.is_object() => Ok(v),
        Ok(_) => Err("the upstream sent a stream event that is not a chunk object"),
        Err(_) => Err("the upstream sent a stream event that is not JSON"),
    }
}

/// The `data:` payload of an event (lines joined).
pub fn event_data(raw: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(raw).ok()?;
    let mut data: Option<String> = None;
    for line in text.lines() {
        if let Some(d) = line.strip_prefix("data:") {
            let d = d.strip_prefix(' ').unwrap_or(d);
            match &mut data {
                Some(s) => {
                    s.push('\n');
                    s.push_str(d);
                }
                None => data = Some(d.to_owned()),
            }
        }
    }
    data
}
