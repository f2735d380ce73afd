//! A session's history as bytes, so a run can go on in another process.
//!
//! The form is compact and little-endian:
//!
//! ```text
//! "MLSS" | version u16 | reserved u16 | policy hash u64 | body | xxh3-64 of all before it
//! ```
//!
//! The body holds the window of calls (fingerprints, effect, sketches, outcomes), the counters,
//! per-tool counts, the quoted errors, recent start times, registered tools and a halt: all a
//! check reads. The policy is not in it: a snapshot names the hash of the parsed policy and
//! [`Session::load`] refuses it under another one unless told to. Caches a session rebuilds on
//! its own (tool resolutions, the parsed-arguments buffer) are left out.
//!
//! Bytes that are truncated, corrupt, foreign or of a newer version give a [`SnapshotError`],
//! never a panic: every length is checked against what is left before anything is allocated.

use alloc::borrow::Cow;
use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;

use xxhash_rust::xxh3::xxh3_64;

use super::{fp_slot, Entry, Outcome, Session};
use crate::effect::Effect;
use crate::engine::Engine;
use crate::policy::Policy;
use crate::sketch::{ErrorKey, Ids, Sketch};

const MAGIC: &[u8; 4] = b"MLSS";
/// The format written; [`Session::load`] reads this one and refuses newer ones.
pub const SNAPSHOT_VERSION: u16 = 3;
const HEADER: usize = 4 + 2 + 2 + 8;
const TRAILER: usize = 8;

/// Why bytes could not be loaded as a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnapshotError {
    /// Not a MicroLoop snapshot (wrong magic, or shorter than a header).
    Foreign,
    /// Written by a newer MicroLoop.
    FutureVersion(u16),
    /// The checksum does not match: the bytes were changed or cut.
    Corrupt,
    /// The checksum matches but the body does not parse (a bug, or a forged checksum).
    Malformed(&'static str),
    /// Written under another policy; [`Session::load`] with `any_policy` takes it anyway.
    PolicyMismatch { saved: u64, current: u64 },
}

impl fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            SnapshotError::Foreign => f.write_str("not a MicroLoop session snapshot"),
            SnapshotError::FutureVersion(v) => {
                write!(f, "the snapshot has format version {v}; this MicroLoop reads up to {SNAPSHOT_VERSION}")
            }
            SnapshotError::Corrupt => f.write_str("the snapshot is corrupt or truncated (checksum mismatch)"),
            SnapshotError::Malformed(what) => write!(f, "the snapshot is malformed: {what}"),
            SnapshotError::PolicyMismatch { saved, current } => write!(
                f,
                "the snapshot was saved under another policy (hash {saved:016x}, this one is {current:016x})"
            ),
        }
    }
}

/// A hash of a parsed policy: equal for the same rules however they were written (JSON, TOML,
/// key order, a preset spelled out).
pub fn policy_hash(policy: &Policy) -> u64 {
    xxh3_64(format!("{policy:?}").as_bytes())
}

struct Writer(Vec<u8>);

impl Writer {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn len(&mut self, n: usize) {
        self.u32(n as u32);
    }
    fn str(&mut self, s: &str) {
        self.len(s.len());
        self.0.extend_from_slice(s.as_bytes());
    }
    fn effect(&mut self, e: Effect) {
        self.u8(matches!(e, Effect::Write) as u8);
    }
    fn ids(&mut self, ids: &Ids) {
        for w in ids.words() {
            self.u64(w);
        }
    }
    fn sketch(&mut self, s: &Option<Sketch>) {
        match s {
            None => self.u8(0),
            Some(s) => {
                self.u8(1);
                self.0.extend_from_slice(&s.to_bytes());
            }
        }
    }
}

struct Reader<'a> {
    rest: &'a [u8],
}

