//! What every MicroLoop host shares, so the C ABI, the proxy and the hook cannot drift apart.
//!
//! * [`policy`]: one loader for every way a policy is given (preset name, JSON or TOML text, a
//!   file, a `.microloop.toml` found upward from a directory) and the engine compiled from it;
//! * [`host`]: a loaded policy with the sinks its sections configure ([`Host`]);
//! * [`events`]: every decision handed to pluggable [`Sink`]s; [`audit`] is the audit log's sink;
//!   [`approval`] signs a token for every call that may run (`[approval]`);
//! * [`clock`]: the time a check is made at, fixed in tests;
//! * [`observe`]: shadow mode's log, in the format `microloop replay` reads;
//! * [`conversation`]: an OpenAI or Anthropic conversation replayed into a session (the proxy's
//!   reading of every request, `ml_session_replay`'s and `microloop replay`'s).

pub mod approval;
pub mod audit;
pub mod clock;
pub mod conversation;
pub mod events;
pub mod host;
pub mod observe;
pub mod policy;

pub use clock::{Clock, FixedClock, SystemClock};
pub use approval::{Approval, Approver};
pub use events::{Decision, Emitted, Events, Sink};
pub use host::{parse_host_text, Host, HostSections};
pub use observe::ObserveLog;
pub use policy::{discover, engine_for, load, load_file, load_text, parse_text, LoadError, POLICY_FILE};
