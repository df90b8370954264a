"""The trading admin's read-only list pages written in one pass (trading/admin_page.py) are the
pages Django's templates write, byte for byte, in the cases the other page tests do not reach:
messages, a right-to-left language, a user's own name and no usable password, a page past the
first, a filter that finds nothing; and a page it does not write (a popup) is rendered by the
templates. tests/test_admin_pages.py compares the rest (every list, two languages, filters, a
clerk, time zones)."""

from typing import Any

import pytest
from django.contrib import messages
from django.contrib.auth.models import User
from django.contrib.messages.storage.base import Message
from django.contrib.messages.storage.cookie import CookieStorage
from django.test import Client, RequestFactory
from django.utils import translation
from django.utils.safestring import mark_safe

from tests.factories import make_bot
from tests.test_admin_pages import assert_same, both_pages, django_admin, without_csrf
from tests.test_admin_rows import AWKWARD, fill

pytestmark = pytest.mark.django_db

TRADES = "/admin/trading/trade/"


@pytest.fixture
def bots() -> None:
    for n in range(3):
        make_bot(f"bot_{n:02d}", name=AWKWARD)
    fill(make_bot("alpha_1"))


def written(client: Client, url: str) -> bool:
    """Whether the page came from trading.admin_page: the list's template said rendered, not the
    ones it extends (Django's rendering says each of its templates was)."""
    page = client.get(url)
    assert page.status_code == 200
    names = [t.name for t in page.templates]
    assert "admin/trading/change_list.html" in names
    return "admin/base.html" not in names


@pytest.mark.parametrize(
    "url", [TRADES, f"{TRADES}?p=2", f"{TRADES}?symbol=NOPE", f"{TRADES}?o=10&status__exact=open"]
)
@pytest.mark.parametrize("language", ["en-us", "he"])
def test_a_written_page_is_the_page_django_writes(
    url: str, language: str, superuser: User, bots: None, monkeypatch: Any
) -> None:
    client = Client()
    client.force_login(superuser)

    ours, theirs = both_pages(client, url, language, monkeypatch)

    assert_same(ours, theirs)
    with translation.override(language):
        assert written(client, url)
    assert ('dir="rtl"' in ours) == (language == "he")


def test_a_user_of_their_own_name_and_no_password_sees_the_page_django_writes(
    bots: None, monkeypatch: Any
) -> None:
    clerk = User.objects.create_superuser("clerk<&>", "c@example.com", None, first_name='Zoë "Z"')
    client = Client()
    client.force_login(clerk)

    ours, theirs = both_pages(client, TRADES, "de", monkeypatch)

    assert_same(ours, theirs)
    assert "<strong>Zoë &quot;Z&quot;</strong>" in ours and "password_change" not in ours


def message_cookie(client: Client) -> None:
    """Messages waiting for the next page, in the cookie Django's messages framework reads."""
    storage = CookieStorage(RequestFactory().get("/"))
    sent = [
        Message(messages.SUCCESS, "saved <b>it</b> & more"),
        Message(messages.WARNING, mark_safe("<i>kept</i> as written"), extra_tags="x"),
        Message(messages.INFO, "plain"),
    ]
    client.cookies[storage.cookie_name] = storage._encode(sent)  # type: ignore[attr-defined]


def test_messages_are_shown_as_django_shows_them(
    superuser: User, bots: None, monkeypatch: Any
) -> None:
    client = Client()
    client.force_login(superuser)
    client.get(TRADES)

    message_cookie(client)
    ours = without_csrf(client.get(TRADES).content)
    with monkeypatch.context() as patch:
        django_admin(patch)
        message_cookie(client)
        theirs = without_csrf(client.get(TRADES).content)

    assert_same(ours, theirs)
    assert '<li class="success">Saved &lt;b&gt;it&lt;/b&gt; &amp; more</li>' in ours
    assert '<li class="x warning"><i>kept</i> as written</li>' in ours
    assert 'class="messagelist"' not in without_csrf(client.get(TRADES).content)  # shown once


def test_a_page_it_does_not_write_is_rendered_by_the_templates(superuser: User, bots: None) -> None:
    client = Client()
    client.force_login(superuser)

    assert written(client, TRADES)
    assert not written(client, f"{TRADES}?_popup=1")
    assert not written(client, "/admin/trading/apitoken/")  # actions, a search box, an add link
