//! Turns a parsed policy into an engine: the seam where argument rules get compiled.

use microloop_core::{Engine, Policy, PolicyError};

/// Compiles `policy` into an engine shared by the session.
pub fn compile(policy: Policy) -> Result<Engine, PolicyError> {
    Engine::new(policy)
}
