"""A lone surrogate or a value nested too deep in a configuration, a strategy schema or a bot's
metadata is refused naming the field and the reason, never a 500 (issue 14, items 5 and 11).

A lone UTF-16 surrogate ("\\ud800" in JSON text) is not text: UTF-8 and PostgreSQL cannot hold
it, and a page showing it back cannot be encoded. Nesting deeper than the API's JSON_MAX_DEPTH
(32 levels of objects and arrays) is refused as the API refuses it; thousands of levels exhaust
Python's stack when parsed, validated or shown. The admin tests run as a staff member who is not
a superuser, with only the permissions the work needs, through the real admin with CSRF checks.
"""

import copy
import json
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse
from django.utils.html import escape

from audit.models import ChangeLog
from botconfig.models import BotConfiguration, StrategySchema
from botconfig.services import (
    bot_register,
    bot_update,
    config_version_create,
    strategy_schema_save,
)
from tests.config_support import CONFIG_PERMISSIONS, GOOD, csrf_client, live_trend_bot, staff_member
from tests.factories import make_bot
from trading.api.shapes import JSON_MAX_DEPTH
from trading.models import Bot

pytestmark = pytest.mark.django_db

# The audit's two inputs, as JSON text typed in the form's textarea.
SURROGATE_TEXT = '{"risk": {"stop_loss_pct": "\\ud800"}}'
DEEP_TEXT = '{"risk": {"stop_loss_pct": ' + "[" * 5000 + "]" * 5000 + "}}"
SURROGATE_ERROR = (
    "risk.stop_loss_pct: contains a lone UTF-16 surrogate (\\ud800), which is not text"
)
DEEP_ERROR = "nests deeper than 32 levels of objects and arrays"
FIELD_ERRORS = {"surrogate": SURROGATE_ERROR, "deep": f"The value {DEEP_ERROR}"}
TEXTS = {"surrogate": SURROGATE_TEXT, "deep": DEEP_TEXT}


def nested(levels: int) -> list[Any]:
    """A JSON array ``levels`` levels deep, itself the first."""
    value: list[Any] = []
    for _ in range(levels - 1):
        value = [value]
    return value


@pytest.fixture
def live_bot(db: None) -> Bot:
    return live_trend_bot()


@pytest.fixture
def client(db: None) -> Client:
    return csrf_client(staff_member(*CONFIG_PERMISSIONS, "add_bot", "change_bot"))


def everything() -> tuple[Any, ...]:
    """What a refused input must leave as it was."""
    return (
        list(Bot.objects.order_by("bot_id").values()),
        list(BotConfiguration.objects.order_by("id").values()),
        list(StrategySchema.objects.order_by("id").values()),
        ChangeLog.objects.count(),
    )


BOT_FORM = {
    "name": "Trend",
    "strategy_type": "trend_following",
    "exchange": "binance",
    "base_currency": "USDT",
    "status": "active",
    "mode": "paper",
    "initial_capital_usd": "10000",
    "metadata": "{}",
}


def form_of(page: str, live_bot: Bot) -> tuple[str, dict[str, str], str]:
    """The admin page's URL, its other fields filled in, and the JSON field under test."""
    if page == "configuration":
        version = BotConfiguration.objects.get(bot=live_bot, is_active=True)
        url = reverse("admin:botconfig_botconfiguration_change", args=[version.pk])
        return url, {"reason": "a reason"}, "config"
    if page == "schema":
        schema = StrategySchema.objects.get(strategy_type="trend_following")
        url = reverse("admin:botconfig_strategyschema_change", args=[schema.pk])
        return url, {"reason": "a reason"}, "schema"
    if page == "bot metadata":
        url = reverse("admin:trading_bot_change", args=[live_bot.pk])
        return url, {**BOT_FORM, "name": live_bot.name}, "metadata"
    assert page == "new bot's configuration"
    url = reverse("admin:trading_bot_add")
    return url, {**BOT_FORM, "bot_id": "trend_002"}, "initial_config"


