from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.backups.pg import BackupError, PgTarget
from audit.backups.restore import backup_restore


class Command(BaseCommand):
    help = (
        "Restore a dump made by db_backup into the database at --target-url, then run migrate "
        "there. The dump must match its .sha256. A target that already holds tables, views or "
        "sequences is refused unless --yes, which drops its contents first."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path, help="The .dump file.")
        parser.add_argument(
            "--target-url",
            required=True,
            help="postgres://user:password@host:port/name of an existing database.",
        )
        parser.add_argument(
            "--yes",
            action="store_true",
            help="The target may hold data: drop everything in it and restore over it.",
        )
        parser.add_argument(
            "--no-migrate", action="store_true", help="Restore only; do not run migrate."
        )

    def handle(
        self, *args: Any, file: Path, target_url: str, yes: bool, no_migrate: bool, **options: Any
    ) -> None:
        try:
            result = backup_restore(
                dump=file.resolve(),
                target=PgTarget.from_url(target_url),
                replace=yes,
                run_migrate=not no_migrate,
            )
        except BackupError as exc:
            raise CommandError(str(exc)) from exc
        if result.replaced:
            self.stdout.write(f"dropped the target's {len(result.replaced)} relations first")
        self.stdout.write(
            self.style.SUCCESS(
                f"restored {file.name} into {result.target} in {result.seconds:.2f} s"
            )
        )
        self.stdout.write(
            f"  dumped from PostgreSQL {result.header.dumped_from} by pg_dump "
            f"{result.header.dumped_by}, database {result.header.database}"
        )
        if result.migrate_output:
            self.stdout.write(result.migrate_output.rstrip())
