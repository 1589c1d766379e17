"""Redis-only behaviour: key layout, foreign writers, concurrency across tasks
and processes, failures (timeouts, stalls, cuts, restarts), TLS, unix sockets,
and secrecy of the password. The shared suite (test_backends.py) also runs
against Redis through the `backend` fixture."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import relay_store as rs
from redis_support import FaultyProxy, RedisServer, free_port, writer_script
from samples import T1

pytestmark = pytest.mark.redis

RUN_ID = "0191c0de-0000-7000-8000-00000000000"


def metadata(agent: str = "agent") -> rs.MetadataEnvelope:
    return rs.MetadataEnvelope(run_id=uuid.uuid4(), agent_id=agent, extensions={"k": [1, 2]})


def plan(agent: str = "agent") -> rs.ExecutionPlan:
    return rs.ExecutionPlan(
        agent_id=agent,
        parallel_groups=[rs.ParallelGroup(group_id="g", tool_names=["a", "b"])],
        metadata_template=metadata(agent),
    )


def trie() -> rs.TrieEnvelope:
    m = rs.PredictionMetrics(sample_count=1, mean=1.0, p50=1.0, p90=1.0, p95=1.0)
    p = rs.LlmCallPrediction(remaining_calls=m, interarrival_ms=m, output_tokens=m, latency_sensitivity=2)
    root = rs.PredictionTrieNode(name="root", predictions_by_call_index={1: p},
                                 children={"child": rs.PredictionTrieNode(name="child")})
    return rs.TrieEnvelope(workflow_name="wf", root=root)


def accumulators() -> rs.AccumulatorState:
    stats = rs.RunningStats().add_sample(3.0).add_sample(5.0)
    return rs.AccumulatorState(nodes={"wf/agent": rs.NodeAccumulators(remaining_calls={1: stats}, all_remaining_calls=stats)})


def observations() -> list[rs.PromptIR]:
    block = rs.PromptBlock(span_id="s", sequence_index=0, role="system", content="hi",
                           content_type="text", provenance="developer")
    return [rs.PromptIR(blocks=[block]), rs.PromptIR()]


def stability() -> rs.StabilityAnalysisResult:
    score = rs.BlockStabilityScore(span_id="s", classification="semi_stable", score=0.5, confidence=0.9, observation_count=3)
    return rs.StabilityAnalysisResult(scores=[score], stable_prefix_length=1, total_observations=3)


# ---------------------------------------------------------------- layout

async def test_key_layout_matches_nemo_relay(redis_server: RedisServer, redis_backend: rs.RedisBackend) -> None:
    b, p = redis_backend, redis_backend.key_prefix
    runs = [rs.RunRecord(agent_id="agent", calls=[rs.CallRecord(kind="llm", name="x")]) for _ in range(3)]
    for r in runs:
        await b.store_run(r)
    await b.store_plan(plan())
    await b.store_trie("agent", trie())
    await b.store_accumulators("agent", accumulators())
    await b.store_observations("agent", observations())
    await b.store_stability("agent", stability())

    c = redis_server.client()
    keys = sorted(k.decode() for k in c.keys(f"{p}*"))
    expected = sorted(
        [f"{p}runs:agent:{r.id}" for r in runs]
        + [f"{p}runs_index:agent", f"{p}plan:agent", f"{p}trie:agent", f"{p}accumulators:agent",
           f"{p}acg_observations:agent", f"{p}acg_stability:agent"]
    )
    assert keys == expected
    assert c.type(f"{p}runs_index:agent") == b"list"
    assert [i.decode() for i in c.lrange(f"{p}runs_index:agent", 0, -1)] == [str(r.id) for r in runs]
    # Values are the compact wire JSON of the models.
    assert c.get(f"{p}runs:agent:{runs[0].id}").decode() == runs[0].to_json()
    for key, value in [("plan", await b.load_plan("agent")), ("trie", await b.load_trie("agent")),
                       ("accumulators", await b.load_accumulators("agent")),
                       ("acg_stability", await b.load_stability("agent"))]:
        raw = c.get(f"{p}{key}:agent").decode()
        assert raw == value.to_json() and " " not in raw
    raw_obs = json.loads(c.get(f"{p}acg_observations:agent"))
    assert isinstance(raw_obs, list) and raw_obs == [o.to_dict() for o in await b.load_observations("agent")]


async def test_store_plan_is_keyed_by_the_plans_agent(redis_server: RedisServer, redis_backend: rs.RedisBackend) -> None:
    await redis_backend.store_plan(plan("other-agent"))
    assert redis_server.client().exists(f"{redis_backend.key_prefix}plan:other-agent") == 1


async def test_default_prefix_and_db_selection(redis_server: RedisServer) -> None:
    async with await rs.RedisBackend.connect(f"redis://127.0.0.1:{redis_server.port}/3") as b:
        assert b.key_prefix == "nemo_relay:"
        await b.store_plan(plan("db3-agent"))
    c3 = redis_server.client(db=3)
    assert c3.exists("nemo_relay:plan:db3-agent") == 1
    assert redis_server.client(db=0).exists("nemo_relay:plan:db3-agent") == 0
    c3.flushdb()


async def test_prefixes_isolate_backends_on_one_server(redis_server: RedisServer) -> None:
    a = await rs.RedisBackend.connect(redis_server.url, key_prefix=f"a-{uuid.uuid4()}:")
    b = await rs.RedisBackend.connect(redis_server.url, key_prefix=f"b-{uuid.uuid4()}:")
    await a.store_run(rs.RunRecord(agent_id="x"))
    await a.store_plan(plan("x"))
    assert await b.list_runs("x") == []
    assert await b.load_plan("x") is None
    assert len(await a.list_runs("x")) == 1


async def test_list_runs_never_reads_run_by_run(redis_server: RedisServer, redis_backend: rs.RedisBackend) -> None:
    for _ in range(300):
        await redis_backend.store_run(rs.RunRecord(agent_id="many"))
    c = redis_server.client()
    c.config_resetstat()
    runs = await redis_backend.list_runs("many")
    stats = c.info("commandstats")
    assert len(runs) == 300
    # one LRANGE for the index, MGETs of at most 128 records (so Redis is never
    # held up by one huge command), never a GET per run
    assert stats["cmdstat_lrange"]["calls"] == 1
    assert stats["cmdstat_mget"]["calls"] == 3  # 300 / 128, rounded up
    assert "cmdstat_get" not in stats


async def test_list_runs_takes_two_round_trips_however_long_the_list(redis_server: RedisServer) -> None:
    """The MGETs of a long list are sent back to back, not one after another."""
    proxy = await FaultyProxy(redis_server.port).start()
    b = await rs.RedisBackend.connect(proxy.url, key_prefix=f"rtt-{uuid.uuid4()}:")
    try:
        for _ in range(400):
            await b.store_run(rs.RunRecord(agent_id="a"))
        redis_server.client().config_resetstat()
        proxy.delay = 0.25  # each way: a round trip now costs at least 0.5 s
        start = time.monotonic()
        assert len(await b.list_runs("a")) == 400
        elapsed = time.monotonic() - start
        assert redis_server.client().info("commandstats")["cmdstat_mget"]["calls"] > 1, "read in chunks"
        # Two round trips take 1.0 s; a third would make it 1.5 s.
        assert 0.95 <= elapsed < 1.4, elapsed
    finally:
        await b.close()
        await proxy.close()


async def test_long_lists_keep_order_skip_dangling_and_name_a_bad_key(redis_server: RedisServer, redis_backend: rs.RedisBackend) -> None:
    """Index quirks and bad records far into a list that is read in chunks."""
    p, c = redis_backend.key_prefix, redis_server.client()
    runs = [rs.RunRecord(agent_id="long") for _ in range(450)]
    for r in runs:
        await redis_backend.store_run(r)
    ids = [str(r.id) for r in runs]
    c.delete(f"{p}runs:long:{ids[200]}", f"{p}runs:long:{ids[449]}")  # dangling entries in later chunks
    c.rpush(f"{p}runs_index:long", ids[3], ids[300])  # listed twice: first position wins
    got = [str(r.id) for r in await redis_backend.list_runs("long")]
    assert got == [i for n, i in enumerate(ids) if n not in (200, 449)]

    c.set(f"{p}runs:long:{ids[333]}", b'{"id": 1}')
    with pytest.raises(rs.SerializationError) as info:
        await redis_backend.list_runs("long")
    assert f"{p}runs:long:{ids[333]}" in str(info.value)
    # The message names the key and, inside the record, the field.
    doc = json.loads(runs[334].to_json())
    doc["started_at"] = "soon"
    c.set(f"{p}runs:long:{ids[334]}", json.dumps(doc))
    c.delete(f"{p}runs:long:{ids[333]}")
    with pytest.raises(rs.SerializationError) as info:
        await redis_backend.list_runs("long")
    assert str(info.value).startswith(
        f'cannot decode RunRecord at key "{p}runs:long:{ids[334]}": started_at: invalid RFC 3339 timestamp "soon"'
    ), str(info.value)


# ------------------------------------------------------ foreign writers

async def test_data_from_another_writer_reads_and_round_trips(redis_server: RedisServer, redis_backend: rs.RedisBackend) -> None:
    p, c = redis_backend.key_prefix, redis_server.client()
    ids = [f"{RUN_ID}{i}" for i in range(1, 4)]
    foreign = {
        "id": ids[0], "agent_id": "agent", "started_at": "2026-03-31T12:00:00.123456789Z",
        "ended_at": "2026-03-31T14:00:00+02:00", "from_the_future": {"nested": [1, None]},
        "calls": [{"kind": "tool", "name": "t", "started_at": "2026-03-31T12:00:00Z", "new_call_field": 7,
                   "metadata_snapshot": {"run_id": ids[0], "agent_id": "agent", "parallel_hints": [],
                                         "extensions": None, "new_meta_field": "x"}}],
    }
    second = {"id": ids[1], "agent_id": "agent", "calls": [], "started_at": "2026-03-31T12:00:01Z"}
    c.set(f"{p}runs:agent:{ids[0]}", json.dumps(foreign, indent=2))
    c.set(f"{p}runs:agent:{ids[1]}", json.dumps(second))
    # index: duplicate of the first id, a dangling id (no record), then the second
    c.rpush(f"{p}runs_index:agent", ids[0], ids[2], ids[0], ids[1])

    runs = await redis_backend.list_runs("agent")
    assert [str(r.id) for r in runs] == [ids[0], ids[1]]
    first = runs[0]
    assert first.started_at.microsecond == 123456

    await redis_backend.store_run(first)  # stored back unchanged
    stored = json.loads(c.get(f"{p}runs:agent:{ids[0]}"))
    expected = dict(foreign, started_at="2026-03-31T12:00:00.123456789Z", ended_at="2026-03-31T12:00:00Z")
    assert stored == expected
    assert c.llen(f"{p}runs_index:agent") == 4, "an already-indexed run is not indexed again"


async def test_a_run_id_another_writer_spelled_in_uppercase_is_listed_once(redis_server: RedisServer, redis_backend: rs.RedisBackend) -> None:
    p, c = redis_backend.key_prefix, redis_server.client()
    upper = str(uuid.uuid4()).upper()
    foreign = {"id": upper, "agent_id": "agent", "calls": [], "started_at": "2026-03-31T12:00:00Z"}
    c.set(f"{p}runs:agent:{upper}", json.dumps(foreign))
    c.rpush(f"{p}runs_index:agent", upper)
    (run,) = await redis_backend.list_runs("agent")
    later = rs.RunRecord(agent_id="agent", started_at=T1)
    # Stored back (finished), it lands under the canonical spelling, which
    # the index then lists too: still one run, and the one last stored.
    await redis_backend.store_run(run.replace(ended_at=T1))
    await redis_backend.store_run(later)
    assert c.lrange(f"{p}runs_index:agent", 0, -1) == [upper.encode(), upper.lower().encode(), str(later.id).encode()]
    runs = await redis_backend.list_runs("agent")
    assert [r.id for r in runs] == [run.id, later.id]
    assert runs[0].ended_at == T1


async def test_list_runs_reuses_a_decoded_run_only_while_its_text_is_unchanged(redis_server: RedisServer, redis_backend: rs.RedisBackend) -> None:
    """The run cache saves decoding, never changes an answer: whatever
    another writer (or this backend) changed since is read afresh."""
    p, c = redis_backend.key_prefix, redis_server.client()
    runs = [rs.RunRecord(agent_id="cached", calls=[rs.CallRecord(kind="llm", name=f"c{i}")]) for i in range(300)]
    for r in runs:
        await redis_backend.store_run(r)
    # A backend that only writes an agent's runs keeps none of them.
    assert redis_backend.run_cache_info()["entries"] == 0
    async with await rs.RedisBackend.connect(redis_server.url, p) as reader:
        # Another backend (another process, say) decodes what it reads once.
        assert await reader.list_runs("cached") == runs
        assert await reader.list_runs("cached") == runs
        info = reader.run_cache_info()
        assert (info["misses"], info["hits"], info["entries"]) == (300, 300, 300)
        assert 0 < info["bytes"] <= info["max_bytes"] == 32 * 1024 * 1024
    # Once it has listed an agent, a backend keeps the runs it stores for it
    # as it writes them: the next list decodes none of them.
    assert await redis_backend.list_runs("cached") == runs
    more = [rs.RunRecord(agent_id="cached") for _ in range(10)]
    for r in more:
        await redis_backend.store_run(r)
    before = redis_backend.run_cache_info()
    assert await redis_backend.list_runs("cached") == runs + more
    second = redis_backend.run_cache_info()
    assert second["hits"] - before["hits"] == 310 and second["misses"] == before["misses"] == 300
    runs = runs + more

    # Changed behind the backend's back, by a foreign writer (a new field
    # from a newer version, equal JSON spelled otherwise), by this backend,
    # or deleted: each is read as it now is.
    doc = json.loads(runs[5].to_json())
    doc["from_a_newer_writer"] = 1
    c.set(f"{p}runs:cached:{runs[5].id}", json.dumps(doc))
    c.set(f"{p}runs:cached:{runs[6].id}", json.dumps(json.loads(runs[6].to_json()), indent=1))
    await redis_backend.store_run(runs[7].replace(ended_at=T1))
    c.delete(f"{p}runs:cached:{runs[8].id}")
    got = await redis_backend.list_runs("cached")
    assert len(got) == 309
    assert json.loads(got[5].to_json()) == doc
    assert got[6] == runs[6] and got[7] == runs[7].replace(ended_at=T1)
    assert got[8:] == runs[9:] and got[:5] == runs[:5]
    assert redis_backend.run_cache_info()["hits"] - second["hits"] == 307  # all but the two changed behind its back

    # The index rewritten by another writer: shorter, reordered, an id twice.
    ids = [str(r.id) for r in got]
    c.delete(f"{p}runs_index:cached")
    c.rpush(f"{p}runs_index:cached", ids[20], ids[3], ids[20], *ids[100:110])
    assert [str(r.id) for r in await redis_backend.list_runs("cached")] == [ids[20], ids[3], *ids[100:110]]
    c.rpush(f"{p}runs_index:cached", *ids)
    assert [str(r.id) for r in await redis_backend.list_runs("cached")] == ids[20:21] + ids[3:4] + ids[100:110] + [
        i for n, i in enumerate(ids) if n not in (3, 20) and not 100 <= n < 110]

    # A record that no longer decodes is an error, whatever was held for it.
    c.set(f"{p}runs:cached:{runs[9].id}", b'{"id": 1}')
    with pytest.raises(rs.SerializationError, match=f"runs:cached:{runs[9].id}"):
        await redis_backend.list_runs("cached")


async def test_the_run_cache_keeps_within_its_budget_or_is_off(redis_server: RedisServer) -> None:
    runs = [rs.RunRecord(agent_id="small") for _ in range(40)]
    size = len(runs[0].to_json()) + len(f"bounded:runs:small:{runs[0].id}")
    async with await rs.RedisBackend.connect(redis_server.url, "bounded:", run_cache_bytes=10 * size) as small, \
            await rs.RedisBackend.connect(redis_server.url, "bounded:", run_cache_bytes=0) as off:
        for r in runs:
            await small.store_run(r)
        for _ in range(3):
            assert await small.list_runs("small") == runs
            assert await off.list_runs("small") == runs
        info = small.run_cache_info()
        assert info["entries"] == 10 and info["bytes"] == 10 * size and info["max_bytes"] == 10 * size
        assert info["hits"] + info["misses"] == 120
        assert off.run_cache_info() == {"hits": 0, "misses": 0, "tracked_hits": 0, "entries": 0, "bytes": 0,
                                        "max_bytes": 0, "tracking": 0}


async def tracking(backend: rs.RedisBackend, agent: str) -> None:
    """Lists `agent` until Redis tracks the backend's cached runs (the
    tracking connection opens in the background after the first list)."""
    deadline = time.monotonic() + 10
    while not backend.run_cache_info()["tracking"]:
        assert time.monotonic() < deadline, "tracking never started"
        await backend.list_runs(agent)
        await asyncio.sleep(0.01)
    await backend.list_runs(agent)  # read once under tracking


def numbered(agent: str, n: int) -> list[rs.RunRecord]:
    return [rs.RunRecord(agent_id=agent, calls=[rs.CallRecord(kind="llm", name=f"c{i}")]) for i in range(n)]


async def stored_and_listed(backend: rs.RedisBackend, agent: str, n: int, times: int) -> list[rs.RunRecord]:
    """Stores `n` runs and lists them `times` times, a little apart (time
    enough for a tracking connection to open, were it going to)."""
    runs = numbered(agent, n)
    for r in runs:
        await backend.store_run(r)
    for _ in range(times):
        assert await backend.list_runs(agent) == runs
        await asyncio.sleep(0.01)
    return runs


async def stored_and_tracked(backend: rs.RedisBackend, agent: str, n: int) -> list[rs.RunRecord]:
    runs = numbered(agent, n)
    for r in runs:
        await backend.store_run(r)
    await tracking(backend, agent)
    return runs


async def test_tracked_runs_are_not_read_again_until_redis_says_they_changed(redis_server: RedisServer) -> None:
    """With client tracking, a list reads only the index: Redis tells the
    backend of every change before it answers that LRANGE, so a change that
    finished before the call is always seen, with no wait."""
    c = redis_server.client()
    async with await rs.RedisBackend.connect(redis_server.url, "tracked:") as b:
        runs = await stored_and_tracked(b, "t", 50)
        before = b.run_cache_info()
        assert await b.list_runs("t") == runs
        after = b.run_cache_info()
        assert after["tracked_hits"] - before["tracked_hits"] == 50
        assert after["misses"] == before["misses"]

        # Changed by another client: seen by the very next call, each time.
        for round_ in range(30):
            i = round_ % 50
            doc = json.loads(runs[i].to_json())
            doc["round"] = round_
            c.set(f"tracked:runs:t:{runs[i].id}", json.dumps(doc))
            got = await b.list_runs("t")
            assert json.loads(got[i].to_json())["round"] == round_
            assert got[:i] + got[i + 1:] == runs[:i] + runs[i + 1:]
            runs[i] = got[i]
        # Deleted, re-stored by this backend, added by another writer.
        c.delete(f"tracked:runs:t:{runs[0].id}")
        await b.store_run(runs[1].replace(ended_at=T1))
        extra = rs.RunRecord(agent_id="t")
        c.set(f"tracked:runs:t:{extra.id}", extra.to_json())
        c.rpush("tracked:runs_index:t", str(extra.id))
        assert await b.list_runs("t") == [runs[1].replace(ended_at=T1), *runs[2:], extra]
        # Still tracked: nothing read twice.
        before = b.run_cache_info()
        assert await b.list_runs("t") == [runs[1].replace(ended_at=T1), *runs[2:], extra]
        assert b.run_cache_info()["tracked_hits"] - before["tracked_hits"] == 50


async def test_tracking_survives_a_flush_and_a_dropped_connection() -> None:
    with RedisServer() as server:
        c = server.client()
        async with await rs.RedisBackend.connect(server.url, "tracked:") as b:
            runs = await stored_and_tracked(b, "t", 20)
            c.flushdb()
            assert await b.list_runs("t") == []
            for r in runs:
                c.set(f"tracked:runs:t:{r.id}", r.replace(ended_at=T1).to_json())
                c.rpush("tracked:runs_index:t", str(r.id))
            assert await b.list_runs("t") == [r.replace(ended_at=T1) for r in runs]

            # Every connection cut; changes made before the backend is back
            # are read, not served from what it had tracked.
            await tracking(b, "t")
            c.client_kill_filter(_type="normal", skipme=True)
            c.set(f"tracked:runs:t:{runs[3].id}", runs[3].to_json())
            got = await b.list_runs("t")
            assert got[3] == runs[3] and got[4] == runs[4].replace(ended_at=T1)
            await tracking(b, "t")  # and tracking comes back
            c.set(f"tracked:runs:t:{runs[4].id}", runs[4].to_json())
            assert (await b.list_runs("t"))[3:5] == runs[3:5]


async def test_a_tracked_list_is_never_older_than_a_write_that_finished_before_it(redis_server: RedisServer) -> None:
    """Another client rewrites runs as fast as it can while the backend
    lists: an invalidation can overtake a read still being stored, and must
    not leave that read's older text tracked."""
    import threading

    runs = numbered("race", 8)
    keys = [f"race:runs:race:{r.id}" for r in runs]
    docs = [json.loads(r.to_json()) for r in runs]
    async with await rs.RedisBackend.connect(redis_server.url, "race:") as b:
        for r in runs:
            await b.store_run(r)
        await tracking(b, "race")
        stop = threading.Event()

        def rewrite() -> None:
            c, version = redis_server.client(), 0
            while not stop.is_set():
                version += 1
                pipe = c.pipeline(transaction=False)
                for key, doc in zip(keys, docs):
                    pipe.set(key, json.dumps({**doc, "version": version}))
                pipe.set("race:version", version)
                pipe.execute()

        writer = threading.Thread(target=rewrite)
        writer.start()
        try:
            reader, seen = redis_server.client(), 0
            for _ in range(300):
                done = int(reader.get("race:version") or 0)
                versions = [json.loads(r.to_json()).get("version", 0) for r in await b.list_runs("race")]
                assert min(versions) >= done, (versions, done)
                seen = max(seen, min(versions))
        finally:
            stop.set()
            writer.join()
        assert seen > 0
        final = int(redis_server.client().get("race:version"))
        assert {json.loads(r.to_json())["version"] for r in await b.list_runs("race")} == {final}
        assert b.run_cache_info()["tracking"] == 1


