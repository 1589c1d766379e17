"""Case 6 child process: resident memory of one in-memory backend holding N runs.

Run by run.py in a fresh interpreter per backend, so neither measurement sees
the other's heap:

    python benchmarks/memory_probe.py {rust|python} RUNS CALLS AGENTS

It prints one JSON object on stdout. Memory figures come from /proc/self/status:
VmRSS before and after storing, and VmHWM (peak RSS) over the storing phase,
after resetting the peak with /proc/self/clear_refs when the kernel allows it.
"""

from __future__ import annotations

import asyncio
import gc
import json
import resource
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import relay_store as rs  # noqa: E402

from workloads import make_run  # noqa: E402


def proc_status_kib() -> dict[str, int]:
    fields: dict[str, int] = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                fields[key] = int(value.split()[0])
    return fields


def reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


async def fill(backend: rs.StorageBackend, runs: int, calls: int, agents: int) -> None:
    # The record is a temporary: once store_run returns, only the backend keeps it.
    for i in range(runs):
        await backend.store_run(make_run(f"agent-{i % agents}", i, calls))


async def measure(kind: str, runs: int, calls: int, agents: int) -> dict[str, object]:
    backend: rs.StorageBackend = rs.InMemoryBackend() if kind == "rust" else rs.PyInMemoryBackend()
    # Warm up allocators, the model classes and the coroutine machinery on a
    # throwaway agent, so the baseline already includes their one-off costs.
    for i in range(100):
        await backend.store_run(make_run("warm-up", i, calls))
    gc.collect()
    before = proc_status_kib()["VmRSS"]
    peak_reset = reset_peak()
    await fill(backend, runs, calls, agents)
    gc.collect()
    after = proc_status_kib()
    stored = sum([len(await backend.list_runs(f"agent-{a}")) for a in range(agents)])
    peak_kib = after["VmHWM"] if peak_reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "backend": "InMemoryBackend" if kind == "rust" else "PyInMemoryBackend",
        "runs": runs,
        "calls_per_run": calls,
        "agents": agents,
        "stored_runs": stored,
        "rss_before_bytes": before * 1024,
        "rss_after_bytes": after["VmRSS"] * 1024,
        "peak_rss_bytes": peak_kib * 1024,
        "peak_is_phase_only": peak_reset,
        "held_bytes_per_run": (after["VmRSS"] - before) * 1024 / runs,
        "peak_bytes_per_run": (peak_kib - before) * 1024 / runs,
    }


def main() -> None:
    kind, runs, calls, agents = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    if kind not in ("rust", "python"):
        raise SystemExit("usage: memory_probe.py {rust|python} RUNS CALLS AGENTS")
    print(json.dumps(asyncio.run(measure(kind, runs, calls, agents))))


if __name__ == "__main__":
    main()
