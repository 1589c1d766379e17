//! The Python model classes: each one a frozen wrapper around an `Arc` of the
//! Rust record, so storing is a pointer copy and reading an attribute never
//! copies more than the attribute itself.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, SubsecRound, Utc};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyString, PyTuple, PyType};
use crate::json::Json;
use uuid::Uuid;

use super::convert::{json_text_from_py, type_name, Loc, PyField, PyRecord, DOCUMENT_DEPTH};
use super::errors::serialization;
use crate::model as core;
use crate::model::{BlockContentType, CallKind, PromptRole, ProvenanceLabel, SensitivityLabel, StabilityClass};
use crate::stats::Digest;
use crate::wire;

/// Python shows microseconds; a default timestamp finer than that would not
/// survive a trip through a `datetime`.
fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

fn now_rfc3339() -> String {
    now().to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

fn reject_unknown(kwargs: &Bound<'_, PyDict>, fields: &[&str], class: &str) -> PyResult<()> {
    for key in kwargs.keys() {
        let known = key
            .cast::<PyString>()
            .ok()
            .and_then(|k| k.to_str().ok())
            .is_some_and(|k| fields.contains(&k));
        if !known {
            return Err(PyTypeError::new_err(format!(
                "{class}() got an unexpected keyword argument {}",
                key.repr().map(|r| r.to_string()).unwrap_or_default()
            )));
        }
    }
    Ok(())
}

/// Reads the document of `from_json`: `str`, `bytes` or `bytearray`.
fn decode<T: wire::Wire + Send>(py: Python<'_>, data: &Bound<'_, PyAny>, class: &str) -> PyResult<T> {
    let parsed = if let Ok(s) = data.cast::<PyString>() {
        let Ok(text) = s.to_str() else {
            return Err(serialization(format!("cannot decode {class}: the text holds a lone surrogate")));
        };
        py.detach(|| wire::from_json::<T>(text.as_bytes()))
    } else if let Ok(b) = data.cast::<PyBytes>() {
        let bytes = b.as_bytes();
        py.detach(|| wire::from_json::<T>(bytes))
    } else if let Ok(b) = data.cast::<pyo3::types::PyByteArray>() {
        let bytes = b.to_vec();
        py.detach(|| wire::from_json::<T>(&bytes))
    } else {
        return Err(PyTypeError::new_err(format!(
            "{class}.from_json() expects str or bytes, got {}",
            type_name(data)
        )));
    };
    parsed.map_err(|e| serialization(format!("cannot decode {class}: {e}")))
}

fn json_loads(py: Python<'_>) -> PyResult<&Bound<'_, PyAny>> {
    static LOADS: pyo3::sync::PyOnceLock<Py<PyAny>> = pyo3::sync::PyOnceLock::new();
    LOADS
        .get_or_try_init(py, || Ok::<_, PyErr>(py.import("json")?.getattr("loads")?.unbind()))
        .map(|f| f.bind(py))
}

/// Names the model in a serialization error ("RunningStats.mean: ...").
fn in_class(class: &str, err: crate::error::Error) -> PyErr {
    match err {
        crate::error::Error::Serialization(msg) => serialization(format!("{class}.{msg}")),
        other => other.into(),
    }
}

macro_rules! py_model {
    (
        $class:ident = $name:literal wraps $core:ident {
            $( $field:ident : $ty:ty $(= $default:expr)? ),* $(,)?
        }
        $( validate $validate:path; )?
        $( methods { $($methods:tt)* } )?
    ) => {
        #[pyclass(frozen, module = "relay_store", name = $name)]
        pub struct $class(pub Arc<core::$core>, std::sync::OnceLock<u64>);

        impl $class {
            pub fn new(value: Arc<core::$core>) -> Self {
                $class(value, std::sync::OnceLock::new())
            }
        }

        impl PyRecord for core::$core {
            type Class = $class;
            const NAME: &'static str = $name;
            fn wrap_py<'py>(value: Arc<Self>, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
                Ok(Bound::new(py, $class::new(value))?.into_any())
            }
            fn shared(class: &$class) -> &Arc<Self> {
                &class.0
            }
        }

        impl $class {
            /// Builds a record from keyword arguments; fields not given come
            /// from `base` (for `replace`) or from their defaults.
            fn build(base: Option<&core::$core>, kwargs: Option<&Bound<'_, PyDict>>) -> PyResult<core::$core> {
                if let Some(kw) = kwargs {
                    reject_unknown(kw, core::$core::FIELDS, $name)?;
                }
                let record = core::$core {
                    $( $field: {
                        let given = match kwargs {
                            Some(kw) => kw.get_item(stringify!($field))?,
                            None => None,
                        };
                        match (given, base) {
                            (Some(v), _) => <$ty as PyField>::from_py(&v, &Loc::Field($name, stringify!($field)))?,
                            (None, Some(b)) => b.$field.clone(),
                            (None, None) => py_model!(@default $name, $field $(, $default)?),
                        }
                    }, )*
                    extra: base.map(|b| b.extra.clone()).unwrap_or_default(),
                };
                $( $validate(&record, kwargs)?; )?
                Ok(record)
            }
        }

        #[pymethods]
        impl $class {
            #[new]
            #[pyo3(signature = (**kwargs))]
            fn __new__(kwargs: Option<&Bound<'_, PyDict>>) -> PyResult<Self> {
                Ok($class::new(Arc::new(Self::build(None, kwargs)?)))
            }

            $(
                #[getter]
                fn $field<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
                    <$ty as PyField>::field_to_py(py, &self.0, |r: &core::$core| &r.$field)
                }
            )*

            /// A copy with some fields changed; the rest (and any fields
            /// from a newer writer) are shared with this one.
            #[pyo3(signature = (**changes))]
            fn replace(&self, changes: Option<&Bound<'_, PyDict>>) -> PyResult<Self> {
                Ok($class::new(Arc::new(Self::build(Some(&self.0), changes)?)))
            }

            fn to_json(&self, py: Python<'_>) -> PyResult<String> {
                let value = self.0.clone();
                py.detach(move || wire::to_json(&*value)).map_err(|e| in_class($name, e))
            }

            /// Exactly `json.loads(self.to_json())`.
            fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
                let text = self.to_json(py)?;
                json_loads(py)?.call1((text,))
            }

            #[classmethod]
            fn from_json(cls: &Bound<'_, PyType>, data: &Bound<'_, PyAny>) -> PyResult<Self> {
                decode::<core::$core>(cls.py(), data, $name).map(|v| $class::new(Arc::new(v)))
            }

            #[classmethod]
            fn from_dict(_cls: &Bound<'_, PyType>, data: &Bound<'_, PyAny>) -> PyResult<Self> {
                let text = json_text_from_py(data, &Loc::Field($name, "from_dict"), DOCUMENT_DEPTH)
                    .map_err(|e| serialization(format!("cannot decode {}: {e}", $name)))?;
                wire::from_json::<core::$core>(text.as_bytes())
                    .map(|v| $class::new(Arc::new(v)))
                    .map_err(|e| serialization(format!("cannot decode {}: {e}", $name)))
            }

            fn __eq__(&self, other: &Bound<'_, PyAny>) -> Py<PyAny> {
                let py = other.py();
                match other.cast::<$class>() {
                    Ok(o) => {
                        let o = &o.get().0;
                        (Arc::ptr_eq(&self.0, o) || *self.0 == **o).into_py_any(py).unwrap_or_else(|_| py.None())
                    }
                    Err(_) => py.NotImplemented(),
                }
            }

            /// Consistent with `==` (see `hashing`); worked out once per
            /// object, as `str` caches its hash, since it walks every field.
            fn __hash__(&self) -> u64 {
                *self.1.get_or_init(|| crate::hashing::hash_of($name, &*self.0))
            }

            fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
                let mut out = String::from(concat!($name, "("));
                let mut first = true;
                $(
                    if !first { out.push_str(", "); }
                    first = false;
                    out.push_str(concat!(stringify!($field), "="));
                    out.push_str(&PyField::to_py(&self.0.$field, py)?.repr()?.to_str()?);
                )*
                let _ = first;
                out.push(')');
                Ok(out)
            }

            /// Pickles as the wire JSON, which keeps fields from a newer writer
            /// and nanosecond timestamps. A value JSON cannot carry (NaN, ±inf)
            /// is pickled field by field instead, so pickling never refuses
            /// what the model holds.
            fn __reduce__<'py>(&self, py: Python<'py>) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyTuple>)> {
                let cls = py.get_type::<$class>();
                if let Ok(json) = wire::to_json(&*self.0) {
                    return Ok((cls.getattr("from_json")?, PyTuple::new(py, [json])?));
                }
                let fields = PyDict::new(py);
                $( fields.set_item(stringify!($field), PyField::to_py(&self.0.$field, py)?)?; )*
                let extra = self.0.extra.to_json();
                let args = PyTuple::new(py, [fields.into_any(), PyString::new(py, &extra).into_any()])?;
                Ok((cls.getattr("_from_fields")?, args))
            }

            #[classmethod]
            fn _from_fields(_cls: &Bound<'_, PyType>, fields: &Bound<'_, PyDict>, extra: &str) -> PyResult<Self> {
                let mut value = Self::build(None, Some(fields))?;
                value.extra = wire::Extra::from_json(extra).map_err(|e| serialization(e.to_string()))?;
                Ok($class::new(Arc::new(value)))
            }

            fn __copy__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
                slf
            }

            fn __deepcopy__<'py>(slf: PyRef<'py, Self>, _memo: &Bound<'py, PyAny>) -> PyRef<'py, Self> {
                slf
            }

            $( $($methods)* )?
        }
    };
    (@default $name:literal, $field:ident) => {
        return Err(PyTypeError::new_err(concat!(
            $name, "() missing required keyword argument '", stringify!($field), "'"
        )))
    };
    (@default $name:literal, $field:ident, $default:expr) => { $default };
}