async def test_a_read_on_a_connection_given_up_meanwhile_is_not_trusted(redis_server: RedisServer) -> None:
    """A list still reading on a tracking connection that another call gave
    up (no answer in time) while a new one opened: what it reads must not
    count as tracked by the new connection, or a later change would never
    be heard of once the old connection closes."""
    proxy = await FaultyProxy(redis_server.port).start()
    c = redis_server.client()
    try:
        async with await rs.RedisBackend.connect(proxy.url, "orphan:", response_timeout=1.0) as b:
            runs = await stored_and_tracked(b, "x", 3)
            await b.store_run(rs.RunRecord(agent_id="a"))
            assert proxy.connections_made == 2  # the backend's, and tracking
            proxy.hold(1)
            slow = asyncio.ensure_future(b.list_runs("a"))  # gets no answer: tracking given up
            await asyncio.sleep(0.8)
            held = asyncio.ensure_future(b.list_runs("x"))  # still on the held connection
            with pytest.raises(rs.StorageError, match="no answer"):
                await slow
            await b.list_runs("a")  # opens another tracking connection
            deadline = time.monotonic() + 5
            while not b.run_cache_info()["tracking"]:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.01)
            assert proxy.connections_made == 3
            proxy.release(1)
            assert await held == runs
            del held
            await asyncio.sleep(0.2)  # the given-up connection closes
            changed = runs[0].replace(ended_at=T1)
            c.set(f"orphan:runs:x:{runs[0].id}", changed.to_json())
            assert (await b.list_runs("x"))[0] == changed
    finally:
        await proxy.close()


