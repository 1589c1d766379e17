"""Fully populated example models, shared by the test modules.

Every optional field is set, so that a test iterating over these touches every
field of every class at least once.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import relay_store as rs

UTC = timezone.utc
T0 = datetime(2026, 3, 31, 12, 0, 0, tzinfo=UTC)
T1 = datetime(2026, 3, 31, 12, 0, 1, 123456, tzinfo=UTC)
RUN_ID = uuid.UUID("0191c0de-0000-7000-8000-00000000abcd")
IR_ID = uuid.UUID("0191c0de-1111-7111-8111-11111111abcd")


def metrics(scale: float = 1.0) -> rs.PredictionMetrics:
    return rs.PredictionMetrics(
        sample_count=10,
        mean=2.5 * scale,
        p50=2.0 * scale,
        p90=4.0 * scale,
        p95=4.5 * scale,
    )


def prediction(sensitivity: int | None = 3) -> rs.LlmCallPrediction:
    return rs.LlmCallPrediction(
        remaining_calls=metrics(),
        interarrival_ms=metrics(60.0),
        output_tokens=metrics(100.0),
        latency_sensitivity=sensitivity,
    )


def envelope_meta(agent_id: str = "agent-a") -> rs.MetadataEnvelope:
    return rs.MetadataEnvelope(
        run_id=RUN_ID,
        agent_id=agent_id,
        parallel_hints=[
            rs.ParallelHint(tool_name="search", group_id="g1", explicit=True),
            rs.ParallelHint(tool_name="fetch", group_id="g1", explicit=False),
        ],
        extensions={"team": "relay", "weights": [1, 2.5, None, True]},
    )


def call(kind: rs.CallKind = rs.CallKind.LLM, name: str = "planner") -> rs.CallRecord:
    return rs.CallRecord(
        kind=kind,
        name=name,
        started_at=T0,
        ended_at=T1,
        metadata_snapshot=envelope_meta(),
        output_tokens=128,
        prompt_tokens=1024,
        total_tokens=1152,
        model_name="nemotron-mini",
        tool_call_count=2,
        annotated_request={"messages": [{"role": "user", "content": "hi"}]},
        annotated_response=["ok", 1, 2.5, False, None],
    )


def run(agent_id: str = "agent-a", run_id: uuid.UUID | None = None) -> rs.RunRecord:
    return rs.RunRecord(
        id=run_id if run_id is not None else uuid.uuid4(),
        agent_id=agent_id,
        calls=[call(), call(rs.CallKind.TOOL, "search")],
        started_at=T0,
        ended_at=T1,
    )


def plan(agent_id: str = "agent-a") -> rs.ExecutionPlan:
    return rs.ExecutionPlan(
        agent_id=agent_id,
        parallel_groups=[
            rs.ParallelGroup(group_id="g1", tool_names=["search", "fetch"]),
            rs.ParallelGroup(group_id="g2", tool_names=[]),
        ],
        metadata_template=envelope_meta(agent_id),
    )


def trie(workflow: str = "my_agent") -> rs.TrieEnvelope:
    leaf = rs.PredictionTrieNode(
        name="react_agent",
        predictions_by_call_index={1: prediction(), 2: prediction(None)},
        predictions_any_index=prediction(1),
    )
    root = rs.PredictionTrieNode(
        name="root",
        children={"react_agent": leaf},
        predictions_by_call_index={1: prediction()},
    )
    return rs.TrieEnvelope(
        version="1.0",
        generated_at="2026-03-31T12:00:00+00:00",
        workflow_name=workflow,
        root=root,
    )


def wide_trie(tag: str, children: int = 12) -> rs.TrieEnvelope:
    """Wide enough for the Redis backend's two-thread writer (8 root
    children or more), with `tag` in every child so two such tries differ in
    both halves."""
    kids = {
        f"agent_{i}": rs.PredictionTrieNode(
            name=f"{tag}_{i}", predictions_by_call_index={1: prediction(i % 5)}
        )
        for i in range(children)
    }
    return rs.TrieEnvelope(
        version="1.0",
        generated_at="2026-03-31T12:00:00+00:00",
        workflow_name=tag,
        root=rs.PredictionTrieNode(name="root", children=kids),
    )


def stats(*samples: float) -> rs.RunningStats:
    result = rs.RunningStats()
    for x in samples:
        result = result.add_sample(x)
    return result


def node_accumulators() -> rs.NodeAccumulators:
    return rs.NodeAccumulators(
        remaining_calls={1: stats(3, 2, 1), 2: stats(2, 1)},
        interarrival_ms={1: stats(120.0, 180.0)},
        output_tokens={1: stats(256, 300, 310)},
        sensitivity={1: stats(3)},
        all_remaining_calls=stats(3, 2, 1, 2, 1),
        all_interarrival_ms=stats(120.0, 180.0),
        all_output_tokens=stats(256, 300, 310),
        all_sensitivity=stats(3),
    )


def accumulators() -> rs.AccumulatorState:
    return rs.AccumulatorState(
        nodes={
            "workflow": node_accumulators(),
            "workflow/agent": rs.NodeAccumulators(),
        }
    )


def block(index: int = 0) -> rs.PromptBlock:
    return rs.PromptBlock(
        span_id=f"span-{index}",
        sequence_index=index,
        role=rs.PromptRole.SYSTEM,
        content="You are a helpful agent. ✓ 日本語",
        content_type=rs.BlockContentType.TOOL_SCHEMA,
        provenance=rs.ProvenanceLabel.DEVELOPER,
        sensitivity=rs.SensitivityLabel.PRIVATE,
        token_metadata=rs.TokenizationMetadata(model_family="llama", token_count=42),
    )


def prompt(ir_id: uuid.UUID = IR_ID) -> rs.PromptIR:
    return rs.PromptIR(
        ir_id=ir_id,
        blocks=[block(0), block(1)],
        tool_schema_hashes=[rs.ToolSchemaHash(tool_name="search", schema_hash="ab12")],
        structured_output_schema_id="schema-1",
        source_request_hash="cafe",
        created_at=T0,
    )


def stability(prefix: int = 1) -> rs.StabilityAnalysisResult:
    return rs.StabilityAnalysisResult(
        scores=[
            rs.BlockStabilityScore(
                span_id="span-0",
                classification=rs.StabilityClass.STABLE,
                score=0.98,
                confidence=0.9,
                observation_count=12,
            ),
            rs.BlockStabilityScore(
                span_id="span-1",
                classification=rs.StabilityClass.SEMI_STABLE,
                score=0.5,
                confidence=0.75,
                observation_count=12,
            ),
        ],
        stable_prefix_length=prefix,
        stable_prefix_fingerprint="f00d",
        total_observations=12,
    )


# One fully populated instance of every model class, by class name.
SAMPLES: dict[str, Callable[[], Any]] = {
    "RunRecord": run,
    "CallRecord": call,
    "MetadataEnvelope": envelope_meta,
    "ParallelHint": lambda: rs.ParallelHint(tool_name="t", group_id="g", explicit=True),
    "ExecutionPlan": plan,
    "ParallelGroup": lambda: rs.ParallelGroup(group_id="g", tool_names=["a", "b"]),
    "PredictionMetrics": metrics,
    "LlmCallPrediction": prediction,
    "PredictionTrieNode": lambda: trie().root,
    "TrieEnvelope": trie,
    "RunningStats": lambda: stats(1.0, 2.0, 4.0),
    "NodeAccumulators": node_accumulators,
    "AccumulatorState": accumulators,
    "TokenizationMetadata": lambda: rs.TokenizationMetadata(
        model_family="gpt", token_count=7
    ),
    "ToolSchemaHash": lambda: rs.ToolSchemaHash(tool_name="t", schema_hash="h"),
    "PromptBlock": block,
    "PromptIR": prompt,
    "BlockStabilityScore": lambda: stability().scores[0],
    "StabilityAnalysisResult": stability,
}

MODEL_CLASSES: dict[str, type[Any]] = {name: getattr(rs, name) for name in SAMPLES}


# The wire form of RunningStats() (SPEC §1: empty digest bounds written as 0.0).
EMPTY_DIGEST = {
    "centroids": [],
    "max_size": 100,
    "sum": 0.0,
    "count": 0.0,
    "max": 0.0,
    "min": 0.0,
}
EMPTY_STATS = {"count": 0, "mean": 0.0, "m2": 0.0, "digest": EMPTY_DIGEST}


# Documents from a hypothetical newer writer: unknown fields at every level.
FUTURE_RUN = {
    "id": "0191c0de-0000-7000-8000-00000000abcd",
    "agent_id": "a",
    "x_run": {"nested": [1, "two", None]},
    "calls": [
        {
            "kind": "llm",
            "name": "x",
            "started_at": "2026-03-31T12:00:00Z",
            "x_call": 1.5,
            "metadata_snapshot": {
                "run_id": "0191c0de-0000-7000-8000-00000000abcd",
                "agent_id": "a",
                "parallel_hints": [
                    {"tool_name": "t", "group_id": "g", "explicit": True, "x_hint": "h"}
                ],
                "extensions": None,
                "x_meta": [],
            },
        }
    ],
    "started_at": "2026-03-31T12:00:00Z",
}

FUTURE_PLAN = {
    "agent_id": "a",
    "parallel_groups": [{"group_id": "g", "tool_names": ["t"], "x_group": {"a": 1}}],
    "metadata_template": {
        "run_id": "0191c0de-0000-7000-8000-00000000abcd",
        "agent_id": "a",
        "parallel_hints": [],
        "extensions": {"k": "v"},
        "x_meta": True,
    },
    "x_plan": "future",
}

_FUTURE_METRICS = {"sample_count": 1, "mean": 1.0, "p50": 1.0, "p90": 1.0, "p95": 1.0}
FUTURE_TRIE = {
    "version": "1.0",
    "generated_at": "2026-03-31T12:00:00+00:00",
    "workflow_name": "w",
    "x_envelope": 7,
    "root": {
        "name": "root",
        "x_node": {"deep": {"deeper": [1]}},
        "predictions_by_call_index": {
            "1": {
                "remaining_calls": {**_FUTURE_METRICS, "x_metrics": "m"},
                "interarrival_ms": _FUTURE_METRICS,
                "output_tokens": _FUTURE_METRICS,
                "latency_sensitivity": None,
                "x_prediction": False,
            }
        },
        "predictions_any_index": None,
        "children": {
            "child": {
                "name": "child",
                "children": {},
                "predictions_by_call_index": {},
                "predictions_any_index": None,
                "x_child": None,
            }
        },
    },
}

def _future_stats() -> dict[str, Any]:
    """Stats whose digest, and one of its centroids, hold fields a newer
    writer added: kept like a record's (SPEC §3)."""
    doc = {**json.loads(stats(1.0, 2.0).to_json()), "x_stats": [1, 2]}
    doc["digest"]["x_digest"] = {"k": None}
    doc["digest"]["centroids"][0]["x_centroid"] = 0.5
    return doc


