"""GET lists and detail pages: who sees what, filters, cursor pages, output shape, query counts."""

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import models
from django.test import Client
from rest_framework.test import APIClient

from audit.models import RiskEvent, SystemEvent
from tests.api.conftest import client_with
from tests.factories import T0, make_bot, make_closed_trade, make_position, make_trade
from trading.api.pagination import KeysetCursorPagination
from trading.models import AccountBalance, Bot, BotRun, Order, OrderFill, Position, Signal, Trade
from trading.services.tokens import staff_token_create

pytestmark = pytest.mark.django_db

# --- The n-th row of a bot, for each table the API lists --------------------------------------


def make_order(bot: Bot, n: int) -> Order:
    """An order with two fills, sent out of time order."""
    order = Order.objects.create(
        bot=bot,
        client_order_id=f"c-{n}",
        symbol="BTC/USDT",
        side="buy",
        order_type="limit",
        quantity=Decimal("1"),
        price=Decimal("60000"),
    )
    for fill_id, second, quantity in (("b", 2, "0.25"), ("a", 1, "0.5")):
        OrderFill.objects.create(
            order=order,
            fill_id=f"f-{n}-{fill_id}",
            quantity=Decimal(quantity),
            price=Decimal("60000"),
            filled_at=T0 + timedelta(minutes=n, seconds=second),
        )
    return order


def _minute(n: int) -> Any:
    return T0 + timedelta(minutes=n)


ROW_MAKERS: dict[type[models.Model], Callable[[Bot, int], models.Model]] = {
    Trade: lambda bot, n: make_trade(bot, trade_id=f"t-{n}", entry_time=_minute(n)),
    Order: make_order,
    # At most one open position per (bot, symbol, exchange, side): vary the symbol.
    Position: lambda bot, n: make_position(bot, symbol=f"C{n}/USDT", opened_at=_minute(n)),
    Signal: lambda bot, n: Signal.objects.create(
        bot=bot, symbol="BTC/USDT", signal_type="breakout", generated_at=_minute(n)
    ),
    AccountBalance: lambda bot, n: AccountBalance.objects.create(
        bot=bot, ts=_minute(n), balance_usd=Decimal("10000"), equity_usd=Decimal("10050.5")
    ),
    RiskEvent: lambda bot, n: RiskEvent.objects.create(
        ts=_minute(n), bot=bot, event_type="drawdown_limit"
    ),
    SystemEvent: lambda bot, n: SystemEvent.objects.create(
        ts=_minute(n), bot=bot, component="ingest", event_type="started", message="m"
    ),
    BotRun: lambda bot, n: BotRun.objects.create(bot=bot, mode="live", started_at=_minute(n)),
}

LISTS = {
    "trades/": Trade,
    "orders/": Order,
    "positions/": Position,
    "signals/": Signal,
    "balances/": AccountBalance,
    "risk-events/": RiskEvent,
    "system-events/": SystemEvent,
}


def url(path: str) -> str:
    return f"/api/v1/{path}"


def results(response: Any) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"next", "previous", "results"}
    rows: list[dict[str, Any]] = body["results"]
    return rows


def errors(response: Any) -> list[dict[str, Any]]:
    assert response.status_code == 400, response.content
    found: list[dict[str, Any]] = response.json()["errors"]
    return found


# --- Who sees what ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", LISTS, ids=str)
def test_a_bot_lists_only_its_own_rows_and_staff_list_every_bots(
    path: str, bot: Bot, other_bot: Bot, bot_client: APIClient, staff_client: APIClient
) -> None:
    make = ROW_MAKERS[LISTS[path]]
    # Made in time order (an order's time is when the server stored it).
    mine, theirs = [], []
    for n in (1, 3):
        mine.append(make(bot, n).pk)
        theirs.append(make(other_bot, n + 1).pk)

    own = results(bot_client.get(url(path)))
    everyone = results(staff_client.get(url(path)))

    assert [row["id"] for row in own] == [mine[1], mine[0]]  # newest first
    assert {row["bot_id"] for row in own} == {"momentum_001"}
    assert [row["id"] for row in everyone] == [theirs[1], mine[1], theirs[0], mine[0]]