type R<T> = Result<T, SnapshotError>;

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> R<&'a [u8]> {
        if self.rest.len() < n {
            return Err(SnapshotError::Malformed("a field runs past the end"));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }
    fn u8(&mut self) -> R<u8> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> R<u32> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }
    fn u64(&mut self) -> R<u64> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().unwrap()))
    }
    fn bool(&mut self) -> R<bool> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(SnapshotError::Malformed("a flag is neither 0 nor 1")),
        }
    }
    /// A count of items of at least `min_size` bytes each: refused if the rest cannot hold them.
    fn len(&mut self, min_size: usize) -> R<usize> {
        let n = self.u32()? as usize;
        if n.saturating_mul(min_size.max(1)) > self.rest.len() {
            return Err(SnapshotError::Malformed(
                "a count is larger than the bytes left",
            ));
        }
        Ok(n)
    }
    fn str(&mut self) -> R<&'a str> {
        let n = self.len(1)?;
        core::str::from_utf8(self.take(n)?)
            .map_err(|_| SnapshotError::Malformed("a text is not UTF-8"))
    }
    fn effect(&mut self) -> R<Effect> {
        Ok(if self.bool()? {
            Effect::Write
        } else {
            Effect::Read
        })
    }
    fn sketch(&mut self) -> R<Option<Sketch>> {
        if !self.bool()? {
            return Ok(None);
        }
        let bytes = self.take(Sketch::BYTES)?;
        Ok(Some(Sketch::from_bytes(bytes.try_into().unwrap())))
    }
    /// A call's argument sketch and, tagged 2, its prose sketch.
    fn sketches(&mut self) -> R<(Option<Sketch>, Option<Box<Sketch>>)> {
        let tag = self.u8()?;
        let mut one = || -> R<Sketch> { Ok(Sketch::from_bytes(self.take(Sketch::BYTES)?.try_into().unwrap())) };
        match tag {
            0 => Ok((None, None)),
            1 => Ok((Some(one()?), None)),
            2 => Ok((Some(one()?), Some(Box::new(one()?)))),
            _ => Err(SnapshotError::Malformed("a sketch tag is not 0, 1 or 2")),
        }
    }
    fn ids(&mut self) -> R<Ids> {
        Ok(Ids::from_words([self.u64()?, self.u64()?]))
    }
}

impl Session {
    /// The session as bytes for [`Session::load`]: the history window and every counter.
    pub fn save(&self) -> Vec<u8> {
        let mut w = Writer(Vec::with_capacity(HEADER + 64 + self.history.len() * 96));
        w.0.extend_from_slice(MAGIC);
        w.0.extend_from_slice(&SNAPSHOT_VERSION.to_le_bytes());
        w.0.extend_from_slice(&0u16.to_le_bytes());
        w.u64(policy_hash(&self.engine.policy));

        for v in [
            self.next_call_id,
            self.calls,
            self.blocked,
            self.errors,
            self.results,
            self.late,
        ] {
            w.u64(v);
        }
        w.u32(self.epoch);
        w.u32(self.blocks_since_progress);

        // Tool names once each; calls name them by index.
        let mut names: Vec<&str> = Vec::new();
        let mut refs: Vec<u32> = Vec::with_capacity(self.history.len());
        for e in &self.history {
            let i = names
                .iter()
                .position(|n| *n == &*e.tool)
                .unwrap_or_else(|| {
                    names.push(&e.tool);
                    names.len() - 1
                });
            refs.push(i as u32);
        }
        w.len(names.len());
        for n in &names {
            w.str(n);
        }
        w.len(self.history.len());
        for (e, name) in self.history.iter().zip(refs) {
            w.u64(e.fp);
            w.u64(e.tool_fp);
            w.u32(name);
            w.effect(e.effect);
            // Version 3: a sketch tagged 2 is followed by its call's prose sketch.
            match (&e.sketch, self.prose_of(e)) {
                (Some(sk), Some(prose)) => {
                    w.u8(2);
                    w.0.extend_from_slice(&sk.to_bytes());
                    w.0.extend_from_slice(&prose.to_bytes());
                }
                (sk, _) => w.sketch(sk),
            }
            match &e.outcome {
                None => w.u8(0),
                Some(o) => {
                    w.u8(1
                        | (o.error as u8) << 1
                        | (o.transient as u8) << 2
                        | (o.changed as u8) << 3
                        | (o.error_key.is_some() as u8) << 4
                        | ((o.answer_ids != 0) as u8) << 5);
                    w.u64(o.result);
                    w.u32(o.epoch_before);
                    w.u32(o.epoch_after);
                    w.sketch(&o.sketch);
                    // Version 2: each only when it is not the default (flags 16, 32).
                    if let Some(k) = &o.error_key {
                        w.u64(k.key);
                        w.ids(&k.echoed);
                        w.u8(k.own_ids as u8);
                    }
                    if o.answer_ids != 0 {
                        w.u32(o.answer_ids);
                    }
                }
            }
        }
        w.len(self.in_flight_evicted.len());
        for (id, effect) in &self.in_flight_evicted {
            w.u64(*id);
            w.effect(*effect);
        }
        w.len(self.per_tool.len());
        for (fp, n) in &self.per_tool {
            w.u64(*fp);
            w.u64(*n);
        }
        w.len(self.last_errors.len());
        for (fp, (id, text)) in &self.last_errors {
            w.u64(*fp);
            w.u64(*id);
            w.str(text);
        }
        w.len(self.recent.len());
        for t in &self.recent {
            w.u64(*t);
        }
        match &self.tools {
            None => w.u8(0),
            Some(tools) => {
                w.u8(1);
                w.len(tools.len());
                for t in tools {
                    w.str(t);
                }
            }
        }
        match &self.halted {
            None => w.u8(0),
            Some((rule, message)) => {
                w.u8(1);
                w.str(rule);
                w.str(message);
            }
        }
        let sum = xxh3_64(&w.0);
        w.u64(sum);
        w.0
    }

