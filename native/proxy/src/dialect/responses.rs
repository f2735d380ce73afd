//! OpenAI Responses: `POST /v1/responses` (Codex CLI, the OpenAI Agents SDK's default model).
//!
//! The conversation is the `input` items: `function_call` / `custom_tool_call` items are calls,
//! `function_call_output` / `custom_tool_call_output` items their results, matched by `call_id`.
//! Tools come from `tools` and from `additional_tools` input items, namespaced tools under both
//! `namespace.name` and `name`; a `tool_search` tool or a `defer_loading` one opens the set.
//! Codex's volatile `Chunk ID:` / `Wall time:` output lines are left out before results are
//! compared, and `Process exited with code N` (N ≠ 0) marks a failed command.
//!
//! A request continuing a stored response (`previous_response_id`) carries only its new items: the
//! server joins the kept conversation before them ([`Dialect::joined`]). A stream is `event:` +
//! `data:` pairs with increasing `sequence_number`s and no `[DONE]`; it ends with
//! `response.completed` (or `.incomplete` / `.failed`), which repeats the whole output.

use std::borrow::Cow;
use std::collections::BTreeMap;

use bytes::Bytes;
use serde_json::{json, Value};

use super::openai::openai_error;
use super::{Hold, event_data, sse_event, Dialect, ErrorKind, Follower, Outcome, Step, ToolCall, ToolResult};
use crate::trajectory::{content_text, looks_like_error, mask_volatile};

pub struct Responses;

const CALL_TYPES: [&str; 2] = ["function_call", "custom_tool_call"];
const OUTPUT_TYPES: [&str; 2] = ["function_call_output", "custom_tool_call_output"];

fn is_call(item: &Value) -> bool {
    item.get("type").and_then(Value::as_str).is_some_and(|t| CALL_TYPES.contains(&t))
}

