"""The trading admin's list rows, written in one pass (trading/admin_rows.py), are the HTML
Django's admin writes for them (``items_for_result``), cell for cell."""

import re
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.admin.templatetags.admin_list import results
from django.contrib.admin.views.main import ChangeList
from django.contrib.auth.models import Permission, User
from django.db import models
from django.test import Client, RequestFactory
from django.urls import resolve
from django.utils import translation

from tests.factories import (
    T0,
    make_balance,
    make_bot,
    make_candle,
    make_closed_trade,
    make_order,
    make_position,
    make_signal,
    make_trade,
)
from trading import display
from trading.admin_rows import fast_results
from trading.models import (
    AccountBalance,
    MarketData,
    Order,
    Position,
    RiskMetric,
    RiskMetricsBacklog,
    Signal,
    Trade,
)
from trading.templatetags import trading_admin

pytestmark = pytest.mark.django_db

AWKWARD = "<b>&\"'</b> é"
LISTED: list[type[models.Model]] = [
    Trade,
    Order,
    Position,
    Signal,
    AccountBalance,
    MarketData,
    RiskMetric,
    RiskMetricsBacklog,
]


def fill(bot: Any) -> None:
    # Midnight, noon, on the hour, a.m. and p.m., with and without microseconds; blank and
    # awkward text; negative, zero, null and grouped-size decimals.
    moments = [
        T0.replace(hour=0, minute=0),
        T0.replace(hour=12, minute=0),
        T0.replace(hour=9, minute=5, microsecond=7),
        T0.replace(hour=23, minute=59, second=59),
        T0.replace(hour=15, minute=0) + timedelta(days=40),
    ]
    position = make_position(bot, symbol=AWKWARD, opened_at=moments[2])
    for n, moment in enumerate(moments):
        make_trade(
            bot,
            trade_id=f"{AWKWARD}{n}",
            entry_time=moment,
            quantity=Decimal("1234567.5"),
            exit_reason="  ",
            position=position if n else None,
        )
        make_signal(bot, generated_at=moment, symbol=AWKWARD, validated=bool(n % 2))
        make_balance(bot, ts=moment, unrealized_pnl_usd=Decimal(-n) / 2, available_margin_usd=None)
        make_candle(
            ts=moment, symbol=f"{bot.bot_id}/USDT", low=Decimal("0.0000000001"), volume=Decimal(0)
        )
    make_closed_trade(bot, pnl_usd=Decimal("-488.12345678"), exit_time=moments[4])
    make_order(bot, price=None, symbol="", client_order_id=f"{bot.bot_id}-a")
    make_order(bot, status="filled", exchange_order_id=AWKWARD)
    RiskMetric.objects.create(
        bot=bot, date=T0.date(), computed_at=moments[1], net_pnl_usd=Decimal("-12.5")
    )
    RiskMetricsBacklog.objects.create(bot=bot, since=T0.date(), marked_at=moments[0])


def changelist(
    model: type[models.Model], user: User, query: str = "", *, django: bool = False
) -> Any:
    """The list's ChangeList; with ``django``, Django's own (model instances as its rows)."""
    opts = model._meta
    request = RequestFactory().get(f"/admin/{opts.app_label}/{opts.model_name}/{query}")
    request.user = user
    request.resolver_match = resolve(request.path)
    model_admin = admin.site._registry[model]
    if django:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(model_admin, "get_changelist", lambda request, **kwargs: ChangeList)
            cl = model_admin.get_changelist_instance(request)
    else:
        cl = model_admin.get_changelist_instance(request)
    cl.formset = None  # as changelist_view sets it on a page with no editable column
    return cl


def django_rows(model: type[models.Model], user: User, query: str = "") -> list[str]:
    """The rows as Django's admin writes them, from its own ChangeList."""
    return as_html(results(changelist(model, user, query, django=True)))


def as_html(rows: Any) -> list[str]:
    return ["".join(str(cell) for cell in row) for row in rows]


@pytest.mark.parametrize("model", LISTED, ids=lambda m: m.__name__)
@pytest.mark.parametrize("language", ["en-us", "de"])
def test_rows_are_the_html_django_writes(model: type[models.Model], language: str) -> None:
    user = User.objects.create_superuser("root", "root@example.com", "pw")
    fill(make_bot("alpha_1", name=AWKWARD))

    with translation.override(language):
        cl = changelist(model, user)
        fast = fast_results(cl)

        assert fast is not None, "written by trading.admin_rows, not left to Django"
        assert len(fast) == len(cl.result_list) > 0
        assert as_html(fast) == django_rows(model, user)


