"""A realistic use of relay_store, checked by ``mypy --strict`` (see test_typing.py).

It is also a runnable script: ``python tests/typing_usage.py``.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timezone
from typing import Any, assert_type

import relay_store
from relay_store import (
    AccumulatorState,
    BlockContentType,
    BlockStabilityScore,
    CallKind,
    CallRecord,
    ExecutionPlan,
    ListView,
    LlmCallPrediction,
    MapView,
    MetadataEnvelope,
    NodeAccumulators,
    ParallelGroup,
    ParallelHint,
    PredictionMetrics,
    PredictionTrieNode,
    PromptBlock,
    PromptIR,
    PromptRole,
    ProvenanceLabel,
    RunningStats,
    RunRecord,
    SensitivityLabel,
    StabilityAnalysisResult,
    StabilityClass,
    StorageBackend,
    TokenizationMetadata,
    ToolSchemaHash,
    TrieEnvelope,
)


def record_run(agent_id: str) -> RunRecord:
    run_id = uuid.uuid4()
    meta = MetadataEnvelope(
        run_id=run_id,
        agent_id=agent_id,
        parallel_hints=[ParallelHint(tool_name="search", group_id="g1", explicit=True)],
        extensions={"tenant": "acme", "retries": [1, 2]},
    )
    calls = [
        CallRecord(
            kind=CallKind.LLM,
            name="planner",
            metadata_snapshot=meta,
            prompt_tokens=812,
            output_tokens=96,
            model_name="nemotron",
            annotated_request={"messages": [{"role": "user", "content": "hi"}]},
        ),
        CallRecord(kind="tool", name="search", tool_call_count=1),
    ]
    run = RunRecord(id=str(run_id), agent_id=agent_id, calls=calls)
    assert_type(run.id, uuid.UUID)
    assert_type(run.calls, ListView[CallRecord])
    assert_type(run.calls[1:], list[CallRecord])
    assert_type(run.calls + [calls[0]], list[CallRecord])
    assert_type(run.started_at, datetime)
    assert_type(run.ended_at, datetime | None)
    assert_type(run.calls[0].kind, CallKind)
    assert_type(run.calls[0].output_tokens, int | None)
    return run.replace(ended_at=datetime.now(timezone.utc))


def learn(samples: list[float]) -> tuple[AccumulatorState, TrieEnvelope]:
    stats = RunningStats()
    for sample in samples:
        stats = stats.add_sample(sample)
    merged: RunningStats = stats.merge(RunningStats().add_sample(1.0))
    metrics = merged.compute_metrics()
    assert_type(metrics, PredictionMetrics)
    assert_type(merged.count, int)
    assert_type(merged.digest, dict[str, Any])
    node = NodeAccumulators(remaining_calls={1: merged}, all_remaining_calls=merged)
    state = AccumulatorState(nodes={"workflow/agent": node})
    assert_type(state.nodes["workflow/agent"].remaining_calls, MapView[int, RunningStats])
    assert_type(state.nodes.get("missing"), NodeAccumulators | None)

    prediction = LlmCallPrediction(
        remaining_calls=metrics,
        interarrival_ms=metrics,
        output_tokens=metrics,
        latency_sensitivity=2,
    )
    leaf = PredictionTrieNode(name="agent", predictions_by_call_index={1: prediction})
    root = PredictionTrieNode(name="workflow", children={"agent": leaf})
    envelope = TrieEnvelope(workflow_name="workflow", root=root)
    assert_type(envelope.root.children, MapView[str, PredictionTrieNode])
    assert_type(
        envelope.root.children["agent"].predictions_by_call_index,
        MapView[int, LlmCallPrediction],
    )
    assert_type(envelope.root.predictions_any_index, LlmCallPrediction | None)
    return state, envelope


def observe() -> tuple[list[PromptIR], StabilityAnalysisResult]:
    block = PromptBlock(
        span_id="sys",
        sequence_index=0,
        role=PromptRole.SYSTEM,
        content="You are a planner.",
        content_type=BlockContentType.TEXT,
        provenance=ProvenanceLabel.DEVELOPER,
        token_metadata=TokenizationMetadata(model_family="llama", token_count=5),
    )
    assert_type(block.sensitivity, SensitivityLabel)
    ir = PromptIR(
        blocks=[block, block.replace(span_id="user", role="user", sequence_index=1)],
        tool_schema_hashes=[ToolSchemaHash(tool_name="search", schema_hash="ab12")],
    )
    assert_type(ir.tool_schema_hashes, ListView[ToolSchemaHash] | None)
    result = StabilityAnalysisResult(
        scores=[
            BlockStabilityScore(
                span_id="sys",
                classification=StabilityClass.STABLE,
                score=0.97,
                confidence=0.9,
                observation_count=1,
            )
        ],
        stable_prefix_length=1,
        total_observations=1,
    )
    return [ir], result


async def persist(backend: StorageBackend, agent_id: str) -> int:
    """Works with any backend: the function only knows the protocol."""
    run = record_run(agent_id)
    await backend.store_run(run)
    runs = await backend.list_runs(agent_id)
    assert_type(runs, list[RunRecord])

    plan = ExecutionPlan(
        agent_id=agent_id,
        parallel_groups=[ParallelGroup(group_id="g1", tool_names=["search", "fetch"])],
        metadata_template=MetadataEnvelope(run_id=run.id, agent_id=agent_id),
    )
    await backend.store_plan(plan)
    loaded_plan = await backend.load_plan(agent_id)
    assert_type(loaded_plan, ExecutionPlan | None)
    if loaded_plan is not None:
        print("plan groups:", [g.group_id for g in loaded_plan.parallel_groups])

    state, envelope = learn([120.0, 180.0, 95.5])
    await backend.store_accumulators(agent_id, state)
    await backend.store_trie(agent_id, envelope)
    trie = await backend.load_trie(agent_id)
    if trie is not None:
        print("trie root:", trie.root.name, "version", trie.version)

    observations, stability = observe()
    await backend.store_observations(agent_id, observations)
    await backend.store_stability(agent_id, stability)
    loaded = await backend.load_observations(agent_id)
    assert_type(loaded, list[PromptIR] | None)
    result = await backend.load_stability(agent_id)
    if result is not None:
        print("stable prefix:", result.stable_prefix_length)

    text: str = run.to_json()
    again = RunRecord.from_json(text)
    assert_type(again, RunRecord)
    assert RunRecord.from_dict(again.to_dict()) == run
    return len(runs)


async def main() -> None:
    backends: list[StorageBackend] = [
        relay_store.InMemoryBackend(),
        relay_store.PyInMemoryBackend(),
        await relay_store.open_backend({"kind": "in_memory"}),
    ]
    for backend in backends:
        async with backend as store:
            count = await persist(store, "typing-demo")
            print(type(store).__name__, "stored", count, "run(s)")
    try:
        await relay_store.open_backend({"kind": "redis", "config": {}})
    except relay_store.InvalidConfigError as exc:
        print("invalid config:", exc)


if __name__ == "__main__":
    asyncio.run(main())
