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
from botconfig.models import BotConfiguration, StrategySchema
from botconfig.validation import LIMIT_KEYS, config_errors, limits_of, schema_check, schema_errors
from trading.jsonvalues import json_refused
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
    "metadata",
)
REASON_NEEDED = "A change to a live (active) bot needs a reason."
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
    _metadata_refuse(fields)
    if config is not None:  # the limits come from it, so the bot's create record has them
        config_refuse(strategy_type=strategy_type, config=config)
        fields.update(limits_of(config)[0])
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
        new_values=model_values(bot, (*BOT_EDITABLE_FIELDS, *LIMIT_KEYS)),
        user=user,
    )
    if config is not None:
        config_version_create(bot=bot, config=config, user=user, change_reason=change_reason)
    return bot


def _metadata_refuse(fields: dict[str, Any]) -> None:
    """Refuse metadata nested too deep or holding a lone surrogate, naming the key."""
    refused = json_refused(fields.get("metadata"))
    if refused is not None:
        raise ValidationError({"metadata": [refused]})


@transaction.atomic
def bot_update(*, bot: Bot, data: dict[str, Any], user: User | None, note: str = "") -> Bot:
    """Change staff-editable fields of ``bot``; records old and new values of what changed."""
    unknown = set(data) - set(BOT_EDITABLE_FIELDS)
    if unknown:
        raise ValidationError({name: "not a field staff can change" for name in sorted(unknown)})
    _metadata_refuse(data)
    locked = Bot.objects.select_for_update().get(pk=bot.pk)
    changed = [name for name, value in data.items() if getattr(locked, name) != value]
    if not changed:
        return locked
    in_force = BotConfiguration.objects.filter(bot=locked, is_active=True).first()
    if "strategy_type" in changed and in_force is not None:
        errors = config_errors(strategy_type=data["strategy_type"], config=in_force.config)[1]
        if errors:  # the configuration the bot runs must stay valid
            raise ValidationError(
                {
                    "strategy_type": [
                        f"The configuration in force (version {in_force.version}) "
                        f"fails this type's schema: {'; '.join(errors)}"
                    ]
                }
            )
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


def config_refuse(
    *,
    strategy_type: str,
    config: Any,
    change_reason: str = "",
    live: bool = False,
    lock: bool = False,
) -> StrategySchema | None:
    """Raise ValidationError naming every refused key (and a missing reason for a live bot);
    else return the schema ``config`` satisfies (``lock``: held until commit)."""
    schema, errors = config_errors(strategy_type=strategy_type, config=config, lock=lock)
    refusals: dict[str, list[str]] = {}
    if errors:
        refusals["config"] = errors
    if live and not change_reason.strip():
        refusals["change_reason"] = [REASON_NEEDED]
    if refusals:
        raise ValidationError(refusals)
    return schema


def _limits_apply(*, bot: Bot, config: dict[str, Any], user: User | None, note: str) -> None:
    """Write the limits ``config`` sets to the bot's columns, recording what changed."""
    limits = limits_of(config)[0]
    changed = [name for name in LIMIT_KEYS if getattr(bot, name) != limits[name]]
    if not changed:
        return
    old = model_values(bot, changed)
    for name in changed:
        setattr(bot, name, limits[name])
    bot.save(update_fields=[*changed, "updated_at"])
    change_record(
        entity=bot,
        action=ChangeAction.UPDATE,
        old_values=old,
        new_values=model_values(bot, changed),
        user=user,
        note=note,
    )


