"""Read replicas for staff analytics (DATABASE_REPLICA_URL): which reads go where.

The rule (docs/DESIGN.md, "Read replicas"):

- Only a **staff read** may go to a replica: a GET or HEAD by a staff user (session or staff
  token) of an analytics endpoint, the portfolio, a list endpoint, a dashboard page or a
  read-only admin list. The view layer says so with ``staff_reads()`` (trading/api/replica.py
  for the API, ``serve_staff_read`` for Django views), after authentication: a bot's token never
  opens the scope, so a bot always reads its own writes from the primary. Tasks, commands and
  every write never open it either.
- Inside the scope, our apps' models (the router) and the selectors' raw SQL (``read_connection``)
  use one replica for the whole request; Django's own tables (sessions, users, permissions) and
  anything inside a transaction on the primary stay on the primary, so a write made during a
  read (a summary checkpoint built on demand) and what it reads in its transaction go there.
- A replica is used only when it answered a lag check within ``CHECK_SECONDS`` and its lag was
  at most DATABASE_REPLICA_MAX_LAG_SECONDS. One that is lagging, cannot be reached, or fails
  during a request is skipped for the primary with no error to the caller; a failure is
  remembered for ``RETRY_SECONDS`` so requests do not each pay a connect timeout
  (DATABASE_REPLICA_CONNECT_TIMEOUT bounds the one that does).

Lag. ``now() - pg_last_xact_replay_timestamp()`` alone is wrong when the primary is idle: no new
transaction, so the age grows while the replica misses nothing. The rule here compares WAL
positions. Each check reads the primary's ``pg_current_wal_lsn()`` (P, at time t), then the
replica's ``pg_last_wal_replay_lsn()`` (R):

- R >= P: the replica has replayed everything the primary had written at t: lag 0 (an idle
  primary included);
- R < P: the lag is at most now - t' for the latest earlier check t' whose P' <= R (the replica
  holds everything written by t'), and at most the age of the last transaction replayed (the
  first one missing is younger); the smaller of the two bounds is the lag. With neither known,
  the lag is unknown and the replica is skipped.
- A replica that was fine, found past the limit by a check with no earlier one to go by (a new
  process, a quiet spell, an idle primary's background WAL read a moment before it arrived),
  gets one more look after ``RECHECK_PAUSE_SECONDS``: having replayed P by then, it is behind
  by no more than that pause.

Each process keeps the last check of each replica for ``CHECK_SECONDS``: a check is two one-row
statements a second per busy process, not a query per request.
"""

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from dataclasses import dataclass
from functools import wraps
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.http import HttpRequest, HttpResponseBase
from django.template.response import SimpleTemplateResponse

from atb_site.db import deadline

log = logging.getLogger(__name__)

CHECK_SECONDS = 1.0  # how long a process trusts a replica's last lag check
RETRY_SECONDS = 10.0  # how long a replica that failed is skipped before it is tried again
RECHECK_PAUSE_SECONDS = 0.05  # between more looks at a replica about to be found lagging
RECHECK_WINDOW_SECONDS = 0.5  # how long those looks may go on
# Our apps: their models may be read from a replica. Django's own (auth, sessions, contenttypes,
# admin's log, beat's schedule) always come from the primary.
REPLICA_APPS = frozenset({"trading", "audit", "botconfig", "analytics"})


def replica_aliases() -> list[str]:
    """The aliases of DATABASE_REPLICA_URL's servers, in the order given."""
    return list(getattr(settings, "DATABASE_REPLICAS", ()))


# --- The scope of a staff read -----------------------------------------------------------------


@dataclass
class _Scope:
    wanted: bool = False  # the view said: a staff read
    allowed: bool = True  # False: the primary only (a read run again after a replica failed)
    alias: str | None = None  # chosen at the first read, kept for the request


_scope: ContextVar[_Scope | None] = ContextVar("atb_replica_scope", default=None)


