"""The restore drill: prove the newest backup restores, table for table.

The dump is checked against its ``.sha256`` and its manifest file against the manifest recorded
in the database (a file missing or changed fails the drill), restored into a scratch database
``<database>_drill_<YYYYMMDDHHMMSS>`` on the same server, and every table's row count and key
digest are compared with the manifest (the source at backup time, from the same snapshot as the
dump). The scratch database is dropped whatever happens. Each drill is a system event
(``backup_drill``, or ``backup_drill_failed`` with the reason), and marked on the backup's row
(``drilled_at``, ``drill_error``): a failed drill makes the backup unverified, so it is no
longer the newest verified backup that ``/health/ready`` and ``/metrics`` report, and
``/health/ready`` warns about it.
"""

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from django.db import transaction
from django.utils import timezone
from psycopg import sql

from audit.backups import paths
from audit.backups.dump import COMPONENT
from audit.backups.pg import BackupError, PgTarget, server_version_num
from audit.backups.restore import pg_restore_into, restore_tool
from audit.backups.stats import Comparison, database_figures, figures_compare
from audit.models import Backup, Severity
from audit.selectors import backup_latest
from audit.services import system_event_record


@dataclass(frozen=True)
class DrillResult:
    backup: Backup
    scratch_database: str
    seconds: float  # the whole drill
    restore_seconds: float  # pg_restore alone
    comparison: Comparison

    @property
    def ok(self) -> bool:
        return self.comparison.ok


def scratch_name(database: str) -> str:
    """At most 63 bytes, PostgreSQL's limit for a name."""
    return f"{database[:40]}_drill_{timezone.now():%Y%m%d%H%M%S}"


def _create_database(admin: psycopg.Connection[Any], name: str, source: str) -> None:
    """An empty database with the source's encoding and (libc) collation."""
    row = admin.execute(
        "SELECT pg_encoding_to_char(encoding), datcollate, datctype, datlocprovider"
        " FROM pg_database WHERE datname = %s",
        [source],
    ).fetchone()
    query = sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name))
    if row is not None:
        encoding, collate, ctype, provider = row
        query += sql.SQL(" ENCODING {}").format(sql.Literal(encoding))
        if provider == "c":
            query += sql.SQL(" LC_COLLATE {} LC_CTYPE {}").format(
                sql.Literal(collate), sql.Literal(ctype)
            )
    admin.execute(query)


def manifest_check(backup: Backup, dump: Path) -> dict[str, Any]:
    """The manifest recorded in the database, once the file beside the dump is found to say the
    same: a file missing, unreadable or changed fails the drill."""
    recorded: dict[str, Any] = backup.manifest
    found = paths.read_manifest(dump)
    if found != recorded:
        keys = sorted(k for k in set(found) | set(recorded) if found.get(k) != recorded.get(k))
        raise BackupError(
            f"{paths.manifest_path(dump)} differs from the manifest recorded for backup "
            f"{backup.pk} (in {', '.join(keys)}): it was changed or is not this backup's."
        )
    return recorded


def backup_drill(*, backup: Backup | None = None) -> DrillResult:
    """Drill ``backup`` (the newest verified backup of the configured database by default)."""
    source = PgTarget.from_settings()
    backup = backup or backup_latest(verified=True)
    if backup is None:
        raise BackupError(f"No verified backup of {source.dbname} to drill: run db_backup first.")
    started = time.monotonic()
    scratch = source.with_dbname(scratch_name(source.dbname))
    try:
        dump = Path(backup.path)
        paths.verify_sha256(dump)
        manifest = manifest_check(backup, dump)
        with source.connect(autocommit=True) as admin:
            server = server_version_num(admin)
            tool, _ = restore_tool(dump, server_version=server)
            _create_database(admin, scratch.dbname, source.dbname)
            try:
                restore_started = time.monotonic()
                pg_restore_into(tool, dump, scratch, server_version=server)
                restore_seconds = time.monotonic() - restore_started
                with scratch.connect() as conn:
                    figures = database_figures(conn)
            finally:
                admin.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                        sql.Identifier(scratch.dbname)
                    )
                )
    except (BackupError, psycopg.Error) as exc:
        _record(backup, scratch.dbname, time.monotonic() - started, error=str(exc))
        if isinstance(exc, BackupError):
            raise
        raise BackupError(f"The drill failed: {exc}") from exc
    result = DrillResult(
        backup=backup,
        scratch_database=scratch.dbname,
        seconds=time.monotonic() - started,
        restore_seconds=restore_seconds,
        comparison=figures_compare(expected=manifest, actual=figures),
    )
    _record(backup, scratch.dbname, result.seconds, result=result)
    return result


def _record(
    backup: Backup,
    scratch: str,
    seconds: float,
    *,
    result: DrillResult | None = None,
    error: str = "",
) -> None:
    name = Path(backup.path).name
    if result is None:
        ok, message = False, f"Restore drill of {name} failed: {error}"
    elif result.ok:
        ok = True
        message = (
            f"Restore drill of {name}: {result.comparison.tables_compared} tables match, "
            f"{seconds:.1f} s"
        )
    else:
        ok = False
        message = (
            f"Restore drill of {name}: {len(result.comparison.mismatches)} of "
            f"{result.comparison.tables_compared} tables differ"
        )
    drill_error = "" if ok else (error or message)
    with transaction.atomic():
        # A backup whose drill failed is no longer the newest verified one health reports.
        marks: dict[str, Any] = {"drilled_at": timezone.now(), "drill_error": drill_error}
        if not ok:
            marks["verified"] = False
        Backup.objects.filter(pk=backup.pk).update(**marks)
        _event(backup, scratch, seconds, ok=ok, message=message, result=result, error=error)


def _event(
    backup: Backup,
    scratch: str,
    seconds: float,
    *,
    ok: bool,
    message: str,
    result: DrillResult | None,
    error: str,
) -> None:
    system_event_record(
        component=COMPONENT,
        event_type="backup_drill" if ok else "backup_drill_failed",
        severity=Severity.INFO if ok else Severity.ERROR,
        message=message,
        details={
            "backup_id": backup.pk,
            "path": backup.path,
            "scratch_database": scratch,
            "seconds": round(seconds, 3),
            "restore_seconds": round(result.restore_seconds, 3) if result else None,
            "tables_compared": result.comparison.tables_compared if result else 0,
            "mismatches": result.comparison.mismatches if result else [],
            "view_notes": result.comparison.view_notes if result else [],
            "error": error,
        },
    )
