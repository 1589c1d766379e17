//! Running statistics with NeMo Relay's arithmetic: Welford for mean and M2,
//! the `tdigest` 0.2 crate (compression 100) for percentiles.

use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use tdigest::{Centroid, TDigest};

use crate::model::{PredictionMetrics, RunningStats};
use crate::wire::{Extra, NonFinite, Wire};

/// NeMo Relay's digest size.
pub const COMPRESSION: usize = 100;

/// The crate sets aside room for `max_size` centroids on every merge, so a
/// huge `max_size` from another writer would abort the process at the first
/// `add_sample`; it is refused on read instead.
pub const MAX_SIZE_LIMIT: usize = 1 << 16;

/// A t-digest in the `tdigest` crate's serde form.
///
/// An empty digest holds NaN `min`/`max`; NeMo Relay writes those as `0.0` and
/// reads `null` as `0.0`. That is the one place a non-finite float is mapped
/// rather than refused, so readers on either side never meet a `null` there.
///
/// The second field keeps what a newer writer added to the digest or its
/// centroids, as records keep their unknown fields.
#[derive(Debug, Clone, PartialEq)]
pub struct Digest(pub TDigest, pub Kept);

/// Fields of a digest this version does not know. The digest's own stay
/// through `add_sample` and `merge`, as a record's extras do; the centroids'
/// only while the centroids are the ones read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Kept {
    fields: Extra,
    /// One per centroid, or none at all when no centroid had any.
    centroids: Vec<Extra>,
}

impl Digest {
    /// A digest the crate computed, keeping the digest-level fields of `from`.
    fn derived(digest: TDigest, from: &Digest) -> Digest {
        Digest(digest, Kept { fields: from.1.fields.clone(), centroids: Vec::new() })
    }
}

/// Starts with 0.0 bounds rather than the crate's NaN: the crate never reads
/// the bounds of an empty digest, and this is what the empty digest reads
/// back as, so an empty accumulator stays equal to itself through JSON.
impl Default for Digest {
    fn default() -> Self {
        Digest(TDigest::new(Vec::new(), 0.0, 0.0, 0.0, 0.0, COMPRESSION), Kept::default())
    }
}

/// The digest as it travels, read like any record (unknown fields kept).
/// NeMo Relay reads any `null` in a digest as 0.0, hence the options.
#[allow(dead_code)] // the `FIELDS` list `record!` adds is for models only
mod form {
    use crate::wire::record;

    record! {
        pub struct TDigest {
            req centroids: Vec<Centroid>,
            req max_size: usize,
            opt sum: Option<f64>,
            opt count: Option<f64>,
            opt max: Option<f64>,
            opt min: Option<f64>,
        }
    }

    record! {
        pub struct Centroid {
            req mean: f64,
            req weight: f64,
        }
    }
}

/// The crate's own fields, for its own reader.
#[derive(Serialize)]
struct DigestIn {
    centroids: Vec<Centroid>,
    max_size: usize,
    sum: f64,
    count: f64,
    max: f64,
    min: f64,
}