impl Dialect for Responses {
    fn name(&self) -> &'static str {
        "responses"
    }

    fn route(&self) -> &'static str {
        "responses"
    }

    fn guards(&self, path: &str) -> bool {
        path == "/v1/responses"
    }

    fn tools(&self, req: &Value) -> Option<Vec<String>> {
        let mut names = Vec::new();
        let mut open = false;
        let extra = req.get("input").and_then(Value::as_array).into_iter().flatten().filter(|i| i["type"] == "additional_tools");
        for list in req.get("tools").into_iter().chain(extra.map(|i| &i["tools"])) {
            for t in list.as_array().into_iter().flatten() {
                collect_tool(t, None, &mut names, &mut open);
            }
        }
        (!open && !names.is_empty()).then_some(names)
    }

    fn steps<'a>(&self, req: &'a Value) -> Vec<Step<'a>> {
        let mut steps = Vec::new();
        let Some(items) = req.get("input").and_then(Value::as_array) else { return steps };
        for item in items {
            let kind = item.get("type").and_then(Value::as_str);
            if is_call(item) {
                let Some(c) = item_call(item) else { continue };
                match steps.last_mut() {
                    Some(Step::Calls(cs)) => cs.push(c),
                    _ => steps.push(Step::Calls(vec![c])),
                }
            } else if kind.is_some_and(|k| OUTPUT_TYPES.contains(&k)) {
                let Some(id) = item.get("call_id").and_then(Value::as_str) else { continue };
                let output = mask_volatile(content_text(item.get("output")));
                let is_error = looks_like_error(&output) || failed_command(&output);
                let r = ToolResult { call_id: Cow::Borrowed(id), output, is_error };
                match steps.last_mut() {
                    Some(Step::Results(rs)) => rs.push(r),
                    _ => steps.push(Step::Results(vec![r])),
                }
            } else if kind == Some("message") || (kind.is_none() && item.get("role").is_some()) {
                // Instructions (system, developer) do not answer or end anything.
                if !matches!(item.get("role").and_then(Value::as_str), Some("system") | Some("developer")) {
                    steps.push(Step::Other);
                }
            }
            // reasoning, additional_tools, item references, built-in tool calls: not steps.
        }
        steps
    }

    fn calls(&self, resp: &Value) -> Vec<Vec<ToolCall>> {
        let items = resp.get("output").and_then(Value::as_array);
        vec![items.into_iter().flatten().filter(|i| is_call(i)).filter_map(item_call).collect()]
    }

    fn apply_warnings(&self, req: &mut Value, text: &str) -> bool {
        let Some(items) = req.get_mut("input").and_then(Value::as_array_mut) else { return false };
        for item in items.iter_mut().rev() {
            if is_call(item) || item["role"] == "assistant" {
                return false;
            }
            if item.get("type").and_then(Value::as_str).is_some_and(|k| OUTPUT_TYPES.contains(&k)) {
                match item.get_mut("output") {
                    Some(Value::String(s)) => {
                        if !s.is_empty() {
                            s.push_str("\n\n");
                        }
                        s.push_str(text);
                    }
                    Some(Value::Array(parts)) => parts.push(json!({"type": "input_text", "text": text})),
                    _ => item["output"] = Value::String(text.to_owned()),
                }
                return true;
            }
        }
        false
    }

    fn reask(&self, req: &Value, resp: &Value, calls: &[ToolCall], results: &[String], stream: bool) -> Value {
        let mut body = req.clone();
        let Some(o) = body.as_object_mut() else { return body };
        o.insert("stream".into(), Value::Bool(stream));
        let mut input = match o.remove("input") {
            Some(Value::Array(a)) => a,
            Some(Value::String(s)) => vec![json!({"role": "user", "content": s})],
            _ => Vec::new(),
        };
        // The blocked answer's items go back as input (reasoning kept: a call may need it), then
        // a result for each call.
        for item in resp.get("output").and_then(Value::as_array).into_iter().flatten() {
            if item["type"] == "message" && item["role"] == "assistant" || item["type"] == "reasoning" || is_call(item) {
                input.push(item.clone());
            }
        }
        let types: BTreeMap<&str, &str> = resp
            .get("output")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|i| Some((i.get("call_id")?.as_str()?, i.get("type")?.as_str()?)))
            .collect();
        for (c, text) in calls.iter().zip(results) {
            let kind = if types.get(c.id.as_str()) == Some(&"custom_tool_call") { "custom_tool_call_output" } else { "function_call_output" };
            input.push(json!({"type": kind, "call_id": c.id, "output": text}));
        }
        o.insert("input".into(), Value::Array(input));
        body
    }

    fn stop_turn(&self, resp: &mut Value, _choice: usize, text: &str) {
        let Some(o) = resp.as_object_mut() else { return };
        let id = o.get("id").and_then(Value::as_str).unwrap_or("resp").to_owned();
        if let Some(items) = o.get_mut("output").and_then(Value::as_array_mut) {
            items.retain(|i| !is_call(i));
            items.push(message_item(&format!("msg_microloop_{}", id.trim_start_matches("resp_")), text));
        }
        o.insert("status".into(), "completed".into());
        o.insert("incomplete_details".into(), Value::Null);
    }

    fn error_body(&self, message: &str, kind: ErrorKind, code: &str) -> Value {
        openai_error(message, kind, code)
    }

    fn follower(&self, _req: &Value) -> Box<dyn Follower> {
        Box::<ResponseStream>::default()
    }

    fn continues<'a>(&self, req: &'a Value) -> Option<&'a str> {
        req.get("previous_response_id").and_then(Value::as_str).filter(|s| !s.is_empty())
    }

    fn joined(&self, req: &Value, prior: &[Value]) -> Value {
        let mut view = json!({"tools": req.get("tools").cloned().unwrap_or(Value::Null)});
        let mut input = prior.to_vec();
        match req.get("input") {
            Some(Value::Array(a)) => input.extend(a.iter().cloned()),
            Some(Value::String(s)) => input.push(json!({"role": "user", "content": s})),
            _ => {}
        }
        view["input"] = Value::Array(input);
        view
    }

    fn answer_hidden(&self, req: &mut Value, hidden: &[String]) -> bool {
        if hidden.is_empty() {
            return false;
        }
        let Some(o) = req.as_object_mut() else { return false };
        let mut input = match o.remove("input") {
            Some(Value::Array(a)) => a,
            Some(Value::String(s)) => vec![json!({"role": "user", "content": s})],
            _ => Vec::new(),
        };
        let answered: Vec<&str> = input.iter().filter_map(|i| i.get("call_id")?.as_str()).collect();
        let missing: Vec<Value> = hidden
            .iter()
            .filter(|id| !answered.contains(&id.as_str()))
            .map(|id| json!({"type": "function_call_output", "call_id": id, "output": crate::trajectory::NOT_RUN}))
            .collect();
        let changed = !missing.is_empty();
        input.splice(0..0, missing);
        o.insert("input".into(), Value::Array(input));
        changed
    }

    fn keeps(&self, req: &Value) -> bool {
        // A response the upstream does not store cannot be continued.
        req.get("store") != Some(&Value::Bool(false))
    }

    fn kept(&self, judged: &Value, resp: &Value) -> Option<(String, Vec<Value>)> {
        let id = resp.get("id")?.as_str()?.to_owned();
        let mut items: Vec<Value> = Vec::new();
        let input = match judged.get("input") {
            Some(Value::Array(a)) => a.clone(),
            Some(Value::String(s)) => vec![json!({"role": "user", "content": s})],
            _ => Vec::new(),
        };
        let output = resp.get("output").and_then(Value::as_array).cloned().unwrap_or_default();
        for item in input.iter().chain(&output) {
            if let Some(k) = keep_item(item) {
                items.push(k);
            }
        }
        Some((id, items))
    }
}

