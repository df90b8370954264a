"""Figures per run and per configuration version (bots/{id}/summary/?run= / ?config_version=,
and .../summary/compare/), pinned on a fixture computed by hand from METRICS.md.

The bot (initial capital 1,000) has a live run A, a backtest run B and one trade of no run:

  A1 long  entry 01-05 10:00 exit 01-05 12:00  pnl +50  fees 1    qty 1 x 100
  A2 long  entry 01-06 10:00 exit 01-06 11:00  pnl -20  fees 1    qty 2 x 50
  A3 short entry 01-07 09:00 exit 01-07 13:00  pnl +30  fees 2    qty 1 x 200
  B1 long  entry 01-05 10:00 exit 01-05 12:00  pnl +60  fees 0.5  qty 1 x 100  (backtest)
  B2 long  entry 01-06 10:00 exit 01-06 11:00  pnl -10  fees 0.5  qty 2 x 50   (backtest)
  X  long  entry 01-04 10:00 exit 01-04 11:00  pnl +1000                       (no run)

Run A: E = 1000, 1050, 1030, 1060: drawdown 20 from the peak 1050 (1.904762 %); daily returns
50/1000, -20/1050, 30/1030 over 01-05..01-07; D = 2 days 3 hours = 2.125.
Run B: E = 1000, 1060, 1050: drawdown 10 (10/1060 = 0.943396 %); returns 60/1000, -10/1060;
D = 1 day 1 hour.
Configuration version 1 was in force until 01-06 00:00, version 2 since: version 1 holds X
and A1 (B1 is a backtest: left out), version 2 holds A2 and A3.
"""

import math
import statistics
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from rest_framework.test import APIClient

from botconfig.models import BotConfiguration
from tests.api.conftest import client_with
from tests.factories import make_bot, make_closed_trade
from trading.models import Bot, BotRun
from trading.services.tokens import bot_token_create

pytestmark = pytest.mark.django_db

DAY = datetime(2026, 1, 5, tzinfo=UTC)


def at(day: int, hour: int) -> datetime:
    return DAY + timedelta(days=day, hours=hour)


@pytest.fixture
def fixture_bot(db: None) -> tuple[Bot, BotRun, BotRun]:
    bot = make_bot("runner_001", initial_capital_usd=Decimal("1000"))
    a = BotRun.objects.create(bot=bot, mode="live", started_at=at(0, 0))
    b = BotRun.objects.create(
        bot=bot, mode="backtest", started_at=at(0, 1), ended_at=at(3, 0), status="closed"
    )
    a.status, a.ended_at = "closed", at(3, 0)
    a.save()

    def trade(
        run: BotRun | None,
        entry: datetime,
        hours: int,
        pnl: str,
        fees: str,
        qty: str,
        price: str,
        side: str = "long",
        source: str = "live",
    ) -> None:
        make_closed_trade(
            bot, run=run, entry_time=entry, exit_time=entry + timedelta(hours=hours),
            pnl_usd=Decimal(pnl), fees_usd=Decimal(fees), quantity=Decimal(qty),
            entry_price=Decimal(price), side=side, source=source,
        )  # fmt: skip

    trade(a, at(0, 10), 2, "50", "1", "1", "100")
    trade(a, at(1, 10), 1, "-20", "1", "2", "50")
    trade(a, at(2, 9), 4, "30", "2", "1", "200", side="short")
    trade(b, at(0, 10), 2, "60", "0.5", "1", "100", source="backtest")
    trade(b, at(1, 10), 1, "-10", "0.5", "2", "50", source="backtest")
    trade(None, at(-1, 10), 1, "1000", "0", "1", "100")
    BotConfiguration.objects.create(
        bot=bot, version=1, config={}, effective_from=at(-4, 0), effective_to=at(1, 0),
        is_active=False,
    )  # fmt: skip
    BotConfiguration.objects.create(
        bot=bot, version=2, config={}, effective_from=at(1, 0), is_active=True
    )
    return bot, a, b


