"""``manage.py import_freqtrade --source <sqlite path | PostgreSQL URL> --bot-id <id>``."""

from typing import Any

from django.core.management.base import CommandParser

from importers.command import ImportCommand
from importers.core import ImportJob, decimal_argument
from importers.freqtrade import freqtrade_job


class Command(ImportCommand):
    help = (
        "Import a freqtrade database (SQLite file or PostgreSQL URL, read in place) into the "
        "unified schema for one bot: trades with their orders and fills, open trades as open "
        "positions, pairlocks and KeyValueStore in the bot's metadata. Idempotent; one "
        "transaction; --dry-run writes nothing."
    )

    def add_source_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--source", required=True, help="SQLite path or PostgreSQL URL.")
        parser.add_argument("--bot-id", required=True, help="The bot to import into.")
        parser.add_argument(
            "--initial-capital",
            type=decimal_argument,
            default=None,
            help="Starting equity (stake currency, taken as USD): the bot's initial capital when "
            "it is registered here, and an opening account_balance at the first trade.",
        )
        parser.add_argument("--name", default="", help="The bot's name, if it is registered.")
        parser.add_argument(
            "--exchange",
            default="",
            help="The bot's exchange, if it is registered (default: the one its trades name; "
            "needed when the database holds no trade yet).",
        )

    def job(self, **options: Any) -> ImportJob:
        return freqtrade_job(
            source=options["source"],
            bot_id=options["bot_id"],
            initial_capital=options["initial_capital"],
            name=options["name"],
            exchange=options["exchange"],
        )
