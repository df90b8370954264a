"""The staff admin: every page renders, every change goes through a service and is audited,
read-only data stays read-only, and big lists run a fixed, small number of bounded queries."""

import json
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group, User
from django.contrib.messages import get_messages
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, models
from django.test import Client, RequestFactory
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import (
    ClockedSchedule,
    CrontabSchedule,
    IntervalSchedule,
    PeriodicTask,
    SolarSchedule,
)

from alerts.models import Acknowledgement, Alert, Channel, DeliveryAttempt, Rule
from analytics.models import PortfolioSnapshot, Report, ReportRecipientList
from atb_site.admin_tools import CappedCountPaginator, ReadOnlyModelAdmin
from audit.models import Backup, ChangeLog, RiskEvent, ScheduledRun, SystemEvent
from botconfig.models import BotConfiguration
from botconfig.services import config_version_create
from tests.factories import T0, make_bot, make_candle, make_position, make_trade
from trading.models import (
    AccountBalance,
    ApiToken,
    Bot,
    BotRun,
    MarketData,
    Order,
    OrderFill,
    Position,
    RiskMetric,
    RiskMetricsBacklog,
    Signal,
    Trade,
)
from trading.services.tokens import (
    bot_token_create,
    staff_token_create,
    token_authenticate,
    token_hash,
)

pytestmark = pytest.mark.django_db

REGISTRY = sorted(admin.site._registry.items(), key=lambda item: item[0]._meta.label)
MODELS = [model for model, _ in REGISTRY]
READ_ONLY = [
    model for model, model_admin in REGISTRY if isinstance(model_admin, ReadOnlyModelAdmin)
]


def label(model: type[models.Model]) -> str:
    return model._meta.label


def admin_url(model: type[models.Model], view: str, *args: Any) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def as_json(value: Any) -> Any:
    """How the change log stores a value (Decimal as string, datetime as ISO-8601)."""
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))


# --- One row of every registered model ---------------------------------------------------------


@pytest.fixture
def seeded(bot: Bot, superuser: User) -> None:
    Group.objects.create(name="operators")
    config_version_create(
        bot=bot, config={"risk": {"max_leverage": 2}}, user=superuser, change_reason="t"
    )
    config_version_create(
        bot=bot, config={"risk": {"max_leverage": 3}}, user=superuser, change_reason="t"
    )
    position = make_position(bot)
    run = BotRun.objects.create(bot=bot, mode="live", started_at=T0, strategy_params={"rsi": 14})
    trade = make_trade(bot, position=position, strategy_data={"rsi": 28}, run=run)
    order = Order.objects.create(
        bot=bot,
        client_order_id="c-1",
        trade=trade,
        symbol="BTC/USDT",
        side="buy",
        order_type="market",
        quantity=Decimal("0.5"),
    )
    OrderFill.objects.create(
        order=order, fill_id="f-1", quantity=Decimal("0.5"), price=Decimal("60000"), filled_at=T0
    )
    make_candle(indicators={"ema_20": "101.5"})
    Signal.objects.create(
        bot=bot, symbol="BTC/USDT", signal_type="breakout", generated_at=T0, trade=trade
    )
    AccountBalance.objects.create(
        bot=bot, ts=T0, balance_usd=Decimal("10000"), equity_usd=Decimal("10100")
    )
    RiskMetric.objects.create(bot=bot, date=date(2026, 1, 5), computed_at=T0)
    RiskMetricsBacklog.objects.create(bot=bot, since=date(2026, 1, 5), marked_at=T0)
    SystemEvent.objects.create(
        ts=T0, bot=bot, component="ingest", event_type="started", message="Ingest started"
    )
    channel = Channel.objects.create(
        name="ops", kind="webhook", url="http://127.0.0.1:9/", secret="s"
    )
    Rule.objects.create(channel=channel, event_type="risk_limit")
    RiskEvent.objects.create(ts=T0, bot=bot, event_type="drawdown_limit")
    desk = ReportRecipientList.objects.create(name="desk", period="daily", recipients="d@x.example")
    Report.objects.create(
        recipient_list=desk,
        period="daily",
        start=T0,
        end=T0 + timedelta(days=1),
        generated_at=T0,
        figures_json="{}",
        html="<p>report</p>",
        trades_csv="id\n",
        recipients="d@x.example",
    )
    alert = Alert.objects.get()  # written by the trigger
    DeliveryAttempt.objects.create(
        alert=alert, channel=channel, started_at=T0, status="failed", latency_ms=3, error="refused"
    )
    Acknowledgement.objects.create(
        source="risk_event", source_id=alert.source_id, user=superuser, ts=T0
    )
    PortfolioSnapshot.objects.create(
        ts=T0, total_equity_usd=Decimal("10100"), total_balance_usd=Decimal("10000")
    )
    Backup.objects.create(
        database="x", status="ok", verified=True, started_at=T0, finished_at=T0, path="/b/x.dump"
    )
    ScheduledRun.objects.create(task="audit.db_backup", slot=T0, claimed_at=T0)
    with connection.cursor() as cursor:
        cursor.execute("REFRESH MATERIALIZED VIEW analytics.bot_performance_summary")
    interval = IntervalSchedule.objects.create(every=10, period=IntervalSchedule.SECONDS)
    CrontabSchedule.objects.create(minute="0", hour="3")
    SolarSchedule.objects.create(
        event="sunrise", latitude=Decimal("50.1"), longitude=Decimal("8.6")
    )
    ClockedSchedule.objects.create(clocked_time=T0)
    PeriodicTask.objects.create(name="refresh views", task="analytics.refresh", interval=interval)
    bot_token_create(bot=bot, name="seed")


