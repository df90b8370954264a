"""Bots' batches racing over the same rows, through a real server (pytest-django's live server:
one thread and one PostgreSQL session per request, on 127.0.0.1): no deadlock, no error, one
row per key, and counts that add up.

Two batches of the same new rows in opposite orders used to deadlock (each held the index
entries the other was about to insert) and answer 503 "database unavailable". Every writer now
writes in key order, and a deadlock or serialization failure that happens anyway is retried
inside the request (trading.db.conflict_retrying).
"""

import json
import random
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import psycopg
import pytest

import trading.db
from audit.models import SystemEvent
from tests.analytics.test_tasks import other_connection
from tests.factories import make_bot
from trading.models import (
    AccountBalance,
    IdempotencyKey,
    MarketData,
    Order,
    OrderFill,
    Position,
    Signal,
    Trade,
)
from trading.services.tokens import bot_token_create

pytestmark = pytest.mark.django_db(transaction=True)

T0 = datetime(2026, 1, 5, 12, tzinfo=UTC)


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def post(url: str, token: str, body: Any, *, key: str | None = None) -> tuple[int, Any]:
    """POST ``body`` as JSON; the status and the decoded answer (errors included)."""
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    if key is not None:
        headers["Idempotency-Key"] = key
    request = urllib.request.Request(  # noqa: S310 - the test's own live server
        url, data=json.dumps(body).encode(), headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


def at_once(sends: list[Callable[[], tuple[int, Any]]]) -> list[tuple[int, Any]]:
    """Run every send in its own thread, released together."""
    start = threading.Barrier(len(sends))

    def run(send: Callable[[], tuple[int, Any]]) -> tuple[int, Any]:
        start.wait(timeout=10)
        return send()

    with ThreadPoolExecutor(max_workers=len(sends)) as pool:
        return list(pool.map(run, sends))


def trade(n: int, **fields: Any) -> dict[str, Any]:
    return {
        "trade_id": f"R-{n:04d}",
        "symbol": "SOL/USDT",
        "exchange": "binance",
        "side": "long",
        "quantity": "3",
        "entry_price": "150.25",
        "entry_time": iso(T0),
        **fields,
    }


def order(n: int, **fields: Any) -> dict[str, Any]:
    return {
        "client_order_id": f"O-{n:04d}",
        "symbol": "BTC/USDT",
        "side": "buy",
        "order_type": "market",
        "quantity": "3",
        **fields,
    }


def fill(n: int, **fields: Any) -> dict[str, Any]:
    return {
        "fill_id": f"F-{n:04d}",
        "quantity": "1",
        "price": "100",
        "filled_at": iso(T0 + timedelta(seconds=n)),
        **fields,
    }


def balance(n: int, **fields: Any) -> dict[str, Any]:
    return {
        "ts": iso(T0 + timedelta(minutes=n)),
        "balance_usd": "1000",
        "equity_usd": "1000",
        **fields,
    }


def position(n: int, **fields: Any) -> dict[str, Any]:
    return {
        "symbol": f"C{n:03d}/USDT",
        "exchange": "binance",
        "side": "long",
        "quantity": "2",
        "initial_quantity": "2",
        "avg_entry_price": "10",
        "opened_at": iso(T0),
        **fields,
    }


def signal(n: int, **fields: Any) -> dict[str, Any]:
    return {
        "symbol": "BTC/USDT",
        "signal_type": "breakout",
        "generated_at": iso(T0 + timedelta(minutes=n)),
        **fields,
    }


def event(n: int, **fields: Any) -> dict[str, Any]:
    return {
        "ts": iso(T0 + timedelta(seconds=n)),
        "component": "exchange",
        "event_type": "reconnect",
        "message": f"reconnected {n}",
        **fields,
    }


def candle(n: int, **fields: Any) -> dict[str, Any]:
    return {
        "symbol": "BTC/USDT",
        "exchange": "binance",
        "timeframe": "1m",
        "ts": iso(T0 + timedelta(minutes=n)),
        "open": "100.5",
        "high": "110",
        "low": "90.25",
        "close": "105",
        "volume": "12.5",
        **fields,
    }


# (path, one item by number, the model, its count of rows per bot)
RESOURCES: dict[str, tuple[str, Callable[..., dict[str, Any]], Callable[[], int]]] = {
    "trades": ("trades/", trade, lambda: Trade.objects.count()),
    "orders": ("orders/", order, lambda: Order.objects.count()),
    "balances": ("balances/", balance, lambda: AccountBalance.objects.count()),
    "positions": ("positions/", position, lambda: Position.objects.count()),
}


@pytest.mark.parametrize("resource", RESOURCES)
def test_two_bots_sessions_sending_the_same_200_new_rows_in_opposite_orders_both_succeed(
    live_server: Any, resource: str, caplog: pytest.LogCaptureFixture
) -> None:
    path, item, count = RESOURCES[resource]
    token = bot_token_create(bot=make_bot("momentum_001")).key
    url = f"{live_server.url}/api/v1/{path}"
    for attempt in range(10):  # a deadlock needs an unlucky interleaving: give it ten
        batch = [item(attempt * 1000 + n) for n in range(200)]
        answers = at_once(
            [partial(post, url, token, batch), partial(post, url, token, batch[::-1])]
        )
        assert [status for status, _ in answers] == [200, 200], answers
        assert not [r for r in caplog.records if r.name == "trading.db"]  # nor a retry
        assert sum(body["created"] for _, body in answers) == 200
        assert [body["created"] + body["unchanged"] for _, body in answers] == [200, 200]
        assert count() == 200 * (attempt + 1)


# --- 20 clients, overlapping batches in random orders ------------------------------------------

# (path, one item by number, a variant of it, the rows stored)
OVERLAPPING: dict[str, tuple[str, Callable[..., dict[str, Any]], dict[str, Any], Callable[[], int]]]
OVERLAPPING = {
    "trades": ("trades/", trade, {"entry_tag": "b"}, lambda: Trade.objects.count()),
    "orders": ("orders/", order, {"retry_count": 1}, lambda: Order.objects.count()),
    "balances": ("balances/", balance, {"equity_usd": "1001"}, AccountBalance.objects.count),
    "positions": ("positions/", position, {"quantity": "1"}, lambda: Position.objects.count()),
    "signals": ("signals/", signal, {"outcome": "win"}, lambda: Signal.objects.count()),
    "events": ("events/", event, {}, lambda: SystemEvent.objects.count()),
}
KEYS = 300
PER_BATCH = 120
CLIENTS = 20


@pytest.mark.parametrize("resource", OVERLAPPING)
def test_20_clients_sending_overlapping_batches_in_random_orders_all_succeed_one_row_a_key(
    live_server: Any, resource: str, caplog: pytest.LogCaptureFixture
) -> None:
    path, item, variant, count = OVERLAPPING[resource]
    token = bot_token_create(bot=make_bot("momentum_001")).key
    race_overlapping(f"{live_server.url}/api/v1/{path}", token, item, variant, count, caplog)


def test_20_clients_sending_overlapping_fills_of_one_order_all_succeed_one_row_a_fill(
    live_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    token = bot_token_create(bot=make_bot("momentum_001")).key
    assert post(f"{live_server.url}/api/v1/orders/", token, order(1, quantity="1000"))[0] == 200
    url = f"{live_server.url}/api/v1/orders/O-0001/fills/"

    sent = race_overlapping(url, token, fill, {"price": "101"}, OrderFill.objects.count, caplog)

    assert Order.objects.get().filled_quantity == sent


def race_overlapping(
    url: str,
    token: str,
    item: Callable[..., dict[str, Any]],
    variant: dict[str, Any],
    count: Callable[[], int],
    caplog: pytest.LogCaptureFixture,
) -> int:
    """Each of 20 clients sends 120 of 300 keys, shuffled; half of them a variant of every item
    (so rows get updated as well as created). Every answer is a 200 whose counts add up to its
    batch, every key is created exactly once, and the table holds one row per key: how many."""
    rng = random.Random(14)
    keys = [rng.sample(range(KEYS), PER_BATCH) for _ in range(CLIENTS)]
    batches = [
        [item(n, **(variant if client % 2 else {})) for n in numbers]
        for client, numbers in enumerate(keys)
    ]
    sent = set().union(*keys)

    answers = at_once([partial(post, url, token, batch) for batch in batches])

    assert [status for status, _ in answers] == [200] * CLIENTS, answers
    assert [sum(body.values()) for _, body in answers] == [PER_BATCH] * CLIENTS
    assert sum(body["created"] for _, body in answers) == len(sent)
    assert count() == len(sent)
    assert not [r for r in caplog.records if r.name == "trading.db"]  # no conflict, no retry
    return len(sent)


def test_20_clients_sending_overlapping_candles_in_random_orders_store_each_candle_once(
    live_server: Any,
) -> None:
    bots = [make_bot(f"bot_{n:02d}") for n in range(CLIENTS)]
    tokens = [bot_token_create(bot=bot).key for bot in bots]
    url = f"{live_server.url}/api/v1/market-data/"
    rng = random.Random(14)
    keys = [rng.sample(range(KEYS), PER_BATCH) for _ in range(CLIENTS)]
    batches = [[candle(n) for n in numbers] for numbers in keys]
    sent = set().union(*keys)

    answers = at_once(
        [partial(post, url, token, batch) for batch, token in zip(batches, tokens, strict=True)]
    )

    assert [status for status, _ in answers] == [200] * CLIENTS, answers
    assert [body["inserted"] + body["duplicates"] for _, body in answers] == [PER_BATCH] * CLIENTS
    assert sum(body["inserted"] for _, body in answers) == len(sent)
    assert MarketData.objects.count() == len(sent)


def test_two_batches_each_closing_the_positions_the_other_keeps_open_both_succeed(
    live_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """One batch closes positions 0-49 and updates 50-99; the other closes 50-99 and updates
    0-49. Written together without a per-bot lock, each closed what the other was about to
    reopen: a deadlock. Whichever runs first, 100 positions end closed and 50 (re)opened."""
    token = bot_token_create(bot=make_bot("momentum_001")).key
    url = f"{live_server.url}/api/v1/positions/"
    for attempt in range(10):
        base = attempt * 1000
        assert post(url, token, [position(base + n) for n in range(100)])[0] == 200
        closing = {"status": "closed", "quantity": "0", "closed_at": iso(T0 + timedelta(hours=1))}
        first = [position(base + n, **closing) for n in range(50)]
        first += [position(base + n, quantity="1") for n in range(50, 100)]
        second = [position(base + n, **closing) for n in range(50, 100)]
        second += [position(base + n, quantity="1") for n in range(50)]

        answers = at_once([partial(post, url, token, first), partial(post, url, token, second)])

        assert [status for status, _ in answers] == [200, 200], answers
        assert not [r for r in caplog.records if r.name == "trading.db"]  # nor a retry
        assert Position.objects.filter(status="closed").count() == 100 * (attempt + 1)
        assert Position.objects.exclude(status="closed").count() == 50 * (attempt + 1)


# --- a deadlock forced by the test: the request runs again, whole ------------------------------

STORED_TRADE_SQL = """
INSERT INTO trading.trades (bot_id, trade_id, symbol, exchange, side, quantity, entry_price,
    entry_time, fees_usd, status, source, leverage, exit_reason, entry_tag, strategy_data,
    created_at, updated_at)
VALUES (%s, %s, 'SOL/USDT', 'binance', 'long', 3, 150.25, %s, 0, 'open', 'live', 1, '',
    'stored', '{}', now(), now())
"""


def wait_for_a_lock_wait(conn: psycopg.Connection, seconds: float = 10) -> None:
    """Until another session waits for a lock ``conn`` holds (the request, for its row)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        conn.execute("SELECT pg_stat_clear_snapshot()")  # else one view a transaction
        waiting = conn.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE pg_backend_pid() = ANY(pg_blocking_pids(pid))"
        ).fetchone()
        if waiting and waiting[0]:
            return
        time.sleep(0.01)
    raise AssertionError("the request never waited for the test's row")


def post_into_a_deadlock(url: str, token: str, key: str | None) -> tuple[int, Any, Any]:
    """POST trades R-0001 and R-0002 while the test's own transaction makes a deadlock with it:
    the test inserts R-0002 first, the request inserts R-0001 and waits for R-0002, the test
    then inserts R-0001. The request's session detects the deadlock (it waited first; the
    test's session waits 10 s before it looks) and its transaction is rolled back; the test's
    commits. The status, body and headers of the answer."""
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    if key is not None:
        headers["Idempotency-Key"] = key
    request = urllib.request.Request(  # noqa: S310 - the test's own live server
        url, data=json.dumps([trade(1), trade(2)]).encode(), headers=headers, method="POST"
    )

    def send() -> tuple[int, Any, Any]:
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                return response.status, json.loads(response.read()), response.headers
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read()), exc.headers

    with other_connection() as conn, ThreadPoolExecutor(max_workers=1) as pool:
        conn.autocommit = False
        conn.execute("SET deadlock_timeout = '10s'")
        conn.execute(STORED_TRADE_SQL, ["momentum_001", "R-0002", T0])
        answer = pool.submit(send)
        wait_for_a_lock_wait(conn)
        conn.execute(STORED_TRADE_SQL, ["momentum_001", "R-0001", T0])  # the deadlock
        conn.commit()
        return answer.result(timeout=30)


@pytest.mark.parametrize("key", [None, "batch-1"])
def test_a_write_that_deadlocks_is_run_again_and_leaves_what_one_write_leaves(
    live_server: Any, caplog: pytest.LogCaptureFixture, key: str | None
) -> None:
    token = bot_token_create(bot=make_bot("momentum_001")).key
    url = f"{live_server.url}/api/v1/trades/"

    status, body, _ = post_into_a_deadlock(url, token, key)

    # The second attempt ran after the test's commit: it found both trades and updated them.
    retries = [r.getMessage() for r in caplog.records if r.name == "trading.db"]
    assert (status, body) == (200, {"created": 0, "updated": 2, "unchanged": 0}), retries
    assert retries == ["write conflict (40P01), attempt 1 of 4; running it again"]
    assert sorted(Trade.objects.values_list("trade_id", "entry_tag")) == [
        ("R-0001", ""),
        ("R-0002", ""),
    ]
    if key is not None:
        assert list(IdempotencyKey.objects.values_list("key", "status_code", "response")) == [
            (key, 200, body)
        ]
        replayed = post(url, token, [trade(1), trade(2)], key=key)
        assert replayed == (200, body)
        assert IdempotencyKey.objects.count() == 1


def test_a_write_still_deadlocking_after_its_retries_is_a_conflict_not_an_outage(
    live_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(trading.db, "CONFLICT_ATTEMPTS", 1)  # no second attempt
    token = bot_token_create(bot=make_bot("momentum_001")).key
    url = f"{live_server.url}/api/v1/trades/"

    status, body, headers = post_into_a_deadlock(url, token, "batch-1")

    assert status == 503
    assert headers["Retry-After"] == "1"
    assert body == {
        "error": "write_conflict",
        "detail": "The write conflicted with concurrent writes to the same rows (a deadlock or "
        "a serialization failure) and was rolled back, each time it was run; the database is "
        "up: send it again.",
    }
    # Nothing of the request's: the test's two trades, and no idempotency record.
    assert sorted(Trade.objects.values_list("trade_id", "entry_tag")) == [
        ("R-0001", "stored"),
        ("R-0002", "stored"),
    ]
    assert IdempotencyKey.objects.count() == 0
