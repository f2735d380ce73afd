//! One agent session's history between hook processes: a state file under the user's state
//! directory, locked while a hook reads and rewrites it, replaced atomically.
//!
//! A state file is two lines of text and the session's snapshot:
//!
//! ```text
//! microloop-hook 1
//! {"agent":"claude-code","session":"…","updated_ms":…,"pending":[["id:toolu_…",12],…],"answers":[…],"log":[…],"stats":{…}}
//! <Session::save bytes>
//! ```
//!
//! `pending` maps the agent's id of a call that was allowed (or, for agents without ids, the
//! call's fingerprint) to MicroLoop's call id, until its result comes. `answers` holds, for the
//! newest calls, the start of the answer each got (quoted when the call is blocked). `log` keeps
//! the newest decisions that were not a plain allow. `stats` is the session's counters (calls,
//! blocked, errors, results, late, history_len), for readers that do not load the snapshot.
//! Everything in it is bounded, whatever the session's length: the snapshot holds one history
//! window, `pending`, `answers` and `log` a fixed number of entries of bounded size.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde_json::{json, Value};

const MAGIC: &str = "microloop-hook 1\n";
/// Calls waiting for their result, at most.
pub const PENDING_MAX: usize = 256;
/// Decisions kept in the log, at most.
pub const LOG_MAX: usize = 64;
/// Answers kept to quote, at most (the newest calls').
pub const ANSWERS_MAX: usize = 32;
/// Bytes of an answer kept to quote.
pub const ANSWER_BYTES: usize = 200;
/// State files untouched this long are removed when a new session starts.
pub const MAX_AGE: Duration = Duration::from_secs(7 * 24 * 3600);

/// The directory of the hooks' state: `$MICROLOOP_STATE_DIR`, else `$XDG_STATE_HOME/microloop/hooks`,
/// else `~/.local/state/microloop/hooks`.
pub fn state_dir(env: impl Fn(&str) -> Option<String>) -> Option<PathBuf> {
    let set = |k: &str| env(k).filter(|v| !v.is_empty());
    if let Some(d) = set("MICROLOOP_STATE_DIR") {
        return Some(PathBuf::from(d));
    }
    let base = match set("XDG_STATE_HOME") {
        Some(x) => PathBuf::from(x),
        None => PathBuf::from(set("HOME")?).join(".local/state"),
    };
    Some(base.join("microloop/hooks"))
}

/// The file of a session: readable, and unique for any session id (a hash of it ends the name).
pub fn state_file(dir: &Path, agent: &str, session: &str) -> PathBuf {
    let readable: String =
        session.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).take(48).collect();
    let hash = xxhash_rust::xxh3::xxh3_64(session.as_bytes());
    dir.join(format!("{agent}-{readable}-{hash:016x}.state"))
}

/// What a state file holds besides the snapshot.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Meta {
    pub pending: Vec<(String, u64)>,
    /// The call's fingerprint and the start of its latest answer.
    pub answers: Vec<(String, String)>,
    pub log: Vec<Value>,
    /// The session's counters, written for readers (not read back).
    pub stats: Value,
}

/// A session's state file, held under an exclusive lock until dropped.
pub struct Locked {
    path: PathBuf,
    _lock: File,
}