# --- Every page renders for staff, none for strangers ------------------------------------------


@pytest.mark.parametrize("model", MODELS, ids=label)
def test_every_admin_page_renders_for_a_superuser(
    model: type[models.Model], seeded: None, superuser: User, admin_client_logged_in: Client
) -> None:
    model_admin = admin.site._registry[model]
    request = RequestFactory().get("/admin/")
    request.user = superuser

    assert admin_client_logged_in.get(admin_url(model, "changelist")).status_code == 200
    if model_admin.has_add_permission(request):
        assert admin_client_logged_in.get(admin_url(model, "add")).status_code == 200
    obj = model._default_manager.first()
    assert obj is not None, f"seed a {label(model)} row in the `seeded` fixture"
    assert admin_client_logged_in.get(admin_url(model, "change", obj.pk)).status_code == 200


@pytest.mark.parametrize("model", MODELS, ids=label)
def test_every_admin_page_sends_an_anonymous_user_to_the_login(
    model: type[models.Model], db: None
) -> None:
    url = admin_url(model, "changelist")

    response = Client().get(url)

    assert response.status_code == 302
    assert response["Location"] == f"/admin/login/?next={url}"


def test_the_data_admins_are_read_only_and_the_registry_ones_are_not() -> None:
    assert sorted(label(model) for model in READ_ONLY) == [
        "alerts.Acknowledgement",
        "alerts.Alert",
        "alerts.DeliveryAttempt",
        "analytics.BotPerformanceSummary",
        "analytics.PortfolioSnapshot",
        "analytics.Report",
        "audit.Backup",
        "audit.ChangeLog",
        "audit.RiskEvent",
        "audit.ScheduledRun",
        "audit.SystemEvent",
        "trading.AccountBalance",
        "trading.BotRun",
        "trading.MarketData",
        "trading.Order",
        "trading.Position",
        "trading.RiskMetric",
        "trading.RiskMetricsBacklog",
        "trading.Signal",
        "trading.Trade",
    ]
    assert Bot in admin.site._registry
    assert BotConfiguration in admin.site._registry
    assert OrderFill not in admin.site._registry  # shown inline on its order


@pytest.mark.parametrize("model", READ_ONLY, ids=label)
def test_read_only_admins_refuse_add_change_and_delete(
    model: type[models.Model], seeded: None, admin_client_logged_in: Client
) -> None:
    obj = model._default_manager.first()
    assert obj is not None
    before = model._default_manager.count()

    assert admin_client_logged_in.get(admin_url(model, "add")).status_code == 403
    assert admin_client_logged_in.post(admin_url(model, "add"), {}).status_code == 403
    assert admin_client_logged_in.post(admin_url(model, "change", obj.pk), {}).status_code == 403
    assert admin_client_logged_in.post(admin_url(model, "delete", obj.pk), {}).status_code == 403

    assert model._default_manager.count() == before


def test_the_order_page_lists_its_fills_read_only(
    seeded: None, admin_client_logged_in: Client
) -> None:
    order = Order.objects.get()

    response = admin_client_logged_in.get(admin_url(Order, "change", order.pk))

    formset = response.context["inline_admin_formsets"][0]
    assert formset.opts.model is OrderFill
    assert (formset.has_add_permission, formset.has_change_permission) == (False, False)
    assert [form.original.fill_id for form in formset] == ["f-1"]


def test_a_json_column_shows_as_indented_json(seeded: None, admin_client_logged_in: Client) -> None:
    trade = Trade.objects.get()

    response = admin_client_logged_in.get(admin_url(Trade, "change", trade.pk))

    assert '<pre class="atb-json">{\n  &quot;rsi&quot;: 28\n}</pre>' in response.content.decode()


# --- Bot registry --------------------------------------------------------------------------------


