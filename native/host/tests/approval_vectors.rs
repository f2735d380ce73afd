//! The shared approval vectors (tests/vectors/approval/approval.json) checked in Rust: every token
//! verifies under the vectors' key and binds its case's tool and argument hash, the canonical forms
//! and hashes are this crate's, and the unrepresentable arguments get no token from the core.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine as _;
use microloop_audit::jcs;
use microloop_audit::note::{NoteSigner, NoteVerifier};
use microloop_host::approval::{Approval, Approver, Request, TOKEN_TYPE};
use serde_json::Value;

fn vectors() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/vectors/approval/approval.json");
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn bytes_of(case: &Value) -> Vec<u8> {
    if let Some(t) = case["args_text"].as_str() {
        return t.as_bytes().to_vec();
    }
    let h = case["args_hex"].as_str().unwrap();
    (0..h.len()).step_by(2).map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap()).collect()
}

#[test]
fn every_token_verifies_and_binds_its_call() {
    let v = vectors();
    let verifier = NoteVerifier::parse(v["verifier"].as_str().unwrap()).unwrap();
    let key = ed25519_dalek::VerifyingKey::from_bytes(&verifier.public_key()).unwrap();
    let signer = NoteSigner::parse(v["signer_key"].as_str().unwrap()).unwrap();
    assert_eq!(signer.public_key(), verifier.public_key());
    let jwk = &v["jwks"]["keys"][0];
    assert_eq!(jwk["x"].as_str().unwrap(), B64URL.encode(verifier.public_key()));
    assert_eq!(jwk["kid"], v["kid"]);
    let cases = v["cases"].as_array().unwrap();
    assert!(cases.len() >= 8);
    for c in cases {
        let name = c["name"].as_str().unwrap();
        let args = bytes_of(c);
        assert_eq!(String::from_utf8(jcs::canonicalize(&args).unwrap()).unwrap(), c["canonical"].as_str().unwrap(), "{name}");
        assert_eq!(jcs::hex(&jcs::sha256(&args).unwrap()), c["args_sha256"].as_str().unwrap(), "{name}");
        let token = c["token"].as_str().unwrap();
        let (signed, sig) = token.rsplit_once('.').unwrap();
        let sig = ed25519_dalek::Signature::from_slice(&B64URL.decode(sig).unwrap()).unwrap();
        key.verify_strict(signed.as_bytes(), &sig).unwrap_or_else(|e| panic!("{name}: {e}"));
        let (h, p) = signed.split_once('.').unwrap();
        let h: Value = serde_json::from_slice(&B64URL.decode(h).unwrap()).unwrap();
        let p: Value = serde_json::from_slice(&B64URL.decode(p).unwrap()).unwrap();
        assert_eq!((h["alg"].as_str(), h["typ"].as_str(), &h["kid"]), (Some("EdDSA"), Some(TOKEN_TYPE), &v["kid"]), "{name}");
        assert_eq!(p["tool"], c["tool"], "{name}");
        assert_eq!(p["args_sha256"], c["args_sha256"], "{name}");
        assert_eq!((&p["aud"], &p["iss"], &p["sid"]), (&v["audience"], &v["issuer"], &v["session"]), "{name}");
        assert_eq!((&p["iat"], &p["exp"], &p["call_id"], &p["action"]), (&v["iat"], &v["exp"], &c["call_id"], &c["action"]), "{name}");
        assert_eq!(p.get("audit_seq").unwrap_or(&Value::Null), &c["audit_seq"], "{name}");
        // A token issued now for the same call binds the same hash.
        let a = Approver::new(NoteSigner::parse(v["signer_key"].as_str().unwrap()).unwrap(), "tools.test", "microloop", 60, None);
        let r = Request { session: "s", call_id: 1, tool: c["tool"].as_str().unwrap(), args: &args, action: "allow", audit_seq: None, time_ms: 0 };
        let Approval::Token(t) = a.issue(&r) else { panic!("{name}") };
        let p2: Value = serde_json::from_slice(&B64URL.decode(t.split('.').nth(1).unwrap()).unwrap()).unwrap();
        assert_eq!(p2["args_sha256"], c["args_sha256"], "{name}");
    }
}

#[test]
fn unrepresentable_arguments_get_no_token() {
    let v = vectors();
    let a = Approver::new(NoteSigner::parse(v["signer_key"].as_str().unwrap()).unwrap(), "tools.test", "microloop", 60, None);
    let refused = v["unrepresentable"].as_array().unwrap();
    assert!(refused.len() >= 5);
    for c in refused {
        let args = bytes_of(c);
        let r = Request { session: "s", call_id: 1, tool: "t", args: &args, action: "allow", audit_seq: None, time_ms: 0 };
        assert!(matches!(a.issue(&r), Approval::Refused(_)), "{}", c["name"]);
        assert!(jcs::canonicalize(&args).is_err(), "{}", c["name"]);
    }
}
