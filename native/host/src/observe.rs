//! Shadow mode's log: every verdict and result of a host running a policy with
//! `mode = "observe"`, one JSON line each, in the format `microloop replay` reads
//! (`microloop-observe`, the same lines the Python `ObservingGuardrail` writes):
//!
//! ```text
//! {"microloop":"observe","event":"check","session":"s","call":"1","time":"2026-01-01T00:00:00.000Z",
//!  "tool":"search","args":{...},"action":"block","rule":"loop.no_progress","message":"...","count":3}
//! {"microloop":"observe","event":"record","session":"s","call":"1","output":"...","error":false}
//! ```
//!
//! `action` is the would-be action (`Verdict::observed`, else the verdict's own); `call` matches a
//! result to its call within the session. Lines are written whole, in append mode, so processes
//! sharing the file do not mix their lines.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use microloop_core::Verdict;
use serde_json::{json, Value};

use crate::events::action_name;

/// The environment variable naming the log, for every host.
pub const ENV: &str = "MICROLOOP_OBSERVE_LOG";

/// An observe log opened for appending.
pub struct ObserveLog {
    path: PathBuf,
    file: Mutex<File>,
}

impl std::fmt::Debug for ObserveLog {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "ObserveLog({})", self.path.display())
    }
}

impl ObserveLog {
    /// Opens (creates) `path` for appending.
    pub fn open(path: impl Into<PathBuf>) -> Result<ObserveLog, String> {
        let path = path.into();
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| format!("cannot open the observe log {}: {e}", path.display()))?;
        Ok(ObserveLog { path, file: Mutex::new(file) })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Logs a verdict on a call. `args` are the arguments as sent (JSON text; kept as text when
    /// they are not JSON).
    pub fn check(&self, session: &str, call: &str, time_ms: u64, tool: &str, args: &[u8], v: &Verdict) -> Result<(), String> {
        self.write(&check_line(session, call, time_ms, tool, args, v))
    }

    /// Logs what a call returned.
    pub fn record(&self, session: &str, call: &str, output: &[u8], error: bool) -> Result<(), String> {
        self.write(&record_line(session, call, output, error))
    }

    /// Appends one line (one `write` of the whole line).
    pub fn write(&self, line: &Value) -> Result<(), String> {
        let mut text = line.to_string();
        text.push('\n');
        let mut f = self.file.lock().unwrap_or_else(|p| p.into_inner());
        f.write_all(text.as_bytes()).map_err(|e| format!("cannot write the observe log {}: {e}", self.path.display()))
    }
}

/// The `check` line for a verdict.
pub fn check_line(session: &str, call: &str, time_ms: u64, tool: &str, args: &[u8], v: &Verdict) -> Value {
    let args = serde_json::from_slice::<Value>(args).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(args).into_owned()));
    json!({"microloop": "observe", "event": "check", "session": session, "call": call, "time": iso_time(time_ms),
        "tool": tool, "args": args, "action": action_name(v.observed.unwrap_or(v.action)), "rule": v.rule,
        "message": v.message, "count": v.count})
}

/// The `record` line for a result.
pub fn record_line(session: &str, call: &str, output: &[u8], error: bool) -> Value {
    json!({"microloop": "observe", "event": "record", "session": session, "call": call,
        "output": String::from_utf8_lossy(output), "error": error})
}

/// Milliseconds since the Unix epoch as ISO 8601 UTC (`2026-01-01T00:00:00.000Z`).
pub fn iso_time(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z", rem / 3600, rem / 60 % 60, rem % 60, ms % 1000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use microloop_core::{Action, Engine, Policy, Session};
    use std::sync::Arc;

    #[test]
    fn times_are_iso_8601_utc() {
        assert_eq!(iso_time(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso_time(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(iso_time(1_798_761_599_999), "2026-12-31T23:59:59.999Z");
    }

    #[test]
    fn lines_carry_the_would_be_verdict() {
        let engine = Arc::new(Engine::new(Policy::from_json(br#"{"mode": "observe", "tools": [{"name": "rm", "allow": false}]}"#).unwrap()).unwrap());
        let mut s = Session::new(engine);
        let v = s.check("rm", br#"{"path": "/"}"#, 0).unwrap();
        assert_eq!(v.action, Action::Allow);
        let line = check_line("s1", "c1", 0, "rm", br#"{"path": "/"}"#, &v);
        assert_eq!(line["action"], "block");
        assert_eq!(line["rule"], "tool.denied");
        assert_eq!(line["args"], json!({"path": "/"}));
        assert_eq!(check_line("s1", "c2", 0, "t", b"not json", &v)["args"], "not json");
        let dir = std::env::temp_dir().join(format!("microloop-observe-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("log.jsonl");
        std::fs::remove_file(&path).ok();
        let log = ObserveLog::open(&path).unwrap();
        log.check("s1", "c1", 0, "rm", b"{}", &v).unwrap();
        log.record("s1", "c1", b"removed", false).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 2);
        assert_eq!((lines[1]["event"].as_str(), lines[1]["output"].as_str()), (Some("record"), Some("removed")));
        std::fs::remove_dir_all(&dir).ok();
    }
}