impl Wire for Digest {
    fn ser<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // The crate would write a non-finite float as `null`, which is not
        // what it reads back: refuse here, and `check` names the field.
        if self.check().is_err() {
            return Err(serde::ser::Error::custom("t-digest holds a non-finite value"));
        }
        // The crate keeps its fields private; its own Serialize is the only
        // way to reach the centroids. An empty digest's NaN bounds are
        // written as 0.0, as NeMo Relay does.
        let d = &self.0;
        let sanitised;
        let d = if d.min().is_nan() || d.max().is_nan() {
            sanitised = TDigest::new(Vec::new(), d.sum(), d.count(), 0.0, 0.0, d.max_size());
            &sanitised
        } else {
            d
        };
        if self.1 == Kept::default() {
            return d.serialize(s);
        }
        // Kept fields go after the crate's, which keep the crate's order.
        use serde::ser::SerializeMap;
        let value = serde_json::to_value(d).map_err(serde::ser::Error::custom)?;
        let mut map = s.serialize_map(None)?;
        for name in ["centroids", "max_size", "sum", "count", "max", "min"] {
            match (name, value[name].as_array()) {
                ("centroids", Some(centroids)) if centroids.len() == self.1.centroids.len() => {
                    map.serialize_entry(name, &CentroidsKept(centroids, &self.1.centroids))?;
                }
                _ => map.serialize_entry(name, &value[name])?,
            }
        }
        self.1.fields.serialize_into(&mut map)?;
        map.end()
    }

    /// Exactly what was written: `TDigest::new` would re-merge a digest
    /// holding more centroids than `max_size` (which the crate itself
    /// produces), so such a digest goes through the crate's own reader.
    fn de<'de, D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let w = form::TDigest::de(d)?;
        if w.max_size > MAX_SIZE_LIMIT {
            return Err(serde::de::Error::custom(format_args!(
                "max_size {} is larger than {MAX_SIZE_LIMIT} (NeMo Relay writes {COMPRESSION})",
                w.max_size
            )));
        }
        let (centroids, kept_per_centroid): (Vec<Centroid>, Vec<Extra>) =
            w.centroids.into_iter().map(|c| (Centroid::new(c.mean, c.weight), c.extra)).unzip();
        let kept = Kept {
            fields: w.extra,
            centroids: if kept_per_centroid.iter().all(Extra::is_empty) { Vec::new() } else { kept_per_centroid },
        };
        let z = |x: Option<f64>| x.unwrap_or(0.0);
        if centroids.len() > w.max_size {
            let whole = DigestIn { centroids, max_size: w.max_size, sum: z(w.sum), count: z(w.count), max: z(w.max), min: z(w.min) };
            let value = serde_json::to_value(&whole).map_err(serde::de::Error::custom)?;
            return TDigest::deserialize(value).map(|t| Digest(t, kept)).map_err(serde::de::Error::custom);
        }
        Ok(Digest(TDigest::new(centroids, z(w.sum), z(w.count), z(w.max), z(w.min), w.max_size), kept))
    }

    fn check(&self) -> Result<(), NonFinite> {
        let d = &self.0;
        let empty = d.is_empty() && d.count() == 0.0;
        for (name, v) in [("sum", d.sum()), ("count", d.count())] {
            if !v.is_finite() {
                return Err(NonFinite::new(v).at(name));
            }
        }
        for (name, v) in [("min", d.min()), ("max", d.max())] {
            // NaN bounds are what an empty digest holds; anything else non-finite is refused.
            if !v.is_finite() && (!empty || !v.is_nan()) {
                return Err(NonFinite::new(v).at(name));
            }
        }
        Ok(())
    }
}

/// Each centroid as the crate writes it, then the fields kept for it.
struct CentroidsKept<'a>(&'a [serde_json::Value], &'a [Extra]);

impl Serialize for CentroidsKept<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for (centroid, kept) in self.0.iter().zip(self.1) {
            seq.serialize_element(&CentroidKept(centroid, kept))?;
        }
        return seq.end();

        struct CentroidKept<'a>(&'a serde_json::Value, &'a Extra);
        impl Serialize for CentroidKept<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut map = s.serialize_map(None)?;
                map.serialize_entry("mean", &self.0["mean"])?;
                map.serialize_entry("weight", &self.0["weight"])?;
                self.1.serialize_into(&mut map)?;
                map.end()
            }
        }
    }
}

impl Default for RunningStats {
    fn default() -> Self {
        RunningStats {
            count: 0,
            mean: 0.0,
            m2: 0.0,
            digest: Digest::default(),
            extra: Extra::default(),
        }
    }
}

impl RunningStats {
    /// Welford's update plus one value merged into the digest.
    pub fn add_sample(&self, value: f64) -> RunningStats {
        let count = self.count + 1;
        let delta = value - self.mean;
        let mean = self.mean + delta / count as f64;
        let m2 = self.m2 + delta * (value - mean);
        RunningStats {
            count,
            mean,
            m2,
            digest: Digest::derived(self.digest.0.merge_unsorted(vec![value]), &self.digest),
            extra: self.extra.clone(),
        }
    }

    /// Chan's parallel combination of two Welford states; an empty `other`
    /// leaves `self` as it is, as in NeMo Relay.
    pub fn merge(&self, other: &RunningStats) -> RunningStats {
        if other.count == 0 {
            return self.clone();
        }
        let count = self.count + other.count;
        let delta = other.mean - self.mean;
        let mean = (self.mean * self.count as f64 + other.mean * other.count as f64) / count as f64;
        // Grouped and typed as NeMo Relay writes it, so results match to the bit.
        let m2 = self.m2 + (other.m2 + delta * delta * self.count.wrapping_mul(other.count) as f64 / count as f64);
        RunningStats {
            count,
            mean,
            m2,
            digest: Digest::derived(TDigest::merge_digests(vec![self.digest.0.clone(), other.digest.0.clone()]), &self.digest),
            extra: self.extra.clone(),
        }
    }

    /// All zeros when empty; `sample_count` saturates at `u32::MAX` where NeMo
    /// Relay would wrap.
    pub fn compute_metrics(&self) -> PredictionMetrics {
        if self.count == 0 {
            return PredictionMetrics::default();
        }
        PredictionMetrics {
            sample_count: u32::try_from(self.count).unwrap_or(u32::MAX),
            mean: self.mean,
            p50: self.digest.0.estimate_quantile(0.50),
            p90: self.digest.0.estimate_quantile(0.90),
            p95: self.digest.0.estimate_quantile(0.95),
            extra: Extra::default(),
        }
    }
}