    /// A session from [`Session::save`]'s bytes, on `engine`. Refused when the snapshot was saved
    /// under another policy, unless `any_policy`: then the history is judged by the new rules.
    pub fn load(
        engine: Arc<Engine>,
        bytes: &[u8],
        any_policy: bool,
    ) -> Result<Session, SnapshotError> {
        if bytes.len() < HEADER + TRAILER || &bytes[..4] != MAGIC {
            return Err(SnapshotError::Foreign);
        }
        let version = u16::from_le_bytes([bytes[4], bytes[5]]);
        if version > SNAPSHOT_VERSION {
            return Err(SnapshotError::FutureVersion(version));
        }
        let (body, sum) = bytes.split_at(bytes.len() - TRAILER);
        if xxh3_64(body) != u64::from_le_bytes(sum.try_into().unwrap()) {
            return Err(SnapshotError::Corrupt);
        }
        let saved = u64::from_le_bytes(bytes[8..16].try_into().unwrap());
        let current = policy_hash(&engine.policy);
        if saved != current && !any_policy {
            return Err(SnapshotError::PolicyMismatch { saved, current });
        }
        let mut r = Reader {
            rest: &body[HEADER..],
        };
        let mut s = Session::new(engine);
        s.next_call_id = r.u64()?;
        s.calls = r.u64()?;
        s.blocked = r.u64()?;
        s.errors = r.u64()?;
        s.results = r.u64()?;
        s.late = r.u64()?;
        s.epoch = r.u32()?;
        s.blocks_since_progress = r.u32()?;

        let n = r.len(4)?;
        let mut names: Vec<Arc<str>> = Vec::with_capacity(n);
        for _ in 0..n {
            names.push(Arc::from(r.str()?));
        }
        let n = r.len(8 + 8 + 4 + 1 + 1 + 1)?;
        if n as u64 >= s.next_call_id {
            return Err(SnapshotError::Malformed(
                "more calls in the window than were issued",
            ));
        }
        let window = s.engine.policy.window as usize;
        // A smaller window under a new policy keeps the newest calls.
        let skip = n.saturating_sub(window);
        for i in 0..n {
            let fp = r.u64()?;
            let tool_fp = r.u64()?;
            let name = names
                .get(r.u32()? as usize)
                .ok_or(SnapshotError::Malformed("a call names no tool"))?
                .clone();
            let effect = r.effect()?;
            let (sketch, prose) = r.sketches()?;
            let flags = r.u8()?;
            let outcome = match flags & 1 {
                0 => None,
                _ => Some(Outcome {
                    error: flags & 2 != 0,
                    transient: flags & 4 != 0,
                    changed: flags & 8 != 0,
                    result: r.u64()?,
                    epoch_before: r.u32()?,
                    epoch_after: r.u32()?,
                    sketch: r.sketch()?,
                    error_key: if flags & 16 != 0 {
                        Some(Box::new(ErrorKey { key: r.u64()?, echoed: r.ids()?, own_ids: r.u8()? != 0 }))
                    } else {
                        None
                    },
                    answer_ids: if flags & 32 != 0 { r.u32()? } else { 0 },
                }),
            };
            if i < skip {
                continue;
            }
            if let Some(p) = &prose {
                s.proses.entry(fp).or_insert((**p, 0)).1 += 1;
            }
            s.history.push_back(Entry {
                fp,
                tool_fp,
                tool: name,
                effect,
                sketch,
                prose: prose.is_some(),
                outcome,
            });
            s.fps.push_back(fp);
            if let Some(slot) = s.fp_slots.get_mut(fp_slot(fp)) {
                *slot += 1;
            }
        }
        let n = r.len(9)?;
        for _ in 0..n {
            let id = r.u64()?;
            s.in_flight_evicted.insert(id, r.effect()?);
        }
        let n = r.len(16)?;
        for _ in 0..n {
            let fp = r.u64()?;
            s.per_tool.insert(fp, r.u64()?);
        }
        let n = r.len(20)?;
        for _ in 0..n {
            let fp = r.u64()?;
            let id = r.u64()?;
            s.last_errors.insert(fp, (id, Box::from(r.str()?)));
        }
        let n = r.len(8)?;
        let mut recent = VecDeque::with_capacity(n);
        for _ in 0..n {
            recent.push_back(r.u64()?);
        }
        s.recent = recent;
        if r.bool()? {
            let n = r.len(4)?;
            let mut tools = Vec::with_capacity(n);
            for _ in 0..n {
                tools.push(String::from(r.str()?));
            }
            s.tools = Some(tools);
        }
        if r.bool()? {
            let rule = String::from(r.str()?);
            let message = String::from(r.str()?);
            s.halted = Some((Cow::Owned(rule), message));
        }
        if !r.rest.is_empty() {
            return Err(SnapshotError::Malformed("bytes left after the last field"));
        }
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verdict::Action;

    fn engine(policy: &str) -> Arc<Engine> {
        Arc::new(Engine::new(Policy::from_json(policy.as_bytes()).unwrap()).unwrap())
    }

    /// A scripted run with loops, errors, writes and a late result; the same steps are applied to
    /// one session and to one saved and loaded between every step.
    type Step = (&'static str, String, Option<(&'static [u8], bool)>);

