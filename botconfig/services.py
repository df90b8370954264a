"""Writes to the bot registry and to versioned configurations. Each writes its audit record.

A configuration version is never edited in place: a change writes version n+1 effective now
and closes version n at the same instant, so ranges meet but never overlap. Writers of one
bot are serialised by locking the bot's row.
"""

from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from audit.models import ChangeAction
from audit.services import change_record, model_values
from botconfig.cache import config_cache_drop
from botconfig.models import BotConfiguration
from trading.models import Bot, BotStatus

# Fields of trading.bots that staff may change; the rest is written by the bot or the server.
BOT_EDITABLE_FIELDS = (
    "name",
    "strategy_type",
    "exchange",
    "base_currency",
    "status",
    "mode",
    "initial_capital_usd",
    "max_position_size_usd",
    "max_daily_loss_usd",
    "max_drawdown_pct",
    "max_leverage",
    "max_open_positions",
    "metadata",
)
CONFIG_AUDIT_FIELDS = ("version", "config", "effective_from", "effective_to", "is_active")


@transaction.atomic
def bot_register(
    *,
    bot_id: str,
    name: str,
    strategy_type: str,
    exchange: str,
    initial_capital_usd: Decimal,
    config: dict[str, Any] | None = None,
    user: User | None = None,
    change_reason: str = "initial configuration",
    **fields: Any,
) -> Bot:
    """Create a bot (and, when ``config`` is given, its configuration version 1)."""
    unknown = set(fields) - set(BOT_EDITABLE_FIELDS)
    if unknown:
        raise ValidationError({name: "not a field staff can set" for name in sorted(unknown)})
    bot = Bot(
        bot_id=bot_id,
        name=name,
        strategy_type=strategy_type,
        exchange=exchange,
        initial_capital_usd=initial_capital_usd,
        **fields,
    )
    bot.full_clean()
    bot.save(force_insert=True)
    change_record(
        entity=bot,
        action=ChangeAction.CREATE,
        new_values=model_values(bot, BOT_EDITABLE_FIELDS),
        user=user,
    )
    if config is not None:
        config_version_create(bot=bot, config=config, user=user, change_reason=change_reason)
    return bot


@transaction.atomic
def bot_update(*, bot: Bot, data: dict[str, Any], user: User | None, note: str = "") -> Bot:
    """Change staff-editable fields of ``bot``; records old and new values of what changed."""
    unknown = set(data) - set(BOT_EDITABLE_FIELDS)
    if unknown:
        raise ValidationError({name: "not a field staff can change" for name in sorted(unknown)})
    locked = Bot.objects.select_for_update().get(pk=bot.pk)
    changed = [name for name, value in data.items() if getattr(locked, name) != value]
    if not changed:
        return locked
    old = model_values(locked, changed)
    for name in changed:
        setattr(locked, name, data[name])
    locked.full_clean()
    locked.save(update_fields=[*changed, "updated_at"])
    action = ChangeAction.UPDATE
    if changed == ["status"]:
        if data["status"] == BotStatus.PAUSED:
            action = ChangeAction.PAUSE
        elif data["status"] == BotStatus.ACTIVE and old["status"] == BotStatus.PAUSED:
            action = ChangeAction.RESUME
    change_record(
        entity=locked,
        action=action,
        old_values=old,
        new_values=model_values(locked, changed),
        user=user,
        note=note,
    )
    return locked


def bot_pause(*, bot: Bot, user: User | None, note: str = "") -> Bot:
    """Pause an active (or erroring) bot. Pausing a paused or stopped bot changes nothing."""
    if bot.status not in (BotStatus.ACTIVE, BotStatus.ERROR):
        return bot
    return bot_update(bot=bot, data={"status": BotStatus.PAUSED}, user=user, note=note)


def bot_resume(*, bot: Bot, user: User | None, note: str = "") -> Bot:
    """Resume a paused bot. Only a paused bot resumes: a stopped one is restarted on purpose."""
    if bot.status != BotStatus.PAUSED:
        return bot
    return bot_update(bot=bot, data={"status": BotStatus.ACTIVE}, user=user, note=note)


@transaction.atomic
def config_version_create(
    *,
    bot: Bot,
    config: dict[str, Any],
    user: User | None,
    change_reason: str = "",
    action: ChangeAction = ChangeAction.CREATE,
) -> BotConfiguration:
    """Write the bot's next configuration version, in force from now; close the current one."""
    if not isinstance(config, dict):
        raise ValidationError({"config": "A configuration is a JSON object."})
    Bot.objects.select_for_update().get(pk=bot.pk)  # one writer per bot at a time
    active = BotConfiguration.objects.filter(bot=bot, is_active=True).first()
    latest = BotConfiguration.objects.filter(bot=bot).order_by("-version").first()
    now = timezone.now()
    old_values: dict[str, Any] = {}
    if active is not None:
        # A clock that stepped back must not produce an empty or inverted range.
        now = max(now, active.effective_from + timedelta(microseconds=1))
        old_values = model_values(active, CONFIG_AUDIT_FIELDS)
        active.effective_to = now
        active.is_active = False
        active.save(update_fields=["effective_to", "is_active"])
    version = BotConfiguration.objects.create(
        bot=bot,
        version=(latest.version + 1) if latest else 1,
        config=config,
        effective_from=now,
        effective_to=None,
        is_active=True,
        created_by=user if user is not None and user.is_authenticated else None,
        change_reason=change_reason,
    )
    change_record(
        entity=version,
        action=action,
        old_values=old_values,
        new_values=model_values(version, CONFIG_AUDIT_FIELDS),
        user=user,
        note=change_reason,
    )
    transaction.on_commit(lambda: config_cache_drop(bot.bot_id))
    return version


def config_rollback(
    *, version: BotConfiguration, user: User | None, change_reason: str = ""
) -> BotConfiguration:
    """Write a new version equal to ``version``. History is kept; nothing is edited."""
    reason = change_reason.strip() or f"roll back to version {version.version}"
    return config_version_create(
        bot=version.bot,
        config=version.config,
        user=user,
        change_reason=reason,
        action=ChangeAction.ROLLBACK,
    )
