//! `docs/policy.md` documents every key the parser accepts (and no key it does not), and its
//! table of preset thresholds is the code's.

use std::collections::BTreeSet;
use std::path::PathBuf;

use microloop_core::policy::{Limits, BUDGET_KEYS, LOOPS_KEYS, RULE_KEYS, TOOL_KEYS, TOP_LEVEL_KEYS};
use microloop_core::{Preset, Threshold, THRESHOLDS};

fn doc() -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/policy.md");
    std::fs::read_to_string(path).unwrap()
}

/// The first cell of every table row that names a key: "| `loops.window` | ..." → "loops.window".
fn documented_keys(doc: &str) -> BTreeSet<String> {
    doc.lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split_once("` |").map(|(k, _)| k.to_string()))
        .collect()
}

fn accepted_keys() -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    let sections: [(&str, &[&str]); 5] = [
        ("", TOP_LEVEL_KEYS),
        ("loops.", LOOPS_KEYS),
        ("budget.", BUDGET_KEYS),
        ("tools[].", TOOL_KEYS),
        ("tools[].rules[].", RULE_KEYS),
    ];
    for (prefix, list) in sections {
        keys.extend(list.iter().map(|k| format!("{prefix}{k}")));
    }
    keys
}

#[test]
fn every_accepted_key_is_documented_and_nothing_else() {
    let documented = documented_keys(&doc());
    let accepted = accepted_keys();
    // Rows of the preset table are bare threshold names, checked by the next test.
    let documented: BTreeSet<String> =
        documented.into_iter().filter(|k| k.contains('.') || TOP_LEVEL_KEYS.contains(&k.as_str())).collect();
    let missing: Vec<_> = accepted.difference(&documented).collect();
    let unknown: Vec<_> = documented.difference(&accepted).collect();
    assert!(missing.is_empty(), "keys the parser accepts but docs/policy.md does not document: {missing:?}");
    assert!(unknown.is_empty(), "keys docs/policy.md documents but the parser does not accept: {unknown:?}");
}

/// The docs' rows and the Python module generated from the table of thresholds
/// (`microloop_core::THRESHOLDS`). `MICROLOOP_BLESS=1` rewrites them; otherwise any difference fails.
fn bless() -> bool {
    std::env::var_os("MICROLOOP_BLESS").is_some_and(|v| v == "1")
}

fn off(v: u32) -> &'static str {
    if v == 0 { " (off)" } else { "" }
}

/// Per threshold: the preset table's row, the `[loops]` row and the `[[tools]]` row.
fn generated_rows(t: &Threshold) -> [(String, String); 3] {
    let [s, b, p] = t.presets;
    let default = if s == b && b == p { s.to_string() } else { "preset table".to_string() };
    let (key, [le, te]) = (t.key, t.examples);
    [
        (format!("| `{key}` |"), format!("| `{key}` | {s} | {b} | {p} |")),
        (
            format!("| `loops.{key}` |"),
            format!("| `loops.{key}` | {} | {default} | `{}`: {} Example: `{key} = {le}`{}. |", t.accepts, t.rule, t.meaning, off(le)),
        ),
        (
            format!("| `tools[].{key}` |"),
            format!("| `tools[].{key}` | {} | `loops.{key}` | Per-tool override. Example: `{key} = {te}`{}. |", t.accepts, off(te)),
        ),
    ]
}

fn python_module() -> String {
    let mut out = String::from(
        "\"\"\"The loop thresholds, generated from the table in native/core/src/policy.rs (`THRESHOLDS`) by\n\
         native/rules/tests/policy_docs.rs: `MICROLOOP_BLESS=1 cargo test -p microloop-rules --test policy_docs`.\n\
         Do not edit.\"\"\"\n\
         # ruff: noqa: E501\n\n\
         from typing import Dict, Tuple\n\n\
         #: key -> (the rule it sets, its value in strict, balanced and permissive, what it counts)\n\
         THRESHOLDS: Dict[str, Tuple[str, Tuple[int, int, int], str]] = {\n",
    );
    for t in THRESHOLDS {
        let [s, b, p] = t.presets;
        out.push_str(&format!("    {:?}: ({:?}, ({s}, {b}, {p}), {:?}),\n", t.key, t.rule.name(), t.meaning));
    }
    out.push_str("}\n");
    out
}

#[test]
fn the_docs_threshold_rows_are_generated_from_the_table() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/policy.md");
    let doc = doc();
    let mut lines: Vec<String> = doc.lines().map(str::to_string).collect();
    let mut stale = Vec::new();
    for t in THRESHOLDS {
        for (prefix, row) in generated_rows(t) {
            let at: Vec<usize> = (0..lines.len()).filter(|&i| lines[i].starts_with(&prefix)).collect();
            assert_eq!(at.len(), 1, "docs/policy.md has {} rows starting {prefix}", at.len());
            if lines[at[0]] != row {
                stale.push(prefix);
                lines[at[0]] = row;
            }
        }
    }
    if bless() && !stale.is_empty() {
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    } else {
        assert!(stale.is_empty(), "docs/policy.md differs from THRESHOLDS in {stale:?}; rerun with MICROLOOP_BLESS=1 to regenerate");
    }
    // The preset table's last row is not a loop threshold.
    let row = format!("| `max_blocked` | {} | {} | {} |", Preset::Strict.max_blocked(), Preset::Balanced.max_blocked(), Preset::Permissive.max_blocked());
    assert!(doc.lines().any(|l| l == row), "docs/policy.md lacks {row}");
}

#[test]
fn the_python_thresholds_are_generated_from_the_table() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../microloop/_thresholds.py");
    let want = python_module();
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    if bless() && have != want {
        std::fs::write(&path, &want).unwrap();
    } else {
        assert_eq!(have, want, "microloop/_thresholds.py differs from THRESHOLDS; rerun with MICROLOOP_BLESS=1 to regenerate");
    }
}

#[test]
fn the_presets_are_the_table() {
    for (i, p) in Preset::ALL.into_iter().enumerate() {
        let limits: Limits = p.limits();
        for (t, v) in limits.values() {
            assert_eq!(v, t.presets[i], "{} in {}", t.key, p.name());
            assert_eq!(limits.get(t.key), Some(v));
        }
    }
    assert_eq!(THRESHOLDS.len(), 9);
}
