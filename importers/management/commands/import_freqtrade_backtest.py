"""``manage.py import_freqtrade_backtest --source <result .json or .zip> --bot-id <id>``."""

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from importers.core import SourceError
from importers.freqtrade_backtest import backtest_import
from trading.models import Bot


class Command(BaseCommand):
    help = (
        "Store a freqtrade backtest result (the .json or .zip `freqtrade backtesting` writes "
        "under user_data/backtest_results/) as one backtest run of a registered bot: its closed "
        "trades with source backtest. Idempotent: the same result again writes nothing new."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--source", required=True, help="The result's .json or .zip.")
        parser.add_argument("--bot-id", required=True, help="The (registered) bot it is for.")
        parser.add_argument(
            "--strategy", default=None, help="The strategy, when the result holds several."
        )
        parser.add_argument(
            "--exchange", default=None, help="The trades' exchange (default: the bot's)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        bot = Bot.objects.filter(pk=options["bot_id"]).first()
        if bot is None:
            raise CommandError(f"no bot {options['bot_id']!r}: register it first")
        try:
            result = backtest_import(
                path=Path(options["source"]),
                bot=bot,
                strategy=options["strategy"],
                exchange=options["exchange"],
            )
        except SourceError as exc:
            raise CommandError(f"import_freqtrade_backtest: {exc}; nothing written") from exc
        self.stdout.write(
            f"run {result.run.pk} ({result.run.strategy_name}, backtest): trades "
            f"{result.created} created, {result.updated} updated, {result.unchanged} unchanged"
        )
