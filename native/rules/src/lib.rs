//! MicroLoop's rule engine: the argument rules of a policy, compiled once when it is loaded.
//!
//! The core (`microloop-core`) is `no_std`; it parses and validates the policy's structure and
//! asks an [`ArgRules`] for the verdict on a call's arguments. This crate is that `ArgRules`:
//!
//! * a **JSON Schema** per `[[tools]]` entry (drafts 4, 6, 7, 2019-09 and 2020-12, chosen by
//!   `$schema`, 2020-12 when absent), compiled with the `jsonschema` crate using the linear-time
//!   `regex` engine for `pattern`, and with `format` asserted in every draft;
//! * **field rules** on a JSON Pointer: `deny_regex`, `require_regex` (the `regex` crate: matching
//!   is linear in the argument, so no argument can make a check hang), `allow_values`,
//!   `deny_values`, `equals`;
//! * the policy's extra result masks (`loops.mask_patterns`).
//!
//! Anything broken (a bad regex, a bad schema) is refused by [`compile`] with the path of the
//! entry at fault (`tools[2].rules[0].deny_regex`), never at call time.
//!
//! For one call, every schema of the entries that apply to the tool is checked before any field
//! rule; the first rule broken is the verdict's rule.
//!
//! Rules read the arguments as the core parsed them while hashing them (a
//! [`microloop_core::doc::Node`] of a document borrowing from the arguments' text): schemas through
//! `jsonschema`'s custom-representation interface ([`Tape`]), field rules as a tree of pointer
//! tokens, so an object's members are read once for all the fields under it. No
//! `serde_json::Value` is built per call.
//!
//! ```
//! use std::sync::Arc;
//! use microloop_core::{Action, Session};
//!
//! let policy = microloop_rules::load_toml(r#"
//!     [[tools]]
//!     name = "run_sql"
//!     rules = [ { id = "no-drop", field = "/sql", deny_regex = '(?i)\bdrop\s+table\b' } ]
//! "#).unwrap();
//! let mut session = Session::new(Arc::new(microloop_rules::compile(policy).unwrap()));
//! let v = session.check("run_sql", br#"{"sql": "DROP TABLE users"}"#, 0).unwrap();
//! assert_eq!(v.action, Action::Block);
//! assert_eq!(v.rule, "no-drop");
//! ```

use std::borrow::Cow;
use std::fmt::Write as _;

use jsonschema::{PatternOptions, Validator};
use microloop_core::doc::{Kind, Node, Num};
use microloop_core::policy::{FieldRule, ToolPolicy};
use microloop_core::{ArgRules, Engine, Policy, PolicyError, Preset, RuleHit};
use regex::{Regex, RegexBuilder};
use serde_json::Value;

/// The text that replaces a match of a `loops.mask_patterns` regex in a result.
pub const MASK: &[u8] = b"<masked>";

/// Largest compiled regex, in bytes: bounds the memory a policy's regexes take.
pub const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Longest argument value quoted in a block message; longer ones are cut.
const QUOTE_MAX: usize = 80;

/// Parses a policy written in TOML (or a bare preset name) into a validated [`Policy`]. The keys
/// and their meaning are those of the JSON document; see `docs/policy.md`.
pub fn load_toml(text: &str) -> Result<Policy, PolicyError> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Ok(Policy::default());
    }
    if let Some(p) = Preset::from_name(trimmed) {
        return Ok(Policy::preset(p));
    }
    let value: Value = toml::from_str(text)
        .map_err(|e| PolicyError::new("", format!("the policy is not valid TOML: {}", e.to_string().trim_end())))?;
    Policy::from_value(value)
}

/// Compiles a policy's schemas, field rules and mask patterns into an engine.
pub fn compile(policy: Policy) -> Result<Engine, PolicyError> {
    if policy.mask_patterns.is_empty() && !policy.tools.iter().any(ToolPolicy::has_rules) {
        return Engine::new(policy);
    }
    let rules = Rules::new(&policy)?;
    Ok(Engine::with_rules(policy, Box::new(rules)))
}

/// The compiled argument rules of a policy.
pub struct Rules {
    /// One per `policy.tools` entry, by index.
    tools: Vec<ToolRules>,
    masks: Vec<regex::bytes::Regex>,
}

