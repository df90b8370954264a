"""A configuration cannot put nonsense in force (issue 14, item 11).

Every version is validated against its strategy type's schema (config.strategy_schemas, staff
edit it as data); a refusal names the key and the reason and writes nothing; a change to a live
bot needs a reason; the bot's risk-limit columns follow the configuration put in force.

The admin tests run as a staff member who is not a superuser, with only the permissions the
work needs, through the real admin with CSRF checks on.
"""

import copy
import json
from decimal import Decimal
from io import StringIO
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse

from audit.models import ChangeLog
from botconfig.demo.seed import demo_seed
from botconfig.demo.specs import SPECS
from botconfig.models import BotConfiguration, StrategySchema
from botconfig.services import (
    BOT_EDITABLE_FIELDS,
    bot_register,
    bot_update,
    config_rollback,
    config_version_create,
    strategy_schema_save,
)
from botconfig.validation import config_errors, limits_of
from tests.config_support import (
    CONFIG_PERMISSIONS,
    GOOD,
    csrf_client,
    live_trend_bot,
    staff_member,
)
from tests.factories import make_bot
from trading.models import Bot

pytestmark = pytest.mark.django_db

BAD_VALUES = [
    "risk.max_leverage: must be a number (got 'abc')",
    "risk.stop_loss_pct: must be > 0 (got -5)",
]


def with_risk(**risk: Any) -> dict[str, Any]:
    config = copy.deepcopy(GOOD)
    config["risk"].update(risk)
    return config


@pytest.fixture
def live_bot(db: None) -> Bot:
    return live_trend_bot()


@pytest.fixture
def staff(db: None) -> User:
    return staff_member(*CONFIG_PERMISSIONS)


@pytest.fixture
def client(staff: User) -> Client:
    return csrf_client(staff)


def post_form(client: Client, url: str, data: dict[str, str]) -> Any:
    """Fetch the form (which sets the CSRF cookie), then post it with its token."""
    page = client.get(url)
    assert page.status_code == 200
    return client.post(url, {**data, "csrfmiddlewaretoken": page.context["csrf_token"]})


def config_url(version: BotConfiguration) -> str:
    return reverse("admin:botconfig_botconfiguration_change", args=[version.pk])


def post_config(client: Client, bot: Bot, config: dict[str, Any], reason: str) -> Any:
    """Save the form of the bot's version in force with ``config``."""
    in_force = BotConfiguration.objects.get(bot=bot, is_active=True)
    return post_form(client, config_url(in_force), {"config": json.dumps(config), "reason": reason})


def schema_url(schema: StrategySchema) -> str:
    return reverse("admin:botconfig_strategyschema_change", args=[schema.pk])


def snapshot(bot: Bot) -> tuple[Any, ...]:
    """What a refused change must leave as it was."""
    bot.refresh_from_db()
    return (
        list(BotConfiguration.objects.filter(bot=bot).values_list("version", "is_active")),
        BotConfiguration.objects.get(bot=bot, is_active=True).config,
        ChangeLog.objects.count(),
        bot.max_leverage,
        bot.max_open_positions,
    )


# --- The admin --------------------------------------------------------------------------------


def test_the_audits_two_bad_values_are_refused_naming_the_key_and_nothing_changes(
    live_bot: Bot, client: Client
) -> None:
    before = snapshot(live_bot)

    response = post_config(client, live_bot, with_risk(stop_loss_pct=-5, max_leverage="abc"), "x")

    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {"config": BAD_VALUES}
    assert snapshot(live_bot) == before


def test_a_good_change_to_a_live_bot_without_a_reason_is_refused(
    live_bot: Bot, client: Client
) -> None:
    before = snapshot(live_bot)

    response = post_config(client, live_bot, with_risk(max_open_positions=4), "  ")

    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {
        "reason": ["A change to a live (active) bot needs a reason."]
    }
    assert snapshot(live_bot) == before


