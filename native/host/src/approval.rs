//! The policy's `[approval]` section: approval tokens a tool server can check.
//!
//! ```toml
//! [approval]
//! key_file = "approval.key"        # `microloop keys new NAME --out approval.key` (not the audit key)
//! audience = "tools.example.com"   # who the tokens are for: the tool server checks it
//! ttl_seconds = 60                 # optional: exp = iat + ttl (default 60, at most 86400)
//! issuer = "microloop"             # optional: the `iss` claim (default "microloop")
//! kid = "2024-q3"                  # optional: the key id (default: the key's RFC 7638 thumbprint)
//! ```
//!
//! Every call the verdict lets run (allow and warn) then carries a compact JWS (RFC 7515) signed
//! with Ed25519 (`alg: EdDSA`, RFC 8037), header `{"alg":"EdDSA","typ":"microloop-approval+jwt",
//! "kid":…}`, claims:
//!
//! | claim | value |
//! |---|---|
//! | `iss`, `aud` | the section's issuer and audience |
//! | `iat`, `exp` | seconds since the epoch; `exp = iat + ttl_seconds` |
//! | `jti` | unique per token (a tool server keeps it until `exp` to refuse a replay) |
//! | `sid` | the session's id (the audit log's `session`) |
//! | `call_id` | the verdict's call id |
//! | `tool` | the tool's name |
//! | `args_sha256` | lower-case hex SHA-256 of the arguments' RFC 8785 canonical JSON (the audit log's `args_sha256`) |
//! | `action` | `allow` or `warn` |
//! | `audit_seq` | the decision's audit log sequence number, when `[audit]` is on |
//!
//! Arguments JCS cannot represent (an integer outside ±(2^53 - 1), a duplicate key, text that is
//! not UTF-8 JSON) get no token and a reason ([`Approval::Refused`]): a token never covers bytes
//! other than those checked. Blocked and halted calls get nothing, so the signature (about 30 µs)
//! is paid on calls that run only.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine as _;
use microloop_audit::jcs;
use microloop_audit::log::read_key_file;
use microloop_audit::note::NoteSigner;
use microloop_core::PolicyError;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// The JWS `typ` header of an approval token (RFC 8725 §3.11: an explicit type, so a token of
/// another kind signed by the same key is not taken for one).
pub const TOKEN_TYPE: &str = "microloop-approval+jwt";
/// The default `iss` claim.
pub const DEFAULT_ISSUER: &str = "microloop";
/// The default lifetime of a token, in seconds.
pub const DEFAULT_TTL_SECONDS: u64 = 60;
/// The longest lifetime a policy may give a token, in seconds.
pub const MAX_TTL_SECONDS: u64 = 86_400;

/// The `[approval]` section.
#[derive(Debug, Clone, PartialEq)]
pub struct ApprovalConfig {
    pub key_file: PathBuf,
    pub audience: String,
    pub ttl_seconds: u64,
    pub issuer: String,
    pub kid: Option<String>,
}

const KEYS: &str = "key_file, audience, ttl_seconds, issuer, kid";

fn bad(key: &str, msg: impl Into<String>) -> PolicyError {
    PolicyError::new(format!("approval.{key}"), msg.into())
}

