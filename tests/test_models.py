"""The model classes: construction, validation, the wire format of SPEC §1."""

from __future__ import annotations

import copy
import enum
import json
import math
import pickle
import re
import statistics
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any

import pytest

import relay_store as rs
from relay_store import SerializationError
from samples import (
    accumulators,
    EMPTY_DIGEST,
    EMPTY_STATS,
    FUTURE_DOCS,
    IR_ID,
    MODEL_CLASSES,
    RUN_ID,
    SAMPLES,
    T0,
    T1,
    block,
    call,
    envelope_meta,
    metrics,
    prediction,
    prompt,
    run,
    stats,
    trie,
)

UTC = timezone.utc
NAN = float("nan")
INF = float("inf")
U32_MAX = 2**32 - 1
U64_MAX = 2**64 - 1

NAT_REFERENCE_TRIE = """
{"version":"1.0","generated_at":"2026-03-31T12:00:00+00:00","workflow_name":"my_agent",
 "root":{"name":"root",
   "predictions_by_call_index":{"1":{
     "remaining_calls":{"sample_count":10,"mean":2.5,"p50":2.0,"p90":4.0,"p95":4.5},
     "interarrival_ms":{"sample_count":10,"mean":150.0,"p50":140.0,"p90":200.0,"p95":220.0},
     "output_tokens":{"sample_count":10,"mean":256.0,"p50":240.0,"p90":400.0,"p95":450.0},
     "latency_sensitivity":3}},
   "predictions_any_index":null,
   "children":{"react_agent":{"name":"react_agent","predictions_by_call_index":{},"predictions_any_index":null,"children":{}}}}}
"""



def wire(model: Any) -> Any:
    return json.loads(model.to_json())


def parse_rfc3339(text: str) -> datetime:
    """Parse an RFC 3339 timestamp, dropping digits beyond microseconds."""
    match = re.fullmatch(
        r"(\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})",
        text,
    )
    assert match, f"not RFC 3339: {text!r}"
    base, fraction, offset = match.groups()
    micros = (fraction or "").ljust(6, "0")[:6]
    offset = "+00:00" if offset in ("Z", "z") else offset
    return datetime.fromisoformat(f"{base}.{micros}{offset}")


def assert_compact(text: str) -> None:
    """The document is exactly what a compact serialiser would write."""
    assert text == json.dumps(json.loads(text), separators=(",", ":"), ensure_ascii=False)


