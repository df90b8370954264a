"""The trading admin's list pages, their filters written in one pass (trading/templatetags/
trading_admin.py, trading/admin.py's BotFilter) and the admin's app list kept once built
(atb_site/admin_tools.py's AdminSite), are the pages Django's admin writes, byte for byte: each
page is compared whole with the page Django's own templates, filter and app list write."""

import difflib
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib import admin
from django.contrib.admin import AdminSite, RelatedFieldListFilter
from django.contrib.admin.views.main import ChangeList
from django.contrib.auth.models import AnonymousUser, Group, Permission, User
from django.db import models
from django.db.models import Count
from django.template import Context as TemplateContext
from django.template import Template
from django.test import Client, RequestFactory, override_settings
from django.utils import timezone, translation
from django.utils.safestring import SafeString

from atb_site.admin_tools import AdminSite as KeptAppListSite
from atb_site.admin_tools import CappedCountPaginator
from tests.factories import T0, make_bot, make_trade
from tests.test_admin_rows import AWKWARD, LISTED, fill
from trading import admin_html
from trading.admin import BotFilter, one_value_links
from trading.models import Trade

pytestmark = pytest.mark.django_db


def assert_same(ours: str, theirs: str) -> None:
    """The pages are the same; else where they part (ours +, Django's -)."""
    if ours != theirs:
        lines = difflib.unified_diff(theirs.splitlines(), ours.splitlines(), lineterm="", n=2)
        pytest.fail("\n".join(list(lines)[:60]))


def without_csrf(page: bytes) -> str:
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]*"', "", page.decode())


def django_admin(monkeypatch: pytest.MonkeyPatch) -> None:
    """Django's own list page: its change_list.html, ChangeList, bot filter and app list."""
    for model_admin in admin.site._registry.values():
        if model_admin.opts.app_label == "trading":
            monkeypatch.setattr(model_admin, "change_list_template", "admin/change_list.html")
            monkeypatch.setattr(model_admin, "get_changelist", lambda request, **kw: ChangeList)
        filters = [
            (spec[0], RelatedFieldListFilter)
            if isinstance(spec, tuple) and spec[1] is BotFilter
            else spec
            for spec in model_admin.list_filter
        ]
        monkeypatch.setattr(model_admin, "list_filter", tuple(filters))
    site = admin.site
    monkeypatch.setattr(
        site,
        "get_app_list",
        lambda request, app_label=None: AdminSite.get_app_list(site, request, app_label),
    )


def both_pages(
    client: Client, url: str, language: str, monkeypatch: pytest.MonkeyPatch
) -> tuple[str, str]:
    with translation.override(language):
        client.get(url)  # the kept app list and sidebar written
        page = client.get(url)
        with monkeypatch.context() as patch:
            django_admin(patch)
            django_page = client.get(url)
    assert page.status_code == django_page.status_code == 200
    ours, theirs = without_csrf(page.content), without_csrf(django_page.content)
    return ours, theirs


@pytest.fixture
def bots() -> None:
    for n in range(12):
        make_bot(f"bot_{n:02d}", name=AWKWARD)
    fill(make_bot("alpha_1"))


@pytest.mark.parametrize("model", LISTED, ids=lambda m: m.__name__)
@pytest.mark.parametrize("language", ["en-us", "de"])
def test_a_list_page_is_the_page_django_writes(
    model: type[models.Model], language: str, superuser: User, bots: None, monkeypatch: Any
) -> None:
    client = Client()
    client.force_login(superuser)
    url = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"

    ours, theirs = both_pages(client, url, language, monkeypatch)

    assert_same(ours, theirs)
    assert ('id="changelist-filter"' in ours) == bool(admin.site._registry[model].list_filter)


FILTERED = (
    "?bot__bot_id__exact=alpha_1&status=open&side__exact=buy&symbol=%3Cb%3E%26%C3%A9"
    "&entry_time__since=2026-01-05&entry_time__until=2026-03-01&o=-10"
)


@pytest.mark.parametrize("language", ["en-us", "de"])
def test_a_filtered_list_page_is_the_page_django_writes(
    language: str, superuser: User, bots: None, monkeypatch: Any
) -> None:
    client = Client()
    client.force_login(superuser)

    ours, theirs = both_pages(client, f"/admin/trading/trade/{FILTERED}", language, monkeypatch)

    assert_same(ours, theirs)
    # The chosen bot, and every other bot's link keeping the other filters.
    assert '<li class="selected">\n    <a href="?bot__bot_id__exact=alpha_1&amp;' in ours
    assert (
        '<a href="?bot__bot_id__exact=bot_03&amp;entry_time__since=2026-01-05&amp;'
        "entry_time__until=2026-03-01&amp;o=-10&amp;side__exact=buy&amp;status=open&amp;"
        'symbol=%3Cb%3E%26%C3%A9">bot_03</a>'
    ) in ours