impl ApprovalConfig {
    /// Reads the section (a JSON object, from JSON or TOML).
    pub fn from_value(v: &Value) -> Result<ApprovalConfig, PolicyError> {
        let Some(m) = v.as_object() else {
            return Err(PolicyError::new("approval", format!("[approval] must be a table: {KEYS}")));
        };
        for k in m.keys() {
            if !matches!(k.as_str(), "key_file" | "audience" | "ttl_seconds" | "issuer" | "kid") {
                return Err(bad(k, format!("unknown key {k:?} (known: {KEYS})")));
            }
        }
        let string = |k: &str| -> Result<Option<String>, PolicyError> {
            match m.get(k) {
                None => Ok(None),
                Some(Value::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
                Some(_) => Err(bad(k, "must be a non-empty string")),
            }
        };
        let key_file = string("key_file")?
            .ok_or_else(|| bad("key_file", "is required: the signer key's file (`microloop keys new NAME --out FILE`)"))?;
        let audience = string("audience")?
            .ok_or_else(|| bad("audience", "is required: who the tokens are for (the tool server checks it)"))?;
        let ttl_seconds = match m.get("ttl_seconds") {
            None => DEFAULT_TTL_SECONDS,
            Some(v) => v
                .as_u64()
                .filter(|n| (1..=MAX_TTL_SECONDS).contains(n))
                .ok_or_else(|| bad("ttl_seconds", format!("must be an integer of seconds in [1, {MAX_TTL_SECONDS}]")))?,
        };
        Ok(ApprovalConfig {
            key_file: key_file.into(),
            audience,
            ttl_seconds,
            issuer: string("issuer")?.unwrap_or_else(|| DEFAULT_ISSUER.to_owned()),
            kid: string("kid")?,
        })
    }
}

/// What an allowed call's verdict carries when `[approval]` is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Approval {
    /// The compact JWS.
    Token(String),
    /// Why there is no token (the arguments have no RFC 8785 canonical form).
    Refused(String),
}

/// One call to approve.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub session: &'a str,
    pub call_id: u64,
    pub tool: &'a str,
    /// The arguments exactly as the agent sent them.
    pub args: &'a [u8],
    /// `allow` or `warn`.
    pub action: &'a str,
    pub audit_seq: Option<u64>,
    /// Wall-clock milliseconds since the Unix epoch.
    pub time_ms: u64,
}

/// Signs approval tokens with one key.
pub struct Approver {
    signer: NoteSigner,
    kid: String,
    audience: String,
    issuer: String,
    ttl_seconds: u64,
    /// `base64url(header).`
    header: String,
    /// `{"iss":…,"aud":…,` as JSON.
    claims_head: String,
}

impl std::fmt::Debug for Approver {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "Approver(kid {}, aud {})", self.kid, self.audience)
    }
}

fn json_str(s: &str) -> String {
    serde_json::to_string(s).expect("a string serializes")
}

impl Approver {
    /// An approver signing with `signer`; `kid` defaults to the key's RFC 7638 thumbprint.
    pub fn new(signer: NoteSigner, audience: &str, issuer: &str, ttl_seconds: u64, kid: Option<&str>) -> Approver {
        let kid = kid.map_or_else(|| thumbprint(&signer.public_key()), str::to_owned);
        let header = json!({"alg": "EdDSA", "typ": TOKEN_TYPE, "kid": kid}).to_string();
        let header = format!("{}.", B64URL.encode(header));
        let claims_head = format!("{{\"iss\":{},\"aud\":{},", json_str(issuer), json_str(audience));
        Approver {
            signer,
            kid,
            audience: audience.to_owned(),
            issuer: issuer.to_owned(),
            ttl_seconds,
            header,
            claims_head,
        }
    }