@pytest.mark.parametrize("problem", ["surrogate", "deep"])
@pytest.mark.parametrize(
    "page", ["configuration", "schema", "bot metadata", "new bot's configuration"]
)
def test_the_admin_refuses_it_naming_the_field_and_writes_nothing(
    live_bot: Bot, client: Client, page: str, problem: str
) -> None:
    url, data, field = form_of(page, live_bot)
    before = everything()
    form_page = client.get(url)
    assert form_page.status_code == 200

    response = client.post(
        url,
        {**data, field: TEXTS[problem], "csrfmiddlewaretoken": form_page.context["csrf_token"]},
    )

    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {field: [FIELD_ERRORS[problem]]}
    if problem == "surrogate":  # shown back as typed, so it can be corrected
        assert f">\n{escape(SURROGATE_TEXT)}</textarea>" in response.content.decode()
    assert everything() == before


def test_the_admin_accepts_the_deepest_value_the_api_does(live_bot: Bot, client: Client) -> None:
    version = BotConfiguration.objects.get(bot=live_bot, is_active=True)
    url = reverse("admin:botconfig_botconfiguration_change", args=[version.pk])
    config = {**GOOD, "notes": nested(JSON_MAX_DEPTH - 1)}  # the configuration is level 1
    too_deep = {**GOOD, "notes": nested(JSON_MAX_DEPTH)}
    token = client.get(url).context["csrf_token"]

    refused = client.post(
        url, {"config": json.dumps(too_deep), "reason": "x", "csrfmiddlewaretoken": token}
    )
    accepted = client.post(
        url, {"config": json.dumps(config), "reason": "x", "csrfmiddlewaretoken": token}
    )

    assert refused.context["adminform"].form.errors == {"config": [FIELD_ERRORS["deep"]]}
    assert accepted.status_code == 302
    assert BotConfiguration.objects.get(bot=live_bot, is_active=True).config == config


# --- The services: a refusal, never a traceback -----------------------------------------------


SURROGATE_CONFIGS = {
    "value": ({**GOOD, "risk": {**GOOD["risk"], "stop_loss_pct": "\ud800"}}, SURROGATE_ERROR),
    "key": (
        {**GOOD, "notes": [{"a\udfffb": 1}]},
        "notes.0.a\\udfffb: contains a lone UTF-16 surrogate (\\udfff), which is not text",
    ),
}


@pytest.mark.parametrize("where", ["value", "key"])
def test_the_configuration_service_refuses_a_lone_surrogate(live_bot: Bot, where: str) -> None:
    config, error = SURROGATE_CONFIGS[where]
    before = everything()

    with pytest.raises(ValidationError) as refused:
        config_version_create(bot=live_bot, config=config, user=None, change_reason="x")

    assert refused.value.message_dict == {"config": [error]}
    assert everything() == before


@pytest.mark.parametrize("levels", [JSON_MAX_DEPTH, 5000])
def test_the_configuration_service_refuses_a_value_nested_too_deep(
    live_bot: Bot, levels: int
) -> None:
    before = everything()

    with pytest.raises(ValidationError) as refused:
        config_version_create(
            bot=live_bot, config={**GOOD, "notes": nested(levels)}, user=None, change_reason="x"
        )
    config_version_create(
        bot=live_bot,
        config={**GOOD, "notes": nested(JSON_MAX_DEPTH - 1)},
        user=None,
        change_reason="x",
    )

    assert refused.value.message_dict == {"config": [f"(the configuration): {DEEP_ERROR}"]}
    assert BotConfiguration.objects.filter(bot=live_bot).count() == len(before[1]) + 1