def assert_plain_json(value: Any, path: str = "$") -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            assert isinstance(key, str), f"{path}: key {key!r} is not a str"
            assert_plain_json(item, f"{path}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            assert_plain_json(item, f"{path}[{i}]")
    else:
        assert value is None or type(value) in (bool, int, float, str), (
            f"{path}: {type(value).__name__} is not a plain JSON value"
        )


def metrics_kwargs(**changes: Any) -> dict[str, Any]:
    kwargs: dict[str, Any] = dict(sample_count=1, mean=1.0, p50=1.0, p90=1.0, p95=1.0)
    kwargs.update(changes)
    return kwargs


def block_kwargs(**changes: Any) -> dict[str, Any]:
    kwargs: dict[str, Any] = dict(
        span_id="s",
        sequence_index=0,
        role="user",
        content="c",
        content_type="text",
        provenance="user",
    )
    kwargs.update(changes)
    return kwargs


def score_kwargs(**changes: Any) -> dict[str, Any]:
    kwargs: dict[str, Any] = dict(
        span_id="s",
        classification="stable",
        score=1.0,
        confidence=1.0,
        observation_count=1,
    )
    kwargs.update(changes)
    return kwargs


# ---------------------------------------------------------------------------
# construction, defaults and conveniences


def test_run_record_defaults() -> None:
    before = datetime.now(UTC)
    record = rs.RunRecord(agent_id="agent-a")
    after = datetime.now(UTC)
    assert isinstance(record.id, uuid.UUID)
    assert record.id.version == 7
    # A v7 UUID carries its creation time in milliseconds in the top 48 bits.
    millis = record.id.int >> 80
    assert before.timestamp() * 1000 - 1000 <= millis <= after.timestamp() * 1000 + 1000
    assert record.agent_id == "agent-a"
    assert record.calls == []
    assert record.ended_at is None
    assert record.started_at.utcoffset() == timedelta(0)
    assert before - timedelta(seconds=1) <= record.started_at <= after + timedelta(seconds=1)


def test_default_ids_are_unique() -> None:
    ids = {rs.RunRecord(agent_id="a").id for _ in range(200)}
    ids |= {rs.PromptIR().ir_id for _ in range(200)}
    assert len(ids) == 400


def test_call_record_defaults() -> None:
    before = datetime.now(UTC)
    record = rs.CallRecord(kind="llm", name="planner")
    after = datetime.now(UTC)
    assert record.kind is rs.CallKind.LLM
    assert record.name == "planner"
    assert before - timedelta(seconds=1) <= record.started_at <= after + timedelta(seconds=1)
    for field in (
        "ended_at",
        "metadata_snapshot",
        "output_tokens",
        "prompt_tokens",
        "total_tokens",
        "model_name",
        "tool_call_count",
        "annotated_request",
        "annotated_response",
    ):
        assert getattr(record, field) is None, field


def test_prompt_ir_defaults() -> None:
    before = datetime.now(UTC)
    ir = rs.PromptIR()
    after = datetime.now(UTC)
    assert isinstance(ir.ir_id, uuid.UUID) and ir.ir_id.version == 7
    assert ir.blocks == []
    assert ir.tool_schema_hashes is None
    assert ir.structured_output_schema_id is None
    assert ir.source_request_hash is None
    assert ir.created_at.utcoffset() == timedelta(0)
    assert before - timedelta(seconds=1) <= ir.created_at <= after + timedelta(seconds=1)


def test_trie_envelope_defaults() -> None:
    before = datetime.now(UTC)
    env = rs.TrieEnvelope(workflow_name="wf", root=rs.PredictionTrieNode(name="root"))
    after = datetime.now(UTC)
    assert env.version == "1.0"
    assert isinstance(env.generated_at, str)
    generated = parse_rfc3339(env.generated_at)
    assert before - timedelta(seconds=1) <= generated <= after + timedelta(seconds=1)
    assert env.workflow_name == "wf"
    assert env.root == rs.PredictionTrieNode(name="root")


def test_prediction_trie_node_defaults() -> None:
    node = rs.PredictionTrieNode(name="root")
    assert node.name == "root"
    assert node.children == {}
    assert node.predictions_by_call_index == {}
    assert node.predictions_any_index is None
    assert wire(node) == {
        "name": "root",
        "children": {},
        "predictions_by_call_index": {},
        "predictions_any_index": None,
    }


def test_empty_running_stats_and_accumulators() -> None:
    empty = rs.RunningStats()
    assert (empty.count, empty.mean, empty.m2) == (0, 0.0, 0.0)
    assert isinstance(empty.digest, dict)
    assert empty.digest["centroids"] == []
    assert empty.digest["max_size"] == 100
    assert empty.digest["count"] == 0
    assert wire(empty) == EMPTY_STATS

    acc = rs.NodeAccumulators()
    for field in ("remaining_calls", "interarrival_ms", "output_tokens", "sensitivity"):
        assert getattr(acc, field) == {}, field
    for field in (
        "all_remaining_calls",
        "all_interarrival_ms",
        "all_output_tokens",
        "all_sensitivity",
    ):
        assert getattr(acc, field) == rs.RunningStats(), field
    assert rs.AccumulatorState().nodes == {}
    assert wire(rs.AccumulatorState()) == {"nodes": {}}


def test_prompt_block_sensitivity_defaults_to_public() -> None:
    b = rs.PromptBlock(**block_kwargs())
    assert b.sensitivity is rs.SensitivityLabel.PUBLIC
    assert b.token_metadata is None


def test_plain_constructors_keep_their_values() -> None:
    meta = envelope_meta()
    assert meta.run_id == RUN_ID
    assert meta.agent_id == "agent-a"
    assert [h.tool_name for h in meta.parallel_hints] == ["search", "fetch"]
    assert meta.parallel_hints[0].explicit is True
    assert meta.extensions == {"team": "relay", "weights": [1, 2.5, None, True]}

    c = call()
    assert c.started_at == T0 and c.ended_at == T1
    assert c.metadata_snapshot == meta
    assert (c.output_tokens, c.prompt_tokens, c.total_tokens) == (128, 1024, 1152)
    assert c.tool_call_count == 2
    assert c.model_name == "nemotron-mini"
    assert c.annotated_response == ["ok", 1, 2.5, False, None]

    p = prompt()
    assert p.ir_id == IR_ID
    assert p.blocks[1].sequence_index == 1
    assert p.blocks[0].role is rs.PromptRole.SYSTEM
    assert p.blocks[0].content_type is rs.BlockContentType.TOOL_SCHEMA
    assert p.blocks[0].provenance is rs.ProvenanceLabel.DEVELOPER
    assert p.blocks[0].sensitivity is rs.SensitivityLabel.PRIVATE
    assert p.blocks[0].token_metadata == rs.TokenizationMetadata(
        model_family="llama", token_count=42
    )
    assert p.tool_schema_hashes == [rs.ToolSchemaHash(tool_name="search", schema_hash="ab12")]

    score = rs.BlockStabilityScore(**score_kwargs(classification="semi_stable"))
    assert score.classification is rs.StabilityClass.SEMI_STABLE


SPEC_ENUMS = {
    rs.CallKind: ["llm", "tool"],
    rs.PromptRole: ["system", "user", "assistant", "tool"],
    rs.BlockContentType: ["text", "tool_schema", "tool_result", "structured_output", "image"],
    rs.ProvenanceLabel: ["system", "developer", "user", "tool", "retrieval", "memory"],
    rs.SensitivityLabel: ["public", "private", "restricted"],
    rs.StabilityClass: ["stable", "semi_stable", "variable"],
}


@pytest.mark.parametrize("cls", SPEC_ENUMS, ids=lambda c: c.__name__)
def test_enums_are_str_enums_with_exactly_the_spec_members(cls: type[enum.StrEnum]) -> None:
    assert issubclass(cls, enum.StrEnum)
    assert {m.name: m.value for m in cls} == {v.upper(): v for v in SPEC_ENUMS[cls]}
    assert all(m == m.value and str(m) == m.value for m in cls)


def test_error_classes_form_the_spec_hierarchy() -> None:
    assert issubclass(rs.InvalidConfigError, rs.RelayStoreError) and issubclass(rs.InvalidConfigError, ValueError)
    assert issubclass(rs.SerializationError, rs.RelayStoreError) and issubclass(rs.SerializationError, ValueError)
    assert issubclass(rs.StorageError, rs.RelayStoreError) and not issubclass(rs.StorageError, ValueError)
    assert issubclass(rs.RelayStoreError, Exception)


def test_enum_members_and_strings_are_both_accepted() -> None:
    by_member = rs.CallRecord(kind=rs.CallKind.TOOL, name="x", started_at=T0)
    by_string = rs.CallRecord(kind="tool", name="x", started_at=T0)
    assert by_member == by_string
    assert by_string.kind is rs.CallKind.TOOL
    assert type(by_string.kind) is rs.CallKind


def test_uuid_strings_are_accepted_in_any_case() -> None:
    text = "0191C0DE-0000-7000-8000-00000000ABCD"
    record = rs.RunRecord(id=text, agent_id="a", started_at=T0)
    assert record.id == RUN_ID
    assert isinstance(record.id, uuid.UUID)
    assert record == rs.RunRecord(id=RUN_ID, agent_id="a", started_at=T0)


def test_ints_are_accepted_for_float_fields() -> None:
    m = rs.PredictionMetrics(sample_count=1, mean=2, p50=3, p90=4, p95=5)
    assert m.mean == 2.0 and isinstance(m.mean, float)
    assert wire(m) == {"sample_count": 1, "mean": 2.0, "p50": 3.0, "p90": 4.0, "p95": 5.0}


def test_integer_bounds_are_inclusive() -> None:
    assert rs.TokenizationMetadata(model_family="m", token_count=U32_MAX).token_count == U32_MAX
    assert rs.RunningStats(count=U64_MAX).count == U64_MAX
    result = rs.StabilityAnalysisResult(stable_prefix_length=U64_MAX, total_observations=0)
    assert result.stable_prefix_length == U64_MAX
    assert '"stable_prefix_length":18446744073709551615' in result.to_json()
    node = rs.PredictionTrieNode(name="n", predictions_by_call_index={U32_MAX: prediction()})
    assert list(node.predictions_by_call_index) == [U32_MAX]


def test_aware_datetimes_are_normalised_to_utc() -> None:
    plus_two = timezone(timedelta(hours=2))
    record = rs.RunRecord(
        agent_id="a", started_at=datetime(2026, 3, 31, 14, 0, tzinfo=plus_two)
    )
    assert record.started_at == T0
    assert record.started_at.utcoffset() == timedelta(0)
    assert wire(record)["started_at"] == "2026-03-31T12:00:00Z"


# ---------------------------------------------------------------------------
# wrong types and bad values

TYPE_ERRORS: list[tuple[str, Callable[[], Any], str]] = [
    ("run.agent_id", lambda: rs.RunRecord(agent_id=5), "agent_id"),
    ("run.id", lambda: rs.RunRecord(id=123, agent_id="a"), r"\bid\b"),
    ("run.calls item", lambda: rs.RunRecord(agent_id="a", calls=[1]), "calls"),
    ("run.calls str", lambda: rs.RunRecord(agent_id="a", calls="abc"), "calls"),
    (
        "run.started_at bytes",
        lambda: rs.RunRecord(agent_id="a", started_at=b"2026-03-31T12:00:00Z"),
        "started_at",
    ),
    ("run.ended_at", lambda: rs.RunRecord(agent_id="a", ended_at=1.5), "ended_at"),
    ("call.kind", lambda: rs.CallRecord(kind=1, name="x"), "kind"),
    ("call.name", lambda: rs.CallRecord(kind="llm", name=None), "name"),
    (
        "call.output_tokens float",
        lambda: rs.CallRecord(kind="llm", name="x", output_tokens=1.5),
        "output_tokens",
    ),
    (
        "call.prompt_tokens str",
        lambda: rs.CallRecord(kind="llm", name="x", prompt_tokens="12"),
        "prompt_tokens",
    ),
    (
        "call.metadata_snapshot",
        lambda: rs.CallRecord(kind="llm", name="x", metadata_snapshot="meta"),
        "metadata_snapshot",
    ),
    (
        "call.annotated_request",
        lambda: rs.CallRecord(kind="llm", name="x", annotated_request=object()),
        "annotated_request",
    ),
    (
        "meta.parallel_hints",
        lambda: rs.MetadataEnvelope(run_id=RUN_ID, agent_id="a", parallel_hints=[object()]),
        "parallel_hints",
    ),
    (
        "meta.extensions",
        lambda: rs.MetadataEnvelope(run_id=RUN_ID, agent_id="a", extensions={"k": {1, 2}}),
        "extensions",
    ),
    (
        "hint.explicit",
        lambda: rs.ParallelHint(tool_name="t", group_id="g", explicit="yes"),
        "explicit",
    ),
    ("group.tool_names", lambda: rs.ParallelGroup(group_id="g", tool_names=[1]), "tool_names"),
    (
        "plan.metadata_template",
        lambda: rs.ExecutionPlan(agent_id="a", metadata_template="m"),
        "metadata_template",
    ),
    ("metrics.mean", lambda: rs.PredictionMetrics(**metrics_kwargs(mean="2")), "mean"),
    (
        "metrics.sample_count",
        lambda: rs.PredictionMetrics(**metrics_kwargs(sample_count="1")),
        "sample_count",
    ),
    (
        "prediction.output_tokens",
        lambda: rs.LlmCallPrediction(
            remaining_calls=metrics(), interarrival_ms=metrics(), output_tokens=5
        ),
        "output_tokens",
    ),
    (
        "node.children value",
        lambda: rs.PredictionTrieNode(name="n", children={"a": 1}),
        "children",
    ),
    (
        "node.children key",
        lambda: rs.PredictionTrieNode(name="n", children={1: rs.PredictionTrieNode(name="c")}),
        "children",
    ),
    (
        "node.predictions_by_call_index key",
        lambda: rs.PredictionTrieNode(name="n", predictions_by_call_index={"1": prediction()}),
        "predictions_by_call_index",
    ),
    (
        "node.predictions_any_index",
        lambda: rs.PredictionTrieNode(name="n", predictions_any_index=metrics()),
        "predictions_any_index",
    ),
    ("envelope.root", lambda: rs.TrieEnvelope(workflow_name="w", root="root"), "root"),
    (
        "envelope.generated_at",
        lambda: rs.TrieEnvelope(
            workflow_name="w", root=rs.PredictionTrieNode(name="r"), generated_at=5
        ),
        "generated_at",
    ),
    ("stats.count", lambda: rs.RunningStats(count="1"), "count"),
    ("stats.m2", lambda: rs.RunningStats(m2=None), "m2"),
    ("stats.digest", lambda: rs.RunningStats(digest="abc"), "digest"),
    (
        "node_acc.remaining_calls",
        lambda: rs.NodeAccumulators(remaining_calls={1: 2.0}),
        "remaining_calls",
    ),
    (
        "node_acc.all_sensitivity",
        lambda: rs.NodeAccumulators(all_sensitivity=[]),
        "all_sensitivity",
    ),
    ("state.nodes", lambda: rs.AccumulatorState(nodes={"a": rs.RunningStats()}), "nodes"),
    (
        "tokens.token_count",
        lambda: rs.TokenizationMetadata(model_family="m", token_count=None),
        "token_count",
    ),
    (
        "hash.tool_name",
        lambda: rs.ToolSchemaHash(tool_name=b"t", schema_hash="h"),
        "tool_name",
    ),
    ("block.role", lambda: rs.PromptBlock(**block_kwargs(role=3)), "role"),
    (
        "block.token_metadata",
        lambda: rs.PromptBlock(**block_kwargs(token_metadata=5)),
        "token_metadata",
    ),
    (
        "ir.blocks",
        lambda: rs.PromptIR(blocks=[rs.ToolSchemaHash(tool_name="t", schema_hash="h")]),
        "blocks",
    ),
    ("ir.tool_schema_hashes", lambda: rs.PromptIR(tool_schema_hashes=["x"]), "tool_schema_hashes"),
    ("ir.created_at", lambda: rs.PromptIR(created_at=1_700_000_000), "created_at"),
    ("ir.ir_id", lambda: rs.PromptIR(ir_id=1), "ir_id"),
    ("score.score", lambda: rs.BlockStabilityScore(**score_kwargs(score="high")), "score"),
    (
        "result.stable_prefix_length",
        lambda: rs.StabilityAnalysisResult(stable_prefix_length=1.0, total_observations=1),
        "stable_prefix_length",
    ),
    (
        "result.scores",
        lambda: rs.StabilityAnalysisResult(
            scores=[metrics()], stable_prefix_length=1, total_observations=1
        ),
        "scores",
    ),
]


@pytest.mark.parametrize(
    ("build", "field"), [case[1:] for case in TYPE_ERRORS], ids=[c[0] for c in TYPE_ERRORS]
)
def test_wrong_type_raises_type_error_naming_the_field(
    build: Callable[[], Any], field: str
) -> None:
    with pytest.raises(TypeError, match=field):
        build()


NAIVE = datetime(2026, 3, 31, 12, 0)


class _NoOffset(tzinfo):
    """A tzinfo that knows no offset: Python counts such a datetime as naive."""

    def utcoffset(self, dt: datetime | None) -> None:
        return None

    def dst(self, dt: datetime | None) -> None:
        return None

    def tzname(self, dt: datetime | None) -> None:
        return None


VALUE_ERRORS: list[tuple[str, Callable[[], Any], str]] = [
    ("run.id", lambda: rs.RunRecord(id="not-a-uuid", agent_id="a"), r"\bid\b"),
    ("run.started_at naive", lambda: rs.RunRecord(agent_id="a", started_at=NAIVE), "started_at"),
    ("run.ended_at naive", lambda: rs.RunRecord(agent_id="a", ended_at=NAIVE), "ended_at"),
    (
        "run.started_at without an offset",
        lambda: rs.RunRecord(agent_id="a", started_at=datetime(2026, 3, 31, tzinfo=_NoOffset())),
        "started_at",
    ),
    (
        "run.started_at past year 9999 in UTC",
        lambda: rs.RunRecord(agent_id="a", started_at="9999-12-31T23:59:59-01:00"),
        "started_at",
    ),
    (
        "run.started_at before year 1 in UTC",
        lambda: rs.RunRecord(agent_id="a", started_at=datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1)))),
        "started_at",
    ),
    ("call.kind", lambda: rs.CallRecord(kind="banana", name="x"), "kind"),
    (
        "call.output_tokens negative",
        lambda: rs.CallRecord(kind="llm", name="x", output_tokens=-1),
        "output_tokens",
    ),
    (
        "call.prompt_tokens too big",
        lambda: rs.CallRecord(kind="llm", name="x", prompt_tokens=2**32),
        "prompt_tokens",
    ),
    (
        "call.tool_call_count",
        lambda: rs.CallRecord(kind="llm", name="x", tool_call_count=-5),
        "tool_call_count",
    ),
    ("meta.run_id", lambda: rs.MetadataEnvelope(run_id="xyz", agent_id="a"), "run_id"),
    (
        "metrics.sample_count negative",
        lambda: rs.PredictionMetrics(**metrics_kwargs(sample_count=-1)),
        "sample_count",
    ),
    (
        "metrics.sample_count too big",
        lambda: rs.PredictionMetrics(**metrics_kwargs(sample_count=2**32)),
        "sample_count",
    ),
    (
        "prediction.latency_sensitivity",
        lambda: rs.LlmCallPrediction(
            remaining_calls=metrics(),
            interarrival_ms=metrics(),
            output_tokens=metrics(),
            latency_sensitivity=-1,
        ),
        "latency_sensitivity",
    ),
    (
        "node.predictions_by_call_index negative key",
        lambda: rs.PredictionTrieNode(name="n", predictions_by_call_index={-1: prediction()}),
        "predictions_by_call_index",
    ),
    (
        "node.predictions_by_call_index big key",
        lambda: rs.PredictionTrieNode(name="n", predictions_by_call_index={2**32: prediction()}),
        "predictions_by_call_index",
    ),
    ("stats.count negative", lambda: rs.RunningStats(count=-1), "count"),
    ("stats.count too big", lambda: rs.RunningStats(count=2**64), "count"),
    (
        "node_acc.output_tokens key",
        lambda: rs.NodeAccumulators(output_tokens={-1: rs.RunningStats()}),
        "output_tokens",
    ),
    (
        "tokens.token_count",
        lambda: rs.TokenizationMetadata(model_family="m", token_count=-1),
        "token_count",
    ),
    (
        "block.sequence_index",
        lambda: rs.PromptBlock(**block_kwargs(sequence_index=2**32)),
        "sequence_index",
    ),
    ("block.role", lambda: rs.PromptBlock(**block_kwargs(role="narrator")), "role"),
    (
        "block.content_type",
        lambda: rs.PromptBlock(**block_kwargs(content_type="video")),
        "content_type",
    ),
    ("block.provenance", lambda: rs.PromptBlock(**block_kwargs(provenance="web")), "provenance"),
    (
        "block.sensitivity",
        lambda: rs.PromptBlock(**block_kwargs(sensitivity="secret")),
        "sensitivity",
    ),
    ("ir.ir_id", lambda: rs.PromptIR(ir_id="0191c0de"), "ir_id"),
    ("ir.created_at naive", lambda: rs.PromptIR(created_at=NAIVE), "created_at"),
    (
        "score.classification",
        lambda: rs.BlockStabilityScore(**score_kwargs(classification="wobbly")),
        "classification",
    ),
    (
        "score.observation_count",
        lambda: rs.BlockStabilityScore(**score_kwargs(observation_count=-1)),
        "observation_count",
    ),
    (
        "result.stable_prefix_length negative",
        lambda: rs.StabilityAnalysisResult(stable_prefix_length=-1, total_observations=1),
        "stable_prefix_length",
    ),
    (
        "result.stable_prefix_length too big",
        lambda: rs.StabilityAnalysisResult(stable_prefix_length=2**64, total_observations=1),
        "stable_prefix_length",
    ),
    (
        "result.total_observations",
        lambda: rs.StabilityAnalysisResult(stable_prefix_length=1, total_observations=2**32),
        "total_observations",
    ),
]


