//! `microloop-commands`: `microloop-proxy`, `microloop-mcp` and `microloop-hook` in one executable.
//!
//! The three share nearly all their code (the engine, the rules, the host; the relay also the
//! proxy's server), so the wheel ships this one executable instead of three copies of it. It runs
//! the command its first argument names (`microloop-commands hook claude-code`), or, called by one
//! of the three names (a copy, a link), that command: the wheel's `microloop-hook` and
//! `microloop-mcp` are two-line scripts that `exec` it with their name as first argument.

use std::path::Path;
use std::io::Write;
use std::process::ExitCode;

const USAGE: &str = "\
microloop-commands: MicroLoop's commands in one executable

usage: microloop-commands proxy|mcp|hook [ARGS...]

  proxy   microloop-proxy, MicroLoop in front of an LLM API
  mcp     microloop-mcp, MicroLoop in front of an MCP tool server
  hook    microloop-hook, MicroLoop as a coding agent's pre-tool hook

Each takes --help. Called as microloop-proxy, microloop-mcp or microloop-hook, it is that command.";

/// The command a short name stands for.
fn command(name: &str) -> Option<fn(&[String]) -> ExitCode> {
    match name {
        "proxy" => Some(microloop_proxy::cli::main),
        "mcp" => Some(microloop_mcp::main),
        "hook" => Some(microloop_hook::main),
        _ => None,
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let program = args.first().and_then(|a| Path::new(a).file_stem()).and_then(|n| n.to_str()).unwrap_or("");
    // Called by a command's own name (a copy, a link): the arguments are that command's.
    if let Some(run) = program.strip_prefix("microloop-").and_then(command) {
        return run(&args[1..]);
    }
    if let Some(run) = args.get(1).and_then(|name| command(name)) {
        return run(&args[2..]);
    }
    match args.get(1).map(String::as_str) {
        Some("-h" | "--help") => {
            // `--help | head -1`: a reader that leaves early is no reason to panic.
            let _ = writeln!(std::io::stdout(), "{USAGE}");
            ExitCode::SUCCESS
        }
        Some("-V" | "--version") => {
            let _ = writeln!(std::io::stdout(), "microloop-commands {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        other => {
            let what = other.map_or("no command given".to_owned(), |o| format!("unknown command `{o}`"));
            eprintln!("microloop-commands: {what}\n\n{USAGE}");
            ExitCode::from(2)
        }
    }
}