/// What replay needs of an item: calls and results whole, other messages as a bare marker.
fn keep_item(item: &Value) -> Option<Value> {
    let kind = item.get("type").and_then(Value::as_str);
    if is_call(item) || kind.is_some_and(|k| OUTPUT_TYPES.contains(&k)) {
        let mut k = item.clone();
        if let Some(o) = k.as_object_mut() {
            o.remove("id");
            o.remove("status");
        }
        return Some(k);
    }
    if kind == Some("message") || (kind.is_none() && item.get("role").is_some()) {
        let role = item.get("role").and_then(Value::as_str).unwrap_or("user");
        return (!matches!(role, "system" | "developer")).then(|| json!({"type": "message", "role": role}));
    }
    None
}

fn collect_tool(t: &Value, ns: Option<&str>, names: &mut Vec<String>, open: &mut bool) {
    if t.get("defer_loading").and_then(Value::as_bool) == Some(true) {
        *open = true;
    }
    match t.get("type").and_then(Value::as_str) {
        Some("namespace") => {
            let inner = t.get("name").and_then(Value::as_str);
            for c in t.get("tools").and_then(Value::as_array).into_iter().flatten() {
                collect_tool(c, inner, names, open);
            }
        }
        Some("tool_search") => *open = true,
        Some("function") | Some("custom") => {
            let name = t.get("name").or_else(|| t.pointer("/function/name")).and_then(Value::as_str);
            if let Some(n) = name {
                if let Some(ns) = ns {
                    names.push(format!("{ns}.{n}"));
                }
                names.push(n.to_owned());
            }
        }
        // Built-in tools (web_search, file_search, local_shell…) come back as their own items.
        _ => {}
    }
}

/// A `function_call` or `custom_tool_call` item as a call (a namespaced one as `namespace.name`).
fn item_call(item: &Value) -> Option<ToolCall> {
    let name = item.get("name")?.as_str()?;
    let name = match item.get("namespace").and_then(Value::as_str) {
        Some(ns) if !ns.is_empty() => format!("{ns}.{name}"),
        _ => name.to_owned(),
    };
    let args = match (item.get("arguments"), item.get("input")) {
        (Some(Value::String(s)), _) => s.clone(),
        (Some(v), _) => v.to_string(),
        (None, Some(v)) => v.to_string(),
        (None, None) => "{}".to_owned(),
    };
    Some(ToolCall { id: item.get("call_id").and_then(Value::as_str).unwrap_or("").to_owned(), name, args })
}

/// Codex reports a command's exit status in its output.
fn failed_command(output: &[u8]) -> bool {
    let head = &output[..output.len().min(256)];
    String::from_utf8_lossy(head)
        .lines()
        .find_map(|l| l.strip_prefix("Process exited with code "))
        .is_some_and(|c| c.trim() != "0")
}