@pytest.mark.parametrize(
    ("build", "field"), [case[1:] for case in VALUE_ERRORS], ids=[c[0] for c in VALUE_ERRORS]
)
def test_bad_value_raises_value_error_naming_the_field(
    build: Callable[[], Any], field: str
) -> None:
    with pytest.raises(ValueError, match=field):
        build()


@pytest.mark.parametrize("name", sorted(MODEL_CLASSES))
def test_constructor_accepts_its_own_attributes(name: str) -> None:
    model = SAMPLES[name]()
    cls = MODEL_CLASSES[name]
    kwargs = {field: getattr(model, field) for field in model.to_dict()}
    assert cls(**kwargs) == model


@pytest.mark.parametrize("name", sorted(MODEL_CLASSES))
def test_unknown_keyword_raises_type_error(name: str) -> None:
    model = SAMPLES[name]()
    cls = MODEL_CLASSES[name]
    kwargs = {field: getattr(model, field) for field in model.to_dict()}
    with pytest.raises(TypeError, match="not_a_field"):
        cls(**kwargs, not_a_field=1)
    with pytest.raises(TypeError, match="not_a_field"):
        model.replace(not_a_field=1)


@pytest.mark.parametrize(
    ("cls", "kwargs"),
    [
        (rs.RunRecord, {}),
        (rs.CallRecord, {"kind": "llm"}),
        (rs.CallRecord, {"name": "x"}),
        (rs.ParallelHint, {"tool_name": "t", "group_id": "g"}),
        (rs.MetadataEnvelope, {"agent_id": "a"}),
        (rs.ExecutionPlan, {"agent_id": "a"}),
        (rs.PredictionMetrics, {"sample_count": 1, "mean": 1.0}),
        (rs.LlmCallPrediction, {"remaining_calls": metrics()}),
        (rs.PredictionTrieNode, {}),
        (rs.TrieEnvelope, {"workflow_name": "w"}),
        (rs.TrieEnvelope, {"root": rs.PredictionTrieNode(name="r")}),
        (rs.TokenizationMetadata, {"model_family": "m"}),
        (rs.ToolSchemaHash, {"tool_name": "t"}),
        (rs.PromptBlock, {"span_id": "s"}),
        (rs.BlockStabilityScore, {"span_id": "s"}),
        (rs.StabilityAnalysisResult, {"stable_prefix_length": 1}),
    ],
)
def test_missing_required_field_raises_type_error(cls: type[Any], kwargs: dict[str, Any]) -> None:
    with pytest.raises(TypeError):
        cls(**kwargs)


def test_constructors_are_keyword_only() -> None:
    with pytest.raises(TypeError):
        rs.ParallelGroup("g", ["a"])
    with pytest.raises(TypeError):
        rs.RunRecord("agent")


def test_json_field_never_holds_a_non_finite_float_built_in_python() -> None:
    # Refused on the way in, never written as null or as a bare NaN token.
    for bad in (NAN, float("inf"), [1, {"y": -float("inf")}]):
        with pytest.raises(ValueError, match="annotated_request"):
            rs.CallRecord(kind="llm", name="x", annotated_request={"x": bad})
    # Text from another writer that Python reads as inf is kept verbatim.
    text = call().replace(annotated_response=None).to_json()[:-1] + ',"annotated_response":[1e400,-1e999]}'
    record = rs.CallRecord.from_json(text)
    assert record.annotated_response == [float("inf"), -float("inf")]
    assert record.to_json().endswith('"annotated_response":[1e400,-1e999]}')
    assert rs.CallRecord.from_json(record.to_json()) == record


# ---------------------------------------------------------------------------
# the exact wire format of SPEC §1

CALL_WIRE: dict[str, Any] = {
    "kind": "llm",
    "name": "planner",
    "started_at": "2026-03-31T12:00:00Z",
    "ended_at": "2026-03-31T12:00:01.123456Z",
    "metadata_snapshot": {
        "run_id": "0191c0de-0000-7000-8000-00000000abcd",
        "agent_id": "agent-a",
        "parallel_hints": [
            {"tool_name": "search", "group_id": "g1", "explicit": True},
            {"tool_name": "fetch", "group_id": "g1", "explicit": False},
        ],
        "extensions": {"team": "relay", "weights": [1, 2.5, None, True]},
    },
    "output_tokens": 128,
    "prompt_tokens": 1024,
    "total_tokens": 1152,
    "model_name": "nemotron-mini",
    "tool_call_count": 2,
    "annotated_request": {"messages": [{"role": "user", "content": "hi"}]},
    "annotated_response": ["ok", 1, 2.5, False, None],
}


def test_call_record_wire_format() -> None:
    text = call().to_json()
    assert isinstance(text, str)
    assert_compact(text)
    assert json.loads(text) == CALL_WIRE
    # JSON values are kept as they are: integers stay integers.
    assert '"weights":[1,2.5,null,true]' in text
    assert '"annotated_response":["ok",1,2.5,false,null]' in text


