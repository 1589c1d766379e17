"""Property tests: any valid model survives JSON, dicts, pickling and every backend."""

from __future__ import annotations

import json
import pickle
import uuid
from datetime import timezone
from functools import reduce
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import relay_store as rs
from relay_store import StorageBackend

PROPERTY_SETTINGS = settings(
    max_examples=50,
    deadline=None,
    # The backend fixture is deliberately shared by the examples of one test:
    # every example writes under a fresh agent id, so they cannot interfere.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# ---------------------------------------------------------------------------
# scalar strategies

texts = st.text(max_size=20)
u32 = st.integers(min_value=0, max_value=2**32 - 1)
u64 = st.integers(min_value=0, max_value=2**64 - 1)
usize = u64
finite = st.floats(allow_nan=False, allow_infinity=False)
moderate = st.floats(min_value=-1e9, max_value=1e9, allow_nan=False)
datetimes = st.datetimes(timezones=st.just(timezone.utc))
uuids = st.uuids()
uuid_inputs = uuids | uuids.map(str) | uuids.map(lambda u: str(u).upper())

json_values: st.SearchStrategy[Any] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | finite
    | texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=8,
)


def enum_inputs(cls: type[Any]) -> st.SearchStrategy[Any]:
    members = list(cls)
    return st.sampled_from(members) | st.sampled_from([m.value for m in members])