mod tape;
pub use tape::Tape;

#[derive(Default)]
struct ToolRules {
    schema: Option<(String, Validator<Tape>)>,
    /// In the policy's order: what a verdict names and says of each rule.
    rules: Vec<CompiledRule>,
    /// The fields the rules are on, as a tree of pointer tokens, each with the tests of its rules:
    /// each field is looked up once per call, however many rules are on it or under it.
    tree: Field,
}

/// No rule: the rule index of [`First`] while nothing is broken, of [`Field::missing`] when a
/// missing field breaks nothing.
const NONE: u32 = u32::MAX;

/// A field of the arguments that rules are on (the arguments themselves at the root), and the
/// fields under it that rules are on.
#[derive(Default)]
struct Field {
    /// The step from the parent (empty at the root).
    key: String,
    /// The list index `key` also names.
    index: Option<usize>,
    /// The probe of `key`, to tell this field among an object's members.
    name: Probe,
    /// The tests of all the rules on this field as one list: rule by rule in the policy's order,
    /// each rule's in its checking order. One pass over it checks the field.
    tests: Vec<RuleTest>,
    /// The first rule, in the policy's order, that breaks when this field is missing: on it or
    /// on a field under it (which is then missing too); [`NONE`] when none does.
    missing: u32,
    children: Vec<Field>,
    /// Which of `children` an object member is.
    names: Names,
}

/// One test of a rule, in a field's list.
struct RuleTest {
    /// The rule's index in the policy's order.
    rule: u32,
    test: Test,
}

/// The first broken rule found so far, in the policy's order: while a call's fields are checked,
/// rules after it need not be checked.
struct First<'a> {
    /// The rule's index; [`NONE`] while none is broken.
    rule: u32,
    broken: Option<Broken<'a>>,
}

impl<'a> First<'a> {
    #[cold]
    fn set(&mut self, rule: u32, broken: Broken<'a>) {
        self.rule = rule;
        self.broken = Some(broken);
    }
}

impl Field {
    fn insert(&mut self, path: Vec<Token>, rule: u32, tests: Vec<Test>, required: bool) {
        let mut at = self;
        for t in path {
            let i = match at.children.iter().position(|c| c.key == t.key) {
                Some(i) => i,
                None => {
                    at.children.push(Field {
                        name: Probe::of(t.key.as_bytes()),
                        key: t.key,
                        index: t.index,
                        missing: NONE,
                        ..Field::default()
                    });
                    at.children.len() - 1
                }
            };
            at = &mut at.children[i];
        }
        at.tests.extend(tests.into_iter().map(|test| RuleTest { rule, test }));
        if required {
            at.missing = at.missing.min(rule);
        }
    }

    /// Once every rule is in: each field's `missing` covers the fields under it, and each
    /// level's member-name table is built.
    fn finish(&mut self) {
        for c in &mut self.children {
            c.finish();
            self.missing = self.missing.min(c.missing);
        }
        self.names = Names::new(&self.children);
    }

