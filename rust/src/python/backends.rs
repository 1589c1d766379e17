//! Python classes for the native backends.
//!
//! Every storage method returns a [`NativeCall`], the awaitable under the
//! `async def` that `relay_store._coroutines` wraps each method in (that
//! wrapper gives calls their coroutine semantics). How the
//! work runs is the one thing that differs between backends and is passed to
//! the shared method generator: the in-memory backend completes on the first
//! step, on the caller's thread; the Redis backend runs on the shared tokio
//! runtime and hands its result back through the event loop's inbox.

use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::PyList;

use super::call::{finish, NativeCall};
use super::convert::{type_name, PyRecord, LONE_SURROGATE};
use super::models::{
    PyAccumulatorState, PyExecutionPlan, PyPromptIR, PyRunRecord, PyStabilityAnalysisResult, PyTrieEnvelope,
};
use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::memory::InMemoryBackend;
use crate::model::Observations;
use crate::redis_backend::{RedisBackend, RedisOptions, DEFAULT_KEY_PREFIX};

/// For work that never waits: polled once, at the call's first step.
pub fn run_now<T, F, C>(name: &'static str, work: F, convert: C) -> NativeCall
where
    T: Send + 'static,
    F: Future<Output = Result<T>> + Send + 'static,
    C: FnOnce(Python<'_>, T) -> PyResult<Py<PyAny>> + Send + 'static,
{
    NativeCall::inline(name, Box::new(move |py| {
        let mut work = std::pin::pin!(work);
        match work.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(result) => finish(result, convert)(py),
            Poll::Pending => Err(PyRuntimeError::new_err("an in-memory operation did not complete at once")),
        }
    }))
}

/// For work that does I/O: run on the shared tokio runtime.
pub fn run_on_tokio<T, F, C>(name: &'static str, work: F, convert: C) -> NativeCall
where
    T: Send + 'static,
    F: Future<Output = Result<T>> + Send + 'static,
    C: FnOnce(Python<'_>, T) -> PyResult<Py<PyAny>> + Send + 'static,
{
    NativeCall::on_tokio(name, work, convert)
}

fn none(py: Python<'_>, _: ()) -> PyResult<Py<PyAny>> {
    Ok(py.None())
}

fn one<T: PyRecord>(py: Python<'_>, value: Option<Arc<T>>) -> PyResult<Py<PyAny>> {
    match value {
        Some(v) => Ok(T::wrap_py(v, py)?.unbind()),
        None => Ok(py.None()),
    }
}

fn many<'a, T: PyRecord>(py: Python<'_>, values: impl IntoIterator<Item = &'a Arc<T>>) -> PyResult<Py<PyAny>> {
    let items = values.into_iter().map(|v| T::wrap_py(v.clone(), py)).collect::<PyResult<Vec<_>>>()?;
    Ok(PyList::new(py, items)?.into_any().unbind())
}

fn must_be(what: &str, ob: &Bound<'_, PyAny>) -> PyErr {
    pyo3::exceptions::PyTypeError::new_err(format!("{what}, not {}", type_name(ob)))
}

/// A model argument, with the pure backend's message when it is another type.
fn model<T>(ob: &Bound<'_, PyAny>, name: &str, class: &str) -> PyResult<Py<T>>
where
    T: pyo3::PyClass<Frozen = pyo3::pyclass::boolean_struct::True> + Sync,
{
    match ob.cast::<T>() {
        Ok(m) => Ok(m.clone().unbind()),
        Err(_) => Err(must_be(&format!("{name} must be {class}"), ob)),
    }
}

/// An `agent_id` argument. A `str` holding a lone surrogate cannot become a
/// key (no UTF-8 text carries one), so it is a bad value.
fn agent_id_of(ob: &Bound<'_, PyAny>) -> PyResult<String> {
    let s = ob.cast::<pyo3::types::PyString>().map_err(|_| must_be("agent_id must be str", ob))?;
    match s.to_str() {
        Ok(text) => Ok(text.to_owned()),
        Err(_) => Err(pyo3::exceptions::PyValueError::new_err(format!("agent_id is {LONE_SURROGATE}"))),
    }
}

/// Every element of a sequence of `PromptIR`: text is a sequence too, but
/// never one of PromptIR.
fn prompt_irs(observations: &Bound<'_, PyAny>) -> PyResult<Observations> {
    let textual = observations.is_instance_of::<pyo3::types::PyString>()
        || observations.is_instance_of::<pyo3::types::PyBytes>()
        || observations.is_instance_of::<pyo3::types::PyByteArray>();
    let Some(seq) = observations.cast::<pyo3::types::PySequence>().ok().filter(|_| !textual) else {
        return Err(must_be("observations must be a sequence of PromptIR", observations));
    };
    // One snapshot first, as `tuple(observations)` takes it: an error while
    // iterating comes before any complaint about an element.
    let items = seq.to_tuple()?;
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        match item.cast::<PyPromptIR>() {
            Ok(ir) => out.push(ir.get().0.clone()),
            Err(_) => return Err(must_be(&format!("observations[{i}] must be PromptIR"), &item)),
        }
    }
    Ok(out)
}

/// Generates the storage methods shared by every native backend class.
/// `$class` must have `fn backend(&self) -> crate::error::Result<B>` (B: Backend + Clone)
/// and `fn close_backend(&self)`. Each method reads its arguments and starts
/// at once: it is called by its `async def` wrapper (`relay_store._coroutines`)
/// when that is awaited, so a closed backend or a bad argument is raised
/// there, as from the first line of a coroutine.
macro_rules! backend_methods {
    ($class:ident, $run:path, { $($extra:tt)* }) => {
        #[pymethods]
        impl $class {
            /// Stores a run and indexes it under its agent; storing it again replaces it.
            fn store_run(&self, record: &Bound<'_, PyAny>) -> PyResult<NativeCall> {
                let b = self.backend()?;
                let record = model::<PyRunRecord>(record, "record", "RunRecord")?.get().0.clone();
                Ok($run("store_run", async move { b.store_run(record).await }, none))
            }

            /// The agent's runs, oldest first (`[]` for an unknown agent).
            fn list_runs(&self, agent_id: &Bound<'_, PyAny>) -> PyResult<NativeCall> {
                let b = self.backend()?;
                let agent_id = agent_id_of(agent_id)?;
                Ok($run("list_runs", async move { b.list_runs(&agent_id).await }, |py, runs| many(py, &runs)))
            }

            /// Stores the plan under its own `agent_id`, replacing the previous one.
            fn store_plan(&self, plan: &Bound<'_, PyAny>) -> PyResult<NativeCall> {
                let b = self.backend()?;
                let plan = model::<PyExecutionPlan>(plan, "plan", "ExecutionPlan")?.get().0.clone();
                Ok($run("store_plan", async move { b.store_plan(plan).await }, none))
            }

            /// The agent's plan, or `None`.
            fn load_plan(&self, agent_id: &Bound<'_, PyAny>) -> PyResult<NativeCall> {
                let b = self.backend()?;
                let agent_id = agent_id_of(agent_id)?;
                Ok($run("load_plan", async move { b.load_plan(&agent_id).await }, one))
            }

            /// Stores the agent's prediction trie, replacing the previous one.
            fn store_trie(&self, agent_id: &Bound<'_, PyAny>, envelope: &Bound<'_, PyAny>) -> PyResult<NativeCall> {
                let b = self.backend()?;
                let agent_id = agent_id_of(agent_id)?;
                let envelope = model::<PyTrieEnvelope>(envelope, "envelope", "TrieEnvelope")?.get().0.clone();
                Ok($run("store_trie", async move { b.store_trie(&agent_id, envelope).await }, none))
            }

            /// The agent's prediction trie, or `None`.
            fn load_trie(&self, agent_id: &Bound<'_, PyAny>) -> PyResult<NativeCall> {
                let b = self.backend()?;
                let agent_id = agent_id_of(agent_id)?;
                Ok($run("load_trie", async move { b.load_trie(&agent_id).await }, one))
            }

            /// Stores the agent's trie accumulators, replacing the previous ones.
            fn store_accumulators(&self, agent_id: &Bound<'_, PyAny>, state: &Bound<'_, PyAny>) -> PyResult<NativeCall> {
                let b = self.backend()?;
                let agent_id = agent_id_of(agent_id)?;
                let state = model::<PyAccumulatorState>(state, "state", "AccumulatorState")?.get().0.clone();
                Ok($run("store_accumulators", async move { b.store_accumulators(&agent_id, state).await }, none))
            }

            /// The agent's trie accumulators, or `None`.
            fn load_accumulators(&self, agent_id: &Bound<'_, PyAny>) -> PyResult<NativeCall> {
                let b = self.backend()?;
                let agent_id = agent_id_of(agent_id)?;
                Ok($run("load_accumulators", async move { b.load_accumulators(&agent_id).await }, one))
            }

            /// Stores the agent's prompt observations (any sequence of `PromptIR`), replacing the previous ones.
            fn store_observations(&self, agent_id: &Bound<'_, PyAny>, observations: &Bound<'_, PyAny>) -> PyResult<NativeCall> {
                let b = self.backend()?;
                let agent_id = agent_id_of(agent_id)?;
                let observations = Arc::new(prompt_irs(observations)?);
                Ok($run("store_observations", async move { b.store_observations(&agent_id, observations).await }, none))
            }

            /// The agent's prompt observations, or `None`.
            fn load_observations(&self, agent_id: &Bound<'_, PyAny>) -> PyResult<NativeCall> {
                let b = self.backend()?;
                let agent_id = agent_id_of(agent_id)?;
                Ok($run("load_observations", async move { b.load_observations(&agent_id).await }, |py, loaded: Option<Arc<Observations>>| {
                    match loaded {
                        Some(obs) => many(py, obs.iter()),
                        None => Ok(py.None()),
                    }
                }))
            }

            /// Stores the agent's stability result, replacing the previous one.
            fn store_stability(&self, agent_id: &Bound<'_, PyAny>, result: &Bound<'_, PyAny>) -> PyResult<NativeCall> {
                let b = self.backend()?;
                let agent_id = agent_id_of(agent_id)?;
                let result =
                    model::<PyStabilityAnalysisResult>(result, "result", "StabilityAnalysisResult")?.get().0.clone();
                Ok($run("store_stability", async move { b.store_stability(&agent_id, result).await }, none))
            }

            /// The agent's stability result, or `None`.
            fn load_stability(&self, agent_id: &Bound<'_, PyAny>) -> PyResult<NativeCall> {
                let b = self.backend()?;
                let agent_id = agent_id_of(agent_id)?;
                Ok($run("load_stability", async move { b.load_stability(&agent_id).await }, one))
            }

            /// Closes the backend: later calls raise `StorageError`.
            fn close(&self) -> NativeCall {
                self.close_backend();
                NativeCall::inline("close", Box::new(|py| Ok(py.None())))
            }

            $($extra)*
        }
    };
}

/// Process-local storage implemented in Rust.
#[pyclass(frozen, module = "relay_store", name = "InMemoryBackend")]
pub struct PyInMemoryBackend {
    inner: Arc<InMemoryBackend>,
}

impl PyInMemoryBackend {
    fn backend(&self) -> crate::error::Result<Arc<InMemoryBackend>> {
        self.inner.ensure_open()?;
        Ok(self.inner.clone())
    }

    fn close_backend(&self) {
        self.inner.close_now();
    }
}

backend_methods!(PyInMemoryBackend, run_now, {
    #[new]
    fn __new__() -> Self {
        PyInMemoryBackend { inner: Arc::new(InMemoryBackend::new()) }
    }

    fn __repr__(&self) -> &'static str {
        "InMemoryBackend()"
    }
});

/// Redis storage shared across processes, in NeMo Relay's key layout.
#[pyclass(frozen, module = "relay_store", name = "RedisBackend")]
pub struct PyRedisBackend {
    inner: std::sync::RwLock<Option<RedisBackend>>,
    url: String,
    key_prefix: String,
}

impl PyRedisBackend {
    fn backend(&self) -> crate::error::Result<RedisBackend> {
        self.inner.read().unwrap_or_else(|e| e.into_inner()).clone().ok_or_else(|| Error::storage("backend is closed"))
    }

    /// In-flight calls keep their own handle; the connection closes when the
    /// last of them finishes.
    fn close_backend(&self) {
        if let Some(b) = self.inner.write().unwrap_or_else(|e| e.into_inner()).take() {
            b.close_now();
        }
    }
}

/// A timeout in seconds: an `int` or `float` (not a `bool`), positive and
/// finite; `None` (not given) is the default.
fn seconds(name: &str, value: Option<&Bound<'_, PyAny>>, default: std::time::Duration) -> PyResult<std::time::Duration> {
    let Some(value) = value.filter(|v| !v.is_none()) else {
        return Ok(default);
    };
    let number = if value.is_instance_of::<pyo3::types::PyBool>() {
        None
    } else if value.is_instance_of::<pyo3::types::PyInt>() || value.is_instance_of::<pyo3::types::PyFloat>() {
        // An int too large for a float overflows: refused like any non-finite value.
        Some(value.extract::<f64>().unwrap_or(f64::INFINITY))
    } else {
        None
    };
    let Some(value) = number else {
        return Err(pyo3::exceptions::PyTypeError::new_err(format!(
            "{name} must be a number of seconds, not {}",
            value.get_type().name()?
        )));
    };
    Ok(checked_seconds(name, value)?)
}

/// A size in bytes: an `int` (not a `bool`), zero or more; `None` (not
/// given) is the default.
fn byte_count(name: &str, value: Option<&Bound<'_, PyAny>>, default: usize) -> PyResult<usize> {
    let Some(value) = value.filter(|v| !v.is_none()) else {
        return Ok(default);
    };
    if value.is_instance_of::<pyo3::types::PyBool>() || !value.is_instance_of::<pyo3::types::PyInt>() {
        return Err(must_be(&format!("{name} must be an int (bytes)"), value));
    }
    value.extract::<usize>().map_err(|_| {
        Error::config(format!("{name} must be a whole number of bytes from 0 to {}, got {value}", usize::MAX)).into()
    })
}

/// A switch: a real bool, so that a string such as `"false"` is not
/// silently taken as true.
fn flag(name: &str, value: Option<&Bound<'_, PyAny>>, default: bool) -> PyResult<bool> {
    match value.filter(|v| !v.is_none()) {
        None => Ok(default),
        Some(v) => v.cast::<pyo3::types::PyBool>().map(|b| b.is_true()).map_err(|_| must_be(&format!("{name} must be a bool"), v)),
    }
}

/// A connection setting given as text. One holding a lone surrogate cannot
/// be sent to Redis; it is refused by name only, since the text (a URL) may
/// hold a password, which Python's own `UnicodeEncodeError` would carry.
fn config_text(name: &str, value: &Bound<'_, PyAny>) -> PyResult<String> {
    let s = value.cast::<pyo3::types::PyString>().map_err(|_| must_be(&format!("{name} must be str"), value))?;
    s.to_str().map(str::to_owned).map_err(|_| Error::config(format!("{name} is {LONE_SURROGATE}")).into())
}

fn checked_seconds(name: &str, value: f64) -> Result<std::time::Duration> {
    if value.is_finite() && value > 0.0 {
        std::time::Duration::try_from_secs_f64(value).map_err(|e| Error::config(format!("{name}: {e}")))
    } else {
        Err(Error::config(format!("{name} must be a positive number of seconds, got {value}")))
    }
}

backend_methods!(PyRedisBackend, run_on_tokio, {
    /// Connects to `url` (`redis://`, `rediss://` or `unix://`).
    #[staticmethod]
    #[pyo3(signature = (url, key_prefix = None, *, connect_timeout = None, response_timeout = None, run_cache_bytes = None, client_tracking = None))]
    fn connect(
        url: &Bound<'_, PyAny>,
        key_prefix: Option<&Bound<'_, PyAny>>,
        connect_timeout: Option<&Bound<'_, PyAny>>,
        response_timeout: Option<&Bound<'_, PyAny>>,
        run_cache_bytes: Option<&Bound<'_, PyAny>>,
        client_tracking: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<NativeCall> {
        let url = config_text("url", url)?;
        let key_prefix = key_prefix.map_or(Ok(DEFAULT_KEY_PREFIX.to_owned()), |p| config_text("key_prefix", p))?;
        let defaults = RedisOptions::default();
        let options = RedisOptions {
            key_prefix: key_prefix.clone(),
            connect_timeout: seconds("connect_timeout", connect_timeout, defaults.connect_timeout)?,
            response_timeout: seconds("response_timeout", response_timeout, defaults.response_timeout)?,
            run_cache_bytes: byte_count("run_cache_bytes", run_cache_bytes, defaults.run_cache_bytes)?,
            client_tracking: flag("client_tracking", client_tracking, defaults.client_tracking)?,
        };
        Ok(run_on_tokio("connect", async move { RedisBackend::connect(&url, options).await }, move |py, backend: RedisBackend| {
            let class = PyRedisBackend {
                url: backend.url().to_owned(),
                key_prefix,
                inner: std::sync::RwLock::new(Some(backend)),
            };
            Ok(Bound::new(py, class)?.into_any().unbind())
        }))
    }

    /// The connection URL, password shown as `***`.
    #[getter]
    fn url(&self) -> &str {
        &self.url
    }

    #[getter]
    fn key_prefix(&self) -> &str {
        &self.key_prefix
    }

    /// How `list_runs` has used its cache of decoded runs, as a dict:
    /// `hits` and `misses` (records looked up so far), `tracked_hits` (hits
    /// not read from Redis at all), `entries` and `bytes` held, `max_bytes`
    /// (the `run_cache_bytes` setting), and `tracking` (1 while Redis tracks
    /// the cached runs for this backend, else 0).
    fn run_cache_info<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, pyo3::types::PyDict>> {
        let info = self.backend()?.run_cache_info();
        let out = pyo3::types::PyDict::new(py);
        out.set_item("hits", info.hits)?;
        out.set_item("misses", info.misses)?;
        out.set_item("tracked_hits", info.tracked_hits)?;
        out.set_item("entries", info.entries)?;
        out.set_item("bytes", info.bytes)?;
        out.set_item("max_bytes", info.max_bytes)?;
        out.set_item("tracking", u8::from(info.tracking))?;
        Ok(out)
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let url = pyo3::types::PyString::new(py, &self.url).repr()?;
        let prefix = pyo3::types::PyString::new(py, &self.key_prefix).repr()?;
        Ok(format!("RedisBackend(url={url}, key_prefix={prefix})"))
    }
});

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyInMemoryBackend>()?;
    m.add_class::<PyRedisBackend>()?;
    // Each storage method becomes an `async def` around the native one, so
    // `inspect` sees coroutine functions (see `relay_store._coroutines`).
    let install = m.py().import("relay_store._coroutines")?.getattr("install")?;
    install.call1((m.py().get_type::<PyInMemoryBackend>(),))?;
    install.call1((m.py().get_type::<PyRedisBackend>(),))?;
    Ok(())
}
