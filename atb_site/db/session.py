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
There the process connects to its kind's database on PgBouncer instead (``<name>__<kind>``),
whose ``connect_query`` gives every server connection of that pool the same settings
(atb_site/db/pgbouncer.py), so each transaction still runs under its kind's timeouts.
"""

from typing import Literal, get_args

from django.conf import settings
from django.db import connections

from atb_site.db.pgbouncer import kind_database
from atb_site.db.timeouts import settings_of

ProcessKind = Literal["web", "worker", "beat", "command"]
PROCESS_KINDS: tuple[ProcessKind, ...] = get_args(ProcessKind)

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


def startup_options(kind: ProcessKind | None = None, *, pooled: bool | None = None) -> str:
    """The libpq ``options`` that set ``kind``'s timeouts, and JIT off unless DATABASE_JIT;
    empty for a connection through PgBouncer (``pooled``, by default DATABASE_PGBOUNCER).

    JIT compilation pays off for long analytical scans, not for this service's statements:
    PostgreSQL 15 (built with LLVM, as Debian's is) spent 2.3 s compiling the portfolio summary,
    which ran in 10 ms, because the planner's cost of branches never run crossed
    ``jit_above_cost``."""
    if settings.DATABASE_PGBOUNCER if pooled is None else pooled:
        return ""
    configured = settings.DATABASE_SESSION_TIMEOUTS[kind or _kind]
    values = settings_of(configured, jit=settings.DATABASE_JIT)
    return " ".join(f"-c {name}={value}" for name, value in values.items())


def pgbouncer_database(name: str, kind: ProcessKind | None = None) -> str:
    """The database on PgBouncer that a ``kind`` process (by default this one) connects to for
    the server's database ``name``: its pool's server connections carry that kind's settings."""
    return kind_database(name, kind or _kind)