    /// Checks the rules on this field, present as `here`, and under it; keeps in `first` the
    /// broken rule that comes first in the policy.
    fn walk<'a>(&'a self, here: Node<'a>, first: &mut First<'a>) {
        if self.tests.first().is_some_and(|t| t.rule < first.rule) {
            self.judge(Arg::of(here), first);
        }
        if self.children.is_empty() {
            return;
        }
        match here.kind() {
            // The members of an object are read in one pass for all the fields under it (the
            // last of a repeated name wins, as in serde_json), instead of one lookup per field.
            Kind::Object if self.children.len() <= FEW => {
                let mut found: [Option<Node<'a>>; FEW] = [None; FEW];
                for (name, value) in here.members() {
                    if let Some(i) = self.names.find(name.as_bytes(), &self.children) {
                        found[i] = Some(value);
                    }
                }
                for (c, there) in self.children.iter().zip(&found) {
                    match *there {
                        Some(v) => c.walk(v, first),
                        None => c.absent(first),
                    }
                }
            }
            Kind::Object | Kind::Array => {
                for c in &self.children {
                    match step(here, &c.key, c.index) {
                        Some(v) => c.walk(v, first),
                        None => c.absent(first),
                    }
                }
            }
            _ => self.children.iter().for_each(|c| c.absent(first)),
        }
    }

    /// This field is missing (and so is everything under it).
    #[inline]
    fn absent(&self, first: &mut First<'_>) {
        if self.missing < first.rule {
            first.set(self.missing, Broken { index: None, why: Why::Missing });
        }
    }

    /// The tests on this field, in order, until one breaks or the rest are of rules after
    /// `first`. Strings and numbers, the usual values, are compared with value lists without
    /// dispatching on their kind each time.
    #[inline]
    fn judge<'a>(&'a self, v: Arg<'a>, first: &mut First<'a>) {
        match v {
            Arg::Str(s) => {
                let probe = Probe::of(s.as_bytes());
                self.judge_with(v, first, |values| values.contain_string(s.as_bytes(), probe))
            }
            Arg::Num(n) => self.judge_with(v, first, |values| values.numbers.contain(n)),
            Arg::List(list) => {
                for t in &self.tests {
                    if t.rule >= first.rule {
                        return;
                    }
                    if let Some(broken) = t.test.find_in_list(list) {
                        return first.set(t.rule, broken);
                    }
                }
            }
            _ => self.judge_with(v, first, |values| values.contain(v)),
        }
    }

    /// [`Field::judge`] on a value that is not a list, with `contain`, which is
    /// [`Values::contain`] for `v`.
    #[inline(always)]
    fn judge_with<'a>(&'a self, v: Arg<'a>, first: &mut First<'a>, contain: impl Fn(&Values) -> bool) {
        for t in &self.tests {
            if t.rule >= first.rule {
                return;
            }
            let broken = match &t.test {
                Test::Deny(deny) => contain(deny),
                Test::DenyRegex(re) => v.matches(re),
                Test::Allow(allow) => !contain(allow),
                Test::Equals(want) => !contain(want),
                Test::Require(re) => !v.matches(re),
            };
            if broken {
                return first.set(t.rule, Broken { index: None, why: t.test.why(v) });
            }
        }
    }
}

/// Fields under one field looked up together in one pass over an object's members; a field
/// with more is looked up member by member.
const FEW: usize = 12;

/// Which of a level's fields an object member is, found with a table: a hash of the name's
/// length and first and last bytes picks a slot, which names the one field that may have that
/// name (a perfect hash of the level's names, chosen at load). Most members that are not
/// fields land on an empty slot; a hit is confirmed by comparing the names. A level whose names
/// no table tells apart (the same length and ends) compares each member with each field.
#[derive(Default)]
struct Names {
    /// A field's index plus one, or 0; empty when the level has no table.
    slots: Box<[u8]>,
    seed: u32,
    /// 32 minus the slots' bits.
    shift: u32,
}

impl Names {
    fn new(fields: &[Field]) -> Names {
        if fields.is_empty() || fields.len() > FEW {
            return Names::default();
        }
        let least = (fields.len() * 2).next_power_of_two().trailing_zeros().max(2);
        for bits in least..=8 {
            for k in 0..256u32 {
                let seed = 0x9E37_79B1u32.wrapping_add(k.wrapping_mul(0x632B_E5AA));
                let shift = 32 - bits;
                let mut slots = vec![0u8; 1 << bits];
                let fits = fields.iter().enumerate().all(|(i, f)| {
                    let s = &mut slots[Self::slot(f.key.as_bytes(), seed, shift)];
                    let free = *s == 0;
                    *s = i as u8 + 1;
                    free
                });
                if fits {
                    return Names { slots: slots.into_boxed_slice(), seed, shift };
                }
            }
        }
        Names::default()
    }

    #[inline(always)]
    fn slot(name: &[u8], seed: u32, shift: u32) -> usize {
        let ends = match name {
            [] => 0,
            [a, .., b] => u32::from(*a) << 8 | u32::from(*b),
            [a] => u32::from(*a) << 8 | u32::from(*a),
        };
        let key = (name.len() as u32) << 16 ^ ends;
        (key.wrapping_mul(seed) >> shift) as usize
    }