def optional(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | strategy


# ---------------------------------------------------------------------------
# model strategies, one per class

parallel_hints = st.builds(rs.ParallelHint, tool_name=texts, group_id=texts, explicit=st.booleans())

metadata_envelopes = st.builds(
    rs.MetadataEnvelope,
    run_id=uuid_inputs,
    agent_id=texts,
    parallel_hints=st.lists(parallel_hints, max_size=3),
    extensions=json_values,
)

call_records = st.builds(
    rs.CallRecord,
    kind=enum_inputs(rs.CallKind),
    name=texts,
    started_at=datetimes,
    ended_at=optional(datetimes),
    metadata_snapshot=optional(metadata_envelopes),
    output_tokens=optional(u32),
    prompt_tokens=optional(u32),
    total_tokens=optional(u32),
    model_name=optional(texts),
    tool_call_count=optional(u32),
    annotated_request=json_values,
    annotated_response=json_values,
)

run_records = st.builds(
    rs.RunRecord,
    id=uuid_inputs,
    agent_id=texts,
    calls=st.lists(call_records, max_size=3),
    started_at=datetimes,
    ended_at=optional(datetimes),
)

parallel_groups = st.builds(rs.ParallelGroup, group_id=texts, tool_names=st.lists(texts, max_size=4))

execution_plans = st.builds(
    rs.ExecutionPlan,
    agent_id=texts,
    parallel_groups=st.lists(parallel_groups, max_size=3),
    metadata_template=metadata_envelopes,
)

prediction_metrics = st.builds(
    rs.PredictionMetrics, sample_count=u32, mean=finite, p50=finite, p90=finite, p95=finite
)

llm_call_predictions = st.builds(
    rs.LlmCallPrediction,
    remaining_calls=prediction_metrics,
    interarrival_ms=prediction_metrics,
    output_tokens=prediction_metrics,
    latency_sensitivity=optional(u32),
)

trie_nodes: st.SearchStrategy[rs.PredictionTrieNode] = st.recursive(
    st.builds(rs.PredictionTrieNode, name=texts),
    lambda children: st.builds(
        rs.PredictionTrieNode,
        name=texts,
        children=st.dictionaries(texts, children, max_size=3),
        predictions_by_call_index=st.dictionaries(u32, llm_call_predictions, max_size=2),
        predictions_any_index=optional(llm_call_predictions),
    ),
    max_leaves=6,
)

generated_ats = st.sampled_from(
    ["2026-03-31T12:00:00+00:00", "2026-03-31T12:00:00Z", "2026-03-31T12:00:00.123456789Z"]
) | datetimes.map(lambda d: d.isoformat())

trie_envelopes = st.builds(
    rs.TrieEnvelope,
    version=st.just("1.0") | texts,
    generated_at=generated_ats,
    workflow_name=texts,
    root=trie_nodes,
)


def _fold_samples(samples: list[float]) -> rs.RunningStats:
    return reduce(lambda acc, x: acc.add_sample(x), samples, rs.RunningStats())


_sampled_stats = st.lists(moderate, max_size=12).map(_fold_samples)
running_stats = _sampled_stats | st.tuples(_sampled_stats, _sampled_stats).map(
    lambda pair: pair[0].merge(pair[1])
)

node_accumulators = st.builds(
    rs.NodeAccumulators,
    remaining_calls=st.dictionaries(u32, running_stats, max_size=2),
    interarrival_ms=st.dictionaries(u32, running_stats, max_size=2),
    output_tokens=st.dictionaries(u32, running_stats, max_size=2),
    sensitivity=st.dictionaries(u32, running_stats, max_size=2),
    all_remaining_calls=running_stats,
    all_interarrival_ms=running_stats,
    all_output_tokens=running_stats,
    all_sensitivity=running_stats,
)

accumulator_states = st.builds(
    rs.AccumulatorState,
    nodes=st.dictionaries(st.lists(texts, min_size=1, max_size=3).map("/".join), node_accumulators, max_size=2),
)

tokenization_metadata = st.builds(rs.TokenizationMetadata, model_family=texts, token_count=u32)
tool_schema_hashes = st.builds(rs.ToolSchemaHash, tool_name=texts, schema_hash=texts)

prompt_blocks = st.builds(
    rs.PromptBlock,
    span_id=texts,
    sequence_index=u32,
    role=enum_inputs(rs.PromptRole),
    content=st.text(max_size=200),
    content_type=enum_inputs(rs.BlockContentType),
    provenance=enum_inputs(rs.ProvenanceLabel),
    sensitivity=enum_inputs(rs.SensitivityLabel),
    token_metadata=optional(tokenization_metadata),
)

prompt_irs = st.builds(
    rs.PromptIR,
    ir_id=uuid_inputs,
    blocks=st.lists(prompt_blocks, max_size=3),
    tool_schema_hashes=optional(st.lists(tool_schema_hashes, max_size=3)),
    structured_output_schema_id=optional(texts),
    source_request_hash=optional(texts),
    created_at=datetimes,
)

block_stability_scores = st.builds(
    rs.BlockStabilityScore,
    span_id=texts,
    classification=enum_inputs(rs.StabilityClass),
    score=finite,
    confidence=finite,
    observation_count=u32,
)

stability_results = st.builds(
    rs.StabilityAnalysisResult,
    scores=st.lists(block_stability_scores, max_size=3),
    stable_prefix_length=usize,
    stable_prefix_fingerprint=optional(texts),
    total_observations=u32,
)

STRATEGIES: dict[str, st.SearchStrategy[Any]] = {
    "RunRecord": run_records,
    "CallRecord": call_records,
    "ParallelHint": parallel_hints,
    "MetadataEnvelope": metadata_envelopes,
    "ParallelGroup": parallel_groups,
    "ExecutionPlan": execution_plans,
    "PredictionMetrics": prediction_metrics,
    "LlmCallPrediction": llm_call_predictions,
    "PredictionTrieNode": trie_nodes,
    "TrieEnvelope": trie_envelopes,
    "RunningStats": running_stats,
    "NodeAccumulators": node_accumulators,
    "AccumulatorState": accumulator_states,
    "TokenizationMetadata": tokenization_metadata,
    "ToolSchemaHash": tool_schema_hashes,
    "PromptBlock": prompt_blocks,
    "PromptIR": prompt_irs,
    "BlockStabilityScore": block_stability_scores,
    "StabilityAnalysisResult": stability_results,
}


def test_every_model_class_has_a_strategy() -> None:
    exported = {
        name
        for name in rs.__all__
        if isinstance(getattr(rs, name), type)
        and hasattr(getattr(rs, name), "from_json")
    }
    assert exported == set(STRATEGIES)


# ---------------------------------------------------------------------------
# serialisation round trips


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_round_trips(name: str) -> None:
    cls = getattr(rs, name)

    @PROPERTY_SETTINGS
    @given(STRATEGIES[name])
    def check(model: Any) -> None:
        assert type(model) is cls
        text = model.to_json()
        again = cls.from_json(text)
        assert again == model
        assert again.to_json() == text
        doc = model.to_dict()
        assert doc == json.loads(text)
        assert cls.from_dict(doc) == model
        assert cls.from_json(text.encode("utf-8")) == model
        assert pickle.loads(pickle.dumps(model)) == model
        assert model.replace() == model
        # Equal models hash alike, however they were made.
        for same in (again, cls.from_dict(doc), pickle.loads(pickle.dumps(model)), model.replace()):
            assert hash(same) == hash(model)

    check()


# ---------------------------------------------------------------------------
# every backend stores and returns any valid value unchanged


def fresh_agent(tail: str) -> str:
    """Unique per example (backends outlive examples), ending in generated
    text, so that ":", spaces and any code point reach the keys."""
    return f"prop-{uuid.uuid4()}{tail}"


@PROPERTY_SETTINGS
@given(record=run_records, tail=texts)
async def test_runs_survive_every_backend(backend: StorageBackend, record: rs.RunRecord, tail: str) -> None:
    agent_id = fresh_agent(tail)
    record = record.replace(agent_id=agent_id)
    await backend.store_run(record)
    listed = await backend.list_runs(agent_id)
    assert listed == [record]
    assert listed[0].to_json() == record.to_json()


@PROPERTY_SETTINGS
@given(plan=execution_plans, tail=texts)
async def test_plans_survive_every_backend(backend: StorageBackend, plan: rs.ExecutionPlan, tail: str) -> None:
    plan = plan.replace(agent_id=fresh_agent(tail))
    await backend.store_plan(plan)
    loaded = await backend.load_plan(plan.agent_id)
    assert loaded == plan
    assert loaded is not None and loaded.to_json() == plan.to_json()


@PROPERTY_SETTINGS
@given(envelope=trie_envelopes, tail=texts)
async def test_tries_survive_every_backend(
    backend: StorageBackend, envelope: rs.TrieEnvelope, tail: str
) -> None:
    agent_id = fresh_agent(tail)
    await backend.store_trie(agent_id, envelope)
    loaded = await backend.load_trie(agent_id)
    assert loaded == envelope
    assert loaded is not None and loaded.to_json() == envelope.to_json()


@PROPERTY_SETTINGS
@given(state=accumulator_states, tail=texts)
async def test_accumulators_survive_every_backend(
    backend: StorageBackend, state: rs.AccumulatorState, tail: str
) -> None:
    agent_id = fresh_agent(tail)
    await backend.store_accumulators(agent_id, state)
    loaded = await backend.load_accumulators(agent_id)
    assert loaded == state
    assert loaded is not None and loaded.to_json() == state.to_json()


@PROPERTY_SETTINGS
@given(observations=st.lists(prompt_irs, max_size=4), tail=texts)
async def test_observations_survive_every_backend(
    backend: StorageBackend, observations: list[rs.PromptIR], tail: str
) -> None:
    agent_id = fresh_agent(tail)
    await backend.store_observations(agent_id, observations)
    loaded = await backend.load_observations(agent_id)
    assert loaded == observations
    assert loaded is not None
    assert [o.to_json() for o in loaded] == [o.to_json() for o in observations]


@PROPERTY_SETTINGS
@given(result=stability_results, tail=texts)
async def test_stability_survives_every_backend(
    backend: StorageBackend, result: rs.StabilityAnalysisResult, tail: str
) -> None:
    agent_id = fresh_agent(tail)
    await backend.store_stability(agent_id, result)
    loaded = await backend.load_stability(agent_id)
    assert loaded == result
    assert loaded is not None and loaded.to_json() == result.to_json()


# ---------------------------------------------------------------------------
# JSON fields compare as the Python values they hold

any_json: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers() | finite | texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=8,
)


