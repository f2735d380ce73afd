//! Google's Gemini API: `POST /v1beta/models/{model}:generateContent` and
//! `:streamGenerateContent?alt=sse` (Gemini CLI, the `google-genai` SDK).
//!
//! Calls are `functionCall` parts of a `model` turn, results `functionResponse` parts of the next
//! turn. Either may lack an `id`: a result is then matched to the first unanswered call of the
//! same name in the latest calls. The stream is in the URL, not the body; it is `data:` chunks,
//! each a whole `GenerateContentResponse`, and it ends with a chunk carrying a `finishReason`.
//! A function call arrives whole in one chunk. `:streamGenerateContent` without `alt=sse` (a JSON
//! array) is not followed: it passes unguarded.

use std::borrow::Cow;

use bytes::Bytes;
use serde_json::{json, Value};

use super::{append_text, chunk_object, Hold, event_data, sse_data, Dialect, ErrorKind, Follower, Outcome, Step, ToolCall, ToolResult};
use crate::trajectory::{content_text, looks_like_error, mask_volatile};

pub struct Gemini;

fn parts(content: &Value) -> &[Value] {
    content.get("parts").and_then(Value::as_array).map_or(&[], Vec::as_slice)
}

fn call_of(part: &Value) -> Option<&Value> {
    part.get("functionCall").or_else(|| part.get("function_call"))
}

fn response_of(part: &Value) -> Option<&Value> {
    part.get("functionResponse").or_else(|| part.get("function_response"))
}

/// The calls of one content, ids made up (`{prefix}{k}`) where the model gave none.
fn content_calls(content: &Value, prefix: &str) -> Vec<ToolCall> {
    parts(content)
        .iter()
        .filter_map(call_of)
        .enumerate()
        .filter_map(|(k, fc)| {
            Some(ToolCall {
                id: fc.get("id").and_then(Value::as_str).map_or_else(|| format!("{prefix}{k}"), str::to_owned),
                name: fc.get("name")?.as_str()?.to_owned(),
                args: fc.get("args").map_or_else(|| "{}".to_owned(), Value::to_string),
            })
        })
        .collect()
}

