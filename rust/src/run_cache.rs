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
//!
//! An entry can also be *tracked*: Redis has promised (client-side caching,
//! `CLIENT TRACKING`) to say when its key changes, and has not said so since
//! the entry's text was read under the tracking epoch it is marked with.
//! Such an entry is handed out without reading the key at all; the backend
//! untracks it the moment Redis says the key changed, and moves to a new
//! epoch whenever it can no longer be sure to hear of changes (a lost
//! connection, a flushed database), which untracks every entry at once.

use std::sync::Arc;

use lru::LruCache;

use crate::model::RunRecord;

/// The default budget: about 17,000 runs of the size the benchmarks use
/// (1.9 kB of JSON and key each), or a few agents' worth of history.
pub const DEFAULT_RUN_CACHE_BYTES: usize = 32 * 1024 * 1024;

/// The epoch of an entry no one is tracking; real epochs start at 1.
pub const UNTRACKED: u64 = 0;

struct Entry {
    json: Vec<u8>,
    record: Arc<RunRecord>,
    tracked: u64,
}

/// Not synchronized: the backend keeps it behind a mutex, taken once per
/// batch of records, never while decoding.
pub struct RunCache {
    budget: usize,
    used: usize,
    entries: LruCache<String, Entry>,
    hits: u64,
    misses: u64,
    tracked_hits: u64,
}

/// What a cache holds and how it has served, for tuning its budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunCacheInfo {
    /// Records answered from the cache, and those that had to be decoded.
    pub hits: u64,
    pub misses: u64,
    /// Of the hits, those answered without reading the key from Redis at
    /// all, because Redis was tracking it for this backend.
    pub tracked_hits: u64,
    pub entries: usize,
    /// Bytes held, as counted against `max_bytes`.
    pub bytes: usize,
    pub max_bytes: usize,
    /// Whether Redis is tracking cached runs for their owner right now (the
    /// owner fills this in; the cache itself cannot know).
    pub tracking: bool,
}

impl RunCache {
    /// A cache holding at most `budget` bytes; `0` keeps nothing.
    pub fn new(budget: usize) -> Self {
        RunCache { budget, used: 0, entries: LruCache::unbounded(), hits: 0, misses: 0, tracked_hits: 0 }
    }

    pub fn is_enabled(&self) -> bool {
        self.budget > 0
    }

    /// The record decoded from exactly `json` at `key`, if it is held. A
    /// hit read under tracking epoch `tracked` is marked with it (an entry
    /// read untracked keeps whatever mark it had: its text is unchanged).
    pub fn get(&mut self, key: &str, json: &[u8], tracked: u64) -> Option<Arc<RunRecord>> {
        let found = self.entries.get_mut(key).filter(|entry| entry.json == json).map(|entry| {
            if tracked != UNTRACKED {
                entry.tracked = tracked;
            }
            entry.record.clone()
        });
        if found.is_some() {
            self.hits += 1;
        } else {
            self.misses += 1;
        }
        found
    }

    /// The record at `key` if Redis is tracking it under `epoch`, so that
    /// it cannot have changed without the backend hearing of it.
    pub fn get_tracked(&mut self, key: &str, epoch: u64) -> Option<Arc<RunRecord>> {
        if epoch == UNTRACKED {
            return None;
        }
        let found = self.entries.get(key).filter(|entry| entry.tracked == epoch).map(|entry| entry.record.clone());
        if found.is_some() {
            self.hits += 1;
            self.tracked_hits += 1;
        }
        found
    }

    /// Redis said `key` changed: its entry must be read again before use.
    /// (The text stays, so an unchanged value still skips decoding.)
    pub fn untrack(&mut self, key: &[u8]) {
        if let Some(entry) = std::str::from_utf8(key).ok().and_then(|key| self.entries.peek_mut(key)) {
            entry.tracked = UNTRACKED;
        }
    }

    /// Keeps `record`, decoded from `json` at `key` (read under tracking
    /// epoch `tracked`, or [`UNTRACKED`]), replacing what the key held;
    /// entries used least recently go to make room. A value larger than the
    /// whole budget is not kept.
    pub fn put(&mut self, key: String, json: Vec<u8>, record: Arc<RunRecord>, tracked: u64) {
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
        self.entries.put(key, Entry { json, record, tracked });
    }

    /// Bytes held, as counted against the budget.
    pub fn used(&self) -> usize {
        self.used
    }

