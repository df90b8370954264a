"""The counters of every process (gunicorn workers, Celery workers), added up in Redis.

Each process counts into an in-memory buffer (a dict update under a lock: microseconds), and a
daemon thread adds the buffer into Redis hashes every ``MONITORING_FLUSH_SECONDS`` in one
pipelined round trip (HINCRBY / HINCRBYFLOAT), so a request never waits for Redis. Celery
workers also flush at the end of each task. With ``MONITORING_FLUSH_SECONDS = 0`` every request
flushes at once (one round trip per request).

Failing open: every call to Redis goes through the process's circuit breaker
(trading/redis_breaker.py). When Redis does not answer, or the breaker skips it, the buffer is
kept (it only holds one number per label set, so it cannot grow without bound); the next
successful flush adds everything counted meanwhile. The flusher thread is then usually the one
that makes the breaker's trial call, off any request. A process that dies loses at most its
last interval.

Redis keys (under the cache's KEY_PREFIX; fields joined by ``SEP``):

- ``mon:http:count``   method, route, status  -> requests
- ``mon:http:latency`` method, route, bucket index or ``sum``  -> requests / seconds
- ``mon:db``           bucket index, ``sum`` or ``errors``  -> queries / seconds / failed queries
- ``mon:celery``       task name, outcome  -> tasks
- ``mon:since``        when counting started (Unix time), set once
"""

import atexit
import functools
import logging
import os
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache

from audit.monitoring.histogram import DB_BUCKETS, HTTP_BUCKETS, bucket_index
from trading.redis_breaker import log_once, redis_attempt

log = logging.getLogger(__name__)

SEP = "\x1f"  # cannot occur in a method, a route pattern, a status or a task name
HTTP_COUNT = "mon:http:count"
HTTP_LATENCY = "mon:http:latency"
DB = "mon:db"
CELERY = "mon:celery"
SINCE = "mon:since"
HASHES = (HTTP_COUNT, HTTP_LATENCY, DB, CELERY)
SUM, ERRORS = "sum", "errors"

_lock = threading.Lock()
_buffer: dict[tuple[str, str], float] = defaultdict(float)
_flusher: threading.Thread | None = None


def _reinit_after_fork() -> None:
    """A forked child starts empty: its parent flushes what it counted, and no thread (nor a
    lock held by one) survives a fork."""
    global _lock, _buffer, _flusher
    _lock = threading.Lock()
    _buffer = defaultdict(float)
    _flusher = None


os.register_at_fork(after_in_child=_reinit_after_fork)


# --- Counting -----------------------------------------------------------------------------------


def enabled() -> bool:
    return bool(getattr(settings, "MONITORING_ENABLED", True))


def flush_interval() -> float:
    return float(getattr(settings, "MONITORING_FLUSH_SECONDS", 1.0))


def _add(items: list[tuple[str, str, float]]) -> None:
    with _lock:
        for key, name, amount in items:
            _buffer[(key, name)] += amount
    _start_flusher()


def http_observe(*, method: str, route: str, status: int, seconds: float) -> None:
    label = f"{method}{SEP}{route}"
    _add(
        [
            (HTTP_COUNT, f"{label}{SEP}{status}", 1),
            (HTTP_LATENCY, f"{label}{SEP}{bucket_index(HTTP_BUCKETS, seconds)}", 1),
            (HTTP_LATENCY, f"{label}{SEP}{SUM}", seconds),
        ]
    )
    if flush_interval() <= 0:
        flush()


def db_observe(*, seconds: float, error: bool) -> None:
    items = [(DB, str(bucket_index(DB_BUCKETS, seconds)), 1.0), (DB, SUM, seconds)]
    if error:
        items.append((DB, ERRORS, 1))
    _add(items)


def celery_observe(*, task: str, outcome: str) -> None:
    _add([(CELERY, f"{task}{SEP}{outcome}", 1)])


# --- Flushing -----------------------------------------------------------------------------------


@functools.lru_cache(maxsize=8)
def _client_of(backend: RedisCache) -> Any:
    return backend._cache.get_client(None, write=True)


def redis_client() -> tuple[Any, RedisCache] | None:
    """A client of the cache's Redis (with its short socket timeouts), and the cache for its
    key prefix; None when the cache is not Redis."""
    backend = caches["default"]
    if not isinstance(backend, RedisCache):
        return None
    return _client_of(backend), backend