@contextmanager
def staff_reads(*, wanted: bool = True, allowed: bool = True) -> Iterator[_Scope]:
    """Inside, reads may go to a replica (``wanted``); a fresh scope, so nothing leaks out."""
    token = _scope.set(_Scope(wanted=wanted and allowed, allowed=allowed))
    try:
        yield _scope.get()  # type: ignore[misc]
    finally:
        _scope.reset(token)


def want_replica() -> None:
    """Called by a view that opened ``staff_reads(wanted=False)`` once it knows the caller is
    staff (after authentication)."""
    scope = _scope.get()
    if scope is not None and scope.allowed:
        scope.wanted = True


def read_alias() -> str:
    """The database a read should use now: the scope's replica, else the primary."""
    scope = _scope.get()
    if scope is None or not scope.wanted or not replica_aliases():
        return DEFAULT_DB_ALIAS
    if connections[DEFAULT_DB_ALIAS].in_atomic_block:
        return DEFAULT_DB_ALIAS  # a transaction on the primary reads what it wrote
    if scope.alias is None:
        scope.alias = _choose()
    return scope.alias


def read_connection() -> BaseDatabaseWrapper:
    """The connection a selector's raw SQL reads through (``read_alias``)."""
    return connections[read_alias()]


def serve_staff_read[T](view: Callable[[], T], *, staff: bool = False) -> T:
    """Run ``view`` (a read) on a replica when ``staff`` (or when it calls ``want_replica``);
    a replica that fails during it is marked down and the view runs again on the primary. A
    TemplateResponse must be rendered inside ``view``, or its queries run after the scope."""
    with staff_reads(wanted=staff) as scope:
        try:
            return view()
        except DatabaseError:
            if scope.alias in (None, DEFAULT_DB_ALIAS) or not _broken(scope.alias):
                raise
            failed = scope.alias
    _mark_down(failed, "failed during a read")
    with staff_reads(wanted=False, allowed=False):
        return view()


READ_METHODS = frozenset({"GET", "HEAD"})


def serve_staff_page(
    request: HttpRequest, view: Callable[[], HttpResponseBase]
) -> HttpResponseBase:
    """A Django view's GET or HEAD by an active staff user, served from a replica
    (``serve_staff_read``), its template rendered inside; anything else as it is."""
    if request.method not in READ_METHODS:
        return view()
    user = getattr(request, "user", None)
    staff = bool(user is not None and user.is_active and user.is_staff)

    def rendered() -> HttpResponseBase:
        response = view()
        if isinstance(response, SimpleTemplateResponse) and not response.is_rendered:
            response.render()
        return response

    return serve_staff_read(rendered, staff=staff)


