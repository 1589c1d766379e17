"""The comparison points that are not relay_store.

- `PeerStore`: what a competent Python user would write without relay_store:
  redis.asyncio (hiredis parser) + orjson on plain dicts, with NeMo Relay's key
  layout (SPEC §2).
- `reference_list_runs`: NeMo Relay's own list pattern (LRANGE, then one GET per
  run, awaited one after another).
- `PingFloor` / `AsyncPingFloor`: a bare PING round trip to the same server, the
  floor under any single-round-trip command.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import orjson
import redis.asyncio as aioredis


def _text(raw: bytes | str) -> str:
    # The client returns bytes (decode_responses is off); the stubs also allow str.
    return raw.decode() if isinstance(raw, bytes) else raw


class PeerStore:
    """Runs and tries as plain dicts, JSON by orjson, Redis by redis.asyncio."""

    def __init__(self, url: str, key_prefix: str) -> None:
        self.client: aioredis.Redis = aioredis.Redis.from_url(url)
        self.prefix = key_prefix

    async def store_run(self, run: dict[str, Any]) -> None:
        """Record + index entry in one MULTI/EXEC (one round trip).

        Unlike relay_store this does not check whether the id is already
        indexed: storing the same run twice indexes it twice.
        """
        agent, run_id = run["agent_id"], run["id"]
        pipe = self.client.pipeline(transaction=True)
        pipe.set(f"{self.prefix}runs:{agent}:{run_id}", orjson.dumps(run))
        pipe.rpush(f"{self.prefix}runs_index:{agent}", run_id)
        await pipe.execute()

    async def list_runs(self, agent_id: str) -> list[dict[str, Any]]:
        """LRANGE, then one MGET for every record (two round trips)."""
        raw_ids = await self.client.lrange(f"{self.prefix}runs_index:{agent_id}", 0, -1)
        if not raw_ids:
            return []
        ids = list(dict.fromkeys(_text(i) for i in raw_ids))  # first occurrence wins
        values = await self.client.mget([f"{self.prefix}runs:{agent_id}:{i}" for i in ids])
        return [orjson.loads(v) for v in values if v is not None]

    async def store_trie(self, agent_id: str, envelope: dict[str, Any]) -> None:
        await self.client.set(f"{self.prefix}trie:{agent_id}", orjson.dumps(envelope))

    async def load_trie(self, agent_id: str) -> dict[str, Any] | None:
        raw = await self.client.get(f"{self.prefix}trie:{agent_id}")
        return None if raw is None else orjson.loads(raw)

    async def close(self) -> None:
        await self.client.aclose()


async def reference_list_runs(client: aioredis.Redis, prefix: str, agent_id: str) -> list[dict[str, Any]]:
    """NeMo Relay's list pattern: LRANGE, then GET each record in turn."""
    raw_ids = await client.lrange(f"{prefix}runs_index:{agent_id}", 0, -1)
    runs: list[dict[str, Any]] = []
    for raw in raw_ids:
        value = await client.get(f"{prefix}runs:{agent_id}:{_text(raw)}")
        if value is not None:
            runs.append(orjson.loads(value))
    return runs


class PingFloor:
    """A plain blocking TCP socket that sends inline PING and reads +PONG."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def ping(self) -> None:
        self.sock.sendall(b"PING\r\n")
        reply = b""
        while not reply.endswith(b"\r\n"):
            chunk = self.sock.recv(64)
            if not chunk:
                raise ConnectionError("redis-server closed the connection")
            reply += chunk
        if reply != b"+PONG\r\n":
            raise RuntimeError(f"unexpected PING reply {reply!r}")

    def close(self) -> None:
        self.sock.close()


class AsyncPingFloor:
    """The same PING over asyncio streams: the floor including one event-loop wake-up."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def connect(cls, port: int) -> AsyncPingFloor:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(reader, writer)

    async def ping(self) -> None:
        self.writer.write(b"PING\r\n")
        reply = await self.reader.readline()
        if reply != b"+PONG\r\n":
            raise RuntimeError(f"unexpected PING reply {reply!r}")

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()
