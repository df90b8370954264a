"""``manage.py import_shortseller --source-url postgresql://.../multiasset_trading``."""

from typing import Any

from django.core.management.base import CommandParser

from importers.command import ImportCommand
from importers.core import ImportJob, decimal_argument
from importers.shortseller import shortseller_job


class Command(ImportCommand):
    help = (
        "Import the Shortseller bot's PostgreSQL database (read in place, never changed) into "
        "the unified schema as bot shortseller_001: trades, positions, signals and balances. "
        "Idempotent: a second run creates and changes nothing."
    )

    def add_source_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--bot-id",
            default="shortseller_001",
            help="The bot to import into (default shortseller_001, the legacy bot's own id).",
        )
        parser.add_argument(
            "--source-url",
            required=True,
            help="The legacy database, e.g. postgresql://user:pw@host:5432/multiasset_trading.",
        )
        parser.add_argument(
            "--exchange", default="binance", help="The exchange its trades ran on (binance)."
        )
        parser.add_argument(
            "--initial-capital",
            type=decimal_argument,
            default=None,
            help="The bot's initial capital if it must be registered (default: the first "
            "balance_history balance).",
        )

    def job(self, **options: Any) -> ImportJob:
        return shortseller_job(
            source_url=options["source_url"],
            exchange=options["exchange"],
            initial_capital_usd=options["initial_capital"],
            bot_id=options["bot_id"],
        )
