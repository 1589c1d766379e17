"""The semantics of SPEC §3, against every backend (see conftest.BACKEND_FACTORIES)."""

from __future__ import annotations

import asyncio
import inspect
import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any
from unittest.mock import AsyncMock, create_autospec

import pytest

import relay_store as rs
from relay_store import SerializationError, StorageBackend, StorageError
from samples import (
    FUTURE_DOCS,
    T0,
    accumulators,
    call,
    metrics,
    plan,
    prompt,
    run,
    stability,
    stats,
    trie,
    wide_trie,
)

NAN = float("nan")
INF = float("inf")


def agent() -> str:
    """A fresh agent id, so that no test sees another test's data."""
    return f"agent-{uuid.uuid4()}"


def runs_of(agent_id: str, n: int) -> list[rs.RunRecord]:
    # Ids are random and start times go backwards, so that neither sorting by
    # id nor by time reproduces the index order.
    return [
        rs.RunRecord(
            id=uuid.uuid4(),
            agent_id=agent_id,
            calls=[call(name=f"call-{i}")],
            started_at=T0 - timedelta(minutes=i),
        )
        for i in range(n)
    ]


# ---------------------------------------------------------------------------
# the protocol


async def test_backend_satisfies_the_protocol(backend: StorageBackend) -> None:
    assert isinstance(backend, rs.StorageBackend)


def test_plain_objects_do_not_satisfy_the_protocol() -> None:
    assert not isinstance(object(), rs.StorageBackend)
    assert not isinstance(rs.RunRecord(agent_id="a"), rs.StorageBackend)


async def test_every_call_returns_a_real_coroutine(backend: StorageBackend) -> None:
    a = agent()
    calls: list[Awaitable[Any]] = [
        backend.store_run(run(a)),
        backend.list_runs(a),
        backend.store_plan(plan(a)),
        backend.load_plan(a),
        backend.store_trie(a, trie()),
        backend.load_trie(a),
        backend.store_accumulators(a, accumulators()),
        backend.load_accumulators(a),
        backend.store_observations(a, [prompt()]),
        backend.load_observations(a),
        backend.store_stability(a, stability()),
        backend.load_stability(a),
    ]
    for pending in calls:
        assert inspect.iscoroutine(pending) and asyncio.iscoroutine(pending), type(pending)
        await pending
    closing = backend.close()
    assert inspect.iscoroutine(closing)
    await closing


STORAGE_METHODS = [
    "store_run", "list_runs", "store_plan", "load_plan", "store_trie", "load_trie",
    "store_accumulators", "load_accumulators", "store_observations", "load_observations",
    "store_stability", "load_stability", "close", "__aenter__", "__aexit__",
]


async def test_every_method_is_a_coroutine_function(backend: StorageBackend) -> None:
    # What inspect says decides whether mocks, frameworks and decorators await.
    for name in STORAGE_METHODS:
        method = getattr(backend, name)
        assert inspect.iscoroutinefunction(method), name
        assert inspect.iscoroutinefunction(getattr(type(backend), name)), name
        assert method.__qualname__ == f"{type(backend).__name__}.{name}"
        if not name.startswith("__"):
            assert method.__doc__, name  # help() says what each one does
    assert inspect.iscoroutinefunction(rs.RedisBackend.connect)
    assert list(inspect.signature(rs.RedisBackend.connect).parameters) == [
        "url", "key_prefix", "connect_timeout", "response_timeout", "run_cache_bytes",
        "client_tracking",
    ]


async def test_an_autospec_mock_of_a_backend_is_awaitable(backend: StorageBackend) -> None:
    mock = create_autospec(type(backend), instance=True)
    mock.list_runs.return_value = [run(agent())]
    assert isinstance(mock.store_run, AsyncMock)
    await mock.store_run(run(agent()))
    assert len(await mock.list_runs(agent())) == 1
    mock.store_run.assert_awaited_once()
    async with mock:
        pass
    mock.__aexit__.assert_awaited_once()


# ---------------------------------------------------------------------------
# runs


async def test_list_runs_of_unknown_agent_is_empty(backend: StorageBackend) -> None:
    assert await backend.list_runs(agent()) == []


