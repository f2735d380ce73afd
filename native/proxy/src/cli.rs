//! The `microloop-proxy` command: its arguments, the server's start and its stop on a signal.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use crate::config::{Config, Parsed, USAGE};
use crate::server::{router, AppState};

/// The command: `args` without the program's name. Runs until SIGINT or SIGTERM.
pub fn main(args: &[String]) -> ExitCode {
    let cfg = match Config::parse(args, |k| std::env::var(k).ok()) {
        Ok(Parsed::Run(c)) => c,
        Ok(Parsed::Help) => {
            // `--help | head -1`: a reader that leaves early is no reason to panic.
            let _ = writeln!(std::io::stdout(), "{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("microloop-proxy: {e}");
            std::process::exit(2);
        }
    };
    let engine = cfg.engine().unwrap_or_else(|e| {
        eprintln!("microloop-proxy: {e}");
        std::process::exit(2);
    });
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    rt.block_on(async move {
        let listen = cfg.listen;
        let upstream = cfg.upstream.clone().unwrap_or_else(|| "https://api.openai.com + https://api.anthropic.com".into());
        let on_block = cfg.on_block;
        let st = match AppState::new(cfg, engine) {
            Ok(s) => Arc::new(s),
            Err(e) => {
                eprintln!("microloop-proxy: {e}");
                std::process::exit(2);
            }
        };
        let listener = match tokio::net::TcpListener::bind(listen).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("microloop-proxy: cannot listen on {listen}: {e}");
                std::process::exit(2);
            }
        };
        eprintln!("microloop-proxy: listening on http://{listen}, upstream {upstream}, on block: {on_block:?}");
        if let Some(log) = &st.observe {
            eprintln!("microloop-proxy: shadow mode (observe): nothing is blocked; every verdict and result goes to {}", log.path().display());
        }
        tokio::spawn(crate::memory::give_back_every(crate::memory::PERIOD));
        let served = axum::serve(listener, router(st)).with_graceful_shutdown(shutdown()).await;
        if let Err(e) = served {
            eprintln!("microloop-proxy: {e}");
            std::process::exit(1);
        }
        eprintln!("microloop-proxy: stopped");
    });
    ExitCode::SUCCESS
}

async fn shutdown() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
