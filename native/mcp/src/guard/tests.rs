use super::*;
use microloop_host::FixedClock;

fn guard(spec: &str) -> Guard {
    let (p, _) = microloop_host::load(Some(spec), None).unwrap();
    let e = microloop_host::engine_for(p.clone()).unwrap();
    Guard::new(p, e, Arc::new(FixedClock::new(1_000)))
}

fn line(v: Value) -> Vec<u8> {
    let mut b = serde_json::to_vec(&v).unwrap();
    b.push(b'\n');
    b
}

fn answer(a: FromClient) -> Value {
    match a {
        FromClient::Answer(b) => serde_json::from_slice(&b).unwrap(),
        FromClient::Forward => panic!("forwarded"),
        FromClient::Amend(_) => panic!("forwarded, amended"),
    }
}

const TOOLS: &str = r#"{"tools":[
  {"name":"read_file","inputSchema":{"type":"object","properties":{"path":{"type":"string"}},"required":["path"]},"annotations":{"readOnlyHint":true}},
  {"name":"read_multiple_files","inputSchema":{"type":"object"}},
  {"name":"write_file","inputSchema":{"type":"object","properties":{"path":{"type":"string"},"content":{"type":"string"}},"required":["path","content"]},"annotations":{"readOnlyHint":false,"destructiveHint":true}},
  {"name":"list_directory","inputSchema":{"type":"object"}}]}"#;

fn listed(g: &mut Guard) {
    assert_eq!(g.on_client(&line(json!({"jsonrpc":"2.0","id":"l","method":"tools/list"}))), FromClient::Forward);
    let tools: Value = serde_json::from_str(TOOLS).unwrap();
    assert_eq!(g.on_server(&line(json!({"jsonrpc":"2.0","id":"l","result":tools}))), FromServer::Forward);
    assert_eq!(g.take_notes(), Vec::<String>::new());
}

fn call(g: &mut Guard, id: u64, tool: &str, args: Value) -> FromClient {
    g.on_client(&line(json!({"jsonrpc":"2.0","id":id,"method":"tools/call","params":{"name":tool,"arguments":args}})))
}

fn text_result(g: &mut Guard, id: u64, text: &str, is_error: bool) -> FromServer {
    g.on_server(&line(json!({"jsonrpc":"2.0","id":id,"result":{"content":[{"type":"text","text":text}],"isError":is_error}})))
}

#[test]
fn the_same_read_of_an_unchanged_file_runs_twice_then_is_answered_here() {
    let mut g = guard("balanced");
    listed(&mut g);
    let mut ran = 0;
    for id in 1..=3 {
        match call(&mut g, id, "read_file", json!({"path": "/a.txt"})) {
            FromClient::Forward => {
                ran += 1;
                text_result(&mut g, id, "hello", false);
            }
            a => {
                let v = answer(a);
                assert_eq!(v["id"], id);
                assert_eq!(v["result"]["isError"], true);
                let text = v["result"]["content"][0]["text"].as_str().unwrap();
                assert!(text.contains("read_file"), "{text}");
                assert_eq!(v["result"]["_meta"][META_KEY]["action"], "block");
            }
        }
    }
    assert_eq!(ran, 2);
    assert_eq!(g.counters.blocked, 1);
    assert_eq!(g.pending(), 0);
}

#[test]
fn a_write_in_between_lets_the_read_through_again() {
    let mut g = guard("balanced");
    listed(&mut g);
    for id in 1..=2 {
        assert_eq!(call(&mut g, id, "read_file", json!({"path": "/a.txt"})), FromClient::Forward);
        text_result(&mut g, id, "hello", false);
    }
    assert_eq!(call(&mut g, 3, "write_file", json!({"path": "/a.txt", "content": "x"})), FromClient::Forward);
    text_result(&mut g, 3, "Successfully wrote to /a.txt", false);
    assert_eq!(call(&mut g, 4, "read_file", json!({"path": "/a.txt"})), FromClient::Forward);
}