@pytest.mark.parametrize("path", LISTS, ids=str)
def test_another_bots_row_by_id_is_404_for_a_bot_and_200_for_staff(
    path: str, bot: Bot, other_bot: Bot, bot_client: APIClient, staff_client: APIClient
) -> None:
    make = ROW_MAKERS[LISTS[path]]
    mine, theirs = make(bot, 1), make(other_bot, 2)

    assert bot_client.get(url(f"{path}{mine.pk}/")).json()["id"] == mine.pk
    assert bot_client.get(url(f"{path}{theirs.pk}/")).status_code == 404
    assert staff_client.get(url(f"{path}{theirs.pk}/")).json()["bot_id"] == "shortseller_001"
    assert staff_client.get(url(f"{path}{theirs.pk + 1000}/")).status_code == 404


@pytest.mark.parametrize("path", LISTS, ids=str)
def test_a_bot_asking_for_another_bots_rows_gets_an_empty_list(
    path: str, bot: Bot, other_bot: Bot, bot_client: APIClient, staff_client: APIClient
) -> None:
    make = ROW_MAKERS[LISTS[path]]
    make(bot, 1)
    theirs = make(other_bot, 2)

    assert results(bot_client.get(url(path), {"bot_id": "shortseller_001"})) == []
    staff_rows = results(staff_client.get(url(path), {"bot_id": "shortseller_001"}))
    assert [row["id"] for row in staff_rows] == [theirs.pk]


def test_a_bot_lists_only_itself_and_staff_every_bot(
    bot: Bot, other_bot: Bot, bot_client: APIClient, staff_client: APIClient
) -> None:
    assert [b["bot_id"] for b in results(bot_client.get(url("bots/")))] == ["momentum_001"]
    assert [b["bot_id"] for b in results(staff_client.get(url("bots/")))] == [
        "shortseller_001",  # created last: newest first
        "momentum_001",
    ]
    assert bot_client.get(url("bots/momentum_001/")).json()["name"] == "Momentum"
    assert bot_client.get(url("bots/shortseller_001/")).status_code == 404
    assert staff_client.get(url("bots/shortseller_001/")).json()["name"] == "Shortseller"
    assert staff_client.get(url("bots/nobody_001/")).status_code == 404


def test_a_system_event_naming_no_bot_is_for_staff_only(
    bot: Bot, bot_client: APIClient, staff_client: APIClient
) -> None:
    own = ROW_MAKERS[SystemEvent](bot, 1)
    fleet = SystemEvent.objects.create(
        ts=_minute(2), component="beat", event_type="backup_done", message="nightly backup"
    )

    assert [e["id"] for e in results(bot_client.get(url("system-events/")))] == [own.pk]
    assert bot_client.get(url(f"system-events/{fleet.pk}/")).status_code == 404
    staff_rows = results(staff_client.get(url("system-events/")))
    assert [(e["id"], e["bot_id"]) for e in staff_rows] == [
        (fleet.pk, None),
        (own.pk, "momentum_001"),
    ]


def test_staff_read_through_the_session_too(bot: Bot, staff_user: User) -> None:
    trade = make_trade(bot)
    client = Client()
    client.force_login(staff_user)

    assert [t["id"] for t in results(client.get(url("trades/")))] == [trade.pk]


def test_a_user_without_the_staff_flag_is_refused(bot: Bot) -> None:
    clerk = User.objects.create_user("clerk", password="pw")
    session = Client()
    session.force_login(clerk)
    token = client_with(staff_token_create(user=clerk).key)

    for client in (session, token):
        assert client.get(url("trades/")).status_code == 403
        assert client.get(url("bots/momentum_001/")).status_code == 403


def test_no_credentials_is_401(bot: Bot) -> None:
    trade = make_trade(bot)

    assert APIClient().get(url("trades/")).status_code == 401
    assert APIClient().get(url(f"trades/{trade.pk}/")).status_code == 401


# --- What a row looks like ----------------------------------------------------------------------