    /// Reads the key a section names: a key that cannot be read is an error now.
    pub fn from_config(cfg: &ApprovalConfig) -> Result<Approver, PolicyError> {
        let signer = read_key_file(&cfg.key_file).map_err(|e| bad("key_file", e.0))?;
        Ok(Approver::new(signer, &cfg.audience, &cfg.issuer, cfg.ttl_seconds, cfg.kid.as_deref()))
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn audience(&self) -> &str {
        &self.audience
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn ttl_seconds(&self) -> u64 {
        self.ttl_seconds
    }

    /// The public key as a JWK (RFC 8037: `kty` OKP, `crv` Ed25519).
    pub fn jwk(&self) -> Value {
        json!({
            "kty": "OKP",
            "crv": "Ed25519",
            "x": B64URL.encode(self.signer.public_key()),
            "kid": self.kid,
            "alg": "EdDSA",
            "use": "sig",
        })
    }

    /// The public key as a JWK Set (RFC 7517 §5), as `/.well-known/microloop/jwks.json` serves it.
    pub fn jwks(&self) -> Value {
        json!({"keys": [self.jwk()]})
    }

    /// A token for one call, or why the arguments cannot have one.
    pub fn issue(&self, r: &Request<'_>) -> Approval {
        let digest = match jcs::sha256(r.args) {
            Ok(d) => d,
            Err(e) => return Approval::Refused(format!("no approval token: the arguments have no RFC 8785 canonical form ({e})")),
        };
        let iat = r.time_ms / 1000;
        let mut claims = String::with_capacity(self.claims_head.len() + 200 + r.tool.len() + r.session.len());
        claims.push_str(&self.claims_head);
        let _ = write!(
            claims,
            "\"iat\":{iat},\"exp\":{},\"jti\":\"{}\",\"sid\":{},\"call_id\":{},\"tool\":{},\"args_sha256\":\"{}\",\"action\":{}",
            iat.saturating_add(self.ttl_seconds),
            new_jti(),
            json_str(r.session),
            r.call_id,
            json_str(r.tool),
            jcs::hex(&digest),
            json_str(r.action),
        );
        if let Some(seq) = r.audit_seq {
            let _ = write!(claims, ",\"audit_seq\":{seq}");
        }
        claims.push('}');
        let mut token = String::with_capacity(self.header.len() + claims.len() * 4 / 3 + 90);
        token.push_str(&self.header);
        B64URL.encode_string(claims.as_bytes(), &mut token);
        let sig = self.signer.sign_bytes(token.as_bytes());
        token.push('.');
        B64URL.encode_string(sig, &mut token);
        Approval::Token(token)
    }
}

/// The RFC 7638 thumbprint of an Ed25519 public key's JWK, base64url.
pub fn thumbprint(public: &[u8; 32]) -> String {
    let canon = format!("{{\"crv\":\"Ed25519\",\"kty\":\"OKP\",\"x\":\"{}\"}}", B64URL.encode(public));
    B64URL.encode(Sha256::digest(canon.as_bytes()))
}

/// 128 bits unique to this token: 64 random bits drawn once per process, then a counter.
fn new_jti() -> String {
    static PREFIX: OnceLock<[u8; 8]> = OnceLock::new();
    static N: AtomicU64 = AtomicU64::new(0);
    let prefix = PREFIX.get_or_init(|| {
        let mut b = [0u8; 8];
        if getrandom::fill(&mut b).is_err() {
            let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
            b = ((t as u64) ^ ((std::process::id() as u64) << 32)).to_le_bytes();
        }
        b
    });
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(prefix);
    b[8..].copy_from_slice(&N.fetch_add(1, Ordering::Relaxed).to_be_bytes());
    B64URL.encode(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "PRIVATE+KEY+approval-test+47b6c8a2+AQABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f";

    fn approver() -> Approver {
        Approver::new(NoteSigner::parse(KEY).unwrap(), "tools.example", "microloop", 60, None)
    }

    fn parts(token: &str) -> (Value, Value, Vec<u8>) {
        let p: Vec<&str> = token.split('.').collect();
        assert_eq!(p.len(), 3);
        let h = serde_json::from_slice(&B64URL.decode(p[0]).unwrap()).unwrap();
        let c = serde_json::from_slice(&B64URL.decode(p[1]).unwrap()).unwrap();
        (h, c, B64URL.decode(p[2]).unwrap())
    }

    fn request(args: &[u8]) -> Request<'_> {
        Request { session: "s\"1", call_id: 7, tool: "fs/write", args, action: "allow", audit_seq: Some(3), time_ms: 1_700_000_000_500 }
    }

    #[test]
    fn a_token_binds_the_call_and_verifies() {
        let a = approver();
        let Approval::Token(t) = a.issue(&request(br#"{"b": 1.0, "a": "\u00e9"}"#)) else { panic!() };
        let (h, c, sig) = parts(&t);
        assert_eq!(h, json!({"alg": "EdDSA", "typ": TOKEN_TYPE, "kid": a.kid()}));
        assert_eq!(c["iat"], 1_700_000_000u64);
        assert_eq!(c["exp"], 1_700_000_060u64);
        assert_eq!((c["sid"].as_str(), c["call_id"].as_u64(), c["tool"].as_str()), (Some("s\"1"), Some(7), Some("fs/write")));
        assert_eq!(c["audit_seq"], 3);
        let want = jcs::hex(&Sha256::digest(br#"{"a":"\u00e9","b":1}"#.as_slice()));
        assert_eq!(c["args_sha256"].as_str(), Some(jcs::hex(&jcs::sha256("{\"a\":\"é\",\"b\":1}".as_bytes()).unwrap()).as_str()));
        assert_ne!(c["args_sha256"].as_str(), Some(want.as_str()), "the escape is decoded before hashing");
        let key = ed25519_dalek::VerifyingKey::from_bytes(&NoteSigner::parse(KEY).unwrap().public_key()).unwrap();
        let signed = &t[..t.rfind('.').unwrap()];
        let sig = ed25519_dalek::Signature::from_slice(&sig).unwrap();
        key.verify_strict(signed.as_bytes(), &sig).unwrap();
        // Another byte in the claims breaks the signature.
        let mut forged = signed.to_owned();
        forged.push('A');
        assert!(key.verify_strict(forged.as_bytes(), &sig).is_err());
    }

    #[test]
    fn token_ids_are_unique_and_audit_seq_is_optional() {
        let a = approver();
        let mut r = request(b"{}");
        r.audit_seq = None;
        let mut seen = std::collections::HashSet::new();
        for _ in 0..1000 {
            let Approval::Token(t) = a.issue(&r) else { panic!() };
            let (_, c, _) = parts(&t);
            assert!(c.get("audit_seq").is_none());
            assert!(seen.insert(c["jti"].as_str().unwrap().to_owned()));
        }
    }

    #[test]
    fn arguments_jcs_cannot_represent_get_no_token() {
        let a = approver();
        for bad in [&b"{\"n\": 9007199254740993}"[..], b"{\"a\":1,\"a\":2}", b"{\"x\": \"\xff\"}", b"[100000000000000000000]", b"{"] {
            match a.issue(&request(bad)) {
                Approval::Refused(why) => assert!(why.contains("RFC 8785"), "{why}"),
                Approval::Token(_) => panic!("a token over {bad:?}"),
            }
        }
    }

    #[test]
    fn kid_is_the_rfc7638_thumbprint_unless_given() {
        // RFC 8037 appendix A.3: the thumbprint of its example Ed25519 key.
        let x = B64URL.decode("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo").unwrap();
        assert_eq!(thumbprint(&x.try_into().unwrap()), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
        let a = Approver::new(NoteSigner::parse(KEY).unwrap(), "aud", "iss", 5, Some("k1"));
        assert_eq!(a.kid(), "k1");
        assert_eq!(a.jwks()["keys"][0]["kid"], "k1");
        assert_eq!(a.jwks()["keys"][0]["kty"], "OKP");
    }

    #[test]
    fn the_section_is_read_strictly() {
        let ok = ApprovalConfig::from_value(&json!({"key_file": "k", "audience": "a"})).unwrap();
        assert_eq!((ok.ttl_seconds, ok.issuer.as_str(), ok.kid.as_deref()), (60, "microloop", None));
        for (v, path) in [
            (json!({"audience": "a"}), "approval.key_file"),
            (json!({"key_file": "k"}), "approval.audience"),
            (json!({"key_file": "k", "audience": "a", "ttl_seconds": 0}), "approval.ttl_seconds"),
            (json!({"key_file": "k", "audience": "a", "ttl_seconds": 86401}), "approval.ttl_seconds"),
            (json!({"key_file": "k", "audience": "a", "ttl": 5}), "approval.ttl"),
            (json!({"key_file": "k", "audience": ""}), "approval.audience"),
            (json!(["k"]), "approval"),
        ] {
            assert_eq!(ApprovalConfig::from_value(&v).unwrap_err().path, path, "{v}");
        }
    }
}
