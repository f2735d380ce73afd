//! Checking a log after the fact, and proving one record is in it.
//!
//! [`verify`] reads every line: records must count up from 0 with no gap; at each checkpoint the
//! signature must be by the given key, the tree size the number of records before it and the root
//! their RFC 6962 head; after the last checkpoint no record may follow. With a pinned earlier
//! checkpoint (`trusted`), the log must still hold that tree: a log rewritten or rolled back since
//! is caught even when whoever did it holds the signing key.

use std::fmt;

use crate::log::{CheckpointLine, Record};
use crate::merkle::{inclusion_proof, leaf_hash, root_of, Frontier, Hash};
use crate::note::{Checkpoint, NoteVerifier};

/// Where a log stops being trustworthy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tampered {
    /// 1-based line of the file.
    pub line: usize,
    /// The first record that cannot be trusted, when one can be named.
    pub first_bad_seq: Option<u64>,
    pub message: String,
}

impl fmt::Display for Tampered {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)?;
        if let Some(s) = self.first_bad_seq {
            write!(f, " (first bad record: seq {s})")?;
        }
        Ok(())
    }
}

/// A log that verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub records: u64,
    pub checkpoints: u64,
    /// The last checkpoint's signed note: pin it to check the next verification against it.
    pub last_note: String,
    pub last: Checkpoint,
}

/// A verified log's records and leaves, kept by [`read`] for proofs.
#[derive(Debug, Clone)]
pub struct Leaves {
    pub lines: Vec<String>,
    pub hashes: Vec<Hash>,
    pub verified: Verified,
}

/// Verifies a log; see the module doc.
pub fn verify(log: &[u8], key: &NoteVerifier, trusted: Option<&Checkpoint>) -> Result<Verified, Tampered> {
    walk(log, key, trusted, false).map(|l| l.verified)
}

/// Verifies a log and keeps its records, for [`prove`].
pub fn read(log: &[u8], key: &NoteVerifier) -> Result<Leaves, Tampered> {
    walk(log, key, None, true)
}

