//! The records of the wire contract (SPEC §1), as NeMo Relay writes them.
//!
//! Nested records are held in `Arc` so that a Python attribute read, a store
//! into the in-memory backend or a `replace()` shares them instead of copying.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use crate::json::Json;
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

// Written out because the enum is declared through `wire_enum!`.
#[allow(clippy::derivable_impls)]
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
        opt annotated_request: Option<Json>,
        opt annotated_response: Option<Json>,
    }
}

record! {
    pub struct MetadataEnvelope {
        req run_id: Uuid,
        req agent_id: String,
        req parallel_hints: Vec<Arc<ParallelHint>>,
        /// Required on the wire, but may be `null`.
        req extensions: Json,
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

/// Trie levels below the root that JSON readers accept: each level nests two
/// objects, a leaf's predictions three more, the envelope one, and readers
/// stop at 128 (serde_json's limit, NeMo Relay's too).
pub const MAX_TRIE_DEPTH: usize = 61;

impl PredictionTrieNode {
    /// Levels below this node (0 for a leaf), without recursion, so that
    /// even a pathologically deep trie is measured safely.
    pub fn depth(&self) -> usize {
        let mut deepest = 0;
        let mut stack: Vec<(&PredictionTrieNode, usize)> = vec![(self, 0)];
        while let Some((node, level)) = stack.pop() {
            deepest = deepest.max(level);
            stack.extend(node.children.values().map(|c| (&**c, level + 1)));
        }
        deepest
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
    #[derive(Default)]
    pub struct PredictionMetrics {
        req sample_count: u32,
        req mean: f64,
        req p50: f64,
        req p90: f64,
        req p95: f64,
    }
}

record! {
    #[derive(Default)]
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


#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{from_json, to_json};
    use serde_json::{json, Value};

    /// The reference trie from NeMo Agent Toolkit (SPEC §1).
    const NAT_TRIE: &str = r#"{"version":"1.0","generated_at":"2026-03-31T12:00:00+00:00","workflow_name":"my_agent",
     "root":{"name":"root",
       "predictions_by_call_index":{"1":{
         "remaining_calls":{"sample_count":10,"mean":2.5,"p50":2.0,"p90":4.0,"p95":4.5},
         "interarrival_ms":{"sample_count":10,"mean":150.0,"p50":140.0,"p90":200.0,"p95":220.0},
         "output_tokens":{"sample_count":10,"mean":256.0,"p50":240.0,"p90":400.0,"p95":450.0},
         "latency_sensitivity":3}},
       "predictions_any_index":null,
       "children":{"react_agent":{"name":"react_agent","predictions_by_call_index":{},"predictions_any_index":null,"children":{}}}}}"#;

    fn roundtrip<T: crate::wire::Wire>(doc: &str) -> (T, String) {
        let value: T = from_json(doc.as_bytes()).expect("decodes");
        let out = to_json(&value).expect("encodes");
        (value, out)
    }