    /// The index in `fields` (the level's fields, those the table was built for) of the field
    /// named `name`, if any.
    #[inline]
    fn find(&self, name: &[u8], fields: &[Field]) -> Option<usize> {
        let probe = || Probe::of(name);
        if self.slots.is_empty() {
            let p = probe();
            return fields.iter().position(|f| f.name.same(f.key.as_bytes(), p, name));
        }
        let i = usize::from(*self.slots.get(Self::slot(name, self.seed, self.shift))?).checked_sub(1)?;
        let f = fields.get(i)?;
        f.name.same(f.key.as_bytes(), probe(), name).then_some(i)
    }
}

/// A string's length and its first and last (up to) eight bytes, read as integers: together
/// they are the whole of a string of up to 16 bytes, and tell most longer ones apart. Member
/// names and listed values are short, so comparing them is mostly comparing probes.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
struct Probe {
    len: usize,
    head: u64,
    tail: u64,
}

impl Probe {
    fn of(b: &[u8]) -> Probe {
        let n = b.len();
        // The first and last bytes, overlapping when the string is shorter than two words.
        let (head, tail) = if n >= 8 {
            (u64::from_le_bytes(word(&b[..8])), u64::from_le_bytes(word(&b[n - 8..])))
        } else if n >= 4 {
            (u32::from_le_bytes(word(&b[..4])).into(), u32::from_le_bytes(word(&b[n - 4..])).into())
        } else if n >= 2 {
            (u16::from_le_bytes(word(&b[..2])).into(), u16::from_le_bytes(word(&b[n - 2..])).into())
        } else {
            (b.first().copied().unwrap_or(0).into(), 0)
        };
        Probe { len: n, head, tail }
    }

    /// Whether `a`, whose probe this is, and `b`, whose probe is `other`, are the same bytes.
    /// The probe of a string of up to 16 bytes covers all of it; longer strings with the same
    /// probe also need the rest compared.
    #[inline]
    fn same(self, a: &[u8], other: Probe, b: &[u8]) -> bool {
        self == other && (self.len <= 16 || a.get(8..) == b.get(8..))
    }
}

/// `N` bytes as an array (`b` is exactly that long).
fn word<const N: usize>(b: &[u8]) -> [u8; N] {
    b.try_into().unwrap_or([0; N])
}

/// What a verdict names and says of a rule (its tests are in the [`Field`] it is on).
struct CompiledRule {
    id: String,
    pointer: String,
    message: Option<String>,
    /// What the field must be, said when it is missing (`it must be "USD"`); empty when a
    /// missing field does not break the rule.
    wanted: String,
}

/// One of the things a rule asks of a field.
enum Test {
    Deny(Values),
    DenyRegex(Regex),
    Allow(Values),
    Equals(Values),
    Require(Regex),
}

