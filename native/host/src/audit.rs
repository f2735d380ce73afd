//! The policy's `[audit]` section and the sink that writes every decision to the audit log.
//!
//! ```toml
//! [audit]
//! path = "audit.log"          # created 0600 if missing; relative paths from the working directory
//! key_file = "audit.key"      # `microloop keys new NAME --out audit.key`
//! origin = "example.com/ci"   # optional: the checkpoints' first line (default: the key's name)
//! checkpoint_every = 1000     # optional: sign a checkpoint after this many records...
//! checkpoint_seconds = 2      # ...or this long after the oldest unsigned record (and at close)
//! ```
//!
//! Sessions of one process with the same `path` share one open log (one writer per file). A log
//! that cannot be opened, locked or resumed, or a key that cannot be read, is an error when the
//! policy is loaded. Logs still open at process exit are closed (last checkpoint signed) by an
//! `atexit` handler.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Once, Weak};
use std::time::Duration;

use microloop_audit::log::{read_key_file, AuditLog, Entry, Options};
use microloop_core::PolicyError;
use serde_json::Value;

use crate::events::{Decision, Sink};

/// The `[audit]` section.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditConfig {
    pub path: PathBuf,
    pub key_file: PathBuf,
    pub origin: Option<String>,
    pub checkpoint_every: u64,
    pub checkpoint_seconds: f64,
}

fn bad(key: &str, msg: impl Into<String>) -> PolicyError {
    PolicyError::new(format!("audit.{key}"), msg.into())
}

impl AuditConfig {
    /// Reads the section (a JSON object, from JSON or TOML).
    pub fn from_value(v: &Value) -> Result<AuditConfig, PolicyError> {
        let Some(m) = v.as_object() else {
            return Err(PolicyError::new("audit", "[audit] must be a table: path, key_file, origin, checkpoint_every, checkpoint_seconds"));
        };
        for k in m.keys() {
            if !matches!(k.as_str(), "path" | "key_file" | "origin" | "checkpoint_every" | "checkpoint_seconds") {
                return Err(bad(k, format!("unknown key {k:?} (known: path, key_file, origin, checkpoint_every, checkpoint_seconds)")));
            }
        }
        let string = |k: &str| -> Result<Option<String>, PolicyError> {
            match m.get(k) {
                None => Ok(None),
                Some(Value::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
                Some(_) => Err(bad(k, "must be a non-empty string")),
            }
        };
        let path = string("path")?.ok_or_else(|| bad("path", "is required: the audit log's file"))?;
        let key_file = string("key_file")?
            .ok_or_else(|| bad("key_file", "is required: the signer key's file (`microloop keys new NAME --out FILE`)"))?;
        let checkpoint_every = match m.get("checkpoint_every") {
            None => 1000,
            Some(v) => v.as_u64().filter(|&n| n >= 1).ok_or_else(|| bad("checkpoint_every", "must be an integer >= 1"))?,
        };
        let checkpoint_seconds = match m.get("checkpoint_seconds") {
            None => 2.0,
            Some(v) => v
                .as_f64()
                .filter(|s| *s > 0.0 && *s <= 86_400.0)
                .ok_or_else(|| bad("checkpoint_seconds", "must be a number of seconds in (0, 86400]"))?,
        };
        Ok(AuditConfig {
            path: path.into(),
            key_file: key_file.into(),
            origin: string("origin")?,
            checkpoint_every,
            checkpoint_seconds,
        })
    }
}

/// Open logs by absolute path, shared by the sessions of this process.
fn open_logs() -> &'static Mutex<HashMap<PathBuf, Weak<AuditLog>>> {
    static LOGS: std::sync::OnceLock<Mutex<HashMap<PathBuf, Weak<AuditLog>>>> = std::sync::OnceLock::new();
    LOGS.get_or_init(Default::default)
}

extern "C" fn close_open_logs() {
    let logs: Vec<Arc<AuditLog>> = match open_logs().lock() {
        Ok(m) => m.values().filter_map(Weak::upgrade).collect(),
        Err(_) => return,
    };
    for l in logs {
        if let Err(e) = l.close() {
            eprintln!("microloop: {e}");
        }
    }
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// Opens the log a config names, or joins the one this process already has open.
pub fn open(cfg: &AuditConfig) -> Result<Arc<AuditLog>, PolicyError> {
    let path = absolute(&cfg.path);
    let mut logs = open_logs().lock().unwrap_or_else(|p| p.into_inner());
    if let Some(l) = logs.get(&path).and_then(Weak::upgrade) {
        return Ok(l);
    }
    let signer = read_key_file(&cfg.key_file).map_err(|e| bad("key_file", e.0))?;
    let mut opts = Options::new(&path, signer);
    if let Some(o) = &cfg.origin {
        opts.origin = o.clone();
    }
    opts.every_records = cfg.checkpoint_every;
    opts.every = Duration::from_secs_f64(cfg.checkpoint_seconds);
    let log = Arc::new(AuditLog::open(opts).map_err(|e| bad("path", e.0))?);
    logs.retain(|_, w| w.strong_count() > 0);
    logs.insert(path, Arc::downgrade(&log));
    static AT_EXIT: Once = Once::new();
    AT_EXIT.call_once(|| {
        // SAFETY: registers a plain `extern "C" fn()` with the C library.
        unsafe { libc::atexit(close_open_logs) };
    });
    Ok(log)
}

/// Writes every decision to an audit log.
pub struct AuditSink {
    log: Arc<AuditLog>,
    policy_sha256: Arc<str>,
}

impl AuditSink {
    pub fn new(log: Arc<AuditLog>, policy_sha256: &str) -> AuditSink {
        AuditSink { log, policy_sha256: policy_sha256.into() }
    }

    pub fn log(&self) -> &Arc<AuditLog> {
        &self.log
    }
}

impl Sink for AuditSink {
    fn decision(&self, d: &Decision<'_>) -> Option<u64> {
        self.log.append(Entry {
            time_ms: d.time_ms,
            session: d.session.clone(),
            call: d.verdict.call_id,
            tool: d.tool.to_owned(),
            args: d.args.to_vec(),
            action: d.action(),
            rule: d.verdict.rule.to_string(),
            policy_sha256: self.policy_sha256.clone(),
        })
    }
}