#[test]
fn an_unknown_tool_gets_the_specs_error_naming_the_nearest_tools() {
    let mut g = guard("balanced");
    // Before the server listed its tools, nothing is known to be unknown.
    assert_eq!(call(&mut g, 1, "read_fil", json!({})), FromClient::Forward);
    listed(&mut g);
    let v = answer(call(&mut g, 2, "read_fil", json!({"path": "/a"})));
    assert_eq!(v["error"]["code"], -32602);
    assert_eq!(v["error"]["data"]["nearest"][0], "read_file");
    assert!(v["error"]["message"].as_str().unwrap().starts_with("Unknown tool: read_fil."), "{v}");
    // After list_changed the old list is not trusted until the next listing.
    assert_eq!(g.on_server(&line(json!({"jsonrpc":"2.0","method":"notifications/tools/list_changed"}))), FromServer::Forward);
    assert_eq!(call(&mut g, 3, "brand_new_tool", json!({})), FromClient::Forward);
}

#[test]
fn arguments_that_break_the_servers_input_schema_never_reach_it() {
    let mut g = guard("balanced");
    listed(&mut g);
    let v = answer(call(&mut g, 1, "write_file", json!({"path": "/a.txt"})));
    assert_eq!(v["result"]["isError"], true);
    assert_eq!(v["result"]["_meta"][META_KEY]["rule"], INPUT_SCHEMA_RULE);
    assert!(v["result"]["content"][0]["text"].as_str().unwrap().contains("content"), "{v}");
    assert_eq!(call(&mut g, 2, "write_file", json!({"path": "/a.txt", "content": "x"})), FromClient::Forward);
}