impl Rules {
    /// Compiles every schema, regex and mask of `policy`.
    pub fn new(policy: &Policy) -> Result<Rules, PolicyError> {
        let tools = policy
            .tools
            .iter()
            .enumerate()
            .map(|(i, t)| compile_tool(t, i))
            .collect::<Result<Vec<_>, _>>()?;
        let masks = policy
            .mask_patterns
            .iter()
            .enumerate()
            .map(|(i, p)| {
                regex::bytes::RegexBuilder::new(p)
                    .size_limit(REGEX_SIZE_LIMIT)
                    .build()
                    .map_err(|e| PolicyError::new(format!("loops.mask_patterns[{i}]"), regex_error(p, e)))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Rules { tools, masks })
    }
}

fn compile_tool(t: &ToolPolicy, i: usize) -> Result<ToolRules, PolicyError> {
    let path = format!("tools[{i}]");
    let schema = match &t.schema {
        None => None,
        Some(s) => {
            let v = jsonschema::options_for::<Tape>()
                .with_pattern_options(PatternOptions::regex())
                .should_validate_formats(true)
                .build(s)
                .map_err(|e| {
                    let at = e.instance_path();
                    let msg = if let jsonschema::error::ValidationErrorKind::Referencing(r) = e.kind() {
                        let text = r.to_string();
                        let what = text.split(" and retrieving it failed").next().unwrap_or(&text);
                        format!("not a valid JSON Schema: {what}; references outside the schema are never fetched, put the definitions under `$defs`")
                    } else if at.as_str().is_empty() {
                        format!("not a valid JSON Schema: {e}")
                    } else {
                        format!("not a valid JSON Schema: at `{at}`: {e}")
                    };
                    PolicyError::new(format!("{path}.schema"), msg)
                })?;
            Some((t.schema_id.clone().unwrap_or_else(|| "schema".to_string()), v))
        }
    };
    let mut rules = Vec::with_capacity(t.rules.len());
    let mut tree = Field { missing: NONE, ..Field::default() };
    for (j, r) in t.rules.iter().enumerate() {
        let (rule, tests, required) = compile_rule(r, i, j)?;
        tree.insert(tokens(&r.field), j as u32, tests, required);
        rules.push(rule);
    }
    tree.finish();
    Ok(ToolRules { schema, rules, tree })
}

/// A rule: what a verdict says of it, its tests in checking order, and whether a missing field
/// breaks it.
fn compile_rule(r: &FieldRule, i: usize, j: usize) -> Result<(CompiledRule, Vec<Test>, bool), PolicyError> {
    let at = |key: &str| format!("tools[{i}].rules[{j}].{key}");
    let regex = |key: &str, p: &Option<String>| -> Result<Option<Regex>, PolicyError> {
        p.as_deref()
            .map(|p| RegexBuilder::new(p).size_limit(REGEX_SIZE_LIMIT).build().map_err(|e| PolicyError::new(at(key), regex_error(p, e))))
            .transpose()
    };
    let deny_regex = regex("deny_regex", &r.deny_regex)?;
    let require_regex = regex("require_regex", &r.require_regex)?;
    // What is checked, in this order: `deny_values`, `deny_regex`, `allow_values`, `equals`,
    // `require_regex` (most rules ask one thing).
    let tests: Vec<Test> = [
        r.deny_values.as_deref().map(|v| Test::Deny(Values::new(v))),
        deny_regex.map(Test::DenyRegex),
        r.allow_values.as_deref().map(|v| Test::Allow(Values::new(v))),
        r.equals.as_ref().map(|v| Test::Equals(Values::new(std::slice::from_ref(v)))),
        require_regex.map(Test::Require),
    ]
    .into_iter()
    .flatten()
    .collect();
    // With only denials, a missing field has nothing denied.
    let required = !r.optional && (r.allow_values.is_some() || r.equals.is_some() || r.require_regex.is_some());
    let wanted = match (&r.equals, &r.allow_values, &r.require_regex) {
        _ if !required => String::new(),
        (Some(v), _, _) => format!("it must be {}", quote(v)),
        (None, Some(a), _) => format!("it must be one of {}", list(a)),
        (None, None, require) => format!("it must match `{}`", require.as_deref().unwrap_or("")),
    };
    let rule = CompiledRule { id: r.id_or_default(i, j), pointer: r.field.clone(), message: r.message.clone(), wanted };
    Ok((rule, tests, required))
}

/// The values of an `allow_values`, `deny_values` or `equals`, as written (for messages) and
/// sorted by kind, unpacked once at load, to compare with.
#[derive(Default)]
struct Values {
    json: Vec<Value>,
    strings: Vec<(Probe, String)>,
    numbers: Numbers,
    /// Whether `false`, `true` are among them.
    bools: [bool; 2],
    null: bool,
    /// Lists and objects.
    others: Vec<Value>,
}

impl Values {
    fn new(values: &[Value]) -> Values {
        let mut v = Values { json: values.to_vec(), ..Values::default() };
        for x in values {
            match x {
                Value::Null => v.null = true,
                Value::Bool(b) => v.bools[*b as usize] = true,
                Value::String(s) => v.strings.push((Probe::of(s.as_bytes()), s.clone())),
                Value::Number(n) => v.numbers.push(Num::of(n)),
                other => v.others.push(other.clone()),
            }
        }
        v
    }

