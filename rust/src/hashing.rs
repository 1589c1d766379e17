//! Hashes of records that agree with their `==`, for Python's `hash()`.
//!
//! Models are immutable values (in Python, their lists and maps are
//! read-only views), so they hash, as frozen dataclasses do, and can go in
//! sets and be dict keys. Python requires `a == b` to imply
//! `hash(a) == hash(b)`. Most fields compare exactly and hash as they are.
//! JSON fields compare as Python values (`1 == 1.0`, key order aside) and
//! hash by the same walk (`json::hash_value`). A digest hashes by its count,
//! sum and size, and fields from newer writers not at all: models that
//! differ only there collide, which costs a set an extra `==` per collision.

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

/// The bits of `v`, with `-0.0` as `0.0` (they are equal); NaN equals
/// nothing, so whatever it gives will do.
pub fn float_bits(v: f64) -> u64 {
    if v == 0.0 {
        0
    } else {
        v.to_bits()
    }
}

impl ValueHash for f64 {
    fn value_hash<H: Hasher>(&self, state: &mut H) {
        float_bits(*self).hash(state);
    }
}

impl ValueHash for Json {
    fn value_hash<H: Hasher>(&self, state: &mut H) {
        crate::json::hash_value(self.as_str(), 0, state);
    }
}

/// The crate compares digests field by field (with `OrderedFloat`, under
/// which `-0.0 == 0.0`); these three are among those fields.
impl ValueHash for Digest {
    fn value_hash<H: Hasher>(&self, state: &mut H) {
        self.0.max_size().hash(state);
        float_bits(self.0.count()).hash(state);
        float_bits(self.0.sum()).hash(state);
    }
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
    fn json_hashes_as_it_compares() {
        let json = |t: &str| Json::from_compact_text(t.into()).unwrap();
        let alike = [
            (r#"{"a":1,"b":[true,"x"]}"#, r#"{"b":[1.0,"\u0078"],"a":1.0}"#),
            (r#"{"a":1,"a":2}"#, r#"{"a":2}"#),
            ("-0.0", "0"),
            ("1e400", "2e400"),
            ("100000000000000000000", "1e20"),
        ];
        for (a, b) in alike {
            assert_eq!(json(a), json(b), "{a} {b}");
            assert_eq!(hash_of("x", &json(a)), hash_of("x", &json(b)), "{a} {b}");
        }
        for (a, b) in [(r#"{"a":"x"}"#, r#"{"a":"y"}"#), (r#"["x"]"#, r#"["x","x"]"#), ("1", "2"), ("null", "0")] {
            assert_ne!(hash_of("x", &json(a)), hash_of("x", &json(b)), "{a} {b}");
        }
        assert_ne!(hash_of("x", &None::<Json>), hash_of("x", &Some(Json::null())));
    }
}