def flush() -> bool:
    """Add this process's buffer into Redis in one round trip. False (and the buffer kept) when
    Redis did not answer or the circuit breaker skips it."""
    with _lock:
        pending = dict(_buffer)
        _buffer.clear()
    if not pending:
        return True

    def add() -> bool:
        found = redis_client()
        if found is None:
            return True  # not Redis: nowhere to add up; drop
        client, backend = found
        pipe = client.pipeline(transaction=False)
        pipe.set(backend.make_key(SINCE), repr(time.time()), nx=True)
        for (key, name), amount in pending.items():
            if name == SUM or name.endswith(SEP + SUM):
                pipe.hincrbyfloat(backend.make_key(key), name, amount)
            else:
                pipe.hincrby(backend.make_key(key), name, int(amount))
        pipe.execute()
        return True

    if redis_attempt("monitoring flush", add, False):
        return True
    with _lock:
        for item, amount in pending.items():
            _buffer[item] += amount
    log_once("monitoring flush", "monitoring counters kept in memory: Redis unreachable")
    return False


def _flush_forever() -> None:
    while True:
        time.sleep(max(flush_interval(), 0.05))
        try:
            flush()
        except Exception:  # never let the thread die
            log.exception("monitoring flush failed")


def _start_flusher() -> None:
    global _flusher
    if _flusher is not None or flush_interval() <= 0:
        return
    with _lock:
        if _flusher is not None:
            return
        _flusher = threading.Thread(target=_flush_forever, name="atb-monitoring", daemon=True)
        _flusher.start()


atexit.register(flush)


# --- Reading ------------------------------------------------------------------------------------


@dataclass
class Histogram:
    bounds: tuple[float, ...]
    counts: list[int]  # per bucket, len(bounds) + 1 (the last is +Inf)
    sum: float = 0.0

    @property
    def count(self) -> int:
        return sum(self.counts)

    @classmethod
    def empty(cls, bounds: tuple[float, ...]) -> "Histogram":
        return cls(bounds=bounds, counts=[0] * (len(bounds) + 1))

    def add(self, other: "Histogram") -> None:
        """Add ``other`` (same bounds) into this one."""
        self.counts = [a + b for a, b in zip(self.counts, other.counts, strict=True)]
        self.sum += other.sum


@dataclass
class Snapshot:
    """Every process's counters, as Redis holds them."""

    since: datetime | None
    http_requests: dict[tuple[str, str, str], int] = field(default_factory=dict)
    http_latency: dict[tuple[str, str], Histogram] = field(default_factory=dict)
    db: Histogram = field(default_factory=lambda: Histogram.empty(DB_BUCKETS))
    db_errors: int = 0
    celery: dict[tuple[str, str], int] = field(default_factory=dict)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _read_all() -> list[Any] | None:
    found = redis_client()
    if found is None:
        return None
    client, backend = found
    pipe = client.pipeline(transaction=False)
    pipe.get(backend.make_key(SINCE))
    for key in HASHES:
        pipe.hgetall(backend.make_key(key))
    read: list[Any] = pipe.execute()
    return read


def snapshot() -> Snapshot | None:
    """Every counter, read in one round trip; None when Redis does not answer (or the circuit
    breaker skips it)."""
    if redis_client() is None:
        return Snapshot(since=None)
    read = redis_attempt("monitoring read", _read_all, None)
    if read is None:
        return None
    since_raw, http_count, http_latency, db, celery = read
    since = (
        datetime.fromtimestamp(float(_text(since_raw)), tz=UTC) if since_raw is not None else None
    )
    snap = Snapshot(since=since)
    for raw_name, raw_value in http_count.items():
        method, route, status = _text(raw_name).split(SEP)
        snap.http_requests[(method, route, status)] = int(raw_value)
    for raw_name, raw_value in http_latency.items():
        method, route, part = _text(raw_name).split(SEP)
        hist = snap.http_latency.setdefault((method, route), Histogram.empty(HTTP_BUCKETS))
        if part == SUM:
            hist.sum = float(raw_value)
        else:
            hist.counts[int(part)] += int(raw_value)
    for raw_name, raw_value in db.items():
        part = _text(raw_name)
        if part == SUM:
            snap.db.sum = float(raw_value)
        elif part == ERRORS:
            snap.db_errors = int(raw_value)
        else:
            snap.db.counts[int(part)] += int(raw_value)
    for raw_name, raw_value in celery.items():
        task, outcome = _text(raw_name).split(SEP)
        snap.celery[(task, outcome)] = int(raw_value)
    return snap


def reset() -> None:
    """Forget every counter, in Redis and in this process (tests; a fresh start)."""
    with _lock:
        _buffer.clear()
    found = redis_client()
    if found is not None:
        client, backend = found
        client.delete(*(backend.make_key(k) for k in (*HASHES, SINCE)))
