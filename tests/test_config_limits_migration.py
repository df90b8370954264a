"""Migration 0003 on a populated database of the previous schema: the bot's risk-limit columns
and its configuration in force are made to agree, the configuration winning, no limit lost."""

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from audit.models import ChangeLog
from botconfig.models import BotConfiguration
from trading.models import Bot

BEFORE = [("botconfig", "0002_strategy_schemas")]
AFTER = [("botconfig", "0003_risk_limits_from_configuration")]
T0 = datetime(2026, 11, 1, tzinfo=UTC)
REASON = "risk limits: the bot's max_* columns moved into the configuration (migration 0003)"


def migrate(targets: list[tuple[str, str]]) -> Any:
    """Migrate to ``targets``; the historical apps of that state."""
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    executor.loader.build_graph()
    return executor.loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True)
def test_the_configuration_wins_and_a_limit_only_the_bot_holds_moves_into_it() -> None:
    apps = migrate(BEFORE)
    OldBot = apps.get_model("trading", "Bot")
    OldConfig = apps.get_model("botconfig", "BotConfiguration")

    def bot(bot_id: str, config: dict[str, Any] | None, **limits: Any) -> None:
        OldBot.objects.create(
            bot_id=bot_id,
            name=bot_id,
            strategy_type="grid",
            exchange="binance",
            initial_capital_usd=Decimal(1000),
            **limits,
        )
        if config is not None:
            OldConfig.objects.create(
                bot_id=bot_id, version=1, config=config, effective_from=T0, is_active=True
            )

    # The audit's case: 3 open positions on the bot, 4 in the configuration in force.
    bot("disagree", {"risk": {"max_open_positions": 4, "max_leverage": 2}}, max_open_positions=3)
    # The configuration says nothing of leverage, or nonsense: the bot's column is kept.
    bot("missing", {"risk": {"max_open_positions": 2}}, max_leverage=Decimal(3))
    bot("nonsense", {"risk": {"max_leverage": "abc"}, "x": 1}, max_leverage=Decimal("2.5"))
    bot("no_config", None, max_daily_loss_usd=Decimal(150), max_drawdown_pct=Decimal(10))
    bot("agree", {"risk": {"max_leverage": 2}}, max_leverage=Decimal(2))
    bot("nothing", None)

    migrate(AFTER)

    limits = {
        b.bot_id: {n: v for n in ("max_open_positions", "max_leverage", "max_daily_loss_usd",
                                   "max_drawdown_pct") if (v := getattr(b, n)) is not None}
        for b in Bot.objects.all()
    }  # fmt: skip
    assert limits == {
        "disagree": {"max_open_positions": 4, "max_leverage": Decimal(2)},
        "missing": {"max_open_positions": 2, "max_leverage": Decimal(3)},
        "nonsense": {"max_leverage": Decimal("2.5")},
        "no_config": {"max_daily_loss_usd": Decimal(150), "max_drawdown_pct": Decimal(10)},
        "agree": {"max_leverage": Decimal(2)},
        "nothing": {},
    }
    in_force = {
        c.bot_id: (c.version, c.config, c.change_reason)
        for c in BotConfiguration.objects.filter(is_active=True)
    }
    assert in_force == {
        "disagree": (1, {"risk": {"max_open_positions": 4, "max_leverage": 2}}, ""),
        "missing": (2, {"risk": {"max_open_positions": 2, "max_leverage": 3}}, REASON),
        "nonsense": (2, {"risk": {"max_leverage": 2.5}, "x": 1}, REASON),
        "no_config": (1, {"risk": {"max_daily_loss_usd": 150, "max_drawdown_pct": 10}}, REASON),
        "agree": (1, {"risk": {"max_leverage": 2}}, ""),
    }
    closed = BotConfiguration.objects.filter(is_active=False).order_by("bot_id")
    assert [(c.bot_id, c.version, c.effective_to is not None) for c in closed] == [
        ("missing", 1, True),
        ("nonsense", 1, True),
    ]
    records = sorted(
        ChangeLog.objects.values_list("entity_type", "entity_id", "action", "note"),
        key=lambda r: (r[0], r[1]),
    )
    version_ids = {
        c.bot_id: str(c.pk) for c in BotConfiguration.objects.filter(change_reason=REASON)
    }
    assert records == sorted(
        [
            *(("botconfig.botconfiguration", version_ids[b], "create", REASON)
              for b in ("missing", "nonsense", "no_config")),
            ("trading.bot", "disagree", "update", REASON),
            ("trading.bot", "missing", "update", REASON),
        ],
        key=lambda r: (r[0], r[1]),
    )  # fmt: skip
    bot_record = ChangeLog.objects.get(entity_type="trading.bot", entity_id="disagree")
    assert (bot_record.old_values, bot_record.new_values) == (
        {"max_open_positions": 3, "max_leverage": None},
        {"max_open_positions": 4, "max_leverage": "2"},
    )
