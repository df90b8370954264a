"""One bot cannot stop the fleet's snapshots, rollups and risk checks with numbers too large.

A position's value (quantity x price) must fit the USD columns (NUMERIC(20, 8)) or the write is
refused naming the field; the columns that hold sums of many such values (portfolio snapshot
totals, the daily risk_metrics sums and equity) hold any sum of legal rows (NUMERIC(38, 8)).
Everything goes through the real API, the real tasks and the real services.
"""

from datetime import UTC, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from rest_framework.test import APIClient

from analytics import tasks
from analytics.models import PortfolioSnapshot
from analytics.services.risk import risk_limits_check
from audit.models import RiskEvent
from tests.analytics.test_portfolio import refresh_views
from tests.api.conftest import client_with
from tests.factories import T0, make_bot, make_closed_trade
from trading.models import AccountBalance, Bot, Position, RiskMetric, Trade
from trading.services.ingest import RowsRefused, position_upsert_many, trade_upsert_many
from trading.services.ingest.positions import POSITION_COLUMNS
from trading.services.tokens import bot_token_create, staff_token_create

POSITIONS = "/api/v1/positions/"
TRADES = "/api/v1/trades/"
AUDIT_POSITION = {
    "symbol": "OV2/USDT",
    "exchange": "binance",
    "side": "long",
    "quantity": "111111111111",
    "initial_quantity": "111111111111",
    "avg_entry_price": "10",
    "current_price": "10",
    "opened_at": "2026-12-07T00:00:00Z",
}
LARGEST = Decimal("999999999999")  # the largest whole value a USD column holds
PNL = Decimal("999999999999.99999999")  # the largest USD amount
PER_BOT = 40


def client_of(bot: Bot) -> APIClient:
    return client_with(bot_token_create(bot=bot).key)


def reasons(response: Any) -> dict[str, str]:
    assert response.status_code == 400, response.content
    return {e["field"]: e["reason"] for e in response.json()["errors"]}


# --- at the write -------------------------------------------------------------------------------


def test_the_audits_position_is_refused_naming_quantity_and_the_tasks_still_run(
    db: None,
) -> None:
    bot = make_bot("ov_bot")

    response = client_of(bot).post(POSITIONS, AUDIT_POSITION, format="json")

    assert reasons(response) == {
        "quantity": "quantity x avg_entry_price = 1111111111110 USD, more than the "
        "999999999999.99999999 USD a position's value may be (the USD columns hold 12 digits "
        "before the point)"
    }
    assert Position.objects.count() == 0
    assert tasks.portfolio_snapshot() is not None
    assert tasks.risk_metrics_rollup_today() == 1
    assert PortfolioSnapshot.objects.get().gross_exposure_usd == 0


@pytest.mark.parametrize(
    ("fields", "price"),
    [
        ({"avg_entry_price": "1", "current_price": "10"}, "current_price"),
        ({"avg_entry_price": "10", "current_price": "1"}, "avg_entry_price"),
        ({"avg_entry_price": "1000000000000", "quantity": "1", "initial_quantity": "1"}, None),
    ],
    ids=["current_price", "avg_entry_price", "one-unit-at-a-trillion"],
)
def test_a_position_worth_more_than_a_usd_column_is_refused_in_a_batch_nothing_written(
    db: None, fields: dict[str, str], price: str | None
) -> None:
    bot = make_bot("ov_batch")
    fine = AUDIT_POSITION | {"symbol": "OK/USDT", "quantity": "1", "initial_quantity": "1"}
    body = [fine, AUDIT_POSITION | fields]

    response = client_of(bot).post(POSITIONS, body, format="json")

    assert response.status_code == 400, response.content
    [error] = response.json()["errors"]
    assert (error["index"], error["field"]) == (1, "quantity")
    assert error["reason"].startswith(f"quantity x {price or 'avg_entry_price'} = ")
    assert Position.objects.count() == 0


def test_a_position_worth_exactly_the_largest_usd_amount_is_stored(db: None) -> None:
    bot = make_bot("ov_edge")
    edge = AUDIT_POSITION | {
        "quantity": "99999999999.999999999",
        "initial_quantity": "99999999999.999999999",
        "avg_entry_price": "10",
        "current_price": "10",
    }  # 999999999999.99999999 after rounding to 8 places
    beyond = edge | {"symbol": "OV3/USDT", "quantity": "100000000000", "initial_quantity": "1e11"}

    stored = client_of(bot).post(POSITIONS, edge, format="json")
    refused = client_of(bot).post(POSITIONS, beyond, format="json")

    assert stored.status_code == 200, stored.content
    assert set(reasons(refused)) == {"quantity"}
    assert Position.objects.values_list("symbol", flat=True).get() == "OV2/USDT"


