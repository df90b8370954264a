import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from benchmarks.dataset import SCALES, DatasetError, DatasetSpec, dataset_load


def _until(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    if timezone.is_naive(moment):
        raise ValueError("give a time zone, e.g. 2025-06-01T12:00:00Z")
    return moment.astimezone(UTC)


class Command(BaseCommand):
    help = (
        "Load a realistic, reproducible data set into the configured database by COPY: bots "
        "with their own win rates and sizes, a year of trades with orders, fills, open "
        "positions and hourly balances, and one-minute candles. The same --seed and --until "
        "give the same rows. Refuses a database that holds bots, trades or candles unless "
        "--replace (which deletes them)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--scale",
            choices=sorted(SCALES),
            default="full",
            help="full: 100 bots, 1,000,000 trades, 5,000,000 candles of 50 markets, a year; "
            "small: 10 bots, 5,000 trades, 20,000 candles of 5 markets, 30 days; large: 1,000 "
            "bots, 10,000,000 trades, 50,000,000 candles of 200 markets, a year (27 GB).",
        )
        parser.add_argument("--bots", type=int, help="Bots (default: the scale's).")
        parser.add_argument("--trades", type=int, help="Trades in all (default: the scale's).")
        parser.add_argument(
            "--candles", type=int, help="One-minute candles in all (default: the scale's)."
        )
        parser.add_argument("--symbols", type=int, help="Markets with candles (at most 200).")
        parser.add_argument("--days", type=int, help="Days of trade and balance history.")
        parser.add_argument("--seed", type=int, default=7, help="Random seed (default 7).")
        parser.add_argument(
            "--until",
            type=_until,
            help="End of the history, ISO-8601 with a zone (default: now, to the minute).",
        )
        parser.add_argument(
            "--replace",
            action="store_true",
            help="Delete every bot and all their data (and every candle) before loading.",
        )
        parser.add_argument("--json", dest="json_path", type=Path, help="Also write JSON here.")

    def handle(self, *args: Any, **options: Any) -> None:
        sizes = dict(SCALES[options["scale"]])
        for name in ("bots", "trades", "candles", "symbols", "days"):
            if options[name] is not None:
                sizes[name] = options[name]
        until = options["until"] or timezone.now().astimezone(UTC)
        try:
            spec = DatasetSpec(
                seed=options["seed"], until=until.replace(second=0, microsecond=0), **sizes
            )
            report = dataset_load(spec=spec, replace=options["replace"], log=self.stderr.write)
        except (DatasetError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        for table, rows in report.rows.items():
            self.stdout.write(f"{table:<26} {rows:>12,}")
        self.stdout.write(
            f"loaded in {report.total_seconds:.1f} s (seed {spec.seed}, until "
            f"{spec.until.isoformat()})"
        )
        if options["json_path"] is not None:
            options["json_path"].write_text(json.dumps(report.as_json(), indent=2) + "\n")