def staff_page(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
    """``serve_staff_page`` as a decorator (the dashboard's pages)."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        return serve_staff_page(request, lambda: view(request, *args, **kwargs))

    return wrapped


# --- The router --------------------------------------------------------------------------------


class ReplicaRouter:
    """Inside a staff read, our apps' models read from its replica. Never a write or a migration
    to a replica (an object read from one is saved to the primary). Everything else is
    Django's own choice (None): the primary, or the database an object came from (the bench's
    scratch databases)."""

    def db_for_read(self, model: type[Any], **hints: Any) -> str | None:
        if model._meta.app_label not in REPLICA_APPS:
            return None
        alias = read_alias()
        return None if alias == DEFAULT_DB_ALIAS else alias

    def db_for_write(self, model: type[Any], **hints: Any) -> str | None:
        source = getattr(getattr(hints.get("instance"), "_state", None), "db", None)
        return DEFAULT_DB_ALIAS if source in replica_aliases() else None

    def allow_relation(self, obj1: Any, obj2: Any, **hints: Any) -> bool | None:
        replicas = set(replica_aliases())
        if obj1._state.db in replicas or obj2._state.db in replicas:
            return True  # the same rows as the primary's
        return None

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool | None:
        return False if db in replica_aliases() else None


# --- Each replica's state in this process ----------------------------------------------------


@dataclass
class ReplicaState:
    alias: str
    checked_at: float = float("-inf")  # time.monotonic() of the last check
    lag_seconds: float | None = None
    error: str | None = None  # why it is skipped: unreachable, not in recovery, lag unknown
    down_until: float = float("-inf")

    @property
    def usable(self) -> bool:
        return self.error is None and _within_limit(self.lag_seconds)

    def as_check(self) -> dict[str, Any]:
        """What /health/ready shows (no host: the answer is public)."""
        lag = None if self.lag_seconds is None else round(self.lag_seconds, 3)
        check: dict[str, Any] = {
            "status": "ok" if self.usable else "warning",
            "lag_seconds": lag,
            "max_lag_seconds": settings.DATABASE_REPLICA_MAX_LAG_SECONDS,
        }
        if self.error is not None:
            check["reason"] = f"{self.error}: reads go to the primary"
        elif not self.usable:
            check["reason"] = "lagging past the limit: reads go to the primary"
        return check


_lock = threading.Lock()
_states: dict[str, ReplicaState] = {}
# (time.monotonic(), the primary's WAL position) at each check of this process, newest last.
_primary_positions: deque[tuple[float, int]] = deque(maxlen=120)
_next = 0  # the replica to try first, rotating, so several replicas share the reads


def _state(alias: str) -> ReplicaState:
    with _lock:
        return _states.setdefault(alias, ReplicaState(alias))


def forget_states() -> None:
    """Drop every remembered check (tests, and a process that changed its replicas)."""
    with _lock:
        _states.clear()
        _primary_positions.clear()


def _choose() -> str:
    global _next
    aliases = replica_aliases()
    with _lock:
        first, _next = _next % len(aliases), _next + 1
    for alias in aliases[first:] + aliases[:first]:
        state = replica_state(alias)
        if not state.usable:
            continue
        wrapper = connections[alias]
        try:
            # The kept connection's health check, every time (atb_site.db's asks the server only
            # when its socket is readable: one that died closed it), and, if need be, a new
            # connection within DATABASE_REPLICA_CONNECT_TIMEOUT.
            if wrapper.connection is not None and not wrapper.is_usable():
                wrapper.close()
            wrapper.ensure_connection()
        except DatabaseError as exc:
            _mark_down(alias, "unreachable", exc)
            continue
        wrapper.errors_occurred = False
        return alias
    return DEFAULT_DB_ALIAS


def replica_state(alias: str) -> ReplicaState:
    """``alias``'s state, checked again when the last check is older than CHECK_SECONDS (and the
    replica is not in its RETRY_SECONDS after a failure)."""
    state = _state(alias)
    now = time.monotonic()
    if now < state.down_until or now - state.checked_at < CHECK_SECONDS:
        return state
    _check(state, now)
    return state


_REPLICA_SQL = """
SELECT pg_is_in_recovery(),
       pg_last_wal_replay_lsn() - '0/0'::pg_lsn,
       extract(epoch FROM clock_timestamp() - pg_last_xact_replay_timestamp())
