"""`db_restore_drill` and `db_restore` on real PostgreSQL: backup then drill of the demo data;
restore into a fresh database, compared table by table; refusals that change nothing."""

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client
from django.utils.html import escape
from django.utils.text import Truncator

from audit.backups.pg import PgTarget
from audit.backups.restore import target_url, user_relations
from audit.backups.stats import database_figures, figures_compare
from audit.models import Backup, SystemEvent
from audit.selectors import backup_latest
from botconfig.demo.seed import demo_seed
from tests.analytics.test_tasks import other_connection
from tests.factories import make_bot
from tests.ops.test_backup import backup_dir, run_backup  # noqa: F401 - fixture

pytestmark = pytest.mark.django_db(transaction=True)


def drill() -> str:
    out = io.StringIO()
    call_command("db_restore_drill", stdout=out)
    return out.getvalue()


def scratch_databases() -> list[str]:
    """Drill databases left behind (none should be)."""
    prefix = connection.settings_dict["NAME"] + "\\_drill\\_"
    with other_connection() as conn:
        rows = conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE %s ORDER BY 1", [prefix + "%"]
        ).fetchall()
    return [row[0] for row in rows]


@pytest.fixture
def fresh_db() -> Iterator[PgTarget]:
    """An empty database next to the test database, dropped afterwards."""
    target = PgTarget.from_settings().with_dbname(connection.settings_dict["NAME"] + "_restore")
    with other_connection() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{target.dbname}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{target.dbname}" TEMPLATE template0')
    yield target
    with other_connection() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{target.dbname}" WITH (FORCE)')


def figures_of(target: PgTarget) -> Any:
    with target.connect() as conn:
        return database_figures(conn)


def test_backup_then_drill_of_the_demo_data(backup_dir: Path) -> None:  # noqa: F811
    demo_seed()
    backup, _ = run_backup()
    tables = len(backup.manifest["tables"])

    out = drill()

    assert f"restore drill ok: backup {backup.pk} ({backup.path}) into " in out
    assert f": {tables} of {tables} tables match; restore " in out
    assert scratch_databases() == []  # dropped
    event = SystemEvent.objects.get(component="backups", event_type="backup_drill")
    assert event.severity == "info"
    assert event.details["backup_id"] == backup.pk
    assert event.details["tables_compared"] == tables
    assert event.details["mismatches"] == []
    assert event.details["scratch_database"].startswith(
        connection.settings_dict["NAME"] + "_drill_"
    )
    # The views were not refreshed after the seed; pg_restore rebuilds them: noted, not failed.
    # What a refresh of the source gives now is what the restore built (the demo's day count
    # follows today's date, so it is measured, not pinned).
    with connection.cursor() as cursor:
        counts = {}
        for view in ("bot_daily_performance", "bot_performance_summary", "portfolio_daily_pnl"):
            cursor.execute(f"REFRESH MATERIALIZED VIEW analytics.{view}")
            cursor.execute(f"SELECT count(*) FROM analytics.{view}")  # noqa: S608 - fixed names
            (counts[view],) = cursor.fetchone()
    assert counts["bot_performance_summary"] == 3  # the demo's three bots
    assert counts["bot_daily_performance"] > 0
    assert event.details["view_notes"] == [
        f"analytics.{view}: {n} rows after restore, 0 at backup time" for view, n in counts.items()
    ]


def test_the_drill_fails_when_a_table_differs_from_the_manifest(backup_dir: Path) -> None:  # noqa: F811
    demo_seed()
    backup, _ = run_backup()
    manifest = backup.manifest
    trades = manifest["tables"]["trading.trades"]
    trades["rows"] += 1
    Backup.objects.filter(pk=backup.pk).update(manifest=manifest)
    # The file beside the dump says the same (else the drill stops at the manifest check).
    manifest_file(backup).write_text(json.dumps(manifest))

    tables = len(manifest["tables"])  # every table of the four schemas and Django's
    assert tables > 30
    with pytest.raises(
        CommandError, match=rf"Restore drill failed: .* {tables - 1} of {tables} tables match"
    ):
        drill()

    event = SystemEvent.objects.get(component="backups", event_type="backup_drill_failed")
    assert event.severity == "error"
    assert event.details["mismatches"] == [
        f"trading.trades: 276 rows (md5 {trades['pk_md5']}), expected 277 (md5 {trades['pk_md5']})"
    ]
    assert scratch_databases() == []


def manifest_file(backup: Backup) -> Path:
    return Path(backup.path).with_suffix(".json")


def ready_backup_check() -> tuple[int, dict[str, Any]]:
    response = Client().get("/health/ready")
    return response.status_code, response.json()["checks"]["backup"]