def test_a_nullable_bot_filter_is_the_one_django_writes(
    superuser: User, bots: None, monkeypatch: Any
) -> None:
    client = Client()
    client.force_login(superuser)

    ours, theirs = both_pages(
        client, "/admin/trading/apitoken/?bot__isnull=True", "en-us", monkeypatch
    )

    assert_same(ours, theirs)
    assert '<li class="selected">\n    <a href="?bot__isnull=True">-</a></li>' in ours


def test_a_clerk_sees_what_a_clerk_may_see(superuser: User, bots: None, monkeypatch: Any) -> None:
    clerk = User.objects.create_user("clerk", password="pw", is_staff=True)
    clerk.user_permissions.add(Permission.objects.get(codename="view_trade"))
    limited, boss = Client(), Client()
    limited.force_login(clerk)
    boss.force_login(superuser)
    boss.get("/admin/trading/order/")  # the superuser's app list kept first

    ours, theirs = both_pages(limited, "/admin/trading/trade/", "en-us", monkeypatch)

    assert_same(ours, theirs)
    assert 'class="model-trade current-model"' in ours
    assert "/admin/trading/order/" not in ours
    assert limited.get("/admin/trading/order/").status_code == 403
    # The same permissions through a group: the same page.
    assert limited.get("/admin/").status_code == 200


def app_lists(request: Any) -> tuple[Any, Any]:
    return admin.site.get_app_list(request), AdminSite.get_app_list(admin.site, request)


def test_the_app_list_kept_is_the_one_django_builds_for_those_permissions(
    superuser: User,
) -> None:
    clerk = User.objects.create_user("clerk", password="pw", is_staff=True)
    clerk.user_permissions.add(Permission.objects.get(codename="view_trade"))
    grouped = User.objects.create_user("grouped", password="pw", is_staff=True)
    group = Group.objects.create(name="traders")
    group.permissions.add(*Permission.objects.filter(codename__in=["view_order", "add_apitoken"]))
    grouped.groups.add(group)
    gone = User.objects.create_superuser("gone", "gone@example.com", "pw")
    gone.is_active = False
    gone.save()
    site = admin.site
    assert isinstance(site, KeptAppListSite)
    site._app_lists.clear()

    seen = []
    users: list[User | AnonymousUser] = [superuser, clerk, grouped, gone, AnonymousUser()]
    for user in [*users, superuser, clerk]:
        for language in ["en-us", "de"]:
            with translation.override(language):
                request = RequestFactory().get("/admin/")
                request.user = User.objects.get(pk=user.pk) if user.pk else user
                kept, built = app_lists(request)
                assert kept == built
                seen.append(
                    [(app["app_label"], [m["object_name"] for m in app["models"]]) for app in kept]
                )

    assert len(site._app_lists) == 8  # 4 sets of permissions x 2 languages
    assert seen[2] == [("trading", ["Trade"])] and seen[3] == [("trading", ["Trade"])]
    assert seen[4] == [("trading", ["ApiToken", "Order"])]
    assert seen[6] == seen[8] == []  # inactive, anonymous
    assert len(seen[0]) > 3 and seen[0] == seen[10]


def test_a_kept_app_list_is_a_copy_its_callers_may_change(superuser: User) -> None:
    request = RequestFactory().get("/admin/")
    request.user = superuser
    first = admin.site.get_app_list(request)
    first[0]["models"].clear()
    first.pop()

    assert admin.site.get_app_list(request) == AdminSite.get_app_list(admin.site, request)


@pytest.mark.parametrize("url", ["/admin/", "/admin/trading/"])
def test_the_index_pages_are_the_ones_django_writes(
    url: str, superuser: User, monkeypatch: Any
) -> None:
    client = Client()
    client.force_login(superuser)

    ours, theirs = both_pages(client, url, "de", monkeypatch)

    assert_same(ours, theirs)


@pytest.mark.parametrize(
    "query",
    [
        "",
        "?bot__isnull=True",
        "?bot__bot_id__contains=%C3%A9+%26&entry_tag=a&entry_tag=b%2Fc&status=open"
        "&bot__bot_id__exact=x&o=-10",
        "?bot__bot_id__exact=y&bot__bot_id__exact=z&bot__isnull=False&symbol=%2B",
    ],
)
def test_the_bot_links_are_the_query_strings_django_writes(superuser: User, query: str) -> None:
    request = RequestFactory().get(f"/admin/trading/trade/{query}")
    request.user = superuser
    cl = admin.site._registry[Trade].get_changelist_instance(request)
    key, remove = "bot__bot_id__exact", ["bot__isnull"]
    link = one_value_links(cl, key, remove)

    for value in ["alpha_1", "a b&c=d/é+%", "", 7]:
        assert link(value) == cl.get_query_string({key: value}, remove)