async def test_a_server_busy_when_tracking_starts_is_asked_again() -> None:
    with RedisServer(extra_args=["--busy-reply-threshold", "50"]) as server:
        async with await rs.RedisBackend.connect(server.url, "busy:") as b:
            await b.store_run(rs.RunRecord(agent_id="a"))
            script = ("local t = redis.call('TIME') local stop = t[1] * 1e6 + t[2] + 600000 "
                      "repeat t = redis.call('TIME') until t[1] * 1e6 + t[2] >= stop")
            busy = asyncio.get_running_loop().run_in_executor(None, server.client(protocol=2).eval, script, 0)
            await asyncio.sleep(0.2)
            with pytest.raises(rs.StorageError, match="BUSY"):
                await b.list_runs("a")  # tracking starts opening, and is told BUSY
            await busy
            deadline = time.monotonic() + 8
            while not b.run_cache_info()["tracking"]:
                assert time.monotonic() < deadline, "tracking was given up for good"
                await b.list_runs("a")
                await asyncio.sleep(0.05)


@pytest.mark.parametrize("refusal", [["--rename-command", "CLIENT", ""], ["--rename-command", "HELLO", ""]])
async def test_a_server_that_refuses_tracking_is_listed_untracked(refusal: list[str]) -> None:
    with RedisServer(extra_args=refusal) as server:
        c = server.client(protocol=2)
        async with await rs.RedisBackend.connect(server.url, "tracked:") as b:
            runs = await stored_and_listed(b, "t", 20, times=20)
            c.set(f"tracked:runs:t:{runs[2].id}", runs[2].replace(ended_at=T1).to_json())
            assert (await b.list_runs("t"))[2] == runs[2].replace(ended_at=T1)
            info = b.run_cache_info()
            assert info["tracking"] == 0 and info["tracked_hits"] == 0
            assert info["hits"] > 0, "the text comparison still saves decoding"
            # Refused for good: not asked again, even after the retry delay.
            connections = c.info("stats")["total_connections_received"]
            await asyncio.sleep(2.5)
            for _ in range(5):
                await b.list_runs("t")
                await asyncio.sleep(0.05)
            assert c.info("stats")["total_connections_received"] == connections