@pytest.fixture
def client(fixture_bot: tuple[Bot, BotRun, BotRun]) -> APIClient:
    return client_with(bot_token_create(bot=fixture_bot[0]).key)


def _ratios(returns: list[float], start: float, end: float, days: float, dd_pct: float) -> dict:
    """The ratios of METRICS.md, computed here from their definitions."""
    mean = sum(returns) / len(returns)
    down = math.sqrt(sum(min(r, 0) ** 2 for r in returns) / len(returns))
    cagr = (end / start) ** (365 / days) - 1
    return {
        "sharpe": mean / statistics.stdev(returns) * math.sqrt(365),
        "sortino": mean / down * math.sqrt(365),
        "cagr": cagr,
        "calmar": cagr / (dd_pct / 100),
    }


def test_one_runs_figures(client: APIClient, fixture_bot: tuple[Bot, BotRun, BotRun]) -> None:
    _, a, _ = fixture_bot
    body = client.get(f"/api/v1/bots/runner_001/summary/?run={a.pk}").json()

    assert {k: body[k] for k in list(body)[:36] if k not in ("sharpe", "sortino", "cagr",
                                                             "calmar")} == {
        "bot_id": "runner_001", "since": None, "until": None, "include_backtest": False,
        "initial_capital_usd": "1000.00000000", "equity_usd": "1060.00000000",
        "trades_closed": 3, "trades_open": 0, "wins": 2, "losses": 1, "breakeven": 0,
        "win_rate": 0.666667, "gross_profit_usd": "80.00000000",
        "gross_loss_usd": "20.00000000", "net_pnl_usd": "60.00000000", "profit_factor": 4.0,
        "expectancy_usd": "20.00000000", "expectancy_ratio": 1.0,
        "avg_win_usd": "40.00000000", "avg_loss_usd": "20.00000000",
        "best_trade_usd": "50.00000000", "worst_trade_usd": "-20.00000000",
        "avg_duration_s": 8400.0, "avg_win_duration_s": 10800.0, "avg_loss_duration_s": 3600.0,
        "fees_usd": "4.00000000", "volume_usd": "400.00000000",
        "max_drawdown_usd": "20.00000000", "max_drawdown_pct": 1.904762,
        "max_drawdown_peak_at": "2026-01-05T12:00:00Z",
        "max_drawdown_trough_at": "2026-01-06T11:00:00Z", "days": 2.125,
    }  # fmt: skip
    expected = _ratios([50 / 1000, -20 / 1050, 30 / 1030], 1000, 1060, 2.125, 20 / 1050 * 100)
    assert (body["sharpe"], body["sortino"]) == (10.804284, 34.790837)
    assert body["sharpe"] == round(expected["sharpe"], 6)
    assert body["sortino"] == round(expected["sortino"], 6)
    assert (body["cagr"], body["calmar"]) == (22214.418771, 1166256.985462)
    assert body["cagr"] == round(expected["cagr"], 6)
    assert body["calmar"] == round(expected["calmar"], 6)
    assert (body["run_ids"], body["config_version"]) == ([a.pk], None)


def test_a_backtest_runs_trades_are_its_figures(
    client: APIClient, fixture_bot: tuple[Bot, BotRun, BotRun]
) -> None:
    _, _, b = fixture_bot
    body = client.get(f"/api/v1/bots/runner_001/summary/?run={b.pk}").json()

    assert (body["trades_closed"], body["net_pnl_usd"], body["fees_usd"]) == (
        2, "50.00000000", "1.00000000"
    )  # fmt: skip
    assert (body["max_drawdown_usd"], body["max_drawdown_pct"]) == ("10.00000000", 0.943396)
    assert (body["sharpe"], body["sortino"]) == (9.838263, 72.409613)


