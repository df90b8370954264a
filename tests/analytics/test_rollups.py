"""The daily risk rollup (analytics.services.risk_metrics_rollup), pinned on hand-computed figures.

The fixture: bot `roll`, initial capital 10,000, three UTC days.
  D1 2026-0105: +200 (fee 2) then -300 (fee 3)  -> E 10,200 (peak) then 9,900; dd 300/10,200
  D2 2026-01-06: nothing closes; a trade opened at 22:00 (notional 30,000) is open at the end
  D3 2026-01-07: +50 (fee 1), +500 (fee 5), -100 (fee 1) -> E 9,950, 10,450 (peak), 10,350;
                 a trade opened at 15:00 (notional 30,000) is still open
plus a backtest trade (+999) on D1 that the rollup leaves out.
Daily returns: D1 -100/10,000 = -0.01, D2 0, D3 450/9,900.
Sharpe over D1..D2: mean -0.005 / stdev 0.00707107 x sqrt(365) = -13.509256 (Sortino the same,
as the only losing day makes the downside deviation equal the stdev); over D1..D3: 7.639278 and
39.10729 (computed with Python's statistics module).
"""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.utils import timezone

from analytics.services import risk_metrics_rollup
from tests.factories import make_bot, make_closed_trade, make_position, make_trade
from trading.models import Bot, RiskMetric

D1, D2, D3 = date(2026, 1, 5), date(2026, 1, 6), date(2026, 1, 7)

FIGURES = [
    "date",
    "trades_closed",
    "wins",
    "losses",
    "win_rate",
    "gross_profit_usd",
    "gross_loss_usd",
    "net_pnl_usd",
    "fees_usd",
    "profit_factor",
    "expectancy_usd",
    "max_drawdown_pct",
    "sharpe_30d",
    "sortino_30d",
    "exposure_usd",
    "equity_close_usd",
    "equity_peak_usd",
]

EXPECTED = [
    {
        "date": D1,
        "trades_closed": 2,
        "wins": 1,
        "losses": 1,
        "win_rate": Decimal("0.5"),
        "gross_profit_usd": Decimal("200"),
        "gross_loss_usd": Decimal("300"),
        "net_pnl_usd": Decimal("-100"),
        "fees_usd": Decimal("5"),
        "profit_factor": Decimal("0.666667"),
        "expectancy_usd": Decimal("-50"),
        "max_drawdown_pct": Decimal("2.941176"),
        "sharpe_30d": None,
        "sortino_30d": None,
        "exposure_usd": Decimal("0"),
        "equity_close_usd": Decimal("9900"),
        "equity_peak_usd": Decimal("10200"),
    },
    {
        "date": D2,
        "trades_closed": 0,
        "wins": 0,
        "losses": 0,
        "win_rate": None,
        "gross_profit_usd": Decimal("0"),
        "gross_loss_usd": Decimal("0"),
        "net_pnl_usd": Decimal("0"),
        "fees_usd": Decimal("0"),
        "profit_factor": None,
        "expectancy_usd": None,
        "max_drawdown_pct": Decimal("2.941176"),
        "sharpe_30d": Decimal("-13.509256"),
        "sortino_30d": Decimal("-13.509256"),
        "exposure_usd": Decimal("30000"),
        "equity_close_usd": Decimal("9900"),
        "equity_peak_usd": Decimal("10200"),
    },
    {
        "date": D3,
        "trades_closed": 3,
        "wins": 2,
        "losses": 1,
        "win_rate": Decimal("0.666667"),
        "gross_profit_usd": Decimal("550"),
        "gross_loss_usd": Decimal("100"),
        "net_pnl_usd": Decimal("450"),
        "fees_usd": Decimal("7"),
        "profit_factor": Decimal("5.5"),
        "expectancy_usd": Decimal("150"),
        "max_drawdown_pct": Decimal("2.941176"),
        "sharpe_30d": Decimal("7.639278"),
        "sortino_30d": Decimal("39.107290"),
        "exposure_usd": Decimal("30000"),
        "equity_close_usd": Decimal("10350"),
        "equity_peak_usd": Decimal("10450"),
    },
]


def at(day: date, hour: int) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def closed(bot: Bot, entry: datetime, exit_: datetime, pnl: str, fees: str, **fields: Any) -> None:
    make_closed_trade(
        bot,
        pnl_usd=Decimal(pnl),
        fees_usd=Decimal(fees),
        entry_time=entry,
        exit_time=exit_,
        **fields,
    )


@pytest.fixture
def roll_bot(db: None) -> Bot:
    bot = make_bot("roll")
    closed(bot, at(D1, 9), at(D1, 10), "200", "2")
    closed(bot, at(D1, 9), at(D1, 11), "-300", "3")
    closed(bot, at(D1, 8), at(D1, 10), "999", "0", source="backtest")
    closed(bot, at(D2, 22), at(D3, 1), "50", "1")
    closed(bot, at(D3, 8), at(D3, 12), "500", "5")
    closed(bot, at(D3, 9), at(D3, 13), "-100", "1")
    make_trade(bot, entry_time=at(D3, 15))  # open: 0.5 x 60,000
    return bot


