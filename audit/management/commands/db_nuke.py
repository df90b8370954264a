from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DEFAULT_DB_ALIAS

from audit.dbadmin.nuke import NukeRefused, database_describe, database_nuke


class Command(BaseCommand):
    help = (
        "Development only (DEBUG): drop our schemas and public with every table in them, and "
        "rebuild them empty with migrate and setup_periodic_tasks. Needs --yes."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--yes", action="store_true", help="Confirm: drop everything.")
        parser.add_argument("--database", default=DEFAULT_DB_ALIAS)

    def handle(self, *args: Any, yes: bool, database: str, **options: Any) -> None:
        try:
            result = database_nuke(confirmed=yes, using=database)
        except NukeRefused as refusal:
            raise CommandError(str(refusal), returncode=1) from None
        self.stdout.write(
            f"db_nuke: database {database_describe(using=database)}: dropped schemas "
            f"{', '.join(result.schemas_dropped)} ({result.relations_dropped} tables and views); "
            f"rebuilt with {result.migrations_applied} migrations."
        )
