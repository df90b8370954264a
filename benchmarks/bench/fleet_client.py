"""The fleet's HTTP side: a bounded pool of raw HTTP/1.1 connections on asyncio, and the
recorder of every answer.

One event loop carries every simulated bot and the dashboard client, so the client costs a few
percent of one core at the fleet sizes measured (the run reports its own CPU and the loop's lag
to show it is not the bottleneck). Connections are kept alive when the server allows it
(gunicorn's sync workers close each one after its answer; the gthread worker keeps them).
A request's latency runs from the moment it was due, waiting for a free connection included.
"""

import asyncio
import time
from collections import defaultdict
from dataclasses import dataclass, field

from benchmarks.bench.report import percentile

HOST = "127.0.0.1"  # loopback only: the fleet never leaves the machine
ERROR_EXCERPT = 300
# A request unanswered after this long is an error (status 0), not a run that never ends.
REQUEST_TIMEOUT = 60.0


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes


class Pool:
    """At most ``size`` connections to 127.0.0.1:``port``, each carrying one request at a time."""

    def __init__(self, port: int, size: int) -> None:
        self.port = port
        self.size = size
        self._slots = asyncio.Semaphore(size)
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self.opened = 0

    async def request(
        self, method: str, path: str, headers: dict[str, str], body: bytes = b""
    ) -> Answer:
        async with self._slots:
            reused = bool(self._idle)
            conn = self._idle.pop() if reused else await self._open()
            try:
                answer, keep = await _exchange(conn, method, path, headers, body)
            except (ConnectionError, asyncio.IncompleteReadError):
                conn[1].close()
                if not reused:
                    raise
                # The server closed an idle kept-alive connection: once more on a fresh one.
                conn = await self._open()
                answer, keep = await _exchange(conn, method, path, headers, body)
            except asyncio.CancelledError:  # timed out: the connection is in an unknown state
                conn[1].close()
                raise
            if keep:
                self._idle.append(conn)
            else:
                conn[1].close()
            return answer

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        self.opened += 1
        return await asyncio.open_connection(HOST, self.port)

    def close(self) -> None:
        for _, writer in self._idle:
            writer.close()
        self._idle.clear()


async def _exchange(
    conn: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    method: str,
    path: str,
    headers: dict[str, str],
    body: bytes,
) -> tuple[Answer, bool]:
    reader, writer = conn
    lines = [f"{method} {path} HTTP/1.1", f"Host: {HOST}", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
    await writer.drain()
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionResetError("closed before answering")
    status = int(status_line.split(b" ", 2)[1])
    received: dict[bytes, bytes] = {}
    while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
        name, _, value = line.partition(b":")
        received[name.strip().lower()] = value.strip()
    if b"content-length" in received:
        data = await reader.readexactly(int(received[b"content-length"]))
    elif received.get(b"transfer-encoding", b"").lower() == b"chunked":
        data = await _chunked(reader)
    else:
        data = await reader.read()  # until the server closes
        return Answer(status, data), False
    keep = received.get(b"connection", b"").lower() != b"close"
    return Answer(status, data), keep


async def _chunked(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    while size := int((await reader.readline()).split(b";")[0], 16):
        parts.append(await reader.readexactly(size))
        await reader.readline()
    while await reader.readline() not in (b"\r\n", b"\n", b""):
        pass  # trailers
    return b"".join(parts)


@dataclass
class Endpoint:
    """One endpoint's answers: latencies in seconds, and the ones that were not 2xx."""

    name: str
    seconds: list[float] = field(default_factory=list)
    errors: list[dict[str, object]] = field(default_factory=list)

    def figures(self, wall: float) -> dict[str, object]:
        count = len(self.seconds)
        body: dict[str, object] = {
            "endpoint": self.name,
            "requests": count,
            "throughput": count / wall if wall else None,
            "errors": len(self.errors),
        }
        for label, q in (("p50", 50), ("p95", 95), ("p99", 99)):
            body[label] = percentile(self.seconds, q) * 1000 if count else None
        body["max"] = max(self.seconds) * 1000 if count else None
        return body


class Recorder:
    """Every request of the run, by endpoint; stops recording at ``stop()``."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        self.endpoints: dict[str, Endpoint] = defaultdict(lambda: Endpoint(""))
        self.recording = True
        self.started = time.perf_counter()
        # (seconds since the start when it was due, latency in seconds) of every request.
        self.timeline: list[tuple[float, float]] = []

    def start(self) -> None:
        self.recording = True
        self.started = time.perf_counter()

    async def call(
        self,
        name: str,
        method: str,
        path: str,
        headers: dict[str, str],
        body: bytes = b"",
        *,
        due: float | None = None,
    ) -> Answer | None:
        """The answer, or None when it failed (recorded as an error, with status and excerpt)."""
        started = time.perf_counter() if due is None else due
        try:
            answer = await asyncio.wait_for(
                self.pool.request(method, path, headers, body), REQUEST_TIMEOUT
            )
        except (OSError, asyncio.IncompleteReadError, ValueError, TimeoutError) as exc:
            answer = Answer(0, f"{type(exc).__name__}: {exc}".encode())
        seconds = time.perf_counter() - started
        if not self.recording:
            return answer if 200 <= answer.status < 300 else None
        endpoint = self.endpoints[name]
        endpoint.name = name
        endpoint.seconds.append(seconds)
        self.timeline.append((started - self.started, seconds))
        if 200 <= answer.status < 300:
            return answer
        endpoint.errors.append(
            {
                "status": answer.status,
                "path": path,
                "body": answer.body[:ERROR_EXCERPT].decode("utf-8", "replace"),
            }
        )
        return None

    def stop(self) -> None:
        self.recording = False
