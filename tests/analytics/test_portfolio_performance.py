"""Every bot's closed trades per period (analytics.selectors.portfolio_performance) on three
hand-made bots: exact figures, the sums of each bot's bot_performance rows, whether the daily
view is empty or refreshed (and trades arrive after the refresh), in one statement."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection

from analytics.selectors import bot_performance, portfolio_performance
from analytics.sql import MATERIALIZED_VIEWS
from tests.factories import make_bot, make_closed_trade
from trading.models import Bot

pytestmark = pytest.mark.django_db

SUMMED = ("trades", "wins", "losses", "net_pnl_usd", "fees_usd")
MONEY = ("net_pnl_usd", "fees_usd", "starting_equity_usd", "equity_close_usd")


def at(day: int, hour: int, minute: int = 0, month: int = 2) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


def close(bot: Bot, exit_: datetime, pnl: str, fees: str, **fields: Any) -> None:
    make_closed_trade(
        bot,
        pnl_usd=Decimal(pnl),
        fees_usd=Decimal(fees),
        entry_time=exit_ - timedelta(hours=1),
        exit_time=exit_,
        **fields,
    )


def refresh_views() -> None:
    with connection.cursor() as cursor:
        for view in MATERIALIZED_VIEWS:
            cursor.execute(f"REFRESH MATERIALIZED VIEW {view}")


@pytest.fixture(params=[False, True], ids=["view-empty", "view-refreshed"])
def fleet(request: pytest.FixtureRequest, db: None) -> list[Bot]:
    """alpha (10,000) and beta (20,000) trade from Monday 2 February 2026; gamma (5,000) never
    does. With the view refreshed, the last two trades arrive after the refresh: one on the
    view's last day (1 March), one after it."""
    refresh_views()  # empty: whatever an earlier test left in the views is gone
    alpha = make_bot("alpha", initial_capital_usd=Decimal("10000"))
    beta = make_bot("beta", initial_capital_usd=Decimal("20000"))
    gamma = make_bot("gamma", initial_capital_usd=Decimal("5000"))
    close(alpha, at(2, 10), "100", "1")
    close(alpha, at(2, 15), "-40", "1")
    close(alpha, at(3, 9), "999", "9", source="backtest")  # left out
    close(alpha, at(4, 9), "60", "2")
    close(alpha, at(10, 12), "-25", "0.5")
    close(beta, at(2, 11), "-200", "3")
    close(beta, at(3, 8), "0", "1")  # breakeven: neither a win nor a loss
    close(beta, at(10, 20), "300.5", "2.5")
    close(beta, at(1, 0, 30, month=3), "10", "0.1")
    if request.param:
        refresh_views()
    close(beta, at(1, 18, month=3), "5", "0.2")
    close(alpha, at(3, 7, month=3), "7", "0.3")
    return [alpha, beta, gamma]


