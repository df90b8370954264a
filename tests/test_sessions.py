"""The session store (atb_site/sessions.py) reads a session as Django's database store does:
the same sessions found, refused and decoded, and a staff member signed in or out by them."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.auth.models import Permission, User
from django.contrib.sessions.backends.db import SessionStore as DjangoStore
from django.contrib.sessions.models import Session
from django.test import Client
from django.utils import timezone

from atb_site.sessions import SessionStore

pytestmark = pytest.mark.django_db


def test_the_store_in_use_is_ours() -> None:
    assert settings.SESSION_ENGINE == "atb_site.sessions"


def test_a_session_is_read_as_djangos_store_reads_it() -> None:
    live = DjangoStore()
    live.update({"a": 1, "b": "é<&>"})
    live.create()
    expired = DjangoStore()
    expired["a"] = 2
    expired.create()
    Session.objects.filter(pk=expired.session_key).update(
        expire_date=timezone.now() - timedelta(seconds=1)
    )
    tampered = DjangoStore()
    tampered["a"] = 3
    tampered.create()
    row = Session.objects.get(pk=tampered.session_key)
    Session.objects.filter(pk=row.pk).update(session_data=row.session_data[:-2] + "xx")

    for key in [live.session_key, expired.session_key, tampered.session_key, "x" * 32, "short"]:
        ours, django = SessionStore(key), DjangoStore(key)
        assert ours.load() == django.load()
        assert ours.session_key == django.session_key

    assert SessionStore(live.session_key).load() == {"a": 1, "b": "é<&>"}
    assert SessionStore(expired.session_key).load() == {}
    assert SessionStore(tampered.session_key).load() == {}


def test_a_clerk_is_in_while_the_session_lasts_and_out_after() -> None:
    clerk = User.objects.create_user("clerk", password="pw", is_staff=True)
    clerk.user_permissions.add(Permission.objects.get(codename="view_trade"))
    client = Client(enforce_csrf_checks=True)
    client.force_login(clerk)

    assert client.get("/admin/trading/trade/").status_code == 200
    Session.objects.update(expire_date=timezone.now() - timedelta(seconds=1))
    page = client.get("/admin/trading/trade/")

    assert page.status_code == 302
    assert page["Location"].startswith("/admin/login/")
