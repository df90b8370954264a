"""What the audit still found refused without a field, each now a 400 (or a JSON 404) naming it,
with nothing written:

- a NUL in a JSON field, in a value or a key (PostgreSQL's jsonb holds none);
- a number in a JSON field beyond what PostgreSQL's numeric holds: 131072 digits before the
  point, 16383 after (jsonb numbers are numeric; the boundaries below are PostgreSQL's own,
  probed on 15 and 18);
- a NUL or an invisible character in a URL's identifier (``orders/{client_order_id}/fills/``),
  and every unknown /api/ URL a JSON 404;
- fees that make pnl_pct overflow blame fees_usd, not entry_price.
"""

import json
from typing import Any

import pytest
from rest_framework.test import APIClient

from tests.api.test_bad_text_and_numbers import (
    INVISIBLE_REASON,
    JSON_FIELDS,
    ROUTES,
    closed,
    pair_ids,
    refused,
    state,
)
from tests.api.test_limits import trade
from tests.api.test_writes import fill, order
from trading.models import Bot, Order, OrderFill, Trade

pytestmark = pytest.mark.django_db

NUMBER = "\u2603NUMBER\u2603"  # a placeholder string, replaced by a JSON number's text


def send_text(client: APIClient, route: str, field: str, inner: Any, number: str = "") -> Any:
    """The route's valid item with ``inner`` in ``field`` (wrapped in a list for a list
    field), ``NUMBER`` in it replaced by ``number`` as a JSON number literal."""
    url, shape, valid, takes_batch = ROUTES[route]
    value = [inner] if shape.fields[field].kind == "list" else inner
    item = valid() | {field: value}
    body = json.dumps([item] if takes_batch else item, ensure_ascii=True)
    body = body.replace(json.dumps(NUMBER), number)
    return client.post(url, body, content_type="application/json")


@pytest.fixture
def stored_order(bot_client: APIClient) -> None:
    assert bot_client.post("/api/v1/orders/", order(1), format="json").status_code == 200


# --- NUL in a JSON field ------------------------------------------------------------------------

NUL_PLACES = {
    "value": {"a": "x\x00y"},
    "key": {"\x00": 1},
    "deep-key": {"a": [1, {"b\x00": "ok"}]},
    "deep-value": {"a": [1, {"b": ["ok", "\x00"]}]},
}


@pytest.mark.usefixtures("stored_order")
@pytest.mark.parametrize(("route", "field"), JSON_FIELDS, ids=pair_ids(JSON_FIELDS))
@pytest.mark.parametrize("where", list(NUL_PLACES))
def test_a_nul_anywhere_in_a_json_field_is_a_400_naming_it(
    route: str, field: str, where: str, bot: Bot, bot_client: APIClient
) -> None:
    before = state(bot)

    response = send_text(bot_client, route, field, NUL_PLACES[where])

    error = refused(response, route, field)
    assert error["reason"] == "may not contain NUL characters"
    assert state(bot) == before


@pytest.mark.usefixtures("stored_order")
@pytest.mark.parametrize(("route", "field"), JSON_FIELDS, ids=pair_ids(JSON_FIELDS))
def test_the_text_backslash_u0000_is_not_a_nul_and_is_stored(
    route: str, field: str, bot_client: APIClient
) -> None:
    response = send_text(bot_client, route, field, {"\\u0000": "\\u0000"})

    assert response.status_code == 200, response.content


# --- numbers beyond PostgreSQL's numeric --------------------------------------------------------

NUMBER_REASON = (
    "holds a number PostgreSQL cannot store: at most 131072 digits before the point and 16383 after"
)
BEYOND = {
    "huge": "1e131072",
    "huge-negative": "-1e131072",
    "audit": "1e999999",
    "tiny": "1e-16384",
    "tiny-with-two-digits": "1.5e-16383",
    "zero-too-precise": "0e-16384",
}
AT_LIMIT = {"huge": "9.9e131071", "tiny": "1e-16383", "zero": "0e-16383"}


@pytest.mark.usefixtures("stored_order")
@pytest.mark.parametrize(("route", "field"), JSON_FIELDS, ids=pair_ids(JSON_FIELDS))
@pytest.mark.parametrize("number", list(BEYOND.values()), ids=list(BEYOND))
def test_a_number_beyond_postgresql_s_numeric_in_a_json_field_is_a_400_naming_it(
    route: str, field: str, number: str, bot: Bot, bot_client: APIClient
) -> None:
    before = state(bot)

    response = send_text(bot_client, route, field, {"a": [1, {"b": NUMBER}]}, number)

    error = refused(response, route, field)
    assert error["reason"] == NUMBER_REASON
    assert state(bot) == before