def test_a_filtered_list_links_rows_with_its_filters(superuser: User) -> None:
    bot = make_bot("alpha_1")
    fill(bot)
    cl = changelist(Trade, superuser, "?status=open&entry_time__since=2026-01-05")
    fast = fast_results(cl)

    assert fast is not None
    assert len(fast) == 5
    assert as_html(fast) == django_rows(
        Trade, superuser, "?status=open&entry_time__since=2026-01-05"
    )
    assert "?_changelist_filters=status%3Dopen%26entry_time__since%3D2026-01-05" in as_html(fast)[0]


def test_a_list_with_a_callable_column_is_left_to_django(superuser: User) -> None:
    from trading.models import ApiToken

    assert ApiToken in admin.site._registry
    request = RequestFactory().get("/admin/x/")
    request.user = superuser
    cl = admin.site._registry[ApiToken].get_changelist_instance(request)
    cl.formset = None

    assert fast_results(cl) is None


def test_the_trade_list_page_shows_the_rows(superuser: User) -> None:
    fill(make_bot("alpha_1"))
    client = Client()
    client.force_login(superuser)

    page = client.get("/admin/trading/trade/").content.decode()

    assert page.count('<tr><th class="field-id"><a href="/admin/trading/trade/') == 6
    assert "&lt;b&gt;&amp;&quot;&#x27;&lt;/b&gt; é0" in page
    # One timestamp format everywhere (docs/DESIGN.md, "Numbers a desk can read").
    assert "2026-01-05 00:00:00 UTC" in page and "2026-02-14 15:00:00 UTC" in page
    assert display.moment(T0.replace(hour=9, minute=5, microsecond=7)) in page


@pytest.mark.parametrize("model", LISTED, ids=lambda m: m.__name__)
def test_a_list_page_runs_the_same_queries_for_few_rows_or_many(
    model: type[models.Model], superuser: User, django_assert_num_queries: Any
) -> None:
    opts = model._meta
    url = f"/admin/{opts.app_label}/{opts.model_name}/"
    client = Client()
    client.force_login(superuser)
    fill(make_bot("alpha_1"))
    client.get(url)  # the session and the content types

    # The session, the user, the bots of the bot filter (the backlog's and the candles' lists
    # have none), the capped count and the page with each row's bot id: no query per row.
    queries = 4 if model in (RiskMetricsBacklog, MarketData) else 5
    with django_assert_num_queries(queries):
        few = client.get(url)
    fill(make_bot("beta_2"))
    fill(make_bot("gamma_3"))
    with django_assert_num_queries(queries) as many:
        more = client.get(url)

    assert len(more.context["cl"].result_list) > len(few.context["cl"].result_list) > 0
    page = [q["sql"] for q in many.captured_queries][-1]
    assert "metadata" not in page  # the bots' (and rows') JSON columns are not loaded


def without_csrf(page: bytes) -> str:
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]*"', "", page.decode())


def test_the_sidebar_kept_is_the_one_django_writes_for_that_user_and_page(
    superuser: User,
) -> None:
    fill(make_bot("alpha_1"))
    clerk = User.objects.create_user("clerk", password="pw", is_staff=True)
    clerk.user_permissions.add(Permission.objects.get(codename="view_trade"))
    boss, limited = Client(), Client()
    boss.force_login(superuser)
    limited.force_login(clerk)

    trading_admin._SIDEBARS.clear()
    written = without_csrf(boss.get("/admin/trading/trade/").content)
    kept = without_csrf(boss.get("/admin/trading/trade/").content)
    orders = without_csrf(boss.get("/admin/trading/order/").content)
    clerks = without_csrf(limited.get("/admin/trading/trade/").content)

    assert kept == written
    assert 'class="model-order current-model"' in orders
    assert 'class="model-trade current-model"' in written
    assert 'class="model-order"' in written
    # Another user on the same page: the sidebar of what that user may see.
    assert 'class="model-trade current-model"' in clerks
    assert 'class="model-order' not in clerks
    assert len(trading_admin._SIDEBARS) == 3
