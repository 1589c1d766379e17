//! The records of the wire contract (SPEC §1), as NeMo Relay writes them.
//!
//! Nested records are held in `Arc` so that a Python attribute read, a store
//! into the in-memory backend or a `replace()` shares them instead of copying.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::stats::Digest;
use crate::wire::{plain_wire, record};

/// A wire enum: lowercase strings on the wire, `StrEnum` members in Python.
pub trait WireEnum: Copy + Sized + 'static {
    const NAME: &'static str;
    const VARIANTS: &'static [Self];
    fn as_str(self) -> &'static str;
    fn index(self) -> usize;
    fn parse(s: &str) -> Option<Self> {
        Self::VARIANTS.iter().copied().find(|v| v.as_str() == s)
    }
}

macro_rules! wire_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $s:literal),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $( #[serde(rename = $s)] $variant, )*
        }
        impl WireEnum for $name {
            const NAME: &'static str = stringify!($name);
            const VARIANTS: &'static [Self] = &[$($name::$variant),*];
            fn as_str(self) -> &'static str {
                match self { $($name::$variant => $s,)* }
            }
            fn index(self) -> usize {
                self as usize
            }
        }
        plain_wire!($name);
    };
}

wire_enum!(CallKind { Llm = "llm", Tool = "tool" });
wire_enum!(PromptRole { System = "system", User = "user", Assistant = "assistant", Tool = "tool" });
wire_enum!(BlockContentType {
    Text = "text",
    ToolSchema = "tool_schema",
    ToolResult = "tool_result",
    StructuredOutput = "structured_output",
    Image = "image",
});
wire_enum!(ProvenanceLabel {
    System = "system",
    Developer = "developer",
    User = "user",
    Tool = "tool",
    Retrieval = "retrieval",
    Memory = "memory",
});
wire_enum!(
    /// Absent on the wire reads as `Public`.
    SensitivityLabel { Public = "public", Private = "private", Restricted = "restricted" }
);
wire_enum!(StabilityClass { Stable = "stable", SemiStable = "semi_stable", Variable = "variable" });

impl Default for SensitivityLabel {
    fn default() -> Self {
        SensitivityLabel::Public
    }
}

record! {
    /// One observed execution of an agent.
    pub struct RunRecord {
        req id: Uuid,
        req agent_id: String,
        req calls: Vec<Arc<CallRecord>>,
        req started_at: DateTime<Utc>,
        opt ended_at: Option<DateTime<Utc>>,
    }
}

record! {
    /// One LLM or tool call inside a run.
    pub struct CallRecord {
        req kind: CallKind,
        req name: String,
        req started_at: DateTime<Utc>,
        opt ended_at: Option<DateTime<Utc>>,
        opt metadata_snapshot: Option<Arc<MetadataEnvelope>>,
        opt output_tokens: Option<u32>,
        opt prompt_tokens: Option<u32>,
        opt total_tokens: Option<u32>,
        opt model_name: Option<String>,
        opt tool_call_count: Option<u32>,
        opt annotated_request: Option<Value>,
        opt annotated_response: Option<Value>,
    }
}

record! {
    pub struct MetadataEnvelope {
        req run_id: Uuid,
        req agent_id: String,
        req parallel_hints: Vec<Arc<ParallelHint>>,
        /// Required on the wire, but may be `null`.
        req extensions: Value,
    }
}

record! {
    pub struct ParallelHint {
        req tool_name: String,
        req group_id: String,
        req explicit: bool,
    }
}

record! {
    pub struct ExecutionPlan {
        req agent_id: String,
        req parallel_groups: Vec<Arc<ParallelGroup>>,
        req metadata_template: Arc<MetadataEnvelope>,
    }
}

record! {
    pub struct ParallelGroup {
        req group_id: String,
        req tool_names: Vec<String>,
    }
}

