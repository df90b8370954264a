"""A trade written for a day the scheduled rollup no longer redoes (before yesterday) marks its
bot's risk_metrics rows stale in the same statement (trading.RiskMetricsBacklog); the next
rollup redoes those days and clears the mark. Through the API, as a bot sends them."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from analytics import tasks
from analytics.services import rollups
from tests.api.conftest import client_with
from trading.models import Bot, RiskMetric, RiskMetricsBacklog
from trading.services.ingest import risk_metrics_backlog_mark
from trading.services.ingest.common import array_literal
from trading.services.ingest.trades import (
    TRADE_COLUMNS,
    TRADE_UPSERT_MARKING_SQL,
    trade_derived_fields,
)
from trading.services.tokens import bot_token_create

pytestmark = pytest.mark.django_db

URL = "/api/v1/trades/"
TODAY = timezone.now().astimezone(UTC).date()


def ago(days: int, hour: int = 12) -> datetime:
    return datetime.combine(TODAY - timedelta(days=days), datetime.min.time(), UTC).replace(
        hour=hour
    )


def trade(n: int, entry: datetime, exit_: datetime | None, pnl: str, **fields: Any) -> Any:
    """quantity 1 from 1,000: the exit price is 1,000 + pnl, no fees."""
    body: dict[str, Any] = {
        "trade_id": f"T-{n}",
        "symbol": "BTC/USDT",
        "exchange": "binance",
        "side": "long",
        "quantity": "1",
        "entry_price": "1000",
        "entry_time": entry.isoformat(),
        "fees_usd": "0",
    }
    if exit_ is not None:
        body.update(
            status="closed",
            exit_time=exit_.isoformat(),
            exit_price=str(Decimal(1000) + Decimal(pnl)),
        )
    body.update(fields)
    return body


def send(client: APIClient, *trades: Any) -> dict[str, int]:
    response = client.post(URL, list(trades), format="json")
    assert response.status_code == 200, response.content
    body: dict[str, int] = response.json()
    return body


def marks() -> list[tuple[str, date]]:
    return list(RiskMetricsBacklog.objects.values_list("bot_id", "since"))


def equity(bot: Bot) -> dict[int, tuple[str, str]]:
    """Days ago -> (equity_close_usd, max_drawdown_pct), as text."""
    return {
        (TODAY - r.date).days: (f"{r.equity_close_usd:f}", f"{r.max_drawdown_pct:f}")
        for r in RiskMetric.objects.filter(bot=bot)
    }


@pytest.fixture
def bot_client(bot: Bot) -> APIClient:
    return client_with(bot_token_create(bot=bot).key)


@pytest.fixture
def chained(bot: Bot) -> Bot:
    """momentum_001 (10,000), created ten days ago, with its rows rolled up to today."""
    Bot.objects.filter(pk=bot.pk).update(created_at=ago(10, 0))
    tasks.risk_metrics_rollup_today()
    assert sorted(equity(bot)) == list(range(11))
    assert marks() == []
    return bot


def test_a_late_trade_marks_its_day_and_the_next_rollup_redoes_every_day_after(
    chained: Bot, bot_client: APIClient
) -> None:
    flat = ("10000.00000000", "0.000000")
    assert set(equity(chained).values()) == {flat}

    assert send(bot_client, trade(1, ago(4), ago(3), "-400")) == {
        "created": 1,
        "updated": 0,
        "unchanged": 0,
    }
    assert marks() == [("momentum_001", TODAY - timedelta(days=3))]
    assert equity(chained)[3] == flat  # not yet redone: what the drawdown check would read

    tasks.risk_metrics_rollup_today()

    after = equity(chained)
    assert [after[n] for n in (10, 4)] == [flat, flat]
    assert {after[n] for n in (3, 2, 1, 0)} == {("9600.00000000", "4.000000")}
    assert marks() == []


def test_a_corrected_trade_marks_the_day_it_left(chained: Bot, bot_client: APIClient) -> None:
    send(bot_client, trade(1, ago(6), ago(5), "-400"))
    tasks.risk_metrics_rollup_today()
    assert equity(chained)[5] == ("9600.00000000", "4.000000")

    # The bot corrects it: it closed two days ago, at a gain.
    assert send(bot_client, trade(1, ago(6), ago(2), "100"))["updated"] == 1
    assert marks() == [("momentum_001", TODAY - timedelta(days=5))]  # the old exit's day
    tasks.risk_metrics_rollup_today()

    after = equity(chained)
    assert [after[n] for n in (5, 4, 3)] == [("10000.00000000", "0.000000")] * 3
    assert [after[n] for n in (2, 1, 0)] == [("10100.00000000", "0.000000")] * 3


def test_an_entry_before_the_chain_starts_it_again_earlier(
    chained: Bot, bot_client: APIClient
) -> None:
    send(bot_client, trade(1, ago(15), None, "0"))  # still open

    assert marks() == [("momentum_001", TODAY - timedelta(days=15))]
    tasks.risk_metrics_rollup_today()
    assert sorted(equity(chained)) == list(range(16))
    assert marks() == []


@pytest.mark.parametrize(
    "late",
    [
        pytest.param(trade(2, ago(2), ago(1), "-50"), id="closed-yesterday"),
        pytest.param(trade(2, ago(1), ago(0, 0), "-50"), id="closed-today"),
        pytest.param(trade(2, ago(5), None, "0"), id="open-inside-the-chain"),
        pytest.param(trade(2, ago(8), ago(7), "-50", source="backtest"), id="a-backtest"),
        pytest.param(trade(1, ago(6), ago(5), "-400"), id="sent-again-unchanged"),
    ],
)
def test_what_the_scheduled_rollup_covers_marks_nothing(
    late: Any, chained: Bot, bot_client: APIClient
) -> None:
    send(bot_client, trade(1, ago(6), ago(5), "-400"))
    tasks.risk_metrics_rollup_today()
    assert marks() == []

    send(bot_client, late)

    assert marks() == []


def test_a_mark_moved_while_its_days_are_redone_stays_for_the_next_run(
    chained: Bot, bot_client: APIClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    send(bot_client, trade(1, ago(4), ago(3), "-400"))
    real = rollups.risk_metrics_rollup
    seen: list[date] = []

    def rollup_while_a_trade_arrives(*, day: date, bot_ids: list[str] | None = None) -> int:
        if not seen:  # a trade for the same day lands while the first day is redone
            risk_metrics_backlog_mark(bot_id=chained.bot_id, since=TODAY - timedelta(days=3))
        seen.append(day)
        return real(day=day, bot_ids=bot_ids)

    monkeypatch.setattr(rollups, "risk_metrics_rollup", rollup_while_a_trade_arrives)
    assert rollups.risk_metrics_backlog_redo() == 4
    assert seen == [TODAY - timedelta(days=n) for n in (3, 2, 1, 0)]
    assert marks() == [("momentum_001", TODAY - timedelta(days=3))]

    monkeypatch.setattr(rollups, "risk_metrics_rollup", real)
    assert rollups.risk_metrics_backlog_redo() == 4
    assert marks() == []


def test_a_refused_batch_leaves_no_mark(chained: Bot, bot_client: APIClient) -> None:
    bad = trade(2, ago(4), ago(3), "-10", quantity="-1")

    response = bot_client.post(URL, [trade(1, ago(4), ago(3), "-400"), bad], format="json")

    assert response.status_code == 400
    assert marks() == []


def test_a_batch_entered_today_skips_the_marking_a_late_one_takes(
    chained: Bot, bot_client: APIClient
) -> None:
    now = timezone.now()
    today_start = datetime.combine(TODAY, datetime.min.time(), UTC)
    fresh = trade(1, max(today_start, now - timedelta(minutes=5)), None, "0")
    late = trade(2, ago(1, 0), None, "0")  # entered yesterday: its exit may come after the mark

    with CaptureQueriesContext(connection) as plain:
        send(bot_client, fresh)
    with CaptureQueriesContext(connection) as marking:
        send(bot_client, late)

    assert [
        "risk_metrics_backlog" in q["sql"]
        for c in (plain, marking)
        for q in c.captured_queries
        if "INSERT INTO trading.trades" in q["sql"]
    ] == [False, True]
    assert marks() == []  # neither entered before the chain's first day nor closed


_NUMERIC = {name for name, kind in TRADE_COLUMNS if kind == "numeric"}


def _plan_nodes(node: dict[str, Any]) -> Any:
    yield node
    for child in node.get("Plans", []):
        yield from _plan_nodes(child)


def test_marking_looks_each_trade_up_by_its_key_however_many_trades_the_bot_has(
    chained: Bot, bot_client: APIClient
) -> None:
    """The marking reads each written trade as it was before, by (bot, trade_id). Planned as a
    join, it once read all the bot's trades and filtered them (the statistics had not seen the
    bot): a cost that grew with the bot on every send."""
    send(bot_client, *(trade(n, ago(5), ago(4), "1") for n in range(3_000)))
    sent = {
        **trade(5_000, ago(3), ago(2), "1"),
        "entry_time": ago(3),
        "exit_time": ago(2),
        "source": "paper",
        "leverage": "1",
        "exit_reason": "",
        "entry_tag": "",
        "strategy_data": {},
    }
    row = trade_derived_fields({k: Decimal(v) if k in _NUMERIC else v for k, v in sent.items()})
    params: dict[str, Any] = {"bot_id": chained.bot_id, "run_id": array_literal("bigint", [None])}
    for name, kind in TRADE_COLUMNS:
        params[name] = array_literal(kind, [row.get(name)])

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + TRADE_UPSERT_MARKING_SQL, params)
        (plan,) = cursor.fetchone()
        transaction.set_rollback(True)

    nodes = list(_plan_nodes(plan[0]["Plan"]))
    earlier = [n for n in nodes if n.get("Relation Name") == "trades" and n.get("Alias") == "o"]
    assert [(n["Actual Rows"], "trade_id" in n.get("Index Cond", "")) for n in earlier] == [
        (0, True)
    ]
    assert sum(n.get("Rows Removed by Join Filter", 0) for n in nodes) == 0
    assert sum(n.get("Rows Removed by Filter", 0) for n in nodes) == 0
