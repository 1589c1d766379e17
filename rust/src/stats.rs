//! Running statistics with NeMo Relay's arithmetic: Welford for mean and M2,
//! the `tdigest` 0.2 crate (compression 100) for percentiles.

use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use tdigest::{Centroid, TDigest};

use crate::model::{PredictionMetrics, RunningStats};
use crate::wire::{Extra, NonFinite, Wire};

/// NeMo Relay's digest size.
pub const COMPRESSION: usize = 100;

/// A t-digest in the `tdigest` crate's serde form.
///
/// An empty digest holds NaN `min`/`max`; NeMo Relay writes those as `0.0` and
/// reads `null` as `0.0`. That is the one place a non-finite float is mapped
/// rather than refused, so readers on either side never meet a `null` there.
#[derive(Debug, Clone, PartialEq)]
pub struct Digest(pub TDigest);

impl Default for Digest {
    fn default() -> Self {
        Digest(TDigest::new_with_size(COMPRESSION))
    }
}

/// The crate's fields, spelled out so that `min`/`max` can be sanitised on
/// the way in without an intermediate `serde_json::Value`.
#[derive(Deserialize)]
struct DigestIn {
    centroids: Vec<Centroid>,
    max_size: usize,
    sum: f64,
    count: f64,
    max: Option<f64>,
    min: Option<f64>,
}

fn zero_if_nan(x: f64) -> f64 {
    if x.is_nan() {
        0.0
    } else {
        x
    }
}

impl Wire for Digest {
    fn ser<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // The crate keeps its fields private; its own Serialize is the only
        // way to reach the centroids. Rebuild a digest whose min/max are
        // finite and let the crate write it.
        let d = &self.0;
        if d.min().is_nan() || d.max().is_nan() {
            let patched = TDigest::new(
                Vec::new(),
                d.sum(),
                d.count(),
                zero_if_nan(d.max()),
                zero_if_nan(d.min()),
                d.max_size(),
            );
            if d.count() == 0.0 && d.is_empty() {
                return patched.serialize(s);
            }
            // A digest with centroids but a NaN bound can only come from NaN
            // samples, which `check` refuses before anything is written.
            return Err(serde::ser::Error::custom("t-digest holds NaN"));
        }
        d.serialize(s)
    }

    fn de<'de, D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let w = DigestIn::deserialize(d)?;
        Ok(Digest(TDigest::new(
            w.centroids,
            w.sum,
            w.count,
            w.max.unwrap_or(0.0),
            w.min.unwrap_or(0.0),
            w.max_size,
        )))
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
            if !v.is_finite() && !(empty && v.is_nan()) {
                return Err(NonFinite::new(v).at(name));
            }
        }
        Ok(())
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
            digest: Digest(self.digest.0.merge_unsorted(vec![value])),
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
        let m2 = self.m2 + other.m2 + delta * delta * (self.count as f64 * other.count as f64) / count as f64;
        RunningStats {
            count,
            mean,
            m2,
            digest: Digest(TDigest::merge_digests(vec![self.digest.0.clone(), other.digest.0.clone()])),
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
