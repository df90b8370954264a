"""``manage.py import_momentum --source path/to/trading.db``."""

from typing import Any

from django.core.management.base import CommandParser

from importers.command import ImportCommand
from importers.core import ImportJob, decimal_argument
from importers.momentum import momentum_job


class Command(ImportCommand):
    help = (
        "Import the Momentum bot's SQLite database (read in place, never changed) into the "
        "unified schema as bot momentum_001: trades, open positions and equity snapshots. "
        "Idempotent: a second run creates and changes nothing."
    )

    def add_source_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--bot-id",
            default="momentum_001",
            help="The bot to import into (default momentum_001, the legacy bot's own id).",
        )
        parser.add_argument("--source", required=True, help="The SQLite file (data/trading.db).")
        parser.add_argument(
            "--exchange", default="binance", help="The exchange its trades ran on (binance)."
        )
        parser.add_argument(
            "--initial-capital",
            type=decimal_argument,
            default=None,
            help="The bot's initial capital if it must be registered (default: the first "
            "equity snapshot's equity).",
        )

    def job(self, **options: Any) -> ImportJob:
        return momentum_job(
            source=options["source"],
            exchange=options["exchange"],
            initial_capital_usd=options["initial_capital"],
            bot_id=options["bot_id"],
        )