async def test_store_run_then_list(backend: StorageBackend) -> None:
    a = agent()
    record = run(a)
    assert await backend.store_run(record) is None
    listed = await backend.list_runs(a)
    assert listed == [record]
    assert isinstance(listed, list)
    assert isinstance(listed[0], rs.RunRecord)
    assert listed[0].to_json() == record.to_json()


async def test_list_runs_in_index_order(backend: StorageBackend) -> None:
    a = agent()
    records = runs_of(a, 12)
    for record in records:
        await backend.store_run(record)
    assert await backend.list_runs(a) == records


async def test_store_run_is_idempotent_by_run_id(backend: StorageBackend) -> None:
    a = agent()
    first, second, third = runs_of(a, 3)
    await backend.store_run(first)
    await backend.store_run(second)
    await backend.store_run(first)
    updated = first.replace(ended_at=T0 + timedelta(hours=1), calls=[])
    await backend.store_run(updated)
    await backend.store_run(third)
    await backend.store_run(third)
    listed = await backend.list_runs(a)
    assert [r.id for r in listed] == [first.id, second.id, third.id]
    assert listed == [updated, second, third]


async def test_runs_are_isolated_between_agents(backend: StorageBackend) -> None:
    a, b = agent(), agent()
    runs_a, runs_b = runs_of(a, 3), runs_of(b, 2)
    for x, y in zip(runs_a, runs_b + [None]):
        await backend.store_run(x)
        if y is not None:
            await backend.store_run(y)
    assert await backend.list_runs(a) == runs_a
    assert await backend.list_runs(b) == runs_b
    assert await backend.list_runs(a + "x") == []
    assert await backend.list_runs(a[:-1]) == []


async def test_same_run_id_under_two_agents_is_two_runs(backend: StorageBackend) -> None:
    a, b = agent(), agent()
    shared = uuid.uuid4()
    run_a = run(a, shared)
    run_b = run(b, shared).replace(calls=[])
    await backend.store_run(run_a)
    await backend.store_run(run_b)
    assert await backend.list_runs(a) == [run_a]
    assert await backend.list_runs(b) == [run_b]


async def test_agent_ids_with_separators_stay_apart(backend: StorageBackend) -> None:
    # Redis keys join agent ids with ":"; such ids must still be isolated.
    a, b = "team:alpha", "team"
    await backend.store_run(run(a))
    await backend.store_plan(plan(a))
    assert await backend.list_runs(b) == []
    assert await backend.load_plan(b) is None
    assert await backend.load_plan("team:alpha:x") is None
    await backend.store_plan(plan("ünïcødé agent ✓"))
    assert await backend.load_plan("ünïcødé agent ✓") == plan("ünïcødé agent ✓")


async def test_a_reader_sees_one_whole_value_or_the_other(backend: StorageBackend) -> None:
    # SPEC §3: concurrent readers see the old value or the new one, never a
    # mix. Wide tries, so that Redis writes each from two halves.
    a = agent()
    first, second = wide_trie("first"), wide_trie("second")
    await backend.store_trie(a, first)

    async def write() -> None:
        for i in range(30):
            await backend.store_trie(a, second if i % 2 == 0 else first)

    async def read() -> list[Any]:
        return [await backend.load_trie(a) for _ in range(30)]

    _, *reads = await asyncio.gather(write(), read(), read())
    seen = [value for values in reads for value in values]
    assert len(seen) == 60 and all(value in (first, second) for value in seen)


async def test_the_empty_agent_id_is_an_agent_like_any_other(backend: StorageBackend) -> None:
    # SPEC puts no lower bound on an agent id; "" gets keys of its own.
    record = run("")
    await backend.store_run(record)
    await backend.store_plan(plan(""))
    await backend.store_trie("", trie())
    assert await backend.list_runs("") == [record]
    assert await backend.load_plan("") == plan("")
    assert await backend.load_trie("") == trie()
    assert await backend.list_runs(":") == [] and await backend.load_plan(" ") is None


# ---------------------------------------------------------------------------
# whole values

KINDS: dict[str, tuple[Callable[[], Any], Callable[[], Any]]] = {
    "trie": (lambda: trie("first"), lambda: trie("second")),
    "accumulators": (
        accumulators,
        lambda: rs.AccumulatorState(nodes={"other": rs.NodeAccumulators()}),
    ),
    "observations": (lambda: [prompt(), prompt(uuid.uuid4())], lambda: [prompt()]),
    "stability": (lambda: stability(1), lambda: stability(2)),
}