def test_a_trade_is_written_with_schema_column_names_and_money_as_strings(
    bot: Bot, bot_client: APIClient
) -> None:
    position = make_position(bot)
    trade = make_closed_trade(
        bot,
        trade_id="T-1",
        pnl_usd=Decimal("488"),
        pnl_pct=Decimal("1.626667"),
        fees_usd=Decimal("12.25"),
        position=position,
        exit_reason="roi",
        entry_tag="breakout",
        strategy_data={"rsi": 28},
    )

    body = bot_client.get(url(f"trades/{trade.pk}/")).json()

    assert body == {
        "id": trade.pk,
        "bot_id": "momentum_001",
        "trade_id": "T-1",
        "symbol": "BTC/USDT",
        "exchange": "binance",
        "side": "long",
        "quantity": "0.5000000000",
        "entry_price": "60000.0000000000",
        "exit_price": "61000.0000000000",
        "entry_time": "2026-01-05T12:00:00Z",
        "exit_time": "2026-01-05T13:00:00Z",
        "fees_usd": "12.25000000",
        "pnl_usd": "488.00000000",
        "pnl_pct": "1.626667",
        "status": "closed",
        "source": "live",
        "leverage": "1.000000",
        "exit_reason": "roi",
        "entry_tag": "breakout",
        "position": position.pk,
        "strategy_data": {"rsi": 28},
        "created_at": body["created_at"],
        "updated_at": body["updated_at"],
    }
    assert body["created_at"].endswith("Z")


def test_an_order_comes_with_its_fills_oldest_first(bot: Bot, bot_client: APIClient) -> None:
    order = make_order(bot, 1)

    body = bot_client.get(url(f"orders/{order.pk}/")).json()
    listed = results(bot_client.get(url("orders/")))[0]

    assert (body["bot_id"], body["client_order_id"], body["price"]) == (
        "momentum_001",
        "c-1",
        "60000.0000000000",
    )
    assert [(f["fill_id"], f["quantity"], f["filled_at"]) for f in body["fills"]] == [
        ("f-1-a", "0.5000000000", "2026-01-05T12:01:01Z"),
        ("f-1-b", "0.2500000000", "2026-01-05T12:01:02Z"),
    ]
    assert set(body) - set(listed) == {"fills"}  # the list leaves the fills out


def test_a_bot_is_written_with_its_registry_columns(bot: Bot, staff_client: APIClient) -> None:
    body = staff_client.get(url("bots/momentum_001/")).json()

    assert {k: body[k] for k in ("bot_id", "status", "mode", "initial_capital_usd")} == {
        "bot_id": "momentum_001",
        "status": "active",
        "mode": "paper",
        "initial_capital_usd": "10000.00000000",
    }
    assert "api_tokens" not in body


# --- Filters ------------------------------------------------------------------------------------


def trade_ids(client: APIClient, **params: Any) -> list[str]:
    return [t["trade_id"] for t in results(client.get(url("trades/"), params))]


def test_trades_filter_by_symbol_status_and_time_range(
    bot: Bot, other_bot: Bot, staff_client: APIClient
) -> None:
    make_trade(bot, trade_id="a", symbol="BTC/USDT", entry_time=T0)
    make_trade(bot, trade_id="b", symbol="ETH/USDT", entry_time=T0 + timedelta(hours=1))
    make_closed_trade(
        bot,
        trade_id="c",
        symbol="ETH/USDT",
        pnl_usd=Decimal(5),
        entry_time=_minute(120),
        exit_time=_minute(150),
    )
    make_trade(other_bot, trade_id="d", symbol="ETH/USDT", entry_time=T0 + timedelta(hours=1))

    assert trade_ids(staff_client, symbol="ETH/USDT") == ["c", "d", "b"]
    assert trade_ids(staff_client, symbol="ETH/USDT", bot_id="momentum_001") == ["c", "b"]
    assert trade_ids(staff_client, status="closed") == ["c"]
    assert trade_ids(staff_client, status=["open", "closed"], bot_id="momentum_001") == [
        "c",
        "b",
        "a",
    ]
    # since is inclusive, until exclusive; any UTC offset.
    assert trade_ids(staff_client, since="2026-01-05T13:00:00Z") == ["c", "d", "b"]
    assert trade_ids(staff_client, until="2026-01-05T13:00:00Z") == ["a"]
    assert trade_ids(
        staff_client, since="2026-01-05T14:00:00+01:00", until="2026-01-05T15:00:00+01:00"
    ) == ["d", "b"]


def test_an_unescaped_plus_in_the_offset_is_read_as_a_plus(
    bot: Bot, staff_client: APIClient
) -> None:
    make_trade(bot, trade_id="a", entry_time=T0)
    make_trade(bot, trade_id="b", entry_time=T0 + timedelta(hours=2))

    response = staff_client.get(url("trades/") + "?since=2026-01-05T13:00:00+01:00")

    assert [t["trade_id"] for t in results(response)] == ["b", "a"]
    assert trade_ids(staff_client, since="2026-01-05T13:00:00.5+01:00") == ["b"]


