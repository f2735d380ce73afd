//! The log file and its writer.
//!
//! # Format (version 1)
//!
//! UTF-8 text, one JSON object per line (`\n`), appended only. A line is either
//!
//! * a **record**, whose bytes (without the newline) are a Merkle leaf:
//!   `{"seq":0,"time_ms":…,"session":"…","call":7,"tool":"search","args_sha256":"<hex>",`
//!   `"args_canon":"jcs","action":"allow","rule":"","policy_sha256":"<hex>"}`. `seq` counts from 0
//!   with no gap; `args_sha256` is the SHA-256 of the arguments' RFC 8785 canonical form
//!   (`args_canon: "jcs"`), or of their bytes as given when JCS cannot represent them (`"raw"`:
//!   duplicate keys, integers outside ±(2^53 - 1)); the arguments themselves are never written;
//! * a **checkpoint**: `{"checkpoint":"<signed note>","frontier":["<hex>",…]}`. The note is a C2SP
//!   `tlog-checkpoint` signed as a C2SP `signed-note` with Ed25519 (see [`crate::note`]); its
//!   tree size is the number of records before it, its root their RFC 6962 tree head.
//!   `frontier` (the perfect subtrees' roots) lets a writer resume without re-reading the log;
//!   verifiers ignore it.
//!
//! A checkpoint is written every `every_records` records, when `every` has passed since the first
//! record it would cover, and at close. A log whose last line is not a checkpoint was not closed
//! (or was appended to): the writer refuses to resume it and `verify` reports its tail.
//!
//! # The writer
//!
//! [`AuditLog::append`] takes a decision and returns its sequence number at once; a worker thread
//! canonicalizes and hashes the arguments, writes records through a buffer and signs checkpoints,
//! so a check never waits for the disk or a signature. The file is created `0600` and locked
//! (`flock`) for the writer's lifetime: one writer per file (hosts in one process share it).

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::jcs;
use crate::merkle::{leaf_hash, Frontier, Hash};
use crate::note::{Checkpoint, NoteSigner};

/// One record line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    pub seq: u64,
    pub time_ms: u64,
    pub session: String,
    pub call: u64,
    pub tool: String,
    pub args_sha256: String,
    pub args_canon: String,
    pub action: String,
    pub rule: String,
    pub policy_sha256: String,
}

/// One checkpoint line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointLine {
    pub checkpoint: String,
    #[serde(default)]
    pub frontier: Vec<String>,
}

/// A decision to log, as the host hands it over.
#[derive(Debug, Clone)]
pub struct Entry {
    pub time_ms: u64,
    pub session: Arc<str>,
    pub call: u64,
    pub tool: String,
    /// The arguments as the agent sent them; only their hash is written.
    pub args: Vec<u8>,
    pub action: &'static str,
    pub rule: String,
    pub policy_sha256: Arc<str>,
}

/// Where and how to write a log.
#[derive(Debug)]
pub struct Options {
    pub path: PathBuf,
    pub signer: NoteSigner,
    /// The checkpoints' first line; by convention a schema-less URL naming the log.
    pub origin: String,
    /// Sign a checkpoint after this many records...
    pub every_records: u64,
    /// ...or once this long has passed since the oldest record not yet covered.
    pub every: Duration,
    /// How long `open` waits for another writer to release the file.
    pub lock_wait: Duration,
}

impl Options {
    pub fn new(path: impl Into<PathBuf>, signer: NoteSigner) -> Options {
        let origin = signer.name().to_owned();
        Options { path: path.into(), signer, origin, every_records: 1000, every: Duration::from_secs(2), lock_wait: Duration::from_secs(5) }
    }
}

/// A log that cannot be opened or written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditError(pub String);

impl std::fmt::Display for AuditError {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for AuditError {}

enum Msg {
    Entry(u64, Entry),
    Sync(mpsc::Sender<Result<Checkpoint, AuditError>>),
    Close,
}

struct Head {
    next_seq: u64,
    tx: Option<mpsc::Sender<Msg>>,
}

/// An open log: appends from any thread, a worker writes and signs.
pub struct AuditLog {
    path: PathBuf,
    head: Mutex<Head>,
    worker: Mutex<Option<JoinHandle<Result<(), AuditError>>>>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "AuditLog({})", self.path.display())
    }
}

fn io_err(path: &Path, what: &str, e: io::Error) -> AuditError {
    AuditError(format!("audit log {}: {what}: {e}", path.display()))
}

/// Writes a new signer key to `path` (created `0600`, never overwritten) and returns it.
pub fn new_key_file(path: &Path, name: &str) -> Result<NoteSigner, AuditError> {
    let signer = NoteSigner::generate(name).map_err(|e| AuditError(e.0))?;
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| AuditError(format!("{}: cannot create the key file: {e}", path.display())))?;
    writeln!(f, "{}", signer.to_key_string())
        .map_err(|e| AuditError(format!("{}: cannot write the key file: {e}", path.display())))?;
    Ok(signer)
}

