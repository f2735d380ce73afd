//! What every MicroLoop host shares, so the C ABI, the proxy and the hook cannot drift apart.
//!
//! * [`policy`]: one loader for every way a policy is given (preset name, JSON or TOML text, a
//!   file, a `.microloop.toml` found upward from a directory) and the engine compiled from it;
//! * [`clock`]: the time a check is made at, fixed in tests.

pub mod clock;
pub mod policy;

pub use clock::{Clock, FixedClock, SystemClock};
pub use policy::{discover, engine_for, load, load_file, parse_text, LoadError, POLICY_FILE};
