//! The stdio transport: the server runs as a child process, and newline-delimited JSON-RPC is
//! relayed between the client (this process's stdin and stdout) and the server (the child's).
//!
//! Two threads, one per direction, each reading lines and writing them on at once: no runtime
//! between a line and its write, which keeps the added latency to the two extra pipe hops. The
//! server's stderr is the relay's own (inherited). Signals sent to the relay (INT, TERM, HUP,
//! QUIT, USR1, USR2) go to the server, which runs in its own process group so a terminal's
//! Ctrl-C reaches it once; the relay exits with the server, with its exit status (128 + N when a
//! signal N ended it).

use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::panic::{self, AssertUnwindSafe};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::guard::{FromClient, FromServer, Guard};

/// How long the relay waits, once the server has exited, for the rest of its output (a process
/// it left behind may hold the pipe open).
const DRAIN_AFTER_EXIT: Duration = Duration::from_secs(2);

/// The client's side: this process's stdout, one whole message at a time (the lock is held
/// for the message and its newline).
struct Client;

impl Client {
    fn send(&self, line: &[u8], add_newline: bool) {
        let mut out = io::stdout().lock();
        // A client that stopped reading closes our stdin too, which ends the relay: nothing to do.
        let _ = out.write_all(line).and_then(|_| if add_newline { out.write_all(b"\n") } else { Ok(()) }).and_then(|_| out.flush());
    }
}

fn note(lines: Vec<String>) {
    if lines.is_empty() {
        return;
    }
    let mut err = io::stderr().lock();
    for l in lines {
        let _ = writeln!(err, "{l}");
    }
}

/// Runs `command` under the relay until it exits; returns the exit code to leave with.
/// `guard` is `None` when the relay must pass everything unchecked.
pub fn run(command: &[String], guard: Option<Guard>) -> u8 {
    let mut cmd = Command::new(&command[0]);
    cmd.args(&command[1..]).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::inherit()).process_group(0);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("microloop-mcp: cannot start `{}`: {e}", command[0]);
            return if e.kind() == io::ErrorKind::NotFound { 127 } else { 126 };
        }
    };
    forward_signals(child.id() as libc::pid_t);
    let guard = guard.map(|g| Arc::new(Mutex::new(g)));
    let client = Arc::new(Client);
    let server_in = child.stdin.take().expect("piped");
    let server_out = child.stdout.take().expect("piped");

    {
        let (guard, client) = (guard.clone(), client.clone());
        std::thread::Builder::new()
            .name("client-to-server".into())
            .spawn(move || client_to_server(server_in, guard.as_deref(), &client))
            .expect("thread");
    }
    let (done_tx, done_rx) = mpsc::channel();
    {
        let (guard, client) = (guard.clone(), client.clone());
        std::thread::Builder::new()
            .name("server-to-client".into())
            .spawn(move || {
                server_to_client(server_out, guard.as_deref(), &client);
                let _ = done_tx.send(());
            })
            .expect("thread");
    }

    let status = wait(&mut child);
    let _ = done_rx.recv_timeout(DRAIN_AFTER_EXIT);
    if let Some(g) = &guard {
        let why = describe(status.as_ref());
        let mut g = g.lock().unwrap_or_else(|e| e.into_inner());
        let answers = g.server_closed(&why);
        if let Some(line) = g.observe_summary() {
            eprintln!("{line}");
        }
        drop(g);
        for a in answers {
            client.send(&a, true);
        }
    }
    match status {
        Ok(s) => s.code().map(|c| c as u8).or_else(|| s.signal().map(|n| 128 + n as u8)).unwrap_or(1),
        Err(e) => {
            eprintln!("microloop-mcp: cannot wait for the server: {e}");
            1
        }
    }
}

fn wait(child: &mut Child) -> io::Result<ExitStatus> {
    loop {
        match child.wait() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => return r,
        }
    }
}

fn describe(status: Result<&ExitStatus, &io::Error>) -> String {
    match status {
        Ok(s) => match (s.code(), s.signal()) {
            (Some(c), _) => format!("exit status {c}"),
            (None, Some(n)) => format!("killed by signal {n}"),
            _ => s.to_string(),
        },
        Err(e) => e.to_string(),
    }
}