impl Dialect for Gemini {
    fn name(&self) -> &'static str {
        "gemini"
    }

    fn route(&self) -> &'static str {
        "generate_content"
    }

    fn guards(&self, path: &str) -> bool {
        let in_models = ["/v1beta/models/", "/v1/models/", "/v1alpha/models/"].iter().any(|p| path.starts_with(p));
        in_models && (path.ends_with(":generateContent") || path.ends_with(":streamGenerateContent"))
    }

    fn owns(&self, path: &str) -> bool {
        path.starts_with("/v1beta/") || path.starts_with("/v1alpha/") || (path.starts_with("/v1/models/") && path.contains(':'))
    }

    fn default_upstream(&self) -> &'static str {
        "https://generativelanguage.googleapis.com"
    }

    fn streaming(&self, _req: &Value, path_and_query: &str) -> bool {
        path_and_query.contains(":streamGenerateContent")
    }

    fn tools(&self, req: &Value) -> Option<Vec<String>> {
        let tools = req.get("tools").and_then(Value::as_array)?;
        let mut names = Vec::new();
        for t in tools {
            let decls = t.get("functionDeclarations").or_else(|| t.get("function_declarations")).and_then(Value::as_array);
            names.extend(decls.into_iter().flatten().filter_map(|d| d.get("name")?.as_str().map(str::to_owned)));
        }
        (!names.is_empty()).then_some(names)
    }

    fn steps<'a>(&self, req: &'a Value) -> Vec<Step<'a>> {
        let mut steps = Vec::new();
        let Some(contents) = req.get("contents").and_then(Value::as_array) else { return steps };
        // The latest calls, and whether each was answered, to pair results that carry no id.
        let mut open: Vec<(String, String, bool)> = Vec::new();
        for (ci, c) in contents.iter().enumerate() {
            if c.get("role").and_then(Value::as_str) == Some("model") {
                let calls = content_calls(c, &format!("g{ci}_"));
                if calls.is_empty() {
                    steps.push(Step::Other);
                } else {
                    open = calls.iter().map(|k| (k.name.clone(), k.id.clone(), false)).collect();
                    steps.push(Step::Calls(calls));
                }
                continue;
            }
            let mut results = Vec::new();
            for fr in parts(c).iter().filter_map(response_of) {
                let Some(name) = fr.get("name").and_then(Value::as_str) else { continue };
                let id = match fr.get("id").and_then(Value::as_str) {
                    Some(id) => {
                        if let Some(o) = open.iter_mut().find(|o| o.1 == id) {
                            o.2 = true;
                        }
                        Cow::Borrowed(id)
                    }
                    None => match open.iter_mut().find(|o| o.0 == name && !o.2) {
                        Some(o) => {
                            o.2 = true;
                            Cow::Owned(o.1.clone())
                        }
                        None => continue,
                    },
                };
                let response = fr.get("response");
                let error = response.and_then(|r| r.get("error")).filter(|e| !e.is_null());
                let output = mask_volatile(match response.and_then(|r| r.get("output").or_else(|| r.get("content"))) {
                    Some(v) if error.is_none() => content_text(Some(v)),
                    _ => content_text(error.or(response)),
                });
                let is_error = error.is_some() || looks_like_error(&output);
                results.push(ToolResult { call_id: id, output, is_error });
            }
            steps.push(if results.is_empty() { Step::Other } else { Step::Results(results) });
        }
        steps
    }

    fn calls(&self, resp: &Value) -> Vec<Vec<ToolCall>> {
        let Some(cands) = resp.get("candidates").and_then(Value::as_array) else { return Vec::new() };
        cands.iter().enumerate().map(|(i, c)| content_calls(&c["content"], &format!("new{i}_"))).collect()
    }

    fn apply_warnings(&self, req: &mut Value, text: &str) -> bool {
        let Some(contents) = req.get_mut("contents").and_then(Value::as_array_mut) else { return false };
        for c in contents.iter_mut().rev() {
            if c["role"] == "model" {
                return false;
            }
            let Some(ps) = c.get_mut("parts").and_then(Value::as_array_mut) else { continue };
            // Into the latest function response itself: its output (or error) text, else a field.
            let Some(fr) = ps.iter_mut().rev().find_map(|p| p.get_mut("functionResponse")) else { continue };
            let Some(r) = fr.get_mut("response").and_then(Value::as_object_mut) else { continue };
            match ["output", "error"].iter().find(|k| r.get(**k).is_some_and(Value::is_string)) {
                Some(k) => append_text(fr.get_mut("response").unwrap(), k, text),
                None => {
                    r.insert("microloop_note".into(), Value::String(text.to_owned()));
                }
            }
            return true;
        }
        false
    }

    fn reask(&self, req: &Value, resp: &Value, calls: &[ToolCall], results: &[String], _stream: bool) -> Value {
        let mut body = req.clone();
        let Some(contents) = body.get_mut("contents").and_then(Value::as_array_mut) else { return body };
        let content = resp.pointer("/candidates/0/content").cloned().unwrap_or_else(|| json!({"role": "model", "parts": []}));
        let given_ids: Vec<Option<Value>> = parts(&content).iter().filter_map(call_of).map(|fc| fc.get("id").cloned()).collect();
        contents.push(content);
        let answers: Vec<Value> = calls
            .iter()
            .zip(results)
            .enumerate()
            .map(|(k, (c, text))| {
                let mut fr = json!({"name": c.name, "response": {"error": text}});
                if let Some(Some(id)) = given_ids.get(k) {
                    fr["id"] = id.clone();
                }
                json!({"functionResponse": fr})
            })
            .collect();
        contents.push(json!({"role": "user", "parts": answers}));
        body
    }

    fn stop_turn(&self, resp: &mut Value, choice: usize, text: &str) {
        let Some(cand) = resp.get_mut("candidates").and_then(|c| c.get_mut(choice)) else { return };
        if let Some(ps) = cand.pointer_mut("/content/parts").and_then(Value::as_array_mut) {
            ps.retain(|p| call_of(p).is_none());
            ps.push(json!({"text": text}));
        } else {
            cand["content"] = json!({"role": "model", "parts": [{"text": text}]});
        }
        cand["finishReason"] = "STOP".into();
    }

    fn error_body(&self, message: &str, kind: ErrorKind, _code: &str) -> Value {
        gemini_error(message, kind)
    }

    fn follower(&self, _req: &Value) -> Box<dyn Follower> {
        Box::<GeminiStream>::default()
    }
}

