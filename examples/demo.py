"""A tour of relay-store: every backend method, on the embedded in-memory backend.

Run with ``python examples/demo.py`` (or ``make demo``). Swap the spec passed
to ``open_backend`` for ``{"kind": "redis", "config": {"url": "redis://..."}}``
and the same code stores the same JSON in Redis, under NeMo Relay's keys.
"""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from datetime import datetime, timedelta, timezone

import relay_store as rs

AGENT = "travel-planner"


def show(title: str, value: object) -> None:
    """Print a heading and a value, models as their (indented) wire JSON."""
    print(f"\n== {title}")
    if value is None:
        print("   None")
        return
    items = value if isinstance(value, list) else [value]
    if not items:
        print("   []")
    for item in items:
        if hasattr(item, "to_json"):
            text = json.dumps(json.loads(item.to_json()), indent=2, ensure_ascii=False)
            print("   " + text.replace("\n", "\n   "))
        else:
            print(f"   {item!r}")


def make_run(started: datetime, tokens: int) -> rs.RunRecord:
    run_id = uuid.uuid4()
    meta = rs.MetadataEnvelope(
        run_id=run_id,
        agent_id=AGENT,
        parallel_hints=[
            rs.ParallelHint(tool_name="flights", group_id="search", explicit=True),
            rs.ParallelHint(tool_name="hotels", group_id="search", explicit=False),
        ],
        extensions={"tenant": "acme"},
    )
    return rs.RunRecord(
        id=run_id,
        agent_id=AGENT,
        started_at=started,
        ended_at=started + timedelta(seconds=4),
        calls=[
            rs.CallRecord(
                kind=rs.CallKind.LLM,
                name="planner",
                started_at=started,
                ended_at=started + timedelta(seconds=1),
                metadata_snapshot=meta,
                prompt_tokens=900,
                output_tokens=tokens,
                total_tokens=900 + tokens,
                model_name="nemotron-mini",
            ),
            rs.CallRecord(
                kind="tool",
                name="flights",
                started_at=started + timedelta(seconds=1),
                tool_call_count=1,
            ),
        ],
    )


def learn_trie() -> tuple[rs.AccumulatorState, rs.TrieEnvelope]:
    """Feed observed numbers into running statistics and derive predictions."""
    rng = random.Random(7)
    remaining = rs.RunningStats()
    gaps = rs.RunningStats()
    tokens = rs.RunningStats()
    for _ in range(200):
        remaining = remaining.add_sample(rng.choice([1, 2, 2, 3, 4]))
        gaps = gaps.add_sample(rng.gauss(150.0, 25.0))
        tokens = tokens.add_sample(rng.gauss(260.0, 60.0))
    node = rs.NodeAccumulators(
        remaining_calls={1: remaining},
        interarrival_ms={1: gaps},
        output_tokens={1: tokens},
        all_remaining_calls=remaining,
        all_interarrival_ms=gaps,
        all_output_tokens=tokens,
    )
    state = rs.AccumulatorState(nodes={f"{AGENT}/planner": node})

    prediction = rs.LlmCallPrediction(
        remaining_calls=remaining.compute_metrics(),
        interarrival_ms=gaps.compute_metrics(),
        output_tokens=tokens.compute_metrics(),
        latency_sensitivity=3,
    )
    planner = rs.PredictionTrieNode(name="planner", predictions_by_call_index={1: prediction})
    root = rs.PredictionTrieNode(name="root", children={"planner": planner})
    return state, rs.TrieEnvelope(workflow_name=AGENT, root=root)