FUTURE_ACCUMULATORS = {
    "x_state": {"v": 2},
    "nodes": {
        "workflow": {
            "remaining_calls": {"1": _future_stats()},
            "interarrival_ms": {},
            "output_tokens": {},
            "sensitivity": {},
            "all_remaining_calls": {**EMPTY_STATS, "x_stats": "s"},
            "all_interarrival_ms": EMPTY_STATS,
            "all_output_tokens": EMPTY_STATS,
            "all_sensitivity": EMPTY_STATS,
            "x_node": 3,
        }
    },
}

FUTURE_PROMPT = {
    "ir_id": "0191c0de-1111-7111-8111-11111111abcd",
    "created_at": "2026-03-31T12:00:00Z",
    "x_ir": {"a": [True]},
    "blocks": [
        {
            "span_id": "s",
            "sequence_index": 0,
            "role": "user",
            "content": "c",
            "content_type": "image",
            "provenance": "memory",
            "sensitivity": "restricted",
            "token_metadata": {"model_family": "m", "token_count": 3, "x_tokens": 1},
            "x_block": "b",
        }
    ],
    "tool_schema_hashes": [{"tool_name": "t", "schema_hash": "h", "x_hash": 0}],
}

FUTURE_STABILITY = {
    "scores": [
        {
            "span_id": "s",
            "classification": "variable",
            "score": 0.1,
            "confidence": 0.2,
            "observation_count": 3,
            "x_score": {},
        }
    ],
    "stable_prefix_length": 0,
    "total_observations": 3,
    "x_result": [None],
}

FUTURE_DOCS: dict[str, tuple[type[Any], dict[str, Any]]] = {
    "run": (rs.RunRecord, FUTURE_RUN),
    "plan": (rs.ExecutionPlan, FUTURE_PLAN),
    "trie": (rs.TrieEnvelope, FUTURE_TRIE),
    "accumulators": (rs.AccumulatorState, FUTURE_ACCUMULATORS),
    "prompt": (rs.PromptIR, FUTURE_PROMPT),
    "stability": (rs.StabilityAnalysisResult, FUTURE_STABILITY),
}
