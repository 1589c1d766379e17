"""The type stubs: real usage type-checks under ``mypy --strict``, misuse does not."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
USAGE = Path(__file__).resolve().parent / "typing_usage.py"


def run_mypy(*paths: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-incremental",
            "--cache-dir=/dev/null",
            *map(str, paths),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_usage_example_type_checks() -> None:
    result = run_mypy(USAGE)
    print(result.stdout)
    print(result.stderr)
    assert result.returncode == 0, result.stdout + result.stderr


def test_usage_example_runs() -> None:
    result = subprocess.run(
        [sys.executable, str(USAGE)], capture_output=True, text=True, timeout=120
    )
    print(result.stdout)
    print(result.stderr)
    assert result.returncode == 0, result.stderr
    assert "stored 1 run(s)" in result.stdout


MISUSE = {
    "wrong field type": "relay_store.RunRecord(agent_id=5)",
    "unknown field": "relay_store.RunRecord(agent_id='a', agent='b')",
    "positional argument": "relay_store.ParallelGroup('g', ['t'])",
    "read-only attribute": "relay_store.RunRecord(agent_id='a').agent_id = 'b'",
    "enum given an int": "relay_store.CallRecord(kind=1, name='x')",
    "stats merged with a dict": "relay_store.RunningStats().merge({})",
    "optional not narrowed": "relay_store.CallRecord(kind='llm', name='x').output_tokens + 1",
    "wrong record to backend": (
        "async def f(b: relay_store.StorageBackend) -> None:\n"
        "    await b.store_trie('a', relay_store.RunRecord(agent_id='a'))"
    ),
    "load result may be None": (
        "async def f(b: relay_store.InMemoryBackend) -> str:\n"
        "    return (await b.load_plan('a')).agent_id"
    ),
    "map keys are ints": (
        "relay_store.PredictionTrieNode(name='n').predictions_by_call_index['1']"
    ),
}


@pytest.mark.parametrize("name", sorted(MISUSE))
def test_misuse_is_rejected(name: str, tmp_path: Path) -> None:
    source = tmp_path / "misuse.py"
    source.write_text("import relay_store\n\n" + textwrap.dedent(MISUSE[name]) + "\n")
    result = run_mypy(source)
    print(result.stdout)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "error:" in result.stdout
    # The only errors are about the misuse, never about relay_store itself.
    assert "relay_store/" not in result.stdout, result.stdout


def test_backends_satisfy_the_protocol_statically(tmp_path: Path) -> None:
    source = tmp_path / "protocol.py"
    source.write_text(
        textwrap.dedent(
            """
            import relay_store
            from relay_store import StorageBackend

            async def f(url: str) -> list[StorageBackend]:
                return [
                    relay_store.InMemoryBackend(),
                    relay_store.PyInMemoryBackend(),
                    await relay_store.RedisBackend.connect(url, key_prefix="p:", connect_timeout=1.0),
                    await relay_store.open_backend({"kind": "in_memory"}),
                ]
            """
        )
    )
    result = run_mypy(source)
    assert result.returncode == 0, result.stdout + result.stderr


def test_stubs_match_the_native_module() -> None:
    # stubtest imports the extension and compares every class, method,
    # parameter name, default and kind against _native.pyi, so the stubs
    # cannot drift from the Rust side unnoticed.
    result = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "relay_store._native"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    print(result.stdout)
    print(result.stderr)
    assert result.returncode == 0, result.stdout + result.stderr
