//! Run records already decoded, kept with the exact text they came from.
//!
//! `list_runs` reads every run of an agent, and an agent's runs rarely
//! change once stored, so the same documents come back call after call.
//! Decoding them is most of what a long list costs (the call is CPU-bound:
//! about two thirds of its client CPU went to decoding 1,000 runs). A
//! record is an immutable value, so when Redis returns, byte for byte, the
//! text a record was decoded from, that record is the answer and is handed
//! out again; comparing the bytes costs a `memcmp` where decoding them
//! costs a full parse. Anything else is decoded as before, so what a call
//! returns, and every error it raises, is what it would be without the
//! cache: only the work is saved.
//!
//! The cache is bounded by the bytes it holds (each entry's JSON text and
//! key; the decoded record, which shares nothing with them, takes about
//! half as much again) and forgets the least recently used entry first.

use std::sync::Arc;

use lru::LruCache;

use crate::model::RunRecord;

/// The default budget: about 17,000 runs of the size the benchmarks use
/// (1.9 kB of JSON and key each), or a few agents' worth of history.
pub const DEFAULT_RUN_CACHE_BYTES: usize = 32 * 1024 * 1024;

struct Entry {
    json: Vec<u8>,
    record: Arc<RunRecord>,
}

/// Not synchronized: the backend keeps it behind a mutex, taken once per
/// batch of records, never while decoding.
pub struct RunCache {
    budget: usize,
    used: usize,
    entries: LruCache<String, Entry>,
    hits: u64,
    misses: u64,
}

/// What a cache holds and how it has served, for tuning its budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunCacheInfo {
    /// Lookups answered from the cache, and those that had to decode.
    pub hits: u64,
    pub misses: u64,
    pub entries: usize,
    /// Bytes held, as counted against `max_bytes`.
    pub bytes: usize,
    pub max_bytes: usize,
}

impl RunCache {
    /// A cache holding at most `budget` bytes; `0` keeps nothing.
    pub fn new(budget: usize) -> Self {
        RunCache { budget, used: 0, entries: LruCache::unbounded(), hits: 0, misses: 0 }
    }

    pub fn is_enabled(&self) -> bool {
        self.budget > 0
    }

    /// The record decoded from exactly `json` at `key`, if it is held.
    pub fn get(&mut self, key: &str, json: &[u8]) -> Option<Arc<RunRecord>> {
        let found = self.entries.get(key).filter(|entry| entry.json == json).map(|entry| entry.record.clone());
        if found.is_some() {
            self.hits += 1;
        } else {
            self.misses += 1;
        }
        found
    }

    /// Keeps `record`, decoded from `json` at `key`, replacing what the key
    /// held; entries used least recently go to make room. A value larger
    /// than the whole budget is not kept.
    pub fn put(&mut self, key: String, json: Vec<u8>, record: Arc<RunRecord>) {
        let cost = cost(&key, &json);
        if cost > self.budget {
            if let Some(old) = self.entries.pop(&key) {
                self.used -= cost_of(&key, &old);
            }
            return;
        }
        // Out before making room: left in place, the old entry could be
        // popped as least recently used and counted off a second time.
        if let Some(old) = self.entries.pop(&key) {
            self.used -= cost_of(&key, &old);
        }
        while self.used + cost > self.budget {
            match self.entries.pop_lru() {
                Some((k, old)) => self.used -= cost_of(&k, &old),
                None => break,
            }
        }
        self.used += cost;
        self.entries.put(key, Entry { json, record });
    }

    /// Bytes held, as counted against the budget.
    pub fn used(&self) -> usize {
        self.used
    }