async def test_client_tracking_can_be_turned_off(redis_server: RedisServer) -> None:
    async with await rs.RedisBackend.connect(redis_server.url, "untracked:", client_tracking=False) as b:
        await stored_and_listed(b, "t", 10, times=10)
        info = b.run_cache_info()
        assert (info["tracking"], info["tracked_hits"], info["hits"]) == (0, 0, 90)
    b = await rs.open_backend({"kind": "redis", "config": {"url": redis_server.url, "client_tracking": False}})
    async with b:
        await b.list_runs("t")
        await asyncio.sleep(0.05)
        assert b.run_cache_info()["tracking"] == 0
    with pytest.raises(TypeError, match="client_tracking must be a bool, not str"):
        await rs.RedisBackend.connect(redis_server.url, client_tracking="no")  # type: ignore[arg-type]
    with pytest.raises(rs.InvalidConfigError, match="client_tracking must be a bool, not int"):
        await rs.open_backend({"kind": "redis", "config": {"url": redis_server.url, "client_tracking": 1}})


@pytest.mark.parametrize(("value", "error", "words"), [
    (-1, rs.InvalidConfigError, "run_cache_bytes must be a whole number of bytes"),
    (2**64, rs.InvalidConfigError, "run_cache_bytes must be a whole number of bytes"),
    (1.5, TypeError, "run_cache_bytes must be an int (bytes), not float"),
    (True, TypeError, "run_cache_bytes must be an int (bytes), not bool"),
])
async def test_a_bad_run_cache_size_is_refused_by_name(value: object, error: type[Exception], words: str) -> None:
    with pytest.raises(error) as info:
        await rs.RedisBackend.connect("redis://127.0.0.1:1", run_cache_bytes=value)  # type: ignore[arg-type]
    assert words in str(info.value)


