"""Taking a backup: `pg_dump` in custom format, checked, with its checksum and manifest.

One snapshot for everything: a REPEATABLE READ transaction exports its snapshot
(``pg_export_snapshot()``), pg_dump reads that snapshot (``--snapshot``), and the manifest's
row counts and key digests are computed in the same transaction while pg_dump runs. Writes that
go on meanwhile are in neither, so a restored copy matches the manifest exactly.

Every attempt is a ``Backup`` row (ok or failed, with the reason) and a system event (component
"backups"). Callers hold the ``audit.db_backup`` advisory lock (the task, the command).
"""

import json
import logging
import subprocess
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from django.db import transaction
from django.utils import timezone

from audit.backups import paths
from audit.backups.pg import (
    BackupError,
    PgTarget,
    PgTool,
    find_pg_tool,
    server_version_num,
    version_text,
)
from audit.backups.stats import DatabaseFigures, database_figures
from audit.models import Backup, BackupStatus, Severity
from audit.services import system_event_record

logger = logging.getLogger(__name__)

COMPONENT = "backups"
MANIFEST_FORMAT = 1


@dataclass(frozen=True)
class DumpOutcome:
    path: Path
    size_bytes: int
    sha256: str
    manifest: dict[str, Any]


def run_pg_dump(tool: PgTool, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    """Start pg_dump (a seam for tests that need to act while it runs)."""
    return subprocess.Popen(  # noqa: S603 - our own arguments, no shell
        [str(tool.path), *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


def pg_restore_list(tool: PgTool, dump: Path) -> str:
    """The archive's table of contents; a BackupError if pg_restore cannot read it whole."""
    result = subprocess.run(  # noqa: S603 - our own arguments, no shell
        [str(tool.path), "--list", str(dump)], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise BackupError(f"pg_restore --list refused {dump.name}: {result.stderr.strip()}")
    return result.stdout


def _verify(restore: PgTool, dump: Path, figures: DatabaseFigures) -> None:
    """pg_restore reads the archive back, and every table of the manifest has its data in it."""
    toc = pg_restore_list(restore, dump)
    data = {
        " ".join(line.split()[-3:-1])
        for line in toc.splitlines()
        if not line.startswith(";") and " TABLE DATA " in line
    }
    missing = [name for name in figures.tables if " ".join(name.split(".", 1)) not in data]
    if missing:
        raise BackupError(f"the dump has no data for {', '.join(missing)}")


def _dump(target: PgTarget, dump: Path, started: float) -> DumpOutcome:
    with target.connect(autocommit=True) as conn:
        server = server_version_num(conn)
        pg_dump = find_pg_tool("pg_dump", server_version=server)
        pg_restore = find_pg_tool("pg_restore", server_version=server)
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        row = conn.execute("SELECT pg_export_snapshot()").fetchone()
        snapshot = str(row[0]) if row else ""
        partial = paths.partial_path(dump)
        paths.make_dirs(dump.parent)
        partial.touch(mode=0o600)
        process = run_pg_dump(
            pg_dump,
            ["--format=custom", f"--snapshot={snapshot}", f"--file={partial}", target.dbname],
            target.env(),
        )
        try:
            # The figures come from the same snapshot, computed while pg_dump runs.
            figures = database_figures(conn)
        finally:
            _, stderr = process.communicate()
        conn.execute("ROLLBACK")
    if process.returncode != 0:
        raise BackupError(f"pg_dump failed ({process.returncode}): {stderr.decode().strip()}")
    _verify(pg_restore, partial, figures)
    digest = paths.file_sha256(partial)
    size = partial.stat().st_size
    manifest = {
        "format": MANIFEST_FORMAT,
        "database": target.dbname,
        "file": dump.name,
        "size_bytes": size,
        "sha256": digest,
        "server_version": version_text(server),
        "server_version_num": server,
        "pg_dump": {"path": str(pg_dump.path), "version": pg_dump.version},
        "snapshot": snapshot,
        "duration_seconds": round(time.monotonic() - started, 3),
        **figures.as_json(),
    }
    paths.write_private(paths.manifest_path(dump), json.dumps(manifest, indent=2) + "\n")
    paths.write_private(paths.sha256_path(dump), paths.sha256_line(digest, dump))
    partial.replace(dump)  # last: a .dump file is always whole and verified
    return DumpOutcome(path=dump, size_bytes=size, sha256=digest, manifest=manifest)


def backup_create(*, target: PgTarget | None = None) -> Backup:
    """Back up the configured database (or ``target``). Never raises for a failed backup: the
    returned record says ``failed`` with the reason, and no file of the attempt remains."""
    target = target or PgTarget.from_settings()
    started_at = timezone.now()
    started = time.monotonic()
    dump: Path | None = None
    try:
        dump = paths.new_dump_path(target.dbname, started_at)
        outcome = _dump(target, dump, started)
    except Exception as exc:
        if not isinstance(exc, BackupError):
            logger.exception("backup of %s failed", target.describe())
        if dump is not None:
            paths.remove_files(paths.companions(dump, with_partial=True))
        return _record(target, started_at, error=str(exc) or repr(exc))
    return _record(target, started_at, outcome=outcome)


def _record(
    target: PgTarget,
    started_at: datetime,
    *,
    outcome: DumpOutcome | None = None,
    error: str = "",
) -> Backup:
    finished_at = timezone.now()
    with transaction.atomic():
        backup = Backup.objects.create(
            database=target.dbname,
            status=BackupStatus.OK if outcome else BackupStatus.FAILED,
            started_at=started_at,
            finished_at=finished_at,
            path=str(outcome.path) if outcome else "",
            size_bytes=outcome.size_bytes if outcome else None,
            sha256=outcome.sha256 if outcome else "",
            verified=outcome is not None,
            manifest=outcome.manifest if outcome else {},
            error=error,
        )
        seconds = (finished_at - started_at).total_seconds()
        if outcome:
            tables = outcome.manifest["tables"]
            message = (
                f"Backup of {target.dbname}: {outcome.path.name}, {outcome.size_bytes} bytes, "
                f"{len(tables)} tables, {sum(t['rows'] for t in tables.values())} rows, "
                f"{seconds:.1f} s"
            )
        else:
            message = f"Backup of {target.dbname} failed: {error}"
        system_event_record(
            component=COMPONENT,
            event_type="backup_created" if outcome else "backup_failed",
            severity=Severity.INFO if outcome else Severity.ERROR,
            message=message,
            details={
                "backup_id": backup.pk,
                "path": backup.path,
                "size_bytes": backup.size_bytes,
                "sha256": backup.sha256,
                "seconds": round(seconds, 3),
                "error": error,
            },
        )
    return backup
