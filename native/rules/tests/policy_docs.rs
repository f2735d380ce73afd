//! `docs/policy.md` documents every key the parser accepts (and no key it does not), and its
//! table of preset thresholds is the code's.

use std::collections::BTreeSet;
use std::path::PathBuf;

use microloop_core::policy::{Limits, BUDGET_KEYS, LOOPS_KEYS, RULE_KEYS, TOOL_KEYS, TOP_LEVEL_KEYS};
use microloop_core::Preset;

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

fn preset_row(p: Preset, key: &str) -> u32 {
    let l: Limits = p.limits();
    match key {
        "max_identical" => l.max_identical,
        "max_no_progress" => l.max_no_progress,
        "max_transient_retries" => l.max_transient_retries,
        "max_consecutive_errors" => l.max_consecutive_errors,
        "max_same_error" => l.max_same_error,
        "max_near_duplicate" => l.max_near_duplicate,
        "max_near_errors" => l.max_near_errors,
        "max_cycle_period" => l.max_cycle_period,
        "max_cycle_repeats" => l.max_cycle_repeats,
        "max_blocked" => p.max_blocked(),
        other => panic!("the preset table has an unknown row `{other}`"),
    }
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

#[test]
fn the_preset_table_is_the_code() {
    let doc = doc();
    let table = doc.split("## Presets: the loop thresholds").nth(1).unwrap().split("\n## ").next().unwrap();
    let mut rows = 0;
    for line in table.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        let key = cells[0].trim_matches('`');
        for (i, p) in [Preset::Strict, Preset::Balanced, Preset::Permissive].into_iter().enumerate() {
            assert_eq!(cells[i + 1], preset_row(p, key).to_string(), "{key} in {}", p.name());
        }
        rows += 1;
    }
    assert_eq!(rows, 10, "one row per threshold and max_blocked");
}
