"""Scratch databases and manage.py subprocesses for the database-administration tests.

A scratch database is named after the database of DATABASE_URL (``atb_o2_verify_1a2b3c4d``), so
it never is the test database other tests use, and is dropped when the test ends. Cloning the
migrated template (made once per test process) is much faster than migrating each one.
"""

import atexit
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg

ROOT = Path(__file__).resolve().parents[2]
_template: list[str] = []


def database_url(name: str) -> str:
    parts = urlsplit(os.environ["DATABASE_URL"])
    return urlunsplit(parts._replace(path=f"/{name}", query=""))


def scratch_name(purpose: str) -> str:
    base = urlsplit(os.environ["DATABASE_URL"]).path.lstrip("/")
    return f"{base}_{purpose}_{secrets.token_hex(4)}"


def sql(url: str, query: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as connection, connection.cursor() as cursor:
        cursor.execute(query, params)
        return list(cursor.fetchall()) if cursor.description else []


def manage(
    *args: str, url: str, debug: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run manage.py against the database at ``url`` in a fresh process (test settings), with
    ``env`` added to its environment."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PG"))}
    environment.update(
        DJANGO_SETTINGS_MODULE="atb_site.settings.test",
        DATABASE_URL=url,
        DJANGO_DEBUG="true" if debug else "false",
        **(env or {}),
    )
    return subprocess.run(  # noqa: S603 - our own manage.py with fixed arguments
        [sys.executable, str(ROOT / "manage.py"), *args],
        env=environment,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _drop(name: str) -> None:
    sql(database_url("postgres"), f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def migrated_template() -> str:
    """A migrated database to clone, made on first use and dropped when the process exits."""
    if not _template:
        name = scratch_name("template")
        sql(database_url("postgres"), f'CREATE DATABASE "{name}"')
        atexit.register(_drop, name)
        result = manage("migrate", "--noinput", "-v0", url=database_url(name))
        assert result.returncode == 0, result.stderr
        _template.append(name)
    return _template[0]


@contextmanager
def scratch_database(purpose: str, *, migrated: bool = True) -> Iterator[str]:
    """A fresh database (a clone of the migrated template, or empty); yields its URL."""
    name = scratch_name(purpose)
    template = f' TEMPLATE "{migrated_template()}"' if migrated else ""
    sql(database_url("postgres"), f'CREATE DATABASE "{name}"{template}')
    try:
        yield database_url(name)
    finally:
        _drop(name)