def observations() -> tuple[list[rs.PromptIR], rs.StabilityAnalysisResult]:
    system = rs.PromptBlock(
        span_id="system",
        sequence_index=0,
        role=rs.PromptRole.SYSTEM,
        content="You plan trips. Prefer direct flights.",
        content_type=rs.BlockContentType.TEXT,
        provenance=rs.ProvenanceLabel.DEVELOPER,
        token_metadata=rs.TokenizationMetadata(model_family="llama", token_count=9),
    )
    prompts = [
        rs.PromptIR(
            blocks=[
                system,
                rs.PromptBlock(
                    span_id="user",
                    sequence_index=1,
                    role="user",
                    content=question,
                    content_type="text",
                    provenance="user",
                    sensitivity=rs.SensitivityLabel.PRIVATE,
                ),
            ],
            tool_schema_hashes=[rs.ToolSchemaHash(tool_name="flights", schema_hash="9f2c")],
        )
        for question in ("Lisbon in May?", "Cheapest way to Oslo?")
    ]
    result = rs.StabilityAnalysisResult(
        scores=[
            rs.BlockStabilityScore(
                span_id="system",
                classification=rs.StabilityClass.STABLE,
                score=1.0,
                confidence=0.8,
                observation_count=2,
            ),
            rs.BlockStabilityScore(
                span_id="user",
                classification="variable",
                score=0.0,
                confidence=0.8,
                observation_count=2,
            ),
        ],
        stable_prefix_length=1,
        stable_prefix_fingerprint="system:9",
        total_observations=2,
    )
    return prompts, result


async def main() -> None:
    backend = await rs.open_backend({"kind": "in_memory"})
    print(f"opened {backend!r}")
    async with backend:
        # Runs: stored atomically with their index entry, listed oldest first.
        start = datetime(2026, 3, 31, 9, 0, tzinfo=timezone.utc)
        runs = [make_run(start + timedelta(minutes=i), 100 + 40 * i) for i in range(3)]
        for run in runs:
            await backend.store_run(run)
        await backend.store_run(runs[0])  # idempotent: no second index entry
        listed = await backend.list_runs(AGENT)
        print(f"\nstored {len(runs)} runs (one of them twice); list_runs returns {len(listed)}:")
        for run in listed:
            print(f"   {run.id}  started {run.started_at:%H:%M}  calls={[c.name for c in run.calls]}")
        show("first run", listed[0])
        show("list_runs('nobody')", await backend.list_runs("nobody"))

        # Execution plan: keyed by its own agent_id.
        plan = rs.ExecutionPlan(
            agent_id=AGENT,
            parallel_groups=[rs.ParallelGroup(group_id="search", tool_names=["flights", "hotels"])],
            metadata_template=rs.MetadataEnvelope(run_id=runs[-1].id, agent_id=AGENT),
        )
        show("load_plan before store", await backend.load_plan(AGENT))
        await backend.store_plan(plan)
        show("load_plan", await backend.load_plan(AGENT))

        # Accumulators and the prediction trie derived from them.
        state, envelope = learn_trie()
        await backend.store_accumulators(AGENT, state)
        loaded_state = await backend.load_accumulators(AGENT)
        assert loaded_state is not None
        stats = loaded_state.nodes[f"{AGENT}/planner"].all_output_tokens
        print(
            f"\n== load_accumulators\n   {len(loaded_state.nodes)} node(s); output tokens: "
            f"count={stats.count} mean={stats.mean:.1f} "
            f"digest centroids={len(stats.digest['centroids'])}"
        )
        await backend.store_trie(AGENT, envelope)
        show("load_trie", await backend.load_trie(AGENT))

        # Prompt observations and their stability analysis.
        prompts, result = observations()
        await backend.store_observations(AGENT, prompts)
        loaded_prompts = await backend.load_observations(AGENT) or []
        print(f"\n== load_observations: {len(loaded_prompts)} prompt(s)")
        for ir in loaded_prompts:
            print(f"   {ir.ir_id}: {[b.content for b in ir.blocks]}")
        await backend.store_stability(AGENT, result)
        show("load_stability", await backend.load_stability(AGENT))

        # Non-finite numbers are refused and nothing is written.
        bad = result.replace(scores=[result.scores[0].replace(score=float("nan"))])
        try:
            await backend.store_stability(AGENT, bad)
        except rs.SerializationError as exc:
            print(f"\n== store_stability(NaN score) refused: {exc}")
        still = await backend.load_stability(AGENT)
        print(f"   stored value unchanged: {still == result}")

    # Leaving `async with` closed the backend.
    try:
        await backend.list_runs(AGENT)
    except rs.StorageError as exc:
        print(f"\n== after close: StorageError: {exc}")


if __name__ == "__main__":
    asyncio.run(main())