/// Reads a signer key file (as [`new_key_file`] or Go's `note.GenerateKey` writes it).
pub fn read_key_file(path: &Path) -> Result<NoteSigner, AuditError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| AuditError(format!("{}: cannot read the key file: {e}", path.display())))?;
    NoteSigner::parse(&text).map_err(|e| AuditError(format!("{}: {e}", path.display())))
}

fn lock(file: &File, path: &Path, wait: Duration) -> Result<(), AuditError> {
    let deadline = Instant::now() + wait;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(()),
            Err(std::fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10))
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(AuditError(format!(
                    "audit log {}: another writer has kept it open for {:?} (one writer per log file)",
                    path.display(),
                    wait
                )))
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io_err(path, "cannot lock it", e)),
        }
    }
}

/// Reads the state a writer resumes from: the last line must be a checkpoint by this key.
fn resume(file: &mut File, opts: &Options) -> Result<Frontier, AuditError> {
    let path = &opts.path;
    let len = file.metadata().map_err(|e| io_err(path, "cannot stat it", e))?.len();
    if len == 0 {
        return Ok(Frontier::new());
    }
    let start = len.saturating_sub(64 * 1024);
    file.seek(SeekFrom::Start(start)).map_err(|e| io_err(path, "cannot read it", e))?;
    let mut tail = Vec::new();
    file.read_to_end(&mut tail).map_err(|e| io_err(path, "cannot read it", e))?;
    let refuse = |why: &str| {
        AuditError(format!(
            "audit log {}: {why}; check it with `microloop audit verify`, then move it aside to start a new log",
            path.display()
        ))
    };
    if tail.last() != Some(&b'\n') {
        return Err(refuse("it ends in a partial line (the writer stopped while writing)"));
    }
    let body = &tail[..tail.len() - 1];
    let last = &body[body.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1)..];
    let line: CheckpointLine = serde_json::from_slice(last)
        .map_err(|_| refuse("its last line is not a checkpoint (the writer did not close it, or records were appended)"))?;
    let cp = Checkpoint::open(&line.checkpoint, &opts.signer.verifier())
        .map_err(|e| refuse(&format!("its last checkpoint is not signed by this key ({e})")))?;
    if cp.origin != opts.origin {
        return Err(refuse(&format!("it is the log of {:?}, not of {:?}", cp.origin, opts.origin)));
    }
    let roots: Option<Vec<Hash>> = line.frontier.iter().map(|h| unhex(h)).collect();
    let frontier = roots
        .and_then(|r| Frontier::from_parts(cp.size, r))
        .filter(|f| f.root() == cp.root)
        .ok_or_else(|| refuse("its last checkpoint's frontier does not match its root"))?;
    Ok(frontier)
}

/// Decodes 64 hex digits.
pub fn unhex(s: &str) -> Option<Hash> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

struct Worker {
    out: BufWriter<File>,
    path: PathBuf,
    frontier: Frontier,
    signer: NoteSigner,
    origin: String,
    every_records: u64,
    every: Duration,
    /// When the oldest record not yet under a checkpoint was appended.
    pending_since: Option<Instant>,
    pending: u64,
    has_checkpoint: bool,
    failed: Option<AuditError>,
}

impl Worker {
    fn write_record(&mut self, seq: u64, e: Entry) {
        let (args_sha256, args_canon) = match jcs::sha256(&e.args) {
            Ok(h) => (jcs::hex(&h), "jcs"),
            Err(_) => {
                use sha2::Digest;
                (jcs::hex(&sha2::Sha256::digest(&e.args)), "raw")
            }
        };
        let r = Record {
            seq,
            time_ms: e.time_ms,
            session: e.session.to_string(),
            call: e.call,
            tool: e.tool,
            args_sha256,
            args_canon: args_canon.to_owned(),
            action: e.action.to_owned(),
            rule: e.rule,
            policy_sha256: e.policy_sha256.to_string(),
        };
        let line = serde_json::to_vec(&r).expect("a record serializes");
        debug_assert_eq!(seq, self.frontier.size());
        self.frontier.push(leaf_hash(&line));
        self.write_line(&line);
        self.pending += 1;
        self.pending_since.get_or_insert_with(Instant::now);
    }

    fn write_line(&mut self, line: &[u8]) {
        if self.failed.is_some() {
            return;
        }
        if let Err(e) = self.out.write_all(line).and_then(|_| self.out.write_all(b"\n")) {
            self.fail(io_err(&self.path, "cannot write it", e));
        }
    }

    fn fail(&mut self, e: AuditError) {
        eprintln!("microloop: {e}; later decisions are not logged");
        self.failed = Some(e);
    }