def store_of(backend: StorageBackend, kind: str) -> Callable[[str, Any], Awaitable[None]]:
    return {
        "trie": backend.store_trie,
        "accumulators": backend.store_accumulators,
        "observations": backend.store_observations,
        "stability": backend.store_stability,
    }[kind]


def load_of(backend: StorageBackend, kind: str) -> Callable[[str], Awaitable[Any]]:
    return {
        "trie": backend.load_trie,
        "accumulators": backend.load_accumulators,
        "observations": backend.load_observations,
        "stability": backend.load_stability,
    }[kind]


@pytest.mark.parametrize("kind", sorted(KINDS))
async def test_store_load_replace(backend: StorageBackend, kind: str) -> None:
    make_first, make_second = KINDS[kind]
    store, load = store_of(backend, kind), load_of(backend, kind)
    a, b = agent(), agent()
    assert await load(a) is None
    first = make_first()
    assert await store(a, first) is None
    assert await load(a) == first
    assert await load(b) is None  # isolated
    second = make_second()
    await store(a, second)
    assert await load(a) == second  # replaced whole, not merged
    await store(b, first)
    assert await load(a) == second
    assert await load(b) == first


async def test_store_load_plan(backend: StorageBackend) -> None:
    a, b = agent(), agent()
    assert await backend.load_plan(a) is None
    first = plan(a)
    assert await backend.store_plan(first) is None
    assert await backend.load_plan(a) == first
    assert await backend.load_plan(b) is None
    # keyed by plan.agent_id
    await backend.store_plan(plan(b))
    assert await backend.load_plan(b) == plan(b)
    second = first.replace(parallel_groups=[])
    await backend.store_plan(second)
    assert await backend.load_plan(a) == second
    assert await backend.load_plan(b) == plan(b)


async def test_kinds_do_not_interfere(backend: StorageBackend) -> None:
    a = agent()
    await backend.store_trie(a, trie())
    assert await backend.load_plan(a) is None
    assert await backend.load_accumulators(a) is None
    assert await backend.load_observations(a) is None
    assert await backend.load_stability(a) is None
    assert await backend.list_runs(a) == []
    await backend.store_plan(plan(a))
    await backend.store_accumulators(a, accumulators())
    await backend.store_observations(a, [prompt()])
    await backend.store_stability(a, stability())
    await backend.store_run(run(a))
    assert await backend.load_trie(a) == trie()
    assert await backend.load_plan(a) == plan(a)
    assert await backend.load_accumulators(a) == accumulators()
    assert await backend.load_observations(a) == [prompt()]
    assert await backend.load_stability(a) == stability()
    assert len(await backend.list_runs(a)) == 1


async def test_observations_accept_any_sequence(backend: StorageBackend) -> None:
    a = agent()
    first, second = prompt(), prompt(uuid.uuid4())
    await backend.store_observations(a, (first, second))
    loaded = await backend.load_observations(a)
    assert loaded == [first, second]
    assert isinstance(loaded, list)
    loaded.clear()  # a new list each time
    assert await backend.load_observations(a) == [first, second]
    await backend.store_observations(a, [])
    assert await backend.load_observations(a) == []


@pytest.mark.parametrize("text", [b"", bytearray(), "", "abc"])
async def test_observations_are_never_text(backend: StorageBackend, text: Any) -> None:
    a = agent()
    await backend.store_observations(a, [prompt()])
    with pytest.raises(TypeError, match="sequence of PromptIR"):
        await backend.store_observations(a, text)
    assert await backend.load_observations(a) == [prompt()], "nothing was replaced"


async def test_observations_keep_order_and_duplicates(backend: StorageBackend) -> None:
    a = agent()
    items = [prompt(uuid.uuid4()) for _ in range(5)]
    items.append(items[0])
    await backend.store_observations(a, items)
    assert await backend.load_observations(a) == items


async def test_the_caller_sequence_is_not_kept(backend: StorageBackend) -> None:
    a = agent()
    items = [prompt()]
    await backend.store_observations(a, items)
    items.append(prompt(uuid.uuid4()))
    assert await backend.load_observations(a) == [prompt()]


