//! `microloop-commands` runs the command its first argument names, or the one its own name is.

use std::path::Path;
use std::process::{Command, Output};

const EXE: &str = env!("CARGO_BIN_EXE_microloop-commands");

fn run(program: &Path, args: &[&str]) -> Output {
    Command::new(program).args(args).output().expect("microloop-commands runs")
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

#[test]
fn the_first_argument_names_the_command() {
    for (command, usage) in [("proxy", "usage: microloop-proxy"), ("mcp", "usage: microloop-mcp"), ("hook", "usage: microloop-hook")] {
        let out = run(Path::new(EXE), &[command, "--help"]);
        assert!(out.status.success(), "{command}: {}", text(&out));
        assert!(text(&out).contains(usage), "{command}: {}", text(&out));
    }
    // The rest of the arguments are the command's: the hook fails open on one it does not know.
    let out = run(Path::new(EXE), &["hook", "--no-such-flag"]);
    assert!(out.status.success());
    assert!(text(&out).contains("the call runs unchecked"), "{}", text(&out));
}

#[test]
fn called_by_a_command_name_it_is_that_command() {
    let dir = std::env::temp_dir().join(format!("microloop-commands-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, usage) in [("microloop-mcp", "usage: microloop-mcp"), ("microloop-hook", "usage: microloop-hook")] {
        let copy = dir.join(name);
        std::fs::copy(EXE, &copy).unwrap();
        let out = run(&copy, &["--help"]);
        assert!(out.status.success(), "{name}: {}", text(&out));
        assert!(text(&out).contains(usage), "{name}: {}", text(&out));
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn no_command_or_an_unknown_one_is_a_usage_error() {
    for args in [&[][..], &["serve"][..]] {
        let out = run(Path::new(EXE), args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(text(&out).contains("usage: microloop-commands proxy|mcp|hook"), "{}", text(&out));
    }
    let out = run(Path::new(EXE), &["--help"]);
    assert!(out.status.success() && text(&out).contains("usage: microloop-commands"));
}

#[test]
fn help_to_a_reader_that_goes_away_is_no_panic() {
    // `microloop-commands mcp --help | head -1`: the reader may leave before the usage is written.
    for command in ["proxy", "mcp", "hook"] {
        let mut child = Command::new(EXE)
            .args([command, "--help"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success() && !stderr.contains("panicked"), "{command}: {:?} {stderr}", out.status);
    }
}
