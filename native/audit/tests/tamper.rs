//! The log as an attacker would meet it: every edit of a written log is caught by `verify`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use microloop_audit::log::{new_key_file, read_key_file, AuditLog, Entry, Options};
use microloop_audit::merkle::verify_inclusion;
use microloop_audit::note::{Checkpoint, NoteSigner, NoteVerifier};
use microloop_audit::verify::{prove, read, verify, Tampered};

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ml-audit-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn entry(i: u64) -> Entry {
    let action = ["allow", "warn", "block", "halt"][(i % 4) as usize];
    Entry {
        time_ms: 1_765_000_000_000 + i,
        session: "session-1".into(),
        call: i + 1,
        tool: if i.is_multiple_of(3) { "search".into() } else { "run_sql".into() },
        args: format!(r#"{{"q": "item {i}", "n": {i}}}"#).into_bytes(),
        action,
        rule: if action == "allow" { String::new() } else { "loop.identical".into() },
        policy_sha256: "ab".repeat(32).into(),
    }
}

/// A log of `n` records with a checkpoint every `every` records.
fn write_log(path: &Path, n: u64, every: u64) -> NoteVerifier {
    let signer = NoteSigner::generate("example.com/audit").unwrap();
    let key = signer.verifier();
    let mut o = Options::new(path, signer);
    o.every_records = every;
    o.every = Duration::from_secs(3600);
    let l = AuditLog::open(o).unwrap();
    for i in 0..n {
        assert_eq!(l.append(entry(i)), Some(i));
    }
    l.close().unwrap();
    key
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path).unwrap().lines().map(str::to_owned).collect()
}

fn joined(lines: &[String]) -> Vec<u8> {
    let mut s = lines.join("\n");
    s.push('\n');
    s.into_bytes()
}

fn tampered(log: &[u8], key: &NoteVerifier, trusted: Option<&Checkpoint>) -> Tampered {
    verify(log, key, trusted).expect_err("tampering must be detected")
}

