"""A web request's deadline for waiting on PostgreSQL, enforced by the client.

A server that stops answering (frozen, overloaded past the point of scheduling, a network path
that silently drops) cannot enforce its own ``statement_timeout``; and while the kernel at the
other end still ACKs, neither TCP keepalives nor ``tcp_user_timeout`` fire. A request would then
wait until gunicorn kills the worker at GUNICORN_TIMEOUT, and the client gets a reset with no
answer. So, in the web process, every request has a deadline (DATABASE_REQUEST_DEADLINE, half of
GUNICORN_TIMEOUT by default):

- a query, commit or fetch still waiting on PostgreSQL when it passes (or one started after it)
  has its socket shut down by a watchdog thread: psycopg's wait then fails at once with an
  OperationalError ("server closed the connection unexpectedly") and marks the connection
  broken, so Django discards it, and the request gets the 503 with Retry-After that
  MonitoringMiddleware gives every database outage;
- a new connection gets no more than the time left for its connect timeout, and none once it has
  passed.

A request busy in Python, with no query waiting, is left alone. The worker lives on, and the
next request opens a fresh connection. The watchdog is one thread per process, started with the
first request (after gunicorn's fork), asleep until the earliest deadline; arming costs a dict
insert under a lock.
"""

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import psycopg
from django.conf import settings
from django.db import connections
from django.http import HttpRequest, HttpResponseBase
from psycopg.pq import TransactionStatus

from atb_site.db.session import process_kind

log = logging.getLogger(__name__)

RECHECK_SECONDS = 0.1  # past a deadline, how soon a query that starts late is cut


@dataclass
class _Armed:
    deadline: float
    wrappers: list[Any]  # the request thread's Django connection wrappers
    cut: bool = field(default=False)


class _Watchdog:
    def __init__(self) -> None:
        self._lock = threading.Condition(threading.Lock())
        self._local = threading.local()
        self._armed: dict[int, _Armed] = {}  # by the request's thread
        self._sleeping_until: float | None = None
        self._pid = 0

    def arm(self, seconds: float) -> None:
        wrappers = getattr(self._local, "wrappers", None)
        if wrappers is None:  # a thread's connection wrappers are its own for good: look once
            wrappers = self._local.wrappers = [connections[alias] for alias in connections]
        entry = _Armed(time.monotonic() + seconds, wrappers)
        with self._lock:
            if self._pid != os.getpid():  # first request of this process (a fork has no thread)
                self._pid = os.getpid()
                threading.Thread(target=self._run, name="db-deadline", daemon=True).start()
            self._armed[threading.get_ident()] = entry
            if self._sleeping_until is None or entry.deadline < self._sleeping_until:
                self._lock.notify()

    def disarm(self) -> None:
        with self._lock:
            self._armed.pop(threading.get_ident(), None)

    def current(self) -> _Armed | None:
        return self._armed.get(threading.get_ident())

    def remaining(self) -> float | None:
        """Seconds left to the calling thread's deadline; None without one."""
        entry = self.current()
        return None if entry is None else entry.deadline - time.monotonic()

    def _run(self) -> None:
        with self._lock:
            while True:
                now = time.monotonic()
                waiting = [entry.deadline for entry in self._armed.values()]
                for entry in self._armed.values():
                    if entry.deadline <= now:
                        _cut_waiting_connections(entry)
                self._sleeping_until = max(min(waiting), now + RECHECK_SECONDS) if waiting else None
                self._lock.wait(
                    None if self._sleeping_until is None else self._sleeping_until - now
                )


def shut_down_if_waiting(conn: psycopg.Connection[Any] | None) -> bool:
    """Shut down ``conn``'s socket if it is waiting on the server (a query, commit or fetch
    under way): its wait then fails at once. Whether it was."""
    if conn is None:
        return False
    try:
        if conn.pgconn.transaction_status != TransactionStatus.ACTIVE:
            return False  # not waiting on the server
        fd = conn.pgconn.socket
        # Shut down, not close: the descriptor stays libpq's (closing a duplicate leaves it
        # open), and its wait returns at once with an end of file.
        with socket.socket(fileno=os.dup(fd)) as sock:
            sock.shutdown(socket.SHUT_RDWR)
    except (psycopg.Error, OSError):  # closed meanwhile
        return False
    return True


def _cut_waiting_connections(entry: _Armed) -> None:
    for wrapper in entry.wrappers:
        if not shut_down_if_waiting(wrapper.connection):
            continue
        if not entry.cut:
            entry.cut = True
            log.error(
                "PostgreSQL (%s) did not answer before the request's %g s deadline: its "
                "connection is dropped",
                wrapper.alias,
                settings.DATABASE_REQUEST_DEADLINE,
            )


_watchdog = _Watchdog()


def remaining() -> float | None:
    """Seconds left to the current request's deadline (negative once past); None outside one."""
    return _watchdog.remaining()


@contextmanager
def watching(conn: psycopg.Connection[Any], *, alias: str) -> Iterator[None]:
    """Hold a connection Django does not know of yet (the one a pool checks before handing it
    out) to the current request's deadline too."""
    entry = _watchdog.current()
    if entry is None:
        yield
        return
    held = SimpleNamespace(connection=conn, alias=alias)
    entry.wrappers = [*entry.wrappers, held]  # a new list: the watchdog may be reading the old
    try:
        yield
    finally:
        entry.wrappers = [wrapper for wrapper in entry.wrappers if wrapper is not held]


class DatabaseDeadlineMiddleware:
    """Arms the deadline around each request of a web process (see the module's docstring)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response
        self.seconds = settings.DATABASE_REQUEST_DEADLINE

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        if not self.seconds or process_kind() != "web":
            return self.get_response(request)
        _watchdog.arm(self.seconds)
        try:
            return self.get_response(request)
        finally:
            _watchdog.disarm()
