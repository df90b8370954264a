from datetime import UTC, date
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from analytics.models import ReportPeriod
from analytics.services.reports import period_bounds, send_reports


class Command(BaseCommand):
    help = (
        "Build and e-mail the report of one period to each active recipient list of that "
        "period (stored, viewable in the dashboard). --period daily: the UTC day --date; "
        "weekly: the ISO week that contains it. A list already sent this period is not sent "
        "again."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--period", choices=ReportPeriod.values, required=True)
        parser.add_argument("--date", type=date.fromisoformat, required=True, help="YYYY-MM-DD")

    def handle(self, *args: Any, period: str, date: date, **options: Any) -> None:
        bounds = period_bounds(period, date)
        if bounds.end > timezone.now().astimezone(UTC):
            raise CommandError(
                f"--date {date}: the {period} period {bounds.label} has not ended yet"
            )
        outcomes = send_reports(period, date)
        if not outcomes:
            self.stdout.write(f"{bounds.label}: no active {period} recipient list")
        for recipients, outcome in outcomes:
            self.stdout.write(f"{bounds.label}: {recipients.name}: {outcome}")
