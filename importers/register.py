"""Register a bot that has no history to import (LXAlgo, or any new bot): the bot, its first
configuration version, and an opening account_balance row.

The opening balance is a ``manual`` snapshot (SCHEMA.md's types): an operator states it on the
command line; ``imported`` is kept for rows read from a legacy source. It is marked
``{"opening": true}`` in its metadata. Registering again with the same values changes nothing;
different values for an existing bot are refused and change nothing either.
"""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from audit.services.records import system_event_record
from botconfig.models import BotConfiguration
from botconfig.services import bot_register
from importers.core import COMPONENT, SourceError
from trading.models import AccountBalance, Bot, SnapshotType

REGISTERED_BY = "register_bot"


@dataclass(frozen=True)
class Registration:
    bot_id: str
    name: str
    strategy_type: str
    exchange: str
    base_currency: str
    mode: str
    initial_capital_usd: Decimal
    config: dict[str, Any]
    at: datetime | None = None  # the opening balance's time; None: now (or as stored)


@dataclass(frozen=True)
class RegistrationResult:
    bot: Bot
    created: bool
    opening: AccountBalance
    config_version: int


def bot_registration_apply(*, registration: Registration) -> RegistrationResult:
    """Create the bot, configuration version 1 and the opening balance; or, when the bot
    exists with exactly these values, change nothing. Raises SourceError naming every field
    that differs from the stored bot (nothing written)."""
    with transaction.atomic():
        bot = Bot.objects.select_for_update().filter(pk=registration.bot_id).first()
        if bot is not None:
            return _same_or_refuse(bot, registration)
        at = registration.at or timezone.now()
        try:
            bot = bot_register(
                bot_id=registration.bot_id,
                name=registration.name,
                strategy_type=registration.strategy_type,
                exchange=registration.exchange,
                initial_capital_usd=registration.initial_capital_usd,
                config=registration.config,
                change_reason="registered by register_bot",
                base_currency=registration.base_currency,
                mode=registration.mode,
                metadata={"registered_by": REGISTERED_BY},
            )
        except ValidationError as exc:  # e.g. a configuration its strategy's schema refuses
            raise SourceError(f"{_refusal(exc)}; nothing written") from exc
        opening = AccountBalance.objects.create(
            bot=bot,
            ts=at,
            balance_usd=registration.initial_capital_usd,
            equity_usd=registration.initial_capital_usd,
            snapshot_type=SnapshotType.MANUAL,
            metadata={"opening": True, "registered_by": REGISTERED_BY},
        )
        bot.current_equity_usd = registration.initial_capital_usd
        bot.save(update_fields=["current_equity_usd", "updated_at"])
        system_event_record(
            component=COMPONENT,
            event_type="bot_registered",
            message=f"register_bot: {bot.bot_id} with configuration version 1",
            bot=bot,
            details={
                "bot_id": bot.bot_id,
                "initial_capital_usd": str(registration.initial_capital_usd),
                "opening_balance_at": at.isoformat(),
                "config": registration.config,
            },
        )
        return RegistrationResult(bot=bot, created=True, opening=opening, config_version=1)


def _refusal(exc: ValidationError) -> str:
    """One clause per field: "the configuration is refused: a: required; b: required"."""
    if not hasattr(exc, "error_dict"):
        return "; ".join(exc.messages)
    return "; ".join(
        ("the configuration is refused" if name == "config" else name) + ": " + "; ".join(messages)
        for name, messages in exc.message_dict.items()
    )


def _same_or_refuse(bot: Bot, registration: Registration) -> RegistrationResult:
    differences = []
    for name in ("name", "strategy_type", "exchange", "base_currency", "mode"):
        stored, given = getattr(bot, name), getattr(registration, name)
        if stored != given:
            differences.append(f"{name} is {stored!r}, not {given!r}")
    if bot.initial_capital_usd != registration.initial_capital_usd:
        differences.append(
            f"initial_capital is {bot.initial_capital_usd}, not {registration.initial_capital_usd}"
        )
    active = BotConfiguration.objects.filter(bot=bot, is_active=True).first()
    if active is None:
        differences.append("it has no configuration")
    elif active.config != registration.config:
        differences.append(f"its active configuration (version {active.version}) differs")
    opening = (
        AccountBalance.objects.filter(bot=bot, snapshot_type=SnapshotType.MANUAL)
        .filter(metadata__opening=True)
        .order_by("ts")
        .first()
    )
    if opening is None:
        differences.append("it has no opening balance")
    elif registration.at is not None and opening.ts != registration.at:
        differences.append(f"its opening balance is at {opening.ts.isoformat()}")
    if differences or active is None or opening is None:
        raise SourceError(
            f"bot {bot.bot_id} exists and differs: {'; '.join(differences)}. Nothing changed "
            "(change a registered bot in the admin, or its configuration as a new version)"
        )
    return RegistrationResult(
        bot=bot, created=False, opening=opening, config_version=active.version
    )