async def test_undecodable_values_raise_serialization_error_naming_the_key(redis_server: RedisServer, redis_backend: rs.RedisBackend) -> None:
    p, c = redis_backend.key_prefix, redis_server.client()
    c.set(f"{p}plan:bad", b"{not json")
    c.set(f"{p}trie:bad", json.dumps({"version": "1.0"}))
    c.set(f"{p}accumulators:bad", b"\xff\xfe")
    c.set(f"{p}acg_observations:bad", json.dumps({"not": "a list"}))
    c.set(f"{p}acg_stability:bad", json.dumps({"scores": [], "stable_prefix_length": -1, "total_observations": 0}))
    c.set(f"{p}runs:bad:{RUN_ID}1", json.dumps({"id": f"{RUN_ID}1", "agent_id": "bad", "calls": [{"kind": "spaceship"}]}))
    c.rpush(f"{p}runs_index:bad", f"{RUN_ID}1")
    for call, key in [
        (redis_backend.load_plan("bad"), f"{p}plan:bad"),
        (redis_backend.load_trie("bad"), f"{p}trie:bad"),
        (redis_backend.load_accumulators("bad"), f"{p}accumulators:bad"),
        (redis_backend.load_observations("bad"), f"{p}acg_observations:bad"),
        (redis_backend.load_stability("bad"), f"{p}acg_stability:bad"),
        (redis_backend.list_runs("bad"), f"{p}runs:bad:{RUN_ID}1"),
    ]:
        with pytest.raises(rs.SerializationError) as info:
            await call
        assert key in str(info.value)


async def test_store_run_never_leaves_a_record_without_its_index_entry(redis_server: RedisServer, redis_backend: rs.RedisBackend) -> None:
    p, c = redis_backend.key_prefix, redis_server.client()
    run = rs.RunRecord(agent_id="typed")
    c.set(f"{p}runs_index:typed", "not a list")  # another program's mistake
    with pytest.raises(rs.StorageError, match="WRONGTYPE"):
        await redis_backend.store_run(run)
    assert c.exists(f"{p}runs:typed:{run.id}") == 0, "the record was not written either"

    c.delete(f"{p}runs_index:typed")
    await redis_backend.store_run(run)
    c.delete(f"{p}runs_index:typed")  # the entry is lost, the record stays
    await redis_backend.store_run(run)  # storing it again puts the entry back...
    await redis_backend.store_run(run)  # ...once
    assert c.lrange(f"{p}runs_index:typed", 0, -1) == [str(run.id).encode()]
    assert [r.id for r in await redis_backend.list_runs("typed")] == [run.id]


async def test_an_index_entry_that_is_not_text_is_a_serialization_error(redis_server: RedisServer, redis_backend: rs.RedisBackend) -> None:
    p, c = redis_backend.key_prefix, redis_server.client()
    c.rpush(f"{p}runs_index:bytes", b"\xff\xfe")
    with pytest.raises(rs.SerializationError) as info:
        await redis_backend.list_runs("bytes")
    assert f"{p}runs_index:bytes" in str(info.value)


async def test_non_finite_values_write_nothing(redis_server: RedisServer, redis_backend: rs.RedisBackend) -> None:
    bad = rs.StabilityAnalysisResult(
        scores=[rs.BlockStabilityScore(span_id="s", classification="stable", score=float("nan"), confidence=1.0, observation_count=1)],
        stable_prefix_length=0, total_observations=1)
    with pytest.raises(rs.SerializationError, match="score"):
        await redis_backend.store_stability("agent", bad)
    inf = rs.PredictionMetrics(sample_count=1, mean=float("inf"), p50=1.0, p90=1.0, p95=1.0)
    bad_trie = trie().replace(root=rs.PredictionTrieNode(
        name="root", predictions_any_index=rs.LlmCallPrediction(remaining_calls=inf, interarrival_ms=inf, output_tokens=inf)))
    await redis_backend.store_trie("agent", trie())
    with pytest.raises(rs.SerializationError, match="remaining_calls.mean"):
        await redis_backend.store_trie("agent", bad_trie)
    assert await redis_backend.load_trie("agent") == trie().replace(generated_at=(await redis_backend.load_trie("agent")).generated_at)
    assert redis_server.client().keys(f"{redis_backend.key_prefix}acg_stability:*") == []


# ------------------------------------------------------------ concurrency

async def test_hundreds_of_concurrent_store_runs_lose_nothing(redis_server: RedisServer, redis_backend: rs.RedisBackend) -> None:
    runs = [rs.RunRecord(agent_id="busy") for _ in range(500)]
    await asyncio.gather(*(redis_backend.store_run(r) for r in runs))
    # the same run stored concurrently many times is indexed once
    again = runs[7].replace(ended_at=runs[7].started_at)
    await asyncio.gather(*(redis_backend.store_run(again) for _ in range(50)))
    listed = await redis_backend.list_runs("busy")
    assert {r.id for r in listed} == {r.id for r in runs}
    assert redis_server.client().llen(f"{redis_backend.key_prefix}runs_index:busy") == 500
    assert next(r for r in listed if r.id == again.id) == again


async def test_several_processes_writing_one_agent(redis_server: RedisServer, redis_backend: rs.RedisBackend, tmp_path: Path) -> None:
    script = tmp_path / "writer.py"
    script.write_text(writer_script())
    procs = [
        await asyncio.create_subprocess_exec(sys.executable, str(script), redis_server.url,
                                             redis_backend.key_prefix, "shared", "100")
        for _ in range(4)
    ]
    codes = await asyncio.gather(*(p.wait() for p in procs))
    assert codes == [0, 0, 0, 0]
    runs = await redis_backend.list_runs("shared")
    assert len(runs) == 400 and len({r.id for r in runs}) == 400
    assert redis_server.client().llen(f"{redis_backend.key_prefix}runs_index:shared") == 400


# ---------------------------------------------------------------- failures

async def test_unreachable_server_fails_fast_with_storage_error() -> None:
    start = time.monotonic()
    with pytest.raises(rs.StorageError, match="cannot connect"):
        await rs.RedisBackend.connect(f"redis://127.0.0.1:{free_port()}", connect_timeout=1.0)
    assert time.monotonic() - start < 3


async def test_unresponsive_server_is_bounded_by_connect_timeout(redis_server: RedisServer) -> None:
    proxy = await FaultyProxy(redis_server.port).start()
    proxy.blackhole = True
    try:
        start = time.monotonic()
        with pytest.raises(rs.StorageError):
            await rs.RedisBackend.connect(proxy.url, connect_timeout=0.5)
        assert time.monotonic() - start < 2.5
    finally:
        await proxy.close()


@pytest.fixture
async def proxied(redis_server: RedisServer) -> AsyncIterator[tuple[FaultyProxy, rs.RedisBackend]]:
    proxy = await FaultyProxy(redis_server.port).start()
    backend = await rs.RedisBackend.connect(proxy.url, key_prefix=f"proxied-{uuid.uuid4()}:", response_timeout=0.5)
    yield proxy, backend
    await backend.close()
    await proxy.close()