def test_the_bot_list_shows_open_positions_and_marks_stale_heartbeats(
    admin_client_logged_in: Client,
) -> None:
    now = timezone.now()
    fresh = make_bot("fresh_001", last_heartbeat_at=now - timedelta(minutes=4))
    stale = make_bot("stale_001", last_heartbeat_at=now - timedelta(minutes=6))
    make_bot("never_001")
    make_position(fresh, symbol="BTC/USDT")
    make_position(fresh, symbol="ETH/USDT", status="partially_closed", quantity=Decimal("0.5"))
    make_position(fresh, symbol="SOL/USDT", status="closed", closed_at=T0 + timedelta(hours=1))
    make_position(stale, symbol="BTC/USDT")

    response = admin_client_logged_in.get(admin_url(Bot, "changelist"))

    rows = {bot.bot_id: bot for bot in response.context["cl"].result_list}
    model_admin = response.context["cl"].model_admin
    assert {bot_id: model_admin.open_positions(row) for bot_id, row in rows.items()} == {
        "fresh_001": 2,
        "never_001": 0,
        "stale_001": 1,
    }
    assert "stale" not in model_admin.heartbeat(rows["fresh_001"])
    assert model_admin.heartbeat(rows["stale_001"]).endswith(
        '<strong class="atb-stale" style="color:#ba2121">stale</strong>'
    )
    assert model_admin.heartbeat(rows["never_001"]) == "never"
    assert response.content.decode().count('class="atb-stale"') == 1


def test_the_heartbeat_filter_picks_stale_bots(admin_client_logged_in: Client) -> None:
    now = timezone.now()
    make_bot("fresh_001", last_heartbeat_at=now - timedelta(minutes=4))
    make_bot("stale_001", last_heartbeat_at=now - timedelta(minutes=6))
    make_bot("never_001")

    response = admin_client_logged_in.get(admin_url(Bot, "changelist") + "?heartbeat=stale")

    assert [bot.bot_id for bot in response.context["cl"].result_list] == ["stale_001"]


def test_the_bot_list_runs_the_same_queries_for_one_bot_or_many(
    admin_client_logged_in: Client, django_assert_num_queries: Any
) -> None:
    url = admin_url(Bot, "changelist")
    make_position(make_bot("b_000"))
    admin_client_logged_in.get(url)  # warm the session and the content types

    with django_assert_num_queries(7):
        admin_client_logged_in.get(url)
    for n in range(1, 6):
        make_position(make_bot(f"b_{n:03d}"))
    with django_assert_num_queries(7):
        response = admin_client_logged_in.get(url)

    assert len(response.context["cl"].result_list) == 6


def pause_or_resume(client: Client, action: str, *bots: Bot) -> Any:
    return client.post(
        admin_url(Bot, "changelist"),
        {"action": action, "_selected_action": [b.pk for b in bots], "index": "0"},
    )


def test_pause_and_resume_actions_change_the_status_and_write_one_record_each(
    bot: Bot, superuser: User, admin_client_logged_in: Client
) -> None:
    response = pause_or_resume(admin_client_logged_in, "pause_bots", bot)

    assert response.status_code == 302
    bot.refresh_from_db()
    assert bot.status == "paused"
    pause = ChangeLog.objects.get()
    assert (pause.entity_type, pause.entity_id, pause.action, pause.user) == (
        "trading.bot",
        "momentum_001",
        "pause",
        superuser,
    )
    assert (pause.old_values, pause.new_values) == ({"status": "active"}, {"status": "paused"})

    pause_or_resume(admin_client_logged_in, "resume_bots", bot)

    bot.refresh_from_db()
    assert bot.status == "active"
    resume = ChangeLog.objects.exclude(pk=pause.pk).get()
    assert (resume.action, resume.user, resume.old_values, resume.new_values) == (
        "resume",
        superuser,
        {"status": "paused"},
        {"status": "active"},
    )


def test_pausing_a_stopped_bot_changes_nothing_and_says_so(
    admin_client_logged_in: Client,
) -> None:
    stopped = make_bot("stopped_001", status="stopped")

    response = pause_or_resume(admin_client_logged_in, "pause_bots", stopped)

    stopped.refresh_from_db()
    assert stopped.status == "stopped"
    assert ChangeLog.objects.count() == 0
    messages = [str(m) for m in get_messages(response.wsgi_request)]
    assert messages == ["1 bot(s) left as they were: only active or erroring bots can be paused."]


def bot_form(**overrides: Any) -> dict[str, Any]:
    data = {
        "name": "Momentum",
        "strategy_type": "momentum",
        "exchange": "binance",
        "base_currency": "USDT",
        "status": "active",
        "mode": "paper",
        "initial_capital_usd": "10000",
        "max_position_size_usd": "",
        "max_daily_loss_usd": "",
        "max_drawdown_pct": "",
        "max_leverage": "",
        "max_open_positions": "",
        "metadata": "{}",
    }
    data.update(overrides)
    return data


def test_editing_a_bot_goes_through_bot_update_and_records_old_and_new_values(
    bot: Bot, superuser: User, admin_client_logged_in: Client
) -> None:
    response = admin_client_logged_in.post(
        admin_url(Bot, "change", bot.pk),
        # current_equity_usd is the bot's to report, max_leverage its configuration's:
        # posted, they are ignored.
        bot_form(name="Momentum v2", max_leverage="3", current_equity_usd="999"),
    )

    assert response.status_code == 302
    bot.refresh_from_db()
    assert (bot.name, bot.max_leverage, bot.current_equity_usd) == ("Momentum v2", None, None)
    record = ChangeLog.objects.get()
    assert (record.entity_type, record.entity_id, record.action, record.user) == (
        "trading.bot",
        "momentum_001",
        "update",
        superuser,
    )
    assert record.old_values == {"name": "Momentum"}
    assert record.new_values == {"name": "Momentum v2"}


