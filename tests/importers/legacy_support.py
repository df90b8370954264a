"""Scratch legacy sources for the importer tests: the Shortseller dump loaded into a new
PostgreSQL database on the test server (dropped afterwards), and table snapshots."""

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
from django.conf import settings
from django.db import connection

# The samples of ../shared/legacy, copied beside the tests so that a clone anywhere runs them;
# ATB_LEGACY_DIR points the tests at other files in the same formats (larger ones, say).
LEGACY = Path(os.environ.get("ATB_LEGACY_DIR", Path(__file__).resolve().parent / "samples"))
SHORTSELLER_SQL = LEGACY / "shortseller.sql"
MOMENTUM_DB = LEGACY / "momentum.db"

# Every unified table an import may write, with its order for a snapshot.
TABLES = {
    "trading.bots": "bot_id",
    "trading.trades": "id",
    "trading.positions": "id",
    "trading.signals": "id",
    "trading.account_balance": "id",
    "trading.orders": "id",
    "config.bot_configurations": "id",
    "audit.system_events": "id",
    "audit.change_log": "id",
}


def server_url(dbname: str) -> str:
    db = settings.DATABASES["default"]
    password = f":{quote(db['PASSWORD'])}" if db.get("PASSWORD") else ""
    return (
        f"postgresql://{quote(db['USER'])}{password}@{db['HOST'] or '127.0.0.1'}:"
        f"{db['PORT'] or 5432}/{dbname}"
    )


@contextmanager
def scratch_database(sql: str | None = None) -> Iterator[str]:
    """A new database on the test server (name atb_legacy_<hex>), with ``sql`` run in it;
    yields its URL and drops it afterwards."""
    name = f"atb_legacy_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url("postgres"), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        if sql is not None:
            with psycopg.connect(server_url(name), autocommit=True) as conn:
                conn.execute(sql.encode())  # no parameters: several statements in one go
        yield server_url(name)
    finally:
        with psycopg.connect(server_url("postgres"), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def source_query(url: str, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return list(conn.execute(sql.encode()))


def snapshot() -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table an import writes, in a stable order."""
    rows = {}
    with connection.cursor() as cursor:
        for table, order in TABLES.items():
            cursor.execute(f"SELECT * FROM {table} ORDER BY {order}")  # noqa: S608 - constants
            rows[table] = cursor.fetchall()
    return rows


def counts() -> dict[str, int]:
    return {table: len(rows) for table, rows in snapshot().items()}