use pyo3::IntoPyObjectExt;

py_model!(PyRunRecord = "RunRecord" wraps RunRecord {
    id: Uuid = Uuid::now_v7(),
    agent_id: String,
    calls: Vec<Arc<core::CallRecord>> = Vec::new(),
    started_at: DateTime<Utc> = now(),
    ended_at: Option<DateTime<Utc>> = None,
});

py_model!(PyCallRecord = "CallRecord" wraps CallRecord {
    kind: CallKind,
    name: String,
    started_at: DateTime<Utc> = now(),
    ended_at: Option<DateTime<Utc>> = None,
    metadata_snapshot: Option<Arc<core::MetadataEnvelope>> = None,
    output_tokens: Option<u32> = None,
    prompt_tokens: Option<u32> = None,
    total_tokens: Option<u32> = None,
    model_name: Option<String> = None,
    tool_call_count: Option<u32> = None,
    annotated_request: Option<Json> = None,
    annotated_response: Option<Json> = None,
});

py_model!(PyMetadataEnvelope = "MetadataEnvelope" wraps MetadataEnvelope {
    run_id: Uuid,
    agent_id: String,
    parallel_hints: Vec<Arc<core::ParallelHint>> = Vec::new(),
    extensions: Json = Json::null(),
});

py_model!(PyParallelHint = "ParallelHint" wraps ParallelHint {
    tool_name: String,
    group_id: String,
    explicit: bool,
});

