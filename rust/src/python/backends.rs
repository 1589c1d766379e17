//! Python classes for the native backends.
//!
//! Every method is an `async fn`, so each call returns a real coroutine (it
//! works with `create_task`, `gather` and `wait_for`). How the work runs is
//! the one thing that differs between backends, and it is passed in as a
//! function: the in-memory backend finishes on the coroutine's first step,
//! the Redis backend hands the work to the shared tokio runtime.

use std::future::Future;
use std::sync::Arc;

use pyo3::prelude::*;

use super::models::{
    PyAccumulatorState, PyExecutionPlan, PyPromptIR, PyRunRecord, PyStabilityAnalysisResult, PyTrieEnvelope,
};
use crate::backend::Backend;
use crate::error::Result;
use crate::memory::InMemoryBackend;
use crate::model::Observations;

/// Runs work that never waits: awaiting it completes at once, on the calling
/// thread, without a trip through tokio.
pub async fn run_inline<T, F: Future<Output = Result<T>>>(fut: F) -> PyResult<T> {
    fut.await.map_err(Into::into)
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

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyInMemoryBackend>()?;
    Ok(())
}