fn message_item(id: &str, text: &str) -> Value {
    json!({"type": "message", "id": id, "status": "completed", "role": "assistant",
           "content": [{"type": "output_text", "text": text, "annotations": []}]})
}

/// A Responses stream being followed.
#[derive(Default)]
struct ResponseStream {
    hold: Hold,
    /// The output index of the first held item: replacements start there.
    first_held: Option<u64>,
    /// The last sequence number sent to the client.
    seq: u64,
    /// The response as `response.created` / the terminal event gave it.
    response: Option<Value>,
    /// Output items by index, as far as they came.
    items: BTreeMap<u64, Value>,
    args: BTreeMap<u64, String>,
    ended: bool,
    bad: Option<String>,
}

impl ResponseStream {
    fn read(&mut self, raw: &[u8]) -> bool {
        let Some(data) = event_data(raw) else { return true };
        let Ok(ev) = serde_json::from_str::<Value>(&data) else {
            self.bad.get_or_insert_with(|| "the upstream sent a stream event that is not JSON".to_owned());
            return false;
        };
        let index = ev.get("output_index").and_then(Value::as_u64).unwrap_or(0);
        let kind = ev.get("type").and_then(Value::as_str).unwrap_or("");
        match kind {
            "response.created" | "response.in_progress" => self.keep_response(&ev),
            "response.output_item.added" => {
                if is_call(&ev["item"]) {
                    self.hold.on = true;
                    self.first_held.get_or_insert(index);
                }
                self.items.insert(index, ev["item"].clone());
            }
            "response.function_call_arguments.delta" | "response.custom_tool_call_input.delta" => {
                self.args.entry(index).or_default().push_str(ev["delta"].as_str().unwrap_or(""));
            }
            "response.output_text.delta" => {
                if let Some(item) = self.items.get_mut(&index) {
                    let ci = ev.get("content_index").and_then(Value::as_u64).unwrap_or(0) as usize;
                    let parts = item.get_mut("content").and_then(Value::as_array_mut);
                    if let Some(part) = parts.and_then(|p| p.get_mut(ci)) {
                        let cur = part["text"].as_str().unwrap_or("").to_owned();
                        part["text"] = Value::String(cur + ev["delta"].as_str().unwrap_or(""));
                    }
                }
            }
            "response.content_part.added" => {
                if let Some(parts) = self.items.get_mut(&index).and_then(|i| i.get_mut("content")).and_then(Value::as_array_mut) {
                    parts.push(ev["part"].clone());
                }
            }
            "response.output_item.done" => {
                // Some servers send a call's item only when done, without `output_item.added`.
                if is_call(&ev["item"]) {
                    self.hold.on = true;
                    self.first_held.get_or_insert(index);
                }
                self.items.insert(index, ev["item"].clone());
            }
            "response.completed" | "response.incomplete" | "response.failed" => {
                // Or only in the terminal event's output.
                let output = ev.pointer("/response/output").and_then(Value::as_array);
                if let Some(first) = output.and_then(|o| o.iter().position(is_call)) {
                    self.hold.on = true;
                    self.first_held.get_or_insert(first as u64);
                }
                self.keep_response(&ev);
                self.ended = true;
            }
            "error" => self.ended = true,
            _ => {}
        }
        if !self.hold.on {
            if let Some(n) = ev.get("sequence_number").and_then(Value::as_u64) {
                self.seq = n;
            }
        }
        true
    }

    /// The event's `response`, when it is an object: the answer is assembled in it.
    fn keep_response(&mut self, ev: &Value) {
        if let Some(r) = ev.get("response").filter(|r| r.is_object()) {
            self.response = Some(r.clone());
        }
    }

    fn event(&mut self, mut v: Value) -> Bytes {
        self.seq += 1;
        v["sequence_number"] = self.seq.into();
        sse_event(&v)
    }

