//! The policy: loop thresholds, budgets and per-tool entries, typed and validated.
//!
//! A policy document is JSON (the C ABI's format; the rule engine also reads TOML into the same
//! value). A preset name alone (`"strict"`, `"balanced"`, `"permissive"`, or the alias
//! `"strict loop detection"`) is a complete policy; a document starts from its `preset` (default
//! `balanced`) and overrides what it names. Unknown keys, wrong types and out-of-range values are
//! refused with the path of the bad entry (`loops.max_identical: ...`), when the policy is loaded,
//! never at call time.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::effect::Effect;
use crate::rule::Rule;

/// A policy that was refused, with the path of the bad entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError {
    /// Where in the document: `loops.max_identical`, `tools[2].rules[0].deny_regex`; empty for the
    /// document as a whole.
    pub path: String,
    /// What is wrong, for a person fixing the policy.
    pub message: String,
}

impl PolicyError {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        PolicyError { path: path.into(), message: message.into() }
    }
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Built-in starting points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    Strict,
    Balanced,
    Permissive,
}

impl Preset {
    /// Every preset, in the order of the columns of [`THRESHOLDS`].
    pub const ALL: [Preset; 3] = [Preset::Strict, Preset::Balanced, Preset::Permissive];

    /// Parses a preset name; `"strict loop detection"` is an alias of `strict`.
    pub fn from_name(name: &str) -> Option<Preset> {
        match name.trim().to_ascii_lowercase().as_str() {
            "strict" | "strict loop detection" => Some(Preset::Strict),
            "balanced" | "default" => Some(Preset::Balanced),
            "permissive" => Some(Preset::Permissive),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Preset::Strict => "strict",
            Preset::Balanced => "balanced",
            Preset::Permissive => "permissive",
        }
    }

    /// The loop thresholds of this preset (the columns of [`THRESHOLDS`]).
    pub fn limits(self) -> Limits {
        Limits::of_preset(self)
    }

    /// How many blocked calls the agent may try before the run is halted.
    pub fn max_blocked(self) -> u32 {
        match self {
            Preset::Strict => 3,
            Preset::Balanced => 5,
            Preset::Permissive => 10,
        }
    }
}

/// The loop thresholds, one row each: the policy key; the rule it sets; its value in the strict,
/// balanced and permissive presets; the values it accepts; what it counts; an example value for
/// `[loops]` and one for a `[[tools]]` entry. This table is the only list of them: the [`Limits`]
/// and [`LimitOverrides`] fields, the `loops` and `[[tools]]` keys, their parsing, the presets and
/// [`THRESHOLDS`] (from which the docs' tables and `microloop check-policy`'s explanations are
/// generated and checked: `native/rules/tests/policy_docs.rs`) all come from it.
macro_rules! thresholds {
    ($callback:ident! { $($args:tt)* }) => {
        $callback! {
            [
                max_identical => Identical {
                    presets: [10, 30, 100], accepts: "integer ≥ 0", examples: [20, 100],
                    meaning: "the same call (tool + canonical arguments) ran this many times in the window, whatever its results."
                },
                max_no_progress => NoProgress {
                    presets: [1, 2, 4], accepts: "integer ≥ 0", examples: [3, 1],
                    meaning: "the same call returned the same result this many times with no progress (a successful write, or a changed answer) in between."
                },
                max_transient_retries => Transient {
                    presets: [2, 3, 5], accepts: "integer ≥ 0", examples: [5, 6],
                    meaning: "the same call failed with the same transient error (timeout, 429, 502–504, \"rate limit\") this many times back to back."
                },
                max_consecutive_errors => Error {
                    presets: [2, 3, 5], accepts: "integer ≥ 0", examples: [4, 1],
                    meaning: "the same call failed this many times with no progress in between, whatever the error texts."
                },
                // Off in balanced: on the labelled runs it caught no loop another rule did not,
                // and blocked a legitimate one (bench/RESULTS.md, "Rules one by one").
                max_same_error => SameError {
                    presets: [3, 0, 10], accepts: "integer ≥ 0", examples: [3, 2],
                    meaning: "a tool returned the identical error this many times in a row, whatever its arguments."
                },
                max_near_duplicate => NearDuplicate {
                    presets: [2, 3, 5], accepts: "integer ≥ 0", examples: [0, 0],
                    meaning: "the same tool with near-identical arguments and a near-identical answer this many times with no progress."
                },
                max_near_errors => NearError {
                    presets: [2, 2, 4], accepts: "integer ≥ 0", examples: [3, 0],
                    meaning: "a call re-sent after it, and near-identical variations of it, failed this many times with the identical error (what the error echoes of each call's arguments masked), with no progress in between."
                },
                max_cycle_period => Cycle {
                    presets: [4, 4, 4], accepts: "0, or 2 to 16", examples: [3, 2],
                    meaning: "the longest cycle looked for (A-B-A-B has period 2)."
                },
                max_cycle_repeats => Cycle {
                    presets: [2, 3, 4], accepts: "0, or ≥ 2", examples: [2, 2],
                    meaning: "rounds of the cycle, with no answer in it changing, before it is blocked. `max_cycle_period × max_cycle_repeats` must fit in the window."
                },
            ]
            $($args)*
        }
    };
}