def test_a_trade_whose_entry_notional_overflows_is_refused_naming_quantity(db: None) -> None:
    bot = make_bot("ov_trade")
    trade = {
        "trade_id": "t1",
        "symbol": "OV2/USDT",
        "exchange": "binance",
        "side": "long",
        "quantity": "111111111111",
        "entry_price": "10",
        "entry_time": "2026-12-07T00:00:00Z",
    }

    response = client_of(bot).post(TRADES, trade, format="json")

    assert reasons(response) == {
        "quantity": "quantity x entry_price = 1111111111110 USD, more than the "
        "999999999999.99999999 USD a trade's value may be (the USD columns hold 12 digits "
        "before the point)"
    }
    assert Trade.objects.count() == 0


# --- sums of legal rows ----------------------------------------------------------------------


@pytest.fixture
def fleet(db: None) -> list[Bot]:
    """Three bots, each with PER_BOT open positions of the largest legal value (the first and
    last long, the second short), each position PNL under water; a balance of the largest
    equity each; two trades closed today at the largest profit each. Written through the API."""
    bots = [make_bot(f"big_{n}", max_position_size_usd=1, max_daily_loss_usd=1) for n in range(3)]
    now = timezone.now()
    midnight = datetime.combine(now.astimezone(UTC).date(), datetime.min.time(), tzinfo=UTC)
    for n, bot in enumerate(bots):
        body = [
            {
                "symbol": f"C{i}/USDT",
                "exchange": "binance",
                "side": "short" if n == 1 else "long",
                "quantity": str(LARGEST),
                "initial_quantity": str(LARGEST),
                "avg_entry_price": "1",
                "current_price": "1",
                "unrealized_pnl_usd": str(-PNL),
                "opened_at": "2026-01-01T00:00:00Z",
            }
            for i in range(PER_BOT)
        ]
        response = client_of(bot).post(POSITIONS, body, format="json")
        assert response.status_code == 200, response.content
        AccountBalance.objects.create(bot=bot, ts=now, balance_usd=PNL, equity_usd=PNL)
        for _ in range(2):
            make_closed_trade(
                bot,
                pnl_usd=PNL,
                quantity=LARGEST,
                entry_price=Decimal(1),
                exit_price=Decimal(2),
                entry_time=midnight - timedelta(hours=1),
                exit_time=min(now, midnight + timedelta(seconds=1)),
            )
    return bots


def test_the_snapshot_of_the_largest_legal_fleet_holds_the_exact_sums(fleet: list[Bot]) -> None:
    assert tasks.portfolio_snapshot() is not None

    snapshot = PortfolioSnapshot.objects.get()
    each = LARGEST * PER_BOT
    assert (
        snapshot.total_equity_usd,
        snapshot.total_balance_usd,
        snapshot.unrealized_pnl_usd,
        snapshot.realized_pnl_today_usd,
        snapshot.long_exposure_usd,
        snapshot.short_exposure_usd,
        snapshot.gross_exposure_usd,
        snapshot.net_exposure_usd,
        snapshot.open_positions,
    ) == (
        3 * PNL,
        3 * PNL,
        -3 * PER_BOT * PNL,
        6 * PNL,
        2 * each,
        each,
        3 * each,
        each,
        3 * PER_BOT,
    )
    assert snapshot.per_bot["big_1"]["exposure_usd"] == f"{each}.00000000"


def test_todays_rollup_of_the_largest_legal_fleet_holds_the_exact_sums(fleet: list[Bot]) -> None:
    assert tasks.risk_metrics_rollup_today() == 3

    rows = RiskMetric.objects.order_by("bot_id", "date").values_list(
        "bot_id", "net_pnl_usd", "gross_profit_usd", "exposure_usd", "equity_close_usd"
    )
    # Yesterday (the trades' entry day): their entry notional, open at its end; today: the
    # positions' value and the two closes.
    yesterday = (0, 0, 2 * LARGEST, 10000)
    today = (2 * PNL, 2 * PNL, LARGEST * PER_BOT, 10000 + 2 * PNL)
    assert list(rows) == [(bot.bot_id, *day) for bot in fleet for day in (yesterday, today)]


def test_the_risk_check_of_the_largest_legal_fleet_writes_its_breaches(fleet: list[Bot]) -> None:
    events = risk_limits_check()

    got = sorted((e.bot_id, e.event_type, e.actual_value) for e in events)
    loss = PER_BOT * PNL - 2 * PNL
    assert got == [
        (bot.bot_id, kind, value)
        for bot in fleet
        for kind, value in (("daily_loss_limit", loss), ("position_size_limit", LARGEST))
    ]
    assert RiskEvent.objects.count() == 6


def test_a_drawdown_past_what_its_column_holds_is_stored_at_the_bound_every_bot_rolled_up(
    db: None,
) -> None:
    """A legal loss of 10^11 on 10,000 of capital is a drawdown of 10^9 %: NUMERIC(12, 6) holds
    less than 10^6, so it is stored at the bound (as the ratios are) instead of failing the
    statement that writes every bot's row."""
    ruined, other = make_bot("ruined"), make_bot("other")
    now = timezone.now()
    make_closed_trade(
        ruined,
        pnl_usd=Decimal("-100000000000"),
        entry_time=now - timedelta(minutes=2),
        exit_time=now - timedelta(minutes=1),
    )

    assert tasks.risk_metrics_rollup_today() == 2

    rows = RiskMetric.objects.filter(date=now.astimezone(UTC).date()).order_by("bot_id")
    assert list(rows.values_list("bot_id", "max_drawdown_pct", "equity_close_usd")) == [
        (other.bot_id, Decimal(0), Decimal(10000)),
        (ruined.bot_id, Decimal("999999.999999"), Decimal("-99999990000")),
    ]


