//! Replays the labelled agent runs of `../shared/realtraj-dev/` through a session and prints, per
//! preset, how many loops are blocked (at or after `loop_start`) and how many legitimate runs are
//! wrongly blocked, beside the exact-match-only baseline (`max_near_duplicate = 0`,
//! `max_near_errors = 0`), as `bench/realtraj.py` does.
//!
//! ```text
//! cargo run --release --manifest-path native/Cargo.toml -p microloop-core --example realtraj [-- -v]
//! ```
//!
//! The runs are read at run time from `$MICROLOOP_REALTRAJ`, else from `../shared/realtraj-dev`
//! beside the repository; they are never copied into the project. Each step is checked; when it
//! may run, its recorded result is recorded. `-v` prints each run's first block.

use std::path::PathBuf;
use std::sync::Arc;

use microloop_core::sketch::Sketch;
use microloop_core::{canon, mask, Engine, Policy, Session};
use serde_json::Value;

struct Replay {
    /// The first blocked (or halted) step: index, rule, message.
    first_block: Option<(usize, String, String)>,
    /// The first block at or after `loop_start`.
    caught_at: Option<usize>,
}

fn replay(policy: &Value, run: &Value) -> Replay {
    let policy = Policy::from_json(policy.to_string().as_bytes()).expect("valid policy");
    let mut session = Session::new(Arc::new(Engine::new(policy).expect("engine")));
    let loop_start = run["loop_start"].as_u64().map(|x| x as usize);
    let mut out = Replay { first_block: None, caught_at: None };
    for (i, step) in run["steps"].as_array().expect("steps").iter().enumerate() {
        let tool = step["tool"].as_str().unwrap_or("");
        let args = serde_json::to_vec(&step["args"]).unwrap();
        let v = session.check(tool, &args, i as u64 * 1000).expect("check");
        if std::env::var_os("MICROLOOP_TRACE").is_some() {
            println!("  {i:>3} {tool:<24} {:?} {} {}", v.action, v.rule, v.count);
        }
        if v.action.runs() {
            let result = step["result"].as_str().unwrap_or("");
            session.record(v.call_id, result.as_bytes(), step["error"].as_bool().unwrap_or(false)).expect("record");
            continue;
        }
        if out.first_block.is_none() {
            out.first_block = Some((i, v.rule.to_string(), v.message.clone()));
        }
        if out.caught_at.is_none() && loop_start.is_some_and(|s| i >= s) {
            out.caught_at = Some(i);
        }
    }
    out
}

/// Prints, for each step of a run, its similarity to the earlier calls of the same tool:
/// `step:args%/result%`.
fn similarities(run: &Value) {
    let steps = run["steps"].as_array().expect("steps");
    let mut seen: Vec<(String, Sketch, Sketch, bool)> = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        let tool = step["tool"].as_str().unwrap_or("").to_string();
        let args = serde_json::to_vec(&step["args"]).unwrap();
        let a = canon::hash_json_sketched(&args, &[], true).unwrap().sketch.unwrap();
        let r = Sketch::of_text(&mask::mask_volatile(step["result"].as_str().unwrap_or("").as_bytes()));
        let err = step["error"].as_bool().unwrap_or(false);
        let near: Vec<String> = seen
            .iter()
            .enumerate()
            .filter(|(_, (t, ..))| *t == tool)
            .map(|(j, (_, sa, sr, e))| format!("{j}:{}{}/{}{}", a.similarity(sa), if a.introduces(sa) { "+" } else { "" }, r.similarity(sr), if *e { "e" } else { "" }))
            .collect();
        println!("{i:>3} {tool:<24} {} {}", if err { "E" } else { " " }, near.join(" "));
        seen.push((tool, a, r, err));
    }
}

fn main() {
    let verbose = std::env::args().any(|a| a == "-v");
    if let Some(name) = std::env::args().skip_while(|a| a != "-s").nth(1) {
        let dir = std::env::var_os("MICROLOOP_REALTRAJ")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/realtraj-dev"));
        let run: Value = serde_json::from_slice(&std::fs::read(dir.join(format!("{name}.json"))).unwrap()).unwrap();
        return similarities(&run);
    }
    let dir = std::env::var_os("MICROLOOP_REALTRAJ")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/realtraj-dev"));
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e} (set MICROLOOP_REALTRAJ)", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let runs: Vec<(String, Value)> = files
        .iter()
        .map(|p| (p.file_stem().unwrap().to_string_lossy().into_owned(), serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()))
        .collect();
    let loops = runs.iter().filter(|(_, r)| r["label"] == "loop").count();
    let legit = runs.len() - loops;
    println!("{} runs: {loops} loops, {legit} legitimate", runs.len());
    println!("{:<11} {:<22} {:>12} {:>22}", "preset", "near matching", "loops caught", "legit wrongly blocked");
    for preset in ["strict", "balanced", "permissive"] {
        for near in [false, true] {
            let policy = if near {
                serde_json::json!({"preset": preset})
            } else {
                // Near matching off: neither near-duplicate calls nor near-identical failures.
                serde_json::json!({"preset": preset, "loops": {"max_near_duplicate": 0, "max_near_errors": 0}})
            };
            if std::env::var_os("MICROLOOP_TRACE").is_some() {
                println!("== {preset} near={near}");
            }
            let (mut caught, mut false_blocks) = (0, 0);
            let mut lines = Vec::new();
            for (name, run) in &runs {
                let r = replay(&policy, run);
                let is_loop = run["label"] == "loop";
                if is_loop && r.caught_at.is_some() {
                    caught += 1;
                }
                if !is_loop && r.first_block.is_some() {
                    false_blocks += 1;
                }
                let status = match (is_loop, &r.first_block) {
                    (true, _) if r.caught_at.is_some() => "caught",
                    (true, _) => "MISSED",
                    (false, Some(_)) => "FALSE BLOCK",
                    (false, None) => "ok",
                };
                let block = r.first_block.map(|(i, rule, msg)| format!("step {i} {rule}: {}", &msg[..msg.len().min(90)])).unwrap_or_default();
                lines.push(format!("    {status:<11} {name:<58} {block}"));
            }
            let label = if near { "on" } else { "off (exact only)" };
            println!("{preset:<11} {label:<22} {:>12} {:>22}", format!("{caught}/{loops}"), format!("{false_blocks}/{legit}"));
            if verbose {
                lines.iter().for_each(|l| println!("{l}"));
            }
        }
    }
}
