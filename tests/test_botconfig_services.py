"""Registry and configuration services: versions, rollback, diff, and their audit records."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.utils import timezone

from audit.models import ChangeLog, RiskEvent
from audit.services import risk_event_resolve
from botconfig.models import BotConfiguration
from botconfig.selectors import ConfigChange, config_active, config_diff
from botconfig.services import (
    bot_pause,
    bot_register,
    bot_resume,
    bot_update,
    config_rollback,
    config_version_create,
)
from trading.models import Bot

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(db: None) -> User:
    return User.objects.create_user("ops", password="pw", is_staff=True)


@pytest.fixture
def registered(staff: User) -> Bot:
    return bot_register(
        bot_id="lxalgo_001",
        name="LXAlgo",
        strategy_type="breakout",  # no schema of its own: the default one
        exchange="binance",
        initial_capital_usd=Decimal("10000"),
        config={"symbols": ["BTC/USDT"], "risk": {"max_leverage": 2}},
        user=staff,
    )


def test_register_writes_the_bot_its_first_version_and_two_audit_records(
    registered: Bot, staff: User
) -> None:
    version = BotConfiguration.objects.get(bot=registered)
    assert (version.version, version.is_active, version.effective_to) == (1, True, None)
    assert version.created_by == staff
    records = list(ChangeLog.objects.order_by("id").values_list("entity_type", "action", "user"))
    assert records == [
        ("trading.bot", "create", staff.pk),
        ("botconfig.botconfiguration", "create", staff.pk),
    ]
    bot_record = ChangeLog.objects.get(entity_type="trading.bot")
    assert bot_record.new_values["initial_capital_usd"] == "10000"


def test_a_change_writes_the_next_version_and_closes_the_one_in_force(
    registered: Bot, staff: User
) -> None:
    first = BotConfiguration.objects.get(bot=registered)
    second = config_version_create(
        bot=registered, config={"symbols": ["ETH/USDT"]}, user=staff, change_reason="rotate"
    )
    first.refresh_from_db()
    assert (first.is_active, first.effective_to) == (False, second.effective_from)
    assert first.config == {"symbols": ["BTC/USDT"], "risk": {"max_leverage": 2}}
    assert (second.version, second.is_active, second.effective_to) == (2, True, None)
    assert config_active(bot=registered) == second
    record = ChangeLog.objects.filter(entity_id=str(second.pk)).get()
    assert record.old_values["version"] == 1
    assert record.old_values["config"] == {"symbols": ["BTC/USDT"], "risk": {"max_leverage": 2}}
    assert record.new_values["config"] == {"symbols": ["ETH/USDT"]}
    assert record.note == "rotate"


def test_rollback_writes_a_new_version_equal_to_the_old_one(registered: Bot, staff: User) -> None:
    first = BotConfiguration.objects.get(bot=registered)
    config_version_create(
        bot=registered, config={"symbols": ["ETH/USDT"]}, user=staff, change_reason="rotate"
    )
    third = config_rollback(version=first, user=staff, change_reason="back to BTC")
    assert (third.version, third.config, third.is_active) == (3, first.config, True)
    assert third.change_reason == "back to BTC"
    assert list(
        BotConfiguration.objects.filter(bot=registered)
        .order_by("version")
        .values_list("version", "is_active")
    ) == [(1, False), (2, False), (3, True)]
    assert ChangeLog.objects.filter(action="rollback", entity_id=str(third.pk)).count() == 1


def test_a_configuration_that_is_not_an_object_is_refused(registered: Bot, staff: User) -> None:
    with pytest.raises(ValidationError, match="JSON object"):
        config_version_create(bot=registered, config=["not", "an", "object"], user=staff)  # type: ignore[arg-type]
    assert BotConfiguration.objects.filter(bot=registered).count() == 1


def test_config_diff_walks_nested_objects() -> None:
    old = {"a": 1, "risk": {"lev": 2, "stop": 0.05}, "gone": True}
    new = {"a": 1, "risk": {"lev": 3, "stop": 0.05, "trail": 0.01}, "extra": [1]}
    assert config_diff(old=old, new=new) == [
        ConfigChange(path="extra", kind="added", new=[1]),
        ConfigChange(path="gone", kind="removed", old=True),
        ConfigChange(path="risk.lev", kind="changed", old=2, new=3),
        ConfigChange(path="risk.trail", kind="added", new=0.01),
    ]
    assert config_diff(old=None, new={"x": 1}) == [ConfigChange(path="x", kind="added", new=1)]


def test_pause_and_resume_record_old_and_new_status(registered: Bot, staff: User) -> None:
    paused = bot_pause(bot=registered, user=staff, note="maintenance")
    resumed = bot_resume(bot=paused, user=staff)
    assert (paused.status, resumed.status) == ("paused", "active")
    records = list(
        ChangeLog.objects.filter(entity_type="trading.bot", action__in=["pause", "resume"])
        .order_by("id")
        .values_list("action", "old_values", "new_values", "note")
    )
    assert records == [
        ("pause", {"status": "active"}, {"status": "paused"}, "maintenance"),
        ("resume", {"status": "paused"}, {"status": "active"}, ""),
    ]


def test_pausing_a_paused_bot_changes_and_records_nothing(registered: Bot, staff: User) -> None:
    bot_pause(bot=registered, user=staff)
    before = ChangeLog.objects.count()
    registered.refresh_from_db()
    assert bot_pause(bot=registered, user=staff).status == "paused"
    assert ChangeLog.objects.count() == before


def test_bot_update_records_only_what_changed(registered: Bot, staff: User) -> None:
    bot_update(
        bot=registered,
        data={"name": "LXAlgo", "initial_capital_usd": Decimal("12500.5")},
        user=staff,
    )
    record = ChangeLog.objects.filter(entity_type="trading.bot", action="update").get()
    assert (record.old_values, record.new_values) == (
        {"initial_capital_usd": "10000.00000000"},
        {"initial_capital_usd": "12500.5"},
    )


def test_bot_update_refuses_server_owned_fields(registered: Bot, staff: User) -> None:
    with pytest.raises(ValidationError, match="current_equity_usd"):
        bot_update(bot=registered, data={"current_equity_usd": Decimal("1")}, user=staff)
    registered.refresh_from_db()
    assert registered.current_equity_usd is None


def test_resolving_a_risk_event_records_who_when_and_why(registered: Bot, staff: User) -> None:
    event = RiskEvent.objects.create(
        ts=timezone.now() - timedelta(minutes=3),
        bot=registered,
        event_type="daily_loss_limit",
        limit_value=Decimal("500"),
        actual_value=Decimal("612.5"),
    )
    resolved = risk_event_resolve(event=event, user=staff, note="limit raised after review")
    assert (resolved.resolved, resolved.resolved_by, resolved.resolution_note) == (
        True,
        staff,
        "limit raised after review",
    )
    record = ChangeLog.objects.get(entity_type="audit.riskevent")
    assert record.old_values["resolved"] is False
    assert record.new_values["resolved_by"] == staff.pk
    with pytest.raises(ValidationError, match="already resolved"):
        risk_event_resolve(event=event, user=staff, note="again")
    assert ChangeLog.objects.filter(entity_type="audit.riskevent").count() == 1