def ruin(equity: Decimal) -> None:
    """A loss that leaves the fleet's realized equity at 10^-8, then a legal loss of ~10^12 the
    next day: a daily return of -10^20, and 19 quiet days after (21 days of returns); the bot
    reports ``equity``. VaR 99 is ~0.8 x 10^20 x ``equity``; VaR 95 is 0.999999999999 x it."""
    refresh_views()
    bot = make_bot("ruin", initial_capital_usd=Decimal(10000))
    today = datetime.combine(timezone.now().astimezone(UTC).date(), time(), tzinfo=UTC)
    for days, pnl in ((21, "-9999.99999999"), (20, "-999999999999")):
        exit_ = today - timedelta(days=days) + timedelta(hours=12)
        make_closed_trade(
            bot, pnl_usd=Decimal(pnl), entry_time=exit_ - timedelta(hours=1), exit_time=exit_
        )
    AccountBalance.objects.create(bot=bot, ts=timezone.now(), balance_usd=equity, equity_usd=equity)


def test_a_var_beyond_what_its_column_holds_is_null_and_the_snapshot_is_taken(db: None) -> None:
    """VaR 99 at ~10^32 is past the 30 digits NUMERIC(38, 8) holds (and past what the default
    28-digit context can round): it is null, as without enough days; VaR 95 and the snapshot
    stand."""
    ruin(PNL)

    assert tasks.portfolio_snapshot() is not None

    snapshot = PortfolioSnapshot.objects.get()
    q95 = Decimal(repr(float(Decimal("-9999.99999999") / 10000)))  # as SQL: numeric, then float8
    assert (snapshot.var_95_usd, snapshot.var_99_usd) == (
        (-q95 * PNL).quantize(Decimal("0.00000001"), rounding=ROUND_HALF_UP),
        None,
    )


def test_a_var_of_25_digits_renders_in_the_summary_and_the_snapshots(db: None) -> None:
    ruin(Decimal(100000))
    tasks.portfolio_snapshot()
    var_99 = PortfolioSnapshot.objects.values_list("var_99_usd", flat=True).get()
    assert var_99 is not None and 10**24 < var_99 < 10**25
    staff = User.objects.create_user("analyst", password="pw", is_staff=True)
    client = client_with(staff_token_create(user=staff).key)

    summary = client.get("/api/v1/portfolio/summary/")
    snapshots = client.get("/api/v1/portfolio/snapshots/")

    assert summary.status_code == 200, summary.content
    assert summary.json()["var_99_usd"] == f"{var_99:f}"
    assert snapshots.status_code == 200, snapshots.content
    assert snapshots.json()["results"][0]["var_99_usd"] == f"{var_99:f}"


def test_the_services_refuse_the_value_too_for_writers_past_the_api(db: None) -> None:
    """The importers call the ingest services directly: the same bound, RowsRefused on quantity
    (which an import reports naming the row), nothing written."""
    bot = make_bot("importer")
    position = dict.fromkeys(name for name, _ in POSITION_COLUMNS) | {
        "symbol": "OV2/USDT",
        "exchange": "binance",
        "side": "long",
        "status": "open",
        "quantity": Decimal("1e17"),
        "initial_quantity": Decimal("1e17"),
        "avg_entry_price": Decimal("1e17"),  # 10^34 USD
        "unrealized_pnl_usd": Decimal(0),
        "realized_pnl_usd": Decimal(0),
        "leverage": Decimal(1),
        "opened_at": T0,
        "metadata": {},
    }
    trade = {
        "trade_id": "t1", "symbol": "OV2/USDT", "exchange": "binance", "side": "long",
        "quantity": Decimal("111111111111"), "entry_price": Decimal(10), "exit_price": None,
        "entry_time": T0, "exit_time": None, "fees_usd": Decimal(0), "pnl_usd": None,
        "pnl_pct": None, "status": "open", "source": "live", "leverage": Decimal(1),
        "exit_reason": "", "entry_tag": "", "strategy_data": {},
    }  # fmt: skip

    with pytest.raises(RowsRefused) as positions:
        position_upsert_many(bot=bot, rows=[position])
    with pytest.raises(RowsRefused) as trades:
        trade_upsert_many(bot=bot, rows=[trade])

    assert positions.value.errors == [
        (0, "quantity", "quantity x avg_entry_price = 10000000000000000000000000000000000 USD, "
         "more than the 999999999999.99999999 USD a position's value may be (the USD columns "
         "hold 12 digits before the point)"),
    ]  # fmt: skip
    assert [(i, f) for i, f, _ in trades.value.errors] == [(0, "quantity")]
    assert (Position.objects.count(), Trade.objects.count()) == (0, 0)
