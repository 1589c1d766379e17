//! Hashes of records that agree with their `==`, for Python's `hash()`.
//!
//! Models are immutable values (in Python, their lists and maps are
//! read-only views), so they hash, as frozen dataclasses do, and can go in
//! sets and be dict keys. Python requires `a == b` to imply `hash(a) == hash(b)`. `==` compares
//! most fields exactly, but JSON fields as Python values (`1 == 1.0`, key
//! order aside) and digests through their floats; rather than canonicalize
//! those, the hash leaves them out, along with fields from newer writers.
//! Two models differing only there collide, which costs a set lookup an
//! extra `==`, never a wrong answer.

use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::{Arc, OnceLock};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::json::Json;
use crate::model::WireEnum;
use crate::stats::Digest;

/// Feeds what `==` compares exactly into `state`.
pub trait ValueHash {
    fn value_hash<H: Hasher>(&self, state: &mut H);
}

/// Keyed afresh in each process, as Python's own `str` hashes are, so that
/// nobody can pick inputs that all land in one bucket.
pub fn hash_of(class: &str, value: &impl ValueHash) -> u64 {
    static KEYS: OnceLock<std::collections::hash_map::RandomState> = OnceLock::new();
    let mut state = KEYS.get_or_init(Default::default).build_hasher();
    class.hash(&mut state);
    value.value_hash(&mut state);
    state.finish()
}

macro_rules! exact {
    ($($t:ty),*) => {
        $( impl ValueHash for $t {
            fn value_hash<H: Hasher>(&self, state: &mut H) {
                self.hash(state);
            }
        } )*
    };
}

exact!(String, bool, u32, u64, usize, Uuid, DateTime<Utc>);

impl<E: WireEnum + Hash> ValueHash for E {
    fn value_hash<H: Hasher>(&self, state: &mut H) {
        self.hash(state);
    }
}

/// `0.0 == -0.0`, so both hash as zero; NaN equals nothing, so any hash does.
impl ValueHash for f64 {
    fn value_hash<H: Hasher>(&self, state: &mut H) {
        let bits = if *self == 0.0 { 0 } else { self.to_bits() };
        bits.hash(state);
    }
}

impl ValueHash for Json {
    fn value_hash<H: Hasher>(&self, _state: &mut H) {}
}

impl ValueHash for Digest {
    fn value_hash<H: Hasher>(&self, _state: &mut H) {}
}

impl<T: ValueHash> ValueHash for Option<T> {
    fn value_hash<H: Hasher>(&self, state: &mut H) {
        self.is_some().hash(state);
        if let Some(v) = self {
            v.value_hash(state);
        }
    }
}

impl<T: ValueHash> ValueHash for Vec<T> {
    fn value_hash<H: Hasher>(&self, state: &mut H) {
        self.len().hash(state);
        for v in self {
            v.value_hash(state);
        }
    }
}

impl<K: Hash, V: ValueHash> ValueHash for BTreeMap<K, V> {
    fn value_hash<H: Hasher>(&self, state: &mut H) {
        self.len().hash(state);
        for (k, v) in self {
            k.hash(state);
            v.value_hash(state);
        }
    }
}

impl<T: ValueHash> ValueHash for Arc<T> {
    fn value_hash<H: Hasher>(&self, state: &mut H) {
        (**self).value_hash(state);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_floats_hash_alike() {
        assert_eq!(hash_of("x", &0.0f64), hash_of("x", &-0.0f64));
        assert_ne!(hash_of("x", &1.0f64), hash_of("x", &2.0f64));
    }

    #[test]
    fn records_equal_by_value_hash_alike() {
        use crate::model::RunRecord;
        use crate::wire::from_json;
        let doc = |request: &str, id: &str| {
            format!(
                r#"{{"id":"0191c0de-0000-7000-8000-00000000000{id}","agent_id":"a","started_at":"2026-03-31T12:00:00Z","calls":[{{"kind":"llm","name":"n","started_at":"2026-03-31T12:00:00.000Z","annotated_request":{request}}}]}}"#
            )
        };
        let a: RunRecord = from_json(doc(r#"{"x":1,"y":[true]}"#, "1").as_bytes()).unwrap();
        let b: RunRecord = from_json(doc(r#"{"y":[1],"x":1.0}"#, "1").as_bytes()).unwrap();
        let c: RunRecord = from_json(doc(r#"{"x":1,"y":[true]}"#, "2").as_bytes()).unwrap();
        assert_eq!(a, b);
        assert_eq!(hash_of("RunRecord", &a), hash_of("RunRecord", &b));
        assert_ne!(hash_of("RunRecord", &a), hash_of("RunRecord", &c));
        assert_ne!(hash_of("RunRecord", &a), hash_of("Other", &a));
    }

    #[test]
    fn json_fields_do_not_count() {
        let a = Json::from_compact_text("{\"a\":1}".into()).unwrap();
        let b = Json::from_compact_text("{\"a\":1.0}".into()).unwrap();
        assert_eq!(a, b);
        assert_eq!(hash_of("x", &Some(a)), hash_of("x", &Some(b)));
        assert_ne!(hash_of("x", &None::<Json>), hash_of("x", &Some(Json::null())));
    }
}