@pytest.mark.parametrize("name", sorted(FUTURE_DOCS))
async def test_unknown_fields_survive_a_store(backend: StorageBackend, name: str) -> None:
    cls, doc = FUTURE_DOCS[name]
    model = cls.from_json(json.dumps(doc))
    a = agent()
    if name == "run":
        model = model.replace(agent_id=a)
        await backend.store_run(model)
        (loaded,) = await backend.list_runs(a)
    elif name == "plan":
        model = model.replace(agent_id=a)
        await backend.store_plan(model)
        loaded = await backend.load_plan(a)
    elif name == "prompt":
        await backend.store_observations(a, [model])
        (loaded,) = await backend.load_observations(a) or [None]
    else:
        kind = {"trie": "trie", "accumulators": "accumulators", "stability": "stability"}[name]
        await store_of(backend, kind)(a, model)
        loaded = await load_of(backend, kind)(a)
    assert loaded == model
    assert json.loads(loaded.to_json()) == json.loads(model.to_json())
    expected = dict(doc)
    if "agent_id" in expected:
        expected["agent_id"] = a
    assert json.loads(loaded.to_json()) == expected


# ---------------------------------------------------------------------------
# never write what cannot be read back


def _bad_stats() -> rs.RunningStats:
    return rs.RunningStats(count=1, mean=NAN)


NON_FINITE: dict[str, Callable[[], Any]] = {
    "trie": lambda: rs.TrieEnvelope(
        workflow_name="bad",
        root=rs.PredictionTrieNode(
            name="root",
            predictions_by_call_index={
                1: rs.LlmCallPrediction(
                    remaining_calls=metrics(),
                    interarrival_ms=rs.PredictionMetrics(
                        sample_count=1, mean=INF, p50=1.0, p90=1.0, p95=1.0
                    ),
                    output_tokens=metrics(),
                )
            },
        ),
    ),
    "accumulators": lambda: rs.AccumulatorState(
        nodes={"n": rs.NodeAccumulators(all_output_tokens=_bad_stats())}
    ),
    "stability": lambda: stability().replace(
        scores=[stability().scores[0].replace(confidence=-INF)]
    ),
}


@pytest.mark.parametrize("kind", sorted(NON_FINITE))
async def test_non_finite_is_refused_and_nothing_written(
    backend: StorageBackend, kind: str
) -> None:
    store, load = store_of(backend, kind), load_of(backend, kind)
    a, b = agent(), agent()
    bad = NON_FINITE[kind]()
    # Word for word the reference's message, which names the agent (quoted
    # as JSON) and the path to the bad value.
    reference, odd_agent = rs.PyInMemoryBackend(), f'{a}\t"q"\u0301\x01é'
    with pytest.raises(SerializationError) as expected:
        await store_of(reference, kind)(odd_agent, bad)
    with pytest.raises(SerializationError) as got:
        await store(odd_agent, bad)
    assert str(got.value) == str(expected.value)
    assert str(got.value).startswith(f"cannot store {kind.replace('stability', 'stability result')} of agent ")
    assert json.dumps(odd_agent, ensure_ascii=False) in str(got.value)
    with pytest.raises(SerializationError):
        await store(b, bad)
    assert await load(b) is None
    good = KINDS[kind][0]()
    await store(a, good)
    with pytest.raises(SerializationError):
        await store(a, bad)
    assert await load(a) == good


async def test_non_finite_json_fields_never_reach_a_backend() -> None:
    # Plans and runs carry floats only in JSON fields, and those refuse NaN
    # and inf when the model is built, so no store can ever see one.
    good = plan(agent())
    with pytest.raises(ValueError, match=r'extensions\["x"\]: NaN cannot be represented'):
        good.metadata_template.replace(extensions={"x": NAN})
    with pytest.raises(ValueError, match=r"annotated_response\[1\]: inf cannot be represented"):
        call().replace(annotated_response=[1.0, INF])


async def test_a_number_beyond_float_range_from_another_writer_is_kept_verbatim(
    backend: StorageBackend,
) -> None:
    # Python reads 1e400 as inf, which a model refuses when built from
    # Python; text another writer stored is kept as it is, and stored back
    # as it is (not as null, not as a bare Infinity token).
    a = agent()
    doc = run(a).to_dict()
    doc["calls"][0]["annotated_request"] = {"x": "PLACEHOLDER", "y": [1]}
    record = rs.RunRecord.from_json(json.dumps(doc).replace('"PLACEHOLDER"', "1e400"))
    assert record.calls[0].annotated_request == {"x": INF, "y": [1]}
    await backend.store_run(record)
    assert await backend.list_runs(a) == [record]
    [back] = await backend.list_runs(a)
    assert '"annotated_request":{"x":1e400,"y":[1]}' in back.to_json()