def test_the_bot_page_offers_only_the_editable_fields(
    bot: Bot, admin_client_logged_in: Client
) -> None:
    response = admin_client_logged_in.get(admin_url(Bot, "change", bot.pk))

    assert sorted(response.context["adminform"].form.fields) == sorted(
        [
            "name",
            "strategy_type",
            "exchange",
            "base_currency",
            "status",
            "mode",
            "initial_capital_usd",
            "metadata",
        ]
    )


def test_adding_a_bot_goes_through_bot_register_with_its_first_configuration(
    db: None, superuser: User, admin_client_logged_in: Client
) -> None:
    response = admin_client_logged_in.post(
        admin_url(Bot, "add"),
        bot_form(bot_id="grid_001", name="Grid", initial_config='{"grid": {"levels": 10}}'),
    )

    assert response.status_code == 302
    bot = Bot.objects.get(pk="grid_001")
    assert bot.name == "Grid"
    version = BotConfiguration.objects.get(bot=bot)
    assert (version.version, version.config, version.created_by) == (
        1,
        {"grid": {"levels": 10}},
        superuser,
    )
    records = list(ChangeLog.objects.order_by("id").values_list("entity_type", "action", "user"))
    assert records == [
        ("trading.bot", "create", superuser.pk),
        ("botconfig.botconfiguration", "create", superuser.pk),
    ]


def test_bots_cannot_be_deleted(bot: Bot, admin_client_logged_in: Client) -> None:
    response = admin_client_logged_in.post(admin_url(Bot, "delete", bot.pk), {"post": "yes"})

    assert response.status_code == 403
    assert Bot.objects.filter(pk=bot.pk).exists()


# --- Versioned configurations ---------------------------------------------------------------------

V1 = {"risk": {"max_leverage": 2}, "symbols": ["BTC/USDT"]}
V2 = {"risk": {"max_leverage": 3}, "symbols": ["BTC/USDT"], "timeframe": "5m"}


@pytest.fixture
def v1(bot: Bot) -> BotConfiguration:
    return config_version_create(bot=bot, config=V1, user=None, change_reason="first")


def test_saving_the_config_form_writes_version_two_and_closes_version_one(
    v1: BotConfiguration, superuser: User, admin_client_logged_in: Client
) -> None:
    old_values = {
        "version": 1,
        "config": V1,
        "effective_from": as_json(v1.effective_from),
        "effective_to": None,
        "is_active": True,
    }
    records_before = ChangeLog.objects.count()

    response = admin_client_logged_in.post(
        admin_url(BotConfiguration, "change", v1.pk),
        {"config": json.dumps(V2), "reason": "raise leverage"},
    )

    v2 = BotConfiguration.objects.get(bot=v1.bot, version=2)
    assert response.status_code == 302
    assert response["Location"] == admin_url(BotConfiguration, "change", v2.pk)
    v1.refresh_from_db()
    assert (v1.config, v1.is_active, v1.effective_to) == (V1, False, v2.effective_from)
    assert (v2.config, v2.is_active, v2.effective_to, v2.created_by, v2.change_reason) == (
        V2,
        True,
        None,
        superuser,
        "raise leverage",
    )
    # The version's record, then the bot's: its max_leverage column follows risk.max_leverage.
    assert ChangeLog.objects.count() == records_before + 2
    bot_record = ChangeLog.objects.latest("id")
    assert (bot_record.entity_type, bot_record.old_values, bot_record.new_values) == (
        "trading.bot",
        {"max_leverage": "2.000000"},
        {"max_leverage": "3.000000"},
    )
    record = ChangeLog.objects.exclude(pk=bot_record.pk).latest("id")
    assert (record.entity_type, record.entity_id, record.action, record.user, record.note) == (
        "botconfig.botconfiguration",
        str(v2.pk),
        "create",
        superuser,
        "raise leverage",
    )
    assert record.old_values == old_values
    assert record.new_values == {
        "version": 2,
        "config": V2,
        "effective_from": as_json(v2.effective_from),
        "effective_to": None,
        "is_active": True,
        "schema": {"strategy_type": "default", "version": 1},
    }


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ('{"risk": {"max_leverage": 3}', "Enter valid JSON."),
        ("[1, 2]", "Enter a JSON object ({...}), not a list, string or number."),
        ('"just text"', "Enter a JSON object ({...}), not a list, string or number."),
        ("", "This field is required."),
        (json.dumps(V1), "No change: this is the configuration in force already."),
    ],
    ids=["invalid", "list", "string", "blank", "unchanged"],
)
def test_a_config_the_form_refuses_writes_nothing(
    text: str, error: str, v1: BotConfiguration, admin_client_logged_in: Client
) -> None:
    versions_before = BotConfiguration.objects.count()
    records_before = ChangeLog.objects.count()

    response = admin_client_logged_in.post(
        admin_url(BotConfiguration, "change", v1.pk), {"config": text, "reason": "try"}
    )

    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {"config": [error]}
    assert BotConfiguration.objects.count() == versions_before
    assert ChangeLog.objects.count() == records_before
    v1.refresh_from_db()
    assert (v1.config, v1.is_active) == (V1, True)


