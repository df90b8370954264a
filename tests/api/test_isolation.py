"""Who may call what, for every route of the API, taken from the URL resolver.

Each route under /api/v1/ (and /api/schema/, /api/docs/) is called with every method its view
defines, as nobody, as a bot, and as staff. A new endpoint is covered the day it is routed; a
route this test cannot fill (a path parameter it has no value for, a converter it does not
know, a view that is not a DRF view) fails here with a message instead of being skipped.

What a method of a view allows is read from its permission classes: ``IsBot`` (bots only) and
``IsBotOrStaff`` are the only ways to let a bot's token in; any other permission is a staff (or
stricter) endpoint, which a bot's token must find closed (403). Then, per API.md:

- no credentials: 401, everywhere;
- a bot's token on a staff endpoint: 403;
- a bot's token on a path naming another bot's row: 404 (a write whose body is checked before
  the row is looked up may answer 400; it must never succeed);
- a bot's token sending another bot's ``bot_id`` in a body: 403;
- a bot's token reading a list never sees another bot's id, even when it asks for it;
- a staff token on a bot-only endpoint: 403; on any other GET it reads everything.
"""

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import models
from django.test import RequestFactory
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from django.urls.converters import IntConverter, PathConverter, SlugConverter, StringConverter
from django.urls.resolvers import RoutePattern
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.test import APIClient
from rest_framework.views import APIView

from tests.api.conftest import client_with
from tests.api.test_reads import ROW_MAKERS
from trading.api.auth import BotPrincipal
from trading.api.permissions import IsBot, IsBotOrStaff
from trading.models import Bot, Order, Trade
from trading.services.tokens import bot_token_create

pytestmark = pytest.mark.django_db

COVERED_PREFIXES = ("api/v1/", "api/schema/", "api/docs/")
METHODS = ("get", "post", "put", "patch", "delete")
KNOWN_CONVERTERS = (IntConverter, StringConverter, SlugConverter, PathConverter)
PARAMETER = re.compile(r"<(?:(?P<converter>[^>:]+):)?(?P<name>[^>]+)>")
MINE, THEIRS = "momentum_001", "shortseller_001"


# --- The routes -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    route: str  # "api/v1/trades/<int:pk>/"
    callback: Any
    converters: dict[str, Any]

    def __str__(self) -> str:
        return "/" + self.route

    @property
    def view_class(self) -> type[APIView]:
        cls = getattr(self.callback, "cls", None)
        if not (isinstance(cls, type) and issubclass(cls, APIView)):
            pytest.fail(f"{self}: not a DRF APIView; this test can only check DRF views")
        return cls

    @property
    def parameters(self) -> list[tuple[str, str]]:
        return [(m["converter"] or "str", m["name"]) for m in PARAMETER.finditer(self.route)]


def walk(
    patterns: list[Any], prefix: str = "", converters: dict[str, Any] | None = None
) -> Iterator[Route]:
    for pattern in patterns:
        found = {**(converters or {}), **getattr(pattern.pattern, "converters", {})}
        if isinstance(pattern, URLResolver):
            yield from walk(pattern.url_patterns, prefix + str(pattern.pattern), found)
        elif isinstance(pattern, URLPattern):
            yield Route(prefix + str(pattern.pattern), pattern.callback, found)


def api_routes() -> list[Route]:
    routes = [r for r in walk(get_resolver().url_patterns) if r.route.startswith(COVERED_PREFIXES)]
    return sorted(routes, key=str)


def view_methods(route: Route) -> list[str]:
    callback_class = getattr(route.callback, "cls", None)
    if callback_class is None:  # reported by the test, with the route's name
        return ["get"]
    return [m for m in METHODS if hasattr(callback_class, m)]


ROUTES = api_routes()
CASES = [pytest.param(r, m, id=f"{m.upper()} {r}") for r in ROUTES for m in view_methods(r)]


# --- What each method lets in --------------------------------------------------------------------


def make_view(route: Route, method: str, bot: Bot) -> APIView:
    """The route's view as it would be set up for ``bot`` calling with ``method``."""
    view = route.view_class(**getattr(route.callback, "initkwargs", {}))
    view.request = Request(RequestFactory().generic(method.upper(), str(route)))
    view.request.user = BotPrincipal(bot=bot)  # type: ignore[assignment]
    view.args, view.kwargs, view.format_kwarg = (), {}, None
    return view


def permissions(route: Route, method: str, bot: Bot) -> list[Any]:
    return list(make_view(route, method, bot).get_permissions())