/// One loop threshold: a row of the table above.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Threshold {
    /// The key in `[loops]` and in a `[[tools]]` entry: `max_identical`.
    pub key: &'static str,
    /// The rule it sets.
    pub rule: Rule,
    /// Its value in each preset, in [`Preset::ALL`] order (strict, balanced, permissive).
    pub presets: [u32; 3],
    /// The values it accepts, as the docs say it: `integer ≥ 0`.
    pub accepts: &'static str,
    /// What it counts, for a person reading a policy.
    pub meaning: &'static str,
    /// An example value for `[loops]`, and one for a `[[tools]]` entry.
    pub examples: [u32; 2],
}

macro_rules! define_limits {
    ([$($key:ident => $rule:ident {
        presets: [$s:literal, $b:literal, $p:literal], accepts: $accepts:literal, examples: [$le:literal, $te:literal],
        meaning: $meaning:literal
    }),* $(,)?]) => {
        /// Every loop threshold, in the order of the table.
        pub const THRESHOLDS: &[Threshold] = &[$(Threshold {
            key: stringify!($key),
            rule: Rule::$rule,
            presets: [$s, $b, $p],
            accepts: $accepts,
            meaning: $meaning,
            examples: [$le, $te],
        }),*];

        /// Loop-detector thresholds ([`THRESHOLDS`]). Each counts completed calls; 0 turns the rule off.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub struct Limits {
            $(#[doc = $meaning] pub $key: u32,)*
        }

        /// Per-tool overrides of [`Limits`]; `None` keeps the inherited value.
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        pub struct LimitOverrides {
            $(pub $key: Option<u32>,)*
        }

        impl Limits {
            fn of_preset(p: Preset) -> Limits {
                let column = match p {
                    Preset::Strict => 0,
                    Preset::Balanced => 1,
                    Preset::Permissive => 2,
                };
                Limits { $($key: [$s, $b, $p][column],)* }
            }

            fn apply(&mut self, o: &LimitOverrides) {
                $(if let Some(v) = o.$key { self.$key = v; })*
            }

            /// The value of the threshold named `key` (a [`Threshold::key`]).
            pub fn get(&self, key: &str) -> Option<u32> {
                match key {
                    $(stringify!($key) => Some(self.$key),)*
                    _ => None,
                }
            }

            /// Every threshold's value, in [`THRESHOLDS`] order.
            pub fn values(&self) -> impl Iterator<Item = (&'static Threshold, u32)> {
                THRESHOLDS.iter().zip([$(self.$key),*])
            }
        }
    };
}
thresholds!(define_limits! {});

