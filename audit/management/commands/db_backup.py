from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.backups.dump import backup_create
from audit.backups.retention import backup_prune
from audit.tasks import DB_BACKUP
from trading.db import advisory_lock


class Command(BaseCommand):
    help = (
        "Back up the database: pg_dump (custom format) to BACKUP_DIR/<database>/YYYY/MM/DD/, "
        "checked with pg_restore --list, with a .sha256 and a .json manifest (row counts and key "
        "digests per table). Recorded in audit.backups and as a system event. Takes the same "
        "lock as the hourly task: a backup already running means this one is skipped."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--prune",
            action="store_true",
            help="After a good backup, delete those the retention settings do not keep.",
        )
        parser.add_argument(
            "--prune-only", action="store_true", help="Only apply retention; no backup."
        )

    def handle(self, *args: Any, prune: bool, prune_only: bool, **options: Any) -> None:
        with advisory_lock(DB_BACKUP) as acquired:
            if not acquired:
                raise CommandError("Another backup is running (its lock is held): try later.")
            if prune_only:
                self._prune()
                return
            backup = backup_create()
            if backup.verified and prune:
                self._prune()
        if not backup.verified:
            raise CommandError(f"Backup failed: {backup.error}")
        tables = backup.manifest["tables"]
        self.stdout.write(self.style.SUCCESS(f"backup {backup.pk}: {backup.path}"))
        self.stdout.write(
            f"  {backup.size_bytes} bytes, sha256 {backup.sha256}\n"
            f"  {len(tables)} tables, {sum(t['rows'] for t in tables.values())} rows, "
            f"server {backup.manifest['server_version']}, "
            f"pg_dump {backup.manifest['pg_dump']['version']}\n"
            f"  {backup.duration_seconds:.2f} s"
        )

    def _prune(self) -> None:
        result = backup_prune()
        self.stdout.write(
            f"retention: {result.deleted} backup(s) deleted ({result.files_deleted} files), "
            f"{result.kept} kept"
        )
