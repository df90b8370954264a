"""The analytics endpoints: who reads what, the JSON as written, refused parameters, queries."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from analytics.models import PortfolioSnapshot
from tests.api.conftest import client_with
from tests.factories import make_bot, make_closed_trade
from trading.models import Bot
from trading.services.tokens import bot_token_create, staff_token_create

pytestmark = pytest.mark.django_db

D0 = datetime(2026, 1, 5, tzinfo=UTC)
BOT_ENDPOINTS = ("summary", "equity", "performance", "breakdown")


@pytest.fixture
def bot_api(bot: Bot) -> APIClient:
    """momentum_001's token."""
    return client_with(bot_token_create(bot=bot).key)


@pytest.fixture
def other_bot_api(db: None) -> APIClient:
    """shortseller_001's token."""
    return client_with(bot_token_create(bot=make_bot("shortseller_001")).key)


@pytest.fixture
def staff_api(db: None) -> APIClient:
    user = User.objects.create_user("analyst", password="pw", is_staff=True)
    return client_with(staff_token_create(user=user).key)


@pytest.fixture
def traded(bot: Bot) -> Bot:
    for day, pnl, reason in ((0, "500", "roi"), (1, "-1200", "stop_loss"), (2, "900.5", "roi")):
        make_closed_trade(
            bot,
            pnl_usd=Decimal(pnl),
            entry_time=D0 + timedelta(days=day, hours=1),
            exit_time=D0 + timedelta(days=day, hours=2),
            fees_usd=Decimal("1.25"),
            exit_reason=reason,
        )
    return bot


def test_summary_as_the_bot_itself(traded: Bot, bot_api: APIClient) -> None:
    response = bot_api.get(f"/api/v1/bots/{traded.bot_id}/summary/")

    assert response.status_code == 200
    body = response.json()
    assert {k: body[k] for k in ("bot_id", "since", "include_backtest", "trades_closed")} == {
        "bot_id": "momentum_001",
        "since": None,
        "include_backtest": False,
        "trades_closed": 3,
    }
    assert (body["equity_usd"], body["net_pnl_usd"], body["fees_usd"]) == (
        "10200.50000000",
        "200.50000000",
        "3.75000000",
    )
    assert (body["gross_loss_usd"], body["max_drawdown_usd"]) == ("1200.00000000", "1200.00000000")
    assert (body["win_rate"], body["profit_factor"], body["max_drawdown_pct"]) == (
        0.666667,
        1.167083,  # 1400.5 / 1200
        11.428571,  # 1200 / 10500
    )
    assert body["max_drawdown_peak_at"] == "2026-01-05T02:00:00Z"
    assert body["max_drawdown_trough_at"] == "2026-01-06T02:00:00Z"
    assert isinstance(body["sharpe"], float) and isinstance(body["cagr"], float)


@pytest.mark.parametrize("endpoint", BOT_ENDPOINTS)
def test_another_bots_analytics_are_a_404(
    endpoint: str, traded: Bot, other_bot_api: APIClient
) -> None:
    response = other_bot_api.get(f"/api/v1/bots/{traded.bot_id}/{endpoint}/")

    assert response.status_code == 404
    assert traded.bot_id not in response.content.decode()


@pytest.mark.parametrize("endpoint", BOT_ENDPOINTS)
def test_staff_read_any_bot_and_nobody_reads_without_a_token(
    endpoint: str, traded: Bot, staff_api: APIClient
) -> None:
    assert staff_api.get(f"/api/v1/bots/{traded.bot_id}/{endpoint}/").status_code == 200
    assert staff_api.get(f"/api/v1/bots/no_such_bot/{endpoint}/").status_code == 404
    assert APIClient().get(f"/api/v1/bots/{traded.bot_id}/{endpoint}/").status_code == 401


@pytest.mark.parametrize("endpoint", ("summary", "performance", "snapshots"))
def test_portfolio_is_staff_only(endpoint: str, bot_api: APIClient) -> None:
    assert bot_api.get(f"/api/v1/portfolio/{endpoint}/").status_code == 403
    assert APIClient().get(f"/api/v1/portfolio/{endpoint}/").status_code == 401


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("performance/?period=year", "period"),
        ("breakdown/?by=symbol", "by"),
        ("summary/?since=yesterday", "since"),
        ("summary/?since=2026-01-05T00:00:00", "since"),  # no offset
        ("equity/?until=2026-13-01T00:00:00Z", "until"),
        ("summary/?since=2026-01-06T00:00:00Z&until=2026-01-05T00:00:00Z", "until"),
        ("summary/?source=live", "source"),
        ("equity/?max_points=5", "max_points"),
        ("equity/?max_points=many", "max_points"),
    ],
)
def test_a_bad_parameter_is_a_400_naming_it(
    query: str, field: str, traded: Bot, bot_api: APIClient
) -> None:
    response = bot_api.get(f"/api/v1/bots/{traded.bot_id}/{query}")

    assert response.status_code == 400
    assert [e["field"] for e in response.json()["errors"]] == [field]


