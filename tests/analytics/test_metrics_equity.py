"""One bot's equity curve down-sampled for a chart (bot_equity_curve(max_points=...)): which of
the curve's own points are kept, on a hand-made curve of 20 trades in two spans of time."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from analytics.selectors import bot_equity_curve, bot_summary
from tests.factories import make_balance, make_bot, make_closed_trade
from trading.models import Bot

pytestmark = pytest.mark.django_db

D0 = datetime(2026, 1, 5, tzinfo=UTC)
# One trade an hour from 1,000: hours 0-9 fall in the first of two spans, 10-19 in the second.
# The maximum drawdown is 1,301 (hour 11) to 1,001 (hour 12); hour 11 is nothing else of note.
PNL = [100, 100, -50, -50, 20, -20, -10, 5, 5, 1, 50, 150, -300, 100, 250, -10, -10, 5, -1, -5]
EQUITY = [1100, 1200, 1150, 1100, 1120, 1100, 1090, 1095, 1100, 1101]
EQUITY += [1151, 1301, 1001, 1101, 1351, 1341, 1331, 1336, 1335, 1330]


def hour(n: int) -> datetime:
    return D0 + timedelta(hours=n)


@pytest.fixture
def curved(db: None) -> Bot:
    bot = make_bot("curved", initial_capital_usd=Decimal("1000"))
    for n, pnl in enumerate(PNL):
        make_closed_trade(
            bot, pnl_usd=Decimal(pnl), entry_time=hour(n) - timedelta(minutes=30), exit_time=hour(n)
        )
    return bot


def hours(points: list[dict[str, Any]]) -> list[int]:
    return [int((p["ts"] - D0) / timedelta(hours=1)) for p in points]


def test_the_whole_curve_when_it_is_short_enough(curved: Bot) -> None:
    full = bot_equity_curve(bot=curved)

    assert [int(p["equity_usd"]) for p in full["points"]] == EQUITY
    assert full["points_total"] == 20
    assert bot_equity_curve(bot=curved, max_points=20) == full


def test_each_span_keeps_its_first_last_lowest_highest_and_deepest(
    curved: Bot, django_assert_num_queries: Any
) -> None:
    full = bot_equity_curve(bot=curved)

    with django_assert_num_queries(2):
        curve = bot_equity_curve(bot=curved, max_points=11)  # two spans of up to 5, and a peak

    # First span: 0 and 9, the lowest and deepest 6, the highest 1. Second: 10 and 19, the
    # lowest and deepest 12 (the trough), the highest 14; and 11, the trough's peak.
    assert hours(curve["points"]) == [0, 1, 6, 9, 10, 11, 12, 14, 19]
    assert curve["points"] == [full["points"][n] for n in hours(curve["points"])]
    assert curve["points_total"] == 20
    summary = bot_summary(bot=curved)
    assert hours([{"ts": summary["max_drawdown_peak_at"]}]) == [11]
    assert hours([{"ts": summary["max_drawdown_trough_at"]}]) == [12]


def test_a_period_is_sampled_from_its_own_start(curved: Bot) -> None:
    curve = bot_equity_curve(bot=curved, since=hour(10), max_points=6)  # one span

    assert hours(curve["points"]) == [10, 11, 12, 14, 19]
    assert [f"{p['equity_usd']:f}" for p in curve["points"][:3]] == [
        "1151.00000000",
        "1301.00000000",
        "1001.00000000",
    ]
    assert (curve["points_total"], curve["points"][2]["drawdown_pct"]) == (10, 23.059185)


def test_reported_equity_keeps_each_spans_first_last_lowest_and_highest(db: None) -> None:
    bot = make_bot("reporter")
    values = [10, 12, 9, 15, 11, 11, 13, 8, 14, 12, 20, 5, 21, 19, 19, 30, 18, 17, 25, 22]
    for n, value in enumerate(values):
        make_balance(bot, ts=hour(n), equity_usd=Decimal(value))

    curve = bot_equity_curve(bot=bot, max_points=8)  # two spans of four
    period = bot_equity_curve(bot=bot, since=hour(10), until=hour(19), max_points=8)

    assert hours(curve["reported"]) == [0, 3, 7, 9, 10, 11, 15, 19]
    assert [int(r["equity_usd"]) for r in curve["reported"]] == [10, 15, 8, 12, 20, 5, 30, 22]
    assert (curve["reported_total"], curve["points"], curve["points_total"]) == (20, [], 0)
    # Nine rows from 10 to 18: the second span (14-18) leaves out 16, neither end nor extreme.
    assert hours(period["reported"]) == [10, 11, 12, 13, 14, 15, 17, 18]
    assert period["reported_total"] == 9


def test_too_few_points_are_refused(curved: Bot) -> None:
    with pytest.raises(ValueError, match="max_points must be at least 6, not 5"):
        bot_equity_curve(bot=curved, max_points=5)
