"""relay-store benchmarks: relay_store vs a hand-written redis-py peer, one server, one run.

    .venv/bin/python benchmarks/run.py            # full (a few minutes)
    .venv/bin/python benchmarks/run.py --quick    # under two minutes

Starts a private redis-server (tests/redis_support.py), runs every case against
it, prints medians and the target ratios, and writes the figures to
benchmarks/results/<UTC timestamp>.json and benchmarks/results/latest.json.
Missing a target never fails the run; see benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import traceback
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
sys.path.insert(0, str(BENCH_DIR))
sys.path.insert(0, str(ROOT / "tests"))

import orjson  # noqa: E402
import redis  # noqa: E402
import redis.asyncio as aioredis  # noqa: E402

import relay_store as rs  # noqa: E402
from relay_store import _native  # noqa: E402

from peer import AsyncPingFloor, PeerStore, PingFloor, reference_list_runs  # noqa: E402
from redis_support import RedisServer  # noqa: E402
from workloads import as_dicts, deep_path, make_runs, make_trie  # noqa: E402

RESULTS_DIR = BENCH_DIR / "results"
CALLS_PER_RUN = 5


# -- configuration -----------------------------------------------------------


@dataclass(frozen=True)
class Config:
    mode: str
    latency_samples: int  # timed store_run calls per contender (case 1)
    latency_block: int  # calls per contender before switching to the next one
    throughput_tasks: int  # concurrent tasks (case 2)
    throughput_runs_per_task: int
    throughput_reps: int
    list_size: int  # runs listed (case 3)
    list_reps: int
    reference_reps: int  # the reference pattern is slow: fewer repetitions
    trie_reps: int  # case 4
    cycle_runs: int  # store_run calls per in-memory cycle (case 5)
    cycle_reps: int
    memory_runs: int  # case 6
    memory_calls_per_run: int
    memory_agents: int
    memory_reps: int


QUICK = Config(
    mode="quick",
    latency_samples=4000, latency_block=250,
    throughput_tasks=64, throughput_runs_per_task=25, throughput_reps=7,
    list_size=1000, list_reps=21, reference_reps=7,
    trie_reps=11,
    cycle_runs=100, cycle_reps=300,
    memory_runs=100_000, memory_calls_per_run=1, memory_agents=1, memory_reps=1,
)
FULL = Config(
    mode="full",
    latency_samples=20_000, latency_block=500,
    throughput_tasks=64, throughput_runs_per_task=100, throughput_reps=11,
    list_size=1000, list_reps=61, reference_reps=15,
    trie_reps=31,
    cycle_runs=100, cycle_reps=1500,
    memory_runs=100_000, memory_calls_per_run=1, memory_agents=1, memory_reps=3,
)


# -- timing helpers ----------------------------------------------------------


async def timed(action: Callable[[], Awaitable[object]]) -> int:
    """Nanoseconds taken by one awaited call."""
    start = time.perf_counter_ns()
    await action()
    return time.perf_counter_ns() - start


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty sample."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))  # ceil(n * q / 100)
    return float(ordered[int(rank) - 1])


def summarize(samples_ns: Sequence[int]) -> dict[str, float]:
    """Median, p99, min and mean of nanosecond samples."""
    return {
        "n": len(samples_ns),
        "median_ns": float(statistics.median(samples_ns)),
        "p99_ns": percentile(samples_ns, 99),
        "min_ns": float(min(samples_ns)),
        "mean_ns": float(statistics.fmean(samples_ns)),
    }


def alternating(names: Sequence[str], round_no: int) -> list[str]:
    """Contender order for one round: forwards on even rounds, backwards on odd."""
    return list(names) if round_no % 2 == 0 else list(reversed(names))


def quiet() -> None:
    """Before every timed section: no garbage left over from the last one."""
    gc.collect()


# -- cases ---------------------------------------------------------------------


async def case_store_latency(cfg: Config, server: RedisServer, admin: redis.Redis) -> dict[str, Any]:
    """Case 1: one task, one store_run at a time; also the bare PING floor."""
    agent = "latency-agent"
    relay = await rs.RedisBackend.connect(server.url, key_prefix="bench:c1:relay:")
    peer = PeerStore(server.url, "bench:c1:peer:")
    ping = PingFloor(server.port)
    aping = await AsyncPingFloor.connect(server.port)
    samples: dict[str, list[int]] = {"relay_store": [], "peer": [], "ping_socket": [], "ping_asyncio": []}

    async def block(name: str, n: int, keep: bool) -> None:
        out = samples[name] if keep else []
        if name == "relay_store":
            runs = make_runs(agent, n, CALLS_PER_RUN)
            quiet()
            for r in runs:
                out.append(await timed(lambda: relay.store_run(r)))
        elif name == "peer":
            dicts = as_dicts(make_runs(agent, n, CALLS_PER_RUN))
            quiet()
            for d in dicts:
                out.append(await timed(lambda: peer.store_run(d)))
        elif name == "ping_socket":
            quiet()
            for _ in range(n):
                start = time.perf_counter_ns()
                ping.ping()
                out.append(time.perf_counter_ns() - start)
        else:
            quiet()
            for _ in range(n):
                out.append(await timed(aping.ping))

    try:
        for name in samples:  # warm-up: connections, scripts, caches
            await block(name, 200, keep=False)
        rounds = cfg.latency_samples // cfg.latency_block
        for round_no in range(rounds):
            for name in alternating(list(samples), round_no):
                await block(name, cfg.latency_block, keep=True)
        stored = admin.llen(f"bench:c1:relay:runs_index:{agent}")
        peer_stored = admin.llen(f"bench:c1:peer:runs_index:{agent}")
    finally:
        await relay.close()
        await peer.close()
        ping.close()
        await aping.close()
        admin.flushdb()
    return {
        "description": f"store_run latency, 1 task, runs of {CALLS_PER_RUN} calls (~1.8 kB JSON)",
        "calls_per_run": CALLS_PER_RUN,
        "indexed_runs": {"relay_store": stored, "peer": peer_stored},
        "contenders": {name: summarize(s) for name, s in samples.items()},
    }


async def case_store_throughput(cfg: Config, server: RedisServer, admin: redis.Redis) -> dict[str, Any]:
    """Case 2: 64 tasks storing runs concurrently; runs per second."""
    relay = await rs.RedisBackend.connect(server.url, key_prefix="bench:c2:relay:")
    peer = PeerStore(server.url, "bench:c2:peer:")
    tasks, per_task = cfg.throughput_tasks, cfg.throughput_runs_per_task
    total = tasks * per_task
    rates: dict[str, list[float]] = {"relay_store": [], "peer": []}
    elapsed: dict[str, list[int]] = {"relay_store": [], "peer": []}

    async def rep(name: str, rep_no: int, keep: bool) -> None:
        agents = [f"tp-agent-{rep_no}-{t}" for t in range(tasks)]
        if name == "relay_store":
            work: list[list[Any]] = [make_runs(a, per_task, CALLS_PER_RUN) for a in agents]
            store: Callable[[Any], Awaitable[None]] = relay.store_run
        else:
            work = [as_dicts(make_runs(a, per_task, CALLS_PER_RUN)) for a in agents]
            store = peer.store_run

        async def worker(items: list[Any]) -> None:
            for item in items:
                await store(item)

        quiet()
        start = time.perf_counter_ns()
        await asyncio.gather(*(worker(items) for items in work))
        took = time.perf_counter_ns() - start
        if keep:
            elapsed[name].append(took)
            rates[name].append(total / (took / 1e9))
        admin.flushdb()  # not timed: keep the server's memory steady

    try:
        for name in rates:  # warm-up: fills the peer's connection pool too
            await rep(name, -1, keep=False)
        # One multiplexed connection for relay_store, a pool for the peer (+1: our sync client).
        connections = int(admin.info("clients")["connected_clients"]) - 1
        for rep_no in range(cfg.throughput_reps):
            for name in alternating(list(rates), rep_no):
                await rep(name, rep_no, keep=True)
    finally:
        await relay.close()
        await peer.close()
        admin.flushdb()
    return {
        "description": f"store_run throughput, {tasks} concurrent tasks x {per_task} runs",
        "runs_per_rep": total,
        "server_connections_both_contenders": connections,
        "contenders": {
            name: {"n": len(rates[name]), "median_runs_per_s": statistics.median(rates[name]),
                   "min_runs_per_s": min(rates[name]), "max_runs_per_s": max(rates[name]),
                   "median_elapsed_ns": float(statistics.median(elapsed[name]))}
            for name in rates
        },
    }


async def case_list_runs(cfg: Config, server: RedisServer, admin: redis.Redis) -> dict[str, Any]:
    """Case 3: list_runs of 1,000 stored runs, per-call time.

    `relay_store` is the backend as a user gets it: Redis tracks the runs
    it has cached (client-side caching) and tells it of any change, so runs
    unchanged since its last call are not read again, only the index.
    `relay_store_untracked` has tracking off: every run is read, and its text
    compared with the cached one instead of decoded. `relay_store_cold` has
    the cache off, so every record is read and decoded on every call, as on
    a backend's first call.
    """
    agent = "list-agent"
    relay = await rs.RedisBackend.connect(server.url, key_prefix="bench:c3:relay:")
    untracked = await rs.RedisBackend.connect(server.url, key_prefix="bench:c3:relay:", client_tracking=False)
    cold = await rs.RedisBackend.connect(server.url, key_prefix="bench:c3:relay:", run_cache_bytes=0)
    peer = PeerStore(server.url, "bench:c3:peer:")
    ref_prefix = "bench:c3:ref:"
    ref_writer = PeerStore(server.url, ref_prefix)
    ref_client: aioredis.Redis = aioredis.Redis.from_url(server.url)
    runs = make_runs(agent, cfg.list_size, CALLS_PER_RUN)
    dicts = as_dicts(runs)
    samples: dict[str, list[int]] = {
        "relay_store": [], "relay_store_untracked": [], "relay_store_cold": [], "peer": [], "reference_pattern": []}
    actions: dict[str, Callable[[], Awaitable[list[Any]]]] = {
        "relay_store": lambda: relay.list_runs(agent),
        "relay_store_untracked": lambda: untracked.list_runs(agent),
        "relay_store_cold": lambda: cold.list_runs(agent),
        "peer": lambda: peer.list_runs(agent),
        "reference_pattern": lambda: reference_list_runs(ref_client, ref_prefix, agent),
    }
    try:
        for r, d in zip(runs, dicts):
            await relay.store_run(r)
            await peer.store_run(d)
            await ref_writer.store_run(d)
        # Same work on every side: each returns all 1,000 runs, equal as JSON.
        got = {name: await act() for name, act in actions.items()}
        expected = [r.to_dict() for r in runs]
        checks = {
            "relay_store": [r.to_dict() for r in got["relay_store"]] == expected,
            "relay_store_untracked": [r.to_dict() for r in got["relay_store_untracked"]] == expected,
            "relay_store_cold": [r.to_dict() for r in got["relay_store_cold"]] == expected,
            "peer": got["peer"] == expected,
            "reference_pattern": got["reference_pattern"] == expected,
        }
        del got, expected
        # Tracking starts in the background after the first list.
        deadline = time.monotonic() + 10
        while not relay.run_cache_info()["tracking"] and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        for name, act in actions.items():  # warm-up
            await act()
        for round_no in range(cfg.list_reps):
            for name in alternating(list(actions), round_no):
                if name == "reference_pattern" and len(samples[name]) >= cfg.reference_reps:
                    continue
                quiet()
                start = time.perf_counter_ns()
                result = await actions[name]()
                samples[name].append(time.perf_counter_ns() - start)
                del result
    finally:
        tracked = relay.run_cache_info()  # how its calls were served
        await relay.close()
        await untracked.close()
        await cold.close()
        await peer.close()
        await ref_writer.close()
        await ref_client.aclose()
        admin.flushdb()
    return {
        "description": f"list_runs of {cfg.list_size} runs ({CALLS_PER_RUN} calls each), per call",
        "same_result_as_stored": checks,
        "contenders": {name: summarize(s) for name, s in samples.items()},
        "relay_store_run_cache": tracked,
    }


async def case_trie(cfg: Config, server: RedisServer, admin: redis.Redis) -> dict[str, Any]:
    """Case 4: store and load a ~5 MB prediction trie, then one deep lookup."""
    agent = "trie-agent"
    relay = await rs.RedisBackend.connect(server.url, key_prefix="bench:c4:relay:")
    peer = PeerStore(server.url, "bench:c4:peer:")
    envelope = make_trie()
    wire_bytes = len(envelope.to_json().encode())
    as_dict = envelope.to_dict()
    path = deep_path()

    def model_lookup(env: rs.TrieEnvelope) -> float:
        node = env.root
        for name in path:
            node = node.children[name]
        return node.predictions_by_call_index[1].output_tokens.p50

    def dict_lookup(env: dict[str, Any]) -> float:
        node = env["root"]
        for name in path:
            node = node["children"][name]
        return float(node["predictions_by_call_index"]["1"]["output_tokens"]["p50"])

    async def relay_load() -> float:
        loaded = await relay.load_trie(agent)
        assert loaded is not None
        return model_lookup(loaded)

    async def peer_load() -> float:
        loaded = await peer.load_trie(agent)
        assert loaded is not None
        return dict_lookup(loaded)

    store_actions: dict[str, Callable[[], Awaitable[None]]] = {
        "relay_store": lambda: relay.store_trie(agent, envelope),
        "peer": lambda: peer.store_trie(agent, as_dict),
    }
    load_actions: dict[str, Callable[[], Awaitable[float]]] = {"relay_store": relay_load, "peer": peer_load}
    stores: dict[str, list[int]] = {"relay_store": [], "peer": []}
    loads: dict[str, list[int]] = {"relay_store": [], "peer": []}
    totals: dict[str, list[int]] = {"relay_store": [], "peer": []}
    looked_up: dict[str, float] = {}
    try:
        for name in stores:  # warm-up
            await store_actions[name]()
            looked_up[name] = await load_actions[name]()
        for rep_no in range(cfg.trie_reps):
            for name in alternating(list(stores), rep_no):
                quiet()
                t_store = await timed(store_actions[name])
                quiet()
                t_load = await timed(load_actions[name])
                stores[name].append(t_store)
                loads[name].append(t_load)
                totals[name].append(t_store + t_load)
    finally:
        await relay.close()
        await peer.close()
        admin.flushdb()
    return {
        "description": f"store + load of a {wire_bytes / 1e6:.1f} MB prediction trie, then one deep lookup",
        "wire_bytes": wire_bytes,
        "lookup_path": ["root", *path],
        "looked_up_value": looked_up,
        "contenders": {
            name: {"store": summarize(stores[name]), "load_lookup": summarize(loads[name]),
                   "total": summarize(totals[name])}
            for name in stores
        },
    }


async def case_in_memory_cycle(cfg: Config) -> dict[str, Any]:
    """Case 5: 100 store_run + one list_runs on a fresh in-memory backend."""
    agent = "cycle-agent"
    runs = make_runs(agent, cfg.cycle_runs, CALLS_PER_RUN)
    factories: dict[str, Callable[[], rs.StorageBackend]] = {
        "InMemoryBackend": rs.InMemoryBackend,
        "PyInMemoryBackend": rs.PyInMemoryBackend,
    }
    samples: dict[str, list[int]] = {name: [] for name in factories}
    listed: dict[str, int] = {}

    async def cycle(backend: rs.StorageBackend) -> int:
        for r in runs:
            await backend.store_run(r)
        return len(await backend.list_runs(agent))

    for name, factory in factories.items():  # warm-up
        for _ in range(10):
            listed[name] = await cycle(factory())
    for rep_no in range(cfg.cycle_reps):
        for name in alternating(list(factories), rep_no):
            backend = factories[name]()
            quiet()
            samples[name].append(await timed(lambda: cycle(backend)))
            await backend.close()
    return {
        "description": f"{cfg.cycle_runs} x store_run + 1 x list_runs on a fresh in-memory backend",
        "listed_runs": listed,
        "contenders": {name: summarize(s) for name, s in samples.items()},
    }


def case_memory(cfg: Config) -> dict[str, Any]:
    """Case 6: resident memory of 100,000 runs, each backend in a fresh process."""
    probe = BENCH_DIR / "memory_probe.py"
    measured: dict[str, list[dict[str, Any]]] = {"InMemoryBackend": [], "PyInMemoryBackend": []}
    kinds = {"InMemoryBackend": "rust", "PyInMemoryBackend": "python"}
    for rep_no in range(cfg.memory_reps):
        for name in alternating(list(measured), rep_no):
            args = [sys.executable, str(probe), kinds[name], str(cfg.memory_runs),
                    str(cfg.memory_calls_per_run), str(cfg.memory_agents)]
            out = subprocess.run(args, check=True, capture_output=True, text=True, timeout=600)
            measured[name].append(json.loads(out.stdout))
    contenders: dict[str, Any] = {}
    for name, reps in measured.items():
        contenders[name] = {
            "n": len(reps),
            "median_held_bytes_per_run": statistics.median(r["held_bytes_per_run"] for r in reps),
            "median_peak_bytes_per_run": statistics.median(r["peak_bytes_per_run"] for r in reps),
            "stored_runs": reps[0]["stored_runs"],
            "processes": reps,
        }
    return {
        "description": (f"RSS holding {cfg.memory_runs:,} runs of {cfg.memory_calls_per_run} call "
                        f"for {cfg.memory_agents} agent(s), fresh process per backend"),
        "runs": cfg.memory_runs,
        "calls_per_run": cfg.memory_calls_per_run,
        "agents": cfg.memory_agents,
        "contenders": contenders,
    }


# -- ratios --------------------------------------------------------------------


@dataclass(frozen=True)
class Ratio:
    key: str
    label: str
    value: float | None
    op: str  # "<=" or ">="
    target: float

    @property
    def met(self) -> bool | None:
        if self.value is None:
            return None
        return self.value <= self.target if self.op == "<=" else self.value >= self.target


def _get(results: dict[str, Any], *keys: str) -> float | None:
    node: Any = results
    for k in keys:
        if not isinstance(node, dict) or k not in node:
            return None
        node = node[k]
    return float(node)


def _div(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


def compute_ratios(results: dict[str, Any]) -> list[Ratio]:
    c = "contenders"
    relay_p50 = _get(results, "store_latency", c, "relay_store", "median_ns")
    return [
        Ratio("store_p50_vs_peer", "store_run p50: relay_store / peer", _div(
            relay_p50, _get(results, "store_latency", c, "peer", "median_ns")), "<=", 0.6),
        Ratio("store_p50_vs_ping", "store_run p50: relay_store / PING floor (socket)", _div(
            relay_p50, _get(results, "store_latency", c, "ping_socket", "median_ns")), "<=", 1.5),
        Ratio("throughput_vs_peer", "throughput 64 tasks: relay_store / peer", _div(
            _get(results, "store_throughput", c, "relay_store", "median_runs_per_s"),
            _get(results, "store_throughput", c, "peer", "median_runs_per_s")), ">=", 5.0),
        Ratio("list_speedup_vs_peer", "list_runs(1000) speed-up vs peer (as it comes)", _div(
            _get(results, "list_runs", c, "peer", "median_ns"),
            _get(results, "list_runs", c, "relay_store", "median_ns")), ">=", 3.0),
        Ratio("list_speedup_vs_reference", "list_runs(1000) speed-up vs reference (as it comes)", _div(
            _get(results, "list_runs", c, "reference_pattern", "median_ns"),
            _get(results, "list_runs", c, "relay_store", "median_ns")), ">=", 50.0),
        Ratio("trie_speedup_vs_peer", "trie store+load speed-up vs peer", _div(
            _get(results, "trie", c, "peer", "total", "median_ns"),
            _get(results, "trie", c, "relay_store", "total", "median_ns")), ">=", 2.0),
        Ratio("in_memory_cycle_rust_over_python", "in-memory cycle: Rust / Python time", _div(
            _get(results, "in_memory_cycle", c, "InMemoryBackend", "median_ns"),
            _get(results, "in_memory_cycle", c, "PyInMemoryBackend", "median_ns")), "<=", 1.5),
        Ratio("memory_rust_over_python", "bytes/run: InMemoryBackend / PyInMemoryBackend", _div(
            _get(results, "memory", c, "InMemoryBackend", "median_held_bytes_per_run"),
            _get(results, "memory", c, "PyInMemoryBackend", "median_held_bytes_per_run")), "<=", 1.0),
    ]


# -- reporting -------------------------------------------------------------------


def fmt_ns(ns: float | None) -> str:
    if ns is None:
        return "-"
    if ns >= 1e9:
        return f"{ns / 1e9:.2f} s"
    if ns >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    return f"{ns / 1e3:.1f} us"


def print_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows)]
    line = "  ".join("-" * w for w in widths)
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths)))
    print(line)
    for row in rows:
        print("  ".join(str(x).ljust(w) if i < 2 else str(x).rjust(w)
                        for i, (x, w) in enumerate(zip(row, widths))))


def median_rows(results: dict[str, Any]) -> list[list[str]]:
    """One row per (case, contender): median, p99, sample count."""
    rows: list[list[str]] = []
    for case, data in results.items():
        if "error" in data:
            rows.append([case, "ERROR", data["error"], "", ""])
            continue
        for name, s in data["contenders"].items():
            if case == "store_throughput":
                rows.append([case, name, f"{s['median_runs_per_s']:,.0f} runs/s",
                             f"(rep {fmt_ns(s['median_elapsed_ns'])})", str(s["n"])])
            elif case == "trie":
                continue  # below: one row per part, contenders side by side
            elif case == "memory":
                rows.append([case, name, f"{s['median_held_bytes_per_run']:,.0f} B/run",
                             f"(peak {s['median_peak_bytes_per_run']:,.0f})", str(s["n"])])
            else:
                rows.append([case, name, fmt_ns(s["median_ns"]), fmt_ns(s["p99_ns"]), str(s["n"])])
        if case == "trie":
            for part in ("store", "load_lookup", "total"):
                for name, s in data["contenders"].items():
                    rows.append([f"trie.{part}", name, fmt_ns(s[part]["median_ns"]),
                                 fmt_ns(s[part]["p99_ns"]), str(s[part]["n"])])
    return rows


def print_report(results: dict[str, Any], ratios: list[Ratio]) -> None:
    print()
    print_table(["case", "contender", "median", "p99 / note", "n"], median_rows(results))
    print()
    rows = []
    for r in ratios:
        value = "-" if r.value is None else f"{r.value:.2f}x"
        verdict = "n/a" if r.met is None else ("met" if r.met else "MISSED")
        rows.append([r.label, "", value, f"{r.op} {r.target:g}x", verdict])
    print_table(["ratio", "", "value", "target", "result"], rows)
    for label, value in info_ratios(results).values():
        if value is not None:
            print(f"(info) {label}: {value:.2f}x")


def info_ratios(results: dict[str, Any]) -> dict[str, tuple[str, float | None]]:
    """Context without a target: key -> (label, value)."""
    c = "contenders"

    def lists(name: str) -> float | None:
        return _get(results, "list_runs", c, name, "median_ns")

    return {
        "store_p50_vs_ping_asyncio": ("store_run p50 / PING over asyncio streams", _div(
            _get(results, "store_latency", c, "relay_store", "median_ns"),
            _get(results, "store_latency", c, "ping_asyncio", "median_ns"))),
        "list_untracked_speedup_vs_peer": ("list_runs(1000), tracking off: speed-up vs peer", _div(
            lists("peer"), lists("relay_store_untracked"))),
        "list_untracked_speedup_vs_reference": ("list_runs(1000), tracking off: speed-up vs reference pattern", _div(
            lists("reference_pattern"), lists("relay_store_untracked"))),
        "list_cold_speedup_vs_peer": ("list_runs(1000), run cache off: speed-up vs peer", _div(
            lists("peer"), lists("relay_store_cold"))),
        "list_cold_speedup_vs_reference": ("list_runs(1000), run cache off: speed-up vs reference pattern", _div(
            lists("reference_pattern"), lists("relay_store_cold"))),
    }


# -- machine info and output ---------------------------------------------------------


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_info(admin: redis.Redis) -> dict[str, Any]:
    import hiredis
    from redis.utils import HIREDIS_AVAILABLE

    info = admin.info("server")
    return {
        "cpu_model": cpu_model(),
        "cpu_cores": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "python_implementation": platform.python_implementation(),
        "redis_server": info.get("redis_version"),
        "relay_store": rs.__version__,
        "relay_store_io_spin_us": _native.io_spin_us,
        "redis_py": redis.__version__,
        "hiredis": hiredis.__version__,
        "hiredis_parser_in_use": bool(HIREDIS_AVAILABLE),
        "orjson": orjson.__version__,
        "event_loop": type(asyncio.get_running_loop()).__name__,
    }


def write_json(doc: dict[str, Any]) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    text = json.dumps(doc, indent=2, sort_keys=False) + "\n"
    target = RESULTS_DIR / f"{stamp}-{doc['config']['mode']}.json"
    for path in (target, RESULTS_DIR / "latest.json"):
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
    return target


# -- main ------------------------------------------------------------------------


async def run_all(cfg: Config) -> tuple[dict[str, Any], bool]:
    started = time.perf_counter()
    results: dict[str, Any] = {}
    failed = False

    def progress(msg: str) -> None:
        print(f"[{time.perf_counter() - started:6.1f}s] {msg}", file=sys.stderr, flush=True)

    with RedisServer() as server, server.client() as admin:
        machine = machine_info(admin)
        progress(f"redis-server {machine['redis_server']} on port {server.port}; mode {cfg.mode}")
        cases: list[tuple[str, Callable[[], Awaitable[dict[str, Any]]]]] = [
            ("store_latency", lambda: case_store_latency(cfg, server, admin)),
            ("store_throughput", lambda: case_store_throughput(cfg, server, admin)),
            ("list_runs", lambda: case_list_runs(cfg, server, admin)),
            ("trie", lambda: case_trie(cfg, server, admin)),
            ("in_memory_cycle", lambda: case_in_memory_cycle(cfg)),
            ("memory", lambda: asyncio.to_thread(case_memory, cfg)),
        ]
        for name, case in cases:
            progress(f"{name} ...")
            t0 = time.perf_counter()
            try:
                results[name] = await case()
            except Exception as exc:  # record, keep going: one broken case must not hide the rest
                failed = True
                traceback.print_exc()
                results[name] = {"error": f"{type(exc).__name__}: {exc}"}
            results.get(name, {})["wall_s"] = round(time.perf_counter() - t0, 2)
            progress(f"{name} done in {results[name]['wall_s']:.1f}s")
            gc.collect()
    ratios = compute_ratios(results)
    doc = {
        "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "wall_s": round(time.perf_counter() - started, 2),
        "machine": machine,
        "config": asdict(cfg),
        "cases": results,
        "ratios": [
            {"key": r.key, "label": r.label, "value": r.value, "op": r.op, "target": r.target, "met": r.met}
            for r in ratios
        ],
        "info": {key: value for key, (_, value) in info_ratios(results).items()},  # context without a target
    }
    print_report(results, ratios)
    path = write_json(doc)
    print(f"\nwall time {doc['wall_s']:.1f}s; results: {path} (and {path.with_name('latest.json')})")
    return doc, failed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions; under two minutes")
    args = parser.parse_args(argv)
    _, failed = asyncio.run(run_all(QUICK if args.quick else FULL))
    # Missed targets never fail the run; only a case that could not be measured does.
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