def test_the_config_form_shows_pretty_json(
    v1: BotConfiguration, admin_client_logged_in: Client
) -> None:
    pretty = '{\n  "risk": {\n    "max_leverage": 2\n  },\n  "symbols": [\n    "BTC/USDT"\n  ]\n}'

    response = admin_client_logged_in.get(admin_url(BotConfiguration, "change", v1.pk))

    assert response.context["adminform"].form["config"].value() == pretty
    assert pretty.replace('"', "&quot;") + "</textarea>" in response.content.decode()


def test_a_past_version_cannot_be_edited_in_place(
    v1: BotConfiguration, admin_client_logged_in: Client
) -> None:
    v2 = config_version_create(bot=v1.bot, config=V2, user=None, change_reason="t")
    records_before = ChangeLog.objects.count()

    page = admin_client_logged_in.get(admin_url(BotConfiguration, "change", v1.pk))
    refused = admin_client_logged_in.post(
        admin_url(BotConfiguration, "change", v1.pk), {"config": "{}", "reason": "x"}
    )

    assert page.status_code == 200
    assert "config" not in page.context["adminform"].form.fields
    assert refused.status_code == 403
    assert list(BotConfiguration.objects.values_list("version", flat=True)) == [2, 1]
    v2.refresh_from_db()
    assert (v2.config, v2.is_active) == (V2, True)
    assert ChangeLog.objects.count() == records_before


def test_adding_a_configuration_writes_the_next_version(
    v1: BotConfiguration, superuser: User, admin_client_logged_in: Client
) -> None:
    response = admin_client_logged_in.post(
        admin_url(BotConfiguration, "add"),
        {"bot": v1.bot_id, "config": json.dumps(V2), "reason": "from the add page"},
    )

    v2 = BotConfiguration.objects.get(bot=v1.bot, version=2)
    assert response["Location"] == admin_url(BotConfiguration, "change", v2.pk)
    assert (v2.config, v2.created_by, v2.change_reason) == (V2, superuser, "from the add page")
    v1.refresh_from_db()
    assert (v1.is_active, v1.effective_to) == (False, v2.effective_from)


def test_adding_the_configuration_in_force_again_is_refused(
    v1: BotConfiguration, admin_client_logged_in: Client
) -> None:
    records_before = ChangeLog.objects.count()

    response = admin_client_logged_in.post(
        admin_url(BotConfiguration, "add"),
        {"bot": v1.bot_id, "config": json.dumps(V1), "reason": "same again"},
    )

    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {
        "config": ["No change: this is the configuration in force already."]
    }
    assert list(BotConfiguration.objects.values_list("version", flat=True)) == [1]
    assert ChangeLog.objects.count() == records_before


def test_a_version_page_shows_its_difference_from_the_one_before(
    v1: BotConfiguration, admin_client_logged_in: Client
) -> None:
    v2 = config_version_create(bot=v1.bot, config=V2, user=None, change_reason="t")

    html = admin_client_logged_in.get(admin_url(BotConfiguration, "change", v2.pk)).content
    html_text = html.decode()

    assert (
        "<tbody><tr><td><code>risk.max_leverage</code></td><td>changed</td><td>2</td>"
        "<td>3</td></tr><tr><td><code>timeframe</code></td><td>added</td><td></td>"
        "<td>&quot;5m&quot;</td></tr></tbody>"
    ) in html_text


def test_rollback_writes_a_new_version_equal_to_the_chosen_one(
    v1: BotConfiguration, superuser: User, admin_client_logged_in: Client
) -> None:
    v2 = config_version_create(bot=v1.bot, config=V2, user=None, change_reason="t")
    rollback_url = admin_url(BotConfiguration, "rollback", v1.pk)

    v1_page = admin_client_logged_in.get(admin_url(BotConfiguration, "change", v1.pk))
    confirm = admin_client_logged_in.get(rollback_url)
    assert BotConfiguration.objects.count() == 2  # asking writes nothing
    response = admin_client_logged_in.post(rollback_url, {"reason": "back to 2x"})

    assert f'href="{rollback_url}"' in v1_page.content.decode()
    assert confirm.status_code == 200
    assert (
        "<tr><td><code>risk.max_leverage</code></td><td>changed</td><td>3</td><td>2</td></tr>"
        in confirm.content.decode()
    )
    v3 = BotConfiguration.objects.get(bot=v1.bot, version=3)
    assert response["Location"] == admin_url(BotConfiguration, "change", v3.pk)
    assert (v3.config, v3.is_active, v3.created_by, v3.change_reason) == (
        V1,
        True,
        superuser,
        "back to 2x",
    )
    v1.refresh_from_db()
    v2.refresh_from_db()
    assert (v1.config, v1.is_active) == (V1, False)
    assert (v2.config, v2.is_active, v2.effective_to) == (V2, False, v3.effective_from)
    record = ChangeLog.objects.filter(entity_type="botconfig.botconfiguration").latest("id")
    assert (record.entity_id, record.action, record.user, record.note) == (
        str(v3.pk),
        "rollback",
        superuser,
        "back to 2x",
    )
    assert (record.old_values["version"], record.new_values["version"]) == (2, 3)
    assert record.new_values["config"] == V1