/// A struct whose fields are the ones listed before the `;`, one `Option<u32>` per threshold,
/// then the ones after: the serde documents that hold thresholds beside other keys (serde's
/// `flatten` would defeat `deny_unknown_fields`).
macro_rules! with_thresholds {
    ([$($key:ident => $rule:ident $row:tt),* $(,)?]
     $(#[$m:meta])* $vis:vis struct $name:ident {
         $($(#[$bm:meta])* $bvis:vis $bf:ident : $bt:ty,)*
         ;
         $($(#[$am:meta])* $avis:vis $af:ident : $at:ty,)*
     }
     $(#[$km:meta])* keys $keys:ident [$($bk:literal),*] [$($ak:literal),*]
    ) => {
        $(#[$m])* $vis struct $name {
            $($(#[$bm])* $bvis $bf: $bt,)*
            $(pub $key: Option<u32>,)*
            $($(#[$am])* $avis $af: $at,)*
        }

        impl $name {
            /// The thresholds this document sets.
            pub fn limit_overrides(&self) -> LimitOverrides {
                LimitOverrides { $($key: self.$key,)* }
            }
        }

        $(#[$km])*
        pub const $keys: &[&str] = &[$($bk,)* $(stringify!($key),)* $($ak,)*];
    };
}

impl Limits {
    fn validate(&self, path: &str, window: u32) -> Result<(), PolicyError> {
        let counts = self.values().filter(|(t, _)| t.rule != Rule::Cycle).map(|(t, v)| (t.key, v));
        for (key, v) in counts {
            if v > window {
                return Err(PolicyError::new(
                    join(path, key),
                    format!("{v} is larger than the history window ({window} calls), so the rule could never fire; use at most {window}, or 0 to turn it off"),
                ));
            }
        }
        if self.max_cycle_period == 1 || self.max_cycle_period > 16 {
            return Err(PolicyError::new(
                join(path, "max_cycle_period"),
                format!("{} is out of range: a cycle has a period of 2 to 16 calls (0 turns the rule off)", self.max_cycle_period),
            ));
        }
        if self.max_cycle_repeats == 1 || self.max_cycle_repeats.saturating_mul(self.max_cycle_period) > window {
            return Err(PolicyError::new(
                join(path, "max_cycle_repeats"),
                format!("{} is out of range: use 2 or more rounds whose calls fit in the window (0 turns the rule off)", self.max_cycle_repeats),
            ));
        }
        Ok(())
    }
}

/// Session-wide budgets. `None` means no limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Budget {
    /// Calls allowed in the session; then the run is halted (`budget.calls`).
    pub max_calls: Option<u64>,
    /// Calls allowed per tool (a tool entry may set its own); then that tool is blocked.
    pub max_tool_calls: Option<u64>,
    /// Failed calls allowed in the session; then the run is halted (`budget.errors`).
    pub max_errors: Option<u64>,
    /// Calls per rolling minute; past it calls are blocked (`budget.rate`).
    pub max_calls_per_minute: Option<u32>,
    /// Largest arguments accepted, in bytes, checked before any parsing (`budget.args_size`).
    pub max_args_bytes: usize,
}

/// A rule on one field of a tool's arguments (compiled by the rule engine).
///
/// The conditions are checked on the value at `field`; when that value is a list, on each of its
/// elements (a list that equals the whole condition, or is among `allow_values`, also passes).
/// A missing field passes `deny_regex` and `deny_values` (nothing to deny) and fails
/// `require_regex`, `allow_values` and `equals` (an agent must not escape a rule by leaving the
/// field out), unless `optional = true`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldRule {
    /// The rule id in a verdict; default `tools[i].rules[j]`.
    pub id: Option<String>,
    /// A JSON Pointer into the arguments (`/sql`, `/options/mode`); empty for the whole arguments.
    pub field: String,
    /// The block message for the model; default a message naming the field and the condition.
    pub message: Option<String>,
    pub deny_regex: Option<String>,
    pub require_regex: Option<String>,
    pub allow_values: Option<Vec<Value>>,
    pub deny_values: Option<Vec<Value>>,
    /// The value the field must have (`null` included).
    #[serde(default, deserialize_with = "present")]
    pub equals: Option<Value>,
    /// A missing field passes every condition.
    #[serde(default)]
    pub optional: bool,
}

/// Keeps an explicit `null` as `Some(Value::Null)`, so `equals = null` is a condition.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

impl FieldRule {
    /// The rule's id: its own, or `tools[tool].rules[rule]`.
    pub fn id_or_default(&self, tool: usize, rule: usize) -> String {
        match &self.id {
            Some(id) => id.clone(),
            None => format!("tools[{tool}].rules[{rule}]"),
        }
    }

    fn validate(&self, path: &str) -> Result<(), PolicyError> {
        if let Some(id) = &self.id {
            if id.trim().is_empty() {
                return Err(PolicyError::new(join(path, "id"), "an id is a non-empty name such as `no-drop-table`; leave it out for the default"));
            }
        }
        if let Err(why) = check_pointer(&self.field) {
            return Err(PolicyError::new(join(path, "field"), format!("`{}` is not a JSON Pointer: {why}", self.field)));
        }
        if self.deny_regex.is_none() && self.require_regex.is_none() && self.allow_values.is_none()
            && self.deny_values.is_none() && self.equals.is_none()
        {
            return Err(PolicyError::new(
                path,
                "the rule has no condition; give at least one of deny_regex, require_regex, allow_values, deny_values, equals",
            ));
        }
        if self.allow_values.as_ref().is_some_and(Vec::is_empty) {
            return Err(PolicyError::new(join(path, "allow_values"), "an empty list would forbid every value; list the values allowed"));
        }
        if self.deny_values.as_ref().is_some_and(Vec::is_empty) {
            return Err(PolicyError::new(join(path, "deny_values"), "an empty list denies nothing; list the values denied, or leave the key out"));
        }
        Ok(())
    }
}

/// Checks the syntax of a JSON Pointer (RFC 6901): empty, or `/`-separated tokens where `~` is
/// only `~0` or `~1`.
pub fn check_pointer(p: &str) -> Result<(), &'static str> {
    if p.is_empty() {
        return Ok(());
    }
    if !p.starts_with('/') {
        return Err("it is empty (the whole arguments) or starts with `/`, as in `/sql`");
    }
    let b = p.as_bytes();
    for (i, &c) in b.iter().enumerate() {
        if c == b'~' && !matches!(b.get(i + 1), Some(b'0' | b'1')) {
            return Err("`~` is an escape: write `~0` for `~` and `~1` for `/`");
        }
    }
    Ok(())
}

thresholds!(with_thresholds! {
    /// One `[[tools]]` entry; each threshold key overrides the policy's for this tool.
    #[derive(Debug, Clone, PartialEq, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct ToolPolicy {
        /// An exact tool name or a glob (`fs_*`, `get_?`); `*` is the default entry.
        pub name: String,
        /// `false` forbids the tool.
        #[serde(default = "yes")]
        pub allow: bool,
        /// The message given when the tool is forbidden.
        pub message: Option<String>,
        /// Overrides the inferred effect.
        pub effect: Option<Effect>,
        /// Calls allowed for this tool in the session.
        pub max_calls: Option<u64>,
        ;
        /// A JSON Schema the arguments must satisfy.
        pub schema: Option<Value>,
        /// Rule id used when the schema fails (default `schema`).
        pub schema_id: Option<String>,
        /// Field rules, parsed one by one by [`Policy::from_value`] so an error names the rule.
        #[serde(skip)]
        pub rules: Vec<FieldRule>,
    }
    /// Every key of a `[[tools]]` entry.
    keys TOOL_KEYS ["name", "allow", "message", "effect", "max_calls"] ["schema", "schema_id", "rules"]
});

fn yes() -> bool {
    true
}

impl ToolPolicy {
    fn is_exact(&self) -> bool {
        !self.name.contains(['*', '?'])
    }
    /// True when the entry has argument rules for the rule engine.
    pub fn has_rules(&self) -> bool {
        self.schema.is_some() || !self.rules.is_empty()
    }
}

/// A validated policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub preset: Preset,
    /// Calls kept in the history (default 256).
    pub window: u32,
    pub limits: Limits,
    /// Argument fields left out of fingerprints at any depth (timestamps, request ids).
    pub ignore_fields: Vec<String>,
    /// Mask volatile output (UUIDs, timestamps, hex ids, durations) before results are compared.
    pub normalize_results: bool,
    /// Extra regexes whose matches are masked in results (compiled by the rule engine).
    pub mask_patterns: Vec<String>,
    /// Blocked calls the agent may try before the run is halted; 0 never halts.
    pub max_blocked: u32,
    pub budget: Budget,
    /// Block calls to tools outside the agent's registered tool set (`tool.unknown`).
    pub deny_unknown_tools: bool,
    pub tools: Vec<ToolPolicy>,
    /// `mode = "observe"` (shadow mode): every call runs. The session computes each verdict on
    /// the history as executed and returns it as `allow` with the would-be action in
    /// `Verdict::observed`; hosts log and count them.
    pub observe: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Policy::preset(Preset::Balanced)
    }
}

thresholds!(with_thresholds! {
    #[derive(Deserialize, Default)]
    #[serde(deny_unknown_fields)]
    struct LoopsDoc {
        window: Option<u32>,
        ;
        ignore_fields: Option<Vec<String>>,
        normalize_results: Option<bool>,
        mask_patterns: Option<Vec<String>>,
        max_blocked: Option<u32>,
    }
    /// Every key of the `loops` section.
    keys LOOPS_KEYS ["window"] ["ignore_fields", "normalize_results", "mask_patterns", "max_blocked"]
});

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct BudgetDoc {
    max_calls: Option<u64>,
    max_tool_calls: Option<u64>,
    max_errors: Option<u64>,
    max_calls_per_minute: Option<u32>,
    max_args_bytes: Option<u64>,
}

/// Every key the top level of a policy document accepts.
pub const TOP_LEVEL_KEYS: &[&str] = &["preset", "mode", "loops", "budget", "deny_unknown_tools", "tools"];

/// The default `budget.max_args_bytes`: 1 MiB.
pub const DEFAULT_MAX_ARGS_BYTES: usize = 1 << 20;

/// Every key of the `budget` section.
pub const BUDGET_KEYS: &[&str] = &["max_calls", "max_tool_calls", "max_errors", "max_calls_per_minute", "max_args_bytes"];

/// Every key of a field rule (`[[tools]]` entry's `rules`).
pub const RULE_KEYS: &[&str] =
    &["id", "field", "message", "deny_regex", "require_regex", "allow_values", "deny_values", "equals", "optional"];

/// Parses one `[[tools]]` entry; its `rules` one by one, so an error names the rule at fault.
fn tool_entry(v: Value, i: usize) -> Result<ToolPolicy, PolicyError> {
    let path = format!("tools[{i}]");
    let (v, rules) = match v {
        Value::Object(mut map) => {
            let rules = map.remove("rules");
            (Value::Object(map), rules)
        }
        other => return Err(PolicyError::new(path, format!("a tool entry is an object, not {}", kind(&other)))),
    };
    let mut t: ToolPolicy = entry(v, &path).map_err(|mut e| {
        // `rules` is parsed apart, so serde's list of the keys it knows lacks it.
        if e.message.starts_with("unknown field") {
            e.message.push_str(", `rules`");
        }
        e
    })?;
    t.rules = match rules {
        None => Vec::new(),
        Some(Value::Array(items)) => items
            .into_iter()
            .enumerate()
            .map(|(j, r)| {
                let at = format!("{path}.rules[{j}]");
                match r {
                    Value::Object(_) => entry::<FieldRule>(r, &at),
                    other => Err(PolicyError::new(at, format!("a rule is an object, not {}", kind(&other)))),
                }
            })
            .collect::<Result<Vec<_>, _>>()?,
        Some(other) => return Err(PolicyError::new(join(&path, "rules"), format!("expected a list of rules, found {}", kind(&other)))),
    };
    Ok(t)
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() { key.to_string() } else { format!("{path}.{key}") }
}

/// Deserializes a section, prefixing serde's message with the section's path.
fn section<T: DeserializeOwned + Default>(doc: &mut Map<String, Value>, key: &str) -> Result<T, PolicyError> {
    match doc.remove(key) {
        None => Ok(T::default()),
        Some(v) => entry(v, key),
    }
}

/// Deserializes one object of the document. On failure, finds the member at fault (serde names
/// the field only for unknown keys) so the error's path points at it: `budget.max_calls`.
fn entry<T: DeserializeOwned>(v: Value, path: &str) -> Result<T, PolicyError> {
    let members: Vec<(String, Value)> = match &v {
        Value::Object(map) => map.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        _ => Vec::new(),
    };
    serde_json::from_value(v).map_err(|e| {
        for (k, v) in members {
            let mut one = Map::new();
            one.insert(k.clone(), v);
            if let Err(e) = serde_json::from_value::<T>(Value::Object(one)) {
                // A lone member may only lack a required sibling (`name`): not this one's fault.
                if !e.to_string().starts_with("missing field") {
                    return PolicyError::new(join(path, &k), e.to_string());
                }
            }
        }
        PolicyError::new(path, e.to_string())
    })
}

impl Policy {
    /// The policy of a preset, with nothing overridden.
    pub fn preset(preset: Preset) -> Policy {
        Policy {
            preset,
            window: 256,
            limits: preset.limits(),
            ignore_fields: Vec::new(),
            normalize_results: true,
            mask_patterns: Vec::new(),
            max_blocked: preset.max_blocked(),
            budget: Budget {
                max_calls: None,
                max_tool_calls: None,
                max_errors: None,
                max_calls_per_minute: None,
                max_args_bytes: DEFAULT_MAX_ARGS_BYTES,
            },
            deny_unknown_tools: true,
            tools: Vec::new(),
            observe: false,
        }
    }

    /// Parses a policy from JSON text, or a bare preset name. Empty text is `balanced`.
    pub fn from_json(text: &[u8]) -> Result<Policy, PolicyError> {
        let trimmed = trim_ascii(text);
        if trimmed.is_empty() {
            return Ok(Policy::default());
        }
        if let Some(p) = core::str::from_utf8(trimmed).ok().and_then(Preset::from_name) {
            return Ok(Policy::preset(p));
        }
        let value: Value = serde_json::from_slice(trimmed)
            .map_err(|e| PolicyError::new("", format!("the policy is not valid JSON: {e}")))?;
        Policy::from_value(value)
    }

    /// Builds a policy from a parsed document (a JSON object, or a string naming a preset).
    pub fn from_value(value: Value) -> Result<Policy, PolicyError> {
        let mut doc = match value {
            Value::String(name) => {
                return Preset::from_name(&name).map(Policy::preset).ok_or_else(|| unknown_preset("", &name))
            }
            Value::Object(map) => map,
            other => {
                return Err(PolicyError::new("", format!("a policy is an object or a preset name, not {}", kind(&other))))
            }
        };
        if let Some(key) = doc.keys().find(|k| !TOP_LEVEL_KEYS.contains(&k.as_str())) {
            return Err(PolicyError::new(
                key.as_str(),
                format!("unknown key; a policy has {}", TOP_LEVEL_KEYS.join(", ")),
            ));
        }
        let preset = match doc.remove("preset") {
            None => Preset::Balanced,
            Some(Value::String(name)) => Preset::from_name(&name).ok_or_else(|| unknown_preset("preset", &name))?,
            Some(other) => return Err(PolicyError::new("preset", format!("expected a preset name, found {}", kind(&other)))),
        };
        let mut policy = Policy::preset(preset);
        policy.observe = match doc.remove("mode") {
            None => false,
            Some(Value::String(m)) if m == "enforce" => false,
            Some(Value::String(m)) if m == "observe" => true,
            Some(other) => {
                return Err(PolicyError::new("mode", format!("expected \"enforce\" or \"observe\", found {other}")))
            }
        };
        let loops: LoopsDoc = section(&mut doc, "loops")?;
        let budget: BudgetDoc = section(&mut doc, "budget")?;
        if let Some(v) = doc.remove("deny_unknown_tools") {
            policy.deny_unknown_tools = serde_json::from_value(v)
                .map_err(|e| PolicyError::new("deny_unknown_tools", e.to_string()))?;
        }
        let tools = match doc.remove("tools") {
            None => Vec::new(),
            Some(Value::Array(items)) => items
                .into_iter()
                .enumerate()
                .map(|(i, t)| tool_entry(t, i))
                .collect::<Result<Vec<_>, _>>()?,
            Some(other) => return Err(PolicyError::new("tools", format!("expected a list of tool entries, found {}", kind(&other)))),
        };

        if let Some(w) = loops.window {
            if !(1..=65_536).contains(&w) {
                return Err(PolicyError::new("loops.window", format!("{w} is out of range: use 1 to 65536 calls")));
            }
            policy.window = w;
        }
        policy.limits.apply(&loops.limit_overrides());
        policy.limits.validate("loops", policy.window)?;
        if let Some(f) = loops.ignore_fields {
            policy.ignore_fields = f;
        }
        if let Some(n) = loops.normalize_results {
            policy.normalize_results = n;
        }
        if let Some(p) = loops.mask_patterns {
            policy.mask_patterns = p;
        }
        if let Some(b) = loops.max_blocked {
            policy.max_blocked = b;
        }

        policy.budget.max_calls = budget.max_calls;
        policy.budget.max_tool_calls = budget.max_tool_calls;
        policy.budget.max_errors = budget.max_errors;
        policy.budget.max_calls_per_minute = budget.max_calls_per_minute;
        if let Some(n) = budget.max_args_bytes {
            if !(1..=(1u64 << 30)).contains(&n) {
                return Err(PolicyError::new("budget.max_args_bytes", format!("{n} is out of range: use 1 byte to 1 GiB")));
            }
            policy.budget.max_args_bytes = n as usize;
        }
        for (key, v) in [("max_calls", budget.max_calls), ("max_tool_calls", budget.max_tool_calls), ("max_errors", budget.max_errors)] {
            if v == Some(0) {
                return Err(PolicyError::new(join("budget", key), "0 would forbid every call; leave the key out for no limit"));
            }
        }
        if budget.max_calls_per_minute == Some(0) {
            return Err(PolicyError::new("budget.max_calls_per_minute", "0 would forbid every call; leave the key out for no limit"));
        }

        for (i, t) in tools.iter().enumerate() {
            let path = format!("tools[{i}]");
            if t.name.trim().is_empty() {
                return Err(PolicyError::new(join(&path, "name"), "a tool entry needs a name (an exact name or a glob such as `fs_*`)"));
            }
            if t.max_calls == Some(0) {
                return Err(PolicyError::new(join(&path, "max_calls"), "0 would forbid every call; use `allow = false` to forbid the tool"));
            }
            let mut limits = policy.limits;
            limits.apply(&t.limit_overrides());
            limits.validate(&path, policy.window)?;
            if t.schema_id.as_ref().is_some_and(|id| id.trim().is_empty()) {
                return Err(PolicyError::new(join(&path, "schema_id"), "an id is a non-empty name such as `sql-schema`; leave it out for `schema`"));
            }
            if t.schema_id.is_some() && t.schema.is_none() {
                return Err(PolicyError::new(join(&path, "schema_id"), "names the schema rule, but the entry has no `schema`"));
            }
            if t.schema.as_ref().is_some_and(|s| !matches!(s, Value::Object(_) | Value::Bool(_))) {
                return Err(PolicyError::new(join(&path, "schema"), "a JSON Schema is an object (or a boolean)"));
            }
            for (j, r) in t.rules.iter().enumerate() {
                r.validate(&format!("{path}.rules[{j}]"))?;
            }
        }
        policy.tools = tools;
        Ok(policy)
    }

    /// Which entries apply to `tool`, and the settings they give it.
    ///
    /// Every matching entry applies (deny wins, all rules are checked); for single values the most
    /// specific entry wins: the exact name, then globs in document order (the later wins), then `*`.
    pub fn resolve(&self, tool: &str) -> Resolved {
        let mut matching: Vec<usize> = (0..self.tools.len()).filter(|&i| glob_match(&self.tools[i].name, tool)).collect();
        let rank = |i: &usize| {
            let t = &self.tools[*i];
            if t.is_exact() { 2 } else if t.name == "*" { 0 } else { 1 }
        };
        matching.sort_by_key(rank); // stable: document order within a rank
        let mut r = Resolved {
            entries: matching.clone(),
            denied_by: None,
            effect: None,
            limits: self.limits,
            max_calls: self.budget.max_tool_calls,
            has_rules: false,
        };
        for &i in &matching {
            let t = &self.tools[i];
            if !t.allow && r.denied_by.is_none() {
                r.denied_by = Some(i);
            }
            r.effect = t.effect.or(r.effect);
            r.limits.apply(&t.limit_overrides());
            r.max_calls = t.max_calls.or(r.max_calls);
            r.has_rules |= t.has_rules();
        }
        r
    }
}

/// What applies to one tool name.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    /// Matching `tools` entries, least specific first.
    pub entries: Vec<usize>,
    /// The first entry that forbids the tool.
    pub denied_by: Option<usize>,
    pub effect: Option<Effect>,
    pub limits: Limits,
    pub max_calls: Option<u64>,
    /// Some entry has a schema or field rules.
    pub has_rules: bool,
}

fn unknown_preset(path: &str, name: &str) -> PolicyError {
    PolicyError::new(path, format!("unknown preset `{name}`; use strict, balanced or permissive"))
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn trim_ascii(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if first.is_ascii_whitespace() { s = rest } else { break }
    }
    while let [rest @ .., last] = s {
        if last.is_ascii_whitespace() { s = rest } else { break }
    }
    s
}

/// Glob matching with `*` (any run) and `?` (one character).
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    let (mut pi, mut ni) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ni;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ni = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_by_name() {
        assert_eq!(Policy::from_json(b"strict").unwrap().limits.max_identical, 10);
        assert_eq!(Policy::from_json(b"\"strict loop detection\"").unwrap().preset, Preset::Strict);
        assert_eq!(Policy::from_json(b"").unwrap().preset, Preset::Balanced);
        assert_eq!(Policy::from_json(br#"{"preset":"permissive"}"#).unwrap().limits.max_no_progress, 4);
    }

    #[test]
    fn refuses_with_a_path() {
        let e = Policy::from_json(br#"{"loops":{"max_identicl":3}}"#).unwrap_err();
        assert_eq!(e.path, "loops.max_identicl");
        assert!(e.message.contains("max_identicl"), "{e}");
        let e = Policy::from_json(br#"{"loops":{"max_identical":1000}}"#).unwrap_err();
        assert_eq!(e.path, "loops.max_identical");
        let e = Policy::from_json(br#"{"tools":[{"name":"a"},{"name":"b","colour":1}]}"#).unwrap_err();
        assert_eq!(e.path, "tools[1].colour");
        let e = Policy::from_json(br#"{"budget":{"max_calls":"many"}}"#).unwrap_err();
        assert_eq!(e.path, "budget.max_calls");
        let e = Policy::from_json(br#"{"verbose":true}"#).unwrap_err();
        assert_eq!(e.path, "verbose");
    }

    #[test]
    fn globs() {
        assert!(glob_match("*", "anything"));
        assert!(glob_match("fs_*", "fs_read"));
        assert!(!glob_match("fs_*", "net_read"));
        assert!(glob_match("get_?", "get_x"));
        assert!(glob_match("*_file*", "read_file_v2"));
    }

    #[test]
    fn most_specific_entry_wins() {
        let p = Policy::from_json(br#"{"tools":[
            {"name":"exact_tool","max_identical":5},
            {"name":"exact_*","max_identical":7,"effect":"read"},
            {"name":"*","max_identical":9}]}"#).unwrap();
        let r = p.resolve("exact_tool");
        assert_eq!(r.limits.max_identical, 5);
        assert_eq!(r.effect, Some(Effect::Read));
        assert_eq!(p.resolve("exact_other").limits.max_identical, 7);
        assert_eq!(p.resolve("other").limits.max_identical, 9);
    }

    /// The names serde lists for an unknown key of a section.
    fn accepted(doc: &str) -> Vec<String> {
        let e = Policy::from_json(doc.as_bytes()).unwrap_err();
        let list = e.message.split("expected one of ").nth(1).unwrap_or_else(|| panic!("{e}"));
        list.split(", ").map(|k| k.trim_matches('`').to_string()).collect()
    }

    #[test]
    fn mode_is_enforce_or_observe() {
        assert!(!Policy::from_json(b"balanced").unwrap().observe);
        assert!(!Policy::from_json(br#"{"mode":"enforce"}"#).unwrap().observe);
        let p = Policy::from_json(br#"{"preset":"strict","mode":"observe"}"#).unwrap();
        assert!(p.observe && p.preset == Preset::Strict);
        for bad in [r#"{"mode":"shadow"}"#, r#"{"mode":true}"#] {
            let e = Policy::from_json(bad.as_bytes()).unwrap_err();
            assert_eq!(e.path, "mode", "{e}");
            assert!(e.message.contains("\"observe\""), "{e}");
        }
    }

    #[test]
    fn key_lists_are_what_the_parser_accepts() {
        assert_eq!(accepted(r#"{"loops":{"zz":1}}"#), LOOPS_KEYS);
        assert_eq!(accepted(r#"{"budget":{"zz":1}}"#), BUDGET_KEYS);
        assert_eq!(accepted(r#"{"tools":[{"name":"a","zz":1}]}"#), TOOL_KEYS);
        assert_eq!(accepted(r#"{"tools":[{"name":"a","rules":[{"zz":1}]}]}"#), RULE_KEYS);
        let e = Policy::from_json(br#"{"zz":1}"#).unwrap_err();
        assert!(e.message.ends_with(&TOP_LEVEL_KEYS.join(", ")), "{e}");
    }

    #[test]
    fn rules_are_checked_one_by_one() {
        let err = |doc: &str| Policy::from_json(doc.as_bytes()).unwrap_err();
        let e = err(r#"{"tools":[{"name":"a","rules":[{"field":"/x","equals":1},{"field":"/x","colour":1}]}]}"#);
        assert_eq!(e.path, "tools[0].rules[1].colour");
        let e = err(r#"{"tools":[{"name":"a","rules":[{"field":"/x"}]}]}"#);
        assert_eq!(e.path, "tools[0].rules[0]");
        assert!(e.message.contains("no condition"), "{e}");
        let e = err(r#"{"tools":[{"name":"a","rules":[{"field":"/a~2","equals":1}]}]}"#);
        assert_eq!(e.path, "tools[0].rules[0].field");
        let p = Policy::from_json(br#"{"tools":[{"name":"a","rules":[{"field":"/x","equals":null}]}]}"#).unwrap();
        assert_eq!(p.tools[0].rules[0].equals, Some(Value::Null));
        assert_eq!(p.tools[0].rules[0].id_or_default(0, 0), "tools[0].rules[0]");
    }
}
