"""Measuring a read beside its raw-SQL twin: the very statements our code sent, replayed.

The baseline of a selector, a service or a page is the SQL it issued, captured from Django's
connection during a warm call and replayed through a bare psycopg connection, fetching every
row. The ratio then says what our Python (ORM, serialization, HTTP, templates) adds to the
database's own work, with no chance of the baseline doing something easier.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
from django.db import connection
from django.test.utils import CaptureQueriesContext

from benchmarks.bench.report import Operation

Log = Callable[[str], None]
_TRANSACTION_CONTROL = ("SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO SAVEPOINT")


@dataclass(frozen=True)
class Replay:
    """Statements to send again, in one transaction when the original ran in one."""

    statements: tuple[str, ...]
    atomic: bool

    def run(self, conn: psycopg.Connection[Any]) -> float:
        started = time.perf_counter()
        if self.atomic:
            with conn.transaction():
                self._send(conn)
        else:
            self._send(conn)
        return time.perf_counter() - started

    def _send(self, conn: psycopg.Connection[Any]) -> None:
        with conn.cursor() as cursor:
            for statement in self.statements:
                cursor.execute(statement.encode())
                if cursor.description is not None:
                    cursor.fetchall()


def capture(call: Callable[[], object]) -> Replay:
    """Run ``call`` once and keep the SQL it sent (with its parameters bound, as sent)."""
    with CaptureQueriesContext(connection) as queries:
        call()
    statements: list[str] = []
    atomic = connection.in_atomic_block
    for query in queries.captured_queries:
        sql = query["sql"]
        if sql.upper().startswith(_TRANSACTION_CONTROL):
            atomic = True
            continue
        statements.append(sql)
    return Replay(statements=tuple(statements), atomic=atomic)


def timed(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def measure(
    op: Operation,
    call: Callable[[], object],
    *,
    baseline: Callable[[], float] | None,
    warmup: int,
    samples: int,
) -> None:
    """Warm up, then ``samples`` runs of ``call`` each followed by one of ``baseline``, so load
    from elsewhere on the machine weighs on both alike."""
    for _ in range(warmup):
        call()
        if baseline is not None:
            baseline()
    for _ in range(samples):
        op.seconds.append(timed(call))
        if baseline is not None:
            op.baseline_seconds.append(baseline())
