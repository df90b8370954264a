"""One source of truth for a bot's risk limits: the configuration in force (``risk.max_*``).

Until now staff edited the bot's ``max_*`` columns (read by the risk check) and, separately,
the configuration's ``risk`` block (sent to the bot), and the two disagreed (the demo's
momentum bot: 3 open positions on the bot, 4 in its configuration). From now on a version put
in force writes the columns. This migration makes existing rows obey that:

- a limit the configuration in force holds (a positive number that fits the column) wins: the
  column takes its value;
- a limit only the column holds (the configuration lacks the key, holds something that is not
  a usable number, or the bot has no configuration) is kept: it is written into a new
  configuration version (version 1 for a bot without one), so no limit is lost;
- each change writes its change-log record, as the services do.
"""

from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.db import migrations
from django.utils import timezone

LIMIT_KEYS = (
    "max_position_size_usd",
    "max_daily_loss_usd",
    "max_drawdown_pct",
    "max_leverage",
    "max_open_positions",
)
REASON = "risk limits: the bot's max_* columns moved into the configuration (migration 0003)"
CONFIG_FIELDS = ("version", "config", "effective_from", "effective_to", "is_active")


def _usable(name: str, value: Any) -> Decimal | int | None:
    """The column value of ``risk.<name>``, or None when it is not a usable limit."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if name == "max_open_positions":
        return int(value) if value == int(value) and 0 <= value < 2**31 else None
    number = Decimal(str(value))
    if not number.is_finite() or number <= 0:
        return None
    if name == "max_drawdown_pct":
        return number if number <= 100 else None
    ceiling = Decimal(10) ** (12 if name.endswith("_usd") else 6)  # NUMERIC(20,8) / (12,6)
    return number if number < ceiling else None


def _json_number(value: Decimal | int) -> int | float:
    return int(value) if value == int(value) else float(value)


def _json(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    return value.isoformat() if hasattr(value, "isoformat") else value


def forward(apps: Any, schema_editor: Any) -> None:
    Bot = apps.get_model("trading", "Bot")
    BotConfiguration = apps.get_model("botconfig", "BotConfiguration")
    ChangeLog = apps.get_model("audit", "ChangeLog")
    now = timezone.now()

    def record(entity_type: str, entity_id: Any, action: str, old: dict, new: dict) -> None:
        ChangeLog.objects.create(
            ts=now,
            entity_type=entity_type,
            entity_id=str(entity_id),
            action=action,
            old_values={k: _json(v) for k, v in old.items()},
            new_values={k: _json(v) for k, v in new.items()},
            note=REASON,
        )

    for bot in Bot.objects.select_for_update().order_by("bot_id"):
        active = BotConfiguration.objects.filter(bot=bot, is_active=True).first()
        config = active.config if active is not None and isinstance(active.config, dict) else {}
        risk = config.get("risk") if isinstance(config.get("risk"), dict) else {}
        kept = {
            name: getattr(bot, name)
            for name in LIMIT_KEYS
            if getattr(bot, name) is not None and _usable(name, risk.get(name)) is None
        }
        if kept:
            risk = {**risk, **{name: _json_number(value) for name, value in kept.items()}}
            latest = BotConfiguration.objects.filter(bot=bot).order_by("-version").first()
            start = now
            old: dict[str, Any] = {}
            if active is not None:
                start = max(now, active.effective_from + timedelta(microseconds=1))
                old = {name: getattr(active, name) for name in CONFIG_FIELDS}
                active.effective_to, active.is_active = start, False
                active.save(update_fields=["effective_to", "is_active"])
            version = BotConfiguration.objects.create(
                bot=bot,
                version=latest.version + 1 if latest is not None else 1,
                config={**config, "risk": risk},
                effective_from=start,
                effective_to=None,
                is_active=True,
                change_reason=REASON,
            )
            new = {name: getattr(version, name) for name in CONFIG_FIELDS}
            record("botconfig.botconfiguration", version.pk, "create", old, new)
        limits = {name: _usable(name, risk.get(name)) for name in LIMIT_KEYS}
        changed = [name for name in LIMIT_KEYS if getattr(bot, name) != limits[name]]
        if changed:
            old = {name: getattr(bot, name) for name in changed}
            for name in changed:
                setattr(bot, name, limits[name])
            bot.save(update_fields=changed)
            record("trading.bot", bot.pk, "update", old, {n: limits[n] for n in changed})


class Migration(migrations.Migration):
    dependencies = [
        ("botconfig", "0002_strategy_schemas"),
        ("audit", "0001_initial"),
    ]

    operations = [migrations.RunPython(forward, migrations.RunPython.noop)]