    fn checkpoint(&mut self) -> Result<Checkpoint, AuditError> {
        let cp = Checkpoint { origin: self.origin.clone(), size: self.frontier.size(), root: self.frontier.root() };
        let line = CheckpointLine {
            checkpoint: self.signer.sign(&cp.text()),
            frontier: self.frontier.roots().iter().map(|h| jcs::hex(h)).collect(),
        };
        let line = serde_json::to_vec(&line).expect("a checkpoint serializes");
        self.write_line(&line);
        if self.failed.is_none() {
            if let Err(e) = self.out.flush() {
                self.fail(io_err(&self.path, "cannot write it", e));
            }
        }
        self.pending = 0;
        self.pending_since = None;
        self.has_checkpoint = true;
        match &self.failed {
            Some(e) => Err(e.clone()),
            None => Ok(cp),
        }
    }

    fn run(mut self, rx: mpsc::Receiver<Msg>) -> Result<(), AuditError> {
        loop {
            let msg = match self.pending_since {
                None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
                Some(since) => rx.recv_timeout((since + self.every).saturating_duration_since(Instant::now())),
            };
            match msg {
                Ok(Msg::Entry(seq, e)) => {
                    self.write_record(seq, e);
                    if self.pending >= self.every_records {
                        let _ = self.checkpoint();
                    }
                }
                Ok(Msg::Sync(reply)) => {
                    let _ = reply.send(self.checkpoint());
                }
                Err(RecvTimeoutError::Timeout) => {
                    let _ = self.checkpoint();
                }
                Ok(Msg::Close) | Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        if self.pending > 0 || !self.has_checkpoint {
            let _ = self.checkpoint();
        }
        if self.failed.is_none() {
            if let Err(e) = self.out.get_ref().sync_data() {
                self.fail(io_err(&self.path, "cannot sync it", e));
            }
        }
        self.failed.map_or(Ok(()), Err)
    }
}

impl AuditLog {
    /// Opens (or creates, `0600`) a log for appending. A log that cannot be created, locked or
    /// resumed is an error now, not a gap later.
    pub fn open(opts: Options) -> Result<AuditLog, AuditError> {
        let path = opts.path.clone();
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| io_err(&path, "cannot open it", e))?;
        lock(&file, &path, opts.lock_wait)?;
        let frontier = resume(&mut file, &opts)?;
        let next_seq = frontier.size();
        let has_checkpoint = next_seq > 0 || file.metadata().map(|m| m.len() > 0).unwrap_or(false);
        let worker = Worker {
            out: BufWriter::with_capacity(64 * 1024, file),
            path: path.clone(),
            frontier,
            signer: opts.signer,
            origin: opts.origin,
            every_records: opts.every_records.max(1),
            every: opts.every,
            pending_since: None,
            pending: 0,
            has_checkpoint,
            failed: None,
        };
        let (tx, rx) = mpsc::channel();
        let handle = std::thread::Builder::new()
            .name("microloop-audit".into())
            .spawn(move || worker.run(rx))
            .map_err(|e| AuditError(format!("audit log {}: cannot start its writer: {e}", path.display())))?;
        Ok(AuditLog { path, head: Mutex::new(Head { next_seq, tx: Some(tx) }), worker: Mutex::new(Some(handle)) })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn head(&self) -> std::sync::MutexGuard<'_, Head> {
        self.head.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues a decision and returns its sequence number; never waits for the disk. `None` once
    /// the log is closed.
    pub fn append(&self, e: Entry) -> Option<u64> {
        let mut head = self.head();
        let seq = head.next_seq;
        head.tx.as_ref()?.send(Msg::Entry(seq, e)).ok()?;
        head.next_seq += 1;
        Some(seq)
    }

    /// Writes everything queued and signs a checkpoint over it now.
    pub fn checkpoint(&self) -> Result<Checkpoint, AuditError> {
        let (tx, rx) = mpsc::channel();
        let closed = || AuditError(format!("audit log {}: closed", self.path.display()));
        self.head().tx.as_ref().ok_or_else(closed)?.send(Msg::Sync(tx)).map_err(|_| closed())?;
        rx.recv().map_err(|_| closed())?
    }

    /// Writes everything queued, signs a last checkpoint, syncs the file and releases it. Later
    /// appends are dropped. Closing twice is a no-op.
    pub fn close(&self) -> Result<(), AuditError> {
        if let Some(tx) = self.head().tx.take() {
            let _ = tx.send(Msg::Close);
        }
        let handle = self.worker.lock().unwrap_or_else(|p| p.into_inner()).take();
        match handle {
            Some(h) => h.join().unwrap_or_else(|_| Err(AuditError("the audit log's writer panicked".into()))),
            None => Ok(()),
        }
    }
}

impl Drop for AuditLog {
    fn drop(&mut self) {
        if let Err(e) = self.close() {
            eprintln!("microloop: {e}");
        }
    }
}