#[test]
fn annotations_give_the_effect_unless_the_policy_does() {
    let mut g = guard("balanced");
    listed(&mut g);
    let p = &g.session().engine().policy;
    use microloop_core::effect::Effect;
    assert_eq!(p.resolve("read_file").effect, Some(Effect::Read));
    assert_eq!(p.resolve("write_file").effect, Some(Effect::Write));
    assert_eq!(p.resolve("list_directory").effect, None);
    let mut g = guard(r#"{"tools":[{"name":"read_file","effect":"write"}]}"#);
    listed(&mut g);
    assert_eq!(g.session().engine().policy.resolve("read_file").effect, Some(Effect::Write));
}

#[test]
fn a_warning_is_added_to_the_results_content() {
    let mut g = guard(r#"{"loops":{"max_identical":3,"max_no_progress":3}}"#);
    listed(&mut g);
    let mut replaced = None;
    for id in 1..=3 {
        assert_eq!(call(&mut g, id, "read_file", json!({"path": "/a"})), FromClient::Forward);
        if let FromServer::Replace(b) = text_result(&mut g, id, "same", false) {
            replaced = Some(serde_json::from_slice::<Value>(&b).unwrap());
        }
    }
    let v = replaced.expect("the third result carries a warning");
    assert_eq!(v["result"]["content"][0]["text"], "same");
    assert!(v["result"]["content"][1]["text"].as_str().unwrap().len() > 10, "{v}");
}

#[test]
fn a_reused_id_is_refused_while_the_first_waits() {
    let mut g = guard("balanced");
    assert_eq!(call(&mut g, 7, "read_file", json!({"path": "/a"})), FromClient::Forward);
    let v = answer(call(&mut g, 7, "read_file", json!({"path": "/b"})));
    assert_eq!(v["error"]["code"], -32600);
    text_result(&mut g, 7, "a", false);
    assert_eq!(call(&mut g, 7, "read_file", json!({"path": "/b"})), FromClient::Forward);
}

#[test]
fn when_the_server_dies_every_waiting_request_is_answered() {
    let mut g = guard("balanced");
    assert_eq!(call(&mut g, 1, "slow", json!({})), FromClient::Forward);
    assert_eq!(g.on_client(&line(json!({"jsonrpc":"2.0","id":"p","method":"ping"}))), FromClient::Forward);
    let answers: Vec<Value> = g.server_closed("exit status 3").iter().map(|b| serde_json::from_slice(b).unwrap()).collect();
    assert_eq!(answers.len(), 2);
    assert!(answers.iter().all(|a| a["error"]["code"] == -32000));
    assert_eq!(answers[0]["id"], "p"); // string ids sort before numbers: `"` < `1`
    assert_eq!(answers[1]["id"], 1);
    let late = answer(call(&mut g, 2, "x", json!({})));
    assert!(late["error"]["message"].as_str().unwrap().contains("exit status 3"));
}

#[test]
fn lines_it_cannot_read_pass_as_they_came() {
    let mut g = guard("balanced");
    for l in [&b"not json\n"[..], b"\n", b"[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\"}]\n", b"{\"id\":1,\"method\":\"tools/call\",\"params\":7}\n", b"{broken\n"] {
        assert_eq!(g.on_client(l), FromClient::Forward);
        assert_eq!(g.on_server(l), FromServer::Forward);
    }
}

#[test]
fn a_cancelled_request_no_longer_holds_its_id() {
    let mut g = guard("balanced");
    assert_eq!(call(&mut g, 9, "slow", json!({})), FromClient::Forward);
    g.on_client(&line(json!({"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":9}})));
    assert_eq!(g.pending(), 0);
}

#[test]
fn a_schema_the_rule_engine_refuses_is_left_out_and_said() {
    let mut g = guard("balanced");
    g.on_client(&line(json!({"jsonrpc":"2.0","id":1,"method":"tools/list"})));
    let tools = json!({"tools":[{"name":"a","inputSchema":{"type":"strin"}},{"name":"b","inputSchema":{"type":"object","required":["x"]}}]});
    g.on_server(&line(json!({"jsonrpc":"2.0","id":1,"result":tools})));
    let notes = g.take_notes();
    assert!(notes.iter().any(|n| n.contains("`a`")), "{notes:?}");
    assert_eq!(call(&mut g, 2, "a", json!({})), FromClient::Forward);
    assert!(matches!(call(&mut g, 3, "b", json!({})), FromClient::Answer(_)));
}

#[test]
fn nearest_names() {
    let names = ["read_file", "read_text_file", "write_file", "list_directory", "search_files"];
    assert_eq!(nearest("readfile", names.iter().copied(), 2), ["read_file", "write_file"]);
    assert_eq!(nearest("list", names.iter().copied(), 1), ["list_directory"]);
    assert!(nearest("x", std::iter::empty(), 3).is_empty());
}

#[test]
fn a_shared_guard_lets_clients_use_the_same_ids() {
    let mut g = guard("balanced").shared();
    assert_eq!(call(&mut g, 7, "read_file", json!({"path": "/a"})), FromClient::Forward);
    assert_eq!(call(&mut g, 7, "read_file", json!({"path": "/b"})), FromClient::Forward);
}

#[test]
fn a_call_that_runs_goes_with_its_approval_token_and_its_own_bytes() {
    let dir = std::env::temp_dir().join(format!("ml-mcp-approval-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("approval.key");
    write_test_key(&key);
    let text = format!("[loops]\nmax_identical = 1\n[approval]\nkey_file = {:?}\naudience = \"tools.test\"\n", key.to_str().unwrap());
    let (p, sections, text, _) = microloop_host::Host::load_parts(Some(&text), None).unwrap();
    let host = microloop_host::Host::new(p.clone(), sections, text.as_bytes()).unwrap();
    let mut g = Guard::new(p, host.engine().clone(), Arc::new(FixedClock::new(1_000))).with_events(host.events());
    let sent = br#"{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"a", "n": 1.50},"_meta":{"progressToken":3}}}"#;
    let FromClient::Amend(out) = g.on_client(&[&sent[..], b"\n"].concat()) else { panic!("not amended") };
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains(r#""arguments":{"path":"a", "n": 1.50}"#), "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["params"]["_meta"]["progressToken"], 3);
    let token = v["params"]["_meta"][APPROVAL_KEY].as_str().unwrap();
    assert_eq!(token.split('.').count(), 3);
    // A float written in exponent form is a number JCS represents: the call gets its token.
    assert!(matches!(call(&mut g, 11, "list_directory", json!({"big": 1e20})), FromClient::Amend(_)));
    // Arguments JCS cannot represent: forwarded as they came, and stderr says why.
    let bad = br#"{"jsonrpc":"2.0","id":12,"method":"tools/call","params":{"name":"write_file","arguments":{"id":9007199254740993}}}"#;
    assert_eq!(g.on_client(bad), FromClient::Forward);
    assert!(g.take_notes().iter().any(|n| n.contains("without a token")));
    std::fs::remove_dir_all(&dir).ok();
}

/// Writes a signer key file.
fn write_test_key(path: &std::path::Path) {
    std::fs::write(path, "PRIVATE+KEY+approval-test+47b6c8a2+AQABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f\n").unwrap();
}