@pytest.mark.parametrize("problem", ["surrogate", "deep"])
def test_the_schema_service_refuses_it(live_bot: Bot, problem: str) -> None:
    schema = StrategySchema.objects.get(strategy_type="trend_following")
    document = copy.deepcopy(schema.schema)
    if problem == "surrogate":
        document["properties"]["risk"]["description"] = "\ud800"
        error = (
            "Not a valid JSON Schema: properties.risk.description: contains a lone UTF-16 "
            "surrogate (\\ud800), which is not text"
        )
    else:
        document["properties"]["notes"] = {"default": nested(5000)}
        error = f"Not a valid JSON Schema: it {DEEP_ERROR}"
    before = everything()

    with pytest.raises(ValidationError) as refused:
        strategy_schema_save(
            strategy_type="trend_following", document=document, user=None, reason="x"
        )

    assert refused.value.messages == [error]
    assert everything() == before


@pytest.mark.parametrize("problem", ["surrogate", "deep"])
def test_the_bot_services_refuse_it_in_metadata(live_bot: Bot, problem: str) -> None:
    metadata: dict[str, Any] = {"note": "\ud800"} if problem == "surrogate" else {"n": nested(5000)}
    error = (
        "note: contains a lone UTF-16 surrogate (\\ud800), which is not text"
        if problem == "surrogate"
        else f"The value {DEEP_ERROR}"
    )
    before = everything()

    with pytest.raises(ValidationError) as registered:
        bot_register(
            bot_id="trend_002",
            name="Trend",
            strategy_type="trend_following",
            exchange="binance",
            initial_capital_usd=live_bot.initial_capital_usd,
            metadata=metadata,
        )
    with pytest.raises(ValidationError) as updated:
        bot_update(bot=live_bot, data={"metadata": metadata}, user=None)

    assert registered.value.message_dict == updated.value.message_dict == {"metadata": [error]}
    assert everything() == before


def register_with(path: Path) -> None:
    call_command(
        "register_bot",
        "trend_003",
        "--name=Trend",
        "--strategy-type=trend_following",
        "--initial-capital=1000",
        f"--config={path}",
        stdout=StringIO(),
    )


def test_register_bot_refuses_a_config_file_with_a_lone_surrogate(tmp_path: Path) -> None:
    path = tmp_path / "trend.json"
    text = json.dumps({**GOOD, "risk": {**GOOD["risk"], "stop_loss_pct": "@"}})
    path.write_text(text.replace('"@"', '"\\ud800"'))
    before = everything()

    with pytest.raises(CommandError) as refused:
        register_with(path)

    assert str(refused.value) == (
        f"register_bot: the configuration is refused: {SURROGATE_ERROR}; nothing written"
    )
    assert everything() == before


def test_register_bot_refuses_a_config_file_nested_thousands_deep(tmp_path: Path) -> None:
    path = tmp_path / "trend.json"
    path.write_text('{"notes": ' + "[" * 5000 + "]" * 5000 + "}")
    before = everything()

    with pytest.raises(CommandError) as refused:
        register_with(path)

    assert str(refused.value) == f"register_bot: --config {path}: the value {DEEP_ERROR}"
    assert everything() == before


def test_a_bot_whose_metadata_was_stored_too_deep_opens_with_a_note_and_can_be_replaced(
    client: Client,
) -> None:
    bot = make_bot("deep_001", metadata={"n": nested(930)})  # as written before the limit
    url = reverse("admin:trading_bot_change", args=[bot.pk])

    page = client.get(url)
    replaced = client.post(
        url,
        {
            **BOT_FORM,
            "name": bot.name,
            "metadata": '{"a": 1}',
            "csrfmiddlewaretoken": page.context["csrf_token"],
        },
    )

    assert page.status_code == 200
    assert (
        "(Not shown: the stored value nests 931 levels deep, deeper than the 32 a JSON value "
        "may. Enter a new value to replace it.)</textarea>"
    ) in page.content.decode()
    assert replaced.status_code == 302
    bot.refresh_from_db()
    assert bot.metadata == {"a": 1}