def test_with_a_reason_it_goes_in_force_the_reason_is_logged_and_the_limits_follow(
    live_bot: Bot, staff: User, client: Client
) -> None:
    assert live_bot.max_open_positions == 3

    response = post_config(client, live_bot, with_risk(max_open_positions=4), "one more position")

    assert response.status_code == 302
    v2 = BotConfiguration.objects.get(bot=live_bot, is_active=True)
    assert (v2.version, v2.config["risk"]["max_open_positions"], v2.created_by) == (2, 4, staff)
    assert v2.schema is not None
    assert (v2.schema.strategy_type, v2.schema_version) == ("trend_following", 1)
    record = ChangeLog.objects.filter(entity_id=str(v2.pk)).get()
    assert (record.note, record.user) == ("one more position", staff)
    assert record.new_values["schema"] == {"strategy_type": "trend_following", "version": 1}
    live_bot.refresh_from_db()
    assert (live_bot.max_open_positions, live_bot.max_leverage) == (4, Decimal(1))
    bot_record = ChangeLog.objects.filter(entity_type="trading.bot").latest("id")
    assert (bot_record.old_values, bot_record.new_values, bot_record.note) == (
        {"max_open_positions": 3},
        {"max_open_positions": 4},
        "from configuration version 2: one more position",
    )


def test_a_schema_edited_by_staff_in_the_admin_changes_what_is_accepted(
    live_bot: Bot, staff: User, client: Client
) -> None:
    schema = StrategySchema.objects.get(strategy_type="trend_following")
    document = copy.deepcopy(schema.schema)
    document["properties"]["risk"]["properties"]["max_open_positions"]["maximum"] = 3

    edited = post_form(
        client, schema_url(schema), {"schema": json.dumps(document), "reason": "at most 3"}
    )
    refused = post_config(client, live_bot, with_risk(max_open_positions=4), "more")

    assert edited.status_code == 302
    schema.refresh_from_db()
    assert (schema.version, schema.updated_by) == (2, staff)
    record = ChangeLog.objects.filter(entity_type="botconfig.strategyschema").get()
    assert (record.note, record.old_values["version"], record.new_values["version"]) == (
        "at most 3",
        1,
        2,
    )
    assert refused.status_code == 200
    assert refused.context["adminform"].form.errors == {
        "config": ["risk.max_open_positions: must be <= 3 (got 4)"]
    }
    assert BotConfiguration.objects.filter(bot=live_bot).count() == 1


def test_a_schema_edit_the_configuration_in_force_would_fail_is_refused(
    live_bot: Bot, client: Client
) -> None:
    schema = StrategySchema.objects.get(strategy_type="trend_following")
    document = copy.deepcopy(schema.schema)
    document["properties"]["risk"]["properties"]["max_leverage"]["exclusiveMinimum"] = 1
    before = (copy.deepcopy(schema.schema), ChangeLog.objects.count())

    response = post_form(
        client, schema_url(schema), {"schema": json.dumps(document), "reason": "x"}
    )

    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {
        "schema": [
            "The configuration in force of trend_001 (version 1) would fail it: "
            "risk.max_leverage: must be > 1 (got 1)"
        ]
    }
    schema.refresh_from_db()
    assert ((schema.schema, ChangeLog.objects.count()), schema.version) == (before, 1)


def test_a_schema_that_is_not_a_json_schema_is_refused(live_bot: Bot, client: Client) -> None:
    schema = StrategySchema.objects.get(strategy_type="trend_following")
    document = {**schema.schema, "type": "thing"}

    response = post_form(
        client, schema_url(schema), {"schema": json.dumps(document), "reason": "x"}
    )

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors["schema"]
    assert errors[0].startswith("Not a valid JSON Schema: 'thing' is not valid under any")
    schema.refresh_from_db()
    assert (schema.version, schema.schema["type"]) == (1, "object")


# --- The services: every path that writes a version -------------------------------------------


def test_the_service_refuses_and_writes_nothing(live_bot: Bot) -> None:
    before = snapshot(live_bot)

    with pytest.raises(ValidationError) as refused:
        config_version_create(
            bot=live_bot,
            config=with_risk(stop_loss_pct=-5, max_leverage="abc"),
            user=None,
            change_reason="x",
        )
    with pytest.raises(ValidationError) as no_reason:
        config_version_create(bot=live_bot, config=with_risk(leverage=1), user=None)

    assert refused.value.message_dict == {"config": BAD_VALUES}
    assert no_reason.value.message_dict == {
        "change_reason": ["A change to a live (active) bot needs a reason."]
    }
    assert snapshot(live_bot) == before


