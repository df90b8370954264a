import time
from datetime import UTC, date, timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from analytics.services import risk_metrics_rollup
from analytics.tasks import RISK_METRICS_ROLLUP_LOCK
from trading.db import advisory_lock

LOCK_WAIT_SECONDS = 60


class Command(BaseCommand):
    help = (
        "Roll up trading.risk_metrics for every bot, one UTC day after another, from --since to "
        "--until (default today). Rerunning a day rewrites its rows; run it from the day of a "
        "late or corrected trade to bring the following days up to date."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--since", type=date.fromisoformat, required=True, help="YYYY-MM-DD")
        parser.add_argument("--until", type=date.fromisoformat, help="YYYY-MM-DD (default today)")

    def handle(self, *args: Any, since: date, until: date | None, **options: Any) -> None:
        today = timezone.now().astimezone(UTC).date()
        until = until or today
        if since > until:
            raise CommandError(f"--since {since} is after --until {until}")
        if until > today:
            raise CommandError(f"--until {until} is after today ({today})")
        day, total = since, 0
        while day <= until:
            rows = self._rollup_day(day)
            total += rows
            self.stdout.write(f"{day}: {rows} rows")
            day += timedelta(days=1)
        self.stdout.write(f"{total} rows from {since} to {until}")

    def _rollup_day(self, day: date) -> int:
        # The scheduled rollup takes the same lock for a few milliseconds every 15 minutes.
        deadline = time.monotonic() + LOCK_WAIT_SECONDS
        while True:
            with advisory_lock(RISK_METRICS_ROLLUP_LOCK) as acquired:
                if acquired:
                    return risk_metrics_rollup(day=day)
            if time.monotonic() > deadline:
                raise CommandError("another rollup has held the lock for a minute; try again")
            time.sleep(0.5)
