//! MicroLoop's engine: decides, before a tool call runs, whether it may run.
//!
//! `#![no_std]` + `alloc`: no files, no clock, no threads. Callers (the C ABI in `native/ffi`, the
//! proxy) bring those.
//!
//! * [`canon`]: canonical fingerprints of arguments and results;
//! * [`doc`]: parsed arguments for rules to read, borrowing from the arguments' text;
//! * [`mask`]: volatile output (ids, timestamps, durations) masked before results are compared;
//! * [`effect`]: whether a call reads or writes, and whether an error is transient;
//! * [`shell`]: a quote-aware reading of shell command lines, for the effect of shell tools;
//! * [`policy`]: the typed, validated policy, its presets and the table of loop thresholds;
//! * [`rule`]: the built-in rules, by name;
//! * [`engine`]: a compiled policy shared by sessions, and the seam for argument rules;
//! * [`session`]: one agent's history and the loop detectors;
//! * [`sketch`]: similarity sketches of arguments and results, for near-duplicate loops;
//! * [`verdict`]: the answer to a check.
//!
//! ```
//! use std::sync::Arc;
//! use microloop_core::{Action, Engine, Policy, Session};
//!
//! let engine = Arc::new(Engine::new(Policy::from_json(b"balanced").unwrap()).unwrap());
//! let mut session = Session::new(engine);
//! for attempt in 1..=3 {
//!     let v = session.check("open_page", br#"{"url": "https://example.com"}"#, 0).unwrap();
//!     if attempt < 3 {
//!         assert!(v.action.runs());
//!         session.record(v.call_id, b"Please solve the CAPTCHA", false).unwrap();
//!     } else {
//!         assert_eq!(v.action, Action::Block);
//!         assert_eq!(v.rule, "loop.no_progress");
//!     }
//! }
//! ```
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod canon;
pub mod doc;
pub mod effect;
pub mod engine;
pub mod mask;
pub mod policy;
pub mod rule;
pub mod session;
pub mod shell;
pub mod sketch;
pub mod verdict;

pub use engine::{ArgRules, Engine, RuleHit};
pub use policy::{Policy, PolicyError, Preset, Threshold, THRESHOLDS};
pub use rule::Rule;
pub use session::{policy_hash, CheckError, RecordError, Session, SnapshotError, Stats, SNAPSHOT_VERSION};
pub use verdict::{Action, Verdict};
