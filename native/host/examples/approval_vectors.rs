//! Writes the shared approval-token vectors (`tests/vectors/approval/approval.json`): tokens the
//! Rust core issues under a fixed test key, over arguments with hard numbers and Unicode keys,
//! with their RFC 8785 canonical forms and hashes, and arguments that must get no token.
//!
//! `cargo run -p microloop-host --example approval_vectors > tests/vectors/approval/approval.json`
//! (the tokens' `jti` differ from run to run; everything else is fixed).

use microloop_audit::jcs;
use microloop_audit::note::NoteSigner;
use microloop_host::approval::{Approval, Approver, Request};
use serde_json::{json, Value};

/// The test key: seed bytes 0..32. Never use it for anything else.
const KEY: &str = "PRIVATE+KEY+approval-test+47b6c8a2+AQABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f";
const IAT: u64 = 1_700_000_000;
/// 2100-01-01: the tokens stay valid while these vectors are in use.
const EXP: u64 = 4_102_444_800;

fn main() {
    let cases: &[(&str, &str, &str)] = &[
        ("empty object", "search", "{}"),
        ("key order and white space", "search", "{ \"b\" : [1, 2], \"a\" : {\"z\": null, \"y\": true} }"),
        (
            "RFC 8785 numbers",
            "compute",
            r#"{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001]}"#,
        ),
        (
            "hard numbers",
            "compute",
            r#"{"n": [-0, 0.0, -0.0, 1.0, 1e21, 1e-7, 1e20, 123456789012345680000.0, 0.1, 5e-324, 1.7976931348623157e308, 9007199254740991, -9007199254740991, 9007199254740993.0, 2.5e-5, 100, 1E+2]}"#,
        ),
        (
            "RFC 8785 Unicode key order (UTF-16 code units)",
            "store",
            "{\"\\u20ac\": \"Euro Sign\", \"\\r\": \"Carriage Return\", \"\\ufb33\": \"Hebrew Letter Dalet With Dagesh\", \"1\": \"One\", \"\\ud83d\\ude00\": \"Emoji: Grinning Face\", \"\\u0080\": \"Control\", \"\\u00f6\": \"Latin Small Letter O With Diaeresis\"}",
        ),
        (
            "Unicode keys as raw UTF-8",
            "store",
            "{\"日本\": 1, \"é\": 2, \"e\\u0301\": 3, \"😀\": 4, \"Z\": 5, \"a\": 6}",
        ),
        (
            "string escapes",
            "write_file",
            r#"{"path": "a\/b\\c.txt", "text": "line\nquote\" tab\t \u0000 \u001f \u007f \u2028 \u00e9 \ud83d\ude00 </script>"}"#,
        ),
        ("nested arrays and objects", "plan", r#"[{"b": [{"d": 1, "c": [true, false, null]}], "a": []}, [], [[[]]], "x"]"#),
        ("a Unicode tool name", "読む", r#"{"path": "/tmp/ファイル"}"#),
    ];
    let refused: &[(&str, Value)] = &[
        ("an integer beyond 2^53 - 1", json!({"args_text": "{\"id\": 9007199254740992}"})),
        ("a negative integer beyond -(2^53 - 1)", json!({"args_text": "{\"id\": -9007199254740993}"})),
        ("an integer too long for 64 bits", json!({"args_text": "[100000000000000000000]"})),
        ("a duplicate key", json!({"args_text": "{\"a\": 1, \"a\": 1}"})),
        ("a nested duplicate key", json!({"args_text": "{\"x\": [{\"k\": 1, \"k\": 2}]}"})),
        ("bytes that are not UTF-8", json!({"args_hex": "7b2261223a2022ff227d"})),
    ];
    let approver = Approver::new(NoteSigner::parse(KEY).unwrap(), "tools.test", "microloop", EXP - IAT, None);
    let mut out_cases = Vec::new();
    for (i, (name, tool, args)) in cases.iter().enumerate() {
        let canon = String::from_utf8(jcs::canonicalize(args.as_bytes()).unwrap()).unwrap();
        let hash = jcs::hex(&jcs::sha256(args.as_bytes()).unwrap());
        let audit_seq = (i % 2 == 0).then_some(i as u64 * 10);
        let r = Request {
            session: "vector-session",
            call_id: i as u64 + 1,
            tool,
            args: args.as_bytes(),
            action: if i == 3 { "warn" } else { "allow" },
            audit_seq,
            time_ms: IAT * 1000 + 250,
        };
        let Approval::Token(token) = approver.issue(&r) else { panic!("{name}: no token") };
        out_cases.push(json!({
            "name": name, "tool": tool, "args_text": args, "canonical": canon, "args_sha256": hash,
            "call_id": r.call_id, "action": r.action, "audit_seq": audit_seq, "token": token,
        }));
    }
    let mut out_refused = Vec::new();
    for (name, v) in refused {
        let bytes = match (v.get("args_text"), v.get("args_hex")) {
            (Some(t), _) => t.as_str().unwrap().as_bytes().to_vec(),
            (_, Some(h)) => (0..h.as_str().unwrap().len()).step_by(2).map(|i| u8::from_str_radix(&h.as_str().unwrap()[i..i + 2], 16).unwrap()).collect(),
            _ => unreachable!(),
        };
        let r = Request { session: "vector-session", call_id: 99, tool: "t", args: &bytes, action: "allow", audit_seq: None, time_ms: IAT * 1000 };
        assert!(matches!(approver.issue(&r), Approval::Refused(_)), "{name}: a token");
        let mut case = v.clone();
        case["name"] = json!(name);
        out_refused.push(case);
    }
    let verifier = NoteSigner::parse(KEY).unwrap().verifier().to_key_string();
    let doc = json!({
        "description": "Approval tokens issued by the Rust core (native/host/examples/approval_vectors.rs) under a fixed test key; every verifier (Rust, Python PyJWT+rfc8785, Go golang-jwt+gowebpki/jcs, Node jose+canonicalize) must accept each token for its tool and arguments, compute the same canonical form and args_sha256, and refuse the unrepresentable arguments. Tokens are valid from iat 1700000000 to exp 4102444800.",
        "signer_key": KEY,
        "verifier": verifier,
        "jwks": approver.jwks(),
        "kid": approver.kid(),
        "typ": microloop_host::approval::TOKEN_TYPE,
        "audience": approver.audience(),
        "issuer": approver.issuer(),
        "session": "vector-session",
        "iat": IAT,
        "exp": EXP,
        "cases": out_cases,
        "unrepresentable": out_refused,
    });
    println!("{}", serde_json::to_string_pretty(&doc).unwrap());
}
