//! Turns a parsed policy into an engine: the rule engine (`microloop-rules`) compiles the
//! schemas, field rules and mask patterns once, here, so a broken policy is refused at load.

use microloop_core::{Engine, Policy, PolicyError};

/// Compiles `policy` into an engine shared by the session.
pub fn compile(policy: Policy) -> Result<Engine, PolicyError> {
    microloop_rules::compile(policy)
}