def rows(bot: Bot) -> list[dict[str, Any]]:
    return list(RiskMetric.objects.filter(bot=bot).order_by("date").values(*FIGURES))


def test_a_day_with_no_earlier_rows_rolls_up_the_bots_history_first(roll_bot: Bot) -> None:
    assert risk_metrics_rollup(day=D3) == 1

    assert rows(roll_bot) == EXPECTED


def test_rerunning_a_day_leaves_the_same_single_row(roll_bot: Bot) -> None:
    risk_metrics_rollup(day=D3)
    first = RiskMetric.objects.get(bot=roll_bot, date=D3).computed_at

    assert risk_metrics_rollup(day=D3) == 1
    assert risk_metrics_rollup(day=D2) == 1

    assert rows(roll_bot) == EXPECTED
    assert RiskMetric.objects.get(bot=roll_bot, date=D3).computed_at >= first


def backfill(since: str, until: str) -> str:
    out = StringIO()
    call_command("rollup_risk_metrics", "--since", since, "--until", until, stdout=out)
    return out.getvalue()


def test_the_backfill_command_writes_the_same_rows_day_by_day(roll_bot: Bot) -> None:
    out = backfill("2026-01-05", "2026-01-07")

    assert rows(roll_bot) == EXPECTED
    assert out.splitlines() == [
        "2026-01-05: 1 rows",
        "2026-01-06: 1 rows",
        "2026-01-07: 1 rows",
        "3 rows from 2026-01-05 to 2026-01-07",
    ]


def test_the_backfill_takes_in_a_late_trade_and_carries_it_forward(roll_bot: Bot) -> None:
    backfill("2026-01-05", "2026-01-07")
    closed(roll_bot, at(D2, 3), at(D2, 4), "100", "1")  # written late, for D2

    backfill("2026-01-06", "2026-01-07")

    d2, d3 = rows(roll_bot)[1:]
    assert (d2["trades_closed"], d2["net_pnl_usd"], d2["equity_close_usd"]) == (1, 100, 10000)
    assert (d3["equity_close_usd"], d3["equity_peak_usd"]) == (Decimal("10450"), Decimal("10550"))


def test_a_day_before_a_bots_first_day_writes_nothing_for_it(roll_bot: Bot) -> None:
    assert risk_metrics_rollup(day=D1 - timedelta(days=1)) == 0
    assert not RiskMetric.objects.exists()


def test_today_uses_the_open_positions_and_every_bot_gets_a_row(db: None) -> None:
    now = timezone.now()
    today = now.astimezone(UTC).date()
    start = datetime.combine(today, datetime.min.time(), tzinfo=UTC)
    trader = make_bot("trader")
    make_bot("idle")
    closed(trader, start, start + timedelta(seconds=1), "40", "1")
    two, three = Decimal("2"), Decimal("3")
    make_position(trader, quantity=two, initial_quantity=two, current_price=Decimal("100"))
    make_position(
        trader, symbol="ETH/USDT", quantity=three, initial_quantity=three, avg_entry_price=10
    )
    make_position(trader, symbol="SOL/USDT", status="closed", closed_at=now)

    assert risk_metrics_rollup(day=today) == 2

    got = {r.bot_id: r for r in RiskMetric.objects.filter(date=today)}
    assert got["trader"].exposure_usd == Decimal("230")  # 2 x 100 + 3 x 10 (no price: entry)
    assert (got["trader"].equity_close_usd, got["trader"].trades_closed) == (Decimal("10040"), 1)
    assert (got["idle"].exposure_usd, got["idle"].equity_close_usd) == (0, Decimal("10000"))
    assert (got["idle"].max_drawdown_pct, got["idle"].win_rate) == (0, None)
    assert RiskMetric.objects.count() == 2  # no rows before the bots' first day


def test_only_the_given_bots_are_rolled_up(roll_bot: Bot) -> None:
    other = make_bot("other")
    closed(other, at(D3, 1), at(D3, 2), "5", "0")

    assert risk_metrics_rollup(day=D3, bot_ids=["other"]) == 1

    assert list(RiskMetric.objects.values_list("bot_id", "date")) == [("other", D3)]


def test_a_day_after_today_is_refused(db: None) -> None:
    with pytest.raises(ValueError, match="after today"):
        risk_metrics_rollup(day=timezone.now().date() + timedelta(days=2))


def test_todays_rollup_reads_no_history_two_statements(
    roll_bot: Bot, django_assert_num_queries: Any
) -> None:
    today = timezone.now().astimezone(UTC).date()
    risk_metrics_rollup(day=today - timedelta(days=1))

    # the plan and the upsert (inside a savepoint in a test)
    with django_assert_num_queries(4):
        assert risk_metrics_rollup(day=today) == 1