record! {
    pub struct TrieEnvelope {
        req version: String,
        /// Kept verbatim: NeMo Agent Toolkit and NeMo Relay format it differently.
        req generated_at: String,
        req workflow_name: String,
        req root: Arc<PredictionTrieNode>,
    }
}

record! {
    pub struct PredictionTrieNode {
        req name: String,
        req children: BTreeMap<String, Arc<PredictionTrieNode>>,
        req predictions_by_call_index: BTreeMap<u32, Arc<LlmCallPrediction>>,
        null predictions_any_index: Option<Arc<LlmCallPrediction>>,
    }
}

record! {
    pub struct LlmCallPrediction {
        req remaining_calls: Arc<PredictionMetrics>,
        req interarrival_ms: Arc<PredictionMetrics>,
        req output_tokens: Arc<PredictionMetrics>,
        null latency_sensitivity: Option<u32>,
    }
}

record! {
    pub struct PredictionMetrics {
        req sample_count: u32,
        req mean: f64,
        req p50: f64,
        req p90: f64,
        req p95: f64,
    }
}

record! {
    pub struct AccumulatorState {
        req nodes: BTreeMap<String, Arc<NodeAccumulators>>,
    }
}

record! {
    pub struct NodeAccumulators {
        req remaining_calls: BTreeMap<u32, Arc<RunningStats>>,
        req interarrival_ms: BTreeMap<u32, Arc<RunningStats>>,
        req output_tokens: BTreeMap<u32, Arc<RunningStats>>,
        req sensitivity: BTreeMap<u32, Arc<RunningStats>>,
        req all_remaining_calls: Arc<RunningStats>,
        req all_interarrival_ms: Arc<RunningStats>,
        req all_output_tokens: Arc<RunningStats>,
        req all_sensitivity: Arc<RunningStats>,
    }
}

record! {
    /// Welford mean and M2 plus a t-digest, as NeMo Relay accumulates them.
    pub struct RunningStats {
        req count: u64,
        req mean: f64,
        req m2: f64,
        req digest: Digest,
    }
}

record! {
    /// One observed prompt, split into blocks.
    pub struct PromptIR {
        req ir_id: Uuid,
        req blocks: Vec<Arc<PromptBlock>>,
        opt tool_schema_hashes: Option<Vec<Arc<ToolSchemaHash>>>,
        opt structured_output_schema_id: Option<String>,
        opt source_request_hash: Option<String>,
        req created_at: DateTime<Utc>,
    }
}

record! {
    pub struct PromptBlock {
        req span_id: String,
        req sequence_index: u32,
        req role: PromptRole,
        req content: String,
        req content_type: BlockContentType,
        req provenance: ProvenanceLabel,
        def sensitivity: SensitivityLabel,
        opt token_metadata: Option<Arc<TokenizationMetadata>>,
    }
}

record! {
    pub struct TokenizationMetadata {
        req model_family: String,
        req token_count: u32,
    }
}

record! {
    pub struct ToolSchemaHash {
        req tool_name: String,
        req schema_hash: String,
    }
}

record! {
    pub struct StabilityAnalysisResult {
        req scores: Vec<Arc<BlockStabilityScore>>,
        req stable_prefix_length: usize,
        opt stable_prefix_fingerprint: Option<String>,
        req total_observations: u32,
    }
}

record! {
    pub struct BlockStabilityScore {
        req span_id: String,
        req classification: StabilityClass,
        req score: f64,
        req confidence: f64,
        req observation_count: u32,
    }
}

/// Observations are stored as one JSON array of PromptIR.
pub type Observations = Vec<Arc<PromptIR>>;

impl Default for PredictionMetrics {
    fn default() -> Self {
        PredictionMetrics { sample_count: 0, mean: 0.0, p50: 0.0, p90: 0.0, p95: 0.0, extra: Default::default() }
    }
}

impl Default for AccumulatorState {
    fn default() -> Self {
        AccumulatorState { nodes: Default::default(), extra: Default::default() }
    }
}
