//! `microloop-mcp`: see the crate docs and `--help`.

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    microloop_mcp::main(&args)
}