def test_performance_and_breakdown_json(traded: Bot, bot_api: APIClient) -> None:
    perf = bot_api.get(f"/api/v1/bots/{traded.bot_id}/performance/?period=week").json()
    breakdown = bot_api.get(f"/api/v1/bots/{traded.bot_id}/breakdown/?by=exit_reason").json()

    assert perf == {
        "bot_id": "momentum_001",
        "period": "week",
        "rows": [
            {
                "period_start": "2026-01-05",
                "trades": 3,
                "wins": 2,
                "losses": 1,
                "net_pnl_usd": "200.50000000",
                "fees_usd": "3.75000000",
                "starting_equity_usd": "10000.00000000",
                "return_pct": 2.005,
            }
        ],
    }
    assert [(r["key"], r["trades"], r["net_pnl_usd"]) for r in breakdown["rows"]] == [
        ("roi", 2, "1400.50000000"),
        ("stop_loss", 1, "-1200.00000000"),
    ]


def test_summary_period_and_backtests_from_the_query(traded: Bot, bot_api: APIClient) -> None:
    make_closed_trade(
        traded,
        pnl_usd=Decimal("7"),
        entry_time=D0 + timedelta(days=1),
        exit_time=D0 + timedelta(days=1, hours=5),
        source="backtest",
    )
    url = f"/api/v1/bots/{traded.bot_id}/summary/"

    body = bot_api.get(url, {"since": "2026-01-06T00:00:00Z", "source": "backtest"}).json()

    assert (body["since"], body["include_backtest"], body["trades_closed"]) == (
        "2026-01-06T00:00:00Z",
        True,
        3,
    )
    assert body["net_pnl_usd"] == "-292.50000000"  # -1200 + 7 + 900.5
    assert body["equity_usd"] == "10207.50000000"  # from 10,500 on the 6th


def test_equity_json(traded: Bot, bot_api: APIClient) -> None:
    body = bot_api.get(f"/api/v1/bots/{traded.bot_id}/equity/").json()

    assert body["initial_capital_usd"] == "10000.00000000"
    assert body["points"][1] == {
        "ts": "2026-01-06T02:00:00Z",
        "equity_usd": "9300.00000000",
        "peak_usd": "10500.00000000",
        "drawdown_usd": "1200.00000000",
        "drawdown_pct": 11.428571,
    }
    assert body["reported"] == []
    assert (body["points_total"], body["reported_total"]) == (3, 0)


def test_equity_down_sampled_json(traded: Bot, bot_api: APIClient) -> None:
    for n in range(8):  # more than 6 points: one span of the curve keeps 5
        make_closed_trade(
            traded,
            pnl_usd=Decimal(n - 3),
            entry_time=D0 + timedelta(days=3, hours=n),
            exit_time=D0 + timedelta(days=3, hours=n, minutes=30),
        )

    body = bot_api.get(f"/api/v1/bots/{traded.bot_id}/equity/?max_points=6").json()
    full = bot_api.get(f"/api/v1/bots/{traded.bot_id}/equity/").json()

    assert (body["points_total"], len(full["points"])) == (11, 11)
    # One span: the first (also the highest, and the peak of the maximum drawdown), the lowest
    # (also the deepest: the trough) and the last.
    assert body["points"] == [full["points"][n] for n in (0, 1, 10)]
    assert body["points"][1]["drawdown_pct"] == 11.428571


def test_portfolio_summary_and_snapshots_for_staff(traded: Bot, staff_api: APIClient) -> None:
    make_bot("second", initial_capital_usd=Decimal("500"))
    now = datetime.now(tz=UTC)
    for minutes in (5, 10):
        PortfolioSnapshot.objects.create(
            ts=now - timedelta(minutes=minutes),
            total_equity_usd=Decimal("10700.5"),
            total_balance_usd=Decimal("10700.5"),
        )

    summary = staff_api.get("/api/v1/portfolio/summary/").json()
    snapshots = staff_api.get("/api/v1/portfolio/snapshots/?page_size=1").json()

    assert summary["total_equity_usd"] == "10700.50000000"  # both realized
    assert [(b["bot_id"], b["equity_source"]) for b in summary["bots"]] == [
        ("momentum_001", "realized"),
        ("second", "realized"),
    ]
    assert [s["total_equity_usd"] for s in snapshots["results"]] == ["10700.50000000"]
    assert snapshots["next"] is not None
    bad = staff_api.get("/api/v1/portfolio/snapshots/?since=soon")
    assert (bad.status_code, bad.json()["errors"][0]["field"]) == (400, "since")