def test_a_set_of_runs(client: APIClient, fixture_bot: tuple[Bot, BotRun, BotRun]) -> None:
    _, a, b = fixture_bot
    body = client.get(f"/api/v1/bots/runner_001/summary/?run={a.pk}&run={b.pk}").json()

    assert (body["trades_closed"], body["net_pnl_usd"]) == (5, "110.00000000")
    assert body["run_ids"] == sorted([a.pk, b.pk])


def test_a_configuration_versions_figures(client: APIClient) -> None:
    first = client.get("/api/v1/bots/runner_001/summary/?config_version=1").json()
    second = client.get("/api/v1/bots/runner_001/summary/?config_version=2").json()

    assert (first["trades_closed"], first["net_pnl_usd"], first["config_version"]) == (
        2, "1050.00000000", 1
    )  # fmt: skip
    assert (first["config_effective_from"], first["config_effective_to"]) == (
        "2026-01-01T00:00:00Z", "2026-01-06T00:00:00Z"
    )  # fmt: skip
    assert (second["trades_closed"], second["net_pnl_usd"], second["wins"]) == (
        2, "10.00000000", 1
    )  # fmt: skip
    assert second["config_effective_to"] is None


def test_two_runs_side_by_side_with_their_differences(
    client: APIClient, fixture_bot: tuple[Bot, BotRun, BotRun]
) -> None:
    _, a, b = fixture_bot
    body = client.get(f"/api/v1/bots/runner_001/summary/compare/?a_run={a.pk}&b_run={b.pk}").json()

    assert (body["a"]["net_pnl_usd"], body["b"]["net_pnl_usd"]) == ("60.00000000", "50.00000000")
    d: dict[str, Any] = body["differences"]
    assert {k: d[k] for k in ("trades_closed", "wins", "net_pnl_usd", "fees_usd",
                              "max_drawdown_usd", "max_drawdown_pct", "win_rate",
                              "profit_factor", "best_trade_usd")} == {
        "trades_closed": -1, "wins": -1, "net_pnl_usd": "-10.00000000",
        "fees_usd": "-3.00000000", "max_drawdown_usd": "-10.00000000",
        "max_drawdown_pct": round(0.943396 - 1.904762, 6), "win_rate": round(0.5 - 0.666667, 6),
        "profit_factor": 2.0, "best_trade_usd": "10.00000000",
    }  # fmt: skip
    assert "bot_id" not in d and "run_ids" not in d


def test_a_configuration_change_before_and_after(client: APIClient) -> None:
    body = client.get(
        "/api/v1/bots/runner_001/summary/compare/?a_config_version=1&b_config_version=2"
    ).json()

    assert body["differences"]["net_pnl_usd"] == "-1040.00000000"
    assert body["differences"]["trades_closed"] == 0


@pytest.mark.parametrize(
    ("query", "field", "reason"),
    [
        ("run=999999", "run", "runner_001 has no run 999999"),
        ("config_version=7", "config_version", "runner_001 has no configuration version 7"),
        ("run=0", "run", None),
        ("run=RUNA&config_version=1", "config_version", "cannot be given with run"),
    ],
)
def test_a_slice_not_of_the_bot_is_a_400_naming_it(
    client: APIClient,
    fixture_bot: tuple[Bot, BotRun, BotRun],
    query: str,
    field: str,
    reason: str | None,
) -> None:
    query = query.replace("RUNA", str(fixture_bot[1].pk))
    response = client.get(f"/api/v1/bots/runner_001/summary/?{query}")

    assert response.status_code == 400
    errors = response.json()["errors"]
    assert [e["field"] for e in errors] == [field]
    if reason is not None:
        assert errors[0]["reason"] == reason


def test_another_bots_run_is_refused(fixture_bot: tuple[Bot, BotRun, BotRun]) -> None:
    other = make_bot("other_001")
    theirs = BotRun.objects.create(bot=other, mode="live", started_at=at(0, 0))
    client = client_with(bot_token_create(bot=fixture_bot[0]).key)

    response = client.get(f"/api/v1/bots/runner_001/summary/compare/?a_run={theirs.pk}&b_run=1")

    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "a_run"
