//! Backend traits.
//!
//! [`Backend`] is this crate's own interface: values travel as `Arc`s, so the
//! in-memory backend stores and returns pointers and the Python layer never
//! copies a record it already holds. [`StorageBackend`] and
//! [`StorageBackendDyn`] mirror NeMo Relay's traits of the same names, so Rust
//! code written against NeMo Relay can use these backends unchanged; every
//! [`Backend`] implements both.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::model::{
    AccumulatorState, ExecutionPlan, Observations, PromptIR, RunRecord, StabilityAnalysisResult,
    TrieEnvelope,
};
use crate::wire::Wire;

pub type BoxStorageFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T>> + Send + 'a>>;

/// Everything a relay_store backend does, with shared (`Arc`) values.
pub trait Backend: Send + Sync + 'static {
    fn store_run(&self, record: Arc<RunRecord>) -> impl Future<Output = Result<()>> + Send;
    fn list_runs(&self, agent_id: &str) -> impl Future<Output = Result<Vec<Arc<RunRecord>>>> + Send;
    fn store_plan(&self, plan: Arc<ExecutionPlan>) -> impl Future<Output = Result<()>> + Send;
    fn load_plan(&self, agent_id: &str) -> impl Future<Output = Result<Option<Arc<ExecutionPlan>>>> + Send;
    fn store_trie(&self, agent_id: &str, envelope: Arc<TrieEnvelope>) -> impl Future<Output = Result<()>> + Send;
    fn load_trie(&self, agent_id: &str) -> impl Future<Output = Result<Option<Arc<TrieEnvelope>>>> + Send;
    fn store_accumulators(
        &self,
        agent_id: &str,
        state: Arc<AccumulatorState>,
    ) -> impl Future<Output = Result<()>> + Send;
    fn load_accumulators(
        &self,
        agent_id: &str,
    ) -> impl Future<Output = Result<Option<Arc<AccumulatorState>>>> + Send;
    fn store_observations(
        &self,
        agent_id: &str,
        observations: Arc<Observations>,
    ) -> impl Future<Output = Result<()>> + Send;
    fn load_observations(
        &self,
        agent_id: &str,
    ) -> impl Future<Output = Result<Option<Arc<Observations>>>> + Send;
    fn store_stability(
        &self,
        agent_id: &str,
        result: Arc<StabilityAnalysisResult>,
    ) -> impl Future<Output = Result<()>> + Send;
    fn load_stability(
        &self,
        agent_id: &str,
    ) -> impl Future<Output = Result<Option<Arc<StabilityAnalysisResult>>>> + Send;
    fn close(&self) -> impl Future<Output = Result<()>> + Send;
}

/// How a store error names what it refused: `trie of agent "a"`. The id is
/// quoted as JSON, which the pure-Python backend writes the same way
/// (`json.dumps(agent_id, ensure_ascii=False)`); Rust's `{:?}` escapes
/// control and combining characters its own way.
pub fn of_agent(kind: &str, agent_id: &str) -> String {
    format!("{kind} of agent {}", serde_json::to_string(agent_id).expect("text is always JSON"))
}

/// Refuses a value that could not be read back, before anything is written.
pub fn ensure_writable<T: Wire>(what: impl FnOnce() -> String, value: &T) -> Result<()> {
    value
        .check()
        .map_err(|e| Error::serialization(format!("cannot store {}: {e}", what())))
}

/// The JSON to store, or the reason it cannot be written, naming the value
/// and where inside it the problem sits; one pass over the value either way.
pub fn encode_for_store<T: Wire>(what: impl FnOnce() -> String, value: &T) -> Result<Vec<u8>> {
    crate::wire::to_json_vec(value).map_err(|e| match e {
        Error::Serialization(m) => Error::serialization(format!("cannot store {}: {m}", what())),
        other => other,
    })
}

