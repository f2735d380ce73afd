//! Writes an audit log for the interoperability tests (Go's sumdb/note and sumdb/tlog, the Python
//! verifier): `cargo run --example fixture -- DIR [RECORDS] [SIGNER_KEY_FILE]`.
//!
//! DIR receives `audit.log`, `verifier.txt` (the note verifier key), `signer.key` (unless a
//! signer key file is given, e.g. one Go's `note.GenerateKey` wrote) and `proofs.jsonl` (inclusion
//! proofs of a few records in the last checkpoint's tree, hashes in hex).

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use microloop_audit::jcs::hex;
use microloop_audit::log::{new_key_file, read_key_file, AuditLog, Entry, Options};
use microloop_audit::verify::{prove, read};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = PathBuf::from(args.first().expect("usage: fixture DIR [RECORDS] [SIGNER_KEY_FILE]"));
    let n: u64 = args.get(1).map_or(1000, |s| s.parse().expect("RECORDS is a number"));
    std::fs::create_dir_all(&dir).unwrap();
    let log_path = dir.join("audit.log");
    let _ = std::fs::remove_file(&log_path);
    let signer = match args.get(2) {
        Some(k) => read_key_file(k.as_ref()).unwrap(),
        None => {
            let k = dir.join("signer.key");
            let _ = std::fs::remove_file(&k);
            new_key_file(&k, "example.com/microloop-audit").unwrap()
        }
    };
    let key = signer.verifier();
    std::fs::write(dir.join("verifier.txt"), format!("{}\n", key.to_key_string())).unwrap();
    let mut o = Options::new(&log_path, signer);
    o.every_records = 7;
    o.every = Duration::from_secs(3600);
    let log = AuditLog::open(o).unwrap();
    for i in 0..n {
        let action = ["allow", "warn", "block", "halt"][(i % 4) as usize];
        log.append(Entry {
            time_ms: 1_765_000_000_000 + i,
            session: format!("session-{}", i % 3).into(),
            call: i + 1,
            tool: ["search", "run_sql", "write_file"][(i % 3) as usize].into(),
            args: format!(r#"{{"q":"item {i}","ünïcode":"✓","n":{i}.0}}"#).into_bytes(),
            action,
            rule: if action == "allow" { String::new() } else { "loop.identical".into() },
            policy_sha256: "ab".repeat(32).into(),
        });
    }
    log.close().unwrap();
    let leaves = read(&std::fs::read(&log_path).unwrap(), &key).unwrap();
    let mut proofs = std::fs::File::create(dir.join("proofs.jsonl")).unwrap();
    for seq in [0, 1, n / 2, n.saturating_sub(1)] {
        let Some(p) = prove(&leaves, seq) else { continue };
        let line = serde_json::json!({
            "seq": p.seq, "record": p.record, "leaf_hash": hex(&p.leaf), "tree_size": p.tree_size,
            "root": hex(&p.root), "path": p.path.iter().map(|h| hex(h)).collect::<Vec<_>>(),
            "checkpoint": p.checkpoint,
        });
        writeln!(proofs, "{line}").unwrap();
    }
}