fn gemini_error(message: &str, kind: ErrorKind) -> Value {
    let (code, status) = match kind {
        ErrorKind::InvalidRequest => (400, "INVALID_ARGUMENT"),
        ErrorKind::Upstream => (502, "UNAVAILABLE"),
        ErrorKind::NotFound => (404, "NOT_FOUND"),
    };
    json!({"error": {"code": code, "message": message, "status": status}})
}

/// A Gemini SSE stream being followed (candidate 0).
#[derive(Default)]
struct GeminiStream {
    hold: Hold,
    /// The latest chunk, without its candidates' parts: ids, usage, model version.
    head: Option<Value>,
    /// Candidate 0's parts as they came, and how many of them the client has.
    parts: Vec<Value>,
    sent: usize,
    finish: Option<Value>,
    bad: Option<String>,
}

impl GeminiStream {
    fn read(&mut self, raw: &[u8]) -> bool {
        let Some(data) = event_data(raw) else { return true };
        let chunk = match chunk_object(&data) {
            Ok(chunk) => chunk,
            Err(why) => {
                self.bad.get_or_insert_with(|| why.to_owned());
                return false;
            }
        };
        if chunk.get("error").is_some() {
            self.finish = Some("ERROR".into()); // the upstream's own error: passes as it is
            return true;
        }
        let Some(cand) = chunk.pointer("/candidates/0") else {
            self.head = Some(chunk);
            return true;
        };
        let new = parts(&cand["content"]);
        if new.iter().any(|p| call_of(p).is_some()) {
            self.hold.on = true;
        }
        self.parts.extend(new.iter().cloned());
        if !self.hold.on {
            self.sent = self.parts.len();
        }
        if let Some(f) = cand.get("finishReason").filter(|f| !f.is_null()) {
            self.finish = Some(f.clone());
        }
        let mut head = chunk.clone();
        if let Some(c) = head.pointer_mut("/candidates/0/content").and_then(Value::as_object_mut) {
            c.insert("parts".to_owned(), json!([]));
        }
        self.head = Some(head);
        true
    }

    fn chunk(&self, parts: &[Value], finish: &Value, usage: Option<&Value>) -> Bytes {
        let mut c = self.head.clone().unwrap_or_else(|| json!({}));
        c["candidates"] = json!([{"content": {"role": "model", "parts": parts}, "finishReason": finish, "index": 0}]);
        if let Some(u) = usage {
            c["usageMetadata"] = u.clone();
        }
        sse_data(&c)
    }
}

impl Follower for GeminiStream {
    fn follow(&mut self, raw: &[u8]) -> bool {
        // After an event that is not the API's nothing more goes out: the stream ends with the error event.
        self.bad.is_none() && self.read(raw)
    }

    held_in_field!();

    fn answer(&self) -> Value {
        let mut resp = self.head.clone().unwrap_or_else(|| json!({}));
        let mut cand = resp.pointer("/candidates/0").filter(|c| c.is_object()).cloned().unwrap_or_else(|| json!({"index": 0}));
        cand["content"] = json!({"role": "model", "parts": self.parts});
        cand["finishReason"] = self.finish.clone().unwrap_or_else(|| "STOP".into());
        resp["candidates"] = json!([cand]);
        resp
    }