def test_run_record_wire_format_omits_absent_optionals() -> None:
    record = rs.RunRecord(id=RUN_ID, agent_id="a", started_at=T0)
    assert wire(record) == {
        "id": "0191c0de-0000-7000-8000-00000000abcd",
        "agent_id": "a",
        "calls": [],
        "started_at": "2026-03-31T12:00:00Z",
    }
    minimal_call = rs.CallRecord(kind=rs.CallKind.TOOL, name="search", started_at=T0)
    assert wire(minimal_call) == {
        "kind": "tool",
        "name": "search",
        "started_at": "2026-03-31T12:00:00Z",
    }
    full = run(run_id=RUN_ID)
    assert wire(full) == {
        "id": "0191c0de-0000-7000-8000-00000000abcd",
        "agent_id": "agent-a",
        "calls": [CALL_WIRE, wire(call(rs.CallKind.TOOL, "search"))],
        "started_at": "2026-03-31T12:00:00Z",
        "ended_at": "2026-03-31T12:00:01.123456Z",
    }


def test_null_optionals_read_as_absent() -> None:
    text = json.dumps(
        {
            "kind": "llm",
            "name": "x",
            "started_at": "2026-03-31T12:00:00Z",
            "ended_at": None,
            "metadata_snapshot": None,
            "output_tokens": None,
            "model_name": None,
            "annotated_request": None,
        }
    )
    record = rs.CallRecord.from_json(text)
    assert record.ended_at is None
    assert record.metadata_snapshot is None
    assert record.output_tokens is None
    assert record.annotated_request is None
    assert wire(record) == {"kind": "llm", "name": "x", "started_at": "2026-03-31T12:00:00Z"}


def test_metadata_envelope_always_writes_extensions() -> None:
    meta = rs.MetadataEnvelope(run_id=RUN_ID, agent_id="a", extensions=None)
    assert wire(meta) == {
        "run_id": "0191c0de-0000-7000-8000-00000000abcd",
        "agent_id": "a",
        "parallel_hints": [],
        "extensions": None,
    }


def test_execution_plan_wire_format() -> None:
    plan = rs.ExecutionPlan(
        agent_id="a",
        parallel_groups=[rs.ParallelGroup(group_id="g1", tool_names=["x", "y"])],
        metadata_template=rs.MetadataEnvelope(run_id=RUN_ID, agent_id="a", extensions={}),
    )
    text = plan.to_json()
    assert_compact(text)
    assert json.loads(text) == {
        "agent_id": "a",
        "parallel_groups": [{"group_id": "g1", "tool_names": ["x", "y"]}],
        "metadata_template": {
            "run_id": "0191c0de-0000-7000-8000-00000000abcd",
            "agent_id": "a",
            "parallel_hints": [],
            "extensions": {},
        },
    }


def test_trie_wire_format_matches_the_nat_reference() -> None:
    prediction_1 = rs.LlmCallPrediction(
        remaining_calls=rs.PredictionMetrics(sample_count=10, mean=2.5, p50=2.0, p90=4.0, p95=4.5),
        interarrival_ms=rs.PredictionMetrics(
            sample_count=10, mean=150.0, p50=140.0, p90=200.0, p95=220.0
        ),
        output_tokens=rs.PredictionMetrics(
            sample_count=10, mean=256.0, p50=240.0, p90=400.0, p95=450.0
        ),
        latency_sensitivity=3,
    )
    env = rs.TrieEnvelope(
        generated_at="2026-03-31T12:00:00+00:00",
        workflow_name="my_agent",
        root=rs.PredictionTrieNode(
            name="root",
            predictions_by_call_index={1: prediction_1},
            children={"react_agent": rs.PredictionTrieNode(name="react_agent")},
        ),
    )
    text = env.to_json()
    assert_compact(text)
    assert json.loads(text) == json.loads(NAT_REFERENCE_TRIE)
    assert '"predictions_by_call_index":{"1":' in text
    assert env == rs.TrieEnvelope.from_json(NAT_REFERENCE_TRIE)


def test_nat_reference_trie_reads_and_rewrites_equal() -> None:
    env = rs.TrieEnvelope.from_json(NAT_REFERENCE_TRIE)
    assert env.version == "1.0"
    assert env.generated_at == "2026-03-31T12:00:00+00:00"
    assert env.workflow_name == "my_agent"
    assert env.root.name == "root"
    assert list(env.root.predictions_by_call_index) == [1]
    first = env.root.predictions_by_call_index[1]
    assert first.latency_sensitivity == 3
    assert first.interarrival_ms.p95 == 220.0
    assert first.output_tokens.sample_count == 10
    assert env.root.predictions_any_index is None
    assert env.root.children["react_agent"] == rs.PredictionTrieNode(name="react_agent")
    assert json.loads(env.to_json()) == json.loads(NAT_REFERENCE_TRIE)
    assert env.to_dict() == json.loads(NAT_REFERENCE_TRIE)
    assert rs.TrieEnvelope.from_json(NAT_REFERENCE_TRIE.encode()) == env


def test_null_latency_sensitivity_and_any_index_are_written() -> None:
    pred = prediction(None)
    assert pred.latency_sensitivity is None
    assert "latency_sensitivity" in wire(pred)
    assert wire(pred)["latency_sensitivity"] is None
    # Absent on input reads as absent, and is still written as null.
    doc = wire(pred)
    del doc["latency_sensitivity"]
    assert wire(rs.LlmCallPrediction.from_dict(doc))["latency_sensitivity"] is None
    node_doc = {"name": "n", "children": {}, "predictions_by_call_index": {}}
    node = rs.PredictionTrieNode.from_dict(node_doc)
    assert node.predictions_any_index is None
    assert wire(node) == {**node_doc, "predictions_any_index": None}


def test_integer_map_keys_are_decimal_strings() -> None:
    node = rs.PredictionTrieNode(
        name="n", predictions_by_call_index={10: prediction(), 2: prediction(7)}
    )
    doc = wire(node)
    assert set(doc["predictions_by_call_index"]) == {"10", "2"}
    assert doc["predictions_by_call_index"]["2"]["latency_sensitivity"] == 7
    assert node.predictions_by_call_index[2].latency_sensitivity == 7
    assert all(type(k) is int for k in node.predictions_by_call_index)

    acc = rs.NodeAccumulators(remaining_calls={3: stats(1.0)}, sensitivity={0: stats(2.0)})
    acc_doc = wire(acc)
    assert list(acc_doc["remaining_calls"]) == ["3"]
    assert list(acc_doc["sensitivity"]) == ["0"]
    assert acc_doc["interarrival_ms"] == {} and acc_doc["output_tokens"] == {}
    assert list(acc.remaining_calls) == [3]
    back = rs.NodeAccumulators.from_json(acc.to_json())
    assert back == acc
    assert back.remaining_calls[3].count == 1


def test_from_dict_reads_int_keys_as_json_dumps_writes_them() -> None:
    """The constructor takes these maps with int keys; from_dict takes them
    either way, and JSON fields get "1" for 1 as json.dumps gives."""
    pred = prediction(7).to_dict()
    node = rs.PredictionTrieNode.from_dict(
        {"name": "n", "children": {}, "predictions_by_call_index": {10: pred, "2": pred}}
    )
    assert node == rs.PredictionTrieNode.from_json(
        json.dumps({"name": "n", "children": {}, "predictions_by_call_index": {10: pred, "2": pred}})
    )
    assert sorted(node.predictions_by_call_index) == [2, 10]
    big = 2**70
    record = rs.CallRecord.from_dict(
        {**call().to_dict(), "annotated_request": {1: "a", big: [True], -3: None}}
    )
    assert record.annotated_request == json.loads(json.dumps({1: "a", big: [True], -3: None}))
    # An int key and a str key that would be the same JSON key: one value
    # would be lost on reading, so neither is taken.
    with pytest.raises(rs.SerializationError, match='two keys are both "1" in JSON'):
        rs.CallRecord.from_dict({**call().to_dict(), "annotated_request": {"a": 0, 1: "a", "1": "b"}})
    with pytest.raises(ValueError, match=re.escape('annotated_request["x"]: two keys are both "-2" in JSON')):
        rs.CallRecord(kind="llm", name="n", annotated_request={"x": {"-2": 0, -2: 1}})
    assert rs.CallRecord(kind="llm", name="n", annotated_request={"01": 0, 1: 1}).annotated_request == {"01": 0, "1": 1}

    class Odd(str):  # equal only to itself, so a dict holds it beside "k"
        __hash__ = object.__hash__
        __eq__ = object.__eq__

    class Repeats(Mapping[str, int]):
        def __getitem__(self, key: str) -> int:
            return 1

        def __iter__(self) -> Iterator[str]:
            return iter(["k", "k"])

        def __len__(self) -> int:
            return 2

    for repeated in ({Odd("k"): 0, "k": 1}, Repeats()):
        with pytest.raises(ValueError, match='annotated_request: two keys are both "k" in JSON'):
            rs.CallRecord(kind="llm", name="n", annotated_request=repeated)
    # Many int keys cost no more than a set's work.
    many = {**{i: i for i in range(20_000)}, **{str(-i): i for i in range(1, 20_000)}}
    assert len(rs.CallRecord(kind="llm", name="n", annotated_request=many).annotated_request) == 39_999
    for key in (True, 1.5, None, (1,)):
        with pytest.raises(rs.SerializationError, match="expected str or int keys in a JSON object"):
            rs.CallRecord.from_dict({**call().to_dict(), "annotated_request": {key: 1}})


