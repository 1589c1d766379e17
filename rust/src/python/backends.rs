//! Python classes for the native backends.
//!
//! Every method is an `async fn`, so each call returns a real coroutine (it
//! works with `create_task`, `gather` and `wait_for`). How the work runs is
//! the one thing that differs between backends, and it is passed in as a
//! function: the in-memory backend finishes on the coroutine's first step,
//! the Redis backend hands the work to the shared tokio runtime.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use pyo3::prelude::*;

use super::models::{
    PyAccumulatorState, PyExecutionPlan, PyPromptIR, PyRunRecord, PyStabilityAnalysisResult, PyTrieEnvelope,
};
use crate::backend::Backend;
use crate::error::Result;
use crate::memory::InMemoryBackend;
use crate::redis_backend::{RedisBackend, RedisOptions, DEFAULT_KEY_PREFIX};
use crate::error::Error;
use crate::model::Observations;

/// Runs work that never waits: awaiting it completes at once, on the calling
/// thread, without a trip through tokio.
pub async fn run_inline<T, F: Future<Output = Result<T>>>(fut: F) -> PyResult<T> {
    fut.await.map_err(Into::into)
}

/// Runs work on the shared tokio runtime, off the event loop's thread and
/// without the GIL; the coroutine sleeps until tokio wakes it. If the awaiting
/// task is cancelled, the work is aborted with it.
pub async fn run_on_tokio<T, F>(fut: F) -> PyResult<T>
where
    T: Send + 'static,
    F: Future<Output = Result<T>> + Send + 'static,
{
    struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);
    impl<T> Drop for AbortOnDrop<T> {
        fn drop(&mut self) {
            self.0.abort();
        }
    }
    let mut handle = AbortOnDrop(pyo3_async_runtimes::tokio::get_runtime().spawn(fut));
    match Tracked(&mut handle.0).await {
        Ok(result) => result.map_err(Into::into),
        Err(e) => Err(Error::storage(format!("storage task failed: {e}")).into()),
    }
}

/// Wakes of Python coroutines that tokio threads are performing right now.
///
/// pyo3 wakes a coroutine from the tokio thread through
/// `loop.call_soon_threadsafe`, which releases the GIL while it writes to the
/// loop's socket. In that window the main thread can finish `asyncio.run` and
/// start finalizing the interpreter; the tokio thread then dies taking the GIL
/// back and the process aborts. The atexit hook [`drain_wakes`] waits for
/// this count to reach zero, before finalization begins.
static WAKES_IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

struct TrackedWaker(Waker);

impl Wake for TrackedWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref()
    }
    fn wake_by_ref(self: &Arc<Self>) {
        WAKES_IN_FLIGHT.fetch_add(1, Ordering::SeqCst);
        self.0.wake_by_ref();
        WAKES_IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Polls a future with a waker that counts itself in [`WAKES_IN_FLIGHT`].
struct Tracked<F>(F);

impl<F: Future + Unpin> Future for Tracked<F> {
    type Output = F::Output;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let waker = Waker::from(Arc::new(TrackedWaker(cx.waker().clone())));
        Pin::new(&mut self.0).poll(&mut Context::from_waker(&waker))
    }
}

/// Registered with `atexit`: lets tokio threads finish waking coroutines
/// before the interpreter finalizes (bounded, so exit never hangs).
#[pyfunction]
pub fn drain_wakes(py: Python<'_>) {
    py.detach(|| {
        let deadline = Instant::now() + Duration::from_secs(2);
        while WAKES_IN_FLIGHT.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
    });
}

