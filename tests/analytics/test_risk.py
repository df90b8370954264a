"""The risk-limit checks (analytics.services.risk.risk_limits_check) on hand-made fixtures."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from analytics.services.risk import risk_limits_check
from audit.models import ChangeAction, ChangeLog, RiskEvent
from botconfig.models import BotConfiguration
from botconfig.services import config_version_create
from tests.factories import make_bot, make_closed_trade, make_position
from trading.models import Bot, RiskMetric

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 1, 10, 15, 0, tzinfo=UTC)
TODAY = NOW.replace(hour=0)


def limited_bot(**limits: Any) -> Bot:
    """A bot with only the given limits set (initial capital 10,000)."""
    return make_bot("risky_001", **limits)


def events() -> list[Any]:
    return list(
        RiskEvent.objects.order_by("id").values(
            "bot_id", "event_type", "limit_value", "actual_value", "action_taken", "severity",
            "resolved",
        )
    )  # fmt: skip


def closed_today(bot: Bot, pnl: str, minutes: int, **fields: Any) -> None:
    closed_at(bot, pnl, TODAY + timedelta(minutes=minutes), **fields)


def closed_at(bot: Bot, pnl: str, exit_time: datetime, **fields: Any) -> None:
    make_closed_trade(
        bot,
        pnl_usd=Decimal(pnl),
        entry_time=exit_time - timedelta(minutes=5),
        exit_time=exit_time,
        **fields,
    )


# --- Daily loss --------------------------------------------------------------------------------


def test_daily_loss_counts_todays_realized_and_open_unrealized_pnl() -> None:
    bot = limited_bot(max_daily_loss_usd=Decimal("500"))
    closed_today(bot, "-300", 60)
    closed_today(bot, "-150", 120)
    closed_today(bot, "-5000", 130, source="backtest")  # backtests are left out
    closed_at(bot, "-9000", TODAY - timedelta(seconds=1))  # yesterday's loss is not today's
    make_position(bot, unrealized_pnl_usd=Decimal("-100.5"))
    make_position(bot, symbol="ETH/USDT", status="closed", closed_at=NOW, unrealized_pnl_usd=-999)

    created = risk_limits_check(now=NOW)

    assert events() == [
        {
            "bot_id": "risky_001",
            "event_type": "daily_loss_limit",
            "limit_value": Decimal("500"),
            "actual_value": Decimal("550.5"),
            "action_taken": "alerted",
            "severity": "warning",
            "resolved": False,
        }
    ]
    assert created[0].details == {
        "unit": "usd",
        "day": "2026-01-10",
        "realized_pnl_usd": "-450.00000000",
        "unrealized_pnl_usd": "-100.50000000",
        "pause_on_breach": False,
        "checked_at": "2026-01-10T15:00:00Z",
    }


def test_a_daily_loss_at_the_limit_is_not_a_breach() -> None:
    bot = limited_bot(max_daily_loss_usd=Decimal("500"))
    closed_today(bot, "-400", 60)
    make_position(bot, unrealized_pnl_usd=Decimal("-100"))

    assert risk_limits_check(now=NOW) == []
    assert events() == []


# --- Drawdown ----------------------------------------------------------------------------------


def test_drawdown_is_measured_from_the_realized_peak() -> None:
    bot = limited_bot(max_drawdown_pct=Decimal("10"))
    closed_at(bot, "2000", TODAY - timedelta(days=3))
    closed_today(bot, "-1500", 60)  # 12,000 -> 10,500: 12.5 %

    risk_limits_check(now=NOW)

    event = RiskEvent.objects.get()
    assert (event.event_type, event.limit_value, event.actual_value) == (
        "drawdown_limit",
        Decimal("10"),
        Decimal("12.5"),
    )
    assert event.details["equity_usd"] == "10500.00000000"
    assert event.details["peak_usd"] == "12000.00000000"
    assert event.details["continued_from_rollup_of"] is None


def test_a_drawdown_at_the_limit_is_not_a_breach_and_the_peak_starts_at_initial_capital() -> None:
    bot = limited_bot(max_drawdown_pct=Decimal("10"))
    closed_at(bot, "2000", TODAY - timedelta(days=3))
    closed_today(bot, "-1200", 60)  # 12,000 -> 10,800: 10 %
    other = make_bot("loser_001", max_drawdown_pct=Decimal("10"))
    closed_today(other, "-999", 60)  # 10,000 -> 9,001: 9.99 %

    assert risk_limits_check(now=NOW) == []


def test_drawdown_continues_from_the_latest_rollup_row_without_rereading_history() -> None:
    bot = limited_bot(max_drawdown_pct=Decimal("20"))
    # Before the rollup day: would make the peak 50,000 if it were read again.
    closed_at(bot, "40000", TODAY - timedelta(days=5))
    RiskMetric.objects.create(
        bot=bot,
        date=date(2026, 1, 8),
        equity_close_usd=Decimal("11000"),
        equity_peak_usd=Decimal("13000"),
        computed_at=NOW,
    )
    closed_at(bot, "500", TODAY - timedelta(hours=12))
    closed_today(bot, "-1300", 60)  # 11,000 + 500 - 1,300 = 10,200 against 13,000: 21.538462 %
    # Today's own (in-progress) row is not where the curve continues from.
    RiskMetric.objects.create(
        bot=bot, date=date(2026, 1, 10), equity_close_usd=Decimal("1"), computed_at=NOW
    )

    risk_limits_check(now=NOW)

    event = RiskEvent.objects.get()
    assert (event.event_type, event.actual_value) == ("drawdown_limit", Decimal("21.538462"))
    assert event.details["equity_usd"] == "10200.00000000"
    assert event.details["peak_usd"] == "13000.00000000"
    assert event.details["continued_from_rollup_of"] == "2026-01-08"


# --- Positions ---------------------------------------------------------------------------------


def test_position_size_is_quantity_times_current_or_entry_price() -> None:
    bot = limited_bot(max_position_size_usd=Decimal("5000"))
    make_position(bot, quantity=Decimal("0.08"), current_price=Decimal("62500"))  # 5,000: at it
    big = make_position(  # no current price: 0.1 x 61,000 = 6,100
        bot, symbol="ETH/USDT", quantity=Decimal("0.1"), avg_entry_price=Decimal("61000")
    )

    risk_limits_check(now=NOW)

    event = RiskEvent.objects.get()
    assert (event.event_type, event.limit_value, event.actual_value) == (
        "position_size_limit",
        Decimal("5000"),
        Decimal("6100"),
    )
    assert event.details["position_id"] == big.pk


def test_a_position_at_the_size_limit_is_not_a_breach() -> None:
    bot = limited_bot(max_position_size_usd=Decimal("5000"))
    make_position(bot, quantity=Decimal("0.08"), current_price=Decimal("62500"))

    assert risk_limits_check(now=NOW) == []


def test_leverage_is_the_highest_of_the_open_positions() -> None:
    bot = limited_bot(max_leverage=Decimal("3"))
    make_position(bot, leverage=Decimal("3"))
    high = make_position(bot, symbol="ETH/USDT", leverage=Decimal("5"))
    make_position(bot, symbol="SOL/USDT", leverage=Decimal("10"), status="closed", closed_at=NOW)

    risk_limits_check(now=NOW)

    event = RiskEvent.objects.get()
    assert (event.event_type, event.limit_value, event.actual_value) == (
        "leverage_limit",
        Decimal("3"),
        Decimal("5"),
    )
    assert event.details["position_id"] == high.pk


def test_open_positions_count_the_positions_not_closed() -> None:
    bot = limited_bot(max_open_positions=2)
    ids = [
        make_position(bot, symbol="BTC/USDT").pk,
        make_position(bot, symbol="ETH/USDT", status="partially_closed").pk,
        make_position(bot, symbol="SOL/USDT").pk,
    ]
    make_position(bot, symbol="XRP/USDT", status="closed", closed_at=NOW)

    risk_limits_check(now=NOW)

    event = RiskEvent.objects.get()
    assert (event.event_type, event.limit_value, event.actual_value) == (
        "open_positions_limit",
        Decimal("2"),
        Decimal("3"),
    )
    assert event.details["position_ids"] == ids


def test_open_positions_at_the_limit_and_unset_limits_are_not_breaches() -> None:
    bot = limited_bot(max_open_positions=2)
    make_position(bot, symbol="BTC/USDT", leverage=Decimal("50"))
    make_position(bot, symbol="ETH/USDT", unrealized_pnl_usd=Decimal("-1000000"))

    assert risk_limits_check(now=NOW) == []


def test_a_stopped_bot_is_not_checked() -> None:
    bot = limited_bot(max_open_positions=0, status="stopped")
    make_position(bot)

    assert risk_limits_check(now=NOW) == []


# --- One event per breach ----------------------------------------------------------------------


def test_a_second_run_during_the_same_breach_writes_nothing() -> None:
    bot = limited_bot(max_open_positions=0, max_leverage=Decimal("1"))
    make_position(bot, leverage=Decimal("2"))
    first = risk_limits_check(now=NOW)
    assert [e.event_type for e in first] == ["leverage_limit", "open_positions_limit"]
    before = events()

    assert risk_limits_check(now=NOW + timedelta(minutes=1)) == []
    assert events() == before
    assert not ChangeLog.objects.filter(entity_type="audit.riskevent").exists()


def test_a_breach_that_clears_is_resolved_and_a_new_one_is_a_new_event() -> None:
    bot = limited_bot(max_open_positions=0)
    position = make_position(bot)
    [first] = risk_limits_check(now=NOW)

    position.status, position.closed_at = "closed", NOW
    position.save()
    assert risk_limits_check(now=NOW + timedelta(minutes=1)) == []
    first.refresh_from_db()
    assert (first.resolved, first.resolved_at, first.resolved_by) == (
        True,
        NOW + timedelta(minutes=1),
        None,
    )
    assert first.resolution_note == "Cleared: back within the limit at 2026-01-10T15:01:00+00:00."
    record = ChangeLog.objects.get(entity_type="audit.riskevent")
    assert (record.action, record.entity_id, record.user) == (
        ChangeAction.RESOLVE,
        str(first.pk),
        None,
    )
    assert record.old_values["resolved"] is False and record.new_values["resolved"] is True

    make_position(bot, symbol="ETH/USDT")
    [second] = risk_limits_check(now=NOW + timedelta(minutes=2))
    assert second.pk != first.pk and second.event_type == "open_positions_limit"


def test_staff_resolving_an_ongoing_breach_lets_the_next_run_report_it_again() -> None:
    bot = limited_bot(max_open_positions=0)
    make_position(bot)
    [first] = risk_limits_check(now=NOW)
    RiskEvent.objects.filter(pk=first.pk).update(resolved=True, resolved_at=NOW)

    [second] = risk_limits_check(now=NOW + timedelta(minutes=1))
    assert second.event_type == "open_positions_limit"


# --- Pausing -----------------------------------------------------------------------------------


def test_pause_on_breach_pauses_the_bot_and_records_the_change() -> None:
    bot = limited_bot(max_open_positions=0, max_leverage=Decimal("1"))
    # The configuration's risk.max_* keys are the limits: the columns follow the version.
    config = {"pause_on_breach": True, "risk": {"max_open_positions": 0, "max_leverage": 1}}
    config_version_create(bot=bot, config=config, user=None, change_reason="t")
    make_position(bot, leverage=Decimal("2"))

    created = risk_limits_check(now=NOW)

    bot.refresh_from_db()
    assert bot.status == "paused"
    assert [(e.action_taken, e.severity) for e in created] == [("bot_paused", "critical")] * 2
    assert created[0].details["pause_on_breach"] is True
    record = ChangeLog.objects.get(entity_type="trading.bot", action=ChangeAction.PAUSE)
    assert (record.old_values, record.new_values, record.user) == (
        {"status": "active"},
        {"status": "paused"},
        None,
    )
    assert record.note == (
        "risk check: leverage_limit, open_positions_limit breached; pause_on_breach"
    )


@pytest.mark.parametrize(
    "config", [{"pause_on_breach": False}, {"pause_on_breach": "true"}, {"risk": {}}, None]
)
def test_without_pause_on_breach_the_check_only_alerts(config: dict[str, Any] | None) -> None:
    bot = limited_bot(max_open_positions=0)
    if config == {"pause_on_breach": "true"}:  # refused by the schema today: an older version
        BotConfiguration.objects.create(bot=bot, version=1, config=config, effective_from=NOW)
    elif config is not None:
        config = {**config, "risk": {"max_open_positions": 0}}
        config_version_create(bot=bot, config=config, user=None, change_reason="t")
    make_position(bot)

    [event] = risk_limits_check(now=NOW)

    bot.refresh_from_db()
    assert (bot.status, event.action_taken, event.severity) == ("active", "alerted", "warning")
    assert not ChangeLog.objects.filter(action=ChangeAction.PAUSE).exists()


def test_only_the_configuration_in_force_counts() -> None:
    bot = limited_bot(max_open_positions=0)
    for pause in (True, False):
        config = {"pause_on_breach": pause, "risk": {"max_open_positions": 0}}
        config_version_create(bot=bot, config=config, user=None, change_reason="t")
    make_position(bot)

    [event] = risk_limits_check(now=NOW)

    assert event.action_taken == "alerted"


def test_a_paused_bot_is_checked_but_not_paused_again() -> None:
    bot = limited_bot(max_open_positions=0, status="paused")
    config = {"pause_on_breach": True, "risk": {"max_open_positions": 0}}
    config_version_create(bot=bot, config=config, user=None)  # a paused bot: no reason needed
    make_position(bot)

    [event] = risk_limits_check(now=NOW)

    assert event.action_taken == "alerted"
    assert not ChangeLog.objects.filter(action=ChangeAction.PAUSE).exists()


# --- Set-based ---------------------------------------------------------------------------------


def test_the_check_reads_every_bot_in_a_fixed_number_of_queries(
    django_assert_num_queries: Any,
) -> None:
    for n in range(5):
        bot = make_bot(f"calm_{n}", max_open_positions=5, max_daily_loss_usd=Decimal("1000"))
        make_position(bot)
        closed_today(bot, "-10", 60)

    # savepoint, lock, measures, open events, release
    with django_assert_num_queries(5):
        assert risk_limits_check(now=NOW) == []


def test_events_written_elsewhere_count_as_the_open_breach_and_all_clear_together() -> None:
    bot = limited_bot(max_open_positions=0)
    position = make_position(bot)
    for minutes in (1, 2):  # e.g. the demo data's unresolved events
        RiskEvent.objects.create(
            ts=NOW - timedelta(minutes=minutes), bot=bot, event_type="open_positions_limit"
        )

    assert risk_limits_check(now=NOW) == []

    position.status, position.closed_at = "closed", NOW
    position.save()
    assert risk_limits_check(now=NOW + timedelta(minutes=1)) == []
    assert not RiskEvent.objects.filter(resolved=False).exists()
