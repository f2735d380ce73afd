//! The answer to one check: what to do with the call, which rule decided, and why.

use alloc::borrow::Cow;
use alloc::string::String;

use crate::rule::Rule;

/// What the caller must do with a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(i32)]
pub enum Action {
    /// Run it.
    Allow = 0,
    /// Run it, and show the message to the model with the result: the next like call will be
    /// blocked.
    Warn = 1,
    /// Do not run it; give the message to the model in place of a result.
    Block = 2,
    /// Do not run it, and stop the run.
    Halt = 3,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Allow => "allow",
            Action::Warn => "warn",
            Action::Block => "block",
            Action::Halt => "halt",
        }
    }

    /// True for `allow` and `warn`: the call may run.
    pub fn runs(self) -> bool {
        matches!(self, Action::Allow | Action::Warn)
    }
}

/// The verdict on one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub action: Action,
    /// The rule that decided (`loop.no_progress`, a policy rule's id); empty for `allow`.
    pub rule: Cow<'static, str>,
    /// Written for the model: what was repeated, how often, what to do instead. Empty for `allow`.
    pub message: String,
    /// The id to record the call's result under; 0 when the call must not run.
    pub call_id: u64,
    /// For `allow`, how many times this exact call already ran in the window; otherwise the count
    /// the deciding rule reached.
    pub count: u32,
    /// Observe mode (a policy with `mode = "observe"`): the action an enforcing guard would have
    /// taken (`Warn`, `Block` or `Halt`) on a call that is let run. `action` is then `Allow`,
    /// `call_id` names the call in the history, and `rule`, `message` and `count` are the ones
    /// that action would have carried. `None` otherwise.
    pub observed: Option<Action>,
}

impl Verdict {
    /// The built-in rule that decided; `None` for `allow` and for a policy's own argument rules.
    pub fn builtin_rule(&self) -> Option<Rule> {
        Rule::from_name(&self.rule)
    }

    pub(crate) fn allow(call_id: u64, count: u32) -> Verdict {
        Verdict { action: Action::Allow, rule: Cow::Borrowed(""), message: String::new(), call_id, count, observed: None }
    }
}