def bots_may_call(route: Route, method: str, bot: Bot) -> bool:
    return any(isinstance(p, (IsBot, IsBotOrStaff)) for p in permissions(route, method, bot))


def bots_only(route: Route, method: str, bot: Bot) -> bool:
    return any(isinstance(p, IsBot) for p in permissions(route, method, bot))


# --- Filling a route's path with a row of one bot ------------------------------------------------


@pytest.fixture
def world(bot: Bot, other_bot: Bot) -> dict[str, dict[type[models.Model], models.Model]]:
    """One row of every table the API serves, for each of the two bots."""
    rows: dict[str, dict[type[models.Model], models.Model]] = {MINE: {}, THEIRS: {}}
    for n, (model, make) in enumerate(ROW_MAKERS.items()):
        rows[MINE][model] = make(bot, 2 * n)
        rows[THEIRS][model] = make(other_bot, 2 * n + 1)
    for owner in (bot, other_bot):
        rows[owner.bot_id][Bot] = owner
    return rows


def model_of(route: Route, bot: Bot) -> type[models.Model]:
    view = make_view(route, "get", bot)
    if not isinstance(view, GenericAPIView):
        pytest.fail(f"{route}: an id in the path of a non-generic view; teach fill() its table")
    model: type[models.Model] = view.get_queryset().model
    return model


def fill(route: Route, owner: Bot, world: dict[str, dict[type[models.Model], Any]]) -> str:
    """The route's URL with every path parameter naming a row of ``owner``."""
    rows = world[owner.bot_id]

    def value(match: re.Match[str]) -> str:
        converter, name = match["converter"] or "str", match["name"]
        if not isinstance(route.converters.get(name), KNOWN_CONVERTERS):
            pytest.fail(f"{route}: path converter <{converter}:{name}> is new to this test")
        if name == "bot_id":
            return owner.bot_id
        if name == "client_order_id":
            return str(rows[Order].client_order_id)
        if name == "trade_id":
            return str(rows[Trade].trade_id)
        if name in ("pk", "id"):
            model = model_of(route, owner)
            if model not in rows:
                pytest.fail(f"{route}: no {model._meta.label} row made; add it to ROW_MAKERS")
            return str(rows[model].pk)
        pytest.fail(f"{route}: no value for path parameter <{converter}:{name}>; teach fill()")

    url = "/" + PARAMETER.sub(value, route.route)
    if resolve(url).func is not route.callback:
        pytest.fail(f"{route}: the filled URL {url} resolves to another view")
    return url


def call(client: APIClient, method: str, url: str, body: Any = None) -> Any:
    if method == "get":
        return client.get(url)
    return getattr(client, method)(url, body if body is not None else {}, format="json")


# --- The matrix -----------------------------------------------------------------------------------


def test_the_walk_finds_the_api() -> None:
    found = {str(r) for r in ROUTES}
    for expected in (
        "/api/v1/trades/",
        "/api/v1/trades/<int:pk>/",
        "/api/v1/orders/<int:pk>/",
        "/api/v1/bots/<slug:bot_id>/",
        "/api/v1/risk-events/",
        "/api/v1/system-events/<int:pk>/",
        "/api/schema/",
        "/api/docs/",
    ):
        assert expected in found
    assert "post" in view_methods(next(r for r in ROUTES if str(r) == "/api/v1/trades/"))


@pytest.mark.parametrize(
    ("route", "message"),
    [
        ("api/v1/things/<uuid:pk>/", "path converter <uuid:pk> is new to this test"),
        ("api/v1/things/<str:colour>/", "no value for path parameter <str:colour>"),
    ],
)
def test_a_route_the_matrix_cannot_fill_fails_it_with_a_message(
    route: str, message: str, bot: Bot, world: Any
) -> None:
    pattern = RoutePattern(route)
    unknown = Route(route, lambda request: None, pattern.converters)

    with pytest.raises(pytest.fail.Exception, match=re.escape(message)):
        fill(unknown, bot, world)


def test_a_view_that_is_not_a_drf_view_fails_the_matrix() -> None:
    plain = Route("api/v1/plain/", lambda request: None, {})

    with pytest.raises(pytest.fail.Exception, match="not a DRF APIView"):
        assert plain.view_class


@pytest.mark.parametrize(("route", "method"), CASES)
def test_without_credentials_every_route_is_401(
    route: Route, method: str, bot: Bot, other_bot: Bot, world: Any
) -> None:
    assert route.view_class  # fails with a message for a view this test cannot read
    url = fill(route, other_bot, world) if route.parameters else str(route)

    response = call(APIClient(), method, url)

    if url == "/api/docs/":  # a page for people: the login page, then back (issue 16, item 6)
        assert (response.status_code, response["Location"]) == (302, f"/admin/login/?next={url}")
        return
    assert response.status_code == 401, f"{method.upper()} {url}: {response.status_code}"


