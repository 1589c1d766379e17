//! Process-local storage.
//!
//! Nothing here waits on I/O, so every operation is a plain synchronous method
//! and the async [`Backend`] impl merely wraps it in a ready future: a Python
//! caller's coroutine finishes on its first step without visiting tokio.

use std::collections::HashMap;
use std::future::{ready, Future};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use uuid::Uuid;

use crate::backend::{ensure_writable, of_agent, Backend};
use crate::error::{Error, Result};
use crate::model::{
    AccumulatorState, ExecutionPlan, Observations, RunRecord, StabilityAnalysisResult, TrieEnvelope,
};

#[derive(Default)]
struct AgentRuns {
    /// Index order: first store of each id.
    order: Vec<Uuid>,
    by_id: HashMap<Uuid, Arc<RunRecord>>,
}

#[derive(Default)]
struct State {
    runs: HashMap<String, AgentRuns>,
    plans: HashMap<String, Arc<ExecutionPlan>>,
    tries: HashMap<String, Arc<TrieEnvelope>>,
    accumulators: HashMap<String, Arc<AccumulatorState>>,
    observations: HashMap<String, Arc<Observations>>,
    stability: HashMap<String, Arc<StabilityAnalysisResult>>,
}

#[derive(Default)]
pub struct InMemoryBackend {
    state: RwLock<State>,
    closed: AtomicBool,
}

impl InMemoryBackend {
    pub fn new() -> Self {
        Self::default()
    }

    fn read(&self) -> Result<RwLockReadGuard<'_, State>> {
        self.ensure_open()?;
        // A panic while holding the lock cannot leave a half-written value:
        // every write below is a single insert. So poisoning is ignored.
        Ok(self.state.read().unwrap_or_else(|e| e.into_inner()))
    }

    fn write(&self) -> Result<RwLockWriteGuard<'_, State>> {
        self.ensure_open()?;
        Ok(self.state.write().unwrap_or_else(|e| e.into_inner()))
    }

    pub(crate) fn ensure_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            Err(Error::storage("backend is closed"))
        } else {
            Ok(())
        }
    }

    pub fn store_run_now(&self, record: Arc<RunRecord>) -> Result<()> {
        ensure_writable(|| format!("run {}", record.id), &*record)?;
        let mut state = self.write()?;
        let agent = state.runs.entry(record.agent_id.clone()).or_default();
        let id = record.id;
        if agent.by_id.insert(id, record).is_none() {
            agent.order.push(id);
        }
        Ok(())
    }

    pub fn list_runs_now(&self, agent_id: &str) -> Result<Vec<Arc<RunRecord>>> {
        let state = self.read()?;
        Ok(state
            .runs
            .get(agent_id)
            .map(|a| a.order.iter().filter_map(|id| a.by_id.get(id).cloned()).collect())
            .unwrap_or_default())
    }

    pub fn store_plan_now(&self, plan: Arc<ExecutionPlan>) -> Result<()> {
        ensure_writable(|| of_agent("plan", &plan.agent_id), &*plan)?;
        self.write()?.plans.insert(plan.agent_id.clone(), plan);
        Ok(())
    }

    pub fn load_plan_now(&self, agent_id: &str) -> Result<Option<Arc<ExecutionPlan>>> {
        Ok(self.read()?.plans.get(agent_id).cloned())
    }

    pub fn store_trie_now(&self, agent_id: &str, envelope: Arc<TrieEnvelope>) -> Result<()> {
        ensure_writable(|| of_agent("trie", agent_id), &*envelope)?;
        self.write()?.tries.insert(agent_id.to_owned(), envelope);
        Ok(())
    }

    pub fn load_trie_now(&self, agent_id: &str) -> Result<Option<Arc<TrieEnvelope>>> {
        Ok(self.read()?.tries.get(agent_id).cloned())
    }

    pub fn store_accumulators_now(&self, agent_id: &str, state: Arc<AccumulatorState>) -> Result<()> {
        ensure_writable(|| of_agent("accumulators", agent_id), &*state)?;
        self.write()?.accumulators.insert(agent_id.to_owned(), state);
        Ok(())
    }

    pub fn load_accumulators_now(&self, agent_id: &str) -> Result<Option<Arc<AccumulatorState>>> {
        Ok(self.read()?.accumulators.get(agent_id).cloned())
    }

    pub fn store_observations_now(&self, agent_id: &str, observations: Arc<Observations>) -> Result<()> {
        ensure_writable(|| of_agent("observations", agent_id), &*observations)?;
        self.write()?.observations.insert(agent_id.to_owned(), observations);
        Ok(())
    }

    pub fn load_observations_now(&self, agent_id: &str) -> Result<Option<Arc<Observations>>> {
        Ok(self.read()?.observations.get(agent_id).cloned())
    }

    pub fn store_stability_now(&self, agent_id: &str, result: Arc<StabilityAnalysisResult>) -> Result<()> {
        ensure_writable(|| of_agent("stability result", agent_id), &*result)?;
        self.write()?.stability.insert(agent_id.to_owned(), result);
        Ok(())
    }

    pub fn load_stability_now(&self, agent_id: &str) -> Result<Option<Arc<StabilityAnalysisResult>>> {
        Ok(self.read()?.stability.get(agent_id).cloned())
    }

    /// Drops every stored value; later calls fail with a storage error.
    pub fn close_now(&self) {
        if !self.closed.swap(true, Ordering::AcqRel) {
            let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
            *state = State::default();
        }
    }
}