impl Locked {
    /// Takes the session's lock (waiting for other hook processes of the session).
    pub fn open(path: PathBuf) -> io::Result<Locked> {
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir)?;
        }
        let lock = OpenOptions::new().create(true).truncate(false).write(true).open(lock_path(&path))?;
        lock.lock()?;
        Ok(Locked { path, _lock: lock })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The meta and snapshot; `Ok(None)` when the session has no state yet, `Err` with the
    /// reason when the file is not a state file (the caller reports it and starts afresh).
    pub fn read(&self) -> Result<Option<(Meta, Vec<u8>)>, String> {
        let bytes = match fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("cannot read it: {e}")),
        };
        let rest = bytes.strip_prefix(MAGIC.as_bytes()).ok_or("it is not a microloop-hook state file")?;
        let nl = rest.iter().position(|&b| b == b'\n').ok_or("its second line is cut")?;
        let meta: Value = serde_json::from_slice(&rest[..nl]).map_err(|e| format!("its second line is not JSON: {e}"))?;
        let pending = meta["pending"]
            .as_array()
            .map(|a| a.iter().filter_map(|p| Some((p.get(0)?.as_str()?.to_owned(), p.get(1)?.as_u64()?))).collect())
            .unwrap_or_default();
        let answers = meta["answers"]
            .as_array()
            .map(|a| a.iter().filter_map(|p| Some((p.get(0)?.as_str()?.to_owned(), p.get(1)?.as_str()?.to_owned()))).collect())
            .unwrap_or_default();
        let log = meta["log"].as_array().cloned().unwrap_or_default();
        // The counters the state file keeps itself (shadow mode's `observed`) carry over; anything
        // but an object is dropped (it is indexed as one).
        let stats = if meta["stats"].is_object() { meta["stats"].clone() } else { Value::Null };
        Ok(Some((Meta { pending, answers, log, stats }, rest[nl + 1..].to_vec())))
    }

    /// Replaces the state: written beside it, then renamed over it, so a hook killed mid-write
    /// leaves the previous state readable.
    pub fn write(&self, agent: &str, session: &str, meta: &Meta, snapshot: &[u8]) -> io::Result<()> {
        let updated_ms = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
        let pending: Vec<Value> = meta.pending.iter().map(|(k, id)| json!([k, id])).collect();
        let answers: Vec<Value> = meta.answers.iter().map(|(k, a)| json!([k, a])).collect();
        let line = json!({"agent": agent, "session": session, "updated_ms": updated_ms, "pending": pending, "answers": answers, "log": meta.log, "stats": meta.stats});
        let tmp = self.path.with_extension(format!("tmp.{}", std::process::id()));
        let mut f = File::create(&tmp)?;
        f.write_all(MAGIC.as_bytes())?;
        f.write_all(line.to_string().as_bytes())?;
        f.write_all(b"\n")?;
        f.write_all(snapshot)?;
        drop(f);
        fs::rename(&tmp, &self.path)
    }

    /// Deletes the session's state (its lock file goes with it).
    pub fn remove(self) -> io::Result<()> {
        let r = fs::remove_file(&self.path);
        fs::remove_file(lock_path(&self.path)).ok();
        match r {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

fn lock_path(state: &Path) -> PathBuf {
    state.with_extension("lock")
}

/// Removes state files (and their locks and leftovers) older than `max_age` from `dir`.
pub fn clean_old(dir: &Path, max_age: Duration) -> usize {
    let Ok(entries) = fs::read_dir(dir) else { return 0 };
    let now = SystemTime::now();
    let mut removed = 0;
    for e in entries.flatten() {
        let old = e.metadata().and_then(|m| m.modified()).ok().and_then(|t| now.duration_since(t).ok()).is_some_and(|age| age > max_age);
        let name = e.file_name();
        let ours = name.to_str().is_some_and(|n| n.ends_with(".state") || n.ends_with(".lock") || n.contains(".tmp."));
        if old && ours && fs::remove_file(e.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// Adds a pending call, dropping the oldest past [`PENDING_MAX`].
pub fn add_pending(meta: &mut Meta, key: String, call_id: u64) {
    if meta.pending.len() >= PENDING_MAX {
        meta.pending.remove(0);
    }
    meta.pending.push((key, call_id));
}

/// Takes the oldest pending call with this key.
pub fn take_pending(meta: &mut Meta, key: &str) -> Option<u64> {
    let i = meta.pending.iter().position(|(k, _)| k == key)?;
    Some(meta.pending.remove(i).1)
}

/// Sets the answer a call got (the newest kept), dropping the oldest past [`ANSWERS_MAX`].
pub fn set_answer(meta: &mut Meta, call: String, answer: String) {
    meta.answers.retain(|(k, _)| *k != call);
    if meta.answers.len() >= ANSWERS_MAX {
        meta.answers.remove(0);
    }
    meta.answers.push((call, answer));
}

/// The answer a call got last, if kept.
pub fn answer<'m>(meta: &'m Meta, call: &str) -> Option<&'m str> {
    meta.answers.iter().rev().find(|(k, _)| k == call).map(|(_, a)| a.as_str())
}

/// Adds a decision to the log, dropping the oldest past [`LOG_MAX`].
pub fn add_log(meta: &mut Meta, entry: Value) {
    if meta.log.len() >= LOG_MAX {
        meta.log.remove(0);
    }
    meta.log.push(entry);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_dir_follows_xdg() {
        let env = |vars: &'static [(&'static str, &'static str)]| move |k: &str| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string());
        assert_eq!(state_dir(env(&[("HOME", "/h")])), Some(PathBuf::from("/h/.local/state/microloop/hooks")));
        assert_eq!(state_dir(env(&[("HOME", "/h"), ("XDG_STATE_HOME", "/x")])), Some(PathBuf::from("/x/microloop/hooks")));
        assert_eq!(state_dir(env(&[("MICROLOOP_STATE_DIR", "/m"), ("XDG_STATE_HOME", "/x")])), Some(PathBuf::from("/m")));
        assert_eq!(state_dir(env(&[])), None);
    }

    #[test]
    fn session_ids_map_to_distinct_safe_names() {
        let d = Path::new("/d");
        let a = state_file(d, "codex", "../../etc/passwd");
        assert_eq!(a.parent(), Some(d));
        assert_ne!(state_file(d, "codex", "a/b"), state_file(d, "codex", "a_b"));
    }

    #[test]
    fn write_then_read_and_bad_files() {
        let dir = std::env::temp_dir().join(format!("microloop-hook-state-{}", std::process::id()));
        let path = state_file(&dir, "claude-code", "s");
        let locked = Locked::open(path.clone()).unwrap();
        assert_eq!(locked.read().unwrap(), None);
        let mut meta = Meta::default();
        add_pending(&mut meta, "toolu_1".into(), 3);
        add_log(&mut meta, json!({"rule": "loop.identical"}));
        set_answer(&mut meta, "Bash:1".into(), "Error 2".into());
        locked.write("claude-code", "s", &meta, b"\x00\x01snapshot\n").unwrap();
        let (m, snap) = locked.read().unwrap().unwrap();
        assert_eq!((m, snap.as_slice()), (meta, &b"\x00\x01snapshot\n"[..]));
        assert!(fs::read_dir(&dir).unwrap().flatten().all(|e| !e.file_name().to_string_lossy().contains(".tmp.")), "no temporary file left");
        fs::write(&path, b"garbage").unwrap();
        assert!(locked.read().unwrap_err().contains("not a microloop-hook state file"));
        fs::write(&path, format!("{MAGIC}{{not json\n")).unwrap();
        assert!(locked.read().unwrap_err().contains("not JSON"));
        locked.remove().unwrap();
        assert!(!path.exists());
        fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn pending_and_log_are_bounded() {
        let mut m = Meta::default();
        for i in 0..1000u64 {
            add_pending(&mut m, format!("k{i}"), i);
            add_log(&mut m, json!(i));
            set_answer(&mut m, format!("c{}", i % 40), format!("a{i}"));
        }
        assert_eq!((m.pending.len(), m.log.len(), m.answers.len()), (PENDING_MAX, LOG_MAX, ANSWERS_MAX));
        assert_eq!(answer(&m, "c39"), Some("a999"));
        assert_eq!(answer(&m, "c0"), None, "the oldest went");
        assert_eq!(take_pending(&mut m, "k999"), Some(999));
        assert_eq!(take_pending(&mut m, "k0"), None);
    }
}