async def test_infinite_sample_in_accumulators_is_refused(backend: StorageBackend) -> None:
    # An infinite sample poisons mean, m2 and the digest's sum and max at once.
    a = agent()
    s = rs.RunningStats(count=1, mean=-INF)
    with pytest.raises(SerializationError):
        await backend.store_accumulators(
            a, rs.AccumulatorState(nodes={"n": rs.NodeAccumulators(sensitivity={1: s})})
        )
    assert await backend.load_accumulators(a) is None


async def test_an_agent_id_with_a_lone_surrogate_is_a_value_error_everywhere(backend: StorageBackend) -> None:
    """No key can hold a lone surrogate: every backend refuses it alike, and
    nothing is stored under an id that Redis could never use."""
    bad = "agent-\ud800"
    calls: list[Callable[[], Awaitable[Any]]] = [
        lambda: backend.list_runs(bad),
        lambda: backend.load_plan(bad),
        lambda: backend.store_trie(bad, trie()),
        lambda: backend.load_trie(bad),
        lambda: backend.store_accumulators(bad, rs.AccumulatorState()),
        lambda: backend.load_accumulators(bad),
        lambda: backend.store_observations(bad, [prompt()]),
        lambda: backend.load_observations(bad),
        lambda: backend.store_stability(bad, stability()),
        lambda: backend.load_stability(bad),
    ]
    for make_call in calls:
        with pytest.raises(ValueError, match="^agent_id is not valid Unicode text"):
            await make_call()
    # Text beyond ASCII is fine: only the surrogate is refused.
    await backend.store_trie("agent-é-\U0001f600", trie())
    assert await backend.load_trie("agent-é-\U0001f600") == trie()


# ---------------------------------------------------------------------------
# wrong types


async def _error_of(call: Awaitable[Any]) -> BaseException:
    try:
        await call
    except Exception as e:  # noqa: BLE001 - the very error is what is compared
        return e
    raise AssertionError("the call did not fail")


async def test_bad_arguments_fail_when_awaited_exactly_as_the_reference_does(backend: StorageBackend) -> None:
    """Calling never raises (the call is a coroutine, as with `async def`);
    awaiting raises the reference backend's exception, word for word, and a
    closed backend says so before it looks at the arguments."""
    reference = rs.PyInMemoryBackend()
    a = agent()
    calls: list[Callable[[StorageBackend], Awaitable[Any]]] = [
        lambda b: b.store_run(run(a).to_dict()),  # type: ignore[arg-type]
        lambda b: b.store_plan(run(a)),  # type: ignore[arg-type]
        lambda b: b.store_trie(5, trie()),  # type: ignore[arg-type]
        lambda b: b.store_trie(a, trie().to_dict()),  # type: ignore[arg-type]
        lambda b: b.store_trie(None, None),  # type: ignore[arg-type]
        lambda b: b.store_accumulators(a, None),  # type: ignore[arg-type]
        lambda b: b.store_observations(a, [prompt(), 1]),  # type: ignore[list-item]
        lambda b: b.store_observations(a, "text"),
        lambda b: b.store_stability(None, stability()),  # type: ignore[arg-type]
        lambda b: b.list_runs(5),  # type: ignore[arg-type]
        lambda b: b.load_plan("x\ud800"),
        lambda b: b.load_observations(b"a"),  # type: ignore[arg-type]
    ]
    for make in calls:
        pending = make(backend)  # must not raise here
        got, expected = await _error_of(pending), await _error_of(make(reference))
        assert (type(got), str(got)) == (type(expected), str(expected))
    # Arguments are read when awaited: a call made before close() and
    # awaited after it finds the backend closed, and a list changed in
    # between is stored as it is then.
    before_close = [make(backend) for make in calls]
    reference_before_close = [make(reference) for make in calls]
    observations = [prompt(), 1]
    pending = backend.store_observations(a, observations)  # type: ignore[arg-type]
    reference_pending = reference.store_observations(a, observations)  # type: ignore[arg-type]
    observations.pop()
    await pending
    await reference_pending
    assert await backend.load_observations(a) == await reference.load_observations(a) == [prompt()]
    await backend.close()
    await reference.close()
    for got_call, expected_call in zip(before_close, reference_before_close):
        got, expected = await _error_of(got_call), await _error_of(expected_call)
        assert isinstance(got, StorageError)
        assert (type(got), str(got)) == (type(expected), str(expected))
    for make in calls:
        got, expected = await _error_of(make(backend)), await _error_of(make(reference))
        assert isinstance(got, StorageError)
        assert (type(got), str(got)) == (type(expected), str(expected))


