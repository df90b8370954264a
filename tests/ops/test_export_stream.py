"""A streamed export that takes longer than GUNICORN_TIMEOUT to send, while sending all the
time, is not taken for a stuck request: each chunk beats the worker's timeout
(atb_site/progress.py), so a slow reader gets the whole file and the worker lives on. A request
stuck in Python is still killed (tests/ops/test_stuck_request.py)."""

import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from tests.factories import T0
from tests.ops.test_stuck_request import GUNICORN_TIMEOUT, Served, _serve
from trading.models import Bot, Trade

ROWS = 40_000


@pytest.fixture
def web(transactional_db: None, tmp_path: Path) -> Iterator[Served]:
    yield from _serve(tmp_path, WEB_CONCURRENCY="1", GUNICORN_MAX_REQUESTS="0")


def test_a_slow_reader_gets_the_whole_export_past_the_timeout(web: Served) -> None:
    bot = Bot.objects.get(pk="stuck_001")
    Trade.objects.bulk_create(
        Trade(
            bot=bot,
            trade_id=f"slow-{i:06d}-" + "x" * 100,
            symbol="BTC/USDT",
            exchange="binance",
            side="long",
            quantity=Decimal("1.5"),
            entry_price=Decimal("100"),
            entry_time=T0,
        )
        for i in range(ROWS)
    )
    [worker] = web.workers()
    conn = web.connect()
    started = time.monotonic()
    conn.request(
        "GET",
        "/api/v1/trades/?format=csv",
        headers={"Authorization": f"Bearer {web.token}"},
    )
    response = conn.getresponse()
    assert response.status == 200
    received = bytearray()
    while chunk := response.read(128 * 1024):
        received += chunk
        time.sleep(0.05)  # a slow client: the server waits on its socket between chunks
    took = time.monotonic() - started
    assert took > GUNICORN_TIMEOUT + 1, took  # long enough to have been killed without beats
    assert received.count(b"\n") == ROWS + 1, web.log.read_text()[-3000:]
    assert received.endswith(b"\n")
    assert web.workers() == [worker]
    assert "WORKER TIMEOUT" not in web.log.read_text()
