//! `microloop-proxy`: see `--help` and the crate docs.

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    microloop_proxy::cli::main(&args)
}
