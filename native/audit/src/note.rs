//! C2SP signed notes with Ed25519 keys, and the `tlog-checkpoint` body they carry.
//!
//! A signed note (<https://c2sp.org/signed-note>) is UTF-8 text ending in a newline, a blank line,
//! then one line per signature: `— <key name> <base64(key ID (4 bytes) || signature)>`. An Ed25519
//! key's ID is the first four bytes of `SHA-256(name || "\n" || 0x01 || public key)`; the signature
//! covers the text (with its final newline). Keys are written as Go's `golang.org/x/mod/sumdb/note`
//! writes them, so its tools and ours read each other's keys:
//!
//! * verifier key: `<name>+<key ID, 8 hex digits>+<base64(0x01 || public key)>`;
//! * signer key: `PRIVATE+KEY+<name>+<key ID>+<base64(0x01 || 32-byte seed)>`.
//!
//! A checkpoint (<https://c2sp.org/tlog-checkpoint>) is the note text `<origin>\n<tree size>\n
//! <base64 root hash>\n`.

use std::fmt;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::merkle::Hash;

const ALG_ED25519: u8 = 0x01;
const SIG_PREFIX: &str = "\u{2014} ";

/// A key or note that cannot be read, or a signature that does not verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteError(pub String);

impl fmt::Display for NoteError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NoteError {}

fn err<T>(msg: impl Into<String>) -> Result<T, NoteError> {
    Err(NoteError(msg.into()))
}

/// Whether a key name is valid: non-empty, no white space, no `+`.
fn valid_name(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(|c| c.is_whitespace() || c == '+')
}

fn key_id(name: &str, public: &[u8; 32]) -> u32 {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update([ALG_ED25519]);
    h.update(public);
    let d = h.finalize();
    u32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

/// Splits `<name>+<hex id>+<base64>` (after any `PRIVATE+KEY+` prefix) and checks the algorithm.
fn parse_key_string(s: &str, what: &str) -> Result<(String, u32, [u8; 32]), NoteError> {
    let mut parts = s.trim().splitn(3, '+');
    let (Some(name), Some(id), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
        return err(format!("not a {what} key: expected <name>+<key id>+<base64 key>"));
    };
    if !valid_name(name) {
        return err(format!("the {what} key's name {name:?} is not valid"));
    }
    let id = u32::from_str_radix(id, 16)
        .ok()
        .filter(|_| id.len() == 8)
        .ok_or_else(|| NoteError(format!("the {what} key's id {id:?} is not 8 hex digits")))?;
    let raw = B64
        .decode(key)
        .map_err(|_| NoteError(format!("the {what} key is not valid base64")))?;
    if raw.len() != 33 || raw[0] != ALG_ED25519 {
        return err(format!("the {what} key is not an Ed25519 key (algorithm 1, 32 bytes)"));
    }
    let mut k = [0u8; 32];
    k.copy_from_slice(&raw[1..]);
    Ok((name.to_owned(), id, k))
}

/// A key that signs notes.
pub struct NoteSigner {
    name: String,
    id: u32,
    key: SigningKey,
}

impl fmt::Debug for NoteSigner {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "NoteSigner({}+{:08x})", self.name, self.id)
    }
}

