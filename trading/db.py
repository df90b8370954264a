"""Small building blocks every app's models use, so each rule of SCHEMA.md is written once.

- Tables live in PostgreSQL schemas (``trading.trades``); ``schema_table`` spells that for Django.
- Money, prices, quantities and percentages are NUMERIC with the precision SCHEMA.md fixes.
- Enumerations are short lowercase text guarded by a CHECK constraint.
- Scheduled work that must not run twice at once takes an advisory lock (``advisory_lock``).
- A transaction PostgreSQL aborts for a deadlock or a serialization failure is run again
  (``conflict_retrying``); one that still fails is a write conflict (``is_write_conflict``),
  never an outage.
"""

import hashlib
import logging
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections, models, transaction

log = logging.getLogger(__name__)


def schema_table(schema: str, table: str) -> str:
    """A ``db_table`` value that places the table in a PostgreSQL schema.

    Django quotes ``db_table`` as one identifier; closing and reopening the quotes yields
    ``"schema"."table"``. Django's schema editor understands the namespace (split_identifier).
    """
    return f'{schema}"."{table}'


def QuantityField(**kwargs: Any) -> models.DecimalField:
    """Quantities and prices: NUMERIC(28, 10)."""
    return models.DecimalField(max_digits=28, decimal_places=10, **kwargs)


def UsdField(**kwargs: Any) -> models.DecimalField:
    """USD amounts: NUMERIC(20, 8)."""
    return models.DecimalField(max_digits=20, decimal_places=8, **kwargs)


def UsdSumField(**kwargs: Any) -> models.DecimalField:
    """Sums of USD amounts over many rows (positions, balances, trades): NUMERIC(38, 8), the
    same scale with 30 digits before the point, so no sum of up to 10^18 rows that each fit
    UsdField (or a position's value, quantity x price, held to the same bound) can overflow."""
    return models.DecimalField(max_digits=38, decimal_places=8, **kwargs)


def PctField(**kwargs: Any) -> models.DecimalField:
    """Percentages and ratios: NUMERIC(12, 6)."""
    return models.DecimalField(max_digits=12, decimal_places=6, **kwargs)


def choices_check(
    table: str, field: str, choices: type[models.TextChoices]
) -> models.CheckConstraint:
    """CHECK that ``field`` holds one of ``choices`` (named ``<table>_<field>_valid``)."""
    return models.CheckConstraint(
        condition=models.Q(**{f"{field}__in": choices.values}),
        name=f"{table}_{field}_valid",
    )


def advisory_lock_key(name: str) -> int:
    """The 64-bit PostgreSQL advisory-lock key of ``name``: the same in every process and release
    (a hash computed here, not PostgreSQL's internal hashtext, whose output is not a promise)."""
    digest = hashlib.blake2b(name.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


@contextmanager
def advisory_lock(name: str, *, using: str = DEFAULT_DB_ALIAS) -> Iterator[bool]:
    """Try to take the transaction-level advisory lock ``name``, never waiting; yield whether it
    was taken.

    The body runs inside ``transaction.atomic``: the lock is released when that transaction ends
    (commit, rollback, or the connection dying with a killed worker), so a crash cannot leave it
    behind. Nested inside an outer ``atomic``, the lock lasts until the outer transaction ends.
    """
    with transaction.atomic(using=using), connections[using].cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [advisory_lock_key(name)])
        row = cursor.fetchone()
        yield bool(row and row[0])


# SQLSTATEs of a transaction PostgreSQL rolled back because of concurrent ones: deadlock_detected
# and serialization_failure ("Serialization Failure Handling" in its manual: retry the whole
# transaction). Run again, the same transaction can succeed.
WRITE_CONFLICT_SQLSTATES = frozenset({"40P01", "40001"})
CONFLICT_ATTEMPTS = 4
CONFLICT_BACKOFF_SECONDS = 0.01  # before attempt n + 1: up to this x 2^n, jittered


def is_write_conflict(exc: BaseException) -> bool:
    """Whether ``exc`` (psycopg's error, or Django's wrapping it) is a deadlock or a
    serialization failure: a conflict between writers that running the transaction again
    resolves, not the database being unavailable."""
    for error in (exc, exc.__cause__):
        if getattr(error, "sqlstate", None) in WRITE_CONFLICT_SQLSTATES:
            return True
    return False


def conflict_retrying[T](
    run: Callable[[], T],
    *,
    attempts: int | None = None,
    using: str = DEFAULT_DB_ALIAS,
) -> T:
    """``run()``, run again (up to ``attempts`` times in all, after a short jittered pause)
    while PostgreSQL aborts it as a deadlock or a serialization failure; the last such error is
    raised.

    ``attempts`` defaults to ``CONFLICT_ATTEMPTS``. ``run`` must be a whole unit of work: the
    transactions it opens are its own and leave nothing behind when they fail, so that each
    attempt starts from what the database holds (an attempt that failed rolled back everything
    it wrote, its idempotency key and audit records included). Called inside a transaction,
    there is nothing it could run again on its own: ``run`` is called once, and the outermost
    caller may retry.
    """
    if connections[using].in_atomic_block:
        return run()
    attempts = attempts or CONFLICT_ATTEMPTS
    attempt = 1
    while True:
        try:
            return run()
        except DatabaseError as exc:
            if attempt >= attempts or not is_write_conflict(exc):
                raise
            log.warning(
                "write conflict (%s), attempt %d of %d; running it again",
                getattr(exc.__cause__, "sqlstate", None),
                attempt,
                attempts,
            )
        time.sleep(random.uniform(0, CONFLICT_BACKOFF_SECONDS * 2**attempt))  # noqa: S311
        attempt += 1
