//! `microloop-hook AGENT`: see the crate docs and `--help`.

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    microloop_hook::main(&args)
}