py_model!(PyExecutionPlan = "ExecutionPlan" wraps ExecutionPlan {
    agent_id: String,
    parallel_groups: Vec<Arc<core::ParallelGroup>> = Vec::new(),
    metadata_template: Arc<core::MetadataEnvelope>,
});

py_model!(PyParallelGroup = "ParallelGroup" wraps ParallelGroup {
    group_id: String,
    tool_names: Vec<String> = Vec::new(),
});

py_model!(PyTrieEnvelope = "TrieEnvelope" wraps TrieEnvelope {
    version: String = "1.0".to_owned(),
    generated_at: String = now_rfc3339(),
    workflow_name: String,
    root: Arc<core::PredictionTrieNode>,
});

py_model!(PyPredictionTrieNode = "PredictionTrieNode" wraps PredictionTrieNode {
    name: String,
    children: BTreeMap<String, Arc<core::PredictionTrieNode>> = BTreeMap::new(),
    predictions_by_call_index: BTreeMap<u32, Arc<core::LlmCallPrediction>> = BTreeMap::new(),
    predictions_any_index: Option<Arc<core::LlmCallPrediction>> = None,
}
validate shallow_enough_to_read_back;
);

/// A trie deeper than readers accept would be written but never read back;
/// refused while it is built, so no deeper one reaches a store either. Only
/// new children can make it deeper: a `replace` of anything else (say, the
/// root's predictions) skips the walk over a large trie.
fn shallow_enough_to_read_back(node: &core::PredictionTrieNode, given: Option<&Bound<'_, PyDict>>) -> PyResult<()> {
    let new_children = given.is_some_and(|kw| kw.contains("children").unwrap_or(true));
    if new_children && node.depth() > core::MAX_TRIE_DEPTH {
        return Err(super::convert::value_error(
            &Loc::Field("PredictionTrieNode", "children"),
            format_args!("a trie may be at most {} levels deep", core::MAX_TRIE_DEPTH),
        ));
    }
    Ok(())
}