def _respelled(value: Any) -> Any:
    """An equal Python value, spelled differently in JSON where it can be."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int) and abs(value) < 2**1000 and float(value) == value:
        return float(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [_respelled(v) for v in value]
    if isinstance(value, dict):
        return {k: _respelled(v) for k, v in reversed(list(value.items()))}
    return value


def _envelope(extensions: Any) -> rs.MetadataEnvelope:
    return rs.MetadataEnvelope(run_id=uuid.UUID(int=7), agent_id="a", extensions=extensions)


@settings(max_examples=300, deadline=None)
@given(a=any_json, b=any_json)
def test_json_fields_are_equal_exactly_when_python_finds_them_equal(a: Any, b: Any) -> None:
    for x, y in ((a, b), (a, _respelled(a)), (b, _respelled(b))):
        assert (_envelope(x) == _envelope(y)) is (x == y), (x, y)
        assert (_envelope(x).to_dict() == _envelope(y).to_dict()) is (x == y), (x, y)
        if x == y:
            assert hash(_envelope(x)) == hash(_envelope(y)), (x, y)


# ---------------------------------------------------------------------------
# views read as the list or dict they stand for

indices = st.integers(min_value=-12, max_value=12) | st.integers(min_value=-(2**70), max_value=2**70)
slice_bounds = st.none() | indices
slices = st.builds(slice, slice_bounds, slice_bounds, st.none() | indices.filter(lambda i: i != 0))


def outcome(read: Any) -> tuple[str, Any]:
    """What a read gives: its value, or the type of exception it raised."""
    try:
        return ("value", read())
    except Exception as e:  # noqa: BLE001 - the type is what is compared
        return ("raised", type(e))


@settings(max_examples=300, deadline=None)
@given(names=st.lists(texts, max_size=8), index=indices, part=slices, start=indices, stop=indices, data=st.data())
def test_a_list_view_reads_as_the_list_it_stands_for(
    names: list[str], index: int, part: slice, start: int, stop: int, data: st.DataObject
) -> None:
    # Mostly an item the list holds, so that searches find something.
    probe = data.draw(st.sampled_from(names) | texts if names else texts)
    view = rs.ParallelGroup(group_id="g", tool_names=names).tool_names
    reads = {
        "len": lambda x: len(x),
        "index": lambda x: x[index],
        "slice": lambda x: list(x[part]),
        "iter": lambda x: list(iter(x)),
        "reversed": lambda x: list(reversed(x)),
        "contains": lambda x: probe in x,
        "find": lambda x: x.index(probe),
        "find in range": lambda x: x.index(probe, start, stop),
        "count": lambda x: x.count(probe),
        "add": lambda x: x + [probe],
        "radd": lambda x: [probe] + x,
        "equal": lambda x: x == names and names == x,
        "repr": lambda x: repr(x),
    }
    for name, read in reads.items():
        assert outcome(lambda: read(view)) == outcome(lambda: read(names)), name


@settings(max_examples=300, deadline=None)
@given(keys=st.lists(st.integers(min_value=0, max_value=50) | u32, max_size=6, unique=True), data=st.data())
def test_a_map_view_reads_as_the_dict_it_stands_for(keys: list[int], data: st.DataObject) -> None:
    others = st.integers(min_value=-3, max_value=2**33) | st.floats(allow_nan=False) | texts
    # Mostly a key the map holds, as an int or a float equal to it.
    held = st.sampled_from(keys).flatmap(lambda k: st.sampled_from([k, float(k)])) if keys else others
    probe = data.draw(held | others)
    metrics = rs.PredictionMetrics(sample_count=1, mean=1.0, p50=1.0, p90=1.0, p95=1.0)
    leaf = rs.LlmCallPrediction(
        remaining_calls=metrics, interarrival_ms=metrics, output_tokens=metrics, latency_sensitivity=1
    )
    # Each key its own value, so a lookup that lands on another entry shows.
    given_map = {k: leaf.replace(latency_sensitivity=k) for k in keys}
    view = rs.PredictionTrieNode(name="n", predictions_by_call_index=given_map).predictions_by_call_index
    plain = dict(sorted(given_map.items()))  # a view reads in key order
    reads = {
        "len": lambda x: len(x),
        "get item": lambda x: x[probe],
        "get": lambda x: x.get(probe, "missing"),
        "contains": lambda x: probe in x,
        "keys": lambda x: list(x),
        "items": lambda x: list(x.items()),
        "values": lambda x: list(x.values()),
        "reversed": lambda x: list(reversed(x)),
        "equal": lambda x: x == plain and plain == x,
        "union": lambda x: x | {probe: leaf} if isinstance(probe, int) else x | {},
        "repr": lambda x: repr(x),
    }
    for name, read in reads.items():
        assert outcome(lambda: read(view)) == outcome(lambda: read(plain)), name
