"""Scheduled reports (issue 17, item 5): the figures equal the API's JSON for the same period, the
trades CSV round-trips, the e-mail reaches a local SMTP sink with the CSV attached, a second run
of the period sends nothing, and the stored reports are served to staff in the dashboard and the
admin."""

import csv
import email
import io
import re
import threading
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from email.message import Message
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.core.management import call_command
from django.db import connections
from django.test import Client
from django.utils import timezone
from django_celery_beat.models import PeriodicTask
from rest_framework.test import APIClient

from analytics.models import Report, ReportRecipientList
from analytics.services.reports import last_complete_period, period_bounds, send_reports
from analytics.services.schedule import periodic_tasks_setup
from analytics.tasks import report_daily, report_weekly
from audit.models import ChangeLog, RiskEvent, SystemEvent
from tests.alerts.smtp_sink import SmtpSink
from tests.factories import make_bot, make_closed_trade, make_trade
from trading.models import Bot, Trade
from trading.services.tokens import staff_token_create

pytestmark = pytest.mark.django_db

DAY = date(2026, 1, 7)  # a Wednesday; its ISO week is Monday 5 to Sunday 11 January 2026
D = datetime(2026, 1, 7, tzinfo=UTC)


def close(bot: Bot, exit_: datetime, pnl: str, **fields: Any) -> Trade:
    return make_closed_trade(
        bot,
        pnl_usd=Decimal(pnl),
        entry_time=exit_ - timedelta(hours=2),
        exit_time=exit_,
        fees_usd=Decimal("1.25"),
        **fields,
    )


@pytest.fixture
def fleet(db: None) -> list[Bot]:
    """Two bots trading on DAY and around it, a third with no trade in it; events in and out."""
    a = make_bot("alpha", initial_capital_usd=Decimal("10000"))
    b = make_bot("beta", initial_capital_usd=Decimal("5000"))
    c = make_bot("gamma", initial_capital_usd=Decimal("2000"))
    close(a, D - timedelta(days=3), "300")  # before the week: in the starting equity
    close(a, D + timedelta(hours=1), "120.50")
    close(a, D + timedelta(hours=3), "-200")  # a drawdown inside the day
    close(a, D + timedelta(hours=5), "40")
    close(b, D + timedelta(hours=2), "-75.25")
    close(b, D + timedelta(hours=23, minutes=59), "10")
    close(b, D + timedelta(days=1), "999")  # the next day: not in the daily report
    close(b, D + timedelta(hours=4), "5000", source="backtest")  # never in the figures
    close(c, D + timedelta(days=2), "50")  # later in the week
    make_trade(a, entry_time=D + timedelta(hours=6))  # open: not in the CSV
    RiskEvent.objects.create(
        ts=D + timedelta(hours=3),
        bot=a,
        event_type="drawdown_limit",
        severity="critical",
        limit_value=Decimal("1.5"),
        actual_value=Decimal("1.97"),
    )
    RiskEvent.objects.create(
        ts=D - timedelta(days=2, minutes=1), bot=b, event_type="drawdown_limit"
    )
    SystemEvent.objects.create(
        ts=D + timedelta(hours=7),
        component="data_quality",
        event_type="trade_pnl_mismatch",
        severity="warning",
        message="1 trade's pnl does not match its prices",
    )
    SystemEvent.objects.create(
        ts=D + timedelta(hours=7),
        component="data_quality",
        event_type="data_quality_run",
        message="checked",
    )
    return [a, b, c]


@pytest.fixture
def staff_api(db: None) -> APIClient:
    user = User.objects.create_user("analyst", password="pw", is_staff=True)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {staff_token_create(user=user).key}")
    return client


def desk(email_to: str = "desk@atb.example", period: str = "daily") -> ReportRecipientList:
    return ReportRecipientList.objects.create(
        name=f"desk-{period}", period=period, recipients=f"{email_to}, risk@atb.example"
    )


def api(client: APIClient, url: str) -> Any:
    response = client.get(url)
    assert response.status_code == 200, response.content
    return response.json()


@pytest.mark.parametrize(("period", "api_period"), [("daily", "day"), ("weekly", "week")])
def test_the_figures_are_the_apis_for_the_same_period(
    fleet: list[Bot], staff_api: APIClient, smtp: SmtpSink, period: str, api_period: str
) -> None:
    desk(period=period)
    assert [outcome for _, outcome in send_reports(period, DAY)] == ["sent"]
    report = Report.objects.get()
    bounds = period_bounds(period, DAY)
    since, until = (t.isoformat().replace("+00:00", "Z") for t in (bounds.start, bounds.end))
    window = f"since={since}&until={until}"
    figures = report.figures
    assert figures["portfolio"] == api(
        staff_api, f"/api/v1/portfolio/performance/?period={api_period}&{window}"
    )
    traded = ["alpha", "beta"] if period == "daily" else ["alpha", "beta", "gamma"]
    assert [bot["bot_id"] for bot in figures["bots"]] == traded
    for bot in figures["bots"]:
        assert bot == api(staff_api, f"/api/v1/bots/{bot['bot_id']}/summary/?{window}")
    # Pinned by hand as well, so that the API and the report cannot be wrong together.
    if period == "daily":
        (row,) = figures["portfolio"]["rows"]
        assert (row["trades"], row["net_pnl_usd"], row["fees_usd"]) == (
            5,
            "-104.75000000",
            "6.25000000",
        )
        assert row["starting_equity_usd"] == "17300.00000000"  # 17,000 of capital + alpha's 300
        alpha = figures["bots"][0]
        assert (alpha["trades_closed"], alpha["net_pnl_usd"]) == (3, "-39.50000000")
        assert alpha["max_drawdown_usd"] == "200.00000000"  # 10,420.50 down to 10,220.50
    assert [(e["bot_id"], e["severity"]) for e in figures["risk_events"]] == [("alpha", "critical")]
    assert [e["event_type"] for e in figures["data_quality"]] == ["trade_pnl_mismatch"]
    assert report.end - report.start == timedelta(days=1 if period == "daily" else 7)


