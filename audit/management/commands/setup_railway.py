import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.dbadmin.railway import SETUP_STEPS, railway_verify


class Command(BaseCommand):
    help = (
        "Print the steps of a Railway deployment. With --verify, check this deployment: the "
        "database URL is PostgreSQL, TLS is required (outside DEBUG), a row can be written and "
        "read back (in a transaction rolled back), Redis answers. Exit code 1 on any failure."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--verify", action="store_true", help="Check this deployment.")
        parser.add_argument("--json", action="store_true", help="Print the report as JSON.")

    def handle(self, *args: Any, verify: bool, **options: Any) -> None:
        if not verify:
            self.stdout.write(SETUP_STEPS.rstrip())
            return
        report = railway_verify()
        if options["json"]:
            self.stdout.write(json.dumps(report.as_dict(), indent=2, default=str))
        else:
            self.stdout.write(report.render())
        if not report.ok:
            raise CommandError(f"setup_railway --verify: {report.summary()}", returncode=1)