/// Reads the client's messages; each goes to the server unless the guard answers it.
fn client_to_server(mut server: ChildStdin, guard: Option<&Mutex<Guard>>, client: &Client) {
    let stdin = io::stdin();
    let mut input = BufReader::with_capacity(1 << 16, stdin.lock());
    let mut line = Vec::with_capacity(1 << 16);
    let mut server_ok = true;
    loop {
        line.clear();
        match input.read_until(b'\n', &mut line) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                eprintln!("microloop-mcp: cannot read from the client: {e}");
                break;
            }
        }
        let verdict = match guard {
            Some(g) => judge(g, |g| g.on_client(&line), FromClient::Forward),
            None => FromClient::Forward,
        };
        match verdict {
            FromClient::Forward => {
                if server_ok && server.write_all(&line).and_then(|_| server.flush()).is_err() {
                    // The server is gone: the other thread answers what waits once it sees EOF.
                    server_ok = false;
                }
            }
            FromClient::Amend(mut l) => {
                l.push(b'\n');
                if server_ok && server.write_all(&l).and_then(|_| server.flush()).is_err() {
                    server_ok = false;
                }
            }
            FromClient::Answer(a) => client.send(&a, true),
        }
        if line.capacity() > 1 << 20 {
            line = Vec::with_capacity(1 << 16); // a 10 MB message does not stay resident
        }
    }
    // The client closed its side: so does the relay, and the server ends as MCP's stdio transport says.
    drop(server);
}

/// Reads the server's messages; each goes to the client, amended where the guard says.
fn server_to_client(server: impl io::Read, guard: Option<&Mutex<Guard>>, client: &Client) {
    let mut input = BufReader::with_capacity(1 << 16, server);
    let mut line = Vec::with_capacity(1 << 16);
    loop {
        line.clear();
        match input.read_until(b'\n', &mut line) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
        let verdict = match guard {
            Some(g) => judge(g, |g| g.on_server(&line), FromServer::Forward),
            None => FromServer::Forward,
        };
        match verdict {
            FromServer::Forward => client.send(&line, false),
            FromServer::Replace(r) => client.send(&r, true),
        }
        if line.capacity() > 1 << 20 {
            line = Vec::with_capacity(1 << 16);
        }
    }
}

/// Runs `f` on the guard; a panic inside lets the message pass (and says so).
fn judge<T>(g: &Mutex<Guard>, f: impl FnOnce(&mut Guard) -> T, open: T) -> T {
    let mut g = g.lock().unwrap_or_else(|e| e.into_inner());
    let r = panic::catch_unwind(AssertUnwindSafe(|| f(&mut g)));
    let notes = g.take_notes();
    drop(g);
    note(notes);
    r.unwrap_or_else(|_| {
        eprintln!("microloop-mcp: internal error; the message passes unchecked");
        open
    })
}

/// Sends the signals a relay is usually stopped with on to the server.
fn forward_signals(pid: libc::pid_t) {
    let rt = match tokio::runtime::Builder::new_current_thread().enable_io().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("microloop-mcp: signals will not reach the server ({e})");
            return;
        }
    };
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            rt.block_on(async move {
                use tokio::signal::unix::{signal, SignalKind};
                let kinds = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT, libc::SIGUSR1, libc::SIGUSR2];
                let mut streams = Vec::new();
                for k in kinds {
                    match signal(SignalKind::from_raw(k)) {
                        Ok(s) => streams.push((k, s)),
                        Err(e) => eprintln!("microloop-mcp: signal {k} will not reach the server ({e})"),
                    }
                }
                let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
                for (k, mut s) in streams {
                    let tx = tx.clone();
                    tokio::spawn(async move {
                        while s.recv().await.is_some() {
                            if tx.send(k).is_err() {
                                break;
                            }
                        }
                    });
                }
                drop(tx);
                while let Some(k) = rx.recv().await {
                    // SAFETY: kill(2) with a pid we spawned and a valid signal number.
                    unsafe { libc::kill(pid, k) };
                }
            })
        })
        .expect("thread");
}