async def test_wrong_types_raise_type_error_and_store_nothing(backend: StorageBackend) -> None:
    a = agent()
    bad_calls: list[tuple[Callable[[], Awaitable[Any]], str]] = [
        (lambda: backend.store_run(run(a).to_dict()), "record"),
        (lambda: backend.store_run(None), "record"),
        (lambda: backend.store_run(plan(a)), "record"),
        (lambda: backend.store_plan(run(a)), "plan"),
        (lambda: backend.store_plan(plan(a).to_json()), "plan"),
        (lambda: backend.store_trie(a, trie().to_dict()), "envelope"),
        (lambda: backend.store_trie(5, trie()), "agent_id"),
        (lambda: backend.store_accumulators(a, None), "state"),
        (lambda: backend.store_accumulators(a, stats()), "state"),
        (lambda: backend.store_observations(a, [run(a)]), "observations"),
        (lambda: backend.store_observations(a, [prompt(), 1]), "observations"),
        (lambda: backend.store_observations(a, prompt()), "observations"),
        (lambda: backend.store_observations(a, 5), "observations"),
        (lambda: backend.store_stability(a, {}), "result"),
        (lambda: backend.store_stability(None, stability()), "agent_id"),
        (lambda: backend.list_runs(5), "agent_id"),
        (lambda: backend.load_plan(None), "agent_id"),
        (lambda: backend.load_trie(b"a"), "agent_id"),
        (lambda: backend.load_accumulators(1.0), "agent_id"),
        (lambda: backend.load_observations([a]), "agent_id"),
        (lambda: backend.load_stability(object()), "agent_id"),
    ]
    for make_call, argument in bad_calls:
        with pytest.raises(TypeError, match=argument):
            await make_call()
    assert await backend.list_runs(a) == []
    assert await backend.load_plan(a) is None
    assert await backend.load_trie(a) is None
    assert await backend.load_accumulators(a) is None
    assert await backend.load_observations(a) is None
    assert await backend.load_stability(a) is None


async def test_keyword_arguments_use_the_spec_names(backend: StorageBackend) -> None:
    a = agent()
    record = run(a)
    await backend.store_run(record=record)
    assert await backend.list_runs(agent_id=a) == [record]
    await backend.store_plan(plan=plan(a))
    assert await backend.load_plan(agent_id=a) == plan(a)
    await backend.store_trie(agent_id=a, envelope=trie())
    assert await backend.load_trie(agent_id=a) == trie()
    await backend.store_accumulators(agent_id=a, state=accumulators())
    assert await backend.load_accumulators(agent_id=a) == accumulators()
    await backend.store_observations(agent_id=a, observations=[prompt()])
    assert await backend.load_observations(agent_id=a) == [prompt()]
    await backend.store_stability(agent_id=a, result=stability())
    assert await backend.load_stability(agent_id=a) == stability()


# ---------------------------------------------------------------------------
# asyncio integration


async def test_create_task(backend: StorageBackend) -> None:
    a = agent()
    record = run(a)
    task = asyncio.create_task(backend.store_run(record))
    assert await task is None
    listed = await asyncio.create_task(backend.list_runs(a))
    assert listed == [record]
    assert await asyncio.create_task(backend.load_plan(a)) is None


async def test_gather(backend: StorageBackend) -> None:
    a = agent()
    records = runs_of(a, 25)
    await asyncio.gather(*(backend.store_run(r) for r in records))
    listed = await backend.list_runs(a)
    assert len(listed) == 25
    assert {r.id for r in listed} == {r.id for r in records}
    assert sorted(listed, key=lambda r: str(r.id)) == sorted(records, key=lambda r: str(r.id))

    agents = [agent() for _ in range(10)]
    await asyncio.gather(
        *(backend.store_trie(x, trie(x)) for x in agents),
        *(backend.store_stability(x, stability(i)) for i, x in enumerate(agents)),
    )
    tries, results = await asyncio.gather(
        asyncio.gather(*(backend.load_trie(x) for x in agents)),
        asyncio.gather(*(backend.load_stability(x) for x in agents)),
    )
    assert tries == [trie(x) for x in agents]
    assert results == [stability(i) for i in range(10)]


