"""Shared fixtures: every backend test runs against every backend.

To add a backend, add one entry to ``BACKEND_FACTORIES``: a coroutine function
taking the pytest ``request`` and returning an open backend. A factory that
needs a server asks for it with ``request.getfixturevalue("redis_server")``
(a session-scoped fixture), so the server is only started when such a backend
is actually selected. A missing redis-server binary fails those tests (never
skips them): `make test` installs it.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import pytest

import relay_store
from relay_store import StorageBackend
from redis_support import RedisServer

BackendFactory = Callable[[pytest.FixtureRequest], Awaitable[StorageBackend]]


async def _py_backend(request: pytest.FixtureRequest) -> StorageBackend:
    return relay_store.PyInMemoryBackend()


async def _rust_backend(request: pytest.FixtureRequest) -> StorageBackend:
    return relay_store.InMemoryBackend()


async def _redis_backend(request: pytest.FixtureRequest) -> StorageBackend:
    server = request.getfixturevalue("redis_server")
    # A fresh prefix per test: tests share one server but never see each other's keys.
    return await relay_store.RedisBackend.connect(server.url, key_prefix=f"test-{uuid.uuid4()}:")


BACKEND_FACTORIES: dict[str, BackendFactory] = {
    "py": _py_backend,
    "rust": _rust_backend,
    "redis": _redis_backend,
}


@pytest.fixture(params=sorted(BACKEND_FACTORIES))
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[StorageBackend]:
    """A fresh, empty, open backend of each kind; closed after the test."""
    store = await BACKEND_FACTORIES[request.param](request)
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One private redis-server for the session, on a free loopback port."""
    with RedisServer() as server:
        yield server


@pytest.fixture
async def redis_backend(redis_server: RedisServer) -> AsyncIterator[relay_store.RedisBackend]:
    """A Redis backend with a key prefix no other test uses."""
    backend = await relay_store.RedisBackend.connect(redis_server.url, key_prefix=f"test-{uuid.uuid4()}:")
    try:
        yield backend
    finally:
        await backend.close()
