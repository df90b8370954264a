import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DEFAULT_DB_ALIAS

from audit.dbadmin import database_verify, render_row_counts


class Command(BaseCommand):
    help = (
        "Check the database against the code: connection, schemas, every model's table and "
        "columns (type and nullability), the materialized views and triggers, unapplied "
        "migrations; print row counts. Exit code 1 on any mismatch."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--database", default=DEFAULT_DB_ALIAS)
        parser.add_argument("--json", action="store_true", help="Print the report as JSON.")
        parser.add_argument(
            "--exact-counts",
            action="store_true",
            help="count(*) every table, even those the statistics put over 100,000 rows.",
        )

    def handle(self, *args: Any, database: str, exact_counts: bool, **options: Any) -> None:
        report = database_verify(using=database, exact=exact_counts)
        if options["json"]:
            self.stdout.write(json.dumps(report.as_dict(), indent=2, default=str))
        else:
            self.stdout.write(report.render())
            if report.facts.get("row_counts"):
                self.stdout.write("")
                self.stdout.write("\n".join(render_row_counts(report.facts["row_counts"])))
        if not report.ok:
            raise CommandError(f"db_verify: {report.summary()}", returncode=1)