"""


def _check(state: ReplicaState, now: float) -> None:
    try:
        with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
            cursor.execute("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn")
            primary = int(cursor.fetchone()[0])
    except DatabaseError:
        return  # the primary's trouble is not the replica's: leave its state as it was
    with _lock:
        _primary_positions.append((now, primary))
        earlier = list(_primary_positions)
    was_fine = state.usable or state.checked_at == float("-inf")
    try:
        in_recovery, replayed, replay_age = _replica_position(state.alias)
        lag = lag_seconds(
            replayed=replayed, primary=primary, now=now, positions=earlier, replay_age=replay_age
        )
        if in_recovery and replayed is not None and was_fine and not _within_limit(lag):
            # WAL written just before the primary's position was read may still be on its way
            # (milliseconds): without an earlier check to bound the lag (a new process, a quiet
            # spell, an idle primary's background WAL), look again, for a moment, before
            # skipping it: on a loaded machine the replay of one record took more than 50 ms.
            while time.monotonic() - now < RECHECK_WINDOW_SECONDS:
                time.sleep(RECHECK_PAUSE_SECONDS)
                in_recovery, replayed, replay_age = _replica_position(state.alias)
                if replayed is not None and replayed >= primary:
                    lag = time.monotonic() - now
                    break
    except DatabaseError as exc:
        _mark_down(state.alias, "unreachable", exc)
        return
    state.checked_at = now
    if not in_recovery:
        _set(state, None, "not a replica (not in recovery)")
        return
    _set(state, lag, None if lag is not None else "lag unknown")


def _within_limit(lag: float | None) -> bool:
    return lag is not None and lag <= settings.DATABASE_REPLICA_MAX_LAG_SECONDS


def _replica_position(alias: str) -> tuple[bool, int | None, float | None]:
    """(in recovery, the WAL position replayed, the age of the last replayed transaction)."""
    wrapper = connections[alias]
    with wrapper.cursor() as cursor, _answered_within(wrapper, _check_timeout(alias)):
        cursor.execute(_REPLICA_SQL)
        in_recovery, replayed, replay_age = cursor.fetchone()
    return (
        bool(in_recovery),
        None if replayed is None else int(replayed),
        None if replay_age is None else float(replay_age),
    )


def _check_timeout(alias: str) -> float:
    """A lag check waits for its answer no longer than a connection attempt to the replica may
    take (DATABASE_REPLICA_CONNECT_TIMEOUT)."""
    return float(connections.settings[alias]["OPTIONS"].get("connect_timeout") or 2)


@contextmanager
def _answered_within(wrapper: BaseDatabaseWrapper, seconds: float) -> Iterator[None]:
    """Cut ``wrapper``'s connection if the server has not answered within ``seconds``.

    A replica that is frozen, or behind a network that drops packets silently, keeps a
    connection open and never answers: its ``statement_timeout`` cannot fire, nor TCP
    keepalives while its kernel acknowledges. The check's socket is then shut down (as
    atb_site/db/deadline.py does at a request's deadline), its wait fails at once, and the
    replica is skipped, instead of the request waiting for its deadline."""

    def cut() -> None:
        deadline.shut_down_if_waiting(wrapper.connection)

    timer = threading.Timer(seconds, cut)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


def lag_seconds(
    *,
    replayed: int | None,
    primary: int,
    now: float,
    positions: list[tuple[float, int]],
    replay_age: float | None,
) -> float | None:
    """The replica's lag by the module's rule: 0 when it replayed the primary's position;
    otherwise the smaller of (now - the latest check whose primary position it has replayed) and
    the age of its last replayed transaction; None when neither is known."""
    if replayed is None:
        return None
    if replayed >= primary:
        return 0.0
    bounds = [now - at for at, position in positions if position <= replayed][-1:]
    if replay_age is not None:
        bounds.append(max(replay_age, 0.0))
    return min(bounds) if bounds else None


def _set(state: ReplicaState, lag: float | None, error: str | None) -> None:
    was_usable = state.usable
    state.lag_seconds, state.error = lag, error
    if was_usable and not state.usable:
        log.warning(
            "read replica %s skipped (%s): staff reads go to the primary",
            state.alias,
            error or f"lag {lag:.1f} s over {settings.DATABASE_REPLICA_MAX_LAG_SECONDS} s",
        )
    elif state.usable and not was_usable:
        log.info("read replica %s serves staff reads (lag %.3f s)", state.alias, lag)


def _mark_down(alias: str, why: str, exc: BaseException | None = None) -> None:
    state = _state(alias)
    state.checked_at = time.monotonic()
    state.down_until = state.checked_at + RETRY_SECONDS
    if state.error != why:
        log.warning(
            "read replica %s %s (%s): skipped for %g s, staff reads go to the primary",
            alias,
            why,
            type(exc).__name__ if exc is not None else "connection lost",
            RETRY_SECONDS,
        )
    state.lag_seconds, state.error = None, why
    with suppress(DatabaseError):
        connections[alias].close()


def _broken(alias: str) -> bool:
    """Whether ``alias``'s connection failed during the request (Django marks it)."""
    wrapper = connections[alias]
    return bool(wrapper.errors_occurred) or wrapper.connection is None


def replica_states() -> list[ReplicaState]:
    """Every replica's state, checked if due: /health/ready and /metrics."""
    return [replica_state(alias) for alias in replica_aliases()]