@pytest.mark.parametrize(
    ("params", "field", "reason"),
    [
        (
            {"since": "yesterday"},
            "since",
            "Enter an ISO-8601 date-time, e.g. 2026-01-05T12:00:00Z.",
        ),
        ({"until": "2026-01-05T12:00:00"}, "until", "Give a UTC offset (e.g. 'Z' or '+00:00')."),
        ({"since": "2026-01-05"}, "since", "Give a UTC offset (e.g. 'Z' or '+00:00')."),
        (
            {"since": "0001-01-01T00:00:00+01:00"},
            "since",
            "Enter an ISO-8601 date-time, e.g. 2026-01-05T12:00:00Z.",
        ),
        (
            {"status": "sideways"},
            "status",
            "Select a valid choice. sideways is not one of the available choices.",
        ),
        ({"page_size": "0"}, "page_size", "must be a whole number of at least 1"),
        ({"page_size": "ten"}, "page_size", "must be a whole number of at least 1"),
        ({"cursor": "bm90IGEgY3Vyc29y"}, "cursor", "is not a cursor this API gave out"),
        ({"cursor": "%%%"}, "cursor", "is not a cursor this API gave out"),
    ],
)
def test_a_bad_parameter_is_400_naming_it(
    params: dict[str, Any], field: str, reason: str, staff_client: APIClient
) -> None:
    response = staff_client.get(url("trades/"), params)

    assert errors(response) == [{"field": field, "reason": reason}]


def test_events_filter_by_severity_resolution_and_bad_flags_are_400(
    bot: Bot, staff_client: APIClient, superuser: User
) -> None:
    open_event = RiskEvent.objects.create(ts=T0, bot=bot, event_type="drawdown_limit")
    RiskEvent.objects.create(
        ts=_minute(1),
        bot=bot,
        event_type="daily_loss_limit",
        severity="critical",
        resolved=True,
        resolved_at=_minute(5),
        resolved_by=superuser,
    )

    def event_types(**params: Any) -> list[str]:
        return [e["event_type"] for e in results(staff_client.get(url("risk-events/"), params))]

    assert event_types(resolved="false") == ["drawdown_limit"]
    assert event_types(resolved="true") == ["daily_loss_limit"]
    assert event_types(severity="critical") == ["daily_loss_limit"]
    assert event_types(event_type=["drawdown_limit", "daily_loss_limit"]) == [
        "daily_loss_limit",
        "drawdown_limit",
    ]
    assert errors(staff_client.get(url("risk-events/"), {"resolved": "maybe"})) == [
        {"field": "resolved", "reason": "Enter true or false."}
    ]
    detail = staff_client.get(url(f"risk-events/{open_event.pk}/")).json()
    assert (detail["resolved"], detail["resolved_by"], detail["limit_value"]) == (False, None, None)


def test_a_detail_page_ignores_the_list_filters(bot: Bot, bot_client: APIClient) -> None:
    trade = make_trade(bot, symbol="BTC/USDT")

    response = bot_client.get(url(f"trades/{trade.pk}/"), {"symbol": "ETH/USDT"})

    assert response.json()["id"] == trade.pk


# --- Cursor pages -------------------------------------------------------------------------------


def walk(client: APIClient, first: str, link: str = "next") -> list[list[int]]:
    pages: list[list[int]] = []
    next_url: str | None = first
    while next_url:
        body = client.get(next_url).json()
        pages.append([row["id"] for row in body["results"]])
        next_url = body[link]
        assert len(pages) < 20, "the cursor does not advance"
    return pages


def test_cursor_pages_walk_every_row_once_newest_first_even_with_equal_times(
    bot: Bot, bot_client: APIClient
) -> None:
    # Five trades share one entry_time: the id settles their order.
    tied = [make_trade(bot, entry_time=T0 + timedelta(hours=1)).pk for _ in range(5)]
    older = make_trade(bot, entry_time=T0).pk
    newer = make_trade(bot, entry_time=T0 + timedelta(hours=2)).pk
    expected = [newer, *sorted(tied, reverse=True), older]

    pages = walk(bot_client, url("trades/?page_size=2"))

    assert pages == [expected[0:2], expected[2:4], expected[4:6], expected[6:7]]
    # ...and back from the last page by the previous links.
    last = bot_client.get(url("trades/?page_size=2")).json()
    for _ in range(3):
        last = bot_client.get(last["next"]).json()
    assert last["next"] is None
    back = walk(bot_client, last["previous"], link="previous")
    assert back == [expected[4:6], expected[2:4], expected[0:2]]