py_model!(PyLlmCallPrediction = "LlmCallPrediction" wraps LlmCallPrediction {
    remaining_calls: Arc<core::PredictionMetrics>,
    interarrival_ms: Arc<core::PredictionMetrics>,
    output_tokens: Arc<core::PredictionMetrics>,
    latency_sensitivity: Option<u32> = None,
});

py_model!(PyPredictionMetrics = "PredictionMetrics" wraps PredictionMetrics {
    sample_count: u32,
    mean: f64,
    p50: f64,
    p90: f64,
    p95: f64,
});

py_model!(PyAccumulatorState = "AccumulatorState" wraps AccumulatorState {
    nodes: BTreeMap<String, Arc<core::NodeAccumulators>> = BTreeMap::new(),
});

py_model!(PyNodeAccumulators = "NodeAccumulators" wraps NodeAccumulators {
    remaining_calls: BTreeMap<u32, Arc<core::RunningStats>> = BTreeMap::new(),
    interarrival_ms: BTreeMap<u32, Arc<core::RunningStats>> = BTreeMap::new(),
    output_tokens: BTreeMap<u32, Arc<core::RunningStats>> = BTreeMap::new(),
    sensitivity: BTreeMap<u32, Arc<core::RunningStats>> = BTreeMap::new(),
    all_remaining_calls: Arc<core::RunningStats> = Arc::default(),
    all_interarrival_ms: Arc<core::RunningStats> = Arc::default(),
    all_output_tokens: Arc<core::RunningStats> = Arc::default(),
    all_sensitivity: Arc<core::RunningStats> = Arc::default(),
});

/// A digest whose sum overflowed could be neither stored nor shown as a
/// dict (its `digest`, repr and pickle would fail), so the sample or merge
/// that overflows it is refused where it happens. Welford's `mean` and `m2`
/// are plain floats and may hold inf or NaN, as constructed values may.
fn finite_digest(method: &str, stats: core::RunningStats) -> PyResult<PyRunningStats> {
    match wire::Wire::check(&stats.digest) {
        Ok(()) => Ok(PyRunningStats::new(Arc::new(stats))),
        Err(e) => Err(pyo3::exceptions::PyValueError::new_err(format!("{method}: the t-digest would overflow ({e})"))),
    }
}