def test_a_required_key_missing_is_named(live_bot: Bot) -> None:
    config = copy.deepcopy(GOOD)
    del config["risk"]["max_drawdown_pct"]

    with pytest.raises(ValidationError) as refused:
        config_version_create(bot=live_bot, config=config, user=None, change_reason="x")

    assert refused.value.message_dict == {"config": ["risk.max_drawdown_pct: required"]}


def test_a_paused_bot_needs_no_reason(live_bot: Bot) -> None:
    Bot.objects.filter(pk=live_bot.pk).update(status="paused")

    version = config_version_create(bot=live_bot, config=with_risk(leverage=1.0), user=None)

    assert (version.version, version.change_reason) == (2, "")


def test_rolling_back_to_a_version_the_schema_now_refuses_writes_nothing(live_bot: Bot) -> None:
    old = BotConfiguration.objects.create(  # written before schemas existed
        bot=live_bot,
        version=99,
        config=with_risk(stop_loss_pct=-5),
        effective_from="2020-01-01T00:00:00Z",
        effective_to="2020-01-02T00:00:00Z",
        is_active=False,
    )
    before = snapshot(live_bot)

    with pytest.raises(ValidationError) as refused:
        config_rollback(version=old, user=None, change_reason="back")

    assert refused.value.message_dict == {"config": ["risk.stop_loss_pct: must be > 0 (got -5)"]}
    assert snapshot(live_bot) == before


def test_registering_a_bot_with_a_bad_first_configuration_writes_nothing(db: None) -> None:
    with pytest.raises(ValidationError) as refused:
        bot_register(
            bot_id="trend_002",
            name="Trend",
            strategy_type="trend_following",
            exchange="binance",
            initial_capital_usd=Decimal(1000),
            config=with_risk(max_leverage="abc"),
        )

    assert refused.value.message_dict == {
        "config": ["risk.max_leverage: must be a number (got 'abc')"]
    }
    assert (Bot.objects.count(), BotConfiguration.objects.count(), ChangeLog.objects.count()) == (
        0,
        0,
        0,
    )


def test_the_default_schema_checks_the_types_of_known_keys_of_any_strategy(db: None) -> None:
    bot = make_bot("grid_001", strategy_type="grid", status="paused")

    with pytest.raises(ValidationError) as refused:
        config_version_create(bot=bot, config={"risk": {"max_open_positions": 2.5}}, user=None)
    version = config_version_create(bot=bot, config={"grid": {"levels": 10}}, user=None)

    assert refused.value.message_dict == {
        "config": ["risk.max_open_positions: must be an integer (got 2.5)"]
    }
    assert version.schema is not None
    assert (version.schema.strategy_type, version.config) == ("default", {"grid": {"levels": 10}})


def test_the_limit_columns_are_not_edited_on_the_bot(live_bot: Bot) -> None:
    assert not [name for name in BOT_EDITABLE_FIELDS if name.startswith("max_")]
    with pytest.raises(ValidationError, match="max_leverage"):
        bot_update(bot=live_bot, data={"max_leverage": Decimal(9)}, user=None)


def test_every_demo_configuration_is_valid_by_its_schema(db: None) -> None:
    for spec in SPECS:
        for config in (spec.config, spec.config_v2):
            if config is not None:
                assert config_errors(strategy_type=spec.strategy_type, config=config)[1] == []


def test_a_live_bots_rollback_needs_a_reason_a_paused_ones_defaults_it(
    live_bot: Bot, client: Client
) -> None:
    v1 = BotConfiguration.objects.get(bot=live_bot, is_active=True)
    config_version_create(
        bot=live_bot, config=with_risk(leverage=1.0), user=None, change_reason="x"
    )
    url = reverse("admin:botconfig_botconfiguration_rollback", args=[v1.pk])
    before = snapshot(live_bot)

    refused = post_form(client, url, {"reason": ""})

    assert refused.status_code == 200
    assert refused.context["form"].errors == {
        "reason": ["A change to a live (active) bot needs a reason."]
    }
    assert snapshot(live_bot) == before
    Bot.objects.filter(pk=live_bot.pk).update(status="paused")
    v3 = config_rollback(version=v1, user=None)
    assert (v3.version, v3.change_reason, v3.config) == (3, "roll back to version 1", GOOD)