    #[test]
    fn a_failed_read_names_the_field_and_keeps_the_position() {
        let bad = NAT_TRIE.replace(r#""sample_count":10,"mean":150.0"#, r#""sample_count":-10,"mean":150.0"#);
        let err = from_json::<TrieEnvelope>(bad.as_bytes()).unwrap_err().to_string();
        assert!(err.starts_with("root.predictions_by_call_index.1.interarrival_ms.sample_count: invalid value: integer `-10`"), "{err}");
        assert!(err.ends_with("at line 5 column 46"), "{err}");
        // Nothing to name at the top level, or in a document cut short
        // before a field name: serde_json's message as it is.
        let err = from_json::<TrieEnvelope>(b"[]").unwrap_err().to_string();
        assert!(err.starts_with("invalid type: sequence"), "{err}");
        let err = from_json::<TrieEnvelope>(b"{").unwrap_err().to_string();
        assert_eq!(err, "EOF while parsing an object at line 1 column 1");
        let err = from_json::<TrieEnvelope>(br#"{"root":{"children":{"a":{"#).unwrap_err().to_string();
        assert!(err.starts_with("root.children.a: EOF while parsing"), "{err}");
    }

    fn same_json(a: &str, b: &str) {
        let a: Value = serde_json::from_str(a).unwrap();
        let b: Value = serde_json::from_str(b).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn nat_reference_trie_round_trips() {
        let (trie, out) = roundtrip::<TrieEnvelope>(NAT_TRIE);
        same_json(NAT_TRIE, &out);
        assert_eq!(trie.generated_at, "2026-03-31T12:00:00+00:00", "kept verbatim");
        let prediction = &trie.root.predictions_by_call_index[&1];
        assert_eq!(prediction.latency_sensitivity, Some(3));
        assert_eq!(prediction.output_tokens.p95, 450.0);
        assert!(trie.root.children["react_agent"].predictions_any_index.is_none());
        assert!(!out.contains(' ') && !out.contains('\n'), "compact: {out}");
    }

    #[test]
    fn run_record_golden_document() {
        let doc = r#"{"id":"0191c0de-0000-7000-8000-000000000001","agent_id":"agent","calls":[{"kind":"tool","name":"search","started_at":"2026-03-31T12:00:00Z","ended_at":"2026-03-31T12:00:01.5Z","metadata_snapshot":{"run_id":"0191c0de-0000-7000-8000-000000000001","agent_id":"agent","parallel_hints":[{"tool_name":"search","group_id":"g1","explicit":true}],"extensions":null},"output_tokens":1,"prompt_tokens":2,"total_tokens":3,"model_name":"m","tool_call_count":4,"annotated_request":{"a":[1,2.5,"x",null,true]},"annotated_response":"ok"}],"started_at":"2026-03-31T12:00:00.123456Z"}"#;
        let (run, out) = roundtrip::<RunRecord>(doc);
        // Fraction digits come out in chrono's AutoSi groups of 3, 6 or 9.
        let expected = doc.replace("12:00:01.5Z", "12:00:01.500Z");
        assert_eq!(out, expected);
        assert_eq!(run.calls[0].kind, CallKind::Tool);
        assert!(run.calls[0].metadata_snapshot.as_ref().unwrap().extensions.is_null());
    }

    #[test]
    fn optional_fields_are_omitted_and_null_reads_as_absent() {
        let doc = r#"{"kind":"llm","name":"n","started_at":"2026-03-31T12:00:00Z","ended_at":null,"model_name":null}"#;
        let (call, out) = roundtrip::<CallRecord>(doc);
        assert_eq!(call.ended_at, None);
        assert_eq!(out, r#"{"kind":"llm","name":"n","started_at":"2026-03-31T12:00:00Z"}"#);
    }

    #[test]
    fn always_written_fields_are_null_when_absent() {
        let metrics = r#"{"sample_count":1,"mean":1.0,"p50":1.0,"p90":1.0,"p95":1.0}"#;
        let doc = format!(r#"{{"remaining_calls":{metrics},"interarrival_ms":{metrics},"output_tokens":{metrics}}}"#);
        let (_, out) = roundtrip::<LlmCallPrediction>(&doc);
        assert!(out.ends_with(r#""latency_sensitivity":null}"#), "{out}");
        let (_, out) = roundtrip::<PredictionTrieNode>(r#"{"name":"n","children":{},"predictions_by_call_index":{}}"#);
        assert!(out.contains(r#""predictions_any_index":null"#), "{out}");
    }

    #[test]
    fn unknown_fields_survive_at_every_level() {
        let doc = json!({
            "id": "0191c0de-0000-7000-8000-000000000001", "agent_id": "a", "started_at": "2026-03-31T12:00:00Z",
            "future_top": {"x": [1, 2]},
            "calls": [{
                "kind": "llm", "name": "n", "started_at": "2026-03-31T12:00:00Z", "future_call": 1,
                "metadata_snapshot": {
                    "run_id": "0191c0de-0000-7000-8000-000000000001", "agent_id": "a", "extensions": {"k": "v"},
                    "future_meta": true,
                    "parallel_hints": [{"tool_name": "t", "group_id": "g", "explicit": false, "future_hint": null}]
                }
            }]
        })
        .to_string();
        let (_, out) = roundtrip::<RunRecord>(&doc);
        same_json(&doc, &out);
    }

    #[test]
    fn datetimes_keep_nanoseconds_and_read_any_offset() {
        let doc = r#"{"kind":"llm","name":"n","started_at":"2026-03-31T14:00:00.123456789+02:00","ended_at":"2026-03-31T12:00:00.000Z"}"#;
        let (_, out) = roundtrip::<CallRecord>(doc);
        assert_eq!(
            out,
            r#"{"kind":"llm","name":"n","started_at":"2026-03-31T12:00:00.123456789Z","ended_at":"2026-03-31T12:00:00Z"}"#
        );
        assert!(from_json::<CallRecord>(br#"{"kind":"llm","name":"n","started_at":"2026-03-31 12:00"}"#).is_err());
    }

    #[test]
    fn integer_keys_must_be_canonical_u32() {
        let node = |key: &str| {
            format!(
                r#"{{"name":"n","children":{{}},"predictions_any_index":null,"predictions_by_call_index":{{"{key}":{{"remaining_calls":{m},"interarrival_ms":{m},"output_tokens":{m},"latency_sensitivity":null}}}}}}"#,
                m = r#"{"sample_count":1,"mean":1.0,"p50":1.0,"p90":1.0,"p95":1.0}"#
            )
        };
        assert!(from_json::<PredictionTrieNode>(node("0").as_bytes()).is_ok());
        assert!(from_json::<PredictionTrieNode>(node("4294967295").as_bytes()).is_ok());
        for bad in ["01", "+1", "-1", "4294967296", "x", ""] {
            assert!(from_json::<PredictionTrieNode>(node(bad).as_bytes()).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn out_of_range_and_wrong_types_are_refused() {
        let m = |count: &str| format!(r#"{{"sample_count":{count},"mean":1.0,"p50":1.0,"p90":1.0,"p95":1.0}}"#);
        assert!(from_json::<PredictionMetrics>(m("4294967296").as_bytes()).is_err());
        assert!(from_json::<PredictionMetrics>(m("-1").as_bytes()).is_err());
        assert!(from_json::<PredictionMetrics>(m("1.5").as_bytes()).is_err());
        assert!(from_json::<PredictionMetrics>(m("\"1\"").as_bytes()).is_err());
        let missing = from_json::<PredictionMetrics>(br#"{"sample_count":1}"#).unwrap_err();
        assert!(missing.to_string().contains("missing field `mean`"), "{missing}");
        let dup = from_json::<ParallelGroup>(br#"{"group_id":"a","group_id":"b","tool_names":[]}"#).unwrap_err();
        assert!(dup.to_string().contains("duplicate field"), "{dup}");
    }

    #[test]
    fn enums_are_lowercase_and_unknown_ones_fail() {
        assert_eq!(serde_json::to_string(&StabilityClass::SemiStable).unwrap(), r#""semi_stable""#);
        assert_eq!(serde_json::to_string(&BlockContentType::StructuredOutput).unwrap(), r#""structured_output""#);
        assert!(from_json::<ParallelHint>(br#"{"tool_name":"t","group_id":"g","explicit":"yes"}"#).is_err());
        let call = br#"{"kind":"LLM","name":"n","started_at":"2026-03-31T12:00:00Z"}"#;
        assert!(from_json::<CallRecord>(call).is_err());
    }

    #[test]
    fn sensitivity_defaults_to_public_and_is_always_written() {
        for doc in [
            r#"{"span_id":"s","sequence_index":0,"role":"user","content":"c","content_type":"text","provenance":"user"}"#,
            r#"{"span_id":"s","sequence_index":0,"role":"user","content":"c","content_type":"text","provenance":"user","sensitivity":null}"#,
        ] {
            let (block, out) = roundtrip::<PromptBlock>(doc);
            assert_eq!(block.sensitivity, SensitivityLabel::Public);
            assert!(out.contains(r#""sensitivity":"public""#), "{out}");
        }
    }

    #[test]
    fn non_finite_floats_are_refused_with_their_path() {
        let score = BlockStabilityScore {
            span_id: "s".into(),
            classification: StabilityClass::Stable,
            score: 0.5,
            confidence: f64::INFINITY,
            observation_count: 1,
            extra: Default::default(),
        };
        let result = StabilityAnalysisResult {
            scores: vec![Arc::new(score)],
            stable_prefix_length: 1,
            stable_prefix_fingerprint: None,
            total_observations: 1,
            extra: Default::default(),
        };
        let err = to_json(&result).unwrap_err().to_string();
        assert_eq!(err, "scores[0].confidence: inf cannot be represented in JSON");
    }

    #[test]
    fn observations_are_one_json_array() {
        let doc = r#"[{"ir_id":"0191c0de-0000-7000-8000-000000000002","blocks":[{"span_id":"s","sequence_index":3,"role":"system","content":"hi","content_type":"tool_schema","provenance":"developer","sensitivity":"restricted","token_metadata":{"model_family":"llama","token_count":7}}],"tool_schema_hashes":[{"tool_name":"t","schema_hash":"h"}],"created_at":"2026-03-31T12:00:00Z"}]"#;
        let (obs, out) = roundtrip::<Observations>(doc);
        assert_eq!(obs.len(), 1);
        assert_eq!(out, doc);
    }
}