    /// The events that bring one whole item to the client at `index`.
    fn item_events(&mut self, item: &Value, index: u64) -> Vec<Bytes> {
        let mut out = Vec::new();
        let id = item.get("id").cloned().unwrap_or(Value::Null);
        let mut start = item.clone();
        match item["type"].as_str() {
            Some("message") => {
                start["content"] = json!([]);
                start["status"] = "in_progress".into();
                out.push(self.event(json!({"type": "response.output_item.added", "output_index": index, "item": start})));
                for (ci, part) in item["content"].as_array().into_iter().flatten().enumerate() {
                    let mut empty = part.clone();
                    if part.get("text").is_some() {
                        empty["text"] = "".into();
                    }
                    let at = json!({"item_id": id, "output_index": index, "content_index": ci});
                    let with = |kind: &str, extra: Value| {
                        let mut e = at.clone();
                        e["type"] = kind.into();
                        for (k, v) in extra.as_object().unwrap() {
                            e[k] = v.clone();
                        }
                        e
                    };
                    out.push(self.event(with("response.content_part.added", json!({"part": empty}))));
                    if let Some(t) = part.get("text").and_then(Value::as_str) {
                        out.push(self.event(with("response.output_text.delta", json!({"delta": t, "logprobs": []}))));
                        out.push(self.event(with("response.output_text.done", json!({"text": t, "logprobs": []}))));
                    }
                    out.push(self.event(with("response.content_part.done", json!({"part": part}))));
                }
            }
            Some("function_call") => {
                start["arguments"] = "".into();
                start["status"] = "in_progress".into();
                out.push(self.event(json!({"type": "response.output_item.added", "output_index": index, "item": start})));
                let args = item["arguments"].clone();
                out.push(self.event(json!({"type": "response.function_call_arguments.delta", "item_id": id, "output_index": index, "delta": args})));
                out.push(self.event(json!({"type": "response.function_call_arguments.done", "item_id": id, "output_index": index, "arguments": args, "name": item["name"]})));
            }
            _ => out.push(self.event(json!({"type": "response.output_item.added", "output_index": index, "item": start}))),
        }
        out.push(self.event(json!({"type": "response.output_item.done", "output_index": index, "item": item})));
        out
    }
}

impl Follower for ResponseStream {
    fn follow(&mut self, raw: &[u8]) -> bool {
        // After an event that is not the API's nothing more goes out: the stream ends with the error event.
        self.bad.is_none() && self.read(raw)
    }

    held_in_field!();

    fn answer(&self) -> Value {
        let mut resp = self.response.clone().unwrap_or_else(|| json!({"object": "response"}));
        let streamed: Vec<Value> = self
            .items
            .iter()
            .map(|(i, item)| {
                let mut item = item.clone();
                if is_call(&item) && item.get("arguments").and_then(Value::as_str).map_or(true, str::is_empty) {
                    if let Some(a) = self.args.get(i) {
                        let key = if item["type"] == "custom_tool_call" { "input" } else { "arguments" };
                        item[key] = Value::String(a.clone());
                    }
                }
                item
            })
            .collect();
        // The terminal event repeats the whole output; without one, the items as they came.
        let has_output = resp.get("output").and_then(Value::as_array).is_some_and(|o| !o.is_empty());
        if !has_output {
            resp["output"] = Value::Array(streamed);
        }
        resp
    }

    fn complete(&self) -> bool {
        self.ended
    }

    fn broken(&self) -> Option<String> {
        self.bad.clone().or_else(|| (!self.ended).then(|| "the upstream's stream ended before response.completed".to_owned()))
    }

    fn finish(mut self: Box<Self>, outcome: Outcome) -> Vec<Bytes> {
        let (resp, fresh) = match outcome {
            Outcome::Allowed => return std::mem::take(&mut self.hold.events),
            Outcome::Stopped(r) => (r, false),
            Outcome::Reasked(r) => (r, true),
        };
        let first = self.first_held.unwrap_or(0);
        let items = resp.get("output").and_then(Value::as_array).cloned().unwrap_or_default();
        // What the client already has: the items before the first held one.
        let sent: Vec<Value> = self.items.range(..first).map(|(_, v)| v.clone()).collect();
        let new: Vec<Value> = if fresh { items } else { items.get(first as usize..).unwrap_or(&[]).to_vec() };
        let mut out = Vec::new();
        for (k, item) in new.iter().enumerate() {
            out.extend(self.item_events(item, first + k as u64));
        }
        let mut done = resp.clone();
        let mut output = sent;
        output.extend(new);
        done["output"] = Value::Array(output);
        done["status"] = "completed".into();
        out.push(self.event(json!({"type": "response.completed", "response": done})));
        out
    }