@pytest.mark.usefixtures("stored_order")
@pytest.mark.parametrize(("route", "field"), JSON_FIELDS, ids=pair_ids(JSON_FIELDS))
def test_numbers_at_postgresql_s_limits_in_a_json_field_are_stored(
    route: str, field: str, bot_client: APIClient
) -> None:
    for number in AT_LIMIT.values():
        response = send_text(bot_client, route, field, {"a": NUMBER}, number)

        assert response.status_code == 200, (number, response.content[:300])


# --- identifiers in the URL ---------------------------------------------------------------------


@pytest.mark.usefixtures("stored_order")
@pytest.mark.parametrize(
    ("path_id", "reason"),
    [
        ("O%001", "may not contain NUL characters"),
        ("O-1%E2%80%8B", INVISIBLE_REASON),
        ("O-1%09", INVISIBLE_REASON),
        ("%20O-1", "may not begin or end with a space"),
        ("O" * 129, "must be at most 128 characters"),
    ],
    ids=["nul", "zero-width-space", "tab", "edge-space", "too-long"],
)
def test_a_bad_client_order_id_in_the_fills_url_is_a_400_naming_it(
    path_id: str, reason: str, bot_client: APIClient
) -> None:
    response = bot_client.post(f"/api/v1/orders/{path_id}/fills/", [fill(1)], format="json")

    assert response.status_code == 400, response.content
    assert response.json() == {
        "error": "invalid",
        "detail": "The request is invalid; nothing was written.",
        "errors": [{"field": "client_order_id", "reason": reason}],
    }
    assert OrderFill.objects.count() == 0
    assert Order.objects.count() == 1


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/bots/%ED%A0%80/summary/",
        "/api/v1/bots/a%00b/",
        "/api/v1/trades/abc/",
        "/api/v1/no-such-resource/",
        "/api/nothing",
    ],
)
def test_every_unknown_api_url_is_a_json_404(path: str, bot_client: APIClient) -> None:
    response = bot_client.get(path)

    assert response.status_code == 404
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == {"error": "not_found", "detail": "No API endpoint at this URL."}


def test_an_unknown_page_outside_the_api_stays_html(client: Any) -> None:
    response = client.get("/no-such-page/")

    assert response.status_code == 404
    assert response.headers["Content-Type"].startswith("text/html")


# --- the field to blame for an overflow of the computed figures ----------------------------------

PNL_PCT_BY_FEES = (
    "makes pnl_pct (pnl_usd / (quantity x entry_price) x 100) overflow the 6 digits before "
    "the point it can hold"
)


def test_fees_that_make_pnl_pct_overflow_are_blamed(bot_client: APIClient) -> None:
    body = closed(quantity="1", entry_price="1", exit_price="1", fees_usd="999999999999.99999999")

    response = bot_client.post("/api/v1/trades/", body, format="json")

    assert response.status_code == 400, response.content
    assert response.json()["errors"] == [{"field": "fees_usd", "reason": PNL_PCT_BY_FEES}]
    assert Trade.objects.count() == 0


def test_fees_that_make_pnl_usd_overflow_are_blamed(bot_client: APIClient) -> None:
    body = closed(
        quantity="1",
        entry_price="500000000000",
        exit_price="1",
        fees_usd="999999999999.99999999",
    )

    response = bot_client.post("/api/v1/trades/", body, format="json")

    assert response.status_code == 400, response.content
    assert response.json()["errors"] == [
        {
            "field": "fees_usd",
            "reason": "makes pnl_usd ((exit_price - entry_price) x quantity - fees_usd) overflow "
            "the 12 digits before the point it can hold",
        }
    ]
    assert Trade.objects.count() == 0


def test_a_batch_lists_a_bad_json_field_among_every_other_error(bot_client: APIClient) -> None:
    """The parser finds the unstorable number and the NUL; the Shape names them with the rest."""
    items = [
        trade(1) | {"strategy_data": {"a": NUMBER}},
        trade(2) | {"symbol": "BTC\x00USDT"},
        trade(3) | {"strategy_data": {"\x00": 1}, "quantity": "-1"},
        trade(4) | {"quantity": NUMBER},
    ]
    body = json.dumps(items).replace(json.dumps(NUMBER), "1e999999")

    response = bot_client.post("/api/v1/trades/", body, content_type="application/json")

    assert response.status_code == 400, response.content
    assert response.json()["errors"] == [
        {"index": 0, "field": "strategy_data", "reason": NUMBER_REASON},
        {"index": 1, "field": "symbol", "reason": "may not contain NUL characters"},
        {"index": 2, "field": "quantity", "reason": "must be greater than 0"},
        {"index": 2, "field": "strategy_data", "reason": "may not contain NUL characters"},
        {"index": 3, "field": "quantity", "reason": "must have at most 18 digits before the point"},
    ]
    assert Trade.objects.count() == 0