def test_rolling_back_to_the_configuration_in_force_writes_nothing(
    v1: BotConfiguration, admin_client_logged_in: Client
) -> None:
    records_before = ChangeLog.objects.count()

    response = admin_client_logged_in.post(
        admin_url(BotConfiguration, "rollback", v1.pk), {"reason": "again"}
    )

    assert response.status_code == 302
    assert list(BotConfiguration.objects.values_list("version", flat=True)) == [1]
    assert ChangeLog.objects.count() == records_before


def test_versions_cannot_be_deleted(v1: BotConfiguration, admin_client_logged_in: Client) -> None:
    response = admin_client_logged_in.post(
        admin_url(BotConfiguration, "delete", v1.pk), {"post": "yes"}
    )

    assert response.status_code == 403
    assert BotConfiguration.objects.filter(pk=v1.pk).exists()


# --- Risk events ---------------------------------------------------------------------------------


def resolve(client: Client, *events: RiskEvent, **extra: str) -> Any:
    return client.post(
        admin_url(RiskEvent, "changelist"),
        {"action": "resolve_events", "_selected_action": [e.pk for e in events], **extra},
    )


def test_resolve_asks_for_a_note_then_records_who_when_and_the_note(
    bot: Bot, superuser: User, admin_client_logged_in: Client
) -> None:
    event = RiskEvent.objects.create(ts=T0, bot=bot, event_type="daily_loss_limit")

    confirm = resolve(admin_client_logged_in, event, index="0")
    assert confirm.status_code == 200
    assert confirm.templates[0].name == "admin/audit/riskevent/resolve_confirmation.html"
    event.refresh_from_db()
    assert event.resolved is False  # asking changes nothing

    before = timezone.now()
    response = resolve(admin_client_logged_in, event, note="Limit raised by ops", apply="Resolve")
    after = timezone.now()

    assert response.status_code == 302
    event.refresh_from_db()
    assert (event.resolved, event.resolved_by, event.resolution_note) == (
        True,
        superuser,
        "Limit raised by ops",
    )
    assert event.resolved_at is not None
    assert before <= event.resolved_at <= after
    record = ChangeLog.objects.get()
    assert (record.entity_type, record.entity_id, record.action, record.user, record.note) == (
        "audit.riskevent",
        str(event.pk),
        "resolve",
        superuser,
        "Limit raised by ops",
    )
    assert record.old_values == {
        "resolved": False,
        "resolved_at": None,
        "resolved_by": None,
        "resolution_note": "",
    }
    assert record.new_values == {
        "resolved": True,
        "resolved_at": as_json(event.resolved_at),
        "resolved_by": superuser.pk,
        "resolution_note": "Limit raised by ops",
    }


def test_resolve_without_a_note_shows_the_form_again_and_changes_nothing(
    bot: Bot, admin_client_logged_in: Client
) -> None:
    event = RiskEvent.objects.create(ts=T0, bot=bot, event_type="daily_loss_limit")

    response = resolve(admin_client_logged_in, event, note="  ", apply="Resolve")

    assert response.status_code == 200
    assert response.context["form"].errors == {"note": ["This field is required."]}
    event.refresh_from_db()
    assert event.resolved is False
    assert ChangeLog.objects.count() == 0


def test_resolving_an_already_resolved_event_is_a_message_not_a_crash(
    bot: Bot, superuser: User, admin_client_logged_in: Client
) -> None:
    resolved_at = T0 + timedelta(hours=1)
    done = RiskEvent.objects.create(
        ts=T0,
        bot=bot,
        event_type="drawdown_limit",
        resolved=True,
        resolved_at=resolved_at,
        resolved_by=superuser,
        resolution_note="first",
    )

    response = resolve(admin_client_logged_in, done, note="second", apply="Resolve")

    assert response.status_code == 302
    done.refresh_from_db()
    assert (done.resolved_at, done.resolution_note) == (resolved_at, "first")
    assert ChangeLog.objects.count() == 0
    messages = [str(m) for m in get_messages(response.wsgi_request)]
    assert messages == [f"Risk event {done.pk} was already resolved at {resolved_at}."]


# --- Big lists stay cheap -------------------------------------------------------------------------