def test_accumulator_wire_format() -> None:
    acc = rs.AccumulatorState(nodes={"workflow/agent": rs.NodeAccumulators()})
    assert wire(acc) == {
        "nodes": {
            "workflow/agent": {
                "remaining_calls": {},
                "interarrival_ms": {},
                "output_tokens": {},
                "sensitivity": {},
                "all_remaining_calls": EMPTY_STATS,
                "all_interarrival_ms": EMPTY_STATS,
                "all_output_tokens": EMPTY_STATS,
                "all_sensitivity": EMPTY_STATS,
            }
        }
    }


def test_running_stats_digest_wire_form() -> None:
    s = stats(1.0, 2.0, 4.0)
    doc = wire(s)
    assert set(doc) == {"count", "mean", "m2", "digest"}
    assert doc["count"] == 3
    digest = doc["digest"]
    assert set(digest) == {"centroids", "max_size", "sum", "count", "max", "min"}
    assert digest["max_size"] == 100
    assert (digest["sum"], digest["count"], digest["min"], digest["max"]) == (7.0, 3.0, 1.0, 4.0)
    assert sum(c["weight"] for c in digest["centroids"]) == 3.0
    assert all(set(c) == {"mean", "weight"} for c in digest["centroids"])
    assert s.digest == digest


def test_empty_digest_reads_null_bounds_as_zero() -> None:
    doc = {
        "count": 0,
        "mean": 0.0,
        "m2": 0.0,
        "digest": {**EMPTY_DIGEST, "min": None, "max": None},
    }
    read = rs.RunningStats.from_json(json.dumps(doc))
    assert wire(read) == EMPTY_STATS
    assert read.to_dict() == EMPTY_STATS


def test_empty_running_stats_round_trips_equal() -> None:
    empty = rs.RunningStats()
    assert rs.RunningStats.from_json(empty.to_json()) == empty
    assert rs.RunningStats.from_dict(empty.to_dict()) == empty
    assert rs.NodeAccumulators.from_json(rs.NodeAccumulators().to_json()) == rs.NodeAccumulators()


def test_prompt_wire_format() -> None:
    minimal = rs.PromptIR(ir_id=IR_ID, created_at=T0)
    assert wire(minimal) == {
        "ir_id": "0191c0de-1111-7111-8111-11111111abcd",
        "blocks": [],
        "created_at": "2026-03-31T12:00:00Z",
    }
    b = rs.PromptBlock(**block_kwargs(content_type="structured_output", provenance="retrieval"))
    assert wire(b) == {
        "span_id": "s",
        "sequence_index": 0,
        "role": "user",
        "content": "c",
        "content_type": "structured_output",
        "provenance": "retrieval",
        "sensitivity": "public",
    }
    # sensitivity absent on input reads as public
    doc = wire(b)
    del doc["sensitivity"]
    assert rs.PromptBlock.from_dict(doc).sensitivity is rs.SensitivityLabel.PUBLIC
    full = prompt()
    text = full.to_json()
    assert_compact(text)
    assert json.loads(text) == {
        "ir_id": "0191c0de-1111-7111-8111-11111111abcd",
        "blocks": [wire(block(0)), wire(block(1))],
        "tool_schema_hashes": [{"tool_name": "search", "schema_hash": "ab12"}],
        "structured_output_schema_id": "schema-1",
        "source_request_hash": "cafe",
        "created_at": "2026-03-31T12:00:00Z",
    }
    assert wire(block(0)) == {
        "span_id": "span-0",
        "sequence_index": 0,
        "role": "system",
        "content": "You are a helpful agent. ✓ 日本語",
        "content_type": "tool_schema",
        "provenance": "developer",
        "sensitivity": "private",
        "token_metadata": {"model_family": "llama", "token_count": 42},
    }
    # An empty list is a value, not an absence.
    assert wire(rs.PromptIR(ir_id=IR_ID, created_at=T0, tool_schema_hashes=[]))[
        "tool_schema_hashes"
    ] == []


def test_stability_wire_format() -> None:
    result = rs.StabilityAnalysisResult(
        scores=[rs.BlockStabilityScore(**score_kwargs(classification="semi_stable", score=0.5))],
        stable_prefix_length=3,
        total_observations=9,
    )
    assert wire(result) == {
        "scores": [
            {
                "span_id": "s",
                "classification": "semi_stable",
                "score": 0.5,
                "confidence": 1.0,
                "observation_count": 1,
            }
        ],
        "stable_prefix_length": 3,
        "total_observations": 9,
    }
    assert wire(result.replace(stable_prefix_fingerprint="abc"))["stable_prefix_fingerprint"] == "abc"


@pytest.mark.parametrize(
    ("enum_cls", "build"),
    [
        (rs.CallKind, lambda v: rs.CallRecord(kind=v, name="x", started_at=T0)),
        (rs.PromptRole, lambda v: rs.PromptBlock(**block_kwargs(role=v))),
        (rs.BlockContentType, lambda v: rs.PromptBlock(**block_kwargs(content_type=v))),
        (rs.ProvenanceLabel, lambda v: rs.PromptBlock(**block_kwargs(provenance=v))),
        (rs.SensitivityLabel, lambda v: rs.PromptBlock(**block_kwargs(sensitivity=v))),
        (rs.StabilityClass, lambda v: rs.BlockStabilityScore(**score_kwargs(classification=v))),
    ],
)
def test_every_enum_value_is_written_lowercase(
    enum_cls: type[Any], build: Callable[[Any], Any]
) -> None:
    for member in enum_cls:
        doc = wire(build(member))
        assert member.value in doc.values()
        assert member.value == member.value.lower()
        assert build(member.value) == build(member)


def test_datetimes_use_z_and_a_fraction_only_when_non_zero() -> None:
    def written(moment: datetime) -> str:
        return str(wire(rs.RunRecord(id=RUN_ID, agent_id="a", started_at=moment))["started_at"])

    assert written(T0) == "2026-03-31T12:00:00Z"
    assert written(T0.replace(microsecond=123456)) == "2026-03-31T12:00:00.123456Z"
    for micros in (1, 1000, 120000, 999999):
        moment = T0.replace(microsecond=micros)
        text = written(moment)
        assert re.fullmatch(r"2026-03-31T12:00:00\.\d{1,9}Z", text), text
        assert parse_rfc3339(text) == moment


def test_nanosecond_timestamps_survive() -> None:
    doc = {
        "id": "0191c0de-0000-7000-8000-00000000abcd",
        "agent_id": "a",
        "calls": [
            {"kind": "llm", "name": "x", "started_at": "2026-03-31T12:00:00.123456789Z"}
        ],
        "started_at": "2026-03-31T12:00:00.000000001Z",
        "ended_at": "2026-03-31T12:00:00.5Z",
    }
    record = rs.RunRecord.from_json(json.dumps(doc))
    assert record.calls[0].started_at == T0.replace(microsecond=123456)
    out = wire(record)
    assert out["calls"][0]["started_at"] == "2026-03-31T12:00:00.123456789Z"
    assert out["started_at"] == "2026-03-31T12:00:00.000000001Z"
    assert parse_rfc3339(out["ended_at"]) == T0.replace(microsecond=500000)


def test_other_rfc3339_offsets_are_read() -> None:
    doc = {
        "id": "0191C0DE-0000-7000-8000-00000000ABCD",
        "agent_id": "a",
        "calls": [],
        "started_at": "2026-03-31T14:00:00+02:00",
        "ended_at": "2026-03-31T10:30:00.25-01:30",
    }
    record = rs.RunRecord.from_json(json.dumps(doc))
    assert record.id == RUN_ID
    assert record.started_at == T0
    assert record.ended_at == T0.replace(microsecond=250000)
    out = wire(record)
    assert out["id"] == "0191c0de-0000-7000-8000-00000000abcd"
    assert out["started_at"] == "2026-03-31T12:00:00Z"
    assert parse_rfc3339(out["ended_at"]) == T0.replace(microsecond=250000)
    assert out["ended_at"].endswith("Z")


# ---------------------------------------------------------------------------
# forward compatibility

@pytest.mark.parametrize("name", sorted(FUTURE_DOCS))
def test_unknown_fields_survive_at_every_level(name: str) -> None:
    cls, doc = FUTURE_DOCS[name]
    model = cls.from_json(json.dumps(doc))
    expected = copy.deepcopy(doc)
    assert json.loads(model.to_json()) == expected
    assert model.to_dict() == expected
    assert json.loads(cls.from_dict(doc).to_json()) == expected
    assert json.loads(pickle.loads(pickle.dumps(model)).to_json()) == expected


# ---------------------------------------------------------------------------
# immutability


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_attributes_are_read_only(name: str) -> None:
    model = SAMPLES[name]()
    fields = list(model.to_dict())
    assert fields
    for field in fields:
        value = getattr(model, field)
        with pytest.raises(AttributeError):
            setattr(model, field, value)
        with pytest.raises((AttributeError, TypeError)):
            delattr(model, field)
    with pytest.raises(AttributeError):
        model.brand_new_attribute = 1


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_models_hash_as_they_compare(name: str) -> None:
    model = SAMPLES[name]()
    same = type(model).from_json(model.to_json())
    assert model == same and model is not same
    assert hash(model) == hash(same) == hash(pickle.loads(pickle.dumps(model)))
    assert len({model, same, copy.copy(model)}) == 1
    assert {model: "found"}[same] == "found"


def test_hashes_tell_models_apart() -> None:
    a = call()
    b = a.replace(name="other")
    assert a != b and hash(a) != hash(b)
    assert len({a, b, a.replace()}) == 2
    # The same fields in another class are another value.
    hint = rs.ParallelHint(tool_name="t", group_id="g", explicit=True)
    group = rs.ToolSchemaHash(tool_name="t", schema_hash="g")
    assert hash(hint) != hash(group)
    # Ids and nested records count: a set of runs is not a list in disguise.
    r = run(run_id=RUN_ID)
    assert len({hash(r.replace(id=uuid.uuid4())) for _ in range(100)}) > 90
    assert hash(r) != hash(r.replace(calls=[call().replace(name="zz")]))
    assert hash(r) != hash(r.replace(calls=[*r.calls, *r.calls]))
    # So do JSON fields: annotations alone tell runs apart.
    c = call()
    requests = {hash(c.replace(annotated_request={"messages": [{"content": f"q{i}"}]})) for i in range(100)}
    assert len(requests) > 90