def test_the_trades_csv_round_trips(fleet: list[Bot], smtp: SmtpSink) -> None:
    desk()
    send_reports("daily", DAY)
    rows = list(csv.DictReader(io.StringIO(Report.objects.get().trades_csv)))
    expected = (
        Trade.objects.filter(status="closed", exit_time__gte=D, exit_time__lt=D + timedelta(days=1))
        .exclude(source="backtest")
        .order_by("exit_time", "id")
    )
    assert [int(r["id"]) for r in rows] == [t.id for t in expected]
    for row, trade in zip(rows, expected, strict=True):
        assert row["bot_id"] == trade.bot_id
        assert Decimal(row["pnl_usd"]) == trade.pnl_usd
        assert Decimal(row["quantity"]) == trade.quantity
        assert trade.exit_time is not None
        assert row["exit_time"] == trade.exit_time.isoformat().replace("+00:00", "Z")
    assert [r["pnl_usd"] for r in rows] == [
        "120.50000000",
        "-75.25000000",
        "-200.00000000",
        "40.00000000",
        "10.00000000",
    ]


def parts(message: Message) -> dict[str, Message]:
    found = {}
    for part in message.walk():
        if not part.is_multipart():
            found[part.get_filename() or part.get_content_type()] = part
    return found


def test_the_email_reaches_the_sink_once_with_the_csv(fleet: list[Bot], smtp: SmtpSink) -> None:
    desk()
    call_command("send_report", "--period", "daily", "--date", "2026-01-07", stdout=io.StringIO())
    (received,) = smtp.messages
    assert sorted(received.recipients) == ["desk@atb.example", "risk@atb.example"]
    message = email.message_from_string(received.data)
    assert message["Subject"] == "Trading bots: daily report, 2026-01-07"
    found = parts(message)
    html = found["text/html"].get_payload(decode=True).decode()  # type: ignore[union-attr]
    assert "-104.75" in html and "trade_pnl_mismatch" in html
    attached = found["daily-report-2026-01-07-trades.csv"].get_payload(decode=True).decode()  # type: ignore[union-attr]
    report = Report.objects.get()
    assert attached.replace("\r\n", "\n") == report.trades_csv.replace("\r\n", "\n")
    assert report.sent_at is not None

    # The same period again, by hand and by the beat's service: nothing more is sent or stored.
    out = io.StringIO()
    call_command("send_report", "--period", "daily", "--date", "2026-01-07", stdout=out)
    assert out.getvalue() == "2026-01-07: desk-daily: already sent\n"
    assert [o for _, o in send_reports("daily", DAY)] == ["already sent"]
    assert len(smtp.messages) == 1
    assert Report.objects.count() == 1


def test_a_failed_send_stores_nothing_and_the_next_run_sends(
    fleet: list[Bot], settings: Any, smtp: SmtpSink
) -> None:
    desk()
    port = settings.EMAIL_PORT
    settings.EMAIL_PORT = 9  # nothing listens: the send fails
    with pytest.raises(OSError):
        send_reports("daily", DAY)
    assert Report.objects.count() == 0
    settings.EMAIL_PORT = port
    assert [o for _, o in send_reports("daily", DAY)] == ["sent"]
    assert len(smtp.messages) == 1


def test_bounds_and_refusals(db: None) -> None:
    weekly = period_bounds("weekly", date(2026, 1, 11))  # a Sunday
    assert (weekly.start, weekly.end) == (
        datetime(2026, 1, 5, tzinfo=UTC),
        datetime(2026, 1, 12, tzinfo=UTC),
    )
    assert weekly.label == "week 2026-W02"
    monday = datetime(2026, 1, 12, 0, 10, tzinfo=UTC)
    assert last_complete_period("weekly", monday).start == weekly.start
    assert last_complete_period("daily", monday).start == datetime(2026, 1, 11, tzinfo=UTC)
    with pytest.raises(ValueError, match="period must be one of daily, weekly"):
        period_bounds("monthly", date(2026, 1, 1))
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="has not ended yet"):
        call_command("send_report", "--period", "daily", "--date", "2999-01-01")
    assert Report.objects.count() == 0