py_model!(PyRunningStats = "RunningStats" wraps RunningStats {
    count: u64 = 0,
    mean: f64 = 0.0,
    m2: f64 = 0.0,
    digest: Digest = Digest::default(),
} methods {
    /// A new accumulator with one more sample (Welford update + t-digest merge).
    fn add_sample(&self, x: &Bound<'_, PyAny>) -> PyResult<Self> {
        let x = f64::from_py(x, &Loc::Field("RunningStats.add_sample", "x"))?;
        if !x.is_finite() {
            return Err(pyo3::exceptions::PyValueError::new_err(format!(
                "RunningStats.add_sample: x must be finite, got {x}"
            )));
        }
        finite_digest("RunningStats.add_sample", self.0.add_sample(x))
    }

    /// A new accumulator holding the samples of both.
    fn merge(&self, other: &Bound<'_, PyAny>) -> PyResult<Self> {
        let other = other
            .cast::<PyRunningStats>()
            .map_err(|_| PyTypeError::new_err(format!("RunningStats.merge: expected RunningStats, got {}", type_name(other))))?;
        finite_digest("RunningStats.merge", self.0.merge(&other.get().0))
    }

    fn compute_metrics(&self) -> PyPredictionMetrics {
        PyPredictionMetrics::new(Arc::new(self.0.compute_metrics()))
    }
});

py_model!(PyPromptIR = "PromptIR" wraps PromptIR {
    ir_id: Uuid = Uuid::now_v7(),
    blocks: Vec<Arc<core::PromptBlock>> = Vec::new(),
    tool_schema_hashes: Option<Vec<Arc<core::ToolSchemaHash>>> = None,
    structured_output_schema_id: Option<String> = None,
    source_request_hash: Option<String> = None,
    created_at: DateTime<Utc> = now(),
});

py_model!(PyPromptBlock = "PromptBlock" wraps PromptBlock {
    span_id: String,
    sequence_index: u32,
    role: PromptRole,
    content: String,
    content_type: BlockContentType,
    provenance: ProvenanceLabel,
    sensitivity: SensitivityLabel = SensitivityLabel::Public,
    token_metadata: Option<Arc<core::TokenizationMetadata>> = None,
});

py_model!(PyTokenizationMetadata = "TokenizationMetadata" wraps TokenizationMetadata {
    model_family: String,
    token_count: u32,
});

py_model!(PyToolSchemaHash = "ToolSchemaHash" wraps ToolSchemaHash {
    tool_name: String,
    schema_hash: String,
});

py_model!(PyStabilityAnalysisResult = "StabilityAnalysisResult" wraps StabilityAnalysisResult {
    scores: Vec<Arc<core::BlockStabilityScore>> = Vec::new(),
    stable_prefix_length: usize,
    stable_prefix_fingerprint: Option<String> = None,
    total_observations: u32,
});

py_model!(PyBlockStabilityScore = "BlockStabilityScore" wraps BlockStabilityScore {
    span_id: String,
    classification: StabilityClass,
    score: f64,
    confidence: f64,
    observation_count: u32,
});

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyRunRecord>()?;
    m.add_class::<PyCallRecord>()?;
    m.add_class::<PyMetadataEnvelope>()?;
    m.add_class::<PyParallelHint>()?;
    m.add_class::<PyExecutionPlan>()?;
    m.add_class::<PyParallelGroup>()?;
    m.add_class::<PyTrieEnvelope>()?;
    m.add_class::<PyPredictionTrieNode>()?;
    m.add_class::<PyLlmCallPrediction>()?;
    m.add_class::<PyPredictionMetrics>()?;
    m.add_class::<PyAccumulatorState>()?;
    m.add_class::<PyNodeAccumulators>()?;
    m.add_class::<PyRunningStats>()?;
    m.add_class::<PyPromptIR>()?;
    m.add_class::<PyPromptBlock>()?;
    m.add_class::<PyTokenizationMetadata>()?;
    m.add_class::<PyToolSchemaHash>()?;
    m.add_class::<PyStabilityAnalysisResult>()?;
    m.add_class::<PyBlockStabilityScore>()?;
    Ok(())
}