impl Backend for InMemoryBackend {
    fn store_run(&self, record: Arc<RunRecord>) -> impl Future<Output = Result<()>> + Send {
        ready(self.store_run_now(record))
    }
    fn list_runs(&self, agent_id: &str) -> impl Future<Output = Result<Vec<Arc<RunRecord>>>> + Send {
        ready(self.list_runs_now(agent_id))
    }
    fn store_plan(&self, plan: Arc<ExecutionPlan>) -> impl Future<Output = Result<()>> + Send {
        ready(self.store_plan_now(plan))
    }
    fn load_plan(&self, agent_id: &str) -> impl Future<Output = Result<Option<Arc<ExecutionPlan>>>> + Send {
        ready(self.load_plan_now(agent_id))
    }
    fn store_trie(&self, agent_id: &str, envelope: Arc<TrieEnvelope>) -> impl Future<Output = Result<()>> + Send {
        ready(self.store_trie_now(agent_id, envelope))
    }
    fn load_trie(&self, agent_id: &str) -> impl Future<Output = Result<Option<Arc<TrieEnvelope>>>> + Send {
        ready(self.load_trie_now(agent_id))
    }
    fn store_accumulators(
        &self,
        agent_id: &str,
        state: Arc<AccumulatorState>,
    ) -> impl Future<Output = Result<()>> + Send {
        ready(self.store_accumulators_now(agent_id, state))
    }
    fn load_accumulators(
        &self,
        agent_id: &str,
    ) -> impl Future<Output = Result<Option<Arc<AccumulatorState>>>> + Send {
        ready(self.load_accumulators_now(agent_id))
    }
    fn store_observations(
        &self,
        agent_id: &str,
        observations: Arc<Observations>,
    ) -> impl Future<Output = Result<()>> + Send {
        ready(self.store_observations_now(agent_id, observations))
    }
    fn load_observations(
        &self,
        agent_id: &str,
    ) -> impl Future<Output = Result<Option<Arc<Observations>>>> + Send {
        ready(self.load_observations_now(agent_id))
    }
    fn store_stability(
        &self,
        agent_id: &str,
        result: Arc<StabilityAnalysisResult>,
    ) -> impl Future<Output = Result<()>> + Send {
        ready(self.store_stability_now(agent_id, result))
    }
    fn load_stability(
        &self,
        agent_id: &str,
    ) -> impl Future<Output = Result<Option<Arc<StabilityAnalysisResult>>>> + Send {
        ready(self.load_stability_now(agent_id))
    }
    fn close(&self) -> impl Future<Output = Result<()>> + Send {
        self.close_now();
        ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{StorageBackend, StorageBackendDyn};
    use crate::model::{CallKind, CallRecord, MetadataEnvelope};
    use crate::wire;
    use chrono::Utc;

    fn run(agent: &str) -> Arc<RunRecord> {
        Arc::new(RunRecord {
            id: Uuid::now_v7(),
            agent_id: agent.into(),
            calls: vec![Arc::new(CallRecord {
                kind: CallKind::Llm,
                name: "llm".into(),
                started_at: Utc::now(),
                ended_at: None,
                metadata_snapshot: None,
                output_tokens: Some(3),
                prompt_tokens: None,
                total_tokens: None,
                model_name: None,
                tool_call_count: None,
                annotated_request: None,
                annotated_response: None,
                extra: Default::default(),
            })],
            started_at: Utc::now(),
            ended_at: None,
            extra: Default::default(),
        })
    }

    fn plan(agent: &str) -> Arc<ExecutionPlan> {
        Arc::new(ExecutionPlan {
            agent_id: agent.into(),
            parallel_groups: vec![],
            metadata_template: Arc::new(MetadataEnvelope {
                run_id: Uuid::now_v7(),
                agent_id: agent.into(),
                parallel_hints: vec![],
                extensions: crate::json::Json::null(),
                extra: Default::default(),
            }),
            extra: Default::default(),
        })
    }

    #[test]
    fn store_run_is_idempotent_and_ordered() {
        let b = InMemoryBackend::new();
        let (r1, r2) = (run("a"), run("a"));
        b.store_run_now(r1.clone()).unwrap();
        b.store_run_now(r2.clone()).unwrap();
        let replaced = Arc::new(RunRecord { ended_at: Some(Utc::now()), ..(*r1).clone() });
        b.store_run_now(replaced.clone()).unwrap();
        let runs = b.list_runs_now("a").unwrap();
        assert_eq!(runs.len(), 2);
        assert_eq!(runs[0], replaced, "replaced in place, first position kept");
        assert_eq!(runs[1], r2);
        assert!(Arc::ptr_eq(&runs[1], &r2), "stored by pointer, not copied");
        assert!(b.list_runs_now("other").unwrap().is_empty());
    }

    #[test]
    fn non_finite_values_are_not_stored() {
        let b = InMemoryBackend::new();
        // A JSON field holds text: a number beyond f64 that another writer
        // stored is not a non-finite float here, and is kept as written.
        let mut verbatim = (*run("a")).clone();
        let mut call = (*verbatim.calls[0]).clone();
        call.annotated_request = Some(wire::from_json(br#"{"x":1e400}"#).unwrap());
        verbatim.calls[0] = Arc::new(call);
        let verbatim = Arc::new(verbatim);
        b.store_run_now(verbatim.clone()).unwrap();
        assert_eq!(b.list_runs_now("a").unwrap(), vec![verbatim.clone()]);
        assert!(wire::to_json(&*verbatim).unwrap().contains(r#""annotated_request":{"x":1e400}"#));
        let stats = crate::model::RunningStats::default().add_sample(f64::NAN);
        let state = Arc::new(AccumulatorState {
            nodes: [(
                "w".to_owned(),
                Arc::new(crate::model::NodeAccumulators { all_sensitivity: Arc::new(stats), ..Default::default() }),
            )]
            .into(),
            extra: Default::default(),
        });
        let err = b.store_accumulators_now("a", state).unwrap_err();
        assert!(matches!(err, Error::Serialization(ref m) if m.contains("nodes[\"w\"].all_sensitivity.mean")), "{err:?}");
        assert!(b.load_accumulators_now("a").unwrap().is_none());
    }

    #[test]
    fn values_are_isolated_by_agent_and_replaced_whole() {
        let b = InMemoryBackend::new();
        b.store_plan_now(plan("a")).unwrap();
        let newer = plan("a");
        b.store_plan_now(newer.clone()).unwrap();
        assert_eq!(b.load_plan_now("a").unwrap(), Some(newer));
        assert_eq!(b.load_plan_now("b").unwrap(), None);
    }

    #[test]
    fn closed_backend_refuses_calls() {
        let b = InMemoryBackend::new();
        b.store_plan_now(plan("a")).unwrap();
        b.close_now();
        b.close_now();
        assert_eq!(b.load_plan_now("a").unwrap_err(), Error::storage("backend is closed"));
    }

    #[tokio::test]
    async fn nemo_relay_traits_work_on_the_backend() {
        let b = InMemoryBackend::new();
        let r = run("a");
        StorageBackend::store_run(&b, &r).await.unwrap();
        let dynamic: &dyn StorageBackendDyn = &b;
        dynamic.store_plan(&plan("a")).await.unwrap();
        assert_eq!(dynamic.list_runs_dyn("a").await.unwrap(), vec![(*r).clone()]);
        assert!(dynamic.load_plan_dyn("a").await.unwrap().is_some());
        assert!(dynamic.load_trie("a").await.unwrap().is_none());
    }
}