def test_register_bot_refuses_a_bad_config_file_naming_the_key(db: None, tmp_path: Any) -> None:
    path = tmp_path / "trend.json"
    path.write_text(json.dumps(with_risk(stop_loss_pct=-5)))

    with pytest.raises(CommandError) as refused:
        call_command(
            "register_bot",
            "trend_003",
            "--name=Trend",
            "--strategy-type=trend_following",
            "--initial-capital=1000",
            f"--config={path}",
            stdout=StringIO(),
        )

    assert str(refused.value) == (
        "register_bot: the configuration is refused: risk.stop_loss_pct: must be > 0 (got -5); "
        "nothing written"
    )
    assert (Bot.objects.count(), BotConfiguration.objects.count(), ChangeLog.objects.count()) == (
        0,
        0,
        0,
    )


def test_the_bot_admin_refuses_a_bad_first_configuration_or_a_type_its_config_fails(
    live_bot: Bot, admin_client_logged_in: Client
) -> None:
    form = {
        "name": "Trend",
        "strategy_type": "trend_following",
        "exchange": "binance",
        "base_currency": "USDT",
        "status": "active",
        "mode": "paper",
        "initial_capital_usd": "1000",
        "metadata": "{}",
    }
    before = (Bot.objects.count(), ChangeLog.objects.count())

    added = admin_client_logged_in.post(
        reverse("admin:trading_bot_add"),
        {**form, "bot_id": "trend_004", "initial_config": json.dumps(with_risk(leverage=0))},
    )
    retyped = admin_client_logged_in.post(
        reverse("admin:trading_bot_change", args=[live_bot.pk]),
        {**form, "strategy_type": "mean_reversion"},
    )

    assert added.context["adminform"].form.errors == {
        "initial_config": ["risk.leverage: must be >= 1 (got 0)"]
    }
    retype_error = retyped.context["adminform"].form.errors["strategy_type"][0]
    assert retype_error.startswith(
        "The configuration in force (version 1) fails this type's schema: "
        "strategy.band_period: required"
    )
    live_bot.refresh_from_db()
    assert live_bot.strategy_type == "trend_following"
    assert (Bot.objects.count(), ChangeLog.objects.count()) == before


def test_the_demo_bots_limits_are_those_of_their_configuration_in_force(db: None) -> None:
    demo_seed()

    for version in BotConfiguration.objects.filter(is_active=True).select_related("bot"):
        limits = {name: getattr(version.bot, name) for name in limits_of(version.config)[0]}
        assert limits == limits_of(version.config)[0]
    momentum = BotConfiguration.objects.get(is_active=True, bot__strategy_type="trend_following")
    assert (momentum.version, momentum.bot.max_open_positions) == (2, 4)


@pytest.mark.parametrize(
    ("ref", "error"),
    [
        ("#/nope", "Not a valid JSON Schema: '#/nope' does not point inside this schema."),
        (
            "https://example.com/risk.json",
            "Not a valid JSON Schema: 'https://example.com/risk.json' does not point inside "
            "this schema.",
        ),
    ],
    ids=["dangling", "remote"],
)
def test_a_schema_whose_reference_points_outside_it_is_refused(
    live_bot: Bot, ref: str, error: str
) -> None:
    schema = StrategySchema.objects.get(strategy_type="trend_following")
    document = copy.deepcopy(schema.schema)
    document["properties"]["risk"] = {"$ref": ref}
    before = (copy.deepcopy(schema.schema), ChangeLog.objects.count())

    with pytest.raises(ValidationError) as refused:
        strategy_schema_save(
            strategy_type="trend_following", document=document, user=None, reason="x"
        )

    assert refused.value.messages == [error]
    schema.refresh_from_db()
    assert ((schema.schema, ChangeLog.objects.count()), schema.version) == (before, 1)
