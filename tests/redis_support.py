"""Test helpers for Redis: a private redis-server, and a TCP proxy that can
delay, stall or cut connections.

Every server binds 127.0.0.1 on a free port with its data in a temporary
directory, and is stopped by the test that started it. Nothing here talks to
anything but the loopback interface.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import redis


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def redis_server_binary() -> str:
    path = shutil.which("redis-server")
    if path is None:
        raise RuntimeError(
            "redis-server is not installed; `make test` installs it (apt-get install redis-server)"
        )
    return path


class RedisServer:
    """A redis-server process of our own; `restart()` keeps port and data dir."""

    def __init__(self, *, password: str | None = None, extra_args: list[str] | None = None) -> None:
        self.port = free_port()
        self.password = password
        self.extra_args = list(extra_args or [])
        self.dir = Path(tempfile.mkdtemp(prefix="relay-store-redis-"))
        self.unix_socket = str(self.dir / "redis.sock")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def client(self, db: int = 0, protocol: int | None = None) -> redis.Redis:
        # protocol=2 talks to a server that refuses HELLO (RESP3).
        extra = {} if protocol is None else {"protocol": protocol}
        return redis.Redis(host="127.0.0.1", port=self.port, password=self.password, db=db, **extra)

    def start(self) -> RedisServer:
        args = [
            redis_server_binary(),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.dir),
            "--unixsocket", self.unix_socket,
            "--unixsocketperm", "700",
            "--save", "",
            "--appendonly", "no",
            "--protected-mode", "no",
            "--logfile", str(self.dir / "redis.log"),
        ]
        if self.password:
            args += ["--requirepass", self.password]
        args += self.extra_args
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            self._wait_until_up()
        except BaseException:
            self.stop()  # a server that never came up is not left running
            raise
        return self

    def _wait_until_up(self) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + 10
        while True:
            try:
                if self.client(protocol=2).ping():
                    return
            except redis.exceptions.ConnectionError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                log = (self.dir / "redis.log").read_text() if (self.dir / "redis.log").exists() else ""
                raise RuntimeError(f"redis-server did not start on port {self.port}:\n{log}")
            time.sleep(0.02)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> RedisServer:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *exc: Any) -> None:
        self.close()


class FaultyProxy:
    """A loopback TCP proxy in front of a server, with faults on demand.

    - `delay`: one-way latency in seconds, in each direction;
    - `stall()` / `resume()`: hold every byte (connections stay open);
    - `hold(n)` / `release(n)`: hold the replies of the n-th connection made
      (from 0) only;
    - `cut()`: abort every open connection, as a crashed peer or NAT would;
    - `blackhole`: accept connections and never answer (a hung server).
    """

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.delay = 0.0
        self.blackhole = False
        self.connections_made = 0
        self._open = asyncio.Event()
        self._open.set()
        self._replies_open: dict[int, asyncio.Event] = {}
        self._transports: set[asyncio.WriteTransport] = set()
        self._server: asyncio.Server | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> FaultyProxy:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def stall(self) -> None:
        self._open.clear()

    def resume(self) -> None:
        self._open.set()

    def hold(self, n: int) -> None:
        self._replies_open.setdefault(n, asyncio.Event()).clear()

    def release(self, n: int) -> None:
        self._replies_open.setdefault(n, asyncio.Event()).set()

    def cut(self) -> None:
        for t in list(self._transports):
            t.abort()
        self._transports.clear()

    async def close(self) -> None:
        self.resume()
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        index, self.connections_made = self.connections_made, self.connections_made + 1
        replies_open = self._replies_open.get(index)
        if replies_open is None:  # not held before it was made
            replies_open = self._replies_open[index] = asyncio.Event()
            replies_open.set()
        self._transports.add(writer.transport)
        if self.blackhole:
            try:
                while await reader.read(65536):
                    pass
            finally:
                writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            writer.transport.abort()
            return
        self._transports.add(up_writer.transport)
        await asyncio.gather(
            self._pump(reader, up_writer), self._pump(up_reader, writer, replies_open), return_exceptions=True
        )
        for w in (writer, up_writer):
            self._transports.discard(w.transport)
            w.transport.abort()

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, gate: asyncio.Event | None = None
    ) -> None:
        """Forwards one direction, each chunk `delay` seconds after it was read.

        The delay is a link's latency: chunks in flight do not wait for one
        another, so pipelined commands cost one delay, not one each. Bytes read
        while stalled are held in memory (no back-pressure: tests send little).
        """
        loop = asyncio.get_running_loop()
        in_flight: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def deliver() -> None:
            while data := (item := await in_flight.get())[1]:
                if (wait := item[0] - loop.time()) > 0:
                    await asyncio.sleep(wait)
                await self._open.wait()
                if gate is not None:
                    await gate.wait()
                writer.write(data)
                await writer.drain()
            # End of stream from the sender: pass it on once all is written.
            writer.close()
            await writer.wait_closed()

        delivering = asyncio.create_task(deliver())
        try:
            while not delivering.done() and (data := await reader.read(65536)):
                in_flight.put_nowait((loop.time() + self.delay, data))
            in_flight.put_nowait((0.0, b""))
            await delivering
        finally:
            delivering.cancel()
            await asyncio.gather(delivering, return_exceptions=True)
            writer.transport.abort()


def writer_script() -> str:
    """A program that stores runs from a separate process."""
    return (
        "import asyncio, sys, relay_store as rs\n"
        "async def main(url, prefix, agent, n):\n"
        "    b = await rs.RedisBackend.connect(url, key_prefix=prefix)\n"
        "    async with b:\n"
        "        await asyncio.gather(*(b.store_run(rs.RunRecord(agent_id=agent)) for _ in range(n)))\n"
        "asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])))\n"
    )


def env_with_package() -> dict[str, str]:
    env = dict(os.environ)
    return env
