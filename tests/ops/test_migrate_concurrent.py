"""Two `migrate` at once on a fresh database both succeed: the second waits for the first's
advisory lock, then finds nothing to apply. Each test gets a scratch database of its own."""

import os
import re
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from django.db.migrations.loader import MigrationLoader

from audit.management.commands.migrate import LOCK_APPLICATION_NAME, MIGRATE_LOCK_NAME
from trading.db import advisory_lock_key

ROOT = Path(__file__).resolve().parent.parent.parent


def _url_with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


@pytest.fixture
def scratch_url() -> Iterator[str]:
    """A new, empty database beside the configured one (``<name>_mig_<random>``)."""
    url = os.environ["DATABASE_URL"]
    name = f"{urlsplit(url).path.lstrip('/')}_mig_{uuid.uuid4().hex[:8]}"
    # The maintenance database: the configured one need not exist (pytest works in test_<name>).
    maintenance = _url_with_database(url, "postgres")
    with psycopg.connect(maintenance, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield _url_with_database(url, name)
    finally:
        with psycopg.connect(maintenance, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _migrate(url: str, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "atb_site.settings.test"}
    return subprocess.Popen(  # noqa: S603 - our own manage.py with fixed arguments
        [sys.executable, str(ROOT / "manage.py"), "migrate", "--noinput", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _lock_waiters(conn: psycopg.Connection, url: str) -> int:
    row = conn.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND application_name = %s",
        [urlsplit(url).path.lstrip("/"), LOCK_APPLICATION_NAME],
    ).fetchone()
    assert row is not None
    return int(row[0])


def test_two_migrates_at_once_both_succeed_and_apply_each_migration_once(
    scratch_url: str,
) -> None:
    key = advisory_lock_key(MIGRATE_LOCK_NAME)
    with psycopg.connect(scratch_url, autocommit=True) as holder:
        # Given a lock held here, so that both processes are surely waiting when it is let go,
        holder.execute("SELECT pg_advisory_lock(%s)", [key])
        first, second = _migrate(scratch_url), _migrate(scratch_url)
        deadline = time.monotonic() + 90
        while _lock_waiters(holder, scratch_url) < 2:
            assert first.poll() is None and second.poll() is None, "a migrate ended early"
            assert time.monotonic() < deadline, "the two migrates never both waited"
            time.sleep(0.1)
        # when it is released, both race for it at the same moment;
        holder.execute("SELECT pg_advisory_unlock(%s)", [key])
        outputs = [process.communicate(timeout=300) for process in (first, second)]

    # then both succeed, each after waiting,
    assert [first.returncode, second.returncode] == [0, 0], outputs
    for stdout, _stderr in outputs:
        assert "Waiting for another migrate on this database to finish..." in stdout
    # one applied everything and the other found nothing left,
    applied = [re.findall(r"Applying (\S+)\.\.\. OK", stdout) for stdout, _ in outputs]
    assert sorted(len(names) > 0 for names in applied) == [False, True]
    assert "No migrations to apply." in outputs[[bool(names) for names in applied].index(False)][0]
    # and the schema is complete: every migration recorded exactly once.
    expected = {f"{app}.{name}" for app, name in MigrationLoader(None).disk_migrations}
    applied_names = [name for names in applied for name in names]
    assert Counter(applied_names) == Counter(expected)
    with psycopg.connect(scratch_url) as conn:
        rows = conn.execute("SELECT app || '.' || name FROM django_migrations").fetchall()
        tables = conn.execute(
            "SELECT to_regclass('trading.trades') IS NOT NULL, "
            "to_regclass('django_celery_beat_periodictask') IS NOT NULL"
        ).fetchone()
    assert sorted(row[0] for row in rows) == sorted(expected)
    assert tables == (True, True)


def test_a_migrate_that_waits_too_long_stops_and_applies_nothing(scratch_url: str) -> None:
    key = advisory_lock_key(MIGRATE_LOCK_NAME)
    with psycopg.connect(scratch_url, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", [key])
        process = _migrate(scratch_url, "--lock-timeout", "1")
        stdout, stderr = process.communicate(timeout=120)
        table = holder.execute("SELECT to_regclass('django_migrations')").fetchone()

    assert process.returncode == 1
    assert stdout == "Waiting for another migrate on this database to finish...\n"
    assert stderr.strip().splitlines()[-1] == (
        "CommandError: Another migrate has held the migration lock on this database for over "
        f"1 s; nothing was applied. Look for it in pg_stat_activity (application_name "
        f"'{LOCK_APPLICATION_NAME}'), or pass a longer --lock-timeout."
    )
    assert table == (None,)
