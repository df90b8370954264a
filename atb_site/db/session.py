"""What kind of process this is, and the PostgreSQL session timeouts that kind gets.

Every connection starts with ``statement_timeout``, ``lock_timeout`` and
``idle_in_transaction_session_timeout`` set for the kind of process that opens it (the libpq
``options`` startup parameter, so they hold from the first statement, with no extra round trip):

- ``web``: gunicorn (gunicorn.conf.py says so before the app loads). Short: a request must
  answer before gunicorn's worker timeout.
- ``worker`` and ``beat``: Celery (atb_site/celery.py, on ``worker_init`` and ``beat_init``).
  Tasks may refresh views or roll up a day of candles, so a worker's are long.
- ``command``: everything else, ``manage.py`` commands above all (``migrate``, backups, dataset
  generation, the bench): no statement or lock timeout, which would kill them halfway.

The values come from settings (DATABASE_STATEMENT_TIMEOUT_<KIND> and friends, in seconds; 0:
none). Behind PgBouncer in transaction mode nothing is sent: PgBouncer refuses startup options
it does not track, and a ``SET`` would stay on a server connection other clients then share.
"""

from typing import Literal, get_args

from django.conf import settings
from django.db import connections

ProcessKind = Literal["web", "worker", "beat", "command"]
PROCESS_KINDS: tuple[ProcessKind, ...] = get_args(ProcessKind)
# The PostgreSQL settings each kind gets, in the order they are sent.
TIMEOUTS = ("statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout")

_kind: ProcessKind = "command"


def process_kind() -> ProcessKind:
    return _kind


def set_process_kind(kind: ProcessKind) -> None:
    """From now on, this process's new connections get ``kind``'s timeouts; connections already
    open (a scheduler that read its schedule before saying it was beat) are closed, so that none
    goes on with another kind's."""
    global _kind
    if kind not in PROCESS_KINDS:
        raise ValueError(f"unknown process kind {kind!r}; one of {', '.join(PROCESS_KINDS)}")
    if kind != _kind:
        _kind = kind
        if settings.configured:
            connections.close_all()


def session_timeouts(kind: ProcessKind | None = None) -> dict[str, int]:
    """``kind``'s (by default this process's) timeouts in milliseconds, as PostgreSQL takes them."""
    configured = settings.DATABASE_SESSION_TIMEOUTS[kind or _kind]
    return {name: round(configured[name] * 1000) for name in TIMEOUTS}


def startup_options(kind: ProcessKind | None = None) -> str:
    """The libpq ``options`` that set ``kind``'s timeouts, and JIT off unless DATABASE_JIT;
    empty behind PgBouncer.

    JIT compilation pays off for long analytical scans, not for this service's statements:
    PostgreSQL 15 (built with LLVM, as Debian's is) spent 2.3 s compiling the portfolio summary,
    which ran in 10 ms, because the planner's cost of branches never run crossed
    ``jit_above_cost``."""
    if settings.DATABASE_PGBOUNCER:
        return ""
    options = [f"-c {name}={ms}" for name, ms in session_timeouts(kind).items()]
    if not settings.DATABASE_JIT:
        options.append("-c jit=off")
    return " ".join(options)