def test_beat_entries(db: None) -> None:
    periodic_tasks_setup()
    daily = PeriodicTask.objects.get(name="analytics.report_daily")
    weekly = PeriodicTask.objects.get(name="analytics.report_weekly")
    assert (daily.crontab.minute, daily.crontab.hour, daily.crontab.day_of_week) == ("5", "0", "*")
    assert (weekly.crontab.minute, weekly.crontab.hour, weekly.crontab.day_of_week) == (
        "10",
        "0",
        "1",
    )


def staff(*codenames: str) -> Client:
    user = User.objects.create_user("desk", password="pw", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    return client


def test_the_dashboard_and_admin_serve_stored_reports_to_staff(
    fleet: list[Bot], smtp: SmtpSink
) -> None:
    desk()
    send_reports("daily", DAY)
    report = Report.objects.get()
    client = staff("view_report")
    page = client.get("/dashboard/reports/")
    assert page.status_code == 200
    assert f'href="/dashboard/reports/{report.pk}/"' in page.content.decode()
    assert client.get(f"/dashboard/reports/{report.pk}/").status_code == 200
    html = client.get(f"/dashboard/reports/{report.pk}/report.html")
    assert html["Content-Disposition"].startswith('attachment; filename="daily-report-2026-01-07')
    assert html.content.decode() == report.html
    trades = client.get(f"/dashboard/reports/{report.pk}/trades.csv")
    assert trades.content.decode() == report.trades_csv
    assert client.get("/dashboard/reports/999999/").status_code == 404
    admin_page = client.get(f"/admin/analytics/report/{report.pk}/change/")
    assert admin_page.status_code == 200
    assert "Save" not in admin_page.content.decode()  # read-only
    assert client.get("/admin/analytics/report/").status_code == 200
    # Not staff: the login page, never a report.
    outsider = Client()
    outsider.force_login(User.objects.create_user("visitor", password="pw"))
    assert outsider.get(f"/dashboard/reports/{report.pk}/trades.csv").status_code == 302


@pytest.mark.django_db(transaction=True)
def test_two_runs_at_once_send_once(fleet: list[Bot], smtp: SmtpSink) -> None:
    """Two sessions report the same period at the same moment (two beats, or the beat and a
    hand run): one sends, the other waits on the report's row and finds it sent."""
    desk()
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def run() -> None:
        try:
            barrier.wait()
            outcomes.extend(o for _, o in send_reports("daily", DAY))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(outcomes) == ["already sent", "sent"]
    assert len(smtp.messages) == 1
    assert Report.objects.count() == 1


def test_the_beat_task_reports_yesterday_once(db: None, smtp: SmtpSink) -> None:
    yesterday = timezone.now().astimezone(UTC).date() - timedelta(days=1)
    bot = make_bot("delta")
    close(bot, datetime.combine(yesterday, time(12), tzinfo=UTC), "42")
    desk()
    ReportRecipientList.objects.filter(pk=desk(period="weekly").pk).update(is_active=False)

    assert report_daily() == ["sent"]
    assert report_daily() == ["already sent"]
    assert report_weekly() == []  # its only list is inactive

    report = Report.objects.get()
    assert (report.period, report.start.date()) == ("daily", yesterday)
    assert [b["bot_id"] for b in report.figures["bots"]] == ["delta"]
    assert len(smtp.messages) == 1


def test_a_recipient_list_saved_in_the_admin_is_in_the_change_log(db: None) -> None:
    client = staff(
        "add_reportrecipientlist", "change_reportrecipientlist", "view_reportrecipientlist"
    )
    url = "/admin/analytics/reportrecipientlist/add/"
    token = re.search(
        r'name="csrfmiddlewaretoken" value="([^"]+)"', client.get(url).content.decode()
    )
    assert token is not None
    form = {"name": "desk", "period": "weekly", "recipients": "a@x.example", "is_active": "on"}
    refused = client.post(url, {**form, "period": "monthly", "csrfmiddlewaretoken": token[1]})
    assert refused.status_code == 200 and ReportRecipientList.objects.count() == 0
    bad = client.post(
        url, {**form, "recipients": "a@x.example, nobody", "csrfmiddlewaretoken": token[1]}
    )
    assert "&#x27;nobody&#x27; is not an e-mail address." in bad.content.decode()
    assert ReportRecipientList.objects.count() == 0
    assert client.post(url, {**form, "csrfmiddlewaretoken": token[1]}).status_code == 302

    saved = ReportRecipientList.objects.get()
    (record,) = ChangeLog.objects.filter(entity_type="analytics.reportrecipientlist")
    assert (record.action, record.entity_id, record.user_id) == (
        "create",
        str(saved.pk),
        user_id("desk"),
    )
    assert record.new_values == {**form, "is_active": True}
    assert (
        client.post(
            f"/admin/analytics/reportrecipientlist/{saved.pk}/delete/",
            {"csrfmiddlewaretoken": token[1]},
        ).status_code
        == 403
    )


def user_id(username: str) -> int:
    return User.objects.get(username=username).pk
