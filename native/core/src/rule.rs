//! The built-in rules: the names verdicts give them, as one enum.
//!
//! A verdict names the rule that decided as text ([`crate::Verdict::rule`]), because a policy's
//! own argument rules have ids of the user's choosing (`no-drop-table`); every rule MicroLoop
//! itself applies is one of these, and code that needs to know which one matches on [`Rule`]
//! rather than on its name.

/// A rule of MicroLoop's own: a loop detector, a budget, a tool check, or the halt after ignored
/// blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rule {
    /// `loop.identical`: the same call ran `max_identical` times in the window.
    Identical,
    /// `loop.no_progress`: the same call returned the same answer with no progress in between.
    NoProgress,
    /// `loop.transient`: back-to-back retries of the same transient error.
    Transient,
    /// `loop.error`: the same call failed in a row with no progress.
    Error,
    /// `loop.same_error`: a tool returned the identical error, whatever its arguments.
    SameError,
    /// `loop.cycle`: a cycle of calls with unchanged answers.
    Cycle,
    /// `loop.near_error`: near-identical variations of a call failed with the identical error.
    NearError,
    /// `loop.near_duplicate`: near-identical calls got near-identical answers.
    NearDuplicate,
    /// `budget.calls`: the session's call budget is spent (halts).
    BudgetCalls,
    /// `budget.errors`: the session's error budget is spent (halts).
    BudgetErrors,
    /// `budget.tool_calls`: one tool's call budget is spent.
    BudgetToolCalls,
    /// `budget.rate`: too many calls in the last minute.
    BudgetRate,
    /// `budget.args_size`: arguments larger than `budget.max_args_bytes`.
    BudgetArgsSize,
    /// `tool.denied`: the policy forbids the tool.
    ToolDenied,
    /// `tool.unknown`: the tool is not among the agent's registered tools.
    ToolUnknown,
    /// `halt.ignored_blocks`: the agent kept trying blocked calls.
    HaltIgnoredBlocks,
}

impl Rule {
    /// Every built-in rule, in the order above.
    pub const ALL: [Rule; 16] = [
        Rule::Identical,
        Rule::NoProgress,
        Rule::Transient,
        Rule::Error,
        Rule::SameError,
        Rule::Cycle,
        Rule::NearError,
        Rule::NearDuplicate,
        Rule::BudgetCalls,
        Rule::BudgetErrors,
        Rule::BudgetToolCalls,
        Rule::BudgetRate,
        Rule::BudgetArgsSize,
        Rule::ToolDenied,
        Rule::ToolUnknown,
        Rule::HaltIgnoredBlocks,
    ];

    /// The rule's name in verdicts, logs and docs: `loop.no_progress`.
    pub const fn name(self) -> &'static str {
        match self {
            Rule::Identical => "loop.identical",
            Rule::NoProgress => "loop.no_progress",
            Rule::Transient => "loop.transient",
            Rule::Error => "loop.error",
            Rule::SameError => "loop.same_error",
            Rule::Cycle => "loop.cycle",
            Rule::NearError => "loop.near_error",
            Rule::NearDuplicate => "loop.near_duplicate",
            Rule::BudgetCalls => "budget.calls",
            Rule::BudgetErrors => "budget.errors",
            Rule::BudgetToolCalls => "budget.tool_calls",
            Rule::BudgetRate => "budget.rate",
            Rule::BudgetArgsSize => "budget.args_size",
            Rule::ToolDenied => "tool.denied",
            Rule::ToolUnknown => "tool.unknown",
            Rule::HaltIgnoredBlocks => "halt.ignored_blocks",
        }
    }

    /// The built-in rule of that name; `None` for a policy's own rule ids (and for `""`).
    pub fn from_name(name: &str) -> Option<Rule> {
        Rule::ALL.into_iter().find(|r| r.name() == name)
    }

    /// True for the loop detectors (`loop.*`), the rules a loop threshold sets.
    pub const fn is_loop(self) -> bool {
        matches!(
            self,
            Rule::Identical
                | Rule::NoProgress
                | Rule::Transient
                | Rule::Error
                | Rule::SameError
                | Rule::Cycle
                | Rule::NearError
                | Rule::NearDuplicate
        )
    }
}

impl core::fmt::Display for Rule {
    fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_unique() {
        for r in Rule::ALL {
            assert_eq!(Rule::from_name(r.name()), Some(r));
            assert_eq!(r.is_loop(), r.name().starts_with("loop."), "{r}");
        }
        assert_eq!(Rule::from_name("no-drop-table"), None);
        assert_eq!(Rule::from_name(""), None);
    }
}