impl NoteSigner {
    /// A new key pair from the operating system's random source.
    pub fn generate(name: &str) -> Result<NoteSigner, NoteError> {
        if !valid_name(name) {
            return err(format!("the key name {name:?} must be non-empty, without spaces or '+'"));
        }
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| NoteError(format!("no random source: {e}")))?;
        Ok(NoteSigner::from_seed(name, seed))
    }

    fn from_seed(name: &str, seed: [u8; 32]) -> NoteSigner {
        let key = SigningKey::from_bytes(&seed);
        let id = key_id(name, &key.verifying_key().to_bytes());
        NoteSigner { name: name.to_owned(), id, key }
    }

    /// Reads a signer key string (`PRIVATE+KEY+<name>+<id>+<base64>`).
    pub fn parse(s: &str) -> Result<NoteSigner, NoteError> {
        let Some(rest) = s.trim().strip_prefix("PRIVATE+KEY+") else {
            return err("not a signer key: it must start with PRIVATE+KEY+");
        };
        let (name, id, seed) = parse_key_string(rest, "signer")?;
        let signer = NoteSigner::from_seed(&name, seed);
        if signer.id != id {
            return err("the signer key's id does not match its name and key");
        }
        Ok(signer)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The signer key string, secret: write it to a file only the signer reads.
    pub fn to_key_string(&self) -> String {
        let mut raw = vec![ALG_ED25519];
        raw.extend_from_slice(&self.key.to_bytes());
        format!("PRIVATE+KEY+{}+{:08x}+{}", self.name, self.id, B64.encode(raw))
    }

    pub fn verifier(&self) -> NoteVerifier {
        NoteVerifier { name: self.name.clone(), id: self.id, key: self.key.verifying_key() }
    }

    /// The Ed25519 public key.
    pub fn public_key(&self) -> [u8; 32] {
        self.key.verifying_key().to_bytes()
    }

    /// A bare Ed25519 signature over `msg` (RFC 8032), as a JWS with `alg: EdDSA` carries it.
    pub fn sign_bytes(&self, msg: &[u8]) -> [u8; 64] {
        self.key.sign(msg).to_bytes()
    }

    /// Signs `text` (which must end in a newline) into a signed note.
    pub fn sign(&self, text: &str) -> String {
        debug_assert!(text.ends_with('\n'));
        let sig = self.key.sign(text.as_bytes());
        let mut raw = self.id.to_be_bytes().to_vec();
        raw.extend_from_slice(&sig.to_bytes());
        format!("{text}\n{SIG_PREFIX}{} {}\n", self.name, B64.encode(raw))
    }
}

/// A public key that checks notes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteVerifier {
    name: String,
    id: u32,
    key: VerifyingKey,
}

impl NoteVerifier {
    /// Reads a verifier key string (`<name>+<id>+<base64>`).
    pub fn parse(s: &str) -> Result<NoteVerifier, NoteError> {
        let (name, id, pk) = parse_key_string(s, "verifier")?;
        let key = VerifyingKey::from_bytes(&pk)
            .map_err(|_| NoteError("the verifier key is not a valid Ed25519 public key".into()))?;
        if key_id(&name, &pk) != id {
            return err("the verifier key's id does not match its name and key");
        }
        Ok(NoteVerifier { name, id, key })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The Ed25519 public key.
    pub fn public_key(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    pub fn to_key_string(&self) -> String {
        let mut raw = vec![ALG_ED25519];
        raw.extend_from_slice(self.key.as_bytes());
        format!("{}+{:08x}+{}", self.name, self.id, B64.encode(raw))
    }

    /// Checks a signed note and returns its text. Signatures by other keys are ignored (key
    /// rotation, witnesses); at least one must be this key's and verify.
    pub fn open<'a>(&self, note: &'a str) -> Result<&'a str, NoteError> {
        let Some(split) = note.rfind("\n\n") else {
            return err("not a signed note: no blank line before the signatures");
        };
        let text = &note[..split + 1];
        let sigs = &note[split + 2..];
        if !sigs.ends_with('\n') {
            return err("not a signed note: the signatures do not end in a newline");
        }
        let mut found = false;
        for line in sigs.lines() {
            let Some(rest) = line.strip_prefix(SIG_PREFIX) else {
                return err(format!("not a signature line: {line:?}"));
            };
            let Some((name, b64)) = rest.split_once(' ') else {
                return err(format!("not a signature line: {line:?}"));
            };
            let raw = B64
                .decode(b64)
                .map_err(|_| NoteError(format!("a signature is not valid base64: {line:?}")))?;
            if raw.len() < 4 {
                return err(format!("a signature is too short: {line:?}"));
            }
            let id = u32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]);
            if name != self.name || id != self.id {
                continue;
            }
            let sig = <[u8; 64]>::try_from(&raw[4..])
                .map_err(|_| NoteError("an Ed25519 signature is not 64 bytes".into()))?;
            self.key
                .verify_strict(text.as_bytes(), &Signature::from_bytes(&sig))
                .map_err(|_| NoteError(format!("the signature by {} does not verify", self.name)))?;
            found = true;
        }
        if !found {
            return err(format!("the note has no signature by {}+{:08x}", self.name, self.id));
        }
        Ok(text)
    }
}