/// Runs CPU-bound work (decoding or encoding a large document) on tokio's
/// blocking pool, so the one I/O worker goes on reading replies meanwhile.
/// At most one such job per core runs at a time: a long list split into many
/// chunks must not start a thread per chunk on a machine with two cores.
pub(crate) async fn off_worker<R: Send + 'static>(work: impl FnOnce() -> R + Send + 'static) -> Result<R> {
    // Per process: a child made by `fork` would inherit permits held by
    // jobs of the parent's that never finish in the child.
    static CORES: crate::process::PerProcess<tokio::sync::Semaphore> = crate::process::PerProcess::new();
    let cores =
        CORES.get(|| tokio::sync::Semaphore::new(std::thread::available_parallelism().map_or(2, std::num::NonZero::get)));
    let permit = cores.acquire().await.map_err(|e| Error::storage(format!("background work refused: {e}")))?;
    tokio::task::spawn_blocking(move || {
        let _held = permit;
        work()
    })
    .await
    .map_err(|e| Error::storage(format!("background task failed: {e}")))
}

/// NeMo Relay's minimal async interface.
pub trait StorageBackend: Send + Sync + 'static {
    fn store_run(&self, record: &RunRecord) -> impl Future<Output = Result<()>> + Send;
    fn load_plan(&self, agent_id: &str) -> impl Future<Output = Result<Option<ExecutionPlan>>> + Send;
    fn list_runs(&self, agent_id: &str) -> impl Future<Output = Result<Vec<RunRecord>>> + Send;
}

/// NeMo Relay's object-safe interface. Unlike NeMo Relay's, `store_plan` is
/// asynchronous here: a plan write must not block the caller's executor.
pub trait StorageBackendDyn: Send + Sync + 'static {
    fn store_run_dyn<'a>(&'a self, record: &'a RunRecord) -> BoxStorageFuture<'a, ()>;
    fn load_plan_dyn<'a>(&'a self, agent_id: &'a str) -> BoxStorageFuture<'a, Option<ExecutionPlan>>;
    fn list_runs_dyn<'a>(&'a self, agent_id: &'a str) -> BoxStorageFuture<'a, Vec<RunRecord>>;
    fn store_trie<'a>(&'a self, agent_id: &'a str, envelope: &'a TrieEnvelope) -> BoxStorageFuture<'a, ()>;
    fn load_trie<'a>(&'a self, agent_id: &'a str) -> BoxStorageFuture<'a, Option<TrieEnvelope>>;
    fn store_accumulators<'a>(
        &'a self,
        agent_id: &'a str,
        state: &'a AccumulatorState,
    ) -> BoxStorageFuture<'a, ()>;
    fn load_accumulators<'a>(&'a self, agent_id: &'a str) -> BoxStorageFuture<'a, Option<AccumulatorState>>;
    fn store_plan<'a>(&'a self, plan: &'a ExecutionPlan) -> BoxStorageFuture<'a, ()>;
    fn store_observations<'a>(&'a self, agent_id: &'a str, observations: &'a [PromptIR]) -> BoxStorageFuture<'a, ()>;
    fn load_observations<'a>(&'a self, agent_id: &'a str) -> BoxStorageFuture<'a, Option<Vec<PromptIR>>>;
    fn store_stability<'a>(
        &'a self,
        agent_id: &'a str,
        result: &'a StabilityAnalysisResult,
    ) -> BoxStorageFuture<'a, ()>;
    fn load_stability<'a>(&'a self, agent_id: &'a str) -> BoxStorageFuture<'a, Option<StabilityAnalysisResult>>;
}

fn unshare<T: Clone>(v: Arc<T>) -> T {
    Arc::try_unwrap(v).unwrap_or_else(|shared| (*shared).clone())
}

impl<B: Backend> StorageBackend for B {
    fn store_run(&self, record: &RunRecord) -> impl Future<Output = Result<()>> + Send {
        Backend::store_run(self, Arc::new(record.clone()))
    }
    async fn load_plan(&self, agent_id: &str) -> Result<Option<ExecutionPlan>> {
        Ok(Backend::load_plan(self, agent_id).await?.map(unshare))
    }
    async fn list_runs(&self, agent_id: &str) -> Result<Vec<RunRecord>> {
        Ok(Backend::list_runs(self, agent_id).await?.into_iter().map(unshare).collect())
    }
}