@pytest.mark.parametrize("tamper", ["changed", "missing"])
def test_a_drill_with_a_tampered_manifest_file_fails_and_unverifies_the_backup(
    backup_dir: Path,  # noqa: F811
    tamper: str,
    admin_client_logged_in: Client,
) -> None:
    make_bot("momentum_001")
    older, _ = run_backup()
    newer, _ = run_backup()
    path = manifest_file(newer)
    if tamper == "changed":
        text = path.read_text()
        assert '"rows": 1,' in text  # trading.bots
        path.write_text(text.replace('"rows": 1,', '"rows": 2,', 1))
        why = f"{path} differs from the manifest recorded for backup {newer.pk} (in tables)"
    else:
        path.unlink()
        why = f"{path} cannot be read as a manifest: [Errno 2] No such file or directory"
    with pytest.raises(CommandError) as raised:
        drill()

    assert str(raised.value).startswith(f"Restore drill failed: {why}")
    newer.refresh_from_db()
    assert (newer.status, newer.verified, newer.drilled_at is not None) == ("ok", False, True)
    assert newer.drill_error.startswith(why)
    assert backup_latest() == older  # the newest verified backup, what health reports
    event = SystemEvent.objects.get(component="backups", event_type="backup_drill_failed")
    assert event.details["error"] == newer.drill_error
    assert scratch_databases() == []  # the drill stopped before creating one
    page = admin_client_logged_in.get("/admin/audit/backup/").content.decode()
    assert escape(Truncator(f"restore drill: {why}").chars(120)) in page
    status, check = ready_backup_check()
    assert status == 200  # a warning: the load balancer keeps the instance
    assert check["status"] == "warning"
    assert check["last_at"] == older.finished_at.isoformat()
    assert check["failed_drill"] == {"backup_id": newer.pk}
    assert newer.drilled_at is not None
    assert check["reason"] == (
        f"the restore drill of backup {newer.pk} failed at {newer.drilled_at.isoformat()}"
    )

    # The next drill takes the newest verified backup, passes, and the warning goes.
    out = drill()
    assert f"restore drill ok: backup {older.pk} " in out
    older.refresh_from_db()
    assert (older.verified, older.drill_error) == (True, "")
    status, check = ready_backup_check()
    assert (status, check["status"], "failed_drill" in check) == (200, "ok", False)


def test_a_drill_without_a_backup_says_so(backup_dir: Path) -> None:  # noqa: F811
    name = connection.settings_dict["NAME"]
    with pytest.raises(
        CommandError,
        match=f"Restore drill failed: No verified backup of {name} to drill: run db_backup first.",
    ):
        drill()


def test_restore_into_a_fresh_database_matches_every_table(
    backup_dir: Path,  # noqa: F811
    fresh_db: PgTarget,
) -> None:
    demo_seed()
    backup, _ = run_backup()
    out = io.StringIO()

    call_command("db_restore", backup.path, target_url=target_url(fresh_db), stdout=out)

    restored = figures_of(fresh_db)
    assert figures_compare(expected=backup.manifest, actual=restored).mismatches == []
    assert set(restored.tables) == set(backup.manifest["tables"])
    assert restored.tables["trading.trades"].rows == 276
    # Compared with the source directly too (plain SQL), every table but the two the backup
    # itself wrote to afterwards.
    source = figures_of(PgTarget.from_settings())
    differ = [n for n in source.tables if source.tables[n] != restored.tables[n]]
    assert differ == ["audit.backups", "audit.system_events"]
    with fresh_db.connect() as conn:
        ids = conn.execute("SELECT array_agg(id ORDER BY id) FROM trading.trades").fetchone()
    with other_connection() as conn:
        source_ids = conn.execute("SELECT array_agg(id ORDER BY id) FROM trading.trades").fetchone()
    assert ids == source_ids
    text = out.getvalue()
    assert f"restored {Path(backup.path).name} into {fresh_db.describe()} in " in text
    assert "No migrations to apply." in text
    event = SystemEvent.objects.get(component="backups", event_type="backup_restored")
    assert event.details["target"] == fresh_db.describe()


def test_a_non_empty_target_is_refused_without_yes_and_nothing_changes(
    backup_dir: Path,  # noqa: F811
    fresh_db: PgTarget,
) -> None:
    demo_seed()
    backup, _ = run_backup()
    with fresh_db.connect(autocommit=True) as conn:
        conn.execute("CREATE TABLE public.precious (id int PRIMARY KEY)")
        conn.execute("INSERT INTO public.precious VALUES (1), (2)")
    before = figures_of(fresh_db)
    events = SystemEvent.objects.count()

    with pytest.raises(CommandError) as raised:
        call_command("db_restore", backup.path, target_url=target_url(fresh_db))

    assert str(raised.value) == (
        f"{fresh_db.describe()} is not empty (1 tables, views or sequences: public.precious). "
        "Pass --yes to drop its contents and restore over them."
    )
    assert figures_of(fresh_db) == before
    with fresh_db.connect() as conn:
        assert user_relations(conn) == ["public.precious"]
    assert SystemEvent.objects.count() == events

    # With --yes the target's contents are replaced.
    call_command(
        "db_restore", backup.path, target_url=target_url(fresh_db), yes=True, stdout=io.StringIO()
    )
    restored = figures_of(fresh_db)
    assert "public.precious" not in restored.tables
    assert figures_compare(expected=backup.manifest, actual=restored).mismatches == []


def test_a_dump_that_does_not_match_its_checksum_is_refused(
    backup_dir: Path,  # noqa: F811
    fresh_db: PgTarget,
) -> None:
    demo_seed()
    backup, _ = run_backup()
    dump = Path(backup.path)
    data = bytearray(dump.read_bytes())
    data[len(data) // 2] ^= 0xFF
    dump.write_bytes(bytes(data))

    with pytest.raises(
        CommandError, match=r"does not match its checksum .* Refusing to restore it"
    ):
        call_command("db_restore", str(dump), target_url=target_url(fresh_db))

    with fresh_db.connect() as conn:
        assert user_relations(conn) == []
    with pytest.raises(CommandError, match="does not match its checksum"):
        drill()
    assert scratch_databases() == []


def test_a_target_url_that_is_not_postgresql_is_refused(tmp_path: Path) -> None:
    dump = tmp_path / "x.dump"
    with pytest.raises(CommandError, match="The target must be a PostgreSQL URL"):
        call_command("db_restore", str(dump), target_url="sqlite:///tmp/x.db")
    with pytest.raises(CommandError, match=f"{dump} does not exist"):
        call_command("db_restore", str(dump), target_url="postgres://u@localhost/x")
