"""A body sent with ``Transfer-Encoding: chunked`` (no Content-Length) is read, under the same
limit as any other: through a real gunicorn (whose ``wsgi.input`` decodes the chunks) a chunked
trade is written, a chunked body of exactly API_MAX_BODY_BYTES is read and one byte more is a
JSON 413. A server that cannot say where such a body ends (Django's development server) answers
a JSON 411 naming the body, never a 400 about a body it did not read."""

import http.client
import json
import os
import select
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from tests.api.test_limits import trade
from tests.factories import make_bot
from tests.ops.servers import free_port, gunicorn_serving
from trading.models import Trade
from trading.services.tokens import bot_token_create

pytestmark = pytest.mark.django_db(transaction=True)

LIMIT = 200_000  # API_MAX_BODY_BYTES for the server under test: quick to send, exact all the same


@pytest.fixture
def gunicorn(tmp_path: Path) -> Iterator[int]:
    """gunicorn on the test database, one worker, API_MAX_BODY_BYTES=LIMIT; its port."""
    db = connection.settings_dict
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    port = free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "atb_site.settings.test",
        "DATABASE_URL": f"postgres://{auth}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "PORT": str(port),
        "WEB_CONCURRENCY": "1",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "API_MAX_BODY_BYTES": str(LIMIT),
    }
    with (
        (tmp_path / "gunicorn.log").open("w") as log,
        gunicorn_serving(env=env, port=port, output=log),
    ):
        yield port


def post_chunked(
    port: int, token: str, body: bytes, host: str = "127.0.0.1", *, late: bool = False
) -> tuple[int, dict[str, str], Any]:
    """POST trades/ with ``body`` in chunks of 64 KiB and no Content-Length. ``late``: as a
    client slowed down between its sends on a loaded machine, each chunk only once the server
    has answered, and the body's end only once the server has reset the connection."""
    conn = http.client.HTTPConnection(host, port, timeout=30)

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(body), 65_536):
            if late:
                wait_for(conn.sock, select.POLLIN)
            yield body[i : i + 65_536]
        if late:
            wait_for(conn.sock, select.POLLHUP)

    try:
        # The server may answer before it has the whole body and close the connection: HTTP
        # allows it (a client "SHOULD monitor the network connection for an error status while
        # it is transmitting", RFC 2616 8.2.2) and Django's development server does it with its
        # 411. The answer is still there to read, as urllib3 reads it; with none, getresponse()
        # below fails.
        with suppress(BrokenPipeError, ConnectionResetError):
            conn.request(
                "POST",
                "/api/v1/trades/",
                body=chunks(),
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
                encode_chunked=True,
            )
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), json.loads(response.read())
    finally:
        conn.close()


def wait_for(sock: Any, event: int) -> None:
    """Until ``sock`` has ``event`` (or an error), for at most 10 s."""
    poll = select.poll()
    poll.register(sock, event)
    poll.poll(10_000)


def padded(size: int) -> bytes:
    core = json.dumps(trade(1)).encode()
    return core + b" " * (size - len(core))


def test_a_chunked_trade_is_written_through_gunicorn(gunicorn: int) -> None:
    token = bot_token_create(bot=make_bot("momentum_001", name="Momentum")).key

    status, _, body = post_chunked(gunicorn, token, json.dumps([trade(1), trade(2)]).encode())

    assert (status, body) == (200, {"created": 2, "updated": 0, "unchanged": 0})
    assert sorted(Trade.objects.values_list("trade_id", flat=True)) == ["L-1", "L-2"]


def test_a_chunked_body_at_the_limit_is_read_one_byte_more_is_a_json_413(gunicorn: int) -> None:
    token = bot_token_create(bot=make_bot("momentum_001", name="Momentum")).key

    over = post_chunked(gunicorn, token, padded(LIMIT + 1))
    at_limit = post_chunked(gunicorn, token, padded(LIMIT))

    assert over[0] == 413
    assert over[1]["Content-Type"] == "application/json"
    assert over[2] == {
        "error": "payload_too_large",
        "detail": f"The body is over {LIMIT} bytes, the most this API reads.",
    }
    assert at_limit[0] == 200, at_limit
    assert list(Trade.objects.values_list("trade_id", flat=True)) == ["L-1"]


@pytest.mark.parametrize("late", [False, True], ids=["body_at_once", "body_after_the_answer"])
def test_a_server_that_cannot_read_chunks_answers_a_json_411(live_server: Any, late: bool) -> None:
    """It answers from the headers alone and closes: a client whose body comes after that (as
    a client slowed down on a loaded machine sends it) still reads the 411."""
    token = bot_token_create(bot=make_bot("momentum_001", name="Momentum")).key
    host, port = live_server.url.removeprefix("http://").rsplit(":", 1)

    status, headers, body = post_chunked(
        int(port), token, json.dumps([trade(1)]).encode(), host, late=late
    )

    assert status == 411
    assert headers["Content-Type"] == "application/json"
    assert body == {
        "error": "length_required",
        "detail": "This server cannot read a chunked body; send it with a Content-Length.",
        "errors": [
            {"field": "body", "reason": "Transfer-Encoding: chunked without a Content-Length"}
        ],
    }
    assert Trade.objects.count() == 0