    /// Whether `v` equals one of the values (JSON equality, numbers by value).
    fn contain(&self, v: Arg) -> bool {
        match v {
            Arg::Str(s) => self.contain_string(s.as_bytes(), Probe::of(s.as_bytes())),
            Arg::Num(n) => self.numbers.contain(n),
            Arg::Bool(b) => self.bools[b as usize],
            Arg::Null => self.null,
            Arg::List(v) | Arg::Object(v) => self.others.iter().any(|o| v.same(o)),
        }
    }

    /// [`Values::contain`] for a string (`s`, whose probe is `probe`).
    #[inline(always)]
    fn contain_string(&self, s: &[u8], probe: Probe) -> bool {
        self.strings.iter().any(|(p, x)| p.same(x.as_bytes(), probe, s))
    }
}

/// The numbers of a [`Values`], split so that comparing an integer with them is integer
/// comparison, as [`Num::same`] defines it: two integers are equal when they are the same
/// integer; as soon as one of two numbers is a float, both compare as `f64`.
#[derive(Default)]
struct Numbers {
    /// The integers from 0 to 63 among them, one bit each: most lists are of small integers.
    small: u64,
    /// The other integers.
    ints: Vec<i128>,
    /// The floats among them (what an integer argument compares with as `f64`).
    floats: Vec<f64>,
    /// All of them as `f64` (what a float argument compares with).
    all: Vec<f64>,
}

impl Numbers {
    fn push(&mut self, n: Num) {
        self.all.push(n.as_f64());
        match Self::integer(n) {
            Some(i @ 0..=63) => self.small |= 1 << i,
            Some(i) => self.ints.push(i),
            None => self.floats.push(n.as_f64()),
        }
    }

    /// `n` as an exact integer, when it is one (`None` for floats, even integral ones).
    fn integer(n: Num) -> Option<i128> {
        match n {
            Num::U64(u) => Some(u.into()),
            Num::I64(i) => Some(i.into()),
            Num::F64(_) => None,
        }
    }

    /// Whether one of the numbers is the same value as `n` ([`Num::same`]).
    #[inline(always)]
    fn contain(&self, n: Num) -> bool {
        match Self::integer(n) {
            Some(i @ 0..=63) => self.small & (1 << i) != 0 || self.has_float(n),
            Some(i) => self.ints.contains(&i) || self.has_float(n),
            None => {
                let x = n.as_f64();
                self.all.contains(&x)
            }
        }
    }

    fn has_float(&self, n: Num) -> bool {
        !self.floats.is_empty() && {
            let x = n.as_f64();
            self.floats.contains(&x)
        }
    }
}

/// A field's value, decoded once for all the rules on it (a document's node is decoded on each
/// access).
#[derive(Clone, Copy)]
enum Arg<'a> {
    Null,
    Bool(bool),
    Num(Num),
    Str(&'a str),
    List(Node<'a>),
    Object(Node<'a>),
}

impl<'a> Arg<'a> {
    fn of(v: Node<'a>) -> Arg<'a> {
        match v.kind() {
            Kind::Null => Arg::Null,
            Kind::Bool => Arg::Bool(v.as_bool().unwrap_or_default()),
            Kind::Number => Arg::Num(v.as_number().unwrap_or(Num::U64(0))),
            Kind::String => Arg::Str(v.as_str().unwrap_or_default()),
            Kind::Array => Arg::List(v),
            Kind::Object => Arg::Object(v),
        }
    }

    /// Whether `re` matches the value: a string's content, or the compact JSON text of anything
    /// else (as [`Node::text`]).
    fn matches(self, re: &Regex) -> bool {
        match self {
            Arg::Str(s) => re.is_match(s),
            other => re.is_match(&other.to_value().to_string()),
        }
    }

    /// The value as a `serde_json::Value`, for messages (as [`Node::to_value`]).
    fn to_value(self) -> Value {
        match self {
            Arg::Null => Value::Null,
            Arg::Bool(b) => Value::Bool(b),
            Arg::Num(n) => Value::Number(n.to_number()),
            Arg::Str(s) => Value::String(s.to_string()),
            Arg::List(v) | Arg::Object(v) => v.to_value(),
        }
    }
}

/// One reference token of a JSON Pointer: an object key, and the list index it also names.
struct Token {
    key: String,
    index: Option<usize>,
}

fn tokens(pointer: &str) -> Vec<Token> {
    pointer
        .split('/')
        .skip(1)
        .map(|t| {
            let key = t.replace("~1", "/").replace("~0", "~");
            // RFC 6901: an index is `0` or digits without a leading zero.
            let index = if key == "0" || (!key.starts_with('0') && !key.is_empty() && key.bytes().all(|b| b.is_ascii_digit())) {
                key.parse().ok()
            } else {
                None
            };
            Token { key, index }
        })
        .collect()
}

/// The value one pointer token (`key`, and the list `index` it also names) leads to from `v`.
fn step<'v>(v: Node<'v>, key: &str, index: Option<usize>) -> Option<Node<'v>> {
    match v.kind() {
        Kind::Object => v.get(key),
        Kind::Array => v.index(index?),
        _ => None,
    }
}

#[cfg(test)]
fn lookup<'v>(v: Node<'v>, path: &[Token]) -> Option<Node<'v>> {
    path.iter().try_fold(v, |v, t| step(v, &t.key, t.index))
}