def test_portfolio_performance_json(traded: Bot, staff_api: APIClient) -> None:
    make_bot("second", initial_capital_usd=Decimal("500"))  # no trades: its capital counts

    body = staff_api.get("/api/v1/portfolio/performance/?period=week").json()
    days = staff_api.get(
        "/api/v1/portfolio/performance/",
        {"since": "2026-01-06T00:00:00Z", "until": "2026-01-07T00:00:00Z"},
    ).json()

    assert body == {
        "period": "week",
        "rows": [
            {
                "period_start": "2026-01-05",
                "trades": 3,
                "wins": 2,
                "losses": 1,
                "net_pnl_usd": "200.50000000",
                "fees_usd": "3.75000000",
                "starting_equity_usd": "10500.00000000",
                "equity_close_usd": "10700.50000000",
                "return_pct": 1.909524,  # 200.5 / 10,500
            }
        ],
    }
    assert days["period"] == "day"
    assert [
        (r["period_start"], r["net_pnl_usd"], r["starting_equity_usd"]) for r in days["rows"]
    ] == [("2026-01-06", "-1200.00000000", "11000.00000000")]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("?period=year", "period"),
        ("?since=yesterday", "since"),
        ("?until=2026-01-05T00:00:00", "until"),  # no offset
        ("?since=2026-01-06T00:00:00Z&until=2026-01-06T00:00:00Z", "until"),
    ],
)
def test_a_bad_portfolio_performance_parameter_is_a_400_naming_it(
    query: str, field: str, staff_api: APIClient
) -> None:
    response = staff_api.get(f"/api/v1/portfolio/performance/{query}")

    assert response.status_code == 400
    assert [e["field"] for e in response.json()["errors"]] == [field]


@pytest.mark.parametrize(
    "query",
    [
        "?since=9999-12-31T23:59:59Z",
        "?since=9999-12-31T23:59:59.999999Z&period=week",
        "?since=0001-01-01T00:00:00Z&until=9999-12-31T23:59:59Z&period=month",
    ],
)
def test_the_ends_of_the_calendar_are_answered_not_a_500(
    query: str, traded: Bot, staff_api: APIClient
) -> None:
    for url in ("/api/v1/portfolio/performance/", f"/api/v1/bots/{traded.bot_id}/performance/"):
        response = staff_api.get(url + query)
        everything = staff_api.get(url + "?period=" + response.json()["period"]).json()

        assert response.status_code == 200, (url, response.content)
        if query.startswith("?since=0001"):
            assert response.json() == everything
            assert len(everything["rows"]) == 1  # the fixture's three trades, in January 2026
        else:
            assert response.json()["rows"] == []


@pytest.mark.parametrize(
    ("url", "queries"),
    [
        ("/api/v1/bots/momentum_001/summary/", 1),
        ("/api/v1/bots/momentum_001/equity/", 2),
        ("/api/v1/bots/momentum_001/equity/?max_points=100", 2),
        ("/api/v1/bots/momentum_001/performance/", 1),
        ("/api/v1/bots/momentum_001/breakdown/", 1),
    ],
)
def test_query_counts_as_the_bot(
    url: str, queries: int, traded: Bot, bot_api: APIClient, django_assert_num_queries: Any
) -> None:
    bot_api.get(url)  # the token's last use is written at most once a minute

    with django_assert_num_queries(1 + queries):  # the token, then the figures
        assert bot_api.get(url).status_code == 200


@pytest.mark.parametrize(
    ("url", "queries"),
    [
        ("/api/v1/bots/momentum_001/summary/", 2),  # the bot, the figures
        ("/api/v1/portfolio/summary/", 2),
        ("/api/v1/portfolio/performance/", 1),
        ("/api/v1/portfolio/snapshots/", 1),
    ],
)
def test_query_counts_as_staff(
    url: str, queries: int, traded: Bot, staff_api: APIClient, django_assert_num_queries: Any
) -> None:
    staff_api.get(url)

    with django_assert_num_queries(1 + queries):
        assert staff_api.get(url).status_code == 200