def test_the_trades_list_runs_a_fixed_number_of_queries_and_never_counts_the_table(
    bot: Bot, admin_client_logged_in: Client, django_assert_num_queries: Any
) -> None:
    url = admin_url(Trade, "changelist")
    other = make_bot("other_001")
    for i in range(3):
        make_trade(bot if i % 2 else other, entry_time=T0 + timedelta(minutes=i))
    admin_client_logged_in.get(url)  # warm the session and the content types

    with django_assert_num_queries(5) as three:
        response = admin_client_logged_in.get(url)
    assert len(response.context["cl"].result_list) == 3
    for i in range(3, 30):
        make_trade(bot if i % 2 else other, entry_time=T0 + timedelta(minutes=i))
    with django_assert_num_queries(5) as thirty:
        response = admin_client_logged_in.get(url)
    assert len(response.context["cl"].result_list) == 30

    for captured in (three, thirty):
        counts = [q["sql"] for q in captured.captured_queries if "COUNT(" in q["sql"].upper()]
        assert len(counts) == 1
        assert "LIMIT 10001" in counts[0]
    assert response.context["cl"].full_result_count is None


def test_past_the_cap_the_list_says_more_than(
    bot: Bot, admin_client_logged_in: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(CappedCountPaginator, "count_cap", 5)
    for i in range(7):
        make_trade(bot, entry_time=T0 + timedelta(minutes=i))

    response = admin_client_logged_in.get(admin_url(Trade, "changelist"))

    cl = response.context["cl"]
    assert (cl.result_count, cl.paginator.is_capped) == (5, True)
    assert '<span class="atb-count-capped">more than 5</span> trades' in response.content.decode()


def test_trades_filter_by_bot_symbol_and_date_range(
    bot: Bot, admin_client_logged_in: Client
) -> None:
    other = make_bot("other_001")
    day = timedelta(days=1)
    make_trade(bot, trade_id="a", symbol="BTC/USDT", entry_time=T0)
    make_trade(bot, trade_id="b", symbol="ETH/USDT", entry_time=T0 + day)
    make_trade(bot, trade_id="c", symbol="ETH/USDT", entry_time=T0 + 2 * day)
    make_trade(other, trade_id="d", symbol="ETH/USDT", entry_time=T0 + day)
    url = admin_url(Trade, "changelist")

    def trade_ids(query: str) -> list[str]:
        response = admin_client_logged_in.get(f"{url}?{query}")
        assert response.status_code == 200
        return sorted(t.trade_id for t in response.context["cl"].result_list)

    assert trade_ids("symbol=ETH/USDT") == ["b", "c", "d"]
    assert trade_ids("symbol=ETH/USDT&bot__bot_id__exact=momentum_001") == ["b", "c"]
    # T0 is 2026-01-05: since and until are whole UTC days, both included.
    assert trade_ids("entry_time__since=2026-01-06&entry_time__until=2026-01-06") == ["b", "d"]
    assert trade_ids("entry_time__since=2026-01-06") == ["b", "c", "d"]
    assert trade_ids("entry_time__until=2026-01-05") == ["a"]


def test_a_malformed_date_sends_the_list_back_unfiltered(
    bot: Bot, admin_client_logged_in: Client
) -> None:
    url = admin_url(Trade, "changelist")

    response = admin_client_logged_in.get(f"{url}?entry_time__since=yesterday")

    assert response.status_code == 302
    assert response["Location"] == f"{url}?e=1"


def test_market_data_filtered_by_symbol_walks_the_candle_index(
    db: None, admin_client_logged_in: Client
) -> None:
    for minute in range(3):
        make_candle(symbol="ETH/USDT", ts=T0 + timedelta(minutes=minute))
    make_candle(symbol="BTC/USDT")
    url = admin_url(MarketData, "changelist")

    filtered = admin_client_logged_in.get(f"{url}?symbol=ETH/USDT&timeframe__exact=1m")
    unfiltered = admin_client_logged_in.get(url)

    assert filtered.context["cl"].queryset.query.order_by[:4] == (
        "symbol",
        "exchange",
        "timeframe",
        "-ts",
    )
    assert [c.ts for c in filtered.context["cl"].result_list] == [
        T0 + timedelta(minutes=2),
        T0 + timedelta(minutes=1),
        T0,
    ]
    assert unfiltered.context["cl"].queryset.query.order_by[:1] == ("-id",)


def test_positions_are_listed_with_their_bot_in_the_same_query(
    bot: Bot, admin_client_logged_in: Client
) -> None:
    make_position(bot)

    response = admin_client_logged_in.get(admin_url(Position, "changelist"))

    assert response.context["cl"].queryset.query.select_related == {"bot": {}}


# --- API tokens ----------------------------------------------------------------------------------


@pytest.fixture
def analyst(db: None) -> User:
    return User.objects.create_user("analyst", is_staff=True)


def token_message(response: Any) -> str:
    """The one message that carries the new token."""
    found = [str(m) for m in get_messages(response.wsgi_request) if "The new token is" in str(m)]
    assert len(found) == 1
    return found[0]


def test_adding_a_bot_token_shows_it_once_and_stores_only_its_hash(
    bot: Bot, admin_client_logged_in: Client
) -> None:
    response = admin_client_logged_in.post(
        admin_url(ApiToken, "add"), {"bot": bot.pk, "user": "", "name": "vps-1"}
    )

    assert response.status_code == 302
    token = ApiToken.objects.get()
    key = token_message(response).split()[4]
    assert key.startswith("atb_")
    assert (token.bot, token.user, token.name, token.prefix) == (bot, None, "vps-1", key[:12])
    assert token.key_hash == token_hash(key) != key
    assert token_authenticate(key=key) == token
    # Shown once, on the page the add leads to; never again, and the hash never.
    shown = admin_client_logged_in.get(response["Location"]).content.decode()
    assert shown.count(key) == 1
    for page in (admin_url(ApiToken, "changelist"), admin_url(ApiToken, "change", token.pk)):
        html = admin_client_logged_in.get(page).content.decode()
        assert key not in html
        assert token.key_hash not in html
    assert token.key_hash not in shown


def test_adding_a_staff_token_binds_it_to_the_user(
    analyst: User, admin_client_logged_in: Client
) -> None:
    response = admin_client_logged_in.post(
        admin_url(ApiToken, "add"), {"bot": "", "user": analyst.pk, "name": "laptop"}
    )

    token = ApiToken.objects.get()
    assert (token.bot, token.user) == (None, analyst)
    assert token_authenticate(key=token_message(response).split()[4]) == token


@pytest.mark.parametrize("owner", ["both", "neither"])
def test_a_token_needs_a_bot_or_a_user_not_both(
    owner: str, bot: Bot, analyst: User, admin_client_logged_in: Client
) -> None:
    form = {
        "bot": bot.pk if owner == "both" else "",
        "user": analyst.pk if owner == "both" else "",
        "name": "",
    }

    response = admin_client_logged_in.post(admin_url(ApiToken, "add"), form)

    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {
        "bot": ["Choose either a bot or a staff user, not both or neither."]
    }
    assert ApiToken.objects.count() == 0


def test_only_active_staff_users_can_be_given_a_token(admin_client_logged_in: Client) -> None:
    clerk = User.objects.create_user("clerk")

    response = admin_client_logged_in.post(
        admin_url(ApiToken, "add"), {"bot": "", "user": clerk.pk, "name": ""}
    )

    assert response.status_code == 200
    assert list(response.context["adminform"].form.errors) == ["user"]
    assert ApiToken.objects.count() == 0


def test_the_revoke_action_sets_revoked_at_once(bot: Bot, admin_client_logged_in: Client) -> None:
    live = bot_token_create(bot=bot, name="live")
    earlier = timezone.now() - timedelta(days=1)
    done = bot_token_create(bot=bot, name="done").token
    ApiToken.objects.filter(pk=done.pk).update(revoked_at=earlier)

    response = admin_client_logged_in.post(
        admin_url(ApiToken, "changelist"),
        {"action": "revoke_tokens", "_selected_action": [live.token.pk, done.pk], "index": "0"},
    )

    assert response.status_code == 302
    live.token.refresh_from_db()
    done.refresh_from_db()
    assert live.token.revoked_at is not None
    assert done.revoked_at == earlier
    assert token_authenticate(key=live.key) is None
    assert [str(m) for m in get_messages(response.wsgi_request)] == [
        "1 token(s) revoked; 1 were already revoked."
    ]


def test_a_token_is_never_edited_or_deleted(bot: Bot, admin_client_logged_in: Client) -> None:
    token = bot_token_create(bot=bot, name="original").token

    change = admin_client_logged_in.post(
        admin_url(ApiToken, "change", token.pk), {"name": "renamed", "key_hash": "0" * 64}
    )
    delete = admin_client_logged_in.post(admin_url(ApiToken, "delete", token.pk), {"post": "yes"})

    assert (change.status_code, delete.status_code) == (403, 403)
    stored = ApiToken.objects.get()
    assert (stored.name, stored.key_hash) == ("original", token.key_hash)


def test_the_token_list_shows_owner_use_and_state(
    bot: Bot, analyst: User, admin_client_logged_in: Client
) -> None:
    bot_token_create(bot=bot, name="vps-1")
    key = bot_token_create(bot=bot, name="old")
    token_authenticate(key=key.key)
    ApiToken.objects.filter(pk=key.token.pk).update(revoked_at=timezone.now())
    staff_token_create(user=analyst, name="laptop")

    response = admin_client_logged_in.get(admin_url(ApiToken, "changelist"))
    revoked = admin_client_logged_in.get(admin_url(ApiToken, "changelist") + "?state=revoked")

    cl = response.context["cl"]
    rows = [
        (cl.model_admin.owner(t), t.name, t.last_used_at is not None, cl.model_admin.revoked(t))
        for t in cl.result_list
    ]
    assert rows == [
        ("user analyst", "laptop", False, False),
        ("bot momentum_001", "old", True, True),
        ("bot momentum_001", "vps-1", False, False),
    ]
    assert [t.name for t in revoked.context["cl"].result_list] == ["old"]
