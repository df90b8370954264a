"""A version written while a schema edit is in flight is checked against the edited schema:
the writer waits for the edit's lock, so no version goes in force against a schema that is
being replaced (two real sessions)."""

import copy
import threading
import time
from typing import Any

import psycopg
import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from psycopg.types.json import Jsonb

from botconfig.demo.specs import SPECS
from botconfig.models import BotConfiguration, StrategySchema
from botconfig.services import config_version_create
from tests.factories import make_bot

GOOD = next(spec for spec in SPECS if spec.strategy_type == "trend_following").config


@pytest.mark.django_db(transaction=True)
def test_a_version_written_during_a_schema_edit_is_checked_against_the_edit() -> None:
    bot = make_bot("trend_race", strategy_type="trend_following")
    config_version_create(bot=bot, config=GOOD, user=None, change_reason="first")
    schema = StrategySchema.objects.get(strategy_type="trend_following")
    edited = copy.deepcopy(schema.schema)
    edited["properties"]["risk"]["properties"]["max_open_positions"]["maximum"] = 3
    four = copy.deepcopy(GOOD)
    four["risk"]["max_open_positions"] = 4
    outcome: dict[str, Any] = {}

    def write() -> None:
        try:
            config_version_create(bot=bot, config=four, user=None, change_reason="more")
            outcome["written"] = True
        except ValidationError as exc:
            outcome["refused"] = exc.message_dict
        finally:
            connection.close()

    settings = connection.settings_dict
    with psycopg.connect(
        dbname=settings["NAME"],
        host=settings["HOST"],
        port=settings["PORT"],
        user=settings["USER"],
        password=settings["PASSWORD"] or None,
    ) as editor:  # the schema edit, in flight: row locked, not yet committed
        editor.execute(
            "SELECT 1 FROM config.strategy_schemas WHERE id = %s FOR UPDATE", [schema.pk]
        )
        editor.execute(
            "UPDATE config.strategy_schemas SET schema = %s, version = 2 WHERE id = %s",
            [Jsonb(edited), schema.pk],
        )
        writer = threading.Thread(target=write)
        writer.start()
        time.sleep(0.5)
        waited = writer.is_alive()  # the writer waits for the edit
        editor.commit()
    writer.join(timeout=10)

    assert (waited, writer.is_alive()) == (True, False)
    assert outcome == {"refused": {"config": ["risk.max_open_positions: must be <= 3 (got 4)"]}}
    assert list(BotConfiguration.objects.filter(bot=bot).values_list("version", flat=True)) == [1]