async def test_concurrent_duplicate_stores_index_once(backend: StorageBackend) -> None:
    a = agent()
    record = run(a)
    await asyncio.gather(*(backend.store_run(record) for _ in range(20)))
    assert await backend.list_runs(a) == [record]


async def test_wait_for(backend: StorageBackend) -> None:
    a = agent()
    await asyncio.wait_for(backend.store_plan(plan(a)), timeout=10)
    assert await asyncio.wait_for(backend.load_plan(a), timeout=10) == plan(a)
    assert await asyncio.wait_for(backend.list_runs(a), timeout=10) == []


async def test_cancellation_leaves_the_backend_usable(backend: StorageBackend) -> None:
    a = agent()
    record = run(a)
    task = asyncio.create_task(backend.store_run(record))
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # Cancelled before its first step: it never started, on every backend
    # (a native call reads its arguments only at its first step).
    assert await backend.list_runs(a) == []

    # Cancel a burst of writes part way through.
    records = runs_of(a, 30)
    tasks = [asyncio.create_task(backend.store_run(r)) for r in records]
    await asyncio.sleep(0)
    for t in tasks[10:]:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    listed = await backend.list_runs(a)
    known = {r.id: r for r in [record, *records]}
    assert len({r.id for r in listed}) == len(listed)
    for r in listed:
        assert known[r.id] == r

    # A timed-out read does not poison later calls.
    try:
        await asyncio.wait_for(backend.load_trie(a), timeout=0)
    except TimeoutError:
        pass
    await backend.store_trie(a, trie())
    assert await backend.load_trie(a) == trie()
    await backend.store_run(records[-1])
    assert records[-1] in await backend.list_runs(a)


# ---------------------------------------------------------------------------
# lifecycle


def _every_method(backend: StorageBackend) -> list[Callable[[], Awaitable[Any]]]:
    a = "agent"
    return [
        lambda: backend.store_run(run(a)),
        lambda: backend.list_runs(a),
        lambda: backend.store_plan(plan(a)),
        lambda: backend.load_plan(a),
        lambda: backend.store_trie(a, trie()),
        lambda: backend.load_trie(a),
        lambda: backend.store_accumulators(a, accumulators()),
        lambda: backend.load_accumulators(a),
        lambda: backend.store_observations(a, [prompt()]),
        lambda: backend.load_observations(a),
        lambda: backend.store_stability(a, stability()),
        lambda: backend.load_stability(a),
    ]


async def test_closed_backend_raises_storage_error(backend: StorageBackend) -> None:
    await backend.store_plan(plan("agent"))
    await backend.close()
    for method in _every_method(backend):
        with pytest.raises(StorageError, match="backend is closed"):
            await method()
    await backend.close()  # idempotent
    await backend.close()
    with pytest.raises(StorageError, match="backend is closed"):
        await backend.load_plan("agent")


async def test_a_closed_backend_fails_when_awaited_not_when_called(backend: StorageBackend) -> None:
    """As a coroutine does: `gather(..., return_exceptions=True)` and tasks see the error."""
    await backend.close()
    calls = [method() for method in _every_method(backend)]  # none raises here
    results = await asyncio.gather(*calls, return_exceptions=True)
    assert all(isinstance(r, StorageError) for r in results), results
    task = asyncio.create_task(backend.load_plan("agent"))
    with pytest.raises(StorageError, match="backend is closed"):
        await task


async def test_async_with_closes(backend: StorageBackend) -> None:
    async with backend as entered:
        assert entered is backend
        await entered.store_plan(plan("agent"))
        assert await entered.load_plan("agent") == plan("agent")
    with pytest.raises(StorageError, match="backend is closed"):
        await backend.load_plan("agent")


async def test_async_with_closes_on_error(backend: StorageBackend) -> None:
    with pytest.raises(KeyError):
        async with backend:
            raise KeyError("boom")  # not swallowed
    with pytest.raises(StorageError):
        await backend.list_runs("agent")


