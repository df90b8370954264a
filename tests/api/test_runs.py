"""runs/ (issue 18): a bot opens and closes its runs; what it writes while one is open is linked
to it without sending the id; an explicit run_id is checked; a run whose heartbeats stop is
closed as crashed."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import IntegrityError, transaction
from django.test import override_settings
from rest_framework.test import APIClient

from analytics.services.risk import heartbeat_stale_check
from audit.models import ChangeLog
from tests.api.conftest import client_with
from tests.api.test_write_queries import closed, trade
from tests.factories import make_bot
from trading.models import AccountBalance, Bot, BotRun, Order, RunStatus, Signal, Trade
from trading.services.tokens import bot_token_create

pytestmark = pytest.mark.django_db

START = "2026-01-05T08:00:00Z"
START_AT = datetime(2026, 1, 5, 8, tzinfo=UTC)
OPEN = {
    "mode": "live",
    "started_at": START,
    "config_version": 3,
    "code_version": "git:4b97f42",
    "strategy_name": "momentum",
    "strategy_params": {"rsi": 14, "stop": "0.02"},
    "host": "bot-host-1",
}


def open_run(client: APIClient, **fields: Any) -> Any:
    return client.post("/api/v1/runs/", {**OPEN, **fields}, format="json")


def test_a_bot_opens_a_run_and_a_repeat_returns_the_same_run(bot_client: APIClient) -> None:
    first = open_run(bot_client)
    again = open_run(bot_client)

    assert first.status_code == 201, first.json()
    assert again.status_code == 200
    body = first.json()
    assert again.json() == body
    run = BotRun.objects.get()
    assert body == {
        "id": run.pk,
        "bot_id": "momentum_001",
        "mode": "live",
        "status": "open",
        "started_at": START,
        "ended_at": None,
        "end_reason": "",
        "config_version": 3,
        "code_version": "git:4b97f42",
        "strategy_name": "momentum",
        "strategy_params": {"rsi": 14, "stop": "0.02"},
        "host": "bot-host-1",
        "metadata": {},
        "created_at": body["created_at"],
    }
    log = ChangeLog.objects.get(entity_type="trading.botrun")
    assert (log.entity_id, log.action, log.actor_bot_id) == (str(run.pk), "create", "momentum_001")


def test_a_repeat_with_other_values_is_refused_naming_started_at(bot_client: APIClient) -> None:
    open_run(bot_client)
    response = open_run(bot_client, host="elsewhere", mode="dry_run")

    assert response.status_code == 400
    assert response.json()["errors"] == [
        {
            "field": "started_at",
            "reason": f"run {BotRun.objects.get().pk} of momentum_001 started at this time "
            "with other host, mode",
        }
    ]
    assert BotRun.objects.get().host == "bot-host-1"


@pytest.mark.parametrize(
    ("fields", "field"),
    [({"mode": "imported"}, "mode"), ({"started_at": None}, "started_at"),
     ({"config_version": 0}, "config_version"), ({"strategy_params": [1]}, "strategy_params")],
)  # fmt: skip
def test_bad_input_is_a_400_naming_the_field(
    bot_client: APIClient, fields: dict[str, Any], field: str
) -> None:
    response = open_run(bot_client, **fields)

    assert response.status_code == 400
    assert [e["field"] for e in response.json()["errors"]] == [field]
    assert not BotRun.objects.exists()


def test_opening_a_run_closes_the_open_one_as_crashed(bot_client: APIClient) -> None:
    first = open_run(bot_client).json()
    second = open_run(bot_client, started_at="2026-01-05T09:30:00Z").json()

    old = BotRun.objects.get(pk=first["id"])
    assert (old.status, old.ended_at) == ("crashed", START_AT + timedelta(minutes=90))
    assert old.end_reason == "a new run was opened before this one was closed"
    assert BotRun.objects.get(ended_at__isnull=True).pk == second["id"]


def test_close_ends_the_run_and_a_repeat_returns_it_as_is(bot_client: APIClient) -> None:
    run = open_run(bot_client).json()
    url = f"/api/v1/runs/{run['id']}/close/"
    body = {"ended_at": "2026-01-05T10:00:00Z", "end_reason": "deploy"}

    first = bot_client.post(url, body, format="json")
    again = bot_client.post(url, {"ended_at": "2026-01-05T11:00:00Z"}, format="json")

    assert first.status_code == 200
    assert (first.json()["status"], first.json()["ended_at"]) == ("closed", "2026-01-05T10:00:00Z")
    assert again.json() == first.json()
    actions = ChangeLog.objects.filter(entity_type="trading.botrun").order_by("id")
    assert [(c.action, c.new_values.get("status")) for c in actions] == [
        ("create", "open"),
        ("update", "closed"),
    ]


def test_a_run_cannot_end_before_it_started(bot_client: APIClient) -> None:
    run = open_run(bot_client).json()
    response = bot_client.post(
        f"/api/v1/runs/{run['id']}/close/", {"ended_at": "2026-01-05T07:00:00Z"}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["errors"] == [
        {
            "field": "ended_at",
            "reason": "must not be before the run's start, 2026-01-05T08:00:00+00:00",
        }
    ]
    assert BotRun.objects.get().status == "open"


def test_a_bot_sees_and_closes_only_its_own_runs(
    bot_client: APIClient, other_bot_client: APIClient, staff_client: APIClient
) -> None:
    mine = open_run(bot_client).json()
    theirs = open_run(other_bot_client).json()

    assert [r["id"] for r in bot_client.get("/api/v1/runs/").json()["results"]] == [mine["id"]]
    assert bot_client.get(f"/api/v1/runs/{theirs['id']}/").status_code == 404
    assert bot_client.post(f"/api/v1/runs/{theirs['id']}/close/").status_code == 404
    assert BotRun.objects.get(pk=theirs["id"]).status == "open"
    listed = staff_client.get("/api/v1/runs/").json()["results"]
    assert sorted(r["id"] for r in listed) == sorted([mine["id"], theirs["id"]])
    assert staff_client.post("/api/v1/runs/", OPEN, format="json").status_code == 403


# --- What is written in a run -----------------------------------------------------------------


def _write_everything(client: APIClient, n: int) -> None:
    """A trade, a batch the fast path takes, an order, a signal, a balance and a heartbeat
    with a balance: every write path."""
    assert client.post("/api/v1/trades/", trade(n), format="json").status_code == 200
    batch = [closed(n * 1000 + i) for i in range(120)]
    assert client.post("/api/v1/trades/", batch, format="json").status_code == 200
    order = {"client_order_id": f"O-{n}", "symbol": "BTC/USDT", "side": "buy",
             "order_type": "market", "quantity": "0.5", "trade_id": f"Q-{n}"}  # fmt: skip
    assert client.post("/api/v1/orders/", order, format="json").status_code == 200
    signal = {"symbol": "BTC/USDT", "signal_type": "rsi", "generated_at": f"2026-01-0{n}T12:00:00Z"}
    assert client.post("/api/v1/signals/", signal, format="json").status_code == 200
    balance = {"ts": f"2026-01-0{n}T12:00:00Z", "balance_usd": "100", "equity_usd": "101"}
    assert client.post("/api/v1/balances/", balance, format="json").status_code == 200


@pytest.mark.django_db(transaction=True)
def test_every_write_while_a_run_is_open_is_linked_to_it(bot_client: APIClient) -> None:
    _write_everything(bot_client, 1)  # before any run: linked to none
    run = open_run(bot_client).json()
    _write_everything(bot_client, 2)
    heartbeat = {"balance_usd": "100", "equity_usd": "102"}
    assert bot_client.post("/api/v1/heartbeat/", heartbeat, format="json").status_code == 200
    bot_client.post(f"/api/v1/runs/{run['id']}/close/")
    _write_everything(bot_client, 3)  # after it closed: linked to none

    def runs_of(model: Any) -> dict[Any, int]:
        counts: dict[Any, int] = {}
        for run_id in model.objects.values_list("run_id", flat=True):
            counts[run_id] = counts.get(run_id, 0) + 1
        return counts

    assert runs_of(Trade) == {None: 242, run["id"]: 121}
    assert runs_of(Order) == {None: 2, run["id"]: 1}
    assert runs_of(Signal) == {None: 2, run["id"]: 1}
    assert runs_of(AccountBalance) == {None: 2, run["id"]: 2}


def test_a_trade_keeps_the_run_it_was_first_written_in(bot_client: APIClient) -> None:
    first = open_run(bot_client).json()
    bot_client.post("/api/v1/trades/", trade(1), format="json")
    open_run(bot_client, started_at="2026-01-05T09:00:00Z")  # a restart: a new run
    bot_client.post("/api/v1/trades/", closed(1), format="json")  # closed in the new run

    stored = Trade.objects.get()
    assert (stored.status, stored.run_id) == ("closed", first["id"])


def test_an_explicit_run_id_is_taken_when_it_is_the_bots(bot_client: APIClient) -> None:
    earlier = open_run(bot_client).json()
    bot_client.post(f"/api/v1/runs/{earlier['id']}/close/")
    open_run(bot_client, started_at="2026-01-05T09:00:00Z")

    response = bot_client.post("/api/v1/trades/", trade(1, run_id=earlier["id"]), format="json")

    assert response.status_code == 200
    assert Trade.objects.get().run_id == earlier["id"]


@pytest.mark.parametrize(
    ("url", "body"),
    [
        ("/api/v1/trades/", [trade(1), trade(2, run_id="RUN")]),
        ("/api/v1/balances/", [{"ts": "2026-01-05T12:00:00Z", "balance_usd": "1",
                                "equity_usd": "1"},
                               {"ts": "2026-01-05T13:00:00Z", "balance_usd": "1",
                                "equity_usd": "1", "run_id": "RUN"}]),
        ("/api/v1/signals/", [{"symbol": "BTC/USDT", "signal_type": "rsi",
                               "generated_at": "2026-01-05T12:00:00Z"},
                              {"symbol": "BTC/USDT", "signal_type": "rsi", "run_id": "RUN",
                               "generated_at": "2026-01-05T13:00:00Z"}]),
        ("/api/v1/orders/", [{"client_order_id": "O-1", "symbol": "BTC/USDT", "side": "buy",
                              "order_type": "market", "quantity": "1"},
                             {"client_order_id": "O-2", "symbol": "BTC/USDT", "side": "buy",
                              "order_type": "market", "quantity": "1", "run_id": "RUN"}]),
    ],
)  # fmt: skip
def test_another_bots_run_id_is_a_400_naming_it_and_nothing_is_written(
    bot_client: APIClient, other_bot_client: APIClient, url: str, body: list[dict[str, Any]]
) -> None:
    theirs = open_run(other_bot_client).json()["id"]
    for item in body:
        if item.get("run_id") == "RUN":
            item["run_id"] = theirs

    response = bot_client.post(url, body, format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"index": 1, "field": "run_id", "reason": f"momentum_001 has no run {theirs}"}
    ]
    for model in (Trade, AccountBalance, Signal, Order):
        assert not model.objects.filter(bot_id="momentum_001").exists()


def test_the_database_refuses_a_row_linked_to_another_bots_run(
    bot: Bot, other_bot_client: APIClient
) -> None:
    theirs = open_run(other_bot_client).json()["id"]
    with pytest.raises(IntegrityError, match="trades_run_of_same_bot_fk"), transaction.atomic():
        Trade.objects.create(
            bot=bot, run_id=theirs, trade_id="X", symbol="BTC/USDT", exchange="binance",
            side="long", quantity=1, entry_price=1, entry_time=START_AT,
        )  # fmt: skip


# --- Crashed runs -------------------------------------------------------------------------------


@override_settings(BOT_HEARTBEAT_STALE_SECONDS=300)
def test_the_stale_heartbeat_check_closes_a_silent_run_as_crashed(
    bot: Bot, bot_client: APIClient, other_bot_client: APIClient
) -> None:
    now = datetime(2026, 1, 5, 12, tzinfo=UTC)
    silent = open_run(bot_client).json()["id"]
    alive = open_run(other_bot_client).json()["id"]
    tester = client_with(bot_token_create(bot=make_bot("tester_001")).key)
    backtest = open_run(tester, mode="backtest").json()["id"]  # no heartbeats: left open
    last = now - timedelta(seconds=301)
    Bot.objects.filter(pk__in=["momentum_001", "tester_001"]).update(last_heartbeat_at=last)
    Bot.objects.filter(pk="shortseller_001").update(last_heartbeat_at=now - timedelta(seconds=5))

    heartbeat_stale_check(now=now)

    crashed = BotRun.objects.get(pk=silent)
    assert (crashed.status, crashed.ended_at) == (RunStatus.CRASHED, last)
    assert crashed.end_reason == "heartbeats stopped (none for 300 s)"
    assert BotRun.objects.get(pk=alive).status == RunStatus.OPEN
    assert BotRun.objects.get(pk=backtest).status == RunStatus.OPEN
    log = ChangeLog.objects.filter(entity_type="trading.botrun", entity_id=str(silent)).latest("id")
    assert (log.action, log.new_values["status"]) == ("update", "crashed")
    # run again: nothing more to close
    heartbeat_stale_check(now=now + timedelta(seconds=60))
    assert ChangeLog.objects.filter(entity_type="trading.botrun").count() == 4


@pytest.mark.django_db(transaction=True)
def test_trades_entered_today_are_linked_by_the_fast_paths_too(bot_client: APIClient) -> None:
    """A trade entered today takes trading.api.trades_single's one statement (the token known
    after a first request) and a batch of trades all new to the bot the straight COPY: both
    link the bot's open run as the upsert does, and none once it closed."""
    today = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=1)
    if today.date() != datetime.now(UTC).date():  # a minute past midnight: keep it today
        today = datetime.now(UTC).replace(microsecond=0)
    entered = today.isoformat().replace("+00:00", "Z")

    def today_trade(n: int) -> dict[str, Any]:
        # Every number as its text: a JSON number sends a trade to DRF's path.
        return trade(n, entered=entered, entry_price="60000.25")

    def send(n: int) -> None:
        single = bot_client.post("/api/v1/trades/", today_trade(n), format="json")
        batch = [today_trade(n * 1000 + i) for i in range(120)]
        answer = bot_client.post("/api/v1/trades/", batch, format="json")
        assert (single.json(), answer.json()) == (
            {"created": 1, "updated": 0, "unchanged": 0},
            {"created": 120, "updated": 0, "unchanged": 0},
        )

    send(1)  # no run open; the token is known from here on
    run = open_run(bot_client, started_at=entered).json()
    send(2)
    bot_client.post(f"/api/v1/runs/{run['id']}/close/")
    send(3)

    linked: dict[Any, set[str]] = {}
    for trade_id, run_id in Trade.objects.values_list("trade_id", "run_id"):
        linked.setdefault(run_id, set()).add(trade_id)
    expected = {f"Q-{n}" for n in (2,)} | {f"Q-{2000 + i}" for i in range(120)}
    assert linked[run["id"]] == expected
    assert len(linked[None]) == 242