#[test]
fn an_honest_log_verifies_and_records_what_it_should() {
    let d = scratch("honest");
    let path = d.join("audit.log");
    let key = write_log(&path, 25, 10);
    let l = lines(&path);
    // 25 records, checkpoints after 10, 20 and at close.
    assert_eq!(l.len(), 28);
    let v = verify(&std::fs::read(&path).unwrap(), &key, None).unwrap();
    assert_eq!((v.records, v.checkpoints, v.last.size), (25, 3, 25));
    assert_eq!(v.last.origin, "example.com/audit");
    let first: serde_json::Value = serde_json::from_str(&l[0]).unwrap();
    assert_eq!(first["seq"], 0);
    assert_eq!(first["tool"], "search");
    assert_eq!(first["args_canon"], "jcs");
    // The SHA-256 of {"n":0,"q":"item 0"}, the arguments' canonical form; never the arguments.
    assert_eq!(first["args_sha256"], "b40d052e7ff046f8181a034aff96e6a0a8c10c741c3b4eb0711c0f0e0f048de4");
    assert!(!l[0].contains("item 0"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }
    std::fs::remove_dir_all(&d).ok();
}

/// Each way of editing a written log, and what `verify` must say.
#[test]
fn every_edit_is_detected() {
    let d = scratch("edits");
    let path = d.join("audit.log");
    let key = write_log(&path, 30, 10);
    let honest = lines(&path);
    // Lines: records 0..=9, cp(10), records 10..=19, cp(20), records 20..=29, cp(30).
    assert!(honest[10].starts_with("{\"checkpoint\":"));
    let rec = |i: usize| i + i / 10; // the line index of record i

    // A changed record: its action turned from block to allow.
    let mut l = honest.clone();
    assert!(l[rec(14)].contains("\"action\":\"block\""));
    l[rec(14)] = l[rec(14)].replace("\"action\":\"block\"", "\"action\":\"allow\"");
    let t = tampered(&joined(&l), &key, None);
    assert_eq!((t.line, t.first_bad_seq), (22, Some(10)), "{t}");
    assert!(t.message.contains("do not match the checkpoint"), "{t}");

    // A removed record.
    let mut l = honest.clone();
    l.remove(rec(5));
    let t = tampered(&joined(&l), &key, None);
    assert_eq!(t.first_bad_seq, Some(5), "{t}");

    // Two records swapped.
    let mut l = honest.clone();
    l.swap(rec(3), rec(4));
    let t = tampered(&joined(&l), &key, None);
    assert_eq!(t.first_bad_seq, Some(3), "{t}");
    assert!(t.message.contains("removed, reordered or inserted"), "{t}");

    // A record appended after the last checkpoint (a well-formed one, the next seq).
    let mut l = honest.clone();
    l.push(l[rec(29)].replace("\"seq\":29", "\"seq\":30"));
    let t = tampered(&joined(&l), &key, None);
    assert_eq!(t.first_bad_seq, Some(30), "{t}");
    assert!(t.message.contains("no signature covers"), "{t}");

    // A truncated log: cut in the middle of the last checkpoint.
    let bytes = std::fs::read(&path).unwrap();
    let t = tampered(&bytes[..bytes.len() - 40], &key, None);
    assert!(t.message.contains("partial line"), "{t}");
    // ...or right after a record.
    let t = tampered(&joined(&honest[..rec(25) + 1]), &key, None);
    assert_eq!(t.first_bad_seq, Some(20), "{t}");

    // A forged checkpoint: records rewritten, then signed by another key under the same name.
    let forger = NoteSigner::generate("example.com/audit").unwrap();
    let mut l = honest.clone();
    l[rec(25)] = l[rec(25)].replace("\"action\":\"warn\"", "\"action\":\"allow\"");
    l.pop();
    let leaves: Vec<_> = l.iter().filter(|x| x.starts_with("{\"seq\"")).map(|x| microloop_audit::merkle::leaf_hash(x.as_bytes())).collect();
    let cp = Checkpoint { origin: "example.com/audit".into(), size: 30, root: microloop_audit::merkle::root_of(&leaves) };
    l.push(serde_json::json!({ "checkpoint": forger.sign(&cp.text()) }).to_string());
    let t = tampered(&joined(&l), &key, None);
    assert_eq!(t.first_bad_seq, Some(20), "{t}");
    assert!(t.message.contains("no signature by"), "{t}");
    // A checkpoint whose root was edited keeps no valid signature either.
    let mut l = honest.clone();
    let last = l.len() - 1;
    let cp_line: serde_json::Value = serde_json::from_str(&l[last]).unwrap();
    let note = cp_line["checkpoint"].as_str().unwrap().replacen("\n30\n", "\n29\n", 1);
    l[last] = serde_json::json!({ "checkpoint": note }).to_string();
    assert!(tampered(&joined(&l), &key, None).message.contains("does not verify"));

    // A line that is neither.
    let mut l = honest.clone();
    l.insert(3, "hello".into());
    assert_eq!(tampered(&joined(&l), &key, None).line, 4);

    // The untouched log still verifies.
    verify(&joined(&honest), &key, None).unwrap();
    std::fs::remove_dir_all(&d).ok();
}

/// Whoever holds the key can rewrite a log and sign it anew; a checkpoint pinned earlier catches
/// that, and a log rolled back to an earlier checkpoint.
#[test]
fn a_pinned_checkpoint_catches_rollback_and_rewrite() {
    let d = scratch("pinned");
    let path = d.join("audit.log");
    let signer = NoteSigner::generate("example.com/audit").unwrap();
    let key = signer.verifier();
    let skey = signer.to_key_string();
    let mut o = Options::new(&path, signer);
    o.every_records = 10;
    let l = AuditLog::open(o).unwrap();
    for i in 0..20 {
        l.append(entry(i));
    }
    let pinned = l.checkpoint().unwrap();
    assert_eq!(pinned.size, 20);
    for i in 20..35 {
        l.append(entry(i));
    }
    l.close().unwrap();
    let honest = lines(&path);
    verify(&joined(&honest), &key, Some(&pinned)).unwrap();

    // Rolled back to the checkpoint at 10: valid on its own, not against the pin.
    let back = &honest[..11];
    verify(&joined(back), &key, None).unwrap();
    let t = tampered(&joined(back), &key, Some(&pinned));
    assert!(t.message.contains("rolled back"), "{t}");

    // Rewritten from record 5 on and re-signed with the real key.
    let rewritten = d.join("rewritten.log");
    let mut o = Options::new(&rewritten, NoteSigner::parse(&skey).unwrap());
    o.every_records = 10;
    let l = AuditLog::open(o).unwrap();
    for i in 0..35 {
        let mut e = entry(i);
        if i == 5 {
            e.action = "allow";
            e.rule = String::new();
        }
        l.append(e);
    }
    l.close().unwrap();
    let bytes = std::fs::read(&rewritten).unwrap();
    verify(&bytes, &key, None).unwrap();
    let t = tampered(&bytes, &key, Some(&pinned));
    assert!(t.message.contains("rewritten"), "{t}");
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn a_hundred_thousand_records_verify_and_prove() {
    let d = scratch("big");
    let path = d.join("audit.log");
    let key = write_log(&path, 100_000, 1000);
    let bytes = std::fs::read(&path).unwrap();
    let v = verify(&bytes, &key, None).unwrap();
    assert_eq!((v.records, v.checkpoints), (100_000, 100));
    let leaves = read(&bytes, &key).unwrap();
    for seq in [0, 1, 4095, 65_536, 99_999] {
        let p = prove(&leaves, seq).unwrap();
        assert!(verify_inclusion(&p.leaf, seq, p.tree_size, &p.path, &p.root));
        assert!(p.record.starts_with(&format!("{{\"seq\":{seq},")));
    }
    assert!(prove(&leaves, 100_000).is_none());
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn a_writer_resumes_a_closed_log_and_refuses_an_unclosed_one() {
    let d = scratch("resume");
    let path = d.join("audit.log");
    let key_file = d.join("audit.key");
    let signer = new_key_file(&key_file, "example.com/audit").unwrap();
    let key = signer.verifier();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777, 0o600);
    }
    assert!(new_key_file(&key_file, "x").is_err(), "a key file is never overwritten");
    for round in 0..3u64 {
        let l = AuditLog::open(Options::new(&path, read_key_file(&key_file).unwrap())).unwrap();
        // One writer per file, even in one process.
        let mut again = Options::new(&path, read_key_file(&key_file).unwrap());
        again.lock_wait = Duration::ZERO;
        assert!(AuditLog::open(again).unwrap_err().0.contains("one writer per log file"));
        for i in 0..7 {
            assert_eq!(l.append(entry(i)), Some(round * 7 + i));
        }
        l.close().unwrap();
        assert_eq!(l.append(entry(0)), None, "a closed log takes nothing");
    }
    let v = verify(&std::fs::read(&path).unwrap(), &key, None).unwrap();
    assert_eq!((v.records, v.checkpoints), (21, 3));

    // Another key, or another origin, is refused at open.
    let e = AuditLog::open(Options::new(&path, NoteSigner::generate("example.com/audit").unwrap())).unwrap_err();
    assert!(e.0.contains("not signed by this key"), "{e}");
    let mut o = Options::new(&path, read_key_file(&key_file).unwrap());
    o.origin = "example.com/other".into();
    assert!(AuditLog::open(o).unwrap_err().0.contains("not of"));

    // Records after the last checkpoint: refused, the log is not signed over blindly.
    let mut l = lines(&path);
    l.push(l[l.len() - 2].replace("\"seq\":20", "\"seq\":21"));
    std::fs::write(&path, joined(&l)).unwrap();
    let e = AuditLog::open(Options::new(&path, read_key_file(&key_file).unwrap())).unwrap_err();
    assert!(e.0.contains("not a checkpoint"), "{e}");
    // A directory that does not exist is an error at open.
    let e = AuditLog::open(Options::new(d.join("no/such/dir/a.log"), read_key_file(&key_file).unwrap())).unwrap_err();
    assert!(e.0.contains("cannot open"), "{e}");
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn a_checkpoint_comes_after_the_interval_without_more_records() {
    let d = scratch("interval");
    let path = d.join("audit.log");
    let signer = NoteSigner::generate("example.com/audit").unwrap();
    let key = signer.verifier();
    let mut o = Options::new(&path, signer);
    o.every = Duration::from_millis(50);
    let l = AuditLog::open(o).unwrap();
    l.append(entry(0));
    l.append(entry(1));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(v) = verify(&std::fs::read(&path).unwrap(), &key, None) {
            assert_eq!(v.records, 2);
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no checkpoint was written");
        std::thread::sleep(Duration::from_millis(10));
    }
    l.close().unwrap();
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn arguments_jcs_cannot_represent_are_hashed_as_given() {
    let d = scratch("raw");
    let path = d.join("audit.log");
    let signer = NoteSigner::generate("example.com/audit").unwrap();
    let l = AuditLog::open(Options::new(&path, signer)).unwrap();
    let mut e = entry(0);
    e.args = br#"{"id": 18446744073709551615}"#.to_vec();
    l.append(e);
    l.close().unwrap();
    let r: serde_json::Value = serde_json::from_str(&lines(&path)[0]).unwrap();
    assert_eq!(r["args_canon"], "raw");
    use sha2::Digest;
    let want: String = sha2::Sha256::digest(br#"{"id": 18446744073709551615}"#).iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(r["args_sha256"], want.as_str());
    std::fs::remove_dir_all(&d).ok();
}