impl Default for crate::model::NodeAccumulators {
    fn default() -> Self {
        let empty = Arc::new(RunningStats::default());
        crate::model::NodeAccumulators {
            remaining_calls: Default::default(),
            interarrival_ms: Default::default(),
            output_tokens: Default::default(),
            sensitivity: Default::default(),
            all_remaining_calls: empty.clone(),
            all_interarrival_ms: empty.clone(),
            all_output_tokens: empty.clone(),
            all_sensitivity: empty,
            extra: Extra::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AccumulatorState, NodeAccumulators};
    use crate::wire::{from_json, to_json};

    fn stats(values: &[f64]) -> RunningStats {
        values.iter().fold(RunningStats::default(), |s, &v| s.add_sample(v))
    }

    #[test]
    fn fields_a_newer_writer_added_to_a_digest_survive_a_round_trip() {
        let doc = r#"{"centroids":[{"mean":1.0,"weight":2.0,"z":[1]},{"mean":3.5,"weight":1.0}],"max_size":100,"sum":5.5,"count":3.0,"max":3.5,"min":1.0,"future":{"a":null}}"#;
        let digest: Digest = from_json(doc.as_bytes()).unwrap();
        assert_eq!(to_json(&digest).unwrap(), doc);
        assert_ne!(digest, from_json::<Digest>(doc.replace(r#","future":{"a":null}"#, "").as_bytes()).unwrap());
        // A digest computed from it keeps its own fields, not the centroids'.
        let stats = RunningStats { count: 3, mean: 5.5 / 3.0, m2: 0.0, digest, extra: Extra::default() }.add_sample(2.0);
        let written = to_json(&stats.digest).unwrap();
        assert!(written.ends_with(r#","future":{"a":null}}"#) && !written.contains(r#""z""#), "{written}");
        // Without extras, the crate's own form, byte for byte.
        let plain = r#"{"centroids":[{"mean":1.0,"weight":1.0}],"max_size":100,"sum":1.0,"count":1.0,"max":1.0,"min":1.0}"#;
        assert_eq!(to_json(&from_json::<Digest>(plain.as_bytes()).unwrap()).unwrap(), plain);
        // More centroids than max_size (the crate's own reader): kept too.
        let over = r#"{"centroids":[{"mean":1.0,"weight":1.0,"k":1},{"mean":2.0,"weight":1.0,"k":2}],"max_size":1,"sum":3.0,"count":2.0,"max":2.0,"min":1.0,"v":2}"#;
        assert_eq!(to_json(&from_json::<Digest>(over.as_bytes()).unwrap()).unwrap(), over);
    }

    #[test]
    fn a_huge_max_size_is_refused_on_read() {
        let doc = |max_size: u64| {
            format!(r#"{{"centroids":[],"max_size":{max_size},"sum":0.0,"count":0.0,"max":0.0,"min":0.0}}"#)
        };
        let err = from_json::<Digest>(doc(1 << 62).as_bytes()).unwrap_err().to_string();
        assert!(err.contains("max_size 4611686018427387904 is larger than 65536"), "{err}");
        assert!(from_json::<Digest>(doc(MAX_SIZE_LIMIT as u64 + 1).as_bytes()).is_err());
        let largest: Digest = from_json(doc(MAX_SIZE_LIMIT as u64).as_bytes()).unwrap();
        let stats = RunningStats { digest: largest, ..RunningStats::default() }.add_sample(1.0);
        assert_eq!(stats.digest.0.max_size(), MAX_SIZE_LIMIT);
    }

    #[test]
    fn welford_matches_the_direct_formulas() {
        let values = [3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0];
        let s = stats(&values);
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let m2: f64 = values.iter().map(|v| (v - mean).powi(2)).sum();
        assert_eq!(s.count, 8);
        assert!((s.mean - mean).abs() < 1e-12);
        assert!((s.m2 - m2).abs() < 1e-9);
    }

    #[test]
    fn merge_equals_adding_all_samples() {
        let (a, b) = (stats(&[1.0, 2.0, 3.0]), stats(&[10.0, 20.0]));
        let merged = a.merge(&b);
        let direct = stats(&[1.0, 2.0, 3.0, 10.0, 20.0]);
        assert_eq!(merged.count, 5);
        assert!((merged.mean - direct.mean).abs() < 1e-12);
        assert!((merged.m2 - direct.m2).abs() < 1e-9);
        assert_eq!(merged.digest.0.count(), 5.0);
        assert_eq!(a.count, 3, "merge leaves its inputs alone");
        assert_eq!(a.merge(&RunningStats::default()), a, "merging an empty one is a no-op");
        assert_eq!(RunningStats::default().merge(&b).count, 2);
    }

    #[test]
    fn merge_matches_nemo_relay_to_the_bit() {
        // NeMo Relay: m2 += other.m2 + delta * delta * (n_a * n_b) as f64 / n as f64
        let mut x: u64 = 7;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % 1_000_000) as f64 / 1000.0
        };
        for _ in 0..200 {
            let a = stats(&(0..7).map(|_| next()).collect::<Vec<_>>());
            let b = stats(&(0..8).map(|_| next()).collect::<Vec<_>>());
            let delta = b.mean - a.mean;
            let mut nemo = a.m2;
            nemo += b.m2 + delta * delta * (a.count * b.count) as f64 / (a.count + b.count) as f64;
            assert_eq!(a.merge(&b).m2.to_bits(), nemo.to_bits());
        }
    }

    #[test]
    fn a_digest_that_overflowed_is_refused_not_written_as_null() {
        let s = stats(&[1e308, 1e308]);
        let err = to_json(&s).unwrap_err().to_string();
        assert!(err.contains("digest.sum"), "{err}");
    }

    #[test]
    fn digests_read_back_exactly_as_written() {
        // More centroids than max_size (the crate writes 101 for 100): not re-merged on the way in.
        let doc = r#"{"count":3,"mean":2.0,"m2":2.0,"digest":{"centroids":[{"mean":1.0,"weight":1.0},{"mean":2.0,"weight":1.0},{"mean":3.0,"weight":1.0}],"max_size":2,"sum":6.0,"count":3.0,"max":3.0,"min":1.0}}"#;
        let read: RunningStats = from_json(doc.as_bytes()).unwrap();
        assert_eq!(to_json(&read).unwrap(), doc);
        // As in NeMo Relay, any null among the digest's numbers reads as 0.0.
        let nulls = doc.replace(r#""sum":6.0,"count":3.0"#, r#""sum":null,"count":null"#);
        let read: RunningStats = from_json(nulls.as_bytes()).unwrap();
        assert_eq!((read.digest.0.sum(), read.digest.0.count()), (0.0, 0.0));
    }

    #[test]
    fn metrics_come_from_the_digest() {
        let s = stats(&(1..=100).map(f64::from).collect::<Vec<_>>());
        let m = s.compute_metrics();
        assert_eq!(m.sample_count, 100);
        assert!((m.mean - 50.5).abs() < 1e-12);
        assert!((m.p50 - 50.5).abs() <= 1.0, "{}", m.p50);
        assert!((m.p90 - 90.5).abs() <= 1.0, "{}", m.p90);
        assert!((m.p95 - 95.5).abs() <= 1.0, "{}", m.p95);
        assert_eq!(RunningStats::default().compute_metrics(), PredictionMetrics::default());
    }

    #[test]
    fn empty_digest_writes_zero_bounds_and_reads_null_as_zero() {
        let out = to_json(&RunningStats::default()).unwrap();
        assert_eq!(
            out,
            r#"{"count":0,"mean":0.0,"m2":0.0,"digest":{"centroids":[],"max_size":100,"sum":0.0,"count":0.0,"max":0.0,"min":0.0}}"#
        );
        let with_nulls = out.replace(r#""max":0.0,"min":0.0"#, r#""max":null,"min":null"#);
        let read: RunningStats = from_json(with_nulls.as_bytes()).unwrap();
        assert_eq!(read.digest.0.min(), 0.0);
        assert_eq!(to_json(&read).unwrap(), out);
        // An empty NodeAccumulators holds four empty digests.
        let state = AccumulatorState {
            nodes: [("workflow/agent".to_owned(), Arc::new(NodeAccumulators::default()))].into(),
            extra: Default::default(),
        };
        let json = to_json(&state).unwrap();
        assert!(!json.contains("null"), "{json}");
        assert_eq!(from_json::<AccumulatorState>(json.as_bytes()).unwrap(), state);
        // The crate's own empty digest (NaN bounds) is written the same way.
        let crate_empty = RunningStats { digest: Digest(TDigest::new_with_size(COMPRESSION), Kept::default()), ..RunningStats::default() };
        assert_eq!(to_json(&crate_empty).unwrap(), out);
    }

    #[test]
    fn digest_round_trips_with_samples() {
        let s = stats(&[1.0, 2.0, 3.0, 1000.0]);
        let json = to_json(&s).unwrap();
        let back: RunningStats = from_json(json.as_bytes()).unwrap();
        assert_eq!(back, s);
        assert_eq!(back.compute_metrics(), s.compute_metrics());
    }

    #[test]
    fn nan_samples_cannot_be_written() {
        let s = stats(&[1.0]).add_sample(f64::NAN);
        assert!(to_json(&s).unwrap_err().to_string().starts_with("mean: NaN"));
    }
}