impl<B: Backend> StorageBackendDyn for B {
    fn store_run_dyn<'a>(&'a self, record: &'a RunRecord) -> BoxStorageFuture<'a, ()> {
        Box::pin(StorageBackend::store_run(self, record))
    }
    fn load_plan_dyn<'a>(&'a self, agent_id: &'a str) -> BoxStorageFuture<'a, Option<ExecutionPlan>> {
        Box::pin(StorageBackend::load_plan(self, agent_id))
    }
    fn list_runs_dyn<'a>(&'a self, agent_id: &'a str) -> BoxStorageFuture<'a, Vec<RunRecord>> {
        Box::pin(StorageBackend::list_runs(self, agent_id))
    }
    fn store_trie<'a>(&'a self, agent_id: &'a str, envelope: &'a TrieEnvelope) -> BoxStorageFuture<'a, ()> {
        Box::pin(Backend::store_trie(self, agent_id, Arc::new(envelope.clone())))
    }
    fn load_trie<'a>(&'a self, agent_id: &'a str) -> BoxStorageFuture<'a, Option<TrieEnvelope>> {
        Box::pin(async move { Ok(Backend::load_trie(self, agent_id).await?.map(unshare)) })
    }
    fn store_accumulators<'a>(
        &'a self,
        agent_id: &'a str,
        state: &'a AccumulatorState,
    ) -> BoxStorageFuture<'a, ()> {
        Box::pin(Backend::store_accumulators(self, agent_id, Arc::new(state.clone())))
    }
    fn load_accumulators<'a>(&'a self, agent_id: &'a str) -> BoxStorageFuture<'a, Option<AccumulatorState>> {
        Box::pin(async move { Ok(Backend::load_accumulators(self, agent_id).await?.map(unshare)) })
    }
    fn store_plan<'a>(&'a self, plan: &'a ExecutionPlan) -> BoxStorageFuture<'a, ()> {
        Box::pin(Backend::store_plan(self, Arc::new(plan.clone())))
    }
    fn store_observations<'a>(&'a self, agent_id: &'a str, observations: &'a [PromptIR]) -> BoxStorageFuture<'a, ()> {
        let shared: Observations = observations.iter().cloned().map(Arc::new).collect();
        Box::pin(Backend::store_observations(self, agent_id, Arc::new(shared)))
    }
    fn load_observations<'a>(&'a self, agent_id: &'a str) -> BoxStorageFuture<'a, Option<Vec<PromptIR>>> {
        Box::pin(async move {
            Ok(Backend::load_observations(self, agent_id)
                .await?
                .map(|obs| unshare(obs).into_iter().map(unshare).collect()))
        })
    }
    fn store_stability<'a>(
        &'a self,
        agent_id: &'a str,
        result: &'a StabilityAnalysisResult,
    ) -> BoxStorageFuture<'a, ()> {
        Box::pin(Backend::store_stability(self, agent_id, Arc::new(result.clone())))
    }
    fn load_stability<'a>(&'a self, agent_id: &'a str) -> BoxStorageFuture<'a, Option<StabilityAnalysisResult>> {
        Box::pin(async move { Ok(Backend::load_stability(self, agent_id).await?.map(unshare)) })
    }
}

#[cfg(test)]
mod tests {
    use super::off_worker;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn background_work_runs_at_most_one_job_per_core() {
        let cores = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
        let (running, peak) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let jobs = (0..4 * cores).map(|i| {
            let (running, peak) = (running.clone(), peak.clone());
            off_worker(move || {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(20));
                running.fetch_sub(1, Ordering::SeqCst);
                i
            })
        });
        let done: Vec<usize> = futures_util::future::join_all(jobs).await.into_iter().map(Result::unwrap).collect();
        assert_eq!(done, (0..4 * cores).collect::<Vec<_>>());
        assert_eq!(peak.load(Ordering::SeqCst), cores, "as many jobs at once as cores, never more");
    }
}