    fn error_event(&mut self, message: &str, kind: ErrorKind, code: &str) -> Bytes {
        // The Responses error event, with the OpenAI error envelope too, so SDKs raise it.
        let mut v = openai_error(message, kind, code);
        v["type"] = "error".into();
        v["code"] = code.into();
        v["message"] = message.into();
        v["param"] = Value::Null;
        self.event(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codex_volatile_lines_are_masked() {
        let a = mask_volatile(b"Chunk ID: e5a8fa\nWall time: 0.0000 seconds\nProcess exited with code 1\nOutput:\nno".to_vec());
        let b = mask_volatile(b"Chunk ID: 00ff11\nWall time: 1.5 seconds\nProcess exited with code 1\nOutput:\nno".to_vec());
        assert_eq!(a, b);
        assert!(failed_command(&a));
        assert!(!failed_command(b"Process exited with code 0\nOutput:\n"));
        assert_eq!(mask_volatile(b"plain".to_vec()), b"plain");
    }

    #[test]
    fn tools_come_from_tools_and_additional_tools_namespaced() {
        let req = json!({"tools": [{"type": "function", "name": "exec_command"}, {"type": "web_search"}],
            "input": [{"type": "additional_tools", "role": "developer", "tools": [
                {"type": "namespace", "name": "collab", "tools": [{"type": "function", "name": "send"}]},
                {"type": "custom", "name": "apply_patch"}]}]});
        let t = Responses.tools(&req).unwrap();
        for n in ["exec_command", "collab.send", "send", "apply_patch"] {
            assert!(t.contains(&n.to_owned()), "{n} in {t:?}");
        }
        let open = json!({"tools": [{"type": "function", "name": "a"}, {"type": "tool_search"}]});
        assert_eq!(Responses.tools(&open), None);
    }

    #[test]
    fn calls_and_outputs_are_steps_matched_by_call_id() {
        let req = json!({"input": [
            {"role": "developer", "content": "rules"},
            {"role": "user", "content": "go"},
            {"type": "reasoning", "id": "rs_1", "summary": []},
            {"type": "function_call", "call_id": "c1", "name": "exec_command", "arguments": "{\"cmd\":\"ls\"}"},
            {"type": "custom_tool_call", "call_id": "c2", "name": "apply_patch", "input": "*** Begin Patch"},
            {"type": "function_call_output", "call_id": "c1", "output": "Chunk ID: 1\nWall time: 0 seconds\nProcess exited with code 2\n"},
            {"type": "custom_tool_call_output", "call_id": "c2", "output": [{"type": "input_text", "text": "done"}]},
        ]});
        let steps = Responses.steps(&req);
        assert!(matches!(steps[0], Step::Other));
        let Step::Calls(calls) = &steps[1] else { panic!("calls") };
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[1].args, "\"*** Begin Patch\"");
        let Step::Results(rs) = &steps[2] else { panic!("results") };
        assert_eq!((rs[0].call_id.as_ref(), rs[0].is_error, rs[1].is_error), ("c1", true, false));
        assert_eq!(steps.len(), 3);
    }

    #[test]
    fn a_response_that_is_not_an_object_is_not_kept() {
        // From make fuzz-smoke's proxy_stream: a terminal event whose `response` is a string
        // panicked the answer's assembly (IndexMut on a string). The created one is kept instead.
        let mut f = Responses.follower(&json!({"stream": true}));
        for data in [
            json!({"type": "response.created", "sequence_number": 0, "response": {"id": "resp_1", "output": []}}),
            json!({"type": "response.output_item.done", "sequence_number": 1, "output_index": 0,
                "item": {"type": "function_call", "id": "fc_1", "call_id": "c1", "name": "bash", "arguments": "{}"}}),
            json!({"type": "response.completed", "sequence_number": 2, "response": "chat.completion.chunk"}),
        ] {
            let _ = f.on_event(Bytes::from(format!("data: {data}\n\n")));
        }
        let answer = f.answer();
        assert_eq!(answer["id"], "resp_1");
        assert_eq!(answer["output"][0]["call_id"], "c1");
        assert!(f.complete());
    }
}