async def test_slow_server_within_the_timeout_works(proxied: tuple[FaultyProxy, rs.RedisBackend]) -> None:
    proxy, b = proxied
    proxy.delay = 0.1
    await b.store_plan(plan())
    assert await b.load_plan("agent") is not None


async def test_slow_server_beyond_the_timeout_raises_then_recovers(proxied: tuple[FaultyProxy, rs.RedisBackend]) -> None:
    proxy, b = proxied
    proxy.delay = 1.0
    start = time.monotonic()
    with pytest.raises(rs.StorageError, match="no answer within"):
        await b.load_plan("agent")
    assert time.monotonic() - start < 1.5
    proxy.delay = 0
    await asyncio.sleep(2.2)  # let the delayed replies drain
    await b.store_plan(plan())
    assert (await b.load_plan("agent")).agent_id == "agent"


async def test_stalled_connection_times_out_and_the_backend_recovers(proxied: tuple[FaultyProxy, rs.RedisBackend]) -> None:
    proxy, b = proxied
    await b.store_plan(plan())
    proxy.stall()
    start = time.monotonic()
    results = await asyncio.gather(*(b.load_plan("agent") for _ in range(5)), return_exceptions=True)
    assert all(isinstance(r, rs.StorageError) for r in results), results
    assert time.monotonic() - start < 1.5
    proxy.resume()
    assert (await b.load_plan("agent")).agent_id == "agent"


async def test_cut_connections_are_reestablished(proxied: tuple[FaultyProxy, rs.RedisBackend]) -> None:
    proxy, b = proxied
    await b.store_plan(plan())
    before = proxy.connections_made
    proxy.cut()
    await asyncio.sleep(0.05)
    assert (await b.load_plan("agent")).agent_id == "agent"
    await b.store_run(rs.RunRecord(agent_id="agent"))
    assert proxy.connections_made > before


async def test_cancelling_an_awaiting_task_leaves_the_backend_usable(proxied: tuple[FaultyProxy, rs.RedisBackend]) -> None:
    proxy, b = proxied
    proxy.stall()
    task = asyncio.create_task(b.load_plan("agent"))
    await asyncio.sleep(0.1)
    # The native call under the wrapper's await: the cancellation must reach
    # it (and end its work), not stop at the async def around it.
    native = task.get_coro().cr_await
    assert repr(native) == "<relay_store call load_plan>"
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    with pytest.raises(RuntimeError, match="cannot reuse an already awaited relay_store call"):
        native.send(None)
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(b.load_plan("agent"), 0.1)
    proxy.resume()
    await b.store_plan(plan())
    assert (await b.load_plan("agent")).agent_id == "agent"


async def test_server_restart_same_backend_works_again() -> None:
    with RedisServer() as server:
        b = await rs.RedisBackend.connect(server.url, key_prefix="restart:", response_timeout=2.0)
        await b.store_run(rs.RunRecord(agent_id="agent"))
        server.stop()
        with pytest.raises(rs.StorageError):
            await b.load_plan("agent")
        server.start()
        # the very same object, not rebuilt
        await b.store_plan(plan())
        assert (await b.load_plan("agent")).agent_id == "agent"
        await b.store_run(rs.RunRecord(agent_id="agent"))
        assert len(await b.list_runs("agent")) == 1  # data before the restart was not persisted
        await b.close()


# ----------------------------------------------------------------- secrets

async def test_password_never_leaks() -> None:
    secret = "s3cr3t-Pa55"
    with RedisServer(password=secret) as server:
        url = f"redis://default:{secret}@127.0.0.1:{server.port}/0"
        b = await rs.RedisBackend.connect(url)
        assert secret not in repr(b) and "***" in repr(b) and secret not in b.url
        await b.store_plan(plan())
        messages = []
        for bad_url in [f"redis://default:wrong-{secret}@127.0.0.1:{server.port}",
                        f"redis://default:{secret}@127.0.0.1:{free_port()}",
                        f"redis://default:{secret}@[::1"]:
            with pytest.raises(rs.RelayStoreError) as info:
                await rs.RedisBackend.connect(bad_url, connect_timeout=1.0)
            messages.append(str(info.value))
        server.stop()
        with pytest.raises(rs.StorageError) as info:
            await b.load_plan("agent")
        messages.append(str(info.value))
        assert all(secret not in m for m in messages), messages
        assert any("***" in m for m in messages)


# ------------------------------------------------------ transports & spec

async def test_unix_socket_url(redis_server: RedisServer) -> None:
    async with await rs.RedisBackend.connect(f"unix://{redis_server.unix_socket}", key_prefix="unix:") as b:
        await b.store_plan(plan())
        assert (await b.load_plan("agent")).agent_id == "agent"