/// `regex`'s errors are several lines (the pattern, a caret, the error); the policy error keeps
/// the last one, which says what is wrong.
fn regex_error(pattern: &str, e: regex::Error) -> String {
    match e {
        regex::Error::Syntax(text) => {
            let why = text.lines().rev().find_map(|l| l.trim().strip_prefix("error: ")).unwrap_or(text.trim());
            format!("`{pattern}` is not a valid regex: {why}")
        }
        regex::Error::CompiledTooBig(limit) => {
            format!("`{pattern}` is too big once compiled (more than {limit} bytes); simplify it")
        }
        other => format!("`{pattern}` is not a valid regex: {other}"),
    }
}

impl ArgRules for Rules {
    fn check(&self, entry: usize, args: Node<'_>) -> Option<RuleHit> {
        let t = self.tools.get(entry)?;
        check_schema(t, args).or_else(|| check_fields(t, args))
    }

    fn check_call(&self, entries: &[usize], args: Node<'_>) -> Option<RuleHit> {
        let tools = || entries.iter().filter_map(|&e| self.tools.get(e));
        tools()
            .find_map(|t| check_schema(t, args))
            .or_else(|| tools().find_map(|t| check_fields(t, args)))
    }

    fn mask<'a>(&self, output: Cow<'a, [u8]>) -> Cow<'a, [u8]> {
        let mut out = output;
        for re in &self.masks {
            if let Cow::Owned(replaced) = re.replace_all(&out, MASK) {
                out = Cow::Owned(replaced);
            }
        }
        out
    }
}

fn check_schema(t: &ToolRules, args: Node<'_>) -> Option<RuleHit> {
    let (id, validator) = t.schema.as_ref()?;
    if validator.is_valid(args) {
        return None;
    }
    let e = validator.validate(args).err()?;
    let mut why = e.to_string();
    if why.len() > 2 * QUOTE_MAX {
        why = e.masked().to_string();
    }
    let path = e.instance_path();
    let at = if path.as_str().is_empty() { "the arguments".to_string() } else { format!("`{path}`") };
    Some(RuleHit {
        id: id.clone(),
        message: format!(
            "Blocked by rule `{id}`: the arguments do not match the tool's schema: at {at}, {why}. Fix the arguments to match the schema and call again."
        ),
    })
}

/// The first of `t`'s field rules, in the policy's order, that `args` break.
fn check_fields(t: &ToolRules, args: Node<'_>) -> Option<RuleHit> {
    let mut first = First { rule: NONE, broken: None };
    t.tree.walk(args, &mut first);
    let broken = first.broken?;
    Some(t.rules.get(first.rule as usize)?.hit(broken))
}

/// A value quoted in a message, cut to a readable length.
fn quote(v: &Value) -> String {
    let mut s = v.to_string();
    if s.len() > QUOTE_MAX {
        let mut cut = QUOTE_MAX;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
    s
}

fn list(values: &[Value]) -> String {
    let mut s = String::new();
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        let _ = write!(s, "{}", quote(v));
    }
    s
}

/// Why a field broke a rule: a rule on a list may name one of its elements (`index`).
struct Broken<'a> {
    index: Option<usize>,
    why: Why<'a>,
}