def test_hash_follows_equality_where_equality_is_loose() -> None:
    # JSON fields compare as Python values; floats compare with 0.0 == -0.0.
    a = rs.CallRecord(kind="llm", name="x", started_at=T0, annotated_request={"a": 1, "b": [True]})
    b = a.replace(annotated_request={"b": [1], "a": 1.0})
    assert a == b and hash(a) == hash(b)
    m = metrics()
    signed = m.replace(mean=-0.0, p50=0.0)
    assert m.replace(mean=0.0, p50=-0.0) == signed
    assert hash(m.replace(mean=0.0, p50=-0.0)) == hash(signed)


def test_returned_collections_cannot_change_the_model() -> None:
    # List and map fields are read-only views: every way to change one fails.
    r = run(run_id=RUN_ID)
    env = trie()
    p = prompt()
    group = rs.ParallelGroup(group_id="g", tool_names=["a"])
    lists = [r.calls, envelope_meta().parallel_hints, group.tool_names, p.blocks, p.tool_schema_hashes]
    maps = [env.root.children, env.root.predictions_by_call_index, accumulators().nodes]
    for view in lists:
        assert isinstance(view, rs.ListView)
        for method in ("append", "clear", "pop", "extend", "insert", "remove", "sort", "reverse"):
            assert not hasattr(view, method), method
        with pytest.raises(TypeError):
            view[0] = view[0]
        with pytest.raises(TypeError):
            del view[0]
    for view in maps:
        assert isinstance(view, rs.MapView)
        for method in ("clear", "pop", "popitem", "update", "setdefault"):
            assert not hasattr(view, method), method
        key = next(iter(view))
        with pytest.raises(TypeError):
            view[key] = view[key]
        with pytest.raises(TypeError):
            del view[key]
    assert r == run(run_id=RUN_ID)
    assert env == trie()
    assert p == prompt()
    assert group.tool_names == ["a"]


def test_mutating_returned_json_values_never_changes_the_model() -> None:
    # JSON fields are plain values, made anew on each read.
    r = run(run_id=RUN_ID)
    r.calls[0].annotated_request["messages"].append("x")
    r.calls[0].annotated_response.append("x")
    assert r == run(run_id=RUN_ID)

    meta = envelope_meta()
    meta.extensions["team"] = "changed"
    meta.extensions["weights"].append(9)
    assert meta == envelope_meta()

    s = stats(1.0, 2.0)
    s.digest["centroids"].clear()
    s.digest["count"] = 99.0
    assert s == stats(1.0, 2.0)
    assert s.digest["count"] == 2.0


def test_mutating_constructor_inputs_never_changes_the_model() -> None:
    calls = [call()]
    request: dict[str, Any] = {"a": [1]}
    record = rs.RunRecord(id=RUN_ID, agent_id="a", calls=calls, started_at=T0)
    c = rs.CallRecord(kind="llm", name="x", started_at=T0, annotated_request=request)
    calls.append(call())
    request["a"].append(2)
    request["b"] = 1
    assert len(record.calls) == 1
    assert c.annotated_request == {"a": [1]}
    children = {"c": rs.PredictionTrieNode(name="c")}
    node = rs.PredictionTrieNode(name="n", children=children)
    children["d"] = rs.PredictionTrieNode(name="d")
    assert list(node.children) == ["c"]


# ---------------------------------------------------------------------------
# ==, repr, replace, to_dict/from_dict, pickle


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_value_semantics(name: str) -> None:
    model = SAMPLES[name]()
    cls = MODEL_CLASSES[name]
    assert type(model) is cls
    doc = model.to_dict()
    assert doc == json.loads(model.to_json())
    assert_plain_json(doc)
    assert_compact(model.to_json())
    again = cls.from_dict(doc)
    assert again == model
    assert not (again != model)
    assert cls.from_json(model.to_json()) == model
    assert cls.from_json(model.to_json().encode("utf-8")) == model
    for protocol in range(2, pickle.HIGHEST_PROTOCOL + 1):
        assert pickle.loads(pickle.dumps(model, protocol=protocol)) == model
    assert copy.deepcopy(model) == model
    assert model != object()
    assert (model == 5) is False
    assert model.replace() == model
    text = repr(model)
    assert text.startswith(name)
    assert len(text) < 100_000


def test_equality_is_by_value() -> None:
    assert run(run_id=RUN_ID) == run(run_id=RUN_ID)
    assert run(run_id=RUN_ID) != run(run_id=RUN_ID).replace(agent_id="b")
    assert metrics() == metrics()
    assert metrics() != metrics(2.0)
    assert trie() == trie()
    assert trie() != trie("other")
    assert stats(1.0, 2.0) == stats(1.0, 2.0)
    assert stats(1.0, 2.0) != stats(1.0, 3.0)


def test_repr_is_readable() -> None:
    # Keyword form, each field as Python shows its value, in wire order.
    text = repr(rs.ParallelHint(tool_name="search", group_id="g1", explicit=True))
    assert text == "ParallelHint(tool_name='search', group_id='g1', explicit=True)"
    text = repr(rs.RunRecord(id=RUN_ID, agent_id="agent-7", started_at=T0))
    assert text == (
        "RunRecord(id=UUID('0191c0de-0000-7000-8000-00000000abcd'), agent_id='agent-7', calls=[], "
        f"started_at={T0!r}, ended_at=None)"
    )
    assert repr(call()).startswith("CallRecord(kind=<CallKind.LLM: 'llm'>, name='planner', started_at=")


def test_replace() -> None:
    original = call()
    changed = original.replace(name="other", output_tokens=1, ended_at=None)
    assert (changed.name, changed.output_tokens, changed.ended_at) == ("other", 1, None)
    assert changed.prompt_tokens == original.prompt_tokens
    assert changed.metadata_snapshot == original.metadata_snapshot
    assert (original.name, original.output_tokens, original.ended_at) == ("planner", 128, T1)
    assert "ended_at" not in wire(changed)
    assert original.replace(kind="tool").kind is rs.CallKind.TOOL
    record = rs.RunRecord(agent_id="a")
    assert record.replace(agent_id="b").id == record.id
    assert record.replace(agent_id="b").started_at == record.started_at
    with pytest.raises(ValueError, match="output_tokens"):
        original.replace(output_tokens=-1)
    with pytest.raises(TypeError, match="name"):
        original.replace(name=1)
    with pytest.raises(TypeError):
        original.replace(nonsense=1)


def test_pickle_keeps_non_finite_values() -> None:
    m = rs.PredictionMetrics(**metrics_kwargs(mean=NAN, p95=INF))
    back = pickle.loads(pickle.dumps(m))
    assert math.isnan(back.mean) and back.p95 == INF


# ---------------------------------------------------------------------------
# serialisation errors


NON_FINITE_MODELS: dict[str, Callable[[], Any]] = {
    "metrics nan": lambda: rs.PredictionMetrics(**metrics_kwargs(mean=NAN)),
    "metrics inf": lambda: rs.PredictionMetrics(**metrics_kwargs(p95=INF)),
    "score -inf": lambda: rs.BlockStabilityScore(**score_kwargs(score=-INF)),
    "confidence nan": lambda: rs.BlockStabilityScore(**score_kwargs(confidence=NAN)),
    "stats mean nan": lambda: rs.RunningStats(mean=NAN),
    "stats m2 inf": lambda: rs.RunningStats(m2=INF),
    "nested trie": lambda: rs.TrieEnvelope(
        workflow_name="w",
        root=rs.PredictionTrieNode(
            name="root",
            children={
                "c": rs.PredictionTrieNode(
                    name="c",
                    predictions_any_index=rs.LlmCallPrediction(
                        remaining_calls=metrics(),
                        interarrival_ms=rs.PredictionMetrics(**metrics_kwargs(p50=INF)),
                        output_tokens=metrics(),
                    ),
                )
            },
        ),
    ),
    "nested accumulators": lambda: rs.AccumulatorState(
        nodes={"n": rs.NodeAccumulators(output_tokens={1: rs.RunningStats(count=1, mean=INF)})}
    ),
    "nested stability": lambda: rs.StabilityAnalysisResult(
        scores=[rs.BlockStabilityScore(**score_kwargs(score=NAN))],
        stable_prefix_length=0,
        total_observations=1,
    ),
}


@pytest.mark.parametrize("name", sorted(NON_FINITE_MODELS))
def test_non_finite_floats_are_accepted_but_not_serialised(name: str) -> None:
    model = NON_FINITE_MODELS[name]()  # constructing is fine
    with pytest.raises(SerializationError):
        model.to_json()
    with pytest.raises(SerializationError):
        model.to_dict()


def test_non_finite_attribute_reads_back() -> None:
    m = rs.PredictionMetrics(**metrics_kwargs(mean=NAN, p90=-INF))
    assert math.isnan(m.mean)
    assert m.p90 == -INF