    fn steps() -> Vec<Step> {
        let mut v = Vec::new();
        for i in 0..40 {
            let (tool, args) = match i % 5 {
                0 => (
                    "open_page",
                    String::from(r#"{"url":"https://example.com/captcha"}"#),
                ),
                1 => ("run_tests", format!(r#"{{"path":"tests/{}"}}"#, i % 3)),
                2 => ("write_file", format!(r#"{{"path":"a.txt","text":"{i}"}}"#)),
                3 => ("search", format!(r#"{{"q":"error {}"}}"#, i / 10)),
                _ => ("run_tests", String::from(r#"{"path":"tests/0"}"#)),
            };
            let result: Option<(&[u8], bool)> = match i % 7 {
                6 => None,
                3 => Some((b"ModuleNotFoundError: no module named foo", true)),
                _ => Some((b"Please solve the CAPTCHA", false)),
            };
            v.push((tool, args, result));
        }
        v
    }

    #[test]
    fn a_saved_session_goes_on_with_the_verdicts_of_the_uninterrupted_one() {
        let policy = r#"{"preset":"balanced","loops":{"window":16,"max_identical":4}}"#;
        let mut straight = Session::new(engine(policy));
        let mut bytes = Session::new(engine(policy)).save();
        for (tool, args, result) in steps() {
            let mut resumed = Session::load(engine(policy), &bytes, false).unwrap();
            let a = straight.check(tool, args.as_bytes(), 1000).unwrap();
            let b = resumed.check(tool, args.as_bytes(), 1000).unwrap();
            assert_eq!(
                (a.action, &a.rule, &a.message, a.call_id, a.count),
                (b.action, &b.rule, &b.message, b.call_id, b.count)
            );
            if let (true, Some((out, err))) = (a.action.runs(), result) {
                straight.record(a.call_id, out, err).unwrap();
                resumed.record(b.call_id, out, err).unwrap();
            }
            assert_eq!(straight.stats(), resumed.stats());
            bytes = resumed.save();
        }
        assert!(
            straight.stats().blocked > 0,
            "the script has loops to block"
        );
        assert_eq!(
            Session::load(engine(policy), &bytes, false).unwrap().save(),
            straight.save()
        );
    }

    #[test]
    fn a_halt_and_the_registered_tools_survive() {
        let e = engine(r#"{"loops":{"max_blocked":1,"max_identical":1}}"#);
        let mut s = Session::new(e.clone());
        s.set_tools(&["a", "b"]);
        for _ in 0..4 {
            if let Ok(v) = s.check("a", b"{}", 0) {
                if v.action.runs() {
                    s.record(v.call_id, b"x", false).unwrap();
                }
            }
        }
        let mut t = Session::load(e, &s.save(), false).unwrap();
        assert_eq!(t.check("a", b"{}", 0).unwrap().action, Action::Halt);
        assert_eq!(
            t.check("c", b"{}", 0).unwrap().action,
            s.check("c", b"{}", 0).unwrap().action
        );
        assert_eq!(t.tools, s.tools);
    }

    #[test]
    fn bad_bytes_get_an_error_never_a_panic() {
        let e = engine("balanced");
        let mut s = Session::new(e.clone());
        for i in 0..20 {
            let v = s
                .check("t", format!(r#"{{"i":{i}}}"#).as_bytes(), 0)
                .unwrap();
            s.record(v.call_id, b"out", i % 2 == 0).unwrap();
        }
        let good = s.save();
        assert_eq!(
            Session::load(e.clone(), b"", false).err(),
            Some(SnapshotError::Foreign)
        );
        assert_eq!(
            Session::load(
                e.clone(),
                b"{\"json\": true, \"not\": \"a snapshot\"}",
                false
            )
            .err(),
            Some(SnapshotError::Foreign)
        );
        // Every byte; under Miri (each load checksums the whole snapshot: hours) every 29th.
        let step = if cfg!(miri) { 29 } else { 1 };
        for cut in (1..good.len()).step_by(step) {
            assert!(
                Session::load(e.clone(), &good[..cut], false).is_err(),
                "cut at {cut}"
            );
        }
        for at in (0..good.len()).step_by(step) {
            let mut bad = good.clone();
            bad[at] ^= 0x40;
            assert!(
                Session::load(e.clone(), &bad, false).is_err(),
                "flip at {at}"
            );
        }
        let mut future = good.clone();
        future[4] = 9;
        assert_eq!(
            Session::load(e.clone(), &future, false).err(),
            Some(SnapshotError::FutureVersion(9))
        );
        // A forged checksum over a body that lies about its counts is refused too.
        let mut forged = good[..good.len() - 8].to_vec();
        let at = HEADER + 6 * 8 + 8; // the count of tool names
        forged[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        let sum = xxh3_64(&forged);
        forged.extend_from_slice(&sum.to_le_bytes());
        assert!(matches!(
            Session::load(e, &forged, false),
            Err(SnapshotError::Malformed(_))
        ));
    }

    #[test]
    fn another_policy_is_refused_unless_asked() {
        let s = Session::new(engine("balanced"));
        let bytes = s.save();
        let err = Session::load(engine("strict"), &bytes, false)
            .err()
            .unwrap();
        assert!(matches!(err, SnapshotError::PolicyMismatch { .. }), "{err}");
        assert!(Session::load(engine("strict"), &bytes, true).is_ok());
        // The same rules written another way are the same policy.
        assert!(Session::load(engine(r#"{"preset":"balanced"}"#), &bytes, false).is_ok());
    }

    #[test]
    fn a_full_window_is_compact() {
        let e = engine("balanced");
        let mut s = Session::new(e);
        for i in 0..300 {
            let v = s
                .check(
                    "read_file",
                    format!(r#"{{"path":"src/{i}.rs"}}"#).as_bytes(),
                    0,
                )
                .unwrap();
            s.record(v.call_id, format!("fn f{i}() {{}}").as_bytes(), false)
                .unwrap();
        }
        let n = s.save().len();
        // About 160 bytes a call: fingerprints, two sketches, an answer's ids.
        assert!(n < 256 * 176, "{n} bytes");
    }
}