@pytest.mark.parametrize(("route", "method"), CASES)
def test_a_bots_token_reaches_only_its_own_bot(
    route: Route, method: str, bot: Bot, other_bot: Bot, world: Any
) -> None:
    client = client_with(bot_token_create(bot=bot).key)
    where = f"{method.upper()} {route}"

    if not bots_may_call(route, method, bot):
        url = fill(route, bot, world) if route.parameters else str(route)
        response = call(client, method, url)
        assert response.status_code == 403, f"{where} is staff-only: {response.status_code}"
        return

    if route.parameters:
        before = theirs_as_stored(world)
        foreign = call(client, method, fill(route, other_bot, world))
        allowed = {404} if method == "get" else {404, 400}
        assert foreign.status_code in allowed, f"{where} on {THEIRS}'s row: {foreign.status_code}"
        assert THEIRS not in foreign.content.decode()
        assert theirs_as_stored(world) == before, f"{where} changed {THEIRS}'s rows"

    url = fill(route, bot, world) if route.parameters else str(route)
    if method == "get":
        for params in ("", f"?bot_id={THEIRS}"):
            response = client.get(url + params)
            assert response.status_code < 500, f"{where}{params}: {response.status_code}"
            assert THEIRS not in response.content.decode(), f"{where}{params} shows {THEIRS}"
    else:
        answers = [call(client, method, url, body).status_code for body in _foreign_bodies()]
        assert 403 in answers and not any(200 <= a < 300 for a in answers), (
            f"{where} with bot_id={THEIRS} in the body answered {answers}; API.md says 403"
        )


@pytest.mark.parametrize(("route", "method"), CASES)
def test_a_staff_token_reads_everything_and_cannot_write_as_a_bot(
    route: Route,
    method: str,
    bot: Bot,
    other_bot: Bot,
    world: Any,
    staff_client: APIClient,
    staff_user: User,
) -> None:
    url = fill(route, other_bot, world) if route.parameters else str(route)
    where = f"{method.upper()} {url}"

    if bots_only(route, method, bot):
        response = call(staff_client, method, url)
        assert response.status_code == 403, f"{where} is for bots only: {response.status_code}"
    elif method == "get":
        response = staff_client.get(url)
        assert response.status_code not in (401, 403, 404), f"{where}: {response.status_code}"


def theirs_as_stored(world: dict[str, dict[type[models.Model], Any]]) -> list[Any]:
    """Every column of the other bot's rows, and how many rows each of its tables holds."""
    rows = world[THEIRS]
    return [
        (
            list(model._default_manager.filter(pk=row.pk).values()),
            model._default_manager.filter(bot=rows[Bot]).count() if model is not Bot else 1,
        )
        for model, row in rows.items()
    ]


def _foreign_bodies() -> list[Any]:
    """Another bot's id, as one item and as a batch (an endpoint takes one shape or both)."""
    return [{"bot_id": THEIRS}, [{"bot_id": THEIRS}]]


CALENDAR_ENDS = [
    "0001-01-01T00:00:00Z",
    "0001-01-01T00:00:00+01:00",  # before the first moment Python can hold
    "9999-12-31T23:59:59Z",
    "9999-12-31T23:59:59.999999Z",
    "9999-12-31T23:59:59-01:00",  # after the last
]
GET_ROUTES = [pytest.param(r, id=str(r)) for r in ROUTES if "get" in view_methods(r)]


@pytest.mark.parametrize("route", GET_ROUTES)
def test_the_ends_of_the_calendar_in_any_time_parameter_are_never_a_500(
    route: Route, other_bot: Bot, world: Any, staff_client: APIClient
) -> None:
    url = fill(route, other_bot, world) if route.parameters else str(route)
    first, last = CALENDAR_ENDS[0], CALENDAR_ENDS[3]
    # Every name a read takes a moment in (API.md), alone or beside the other end's extreme; a
    # route without one ignores it or says 400.
    for moment in CALENDAR_ENDS:
        for query in (
            {"since": moment},
            {"until": moment},
            {"start": moment, "end": last},
            {"start": first, "end": moment},
        ):
            query.update(symbol="BTC/USDT", exchange="binance", timeframe="1h")

            response = staff_client.get(url, query)

            assert response.status_code < 500, f"GET {url} {query}: {response.content[:300]!r}"
            if response.status_code == 400:
                assert response.json()["errors"], response.content