@transaction.atomic
def config_version_create(
    *,
    bot: Bot,
    config: dict[str, Any],
    user: User | None,
    change_reason: str = "",
    action: ChangeAction = ChangeAction.CREATE,
) -> BotConfiguration:
    """Write the bot's next configuration version, in force from now; close the current one.
    Refused (nothing written) unless the configuration is valid and, for a live bot, a reason
    is given."""
    locked = Bot.objects.select_for_update().get(pk=bot.pk)  # one writer per bot at a time
    schema = config_refuse(
        strategy_type=locked.strategy_type,
        config=config,
        change_reason=change_reason,
        live=locked.status == BotStatus.ACTIVE,
        lock=True,
    )
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
        schema=schema,
        schema_version=schema.version if schema else None,
    )
    new_values = model_values(version, CONFIG_AUDIT_FIELDS)
    if schema is not None:
        new_values["schema"] = {"strategy_type": schema.strategy_type, "version": schema.version}
    change_record(
        entity=version,
        action=action,
        old_values=old_values,
        new_values=new_values,
        user=user,
        note=change_reason,
    )
    _limits_apply(
        bot=locked,
        config=config,
        user=user,
        note=f"from configuration version {version.version}: {change_reason}".rstrip(": "),
    )
    transaction.on_commit(lambda: config_cache_drop(bot.bot_id))
    return version


def config_rollback(
    *, version: BotConfiguration, user: User | None, change_reason: str = ""
) -> BotConfiguration:
    """Write a new version equal to ``version``. History is kept; nothing is edited. The old
    configuration must pass today's schema; a live bot's rollback needs a reason."""
    reason = change_reason.strip()
    if not reason and version.bot.status != BotStatus.ACTIVE:
        reason = f"roll back to version {version.version}"
    return config_version_create(
        bot=version.bot,
        config=version.config,
        user=user,
        change_reason=reason,
        action=ChangeAction.ROLLBACK,
    )


@transaction.atomic
def strategy_schema_save(
    *,
    strategy_type: str,
    document: Any,
    user: User | None,
    reason: str,
) -> StrategySchema:
    """Create or replace the schema of ``strategy_type`` (its next version), with its change
    record. Refused (nothing written) when ``document`` is not a valid JSON Schema or when a
    configuration in force that it would govern fails it: a schema never makes the
    configuration a bot runs invalid, which nothing could then roll back to."""
    schema_check(document)
    existing = StrategySchema.objects.select_for_update().filter(strategy_type=strategy_type)
    schema = existing.first()
    failing = schema_in_force_failures(strategy_type=strategy_type, document=document)
    if failing:
        raise ValidationError({"schema": failing})
    old_values: dict[str, Any] = {}
    if schema is None:
        schema = StrategySchema(strategy_type=strategy_type, version=1)
        action = ChangeAction.CREATE
    else:
        old_values = model_values(schema, SCHEMA_AUDIT_FIELDS)
        schema.version += 1
        action = ChangeAction.UPDATE
    schema.schema = document
    schema.updated_by = user if user is not None and user.is_authenticated else None
    schema.save()
    change_record(
        entity=schema,
        action=action,
        old_values=old_values,
        new_values=model_values(schema, SCHEMA_AUDIT_FIELDS),
        user=user,
        note=reason,
    )
    return schema


SCHEMA_AUDIT_FIELDS = ("strategy_type", "version", "schema")


def schema_in_force_failures(*, strategy_type: str, document: dict[str, Any]) -> list[str]:
    """One refusal per configuration in force that ``document``, as the schema of
    ``strategy_type``, would fail: its bots', or, for the default schema, those of strategy
    types without a schema of their own."""
    in_force = BotConfiguration.objects.filter(is_active=True).order_by("bot_id")
    if strategy_type == StrategySchema.DEFAULT:
        own = StrategySchema.objects.exclude(strategy_type=StrategySchema.DEFAULT)
        in_force = in_force.exclude(bot__strategy_type__in=own.values("strategy_type"))
    else:
        in_force = in_force.filter(bot__strategy_type=strategy_type)
    return [
        f"The configuration in force of {bot_id} (version {number}) would fail it: "
        + "; ".join(errors)
        for bot_id, number, config in in_force.values_list("bot_id", "version", "config")
        if (errors := schema_errors(document=document, config=config))
    ]