    pub fn info(&self) -> RunCacheInfo {
        RunCacheInfo {
            hits: self.hits,
            misses: self.misses,
            entries: self.entries.len(),
            bytes: self.used,
            max_bytes: self.budget,
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

fn cost(key: &str, json: &[u8]) -> usize {
    key.len() + json.len()
}

fn cost_of(key: &str, entry: &Entry) -> usize {
    cost(key, &entry.json)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire;

    fn run(n: usize) -> (Vec<u8>, Arc<RunRecord>) {
        let json = format!(
            r#"{{"id":"0191c0de-0000-7000-8000-{n:012}","agent_id":"a","calls":[],"started_at":"2026-03-31T12:00:00Z"}}"#
        );
        let record = wire::from_json::<RunRecord>(json.as_bytes()).expect("a valid run");
        (json.into_bytes(), Arc::new(record))
    }

    #[test]
    fn hands_back_the_record_only_for_the_same_bytes() {
        let mut cache = RunCache::new(1 << 20);
        let (json, record) = run(1);
        cache.put("k".into(), json.clone(), record.clone());
        let got = cache.get("k", &json).expect("held");
        assert!(Arc::ptr_eq(&got, &record), "the very record, not a copy");
        let mut changed = json.clone();
        changed.push(b' ');
        assert!(cache.get("k", &changed).is_none(), "other bytes at the same key are a miss");
        assert!(cache.get("other", &json).is_none(), "the same bytes at another key are a miss");
        let info = cache.info();
        assert_eq!((info.hits, info.misses, info.entries), (1, 2, 1));
        assert_eq!((info.bytes, info.max_bytes), (cost("k", &json), 1 << 20));
    }

    #[test]
    fn stays_within_its_budget_dropping_the_least_recently_used() {
        let (j1, r1) = run(1);
        let (j2, r2) = run(2);
        let (j3, r3) = run(3);
        let one = cost("k1", &j1);
        let mut cache = RunCache::new(2 * one);
        cache.put("k1".into(), j1.clone(), r1);
        cache.put("k2".into(), j2.clone(), r2);
        assert!(cache.get("k1", &j1).is_some()); // k1 is now the most recent
        cache.put("k3".into(), j3.clone(), r3);
        assert_eq!(cache.len(), 2);
        assert_eq!(cache.used(), 2 * one);
        assert!(cache.get("k2", &j2).is_none(), "least recently used goes first");
        assert!(cache.get("k1", &j1).is_some() && cache.get("k3", &j3).is_some());
    }

    #[test]
    fn replacing_a_key_counts_its_bytes_once() {
        let (j1, r1) = run(1);
        let (j2, r2) = run(2);
        let mut cache = RunCache::new(1 << 20);
        cache.put("k".into(), j1.clone(), r1);
        cache.put("k".into(), j2.clone(), r2);
        assert_eq!(cache.len(), 1);
        assert_eq!(cache.used(), cost("k", &j2));
        assert!(cache.get("k", &j1).is_none() && cache.get("k", &j2).is_some());
    }

    #[test]
    fn a_key_replaced_by_longer_text_while_least_recently_used_is_counted_once() {
        let (j1, r1) = run(1);
        let (j2, r2) = run(2);
        let (j3, r3) = run(3);
        let mut longer = j1.clone();
        longer.truncate(longer.len() - 1);
        longer.extend_from_slice(br#","ended_at":"2026-03-31T12:00:01Z"}"#);
        let budget = cost("k1", &j1) + cost("k2", &j2) + cost("k3", &j3);
        let mut cache = RunCache::new(budget);
        cache.put("k1".into(), j1, r1.clone());
        cache.put("k2".into(), j2.clone(), r2);
        cache.put("k3".into(), j3.clone(), r3);
        // k1 is the least recently used, and its new text does not fit
        // without dropping one more entry.
        cache.put("k1".into(), longer.clone(), r1);
        let held: usize = [("k1", &longer), ("k2", &j2), ("k3", &j3)]
            .iter()
            .filter(|(k, j)| cache.entries.peek(*k).is_some_and(|e| &e.json == *j))
            .map(|(k, j)| cost(k, j))
            .sum();
        assert_eq!(cache.used(), held, "the count is what is held");
        assert!(cache.used() <= budget);
        assert!(cache.get("k1", &longer).is_some(), "the new text is kept");
        assert_eq!(cache.len(), 2, "k2 made room");
    }

    #[test]
    fn a_zero_budget_or_an_oversized_value_keeps_nothing() {
        let (json, record) = run(1);
        let mut off = RunCache::new(0);
        assert!(!off.is_enabled());
        off.put("k".into(), json.clone(), record.clone());
        assert!(off.is_empty() && off.used() == 0);

        let mut small = RunCache::new(cost("k", &json));
        small.put("k".into(), json.clone(), record.clone());
        assert_eq!(small.len(), 1);
        let mut bigger = json.clone();
        bigger.push(b' ');
        small.put("k".into(), bigger, record);
        assert!(small.is_empty() && small.used() == 0, "the stale entry goes too");
    }
}