enum Why<'a> {
    Missing,
    Denied(Arg<'a>),
    Matches(Arg<'a>, &'a Regex),
    NotAllowed(Arg<'a>, &'a [Value]),
    NotEqual(Arg<'a>, &'a Value),
    NoMatch(Arg<'a>, &'a Regex),
}

impl Test {
    /// Why `v`, which broke the test, broke it.
    #[cold]
    fn why<'a>(&'a self, v: Arg<'a>) -> Why<'a> {
        match self {
            Test::Deny(_) => Why::Denied(v),
            Test::DenyRegex(re) => Why::Matches(v, re),
            Test::Allow(allow) => Why::NotAllowed(v, &allow.json),
            Test::Equals(want) => Why::NotEqual(v, &want.json[0]),
            Test::Require(re) => Why::NoMatch(v, re),
        }
    }

    /// What is wrong with a list, if anything: a test applies to each element, but a list that
    /// equals one of the test's values as a whole is judged as that value.
    #[inline]
    fn find_in_list<'a>(&'a self, list: Node<'a>) -> Option<Broken<'a>> {
        // Only listed lists and objects can equal a list: most value lists have none.
        match self {
            Test::Deny(deny) if !deny.others.is_empty() && deny.contain(Arg::List(list)) => {
                return Some(Broken { index: None, why: Why::Denied(Arg::List(list)) })
            }
            Test::Allow(want) | Test::Equals(want) if !want.others.is_empty() && want.contain(Arg::List(list)) => return None,
            _ => {}
        }
        for (i, x) in list.elements().enumerate() {
            let x = Arg::of(x);
            let broken = match self {
                Test::Deny(deny) => deny.contain(x),
                Test::DenyRegex(re) => x.matches(re),
                Test::Allow(want) | Test::Equals(want) => !want.contain(x),
                Test::Require(re) => !x.matches(re),
            };
            if broken {
                return Some(Broken { index: Some(i), why: self.why(x) });
            }
        }
        None
    }
}

impl CompiledRule {
    /// The verdict's rule and message for a field that broke the rule: built only then, out of
    /// the way of the checks that pass.
    #[cold]
    #[inline(never)]
    fn hit(&self, broken: Broken) -> RuleHit {
        let message = match &self.message {
            Some(m) => m.clone(),
            None => self.explain(broken.index, broken.why),
        };
        RuleHit { id: self.id.clone(), message }
    }

    fn explain(&self, index: Option<usize>, broken: Why) -> String {
        let id = &self.id;
        let at = match (self.pointer.is_empty(), index) {
            (true, None) => "the arguments".to_string(),
            (true, Some(i)) => format!("the argument `/{i}`"),
            (false, None) => format!("the argument `{}`", self.pointer),
            (false, Some(i)) => format!("the argument `{}/{i}`", self.pointer),
        };
        match broken {
            Why::Missing => format!("Blocked by rule `{id}`: {at} is missing, and {}. Call again with it.", self.wanted),
            Why::Denied(v) => format!(
                "Blocked by rule `{id}`: {at} may not be {}. Do not retry with this value; choose another, or tell the user it is not allowed.",
                quote(&v.to_value())
            ),
            Why::Matches(v, re) => format!(
                "Blocked by rule `{id}`: {at} ({}) matches the forbidden pattern `{}`. Do not retry it; find another way, or tell the user it is not allowed.",
                quote(&v.to_value()),
                re.as_str()
            ),
            Why::NotAllowed(v, allow) => format!(
                "Blocked by rule `{id}`: {at} is {}, which is not allowed; the allowed values are {}. Call again with one of them.",
                quote(&v.to_value()),
                list(allow)
            ),
            Why::NotEqual(v, want) => format!(
                "Blocked by rule `{id}`: {at} must be {}, not {}. Call again with {}.",
                quote(want),
                quote(&v.to_value()),
                quote(want)
            ),
            Why::NoMatch(v, re) => format!(
                "Blocked by rule `{id}`: {at} ({}) does not match the required pattern `{}`. Fix it and call again.",
                quote(&v.to_value()),
                re.as_str()
            ),
        }
    }
}

#[cfg(test)]
mod tests;