def text(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """Each row as a tuple; money written without trailing zeros (all of it is to 8 places)."""
    for row in rows:
        for name in MONEY:
            assert row[name].as_tuple().exponent == -8, (name, row[name])
    return [
        (
            row["period_start"].isoformat(),
            row["trades"],
            row["wins"],
            row["losses"],
            *(f"{row[name].normalize():f}" for name in MONEY),
            row["return_pct"],
        )
        for row in rows
    ]


def test_days_of_every_bot_in_one_statement(
    fleet: list[Bot], django_assert_num_queries: Any
) -> None:
    with django_assert_num_queries(1):
        rows = portfolio_performance(period="day")

    # Equity starts from all three bots' capital, gamma's 5,000 included.
    assert text(rows) == [
        ("2026-02-02", 3, 1, 2, "-140", "5", "35000", "34860", -0.4),
        ("2026-02-03", 1, 0, 0, "0", "1", "34860", "34860", 0.0),
        ("2026-02-04", 1, 1, 0, "60", "2", "34860", "34920", 0.172117),
        ("2026-02-10", 2, 1, 1, "275.5", "3", "34920", "35195.5", 0.788946),
        ("2026-03-01", 2, 2, 0, "15", "0.3", "35195.5", "35210.5", 0.042619),
        ("2026-03-03", 1, 1, 0, "7", "0.3", "35210.5", "35217.5", 0.01988),
    ]


def test_weeks_and_months(fleet: list[Bot]) -> None:
    weeks = portfolio_performance(period="week")
    months = portfolio_performance(period="month")

    assert text(weeks) == [
        ("2026-02-02", 5, 2, 2, "-80", "8", "35000", "34920", -0.228571),
        ("2026-02-09", 2, 1, 1, "275.5", "3", "34920", "35195.5", 0.788946),
        # Sunday 1 March belongs to the ISO week of Monday 23 February.
        ("2026-02-23", 2, 2, 0, "15", "0.3", "35195.5", "35210.5", 0.042619),
        ("2026-03-02", 1, 1, 0, "7", "0.3", "35210.5", "35217.5", 0.01988),
    ]
    assert text(months) == [
        ("2026-02-01", 7, 3, 3, "195.5", "11", "35000", "35195.5", 0.558571),
        ("2026-03-01", 3, 3, 0, "22", "0.6", "35195.5", "35217.5", 0.062508),
    ]


def test_a_period_cut_by_since_and_until(fleet: list[Bot]) -> None:
    # since cuts 2 February after alpha's +100 and beta's -200; until cuts 10 February before
    # beta's +300.5: whole days between come from the view when it holds them.
    rows = portfolio_performance(period="day", since=at(2, 12), until=at(10, 15))
    weeks = portfolio_performance(period="week", since=at(2, 12), until=at(10, 15))

    assert text(rows) == [
        ("2026-02-02", 1, 0, 1, "-40", "1", "34900", "34860", -0.114613),
        ("2026-02-03", 1, 0, 0, "0", "1", "34860", "34860", 0.0),
        ("2026-02-04", 1, 1, 0, "60", "2", "34860", "34920", 0.172117),
        ("2026-02-10", 1, 0, 1, "-25", "0.5", "34920", "34895", -0.071592),
    ]
    assert text(weeks)[0][:7] == ("2026-02-02", 3, 1, 1, "20", "4", "34900")


def test_a_period_of_whole_days_and_one_after_every_trade(fleet: list[Bot]) -> None:
    days = portfolio_performance(period="day", since=at(3, 0), until=at(5, 0))
    after = portfolio_performance(period="day", since=at(5, 0, month=3))

    assert [(r["period_start"], r["trades"], f"{r['starting_equity_usd']:f}") for r in days] == [
        (date(2026, 2, 3), 1, "34860.00000000"),
        (date(2026, 2, 4), 1, "34860.00000000"),
    ]
    assert after == []


@pytest.mark.parametrize("period", ["day", "week", "month"])
def test_the_ends_of_the_calendar(fleet: list[Bot], period: str) -> None:
    # No UTC day starts after 9999-12-31T23:59:59 in Python's calendar: the first whole day of
    # the range is worked out in PostgreSQL, which has one (this raised OverflowError, a 500).
    first, last = datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC)

    assert portfolio_performance(period=period, since=last - timedelta(microseconds=1)) == []
    assert portfolio_performance(period=period, since=last) == []
    assert portfolio_performance(period=period, since=first, until=last) == portfolio_performance(
        period=period
    )
    assert len(portfolio_performance(period=period)) == {"day": 6, "week": 4, "month": 2}[period]


@pytest.mark.parametrize(
    ("period", "since", "until"),
    [
        ("day", None, None),
        ("week", None, None),
        ("month", None, None),
        ("day", at(2, 12), at(10, 15)),
        ("week", at(3, 0), None),
        ("month", None, at(1, 12, month=3)),
    ],
)
def test_the_sums_of_each_bots_performance(
    fleet: list[Bot], period: str, since: datetime | None, until: datetime | None
) -> None:
    portfolio = portfolio_performance(period=period, since=since, until=until)
    per_bot = {
        bot.bot_id: bot_performance(bot=bot, period=period, since=since, until=until)
        for bot in fleet
    }

    assert [r["period_start"] for r in portfolio] == sorted(
        {r["period_start"] for rows in per_bot.values() for r in rows}
    )
    for row in portfolio:
        same = [
            r for rows in per_bot.values() for r in rows if r["period_start"] == row["period_start"]
        ]
        assert {k: row[k] for k in SUMMED} == {k: sum(r[k] for r in same) for k in SUMMED}
        # Every bot's realized equity at the period's start, traded in it or not.
        equity = Decimal(0)
        for bot in fleet:
            rows = per_bot[bot.bot_id]
            before = [r for r in rows if r["period_start"] < row["period_start"]]
            if before:
                equity += before[-1]["starting_equity_usd"] + before[-1]["net_pnl_usd"]
            elif rows:  # its equity has not moved since `since` until its first row
                equity += rows[0]["starting_equity_usd"]
            else:
                assert bot.bot_id == "gamma"  # never traded: its initial capital
                equity += bot.initial_capital_usd
        assert row["starting_equity_usd"] == equity, row["period_start"]
        assert row["equity_close_usd"] == equity + row["net_pnl_usd"]


def test_no_bots_no_rows_and_a_bad_period(db: None) -> None:
    assert portfolio_performance(period="day") == []
    with pytest.raises(ValueError, match="period must be one of day, week, month"):
        portfolio_performance(period="year")


def test_no_return_from_an_equity_that_is_gone(db: None) -> None:
    bot = make_bot("broke", initial_capital_usd=Decimal("1"))
    close(bot, at(2, 10), "-5", "0")
    close(bot, at(3, 10), "8", "0")

    rows = portfolio_performance(period="day")

    assert [(f"{r['starting_equity_usd']:f}", r["return_pct"]) for r in rows] == [
        ("1.00000000", -500.0),
        ("-4.00000000", None),
    ]