async def test_storage_error_is_a_relay_store_error(backend: StorageBackend) -> None:
    await backend.close()
    with pytest.raises(rs.RelayStoreError):
        await backend.list_runs("agent")


async def test_a_call_never_awaited_does_nothing(backend: StorageBackend) -> None:
    run = rs.RunRecord(agent_id="lazy")
    pending = backend.store_run(run)
    pending.close()  # discarded without being awaited, as a coroutine can be
    assert await backend.list_runs("lazy") == []


async def test_a_call_cannot_be_awaited_twice(backend: StorageBackend) -> None:
    call = backend.load_plan("agent")
    assert await call is None
    with pytest.raises(RuntimeError):
        await call


async def test_close_takes_effect_when_awaited(backend: StorageBackend) -> None:
    pending = backend.close()
    assert await backend.list_runs("still-open") == []
    await pending
    with pytest.raises(StorageError):
        await backend.list_runs("still-open")


async def test_throw_into_a_call_raises_the_given_exception(backend: StorageBackend) -> None:
    call = backend.load_plan("agent")
    with pytest.raises(ValueError, match="stop here"):
        call.throw(ValueError, ValueError("stop here"))
    call = backend.load_plan("agent")
    with pytest.raises(KeyError):
        call.throw(KeyError("k"))


async def test_calls_follow_the_coroutine_protocol(backend: StorageBackend) -> None:
    call = backend.load_plan("agent")
    with pytest.raises(TypeError, match="just-started coroutine"):
        call.send(1)  # type: ignore[attr-defined]
    assert await call is None, "a refused send leaves the call runnable"
    call = backend.load_plan("agent")
    with pytest.raises(RuntimeError, match="raised StopIteration"):
        call.throw(StopIteration)  # type: ignore[attr-defined]
    call = backend.load_plan("agent")
    assert "load_plan" in call.__qualname__  # type: ignore[attr-defined]
    call.close()  # type: ignore[attr-defined]  # closed unstarted: no never-awaited warning


async def test_a_call_never_awaited_warns_as_a_coroutine_does(backend: StorageBackend) -> None:
    import gc

    with pytest.warns(RuntimeWarning, match="store_run' was never awaited"):
        backend.store_run(rs.RunRecord(agent_id="forgotten"))  # no await: nothing is stored
        gc.collect()
    assert await backend.list_runs("forgotten") == []


async def test_a_call_dropped_while_an_error_is_raised_keeps_that_error(backend: StorageBackend) -> None:
    with pytest.warns(RuntimeWarning, match="never awaited"), pytest.raises(IndexError):
        [backend.store_run(rs.RunRecord(agent_id="a"))][5]  # the call is dropped as IndexError is raised


class _Holder(list):  # type: ignore[type-arg]
    """A list that can be weakly referenced."""


async def test_a_call_never_awaited_is_collected_from_a_cycle_and_warns(backend: StorageBackend) -> None:
    """A call holds its arguments until awaited; one that an argument holds
    in turn is still collected, and warns as a forgotten coroutine does."""
    import gc
    import weakref

    holder = _Holder()
    holder.append(backend.store_observations(agent(), holder))
    collected = weakref.ref(holder)
    del holder
    with pytest.warns(RuntimeWarning, match="never awaited"):
        gc.collect()
    assert collected() is None


async def test_a_call_stepped_while_it_reads_its_arguments_says_it_is_executing(backend: StorageBackend) -> None:
    """Reading arguments may run user code (a sequence's iterator); stepping
    or closing the very call from there is refused, as for any coroutine,
    and the call still ends properly."""
    seen: list[BaseException] = []

    class Observations(list):  # type: ignore[type-arg]
        call: Any = None

        def __iter__(self) -> Any:
            for step in (lambda: self.call.send(None), self.call.close, lambda: self.call.throw(KeyError)):
                try:
                    step()
                except Exception as e:  # noqa: BLE001 - the very error is the point
                    seen.append(e)
            return super().__iter__()

    a = agent()
    observations = Observations([prompt()])
    observations.call = backend.store_observations(a, observations)
    await observations.call
    assert [(type(e), str(e)) for e in seen] == [(ValueError, "coroutine already executing")] * 3
    assert await backend.load_observations(a) == [prompt()]
    with pytest.raises(RuntimeError, match="cannot reuse"):
        await observations.call
