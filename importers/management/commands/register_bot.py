"""``manage.py register_bot <bot_id> --name ... --strategy-type ... --initial-capital ...``."""

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from importers.core import SourceError, decimal_argument, utc_parse
from importers.register import Registration, bot_registration_apply
from trading.jsonvalues import TOO_DEEP
from trading.models import BotMode

# A configuration for mean_reversion (LXAlgo), shipped with the repository; README passes it.
EXAMPLE = "docs/examples/lxalgo.json"


def time_argument(text: str) -> datetime:
    moment = utc_parse(text)
    if moment is None:
        raise ValueError(text)
    return moment


class Command(BaseCommand):
    help = (
        "Register a bot with no history to import: the bot, its first configuration version "
        f"(--config file.json, e.g. {EXAMPLE}; without it {{}}, which the schema of a "
        "strategy type that requires keys refuses) and an opening balance (manual snapshot, "
        "balance = equity = --initial-capital) at --at or now. Running it again with the same "
        "values changes nothing; different values for an existing bot are refused."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("bot_id", help="The bot's id, e.g. lxalgo_001.")
        parser.add_argument("--name", required=True)
        parser.add_argument("--strategy-type", required=True)
        parser.add_argument("--initial-capital", required=True, type=decimal_argument)
        parser.add_argument("--exchange", default="binance")
        parser.add_argument("--base-currency", default="USDT")
        parser.add_argument("--mode", choices=BotMode.values, default=BotMode.PAPER)
        parser.add_argument(
            "--config",
            help=f"A JSON file: the bot's first configuration, valid by its strategy type's "
            f"schema (e.g. {EXAMPLE} for mean_reversion).",
        )
        parser.add_argument(
            "--at",
            type=time_argument,
            help="The opening balance's time, ISO 8601 (naive is UTC); default now.",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Say what would be written, write nothing."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        registration = Registration(
            bot_id=options["bot_id"],
            name=options["name"],
            strategy_type=options["strategy_type"],
            exchange=options["exchange"],
            base_currency=options["base_currency"],
            mode=options["mode"],
            initial_capital_usd=options["initial_capital"],
            config=_config(options["config"]),
            at=options["at"],
        )
        try:
            with transaction.atomic():
                result = bot_registration_apply(registration=registration)
                if options["dry_run"]:
                    transaction.set_rollback(True)
        except (SourceError, ValueError) as exc:
            raise CommandError(f"register_bot: {exc}{_hint(exc, options)}") from exc
        bot_id = result.bot.bot_id
        if not result.created:
            self.stdout.write(
                f"nothing to do: bot {bot_id} is already registered with these values "
                f"(configuration version {result.config_version}, opening balance "
                f"{result.opening.balance_usd} at {result.opening.ts.isoformat()})"
            )
            return
        verb = "would register" if options["dry_run"] else "registered"
        self.stdout.write(
            f"{verb} bot {bot_id}: configuration version 1, opening balance "
            f"{result.opening.balance_usd} ({result.opening.snapshot_type}) at "
            f"{result.opening.ts.isoformat()}"
        )


def _hint(exc: Exception, options: dict[str, Any]) -> str:
    """What to do when the {} used for a missing --config is what the schema refused."""
    refusal = exc.__cause__
    refused_config = isinstance(refusal, ValidationError) and "config" in getattr(
        refusal, "error_dict", {}
    )
    if options["config"] is not None or not refused_config:
        return ""
    return (
        ". No --config was given, so the configuration was {}: give the bot's with --config "
        f"file.json ({EXAMPLE} is one for mean_reversion)"
    )


def _config(path: str | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        value = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise CommandError(f"register_bot: cannot read --config {path}: {exc}") from exc
    except ValueError as exc:
        raise CommandError(f"register_bot: --config {path} is not valid JSON: {exc}") from exc
    except RecursionError as exc:  # thousands of levels: json.loads runs out of stack
        raise CommandError(f"register_bot: --config {path}: the value {TOO_DEEP}") from exc
    if not isinstance(value, dict):
        raise CommandError(f"register_bot: --config {path} must hold a JSON object")
    return value