/// A checkpoint's body: what a log commits to at a tree size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
}

impl Checkpoint {
    /// The note text: three lines.
    pub fn text(&self) -> String {
        format!("{}\n{}\n{}\n", self.origin, self.size, B64.encode(self.root))
    }

    /// Reads a checkpoint's text (extension lines after the third are allowed and ignored).
    pub fn parse(text: &str) -> Result<Checkpoint, NoteError> {
        let mut lines = text.split('\n');
        let (Some(origin), Some(size), Some(root)) = (lines.next(), lines.next(), lines.next())
        else {
            return err("a checkpoint has three lines: origin, tree size, root hash");
        };
        if origin.is_empty() {
            return err("the checkpoint's origin is empty");
        }
        let size: u64 = size
            .parse()
            .ok()
            .filter(|_| !size.starts_with('+') && (size == "0" || !size.starts_with('0')))
            .ok_or_else(|| NoteError(format!("the checkpoint's tree size {size:?} is not a number")))?;
        let root = B64
            .decode(root)
            .ok()
            .and_then(|r| <Hash>::try_from(r.as_slice()).ok())
            .ok_or_else(|| NoteError("the checkpoint's root is not a base64 SHA-256 hash".into()))?;
        Ok(Checkpoint { origin: origin.to_owned(), size, root })
    }

    /// Checks a signed checkpoint with `verifier` and reads it.
    pub fn open(note: &str, verifier: &NoteVerifier) -> Result<Checkpoint, NoteError> {
        Checkpoint::parse(verifier.open(note)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_sign() {
        let s = NoteSigner::generate("example.com/audit").unwrap();
        let again = NoteSigner::parse(&s.to_key_string()).unwrap();
        assert_eq!(again.verifier(), s.verifier());
        let v = NoteVerifier::parse(&s.verifier().to_key_string()).unwrap();
        let cp = Checkpoint { origin: "example.com/audit".into(), size: 3, root: [7; 32] };
        let note = s.sign(&cp.text());
        assert_eq!(Checkpoint::open(&note, &v).unwrap(), cp);
        let forged = note.replacen("\n3\n", "\n4\n", 1);
        assert!(Checkpoint::open(&forged, &v).unwrap_err().0.contains("does not verify"));
        let other = NoteSigner::generate("example.com/audit").unwrap();
        let e = Checkpoint::open(&other.sign(&cp.text()), &v).unwrap_err();
        assert!(e.0.contains("no signature by"), "{e}");
    }

    #[test]
    fn a_go_signed_note_verifies() {
        // From golang.org/x/mod/sumdb/note's documentation (example_test.go).
        let vkey = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
        let note = "If you think cryptography is the answer to your problem,\n\
                    then you don't know what your problem is.\n\
                    \n\
                    \u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
        let v = NoteVerifier::parse(vkey).unwrap();
        assert!(v.open(note).unwrap().starts_with("If you think"));
        let skey = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
        let s = NoteSigner::parse(skey).unwrap();
        assert_eq!(s.verifier(), v);
        assert_eq!(s.sign(v.open(note).unwrap()), note, "Ed25519 is deterministic");
    }

    #[test]
    fn bad_keys_are_refused_with_a_reason() {
        for (k, want) in [
            ("", "not a verifier key"),
            ("a+b+c", "8 hex digits"),
            ("a b+00000000+AQ==", "not valid"),
            ("a+00000000+!!", "base64"),
            ("a+00000000+AQ==", "not an Ed25519 key"),
        ] {
            let e = NoteVerifier::parse(k).unwrap_err();
            assert!(e.0.contains(want), "{k:?}: {e}");
        }
        let s = NoteSigner::generate("n").unwrap();
        let v = s.verifier().to_key_string();
        let wrong_id = format!("n+{:08x}+{}", 0u32, v.splitn(3, '+').nth(2).unwrap());
        assert!(NoteVerifier::parse(&wrong_id).unwrap_err().0.contains("does not match"));
        assert!(NoteSigner::parse(&v).is_err());
    }
}
