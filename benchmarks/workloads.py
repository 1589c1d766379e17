"""Data the benchmark cases store: run records and a large prediction trie.

Everything is built from relay_store models; the peer contender gets the very
same data as plain dicts via ``to_dict()`` (built before any timing starts), so
both sides serialise documents that are equal as JSON.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import relay_store as rs

UTC = timezone.utc
EPOCH = datetime(2026, 3, 31, 12, 0, 0, tzinfo=UTC)

_MODELS = ("nemotron-mini", "llama-3.1-70b-instruct", "mixtral-8x7b")
_TOOLS = ("web_search", "fetch_page", "calculator", "calendar")


def make_call(i: int, j: int, started: datetime) -> rs.CallRecord:
    """The j-th call of run i: an LLM call on even j, a tool call on odd j."""
    begin = started + timedelta(milliseconds=700 * j)
    end = begin + timedelta(milliseconds=350 + (i * 7 + j * 13) % 400, microseconds=(i * 31) % 1000)
    if j % 2 == 0:
        prompt = 900 + (i * 17 + j) % 600
        output = 80 + (i * 11 + j * 5) % 300
        return rs.CallRecord(
            kind=rs.CallKind.LLM,
            name="planner" if j == 0 else "summarizer",
            started_at=begin,
            ended_at=end,
            prompt_tokens=prompt,
            output_tokens=output,
            total_tokens=prompt + output,
            model_name=_MODELS[(i + j) % len(_MODELS)],
            tool_call_count=(i + j) % 3,
            annotated_request={
                "model": _MODELS[(i + j) % len(_MODELS)],
                "temperature": 0.2,
                "max_tokens": 512,
                "messages": [
                    {"role": "system", "content": "You are a careful travel planner."},
                    {"role": "user", "content": f"Plan step {j} of request {i}."},
                ],
            },
        )
    tool = _TOOLS[(i + j) % len(_TOOLS)]
    return rs.CallRecord(
        kind=rs.CallKind.TOOL,
        name=tool,
        started_at=begin,
        ended_at=end,
        annotated_request={"tool": tool, "arguments": {"query": f"item {i}-{j}", "limit": 5}},
    )


def make_run(agent_id: str, i: int, calls: int) -> rs.RunRecord:
    """A finished run with `calls` calls; a fresh v4 id each time."""
    started = EPOCH + timedelta(seconds=5 * i)
    return rs.RunRecord(
        id=uuid.uuid4(),
        agent_id=agent_id,
        calls=[make_call(i, j, started) for j in range(calls)],
        started_at=started,
        ended_at=started + timedelta(seconds=4, milliseconds=i % 1000),
    )


def make_runs(agent_id: str, n: int, calls: int = 5, start: int = 0) -> list[rs.RunRecord]:
    return [make_run(agent_id, start + i, calls) for i in range(n)]


def as_dicts(runs: list[rs.RunRecord]) -> list[dict[str, Any]]:
    """The peer's copy of the same runs (plain JSON-compatible dicts)."""
    return [r.to_dict() for r in runs]


# -- prediction trie ---------------------------------------------------------


def _metrics(seed: int, scale: float) -> rs.PredictionMetrics:
    mean = scale * (1.0 + (seed % 97) / 10.0)
    return rs.PredictionMetrics(
        sample_count=10 + seed % 500,
        mean=mean,
        p50=mean * 0.93,
        p90=mean * 1.61,
        p95=mean * 1.87,
    )


def _prediction(seed: int) -> rs.LlmCallPrediction:
    return rs.LlmCallPrediction(
        remaining_calls=_metrics(seed, 1.0),
        interarrival_ms=_metrics(seed + 1, 120.0),
        output_tokens=_metrics(seed + 2, 250.0),
        latency_sensitivity=seed % 5,
    )


def _node(name: str, path_seed: int, depth: int, fanout: int, per_node: int) -> rs.PredictionTrieNode:
    children: dict[str, rs.PredictionTrieNode] = {}
    if depth > 0:
        for c in range(fanout):
            child = f"{name}.{c}" if name != "root" else f"agent_{c}"
            children[child] = _node(child, path_seed * fanout + c + 1, depth - 1, fanout, per_node)
    return rs.PredictionTrieNode(
        name=name,
        children=children,
        predictions_by_call_index={k + 1: _prediction(path_seed * 31 + k) for k in range(per_node)},
        predictions_any_index=_prediction(path_seed * 31 + 29),
    )


TRIE_DEPTH = 4
TRIE_FANOUT = 8
TRIE_PER_NODE = 2


def make_trie() -> rs.TrieEnvelope:
    """About 5 MB of wire JSON: depth 4, fan-out 8 (4,681 nodes), 2+1 predictions per node."""
    root = _node("root", 0, TRIE_DEPTH, TRIE_FANOUT, TRIE_PER_NODE)
    return rs.TrieEnvelope(
        version="1.0",
        generated_at="2026-03-31T12:00:00+00:00",
        workflow_name="bench_workflow",
        root=root,
    )


def deep_path() -> list[str]:
    """Child names from the root to the last leaf (the deepest, right-most path)."""
    path: list[str] = []
    name = "root"
    for _ in range(TRIE_DEPTH):
        name = f"{name}.{TRIE_FANOUT - 1}" if name != "root" else f"agent_{TRIE_FANOUT - 1}"
        path.append(name)
    return path
