//! Conversations kept between requests, for APIs whose client sends only the new items of a turn
//! (the Responses API's `previous_response_id`).
//!
//! Kept in memory by default, bounded in entries, bytes and age (oldest first out); or in Redis
//! (`--store redis://…`) so several proxy replicas share them. A miss (evicted, expired, kept by
//! no replica) is not an error: the request is judged on what it carries and the answer says so
//! in `x-microloop-previous-response: missing`.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::config::Config;

/// One kept conversation.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Stored {
    /// The conversation's items through the answer, as the dialect keeps them.
    pub items: Vec<Value>,
    /// Calls in the answer that the client never saw (a stopped turn): the next request gets a
    /// result for each, so the upstream's stored conversation stays valid.
    pub hidden: Vec<String>,
}

impl Stored {
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(&json!({"items": self.items, "hidden": self.hidden})).unwrap_or_default()
    }

    pub fn from_bytes(b: &[u8]) -> Result<Stored, String> {
        let v: Value = serde_json::from_slice(b).map_err(|e| format!("a kept conversation is not JSON ({e})"))?;
        let items = v.get("items").and_then(Value::as_array).cloned().unwrap_or_default();
        let hidden = v
            .get("hidden")
            .and_then(Value::as_array)
            .map(|h| h.iter().filter_map(Value::as_str).map(str::to_owned).collect())
            .unwrap_or_default();
        Ok(Stored { items, hidden })
    }
}

pub enum Store {
    Memory(Memory),
    Redis(crate::redis::Redis),
}

impl Store {
    pub fn open(cfg: &Config) -> Result<Store, String> {
        match cfg.store.as_deref() {
            None | Some("memory") | Some("") => Ok(Store::Memory(Memory::new(cfg.store_max_entries, cfg.store_max_bytes, cfg.store_ttl))),
            Some(url) if url.starts_with("redis://") => Ok(Store::Redis(crate::redis::Redis::new(url, cfg.store_ttl)?)),
            Some(other) => Err(format!("--store is memory or redis://HOST:PORT[/DB], not `{other}`")),
        }
    }

    pub async fn get(&self, id: &str) -> Result<Option<Stored>, String> {
        match self {
            Store::Memory(m) => m.get(id).map(|b| Stored::from_bytes(&b)).transpose(),
            Store::Redis(r) => r.get(id).await?.map(|b| Stored::from_bytes(&b)).transpose(),
        }
    }

    pub async fn put(&self, id: &str, s: &Stored) -> Result<(), String> {
        match self {
            Store::Memory(m) => {
                m.put(id, s.to_bytes());
                Ok(())
            }
            Store::Redis(r) => r.put(id, &s.to_bytes()).await,
        }
    }
}

/// The in-memory map: insertion order is age order, so the oldest entries go first.
pub struct Memory {
    max_entries: usize,
    max_bytes: usize,
    ttl: Duration,
    inner: Mutex<MemoryInner>,
}

#[derive(Default)]
struct MemoryInner {
    map: HashMap<String, (Instant, Vec<u8>)>,
    order: VecDeque<(Instant, String)>,
    bytes: usize,
}

impl Memory {
    pub fn new(max_entries: usize, max_bytes: usize, ttl: Duration) -> Memory {
        Memory { max_entries, max_bytes, ttl, inner: Mutex::default() }
    }

    pub fn get(&self, id: &str) -> Option<Vec<u8>> {
        let mut g = self.inner.lock().unwrap();
        g.expire(self.ttl);
        g.map.get(id).map(|(_, b)| b.clone())
    }

    pub fn put(&self, id: &str, bytes: Vec<u8>) {
        if bytes.len() > self.max_bytes || self.max_entries == 0 {
            return;
        }
        let mut g = self.inner.lock().unwrap();
        g.expire(self.ttl);
        let now = Instant::now();
        g.bytes += bytes.len();
        if let Some((_, old)) = g.map.insert(id.to_owned(), (now, bytes)) {
            g.bytes -= old.len();
        }
        g.order.push_back((now, id.to_owned()));
        while g.map.len() > self.max_entries || g.bytes > self.max_bytes {
            if !g.pop_oldest() {
                break;
            }
        }
    }

    pub fn len(&self) -> usize {
        self.inner.lock().unwrap().map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl MemoryInner {
    /// Removes the oldest entry; false when there is none.
    fn pop_oldest(&mut self) -> bool {
        let Some((t, id)) = self.order.pop_front() else { return false };
        // An id put again later has a newer time: this older order entry is stale.
        if self.map.get(&id).is_some_and(|(t2, _)| *t2 == t) {
            if let Some((_, b)) = self.map.remove(&id) {
                self.bytes -= b.len();
            }
        }
        true
    }

    fn expire(&mut self, ttl: Duration) {
        let now = Instant::now();
        while self.order.front().is_some_and(|(t, _)| now.duration_since(*t) > ttl) {
            self.pop_oldest();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_entries_go_first_when_full() {
        let m = Memory::new(2, 1 << 20, Duration::from_secs(60));
        m.put("a", b"1".to_vec());
        m.put("b", b"2".to_vec());
        m.put("c", b"3".to_vec());
        assert_eq!((m.get("a"), m.get("b"), m.get("c")), (None, Some(b"2".to_vec()), Some(b"3".to_vec())));
        assert_eq!(m.len(), 2);
    }

    #[test]
    fn the_byte_limit_holds_and_a_rewrite_is_counted_once() {
        let m = Memory::new(100, 10, Duration::from_secs(60));
        m.put("a", vec![0; 6]);
        m.put("a", vec![0; 6]);
        assert!(m.get("a").is_some(), "rewriting an entry does not count it twice");
        m.put("b", vec![0; 6]);
        assert_eq!((m.get("a"), m.get("b").map(|b| b.len())), (None, Some(6)));
        m.put("huge", vec![0; 11]);
        assert!(m.get("huge").is_none());
    }

    #[test]
    fn entries_expire() {
        let m = Memory::new(10, 1 << 20, Duration::from_millis(20));
        m.put("a", b"1".to_vec());
        std::thread::sleep(Duration::from_millis(40));
        assert!(m.get("a").is_none() && m.is_empty());
    }

    #[test]
    fn stored_round_trips() {
        let s = Stored { items: vec![json!({"type": "function_call", "call_id": "c"})], hidden: vec!["c".into()] };
        assert_eq!(Stored::from_bytes(&s.to_bytes()).unwrap(), s);
        assert!(Stored::from_bytes(b"nope").is_err());
    }
}