@pytest.mark.parametrize("zone", ["America/New_York", "Asia/Kolkata"])
def test_a_list_page_in_another_time_zone_is_the_page_django_writes(
    zone: str, superuser: User, bots: None, monkeypatch: Any
) -> None:
    client = Client()
    client.force_login(superuser)

    with timezone.override(zone):
        ours, theirs = both_pages(client, "/admin/trading/trade/", "de", monkeypatch)
    in_utc, _ = both_pages(client, "/admin/trading/trade/", "de", monkeypatch)

    assert_same(ours, theirs)
    assert ours != in_utc  # the times shown in the zone


def test_the_trade_list_page_runs_the_same_queries_for_anyone_and_any_filter(
    superuser: User, bots: None, django_assert_num_queries: Any
) -> None:
    clerk = User.objects.create_user("clerk", password="pw", is_staff=True)
    clerk.user_permissions.add(Permission.objects.get(codename="view_trade"))
    boss, limited = Client(), Client()
    boss.force_login(superuser)
    limited.force_login(clerk)
    boss.get("/admin/trading/trade/")
    limited.get("/admin/trading/trade/")

    # The session, the user, the bots of the bot filter, the capped count and the page.
    with django_assert_num_queries(5):
        boss.get(f"/admin/trading/trade/{FILTERED}")
    # And the clerk's permissions, their own and their groups': read once for the page.
    with django_assert_num_queries(7) as clerks:
        page = limited.get(f"/admin/trading/trade/{FILTERED}")

    assert page.status_code == 200
    sql = [q["sql"] for q in clerks.captured_queries]
    assert sum("auth_permission" in q for q in sql) == 2
    assert "JOIN" not in sql[-1] and '"metadata"' not in sql[-1]  # a bot is its key: no join


@pytest.mark.parametrize(
    "value",
    [
        "?bot__bot_id__exact=alpha_1&status=open",
        "?bot__bot_id__exact=a+b%26c%3Dd%2F%C3%A9%2B%25",
        "?q=é&x=<b>\"'",
        "?a=1 2",
        "",
        SafeString("?a=1&b=<i>"),
        7,
    ],
)
def test_a_link_is_written_as_the_iriencode_filter_writes_it(value: Any) -> None:
    """The filters' ``{{ choice.query_string|iriencode }}``, a plain query string written
    without iri_to_uri (which leaves it as it is) and anything else through it."""
    django_writes = Template("{{ value|iriencode }}").render(TemplateContext({"value": value}))

    assert admin_html._iri(value) == django_writes


def test_a_template_put_before_djangos_is_seen_and_forgotten_with_the_settings(
    tmp_path: Path,
) -> None:
    (tmp_path / "admin").mkdir()
    (tmp_path / "admin" / "filter.html").write_text("{{ title }}")
    engine: dict[str, Any] = dict(settings.TEMPLATES[0])
    engine["DIRS"] = [tmp_path, *list(engine["DIRS"])]

    assert admin_html.django_template("admin/filter.html")  # found once, and kept
    with override_settings(TEMPLATES=[engine]):
        assert not admin_html.django_template("admin/filter.html")  # ours: Django's left alone
    assert admin_html.django_template("admin/filter.html")


def test_the_capped_count_is_the_count_django_makes_with_one_statement(
    django_assert_num_queries: Any,
) -> None:
    alpha, beta = make_bot("alpha_1", name="Alpha"), make_bot("beta_1", name=AWKWARD)
    for i in range(7):
        make_trade(alpha if i % 3 else beta, entry_time=T0 + timedelta(minutes=i))
    querysets = [
        Trade.objects.all(),  # past the cap
        Trade.objects.filter(bot=beta),  # under it
        Trade.objects.filter(bot__name__contains="Alp").only("id", "symbol"),  # a join
        Trade.objects.filter(bot=alpha).distinct(),  # DISTINCT: Django's own count
        Trade.objects.values("bot_id").annotate(n=Count("id")),  # grouped: Django's own count
    ]
    seen = []
    for queryset in querysets:
        paginator = CappedCountPaginator(queryset.order_by("-id"), 2)
        paginator.count_cap = 5
        with django_assert_num_queries(1) as captured:
            seen.append(paginator.rows_seen)
        assert seen[-1] == queryset.order_by()[:6].count()
        assert "LIMIT 6" in captured.captured_queries[0]["sql"]

    assert seen == [6, 3, 4, 4, 2]
