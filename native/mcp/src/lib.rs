//! `microloop-mcp`: MicroLoop in front of an MCP tool server.
//!
//! Between any MCP client and any MCP server, it checks each `tools/call` against the session's
//! history before the server sees it, and answers a call that must not run itself (see
//! [`guard`]). Everything else passes byte for byte. Whatever goes wrong inside the relay, the
//! client and the server go on talking: the message passes unchecked and a line on stderr says why.

mod guard;
mod http;
mod stdio;

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use guard::Guard;
use microloop_host::SystemClock;

const USAGE: &str = "\
microloop-mcp: MicroLoop in front of an MCP tool server

usage: microloop-mcp [--policy P] [--observe] -- COMMAND [ARGS...]
       microloop-mcp [--policy P] [--observe] --listen ADDR --upstream URL

  Runs the MCP server COMMAND over stdio and relays newline-delimited JSON-RPC between it and
  the client on this process's stdin/stdout. Each tools/call is checked before the server sees
  it; a call that must not run is answered with a CallToolResult (isError: true) that tells the
  model what was repeated and what to do instead.

  With --listen, it serves MCP's Streamable HTTP transport on ADDR (127.0.0.1:8808) in front of
  the server's endpoint URL (http://127.0.0.1:8000/mcp), one history per Mcp-Session-Id, with
  /healthz and /metrics of its own.

  --policy P   a preset name (strict, balanced, permissive), a .toml/.json file or policy text
               (MICROLOOP_POLICY; default: a .microloop.toml found upward from the current
               directory, else balanced)
  --observe    shadow mode, as a policy's mode = \"observe\": nothing is refused; every verdict
               (the would-be one) and result is appended to $MICROLOOP_OBSERVE_LOG, else
               observe.jsonl in the current directory (a log `microloop replay` reads), counted in
               /metrics, and summed up on stderr when a stdio session ends

The server's stderr, signals and exit status pass through.";

/// The command: `args` without the program's name.
pub fn main(args: &[String]) -> ExitCode {
    let mut policy = std::env::var("MICROLOOP_POLICY").ok().filter(|p| !p.is_empty());
    let mut command: Vec<String> = Vec::new();
    let (mut listen, mut upstream) = (None, None);
    let mut observe = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "-h" | "--help" => {
                // `--help | head -1`: a reader that leaves early is no reason to panic.
                let _ = writeln!(std::io::stdout(), "{USAGE}");
                return ExitCode::SUCCESS;
            }
            "-V" | "--version" => {
                let _ = writeln!(std::io::stdout(), "microloop-mcp {}", env!("CARGO_PKG_VERSION"));
                return ExitCode::SUCCESS;
            }
            "--policy" => match it.next() {
                Some(p) => policy = Some(p.clone()),
                None => return usage_error("--policy needs a value"),
            },
            s if s.starts_with("--policy=") => policy = Some(s["--policy=".len()..].to_owned()),
            "--observe" => observe = true,
            "--listen" | "--upstream" => match it.next() {
                Some(v) if a == "--listen" => listen = Some(v.clone()),
                Some(v) => upstream = Some(v.clone()),
                None => return usage_error(&format!("{a} needs a value")),
            },
            "--" => {
                command.extend(it.by_ref().cloned());
                break;
            }
            s if s.starts_with('-') => return usage_error(&format!("unknown option `{s}`")),
            _ => {
                command.push(a.clone());
                command.extend(it.by_ref().cloned());
                break;
            }
        }
    }
    match (listen, upstream, command.is_empty()) {
        (Some(listen), Some(upstream), true) => return serve_http(policy.as_deref(), observe, &listen, upstream),
        (None, None, _) => {}
        (_, _, false) => return usage_error("give either a server command or --listen and --upstream, not both"),
        _ => return usage_error("--listen and --upstream go together"),
    }
    if command.is_empty() {
        return usage_error("no server command (microloop-mcp [--policy P] -- COMMAND [ARGS...])");
    }
    let guard = new_guard(policy.as_deref(), observe);
    ExitCode::from(stdio::run(&command, guard))
}

fn usage_error(why: &str) -> ExitCode {
    eprintln!("microloop-mcp: {why}\n\n{USAGE}");
    ExitCode::from(2)
}

/// Shadow mode's log: `$MICROLOOP_OBSERVE_LOG`, else `observe.jsonl` in the current directory;
/// `None` (and a line on stderr) when it cannot be opened: the verdicts are still counted.
fn observe_log() -> Option<Arc<microloop_host::ObserveLog>> {
    let path = std::env::var(microloop_host::observe::ENV).ok().filter(|p| !p.is_empty()).unwrap_or_else(|| "observe.jsonl".into());
    match microloop_host::ObserveLog::open(&path) {
        Ok(log) => {
            eprintln!("microloop-mcp: shadow mode (observe): nothing is refused; verdicts and results go to {path}");
            Some(Arc::new(log))
        }
        Err(e) => {
            eprintln!("microloop-mcp: {e}; shadow mode goes on without a log");
            None
        }
    }
}

fn serve_http(spec: Option<&str>, observe: bool, listen: &str, upstream: String) -> ExitCode {
    let (policy, host) = match load(spec, observe) {
        Ok(ph) => ph,
        Err(e) => {
            eprintln!("microloop-mcp: policy: {e}");
            return ExitCode::from(2);
        }
    };
    match http::serve(listen, upstream, policy, Arc::new(host)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("microloop-mcp: {e}");
            ExitCode::from(1)
        }
    }
}

/// The guard for one session, or `None` (and a line on stderr) when the policy cannot be loaded:
/// the relay then passes everything unchecked.
fn new_guard(spec: Option<&str>, observe: bool) -> Option<Guard> {
    match load(spec, observe) {
        Ok((policy, host)) => {
            let g = Guard::new(policy, host.engine().clone(), Arc::new(SystemClock)).with_events(host.events());
            // One stdio relay is one session: named by its process id in the log.
            Some(if host.engine().policy.observe { g.observing(observe_log(), &format!("mcp-{}", std::process::id())) } else { g })
        }
        Err(e) => {
            eprintln!("microloop-mcp: policy: {e}; every call passes unchecked");
            None
        }
    }
}

/// The policy (in observe mode with `--observe`) and its host (engine, `[audit]` log, `[approval]`
/// key): a log or key that cannot be opened is an error here, as for the library.
fn load(spec: Option<&str>, observe: bool) -> Result<(microloop_core::Policy, microloop_host::Host), String> {
    let cwd = std::env::current_dir().ok();
    let (mut policy, sections, text, file) = microloop_host::Host::load_parts(spec, cwd.as_deref()).map_err(|e| e.to_string())?;
    policy.observe |= observe;
    let host = microloop_host::Host::new(policy.clone(), sections, text.as_bytes())
        .map_err(|e| microloop_host::LoadError { file, path: e.path, message: e.message }.to_string())?;
    Ok((policy, host))
}