GARBAGE: list[tuple[str, type[Any], str | bytes]] = [
    ("not json", rs.RunRecord, "not json"),
    ("empty", rs.RunRecord, ""),
    ("array", rs.RunRecord, "[]"),
    ("missing fields", rs.RunRecord, "{}"),
    ("bad utf8", rs.RunRecord, b"\xff\xfe{}"),
    ("trailing", rs.ParallelGroup, '{"group_id":"g","tool_names":[]} extra'),
    (
        "bad uuid",
        rs.RunRecord,
        '{"id":"nope","agent_id":"a","calls":[],"started_at":"2026-03-31T12:00:00Z"}',
    ),
    (
        "bad datetime",
        rs.RunRecord,
        '{"id":"0191c0de-0000-7000-8000-00000000abcd","agent_id":"a","calls":[],'
        '"started_at":"yesterday"}',
    ),
    (
        "naive datetime",
        rs.RunRecord,
        '{"id":"0191c0de-0000-7000-8000-00000000abcd","agent_id":"a","calls":[],'
        '"started_at":"2026-03-31T12:00:00"}',
    ),
    ("bad enum", rs.CallRecord, '{"kind":"LLM","name":"x","started_at":"2026-03-31T12:00:00Z"}'),
    (
        "float for int",
        rs.CallRecord,
        '{"kind":"llm","name":"x","started_at":"2026-03-31T12:00:00Z","output_tokens":1.5}',
    ),
    ("wrong type", rs.ParallelHint, '{"tool_name":"t","group_id":"g","explicit":"yes"}'),
    ("negative u32", rs.PredictionMetrics, json.dumps(metrics_kwargs(sample_count=-1))),
    ("big u32", rs.PredictionMetrics, json.dumps(metrics_kwargs(sample_count=2**32))),
    ("NaN token", rs.PredictionMetrics, json.dumps(metrics_kwargs(mean=NAN))),
    ("null float", rs.PredictionMetrics, json.dumps(metrics_kwargs(mean=None))),
    (
        "non-integer map key",
        rs.PredictionTrieNode,
        '{"name":"n","children":{},"predictions_by_call_index":{"x":null},'
        '"predictions_any_index":null}',
    ),
    ("negative count", rs.RunningStats, json.dumps({**EMPTY_STATS, "count": -1})),
    ("int for str", rs.ParallelGroup, '{"group_id":1,"tool_names":[]}'),
]


@pytest.mark.parametrize(
    ("cls", "text"), [g[1:] for g in GARBAGE], ids=[g[0] for g in GARBAGE]
)
def test_bad_json_raises_serialization_error(cls: type[Any], text: str | bytes) -> None:
    with pytest.raises(SerializationError) as info:
        cls.from_json(text)
    assert str(info.value)


def _with(doc: dict[str, Any], path: list[Any], value: Any) -> str:
    *parents, last = path
    target = doc
    for step in parents:
        target = target[step]
    target[last] = value
    return json.dumps(doc)


@pytest.mark.parametrize(
    ("cls", "doc", "path", "value", "named"),
    [
        (rs.RunRecord, run, ["calls", 0, "prompt_tokens"], -1, "calls[0].prompt_tokens: invalid value: integer `-1`"),
        (rs.RunRecord, run, ["calls", 0, "started_at"], "yesterday", 'calls[0].started_at: invalid RFC 3339 timestamp "yesterday"'),
        (rs.RunRecord, run, ["calls", 0, "kind"], "robot", "calls[0].kind: unknown variant `robot`"),
        (rs.TrieEnvelope, trie, ["root", "predictions_by_call_index"], {"x": None}, 'root.predictions_by_call_index: invalid value: string "x"'),
        (rs.AccumulatorState, accumulators, ["nodes"], {"n": {"remaining_calls": {"1": {"count": "x"}}}}, 'nodes.n.remaining_calls.1.count: invalid type: string "x"'),
    ],
)
def test_a_document_that_does_not_decode_names_the_field(
    cls: type[Any], doc: Callable[[], Any], path: list[Any], value: Any, named: str
) -> None:
    text = _with(json.loads(doc().to_json()), path, value)
    with pytest.raises(SerializationError) as info:
        cls.from_json(text)
    message = str(info.value)
    assert message.startswith(f"cannot decode {cls.__name__}: {named}"), message
    assert re.search(r" at line 1 column \d+$", message), message


def test_bad_dict_raises_serialization_error() -> None:
    with pytest.raises(SerializationError):
        rs.RunRecord.from_dict({})
    with pytest.raises(SerializationError):
        rs.RunRecord.from_dict({**run().to_dict(), "agent_id": 5})
    with pytest.raises(SerializationError):
        rs.PromptBlock.from_dict({**block().to_dict(), "role": "narrator"})


def test_from_json_rejects_non_text() -> None:
    with pytest.raises(TypeError):
        rs.RunRecord.from_json(5)


# ---------------------------------------------------------------------------
# RunningStats arithmetic


def welford(samples: list[float]) -> tuple[int, float, float]:
    count, mean, m2 = 0, 0.0, 0.0
    for x in samples:
        count += 1
        delta = x - mean
        mean += delta / count
        m2 += delta * (x - mean)
    return count, mean, m2


SAMPLES_A = [float((i * 37) % 101) + 0.25 * (i % 4) for i in range(1, 401)]
SAMPLES_B = [1000.0 + (i * 13) % 97 for i in range(1, 301)]


def test_add_sample_is_welford() -> None:
    s = rs.RunningStats()
    for x in SAMPLES_A:
        s = s.add_sample(x)
    count, mean, m2 = welford(SAMPLES_A)
    assert s.count == count
    assert s.mean == mean
    assert s.m2 == m2
    assert s.digest["count"] == float(count)
    assert s.digest["min"] == min(SAMPLES_A)
    assert s.digest["max"] == max(SAMPLES_A)
    assert math.isclose(s.digest["sum"], sum(SAMPLES_A))


def test_add_sample_returns_a_new_object() -> None:
    empty = rs.RunningStats()
    one = empty.add_sample(5.0)
    assert empty == rs.RunningStats()
    assert empty.count == 0
    assert (one.count, one.mean, one.m2) == (1, 5.0, 0.0)
    two = one.add_sample(7)
    assert (one.count, two.count, two.mean, two.m2) == (1, 2, 6.0, 2.0)
    with pytest.raises(TypeError):
        one.add_sample("7")


def test_compute_metrics_percentiles() -> None:
    values = [float(i) for i in range(1, 1001)]
    s = rs.RunningStats()
    for x in values:
        s = s.add_sample(x)
    m = s.compute_metrics()
    assert isinstance(m, rs.PredictionMetrics)
    assert m.sample_count == 1000
    assert m.mean == pytest.approx(500.5)
    assert m.p50 == pytest.approx(500, rel=0.02)
    assert m.p90 == pytest.approx(900, rel=0.02)
    assert m.p95 == pytest.approx(950, rel=0.02)
    assert m.p50 <= m.p90 <= m.p95
    assert s.count == 1000  # unchanged
    assert rs.RunningStats().compute_metrics().sample_count == 0


def test_merge() -> None:
    a = rs.RunningStats()
    for x in SAMPLES_A:
        a = a.add_sample(x)
    b = rs.RunningStats()
    for x in SAMPLES_B:
        b = b.add_sample(x)
    a_before, b_before = a.to_json(), b.to_json()
    merged = a.merge(b)
    assert a.to_json() == a_before and b.to_json() == b_before
    everything = SAMPLES_A + SAMPLES_B
    count, mean, m2 = welford(everything)
    assert merged.count == count
    assert merged.mean == pytest.approx(mean, rel=1e-12)
    assert merged.m2 == pytest.approx(m2, rel=1e-9)
    assert merged.digest["count"] == float(count)
    assert merged.digest["min"] == min(everything)
    assert merged.digest["max"] == max(everything)
    metrics_ = merged.compute_metrics()
    assert metrics_.sample_count == count
    ordered = sorted(everything)
    assert metrics_.p50 == pytest.approx(statistics.median(ordered), rel=0.05)
    assert metrics_.p95 == pytest.approx(ordered[int(0.95 * len(ordered))], rel=0.05)
    # merging with an empty side changes nothing
    assert a.merge(rs.RunningStats()).count == a.count
    assert a.merge(rs.RunningStats()).mean == a.mean
    assert rs.RunningStats().merge(a).m2 == pytest.approx(a.m2)


def test_a_sample_or_merge_that_overflows_the_digest_is_refused() -> None:
    """Otherwise the digest's sum is inf: the model could then be neither
    stored nor shown (its digest, repr and pickle would all fail)."""
    big = rs.RunningStats().add_sample(1e308)
    with pytest.raises(ValueError, match=r"^RunningStats\.add_sample: the t-digest would overflow \(sum: inf"):
        big.add_sample(1e308)
    with pytest.raises(ValueError, match=r"^RunningStats\.merge: the t-digest would overflow \(sum: inf"):
        big.merge(big)
    # What is left is whole and usable.
    assert big.digest["sum"] == 1e308 and "1e+308" in repr(big)
    assert pickle.loads(pickle.dumps(big)) == big


def test_a_digest_max_size_too_large_to_merge_into_is_refused_on_read() -> None:
    """The digest sets aside room for max_size centroids on every merge, so
    2**62 would panic and 2**40 abort the process at the first add_sample."""
    doc = {"count": 0, "mean": 0.0, "m2": 0.0,
           "digest": {"centroids": [], "max_size": 2**62, "sum": 0.0, "count": 0.0, "max": 0.0, "min": 0.0}}
    with pytest.raises(rs.SerializationError, match="max_size 4611686018427387904 is larger than 65536"):
        rs.RunningStats.from_json(json.dumps(doc))
    with pytest.raises(ValueError, match="max_size 4611686018427387904 is larger than 65536"):
        rs.RunningStats(digest=doc["digest"])
    doc["digest"]["max_size"] = 65536
    assert rs.RunningStats.from_json(json.dumps(doc)).add_sample(1.0).digest["max_size"] == 65536


def test_running_stats_accepts_its_digest_dict() -> None:
    s = stats(3.0, 1.0, 2.0)
    copy_ = rs.RunningStats(count=s.count, mean=s.mean, m2=s.m2, digest=s.digest)
    assert copy_ == s
    assert copy_.to_json() == s.to_json()


# ---------------------------------------------------------------------------
# attribute access is O(1)