def test_a_cursor_keeps_the_filters_and_rows_added_later_do_not_shift_pages(
    bot: Bot, bot_client: APIClient
) -> None:
    for minute in range(4):
        make_trade(bot, trade_id=f"btc-{minute}", symbol="BTC/USDT", entry_time=_minute(minute))
    make_trade(bot, trade_id="eth", symbol="ETH/USDT", entry_time=_minute(10))

    first = bot_client.get(url("trades/"), {"symbol": "BTC/USDT", "page_size": "2"}).json()
    make_trade(bot, trade_id="btc-new", symbol="BTC/USDT", entry_time=_minute(20))
    second = bot_client.get(first["next"]).json()

    assert [t["trade_id"] for t in first["results"]] == ["btc-3", "btc-2"]
    assert [t["trade_id"] for t in second["results"]] == ["btc-1", "btc-0"]
    assert "symbol=BTC" in first["next"]
    assert first["previous"] is None
    assert second["next"] is None


def test_the_page_size_is_capped(
    bot: Bot, bot_client: APIClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(KeysetCursorPagination, "max_page_size", 2)
    for minute in range(3):
        make_trade(bot, entry_time=_minute(minute))

    body = bot_client.get(url("trades/"), {"page_size": 50}).json()

    assert len(body["results"]) == 2
    assert body["next"] is not None


def test_the_bots_list_pages_by_creation_time_and_bot_id(
    staff_client: APIClient, staff_user: User
) -> None:
    for n in range(3):
        make_bot(f"b_{n:03d}")

    pages = [
        [b["bot_id"] for b in page]
        for page in (
            staff_client.get(url("bots/?page_size=2")).json()["results"],
            staff_client.get(staff_client.get(url("bots/?page_size=2")).json()["next"]).json()[
                "results"
            ],
        )
    ]

    assert pages == [["b_002", "b_001"], ["b_000"]]


# --- Query counts: fixed, whatever the number of rows -------------------------------------------


@pytest.mark.parametrize("caller", ["bot", "staff"])
@pytest.mark.parametrize("path", [*LISTS, "bots/"], ids=str)
def test_a_list_runs_two_queries_for_3_or_30_rows(
    path: str, caller: str, bot: Bot, bot_client: APIClient, django_assert_num_queries: Any
) -> None:
    staff = User.objects.create_user("s", is_staff=True)
    client = bot_client if caller == "bot" else client_with(staff_token_create(user=staff).key)
    model = LISTS.get(path)

    def add(start: int, stop: int) -> None:
        for n in range(start, stop):
            if model is None:
                make_bot(f"bot_{n:03d}")
            else:
                ROW_MAKERS[model](bot, n)

    add(0, 3)
    client.get(url(path))  # the token's first use notes last_used_at: not a list query

    # 1: the token with its bot or user; 2: the page.
    with django_assert_num_queries(2):
        few = results(client.get(url(path)))
    add(3, 30)
    with django_assert_num_queries(2):
        many = results(client.get(url(path)))

    if model is not None:
        assert (len(few), len(many)) == (3, 30)
    else:  # a bot's token lists only itself
        assert (len(few), len(many)) == ((1, 1) if caller == "bot" else (4, 31))


@pytest.mark.parametrize("path", LISTS, ids=str)
def test_a_bot_reads_a_row_by_id_in_two_queries_and_an_order_in_three(
    path: str, bot: Bot, bot_client: APIClient, django_assert_num_queries: Any
) -> None:
    row = ROW_MAKERS[LISTS[path]](bot, 1)
    bot_client.get(url("bots/"))

    # The token with its bot, the row, and for an order its fills.
    with django_assert_num_queries(3 if path == "orders/" else 2):
        response = bot_client.get(url(f"{path}{row.pk}/"))

    assert response.json()["id"] == row.pk


def test_a_staff_session_lists_in_three_queries(
    bot: Bot, staff_user: User, django_assert_num_queries: Any
) -> None:
    client = Client()
    client.force_login(staff_user)
    for n in range(30):
        make_trade(bot, entry_time=_minute(n))

    # The session, its user, the page.
    with django_assert_num_queries(3):
        assert len(results(client.get(url("trades/")))) == 30