def _make_tls_material(directory: Path) -> dict[str, Path]:
    def run(*args: str) -> None:
        subprocess.run(args, check=True, capture_output=True, cwd=directory)
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
        "-days", "2", "-subj", "/CN=relay-store test CA")
    run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
        "-subj", "/CN=127.0.0.1")
    (directory / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n")
    run("openssl", "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf")
    return {name: directory / f"{name}.pem" for name in ("ca", "server")} | {"key": directory / "server.key"}


async def test_tls_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if subprocess.run(["which", "openssl"], capture_output=True).returncode != 0:
        pytest.fail("openssl is needed to make test certificates")
    tls = _make_tls_material(tmp_path)
    tls_port = free_port()
    extra = ["--tls-port", str(tls_port), "--tls-cert-file", str(tls["server"]), "--tls-key-file", str(tls["key"]),
             "--tls-ca-cert-file", str(tls["ca"]), "--tls-auth-clients", "no"]
    with RedisServer(extra_args=extra):
        # an unknown issuer is refused...
        with pytest.raises(rs.StorageError, match="certificate"):
            await rs.RedisBackend.connect(f"rediss://127.0.0.1:{tls_port}/0", connect_timeout=2.0)
        # ...verification can be skipped explicitly...
        async with await rs.RedisBackend.connect(f"rediss://127.0.0.1:{tls_port}/0#insecure", key_prefix="tls:") as b:
            await b.store_plan(plan())
        # ...and a CA the system store is told about (SSL_CERT_FILE) is trusted.
        monkeypatch.setenv("SSL_CERT_FILE", str(tls["ca"]))
        async with await rs.RedisBackend.connect(f"rediss://127.0.0.1:{tls_port}/0", key_prefix="tls:") as b:
            assert (await b.load_plan("agent")).agent_id == "agent"


async def test_open_backend_with_a_redis_spec(redis_server: RedisServer) -> None:
    spec: dict[str, Any] = {"kind": "redis", "config": {"url": redis_server.url, "key_prefix": "spec:"}}
    b = await rs.open_backend(spec)
    assert isinstance(b, rs.RedisBackend) and b.key_prefix == "spec:"
    await b.store_plan(plan())
    assert redis_server.client().exists("spec:plan:agent") == 1
    await b.close()
    b = await rs.open_backend({"kind": "redis", "config": {"url": redis_server.url}})
    assert b.key_prefix == "nemo_relay:"
    assert b.run_cache_info()["max_bytes"] == 32 * 1024 * 1024
    await b.close()
    b = await rs.open_backend({"kind": "redis", "config": {"url": redis_server.url, "run_cache_bytes": 1000}})
    assert b.run_cache_info()["max_bytes"] == 1000
    await b.close()
    with pytest.raises(rs.InvalidConfigError, match="run_cache_bytes must be an int"):
        await rs.open_backend({"kind": "redis", "config": {"url": redis_server.url, "run_cache_bytes": "1k"}})


async def test_bad_options_raise_invalid_config() -> None:
    with pytest.raises(rs.InvalidConfigError):
        await rs.RedisBackend.connect("redis://127.0.0.1:1", connect_timeout=0)
    with pytest.raises(rs.InvalidConfigError):
        await rs.RedisBackend.connect("redis://127.0.0.1:1", response_timeout=float("nan"))
    with pytest.raises(rs.InvalidConfigError, match="invalid Redis URL"):
        await rs.RedisBackend.connect("http://127.0.0.1:6379")
    with pytest.raises(rs.InvalidConfigError, match="connect_timeout"):
        await rs.RedisBackend.connect("redis://127.0.0.1:1", connect_timeout=10**400)  # no float holds it
    with pytest.raises(TypeError, match="response_timeout must be a number of seconds, not bool"):
        await rs.RedisBackend.connect("redis://127.0.0.1:1", response_timeout=True)


def test_processes_exit_cleanly_after_tokio_work(redis_server: RedisServer, tmp_path: Path) -> None:
    """Regression: a tokio thread waking a coroutine while the interpreter
    finalized used to abort the process (exit code 134) now and then."""
    script = tmp_path / "exit.py"
    script.write_text(
        "import asyncio, sys, relay_store as rs\n"
        "async def main():\n"
        "    try:\n"
        "        b = await rs.RedisBackend.connect(sys.argv[1], connect_timeout=1.0)\n"
        "        await b.load_plan('a')\n"
        "    except rs.StorageError:\n"
        "        pass\n"
        "asyncio.run(main())\n"
    )
    urls = [redis_server.url, f"redis://127.0.0.1:{free_port()}"] * 10
    procs = [subprocess.Popen([sys.executable, str(script), u], stderr=subprocess.PIPE) for u in urls]
    failures = [(p.wait(), p.stderr.read().decode()[-300:]) for p in procs if p.wait() != 0]  # type: ignore[union-attr]
    assert failures == []


def test_one_backend_serves_several_event_loops(redis_server: RedisServer) -> None:
    """Results reach whichever loop awaits them: sequential asyncio.run calls
    and loops in other threads, all sharing one connection."""
    import threading

    async def connect() -> rs.RedisBackend:
        return await rs.RedisBackend.connect(redis_server.url, key_prefix=f"loops-{uuid.uuid4()}:")

    backend = asyncio.run(connect())

    async def work(agent: str) -> int:
        await asyncio.gather(*(backend.store_run(rs.RunRecord(agent_id=agent)) for _ in range(50)))
        return len(await backend.list_runs(agent))

    assert asyncio.run(work("first")) == 50
    assert asyncio.run(work("second")) == 50
    counts: dict[str, int] = {}
    threads = [threading.Thread(target=lambda a=a: counts.__setitem__(a, asyncio.run(work(a)))) for a in ("t1", "t2", "t3")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert counts == {"t1": 50, "t2": 50, "t3": 50}
    asyncio.run(backend.close())


async def test_thousands_of_concurrent_calls_all_complete(redis_backend: rs.RedisBackend) -> None:
    """No completion is lost when many finish together (they share wake-ups)."""
    await redis_backend.store_plan(plan())
    results = await asyncio.wait_for(asyncio.gather(*(redis_backend.load_plan("agent") for _ in range(3000))), 30)
    assert len(results) == 3000 and all(r is not None and r.agent_id == "agent" for r in results)


async def test_close_lets_calls_under_way_finish(proxied: tuple[FaultyProxy, rs.RedisBackend]) -> None:
    proxy, b = proxied
    await b.store_run(rs.RunRecord(agent_id="agent"))
    proxy.delay = 0.1  # list_runs makes two round trips: close lands between them
    task = asyncio.create_task(b.list_runs("agent"))
    await asyncio.sleep(0.05)
    await b.close()
    assert len(await task) == 1
    with pytest.raises(rs.StorageError, match="closed"):
        await b.list_runs("agent")


def test_event_loops_do_not_leak_descriptors(redis_server: RedisServer) -> None:
    import os

    backend = asyncio.run(rs.RedisBackend.connect(redis_server.url, key_prefix="fd:"))
    asyncio.run(backend.load_plan("a"))  # first loop: warm-up
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(60):
        asyncio.run(backend.load_plan("a"))
    assert len(os.listdir("/proc/self/fd")) - before < 10
    asyncio.run(backend.close())


async def test_error_messages_show_keys_verbatim_even_when_they_contain_the_password() -> None:
    with RedisServer(password="plan") as server:
        b = await rs.RedisBackend.connect(f"redis://:plan@127.0.0.1:{server.port}/0", response_timeout=1.0)
        server.stop()
        with pytest.raises(rs.StorageError) as info:
            await b.load_plan("agent")
        message = str(info.value)
        assert '"nemo_relay:plan:agent"' in message and "redis://:***@" in message


def _child_uses_redis(url: str, inherited: rs.RedisBackend, results: Any) -> None:
    async def fresh() -> int:
        async with await rs.RedisBackend.connect(url, key_prefix=f"fork-{os.getpid()}:", connect_timeout=5) as b:
            await b.store_run(rs.RunRecord(agent_id="a"))
            return len(await b.list_runs("a"))

    stored = asyncio.run(fresh())
    try:
        asyncio.run(inherited.load_plan("a"))
        results.put((stored, "no error"))
    except rs.StorageError as e:
        results.put((stored, str(e)))


def test_a_forked_child_works_and_an_inherited_backend_says_why_not(redis_server: RedisServer) -> None:
    """fork keeps the runtime but none of its threads: the child starts its own."""
    import multiprocessing

    backend = asyncio.run(rs.RedisBackend.connect(redis_server.url, key_prefix="parent:"))
    asyncio.run(backend.load_plan("a"))  # the parent's runtime and connection are in use
    ctx = multiprocessing.get_context("fork")
    results = ctx.Queue()
    child = ctx.Process(target=_child_uses_redis, args=(redis_server.url, backend, results))
    child.start()
    child.join(30)
    try:
        assert not child.is_alive(), "the child hung"
        stored, error = results.get(timeout=5)
        assert stored == 1
        assert "connected in process" in error and "fork" in error
        assert asyncio.run(backend.load_plan("a")) is None, "the parent's backend still works"
    finally:
        if child.is_alive():
            child.kill()
        asyncio.run(backend.close())


def test_a_loop_that_cannot_watch_the_inbox_fails_every_call_alike(redis_backend: rs.RedisBackend) -> None:
    class NoReaders(asyncio.SelectorEventLoop):
        def add_reader(self, *args: Any) -> Any:
            raise NotImplementedError("no readers here")

    loop = NoReaders()
    try:
        for _ in range(2):  # the second call fails too, rather than waiting forever
            with pytest.raises(NotImplementedError):
                loop.run_until_complete(asyncio.wait_for(redis_backend.load_plan("a"), 5))
    finally:
        loop.close()


def test_a_loop_closed_with_a_call_in_flight_is_collected(redis_backend: rs.RedisBackend) -> None:
    """No reference from the I/O thread keeps a dead loop (and its inbox sockets) alive."""
    import gc
    import weakref

    def open_fds() -> int:
        return len(os.listdir("/proc/self/fd"))

    gc.collect()
    before, loops = open_fds(), []
    for _ in range(20):
        loop = asyncio.new_event_loop()
        task = loop.create_task(redis_backend.list_runs("in-flight"))
        loop.run_until_complete(asyncio.sleep(0))  # the call is under way
        loop.close()
        loops.append(weakref.ref(loop))
        del loop, task
    time.sleep(0.2)  # let the calls finish on the I/O thread
    gc.collect()
    assert [r for r in loops if r() is not None] == []
    assert open_fds() - before < 4


async def test_tasks_nobody_holds_finish_their_calls(redis_backend: rs.RedisBackend) -> None:
    """A running loop keeps a task blocked on a call alive, as for any I/O."""
    import gc

    finished: list[int] = []

    async def handle(i: int) -> None:
        await redis_backend.store_run(rs.RunRecord(agent_id="unheld"))
        await redis_backend.load_plan("unheld")
        finished.append(i)

    for i in range(20):
        asyncio.create_task(handle(i))  # noqa: RUF006 - fire and forget on purpose
    await asyncio.sleep(0)  # every task is now waiting on its call
    gc.collect()
    for _ in range(100):
        if len(finished) == 20:
            break
        await asyncio.sleep(0.02)
    assert sorted(finished) == list(range(20))


def _wide_trie() -> rs.TrieEnvelope:
    metrics = rs.PredictionMetrics(sample_count=1, mean=1.0, p50=1.0, p90=1.0, p95=1.0)
    leaf = rs.LlmCallPrediction(remaining_calls=metrics, interarrival_ms=metrics, output_tokens=metrics)
    children = {
        f"c{i}": rs.PredictionTrieNode(name=f"c{i}", children={
            f"g{j}": rs.PredictionTrieNode(name=f"g{j}", predictions_by_call_index={k: leaf for k in range(5)})
            for j in range(200)
        })
        for i in range(16)
    }
    return rs.TrieEnvelope(workflow_name="w", root=rs.PredictionTrieNode(name="root", children=children))


def test_a_child_forked_amid_background_work_still_gets_its_own(redis_server: RedisServer) -> None:
    """Work of the parent's in flight at the fork (encoding a wide trie on the blocking pool)
    holds nothing the child then waits for."""
    trie = _wide_trie()

    async def parent() -> int:
        b = await rs.RedisBackend.connect(redis_server.url, key_prefix="forkwork:")
        tasks = [asyncio.ensure_future(b.store_trie("w", trie)) for _ in range(4)]
        await asyncio.sleep(0.005)
        pid = os.fork()
        if pid == 0:  # the child: a fresh backend, work that needs the blocking pool
            async def child() -> None:
                c = await rs.RedisBackend.connect(redis_server.url, key_prefix="forkchild:")
                await asyncio.wait_for(c.store_trie("w", trie), 10)
                assert await asyncio.wait_for(c.load_trie("w"), 10) == trie
            try:
                asyncio.run(child())
                os._exit(0)
            except BaseException:
                os._exit(1)
        await asyncio.gather(*tasks)
        await b.close()
        return os.waitpid(pid, 0)[1]

    status = asyncio.run(parent())
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status


def _io_thread_cpu_ticks() -> int:
    """CPU time (user + system, in clock ticks) of this process's relay-store-io thread."""
    for stat in Path("/proc/self/task").glob("*/stat"):
        try:
            text = stat.read_text()
        except (FileNotFoundError, ProcessLookupError):
            continue  # a thread that exited meanwhile
        name, rest = text[text.index("(") + 1:text.rindex(")")], text[text.rindex(")") + 2:].split()
        if name == "relay-store-io":
            return int(rest[11]) + int(rest[12])  # fields 14 and 15: utime, stime
    raise AssertionError("no relay-store-io thread")


async def test_an_idle_process_stops_spinning(redis_backend: rs.RedisBackend) -> None:
    """The I/O thread stays awake only briefly after activity (README,
    Configuration): once calls stop, it uses next to no CPU."""
    for _ in range(200):
        await redis_backend.store_run(rs.RunRecord(agent_id="spin"))
    await asyncio.sleep(0.05)  # well past the window
    before = _io_thread_cpu_ticks()
    await asyncio.sleep(0.5)
    used = (_io_thread_cpu_ticks() - before) / os.sysconf("SC_CLK_TCK")
    # A thread that kept spinning would use most of the half second.
    assert used < 0.1, f"{used:.3f} s of CPU while idle"


async def test_the_event_loop_sleeps_once_results_are_handed_over(redis_backend: rs.RedisBackend) -> None:
    """Results reach the loop through a descriptor it watches; each wake-up
    is taken when the results are, so an idle loop is not woken again and
    again (it would burn its thread's CPU)."""
    await asyncio.gather(*(redis_backend.load_plan(f"a{i}") for i in range(50)))
    for i in range(20):
        await redis_backend.load_plan(f"b{i}")
    before = time.thread_time()
    await asyncio.sleep(0.3)
    used = time.thread_time() - before
    assert used < 0.05, f"{used:.3f} s of the loop thread's CPU while idle"


@pytest.mark.parametrize(("setting", "expected"), [(None, 200), ("", 200), ("0", 0), ("100000", 100000)])
def test_the_io_spin_setting_is_read_at_import(redis_server: RedisServer, setting: str | None, expected: int) -> None:
    script = (
        "import asyncio, sys, relay_store as rs\n"
        "from relay_store import _native\n"
        "async def main():\n"
        "    b = await rs.RedisBackend.connect(sys.argv[1], key_prefix=sys.argv[2])\n"
        "    runs = [rs.RunRecord(agent_id='a') for _ in range(20)]\n"
        "    for r in runs:\n"
        "        await b.store_run(r)\n"
        "    assert await b.list_runs('a') == runs\n"
        "    await b.close()\n"
        "asyncio.run(main())\n"
        "print(_native.io_spin_us)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "RELAY_STORE_IO_SPIN_US"}
    if setting is not None:
        env["RELAY_STORE_IO_SPIN_US"] = setting
    done = subprocess.run([sys.executable, "-c", script, redis_server.url, f"spin-{uuid.uuid4()}:"],
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == [str(expected)]


@pytest.mark.parametrize("bad", ["abc", "-1", "+5", " 200", "1.5", "100001"])
def test_a_bad_io_spin_setting_fails_the_import_naming_the_variable(bad: str) -> None:
    env = {**os.environ, "RELAY_STORE_IO_SPIN_US": bad}
    done = subprocess.run([sys.executable, "-c", "import relay_store"], env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("relay_store.errors.InvalidConfigError: RELAY_STORE_IO_SPIN_US must be"), last
    assert last.endswith(f'not "{bad}"'), last
