"""open_backend: building a backend from a NeMo Relay style spec (SPEC §3)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

import relay_store as rs
import relay_store._native as native
from relay_store import InvalidConfigError
from samples import plan


async def test_in_memory_spec() -> None:
    backend = await rs.open_backend({"kind": "in_memory"})
    try:
        assert isinstance(backend, rs.InMemoryBackend)
        assert isinstance(backend, rs.StorageBackend)
        await backend.store_plan(plan("a"))
        assert await backend.load_plan("a") == plan("a")
    finally:
        await backend.close()


async def test_each_in_memory_backend_is_separate() -> None:
    first = await rs.open_backend({"kind": "in_memory"})
    second = await rs.open_backend({"kind": "in_memory", "config": None})
    async with first, second:
        await first.store_plan(plan("a"))
        assert await second.load_plan("a") is None


async def test_any_mapping_is_accepted() -> None:
    class Spec(Mapping[str, Any]):
        def __getitem__(self, key: str) -> Any:
            return {"kind": "in_memory"}[key]

        def __iter__(self) -> Any:
            return iter(["kind"])

        def __len__(self) -> int:
            return 1

    backend = await rs.open_backend(Spec())
    assert isinstance(backend, rs.InMemoryBackend)
    await backend.close()


@pytest.mark.parametrize(
    "spec",
    [
        {"kind": "redis"},
        {"kind": "redis", "config": {}},
        {"kind": "redis", "config": None},
        {"kind": "redis", "config": {"key_prefix": "app:"}},
        {"kind": "redis", "config": {"url": None}},
    ],
)
async def test_redis_without_url(spec: dict[str, Any]) -> None:
    with pytest.raises(InvalidConfigError) as info:
        await rs.open_backend(spec)
    assert str(info.value) == "redis backend missing url"


@pytest.mark.parametrize("kind", ["sqlite", "memory", "IN_MEMORY", "", 5, None])
async def test_unsupported_kind(kind: Any) -> None:
    with pytest.raises(InvalidConfigError) as info:
        await rs.open_backend({"kind": kind})
    assert str(info.value) == f"unsupported backend '{kind}'"


@pytest.mark.parametrize("spec", [None, "in_memory", ["kind", "in_memory"], 5])
async def test_spec_must_be_a_mapping(spec: Any) -> None:
    with pytest.raises(InvalidConfigError, match="mapping"):
        await rs.open_backend(spec)


async def test_spec_needs_a_kind() -> None:
    with pytest.raises(InvalidConfigError, match="kind"):
        await rs.open_backend({})
    with pytest.raises(InvalidConfigError, match="kind"):
        await rs.open_backend({"config": {"url": "redis://localhost"}})


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ("redis://localhost", "config"),
        ({"url": 6379}, "url"),
        ({"url": "redis://localhost", "key_prefix": 1}, "key_prefix"),
        ({"url": "redis://localhost", "connect_timeout": "5"}, "connect_timeout"),
        ({"url": "redis://localhost", "response_timeout": True}, "response_timeout"),
    ],
)
async def test_malformed_redis_config(config: Any, field: str) -> None:
    with pytest.raises(InvalidConfigError, match=field):
        await rs.open_backend({"kind": "redis", "config": config})


def test_invalid_config_error_is_a_value_error() -> None:
    assert issubclass(InvalidConfigError, ValueError)
    assert issubclass(InvalidConfigError, rs.RelayStoreError)


class _FakeRedisBackend:
    """Stands in for RedisBackend to observe how open_backend calls connect."""

    calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    @classmethod
    async def connect(cls, *args: Any, **kwargs: Any) -> str:
        cls.calls.append((args, kwargs))
        return "connected"


@pytest.fixture
def fake_redis(monkeypatch: pytest.MonkeyPatch) -> type[_FakeRedisBackend]:
    _FakeRedisBackend.calls = []
    monkeypatch.setattr(native, "RedisBackend", _FakeRedisBackend, raising=False)
    return _FakeRedisBackend


def _connect_arguments(call: tuple[tuple[Any, ...], dict[str, Any]]) -> dict[str, Any]:
    """Normalise positional/keyword use of connect(url, key_prefix, ...)."""
    args, kwargs = call
    names = ["url", "key_prefix"]
    return {**dict(zip(names, args)), **kwargs}


async def test_redis_spec_connects_with_the_default_prefix(
    fake_redis: type[_FakeRedisBackend],
) -> None:
    result = await rs.open_backend({"kind": "redis", "config": {"url": "redis://h:1/2"}})
    assert result == "connected"
    assert len(fake_redis.calls) == 1
    assert _connect_arguments(fake_redis.calls[0]) == {
        "url": "redis://h:1/2",
        "key_prefix": "nemo_relay:",
    }


async def test_a_null_prefix_means_the_default(fake_redis: type[_FakeRedisBackend]) -> None:
    await rs.open_backend({"kind": "redis", "config": {"url": "redis://h", "key_prefix": None}})
    assert _connect_arguments(fake_redis.calls[0])["key_prefix"] == "nemo_relay:"


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"url": "redis://user:hunter2@127.0.0.1:1/\udc80"}, "url"),
        ({"url": "redis://user:hunter2@127.0.0.1:1/0", "key_prefix": "p\udc80:"}, "key_prefix"),
    ],
)
async def test_text_no_redis_key_can_hold_is_a_config_error_that_hides_the_url(config: dict[str, str], field: str) -> None:
    """Python's UnicodeEncodeError would carry the whole URL, password
    included; the error names the setting instead, and the real connect
    refuses it before dialling (port 1 would be refused anyway)."""
    with pytest.raises(InvalidConfigError, match=f"^{field} is not valid Unicode text") as info:
        await rs.open_backend({"kind": "redis", "config": config})
    error = info.value
    assert error.__cause__ is None and error.__context__ is None
    shown = [str(error), repr(error), repr(error.args)]
    assert all("hunter2" not in text for text in shown), shown
    with pytest.raises(InvalidConfigError, match=f"^{field} is not valid Unicode text"):
        await rs.RedisBackend.connect(**config)


async def test_redis_spec_passes_prefix_and_timeouts(
    fake_redis: type[_FakeRedisBackend],
) -> None:
    await rs.open_backend(
        {
            "kind": "redis",
            "config": {
                "url": "rediss://user:secret@h",
                "key_prefix": "app:",
                "connect_timeout": 1,
                "response_timeout": 2.5,
                "some_future_option": True,
            },
        }
    )
    assert _connect_arguments(fake_redis.calls[0]) == {
        "url": "rediss://user:secret@h",
        "key_prefix": "app:",
        "connect_timeout": 1.0,
        "response_timeout": 2.5,
    }


async def test_a_timeout_no_float_can_hold_is_a_config_error(fake_redis: type[_FakeRedisBackend]) -> None:
    with pytest.raises(InvalidConfigError, match="connect_timeout is too large"):
        await rs.open_backend({"kind": "redis", "config": {"url": "redis://h", "connect_timeout": 10**400}})
    assert fake_redis.calls == []