    fn complete(&self) -> bool {
        self.finish.is_some()
    }

    fn broken(&self) -> Option<String> {
        self.bad.clone().or_else(|| self.finish.is_none().then(|| "the upstream's stream ended before a finishReason".to_owned()))
    }

    fn finish(self: Box<Self>, outcome: Outcome) -> Vec<Bytes> {
        let (resp, fresh) = match outcome {
            Outcome::Allowed => return self.hold.events,
            Outcome::Stopped(r) => (r, false),
            Outcome::Reasked(r) => (r, true),
        };
        let cand = resp.pointer("/candidates/0").cloned().unwrap_or_else(|| json!({}));
        let all = parts(&cand["content"]);
        let new = if fresh { all } else { all.get(self.sent..).unwrap_or(&[]) };
        let finish = cand.get("finishReason").cloned().unwrap_or_else(|| "STOP".into());
        let usage = if fresh { resp.get("usageMetadata") } else { None };
        vec![self.chunk(new, &finish, usage)]
    }

    fn error_event(&mut self, message: &str, kind: ErrorKind, _code: &str) -> Bytes {
        sse_data(&gemini_error(message, kind))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_that_are_not_objects_are_errors_not_panics() {
        // Found by reading after make fuzz-smoke's Responses crash: IndexMut on a chunk or a
        // candidate's content that is not an object.
        let call = json!({"candidates": [{"content": {"role": "model", "parts": [{"functionCall": {"name": "ls", "args": {}}}]}}]});
        for first in [json!({"candidates": [{"content": 5}]}), json!({"candidates": [7]}), json!(5), json!(["x"])] {
            let mut f = Gemini.follower(&json!({}));
            for data in [&first, &call] {
                let _ = f.on_event(Bytes::from(format!("data: {data}\n\n")));
            }
            let answer = f.answer();
            assert!(answer.is_object(), "{first}: {answer}");
            if !first.is_object() {
                assert!(f.broken().is_some_and(|why| why.contains("not a chunk object")), "{first}");
            }
        }
    }

    #[test]
    fn results_without_ids_pair_with_calls_of_the_same_name_in_order() {
        let req = json!({"contents": [
            {"role": "user", "parts": [{"text": "go"}]},
            {"role": "model", "parts": [{"functionCall": {"name": "read", "args": {"p": "a"}}},
                                        {"functionCall": {"name": "list", "args": {}}},
                                        {"functionCall": {"name": "read", "args": {"p": "b"}}}]},
            {"role": "user", "parts": [{"functionResponse": {"name": "list", "response": {"output": "x"}}},
                                       {"functionResponse": {"name": "read", "response": {"output": "A"}}},
                                       {"functionResponse": {"name": "read", "response": {"error": "no b"}}}]},
        ]});
        let steps = Gemini.steps(&req);
        let Step::Calls(calls) = &steps[1] else { panic!() };
        let Step::Results(rs) = &steps[2] else { panic!() };
        assert_eq!(rs[0].call_id, calls[1].id);
        assert_eq!(rs[1].call_id, calls[0].id);
        assert_eq!(rs[2].call_id, calls[2].id);
        assert!(rs[2].is_error && !rs[1].is_error);
        assert_eq!(rs[1].output, b"A");
    }

    #[test]
    fn the_stream_is_in_the_url() {
        assert!(Gemini.guards("/v1beta/models/gemini-2.5-flash:streamGenerateContent"));
        assert!(!Gemini.guards("/v1beta/models/gemini-2.5-flash:countTokens"));
        assert!(Gemini.streaming(&json!({}), "/v1beta/models/m:streamGenerateContent?alt=sse"));
        assert!(!Gemini.streaming(&json!({"stream": true}), "/v1beta/models/m:generateContent"));
    }
}
