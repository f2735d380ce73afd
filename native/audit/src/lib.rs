//! MicroLoop's tamper-evident audit log.
//!
//! Every decision (allow, warn, block, halt) becomes a record: a leaf of an RFC 6962 Merkle tree
//! ([`merkle`]). Every so many records, every few seconds and at close, the writer ([`log`]) signs
//! a checkpoint over the tree in the C2SP `tlog-checkpoint` / `signed-note` format with Ed25519
//! ([`note`]), so Go's `golang.org/x/mod/sumdb/note` and `sumdb/tlog` read it too. [`verify`]
//! checks a log against a verifier key (and a pinned earlier checkpoint) and proves a record's
//! inclusion. Arguments are logged as the SHA-256 of their RFC 8785 canonical JSON ([`jcs`]),
//! never as themselves.
//!
//! ```
//! use microloop_audit::{log, note::NoteSigner, verify};
//! let dir = std::env::temp_dir().join(format!("ml-audit-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir).unwrap();
//! let path = dir.join("audit.log");
//! let signer = NoteSigner::generate("example.com/agent-audit").unwrap();
//! let key = signer.verifier();
//! let l = log::AuditLog::open(log::Options::new(&path, signer)).unwrap();
//! let seq = l.append(log::Entry {
//!     time_ms: 1, session: "s1".into(), call: 1, tool: "search".into(),
//!     args: br#"{"q":"x"}"#.to_vec(), action: "allow", rule: String::new(),
//!     policy_sha256: "00".into(),
//! });
//! assert_eq!(seq, Some(0));
//! l.close().unwrap();
//! let v = verify::verify(&std::fs::read(&path).unwrap(), &key, None).unwrap();
//! assert_eq!((v.records, v.checkpoints), (1, 1));
//! # std::fs::remove_dir_all(&dir).ok();
//! ```

pub mod jcs;
pub mod log;
pub mod merkle;
pub mod note;
pub mod verify;

pub use log::{AuditError, AuditLog, Entry, Options};
pub use note::{Checkpoint, NoteSigner, NoteVerifier};