fn walk(log: &[u8], key: &NoteVerifier, trusted: Option<&Checkpoint>, keep: bool) -> Result<Leaves, Tampered> {
    let mut frontier = Frontier::new();
    // A pinned checkpoint is compared with the tree at its size, whenever the walk passes it.
    let mut trusted_seen = trusted.is_none();
    let mut lines = Vec::new();
    let mut hashes = Vec::new();
    let mut covered = 0u64;
    let mut checkpoints = 0u64;
    let mut last: Option<(String, Checkpoint)> = None;
    let mut origin: Option<String> = None;
    let mut line_no = 0;
    let text = match log.last() {
        None => &log[..0],
        Some(b'\n') => &log[..log.len() - 1],
        Some(_) => {
            let n = log.iter().filter(|&&b| b == b'\n').count() + 1;
            return Err(Tampered { line: n, first_bad_seq: Some(count_records(log)), message: "the log ends in a partial line (truncated)".into() });
        }
    };
    let check_trusted = |frontier: &Frontier, line_no: usize, trusted_seen: &mut bool| -> Result<(), Tampered> {
        if let Some(t) = trusted {
            if !*trusted_seen && frontier.size() == t.size {
                *trusted_seen = true;
                if frontier.root() != t.root {
                    return Err(Tampered {
                        line: line_no,
                        first_bad_seq: None,
                        message: format!("the log's first {} records differ from the trusted checkpoint's (the log was rewritten)", t.size),
                    });
                }
            }
        }
        Ok(())
    };
    check_trusted(&frontier, 0, &mut trusted_seen)?;
    if !text.is_empty() {
        for line in text.split(|&b| b == b'\n') {
            line_no += 1;
            let next = frontier.size();
            let bad = |message: String, seq: Option<u64>| Tampered { line: line_no, first_bad_seq: seq, message };
            if line.starts_with(b"{\"seq\":") {
                let r: Record = serde_json::from_slice(line)
                    .map_err(|e| bad(format!("a record that does not parse: {e}"), Some(next)))?;
                if r.seq != next {
                    return Err(bad(format!("record seq {} where seq {next} was expected (a record was removed, reordered or inserted)", r.seq), Some(next.min(r.seq))));
                }
                let h = leaf_hash(line);
                frontier.push(h);
                if keep {
                    lines.push(String::from_utf8_lossy(line).into_owned());
                    hashes.push(h);
                }
                check_trusted(&frontier, line_no, &mut trusted_seen)?;
            } else if line.starts_with(b"{\"checkpoint\":") {
                let c: CheckpointLine = serde_json::from_slice(line)
                    .map_err(|e| bad(format!("a checkpoint line that does not parse: {e}"), Some(covered)))?;
                let cp = Checkpoint::open(&c.checkpoint, key)
                    .map_err(|e| bad(format!("a checkpoint that does not verify: {e}"), Some(covered)))?;
                if let Some(o) = &origin {
                    if *o != cp.origin {
                        return Err(bad(format!("a checkpoint of another log ({:?}, not {o:?})", cp.origin), Some(covered)));
                    }
                }
                origin.get_or_insert_with(|| cp.origin.clone());
                if cp.size != next {
                    return Err(bad(format!("a checkpoint for {} records after {next} records", cp.size), Some(covered.min(cp.size))));
                }
                if cp.root != frontier.root() {
                    return Err(bad(
                        format!("the records seq {covered}..{} do not match the checkpoint's root (one of them was changed)", next.saturating_sub(1)),
                        Some(covered),
                    ));
                }
                covered = next;
                checkpoints += 1;
                last = Some((c.checkpoint, cp));
            } else {
                return Err(bad("neither a record nor a checkpoint".into(), Some(next)));
            }
        }
    }
    let records = frontier.size();
    let Some((last_note, last)) = last else {
        return Err(Tampered { line: line_no, first_bad_seq: Some(0), message: "the log has no signed checkpoint".into() });
    };
    if records > covered {
        return Err(Tampered {
            line: line_no,
            first_bad_seq: Some(covered),
            message: format!("records seq {covered}..{} follow the last checkpoint: no signature covers them (appended, or the writer did not close)", records - 1),
        });
    }
    if let Some(t) = trusted {
        if t.origin != last.origin {
            return Err(Tampered { line: 0, first_bad_seq: None, message: format!("the trusted checkpoint is of another log ({:?}, not {:?})", t.origin, last.origin) });
        }
        if !trusted_seen {
            return Err(Tampered {
                line: line_no,
                first_bad_seq: Some(records),
                message: format!("the log has {records} records but the trusted checkpoint has {}: it was rolled back or truncated", t.size),
            });
        }
    }
    Ok(Leaves { lines, hashes, verified: Verified { records, checkpoints, last_note, last } })
}

fn count_records(log: &[u8]) -> u64 {
    log.split(|&b| b == b'\n').filter(|l| l.starts_with(b"{\"seq\":")).count() as u64
}

/// An inclusion proof of one record in the tree of a signed checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proof {
    pub seq: u64,
    pub record: String,
    pub leaf: Hash,
    pub tree_size: u64,
    pub root: Hash,
    /// RFC 6962 audit path, from the leaf's sibling up.
    pub path: Vec<Hash>,
    pub checkpoint: String,
}

/// Proves record `seq` is in the tree of the log's last checkpoint (the log verified first).
pub fn prove(leaves: &Leaves, seq: u64) -> Option<Proof> {
    let size = leaves.verified.last.size as usize;
    let i = usize::try_from(seq).ok().filter(|&i| i < size)?;
    let path = inclusion_proof(&leaves.hashes[..size], i)?;
    debug_assert_eq!(root_of(&leaves.hashes[..size]), leaves.verified.last.root);
    Some(Proof {
        seq,
        record: leaves.lines[i].clone(),
        leaf: leaves.hashes[i],
        tree_size: size as u64,
        root: leaves.verified.last.root,
        path,
        checkpoint: leaves.verified.last_note.clone(),
    })
}
