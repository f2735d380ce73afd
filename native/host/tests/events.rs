//! Decision events and the `[audit]` section, end to end through the host.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use microloop_audit::log::new_key_file;
use microloop_audit::verify::verify;
use microloop_core::{Rule, Session};
use microloop_host::{parse_host_text, Decision, Events, Host, Sink};

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ml-host-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// What a sink saw: tool, action, rule, fingerprint, history hash, the rule typed.
type Seen = (String, String, String, Option<u64>, u64, Option<Rule>);

#[derive(Default)]
struct Collect(Mutex<Vec<Seen>>);

impl Sink for Collect {
    fn decision(&self, d: &Decision<'_>) -> Option<u64> {
        self.0.lock().unwrap().push((d.tool.into(), d.action().into(), d.verdict.rule.to_string(), d.fingerprint(), d.history_hash(), d.rule()));
        None
    }
}

#[test]
fn every_decision_reaches_every_sink_with_its_fingerprint() {
    let host = Host::from_text("[loops]\nmax_identical = 2\n").unwrap();
    assert!(host.events().is_none(), "no sink configured: nothing to pay per check");
    let c = Arc::new(Collect::default());
    let ev = Events::new(vec![c.clone() as Arc<dyn Sink>].into());
    let mut s = Session::new(host.engine().clone());
    for i in 0..4 {
        let v = s.check("search", br#"{"q": "x"}"#, i).unwrap();
        ev.emit(&s, "search", br#"{"q": "x"}"#, &v, i);
        if v.call_id != 0 {
            s.record(v.call_id, b"same", false).unwrap();
        }
    }
    let got = c.0.lock().unwrap();
    let actions: Vec<_> = got.iter().map(|g| g.1.as_str()).collect();
    assert_eq!(actions, ["allow", "warn", "block", "block"]);
    assert_eq!(got[2].2, "loop.identical");
    let rules: Vec<_> = got.iter().map(|g| g.5).collect();
    assert_eq!(rules, [None, Some(Rule::Identical), Some(Rule::Identical), Some(Rule::Identical)]);
    let fp = fingerprint_of("search", r#"{"q":"x"}"#);
    assert!(got.iter().all(|g| g.3 == Some(fp)), "the fingerprint ml_fingerprint gives");
    assert_ne!(got[0].4, got[1].4, "the history hash moves with the history");
    assert_eq!(got[2].4, got[3].4, "a blocked call leaves it unchanged");
}

fn fingerprint_of(tool: &str, args: &str) -> u64 {
    let h = microloop_core::canon::hash_json(args.as_bytes(), &[]).unwrap();
    microloop_core::canon::call_fingerprint(tool, h.fingerprint)
}

#[test]
fn an_audit_section_logs_every_decision_of_every_session() {
    let d = scratch("audit");
    let key = new_key_file(&d.join("audit.key"), "example.com/host-test").unwrap().verifier();
    let log = d.join("audit.log");
    let toml = format!(
        "[loops]\nmax_identical = 1\n[audit]\npath = {:?}\nkey_file = {:?}\ncheckpoint_every = 3\n",
        log.to_str().unwrap(),
        d.join("audit.key").to_str().unwrap()
    );
    let host = Host::from_text(&toml).unwrap();
    assert_eq!(host.engine().policy.limits.max_identical, 1);
    // A second host on the same file in this process shares the open log.
    let json = serde_json::json!({"audit": {"path": log, "key_file": d.join("audit.key")}}).to_string();
    let other = Host::from_text(&json).unwrap();
    assert!(Arc::ptr_eq(host.audit_log().unwrap(), other.audit_log().unwrap()));
    let mut seqs = Vec::new();
    for h in [&host, &other] {
        let ev = h.events().unwrap();
        let mut s = Session::new(h.engine().clone());
        for _ in 0..3 {
            let v = s.check("search", br#"{"q": "x"}"#, 0).unwrap();
            seqs.push(ev.emit(&s, "search", br#"{"q": "x"}"#, &v, 1_765_000_000_000).unwrap());
        }
    }
    assert_eq!(seqs, [0, 1, 2, 3, 4, 5]);
    let sha = host.policy_sha256().to_owned();
    drop(host);
    drop(other);
    let text = std::fs::read(&log).unwrap();
    let v = verify(&text, &key, None).unwrap();
    assert_eq!(v.records, 6);
    let first: serde_json::Value = serde_json::from_slice(text.split(|&b| b == b'\n').next().unwrap()).unwrap();
    assert_eq!(first["policy_sha256"], sha.as_str());
    assert_eq!(first["action"], "allow");
    let lines: Vec<&str> = std::str::from_utf8(&text).unwrap().lines().collect();
    assert!(lines[1].contains("\"action\":\"block\"") && lines[1].contains("\"rule\":\"loop.identical\""), "{}", lines[1]);
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn an_audit_log_that_cannot_be_opened_is_an_error_at_load() {
    let d = scratch("bad");
    new_key_file(&d.join("k"), "n").unwrap();
    let k = d.join("k");
    let cases = [
        (format!("[audit]\npath = {:?}\nkey_file = {:?}\n", d.join("no/dir/a.log"), k), "audit.path", "cannot open"),
        (format!("[audit]\npath = {:?}\nkey_file = {:?}\n", d.join("a.log"), d.join("missing.key")), "audit.key_file", "cannot read the key file"),
        (format!("[audit]\npath = {:?}\n", d.join("a.log")), "audit.key_file", "is required"),
        (format!("[audit]\npath = {:?}\nkey_file = {:?}\nsigner = 1\n", d.join("a.log"), k), "audit.signer", "unknown key"),
        (format!("[audit]\npath = {:?}\nkey_file = {:?}\ncheckpoint_every = 0\n", d.join("a.log"), k), "audit.checkpoint_every", ">= 1"),
        ("audit = 3\n".to_string(), "audit", "must be a table"),
    ];
    for (text, path, msg) in cases {
        let e = Host::from_text(&text).unwrap_err();
        assert_eq!(e.path, path, "{text}: {e}");
        assert!(e.message.contains(msg), "{text}: {e}");
    }
    // The rest of the policy is still checked as before.
    let e = parse_host_text("[loops]\nmax_identical = \"x\"\n[audit]\npath = \"a\"\nkey_file = \"k\"\n").unwrap_err();
    assert_eq!(e.path, "loops.max_identical");
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn a_policy_file_with_an_audit_section_loads_through_the_spec() {
    let d = scratch("spec");
    new_key_file(&d.join("k"), "n").unwrap();
    let file = d.join(".microloop.toml");
    std::fs::write(&file, format!("[audit]\npath = {:?}\nkey_file = {:?}\n", d.join("a.log"), d.join("k"))).unwrap();
    let (host, found) = Host::load(None, Some(&d)).unwrap();
    assert_eq!(found.unwrap(), file);
    assert!(host.audit_log().is_some());
    let (plain, _) = Host::load(Some("strict"), None).unwrap();
    assert!(plain.audit_log().is_none() && plain.events().is_none());
    std::fs::remove_dir_all(&d).ok();
}
