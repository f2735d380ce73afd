//! A compiled policy shared by any number of sessions, and the seam for argument rules.
//!
//! The core stays `no_std`: JSON Schema and regex rules live in a std crate that implements
//! [`ArgRules`] and is plugged in when the engine is built.

use alloc::borrow::Cow;
use alloc::boxed::Box;
use alloc::string::String;

use crate::doc::Node;
use crate::policy::{Policy, PolicyError};

/// The first argument rule a call broke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleHit {
    /// The rule's id (`schema`, `no-drop`, ...).
    pub id: String,
    /// Written for the model: what is wrong with the arguments and what is expected.
    pub message: String,
}

/// Argument rules compiled from a policy's `[[tools]]` entries (schema, field rules) and its
/// extra result masks.
pub trait ArgRules: Send + Sync {
    /// Checks `args` (the parsed arguments, see [`crate::doc`]) against the rules of the policy's
    /// tool entry `entry` (an index into `Policy::tools`). Returns the first rule broken.
    fn check(&self, entry: usize, args: Node<'_>) -> Option<RuleHit>;

    /// Checks `args` against every entry that applies to the tool (`entries`, as
    /// [`Policy::resolve`](crate::policy::Policy::resolve) lists them) and returns the first rule
    /// broken. The default checks entry after entry; the rule engine overrides it to check every
    /// schema before any field rule.
    fn check_call(&self, entries: &[usize], args: Node<'_>) -> Option<RuleHit> {
        entries.iter().find_map(|&e| self.check(e, args))
    }

    /// Masks the policy's own volatile patterns in a result. The default keeps it as it is.
    fn mask<'a>(&self, output: Cow<'a, [u8]>) -> Cow<'a, [u8]> {
        output
    }
}

/// A policy plus its compiled rules: immutable, shared by sessions.
pub struct Engine {
    pub policy: Policy,
    pub rules: Option<Box<dyn ArgRules>>,
}

impl Engine {
    /// An engine for a policy without argument rules (schemas, field rules, mask patterns).
    pub fn new(policy: Policy) -> Result<Engine, PolicyError> {
        if let Some(i) = policy.tools.iter().position(|t| t.has_rules()) {
            return Err(PolicyError::new(
                alloc::format!("tools[{i}]"),
                "this entry has argument rules but no rule engine was built in",
            ));
        }
        if !policy.mask_patterns.is_empty() {
            return Err(PolicyError::new("loops.mask_patterns", "mask patterns need the rule engine, which was not built in"));
        }
        Ok(Engine { policy, rules: None })
    }

    /// An engine whose policy's rules were compiled by `rules`.
    pub fn with_rules(policy: Policy, rules: Box<dyn ArgRules>) -> Engine {
        Engine { policy, rules: Some(rules) }
    }
}