def _big_trie_json(branching: int, depth: int) -> str:
    metric = {"sample_count": 3, "mean": 1.5, "p50": 1.0, "p90": 2.0, "p95": 2.5}
    pred = {
        "remaining_calls": metric,
        "interarrival_ms": metric,
        "output_tokens": metric,
        "latency_sensitivity": 2,
    }

    def node(name: str, level: int) -> dict[str, Any]:
        children = (
            {f"{name}.{i}": node(f"{name}.{i}", level + 1) for i in range(branching)}
            if level < depth
            else {}
        )
        return {
            "name": name,
            "children": children,
            "predictions_by_call_index": {"1": pred, "2": pred},
            "predictions_any_index": pred,
        }

    root = node("root", 0)
    return json.dumps(
        {"version": "1.0", "generated_at": "2026-03-31T12:00:00Z", "workflow_name": "w", "root": root}
    )


def _best_time(action: Callable[[], Any], repeats: int = 7, loops: int = 1000) -> float:
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(loops):
            action()
        best = min(best, time.perf_counter() - start)
    return best


def test_attribute_access_is_constant_time() -> None:
    # Same shape at the top (3 children, 2 predictions), very different sizes
    # below: ~3 nodes against ~9800.
    big = rs.TrieEnvelope.from_json(_big_trie_json(branching=3, depth=8))
    small = rs.TrieEnvelope.from_json(_big_trie_json(branching=3, depth=1))
    assert len(big.to_json()) > 1000 * len(small.to_json())
    big_root, small_root = big.root, small.root

    for getter in (
        lambda env: env.root,
        lambda env: env.root.children,
        lambda env: env.root.predictions_by_call_index,
    ):
        t_big = _best_time(lambda: getter(big))
        t_small = _best_time(lambda: getter(small))
        assert t_big < 5 * t_small, (t_big, t_small)

    t_big = _best_time(lambda: big_root.children)
    t_small = _best_time(lambda: small_root.children)
    assert t_big < 5 * t_small, (t_big, t_small)


def test_json_fields_keep_numbers_python_can_hold_exactly() -> None:
    """Integers beyond 64 bits and floats beyond f64 are valid JSON another
    writer may leave; they read like json.loads reads them, and never crash."""
    doc = ('{"kind":"llm","name":"n","started_at":"2026-03-31T12:00:00Z",'
           '"annotated_request":{"big":123456789012345678901234567890,"huge":1e400}}')
    call = rs.CallRecord.from_json(doc)
    assert call.annotated_request["big"] == 123456789012345678901234567890
    assert call.annotated_request["huge"] == float("inf")
    assert call.to_dict() == json.loads(call.to_json())
    assert json.loads(call.to_json())["annotated_request"]["big"] == 123456789012345678901234567890
    assert call == rs.CallRecord.from_json(doc)


@pytest.mark.parametrize("stamp", ["0000-01-01T00:00:00Z", "0001-01-01T00:30:00+01:00", "+10000-01-01T00:00:00Z"])
def test_timestamps_python_cannot_hold_do_not_read(stamp: str) -> None:
    doc = json.dumps({"id": str(uuid.uuid4()), "agent_id": "a", "calls": [], "started_at": stamp})
    with pytest.raises(SerializationError, match="started_at|1-9999|RFC 3339"):
        rs.RunRecord.from_json(doc)


def _chain(levels: int) -> rs.PredictionTrieNode:
    metrics = rs.PredictionMetrics(sample_count=1, mean=1.0, p50=1.0, p90=1.0, p95=1.0)
    leaf = rs.LlmCallPrediction(remaining_calls=metrics, interarrival_ms=metrics, output_tokens=metrics)
    node = rs.PredictionTrieNode(name="leaf", predictions_by_call_index={1: leaf}, predictions_any_index=leaf)
    for _ in range(levels):
        node = rs.PredictionTrieNode(name="inner", children={"next": node})
    return node


def test_a_trie_is_refused_while_built_when_readers_could_not_read_it_back() -> None:
    deepest = rs.TrieEnvelope(workflow_name="w", root=_chain(61))
    assert rs.TrieEnvelope.from_json(deepest.to_json()) == deepest
    assert pickle.loads(pickle.dumps(deepest)) == deepest
    with pytest.raises(ValueError, match="children.*at most 61 levels"):
        _chain(62)
    assert deepest.root.replace(name="renamed").name == "renamed"  # children unchanged: no walk
    with pytest.raises(ValueError, match="children.*at most 61 levels"):
        rs.PredictionTrieNode(name="top").replace(children={"c": deepest.root})


def test_json_fields_nest_only_as_deep_as_readers_accept() -> None:
    value: Any = 0
    for _ in range(120):
        value = [value]
    run = rs.RunRecord(agent_id="a", calls=[
        rs.CallRecord(kind="llm", name="n", annotated_request=value),
        rs.CallRecord(kind="tool", name="t", metadata_snapshot=rs.MetadataEnvelope(
            run_id=uuid.uuid4(), agent_id="a", extensions=value)),
    ])
    assert rs.RunRecord.from_json(run.to_json()) == run
    assert rs.RunRecord.from_dict(run.to_dict()) == run
    with pytest.raises(ValueError, match=r"^CallRecord\.annotated_request: nested more than 120 levels"):
        rs.CallRecord(kind="llm", name="n", annotated_request=[value])
    cycle: dict[str, Any] = {}
    cycle["self"] = cycle
    with pytest.raises(ValueError, match=r"^CallRecord\.annotated_request: .*cycle\)$"):
        rs.CallRecord(kind="llm", name="n", annotated_request=cycle)


def test_unknown_fields_keep_values_no_fixed_size_number_could_hold() -> None:
    """A newer writer's fields survive as written: big integers, 1e400, escaped surrogates."""
    unknown = ('"big":123456789012345678901234567890,"neg":-9223372036854775809,'
               '"huge":1e400,"sur":"\\ud800","nested":{"x":[1,2.50,{"y":null}]}')
    doc = ('{"id":"0191c0de-0000-7000-8000-000000000001","agent_id":"a","calls":[],'
           '"started_at":"2026-03-31T12:00:00Z",' + unknown + '}')
    run = rs.RunRecord.from_json(doc)
    written = run.to_json()
    for field in unknown.replace("{", ",").split(","):
        if ":" in field and not field.startswith('"x"'):
            assert field.rstrip("}") in written, field
    assert json.loads(written) == json.loads(doc)
    assert rs.RunRecord.from_json(written) == run

    stats_doc = ('{"count":0,"mean":0.0,"m2":0.0,"digest":{"centroids":[],"max_size":100,"sum":0.0,'
                 '"count":0.0,"max":0.0,"min":0.0},"future":12345678901234567890123}')
    holding_nan = rs.RunningStats.from_json(stats_doc).replace(mean=math.nan)  # pickled field by field
    back = pickle.loads(pickle.dumps(holding_nan))
    assert '"future":12345678901234567890123' in back.replace(mean=0.0).to_json()


def test_json_fields_take_what_json_dumps_takes() -> None:
    request = {"z": 10**30, "a": [-(2**70), 1.5, None, True], "m": {"k": "v"}}
    call = rs.CallRecord(kind="llm", name="n", annotated_request=request)
    assert call.annotated_request == request
    assert call.to_json().count('"annotated_request":' + json.dumps(request, separators=(",", ":"))) == 1, \
        "integers of any size, keys in the order given"
    assert rs.CallRecord.from_dict(call.to_dict()) == call
    assert rs.CallRecord.from_json(call.to_json()).annotated_request == request

    class Loud(int):
        def __str__(self) -> str:
            return "not a number"

        def __index__(self) -> int:
            return 5

    assert rs.CallRecord(kind="llm", name="n", annotated_request=[Loud(10**30)]).annotated_request == [10**30]


def test_a_nested_record_given_as_a_dict_names_where_it_sits() -> None:
    call = rs.CallRecord(kind="llm", name="x")
    with pytest.raises(ValueError, match=r"RunRecord\.calls\[2\]: CallRecord\.prompt_tokens"):
        rs.RunRecord(agent_id="a", calls=[call, call, {"kind": "llm", "name": "x", "prompt_tokens": -1}])
    with pytest.raises(TypeError, match=r"RunRecord\.calls\[0\]: .*unexpected keyword argument 'nope'"):
        rs.RunRecord(agent_id="a", calls=[{"kind": "llm", "name": "x", "nope": 1}])


def test_text_with_a_lone_surrogate_is_a_bad_value() -> None:
    with pytest.raises(ValueError, match="agent_id: not valid Unicode"):
        rs.RunRecord(agent_id="\ud800")
    with pytest.raises(ValueError, match=r'annotated_request\["k"\]: not valid Unicode'):
        rs.CallRecord(kind="llm", name="x", annotated_request={"k": "\udfff"})
    with pytest.raises(SerializationError, match="lone surrogate"):
        rs.RunRecord.from_json('"\ud800"')


def test_json_fields_take_any_sequence_but_text() -> None:
    import collections

    call = rs.CallRecord(kind="llm", name="x", annotated_request=collections.deque([1, range(2)]))
    assert call.annotated_request == [1, [0, 1]]
    with pytest.raises(TypeError, match="annotated_request"):
        rs.CallRecord(kind="llm", name="x", annotated_request=b"bytes")


def test_a_dict_changed_while_it_is_converted_is_read_as_it_was() -> None:
    """Python code run during the conversion (a mapping's items()) may change
    the dict being read: the snapshot is kept, and nothing panics."""
    import collections.abc

    outer: dict[str, Any] = {}

    class Meddling(collections.abc.Mapping[str, int]):
        def __getitem__(self, key: str) -> int:
            return 1

        def __iter__(self) -> Any:
            return iter(["k"])

        def __len__(self) -> int:
            return 1

        def items(self) -> Any:
            outer["added"] = 3
            return [("k", 1)]

    outer.update(a=Meddling(), b=2)
    call = rs.CallRecord(kind="llm", name="n", annotated_request=outer)
    assert call.annotated_request == {"a": {"k": 1}, "b": 2}
