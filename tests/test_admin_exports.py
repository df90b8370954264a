"""The admin's export actions (risk events): a staff user with only the view permission exports
the rows ticked on the list page, with the CSRF check enforced, as the API exports them."""

import io
import re
from datetime import timedelta
from decimal import Decimal

import pyarrow.parquet as pq
import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client

from audit.models import RiskEvent
from tests.api.test_exports import body_of, csv_rows
from tests.factories import T0, make_bot

URL = "/admin/audit/riskevent/"


def viewer(*codenames: str) -> Client:
    user = User.objects.create_user("desk", password="pw", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    return client


def csrf_of(client: Client, url: str) -> str:
    page = client.get(url)
    assert page.status_code == 200
    found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode())
    assert found, "the list page has the action form"
    return found.group(1)


@pytest.fixture
def events(db: None) -> list[RiskEvent]:
    bot = make_bot("risky_001")
    return [
        RiskEvent.objects.create(
            ts=T0 + timedelta(hours=i),
            bot=bot,
            event_type="drawdown_limit",
            limit_value=Decimal("10"),
            actual_value=Decimal(f"1{i}.5"),
        )
        for i in range(3)
    ]


def post_action(client: Client, action: str, ids: list[int], token: str | None) -> object:
    data: dict[str, object] = {"action": action, "_selected_action": ids, "index": "0"}
    if token is not None:
        data["csrfmiddlewaretoken"] = token
    return client.post(URL, data)


def test_a_viewer_sees_the_export_actions_but_not_resolve(events: list[RiskEvent]) -> None:
    page = viewer("view_riskevent").get(URL).content.decode()
    assert 'value="export_csv"' in page and 'value="export_parquet"' in page
    assert 'value="resolve_events"' not in page  # that one needs the change permission


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_a_viewer_exports_the_ticked_rows(events: list[RiskEvent], fmt: str) -> None:
    client = viewer("view_riskevent")
    ticked = [events[0].pk, events[2].pk]
    response = post_action(client, f"export_{fmt}", ticked, csrf_of(client, URL))
    assert response.status_code == 200  # type: ignore[attr-defined]
    disposition = response["Content-Disposition"]  # type: ignore[index]
    assert disposition.startswith('attachment; filename="risk_events-')
    if fmt == "csv":
        header, rows = csv_rows(body_of(response))
        assert header[:6] == ["id", "ts", "bot_id", "event_type", "severity", "limit_value"]
        head = [str(events[2].pk), "2026-01-05T14:00:00Z", "risky_001", "drawdown_limit"]
        tail = ["warning", "10.0000000000", "12.5000000000", "none", "false", None, None, "", "{}"]
        assert rows[0] == [*head, *tail]
        assert [r[0] for r in rows] == [str(events[2].pk), str(events[0].pk)]  # newest first
    else:
        table = pq.read_table(io.BytesIO(body_of(response))).to_pylist()
        assert [(r["id"], r["actual_value"]) for r in table] == [
            (events[2].pk, Decimal("12.5000000000")),
            (events[0].pk, Decimal("10.5000000000")),
        ]


def test_the_action_refuses_a_post_without_csrf(events: list[RiskEvent]) -> None:
    response = post_action(viewer("view_riskevent"), "export_csv", [events[0].pk], None)
    assert response.status_code == 403  # type: ignore[attr-defined]
    assert not hasattr(response, "streaming_content")


def test_without_the_view_permission_there_is_no_export(events: list[RiskEvent]) -> None:
    client = viewer("view_systemevent")
    token = csrf_of(client, "/admin/audit/systemevent/")
    response = post_action(client, "export_csv", [events[0].pk], token)
    assert response.status_code == 403  # type: ignore[attr-defined]
    assert not hasattr(response, "streaming_content")