/// Generates the storage methods shared by every native backend class.
/// `$class` must have `fn backend(&self) -> PyResult<Arc<impl Backend>>`.
macro_rules! backend_methods {
    ($class:ident, $run:path, { $($extra:tt)* }) => {
        #[pymethods]
        impl $class {
            async fn store_run(&self, record: Py<PyRunRecord>) -> PyResult<()> {
                let b = self.backend()?;
                let record = record.get().0.clone();
                $run(async move { b.store_run(record).await }).await
            }

            async fn list_runs(&self, agent_id: String) -> PyResult<Vec<PyRunRecord>> {
                let b = self.backend()?;
                let runs = $run(async move { b.list_runs(&agent_id).await }).await?;
                Ok(runs.into_iter().map(PyRunRecord).collect())
            }

            async fn store_plan(&self, plan: Py<PyExecutionPlan>) -> PyResult<()> {
                let b = self.backend()?;
                let plan = plan.get().0.clone();
                $run(async move { b.store_plan(plan).await }).await
            }

            async fn load_plan(&self, agent_id: String) -> PyResult<Option<PyExecutionPlan>> {
                let b = self.backend()?;
                Ok($run(async move { b.load_plan(&agent_id).await }).await?.map(PyExecutionPlan))
            }

            async fn store_trie(&self, agent_id: String, envelope: Py<PyTrieEnvelope>) -> PyResult<()> {
                let b = self.backend()?;
                let envelope = envelope.get().0.clone();
                $run(async move { b.store_trie(&agent_id, envelope).await }).await
            }

            async fn load_trie(&self, agent_id: String) -> PyResult<Option<PyTrieEnvelope>> {
                let b = self.backend()?;
                Ok($run(async move { b.load_trie(&agent_id).await }).await?.map(PyTrieEnvelope))
            }

            async fn store_accumulators(&self, agent_id: String, state: Py<PyAccumulatorState>) -> PyResult<()> {
                let b = self.backend()?;
                let state = state.get().0.clone();
                $run(async move { b.store_accumulators(&agent_id, state).await }).await
            }

            async fn load_accumulators(&self, agent_id: String) -> PyResult<Option<PyAccumulatorState>> {
                let b = self.backend()?;
                Ok($run(async move { b.load_accumulators(&agent_id).await }).await?.map(PyAccumulatorState))
            }

            async fn store_observations(&self, agent_id: String, observations: Vec<Py<PyPromptIR>>) -> PyResult<()> {
                let b = self.backend()?;
                let observations: Observations = observations.iter().map(|o| o.get().0.clone()).collect();
                $run(async move { b.store_observations(&agent_id, Arc::new(observations)).await }).await
            }

            async fn load_observations(&self, agent_id: String) -> PyResult<Option<Vec<PyPromptIR>>> {
                let b = self.backend()?;
                let loaded = $run(async move { b.load_observations(&agent_id).await }).await?;
                Ok(loaded.map(|obs| obs.iter().cloned().map(PyPromptIR).collect()))
            }

            async fn store_stability(&self, agent_id: String, result: Py<PyStabilityAnalysisResult>) -> PyResult<()> {
                let b = self.backend()?;
                let result = result.get().0.clone();
                $run(async move { b.store_stability(&agent_id, result).await }).await
            }

            async fn load_stability(&self, agent_id: String) -> PyResult<Option<PyStabilityAnalysisResult>> {
                let b = self.backend()?;
                Ok($run(async move { b.load_stability(&agent_id).await }).await?.map(PyStabilityAnalysisResult))
            }

            async fn __aenter__(slf: Py<Self>) -> Py<Self> {
                slf
            }

            async fn __aexit__(
                &self,
                _exc_type: Py<PyAny>,
                _exc: Py<PyAny>,
                _tb: Py<PyAny>,
            ) -> PyResult<()> {
                self.close_backend().await
            }

            async fn close(&self) -> PyResult<()> {
                self.close_backend().await
            }

            $($extra)*
        }
    };
}
#[allow(unused_imports)]
pub(crate) use backend_methods;

/// Process-local storage implemented in Rust.
#[pyclass(frozen, module = "relay_store", name = "InMemoryBackend")]
pub struct PyInMemoryBackend {
    inner: Arc<InMemoryBackend>,
}

impl PyInMemoryBackend {
    fn backend(&self) -> PyResult<Arc<InMemoryBackend>> {
        Ok(self.inner.clone())
    }

    async fn close_backend(&self) -> PyResult<()> {
        self.inner.close_now();
        Ok(())
    }
}

backend_methods!(PyInMemoryBackend, run_inline, {
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
    fn backend(&self) -> PyResult<RedisBackend> {
        self.inner
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or_else(|| Error::storage("backend is closed").into())
    }

    async fn close_backend(&self) -> PyResult<()> {
        // In-flight calls keep their own handle; the connection closes when
        // the last of them finishes.
        if let Some(b) = self.inner.write().unwrap_or_else(|e| e.into_inner()).take() {
            b.close_now();
        }
        Ok(())
    }
}

fn seconds(name: &str, value: f64) -> Result<std::time::Duration> {
    if value.is_finite() && value > 0.0 {
        std::time::Duration::try_from_secs_f64(value).map_err(|e| Error::config(format!("{name}: {e}")))
    } else {
        Err(Error::config(format!("{name} must be a positive number of seconds, got {value}")))
    }
}

backend_methods!(PyRedisBackend, run_on_tokio, {
    /// Connects to `url` (`redis://`, `rediss://` or `unix://`).
    #[staticmethod]
    #[pyo3(
        signature = (url, key_prefix = DEFAULT_KEY_PREFIX.to_owned(), *, connect_timeout = 5.0, response_timeout = 5.0),
        text_signature = "(url, key_prefix='nemo_relay:', *, connect_timeout=5.0, response_timeout=5.0)"
    )]
    async fn connect(url: String, key_prefix: String, connect_timeout: f64, response_timeout: f64) -> PyResult<PyRedisBackend> {
        let options = RedisOptions {
            key_prefix: key_prefix.clone(),
            connect_timeout: seconds("connect_timeout", connect_timeout)?,
            response_timeout: seconds("response_timeout", response_timeout)?,
        };
        let backend = run_on_tokio(async move { RedisBackend::connect(&url, options).await }).await?;
        Ok(PyRedisBackend {
            url: backend.url().to_owned(),
            key_prefix,
            inner: std::sync::RwLock::new(Some(backend)),
        })
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

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let url = pyo3::types::PyString::new(py, &self.url).repr()?;
        let prefix = pyo3::types::PyString::new(py, &self.key_prefix).repr()?;
        Ok(format!("RedisBackend(url={url}, key_prefix={prefix})"))
    }
});

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyInMemoryBackend>()?;
    m.add_class::<PyRedisBackend>()?;
    m.add_function(pyo3::wrap_pyfunction!(_tokio_noop, m)?)?;
    let drain = pyo3::wrap_pyfunction!(drain_wakes, m)?;
    m.py().import("atexit")?.call_method1("register", (drain,))?;
    Ok(())
}

#[pyfunction]
pub async fn _tokio_noop() -> PyResult<()> {
    run_on_tokio(async { Ok(()) }).await
}