    pub fn info(&self) -> RunCacheInfo {
        RunCacheInfo {
            hits: self.hits,
            misses: self.misses,
            tracked_hits: self.tracked_hits,
            entries: self.entries.len(),
            bytes: self.used,
            max_bytes: self.budget,
            tracking: false,
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
        cache.put("k".into(), json.clone(), record.clone(), UNTRACKED);
        let got = cache.get("k", &json, UNTRACKED).expect("held");
        assert!(Arc::ptr_eq(&got, &record), "the very record, not a copy");
        let mut changed = json.clone();
        changed.push(b' ');
        assert!(cache.get("k", &changed, UNTRACKED).is_none(), "other bytes at the same key are a miss");
        assert!(cache.get("other", &json, UNTRACKED).is_none(), "the same bytes at another key are a miss");
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
        cache.put("k1".into(), j1.clone(), r1, UNTRACKED);
        cache.put("k2".into(), j2.clone(), r2, UNTRACKED);
        assert!(cache.get("k1", &j1, UNTRACKED).is_some()); // k1 is now the most recent
        cache.put("k3".into(), j3.clone(), r3, UNTRACKED);
        assert_eq!(cache.len(), 2);
        assert_eq!(cache.used(), 2 * one);
        assert!(cache.get("k2", &j2, UNTRACKED).is_none(), "least recently used goes first");
        assert!(cache.get("k1", &j1, UNTRACKED).is_some() && cache.get("k3", &j3, UNTRACKED).is_some());
    }

    #[test]
    fn replacing_a_key_counts_its_bytes_once() {
        let (j1, r1) = run(1);
        let (j2, r2) = run(2);
        let mut cache = RunCache::new(1 << 20);
        cache.put("k".into(), j1.clone(), r1, UNTRACKED);
        cache.put("k".into(), j2.clone(), r2, UNTRACKED);
        assert_eq!(cache.len(), 1);
        assert_eq!(cache.used(), cost("k", &j2));
        assert!(cache.get("k", &j1, UNTRACKED).is_none() && cache.get("k", &j2, UNTRACKED).is_some());
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
        cache.put("k1".into(), j1, r1.clone(), UNTRACKED);
        cache.put("k2".into(), j2.clone(), r2, UNTRACKED);
        cache.put("k3".into(), j3.clone(), r3, UNTRACKED);
        // k1 is the least recently used, and its new text does not fit
        // without dropping one more entry.
        cache.put("k1".into(), longer.clone(), r1, UNTRACKED);
        let held: usize = [("k1", &longer), ("k2", &j2), ("k3", &j3)]
            .iter()
            .filter(|(k, j)| cache.entries.peek(*k).is_some_and(|e| &e.json == *j))
            .map(|(k, j)| cost(k, j))
            .sum();
        assert_eq!(cache.used(), held, "the count is what is held");
        assert!(cache.used() <= budget);
        assert!(cache.get("k1", &longer, UNTRACKED).is_some(), "the new text is kept");
        assert_eq!(cache.len(), 2, "k2 made room");
    }

    #[test]
    fn a_zero_budget_or_an_oversized_value_keeps_nothing() {
        let (json, record) = run(1);
        let mut off = RunCache::new(0);
        assert!(!off.is_enabled());
        off.put("k".into(), json.clone(), record.clone(), UNTRACKED);
        assert!(off.is_empty() && off.used() == 0);

        let mut small = RunCache::new(cost("k", &json));
        small.put("k".into(), json.clone(), record.clone(), UNTRACKED);
        assert_eq!(small.len(), 1);
        let mut bigger = json.clone();
        bigger.push(b' ');
        small.put("k".into(), bigger, record, UNTRACKED);
        assert!(small.is_empty() && small.used() == 0, "the stale entry goes too");
    }

    #[test]
    fn a_tracked_entry_is_handed_out_unread_until_untracked_or_a_new_epoch() {
        let (json, record) = run(1);
        let mut cache = RunCache::new(1 << 20);
        cache.put("k".into(), json.clone(), record.clone(), UNTRACKED);
        assert!(cache.get_tracked("k", 1).is_none(), "written, never read under tracking");
        assert!(cache.get_tracked("k", UNTRACKED).is_none());
        assert!(cache.get("k", &json, 1).is_some(), "read under epoch 1 marks it");
        let got = cache.get_tracked("k", 1).expect("tracked under epoch 1");
        assert!(Arc::ptr_eq(&got, &record));
        assert!(cache.get_tracked("k", 2).is_none(), "a later epoch trusts nothing older");
        assert!(cache.get("k", &json, UNTRACKED).is_some());
        assert!(cache.get_tracked("k", 1).is_some(), "an untracked read of the same text keeps the mark");
        cache.untrack(b"k");
        assert!(cache.get_tracked("k", 1).is_none(), "Redis said it changed");
        assert!(cache.get("k", &json, UNTRACKED).is_some(), "the text still saves decoding");
        cache.untrack(b"absent");
        cache.untrack(&[0xff, 0xfe]);
        cache.put("k".into(), json.clone(), record, 3);
        assert!(cache.get_tracked("k", 3).is_some(), "put under epoch 3");
        let info = cache.info();
        assert_eq!((info.hits, info.tracked_hits, info.misses), (6, 3, 0));
    }
}
