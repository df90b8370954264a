"""register_bot: the bot, its first configuration version and an opening balance."""

import json
import re
import shlex
from datetime import UTC, datetime
from decimal import Decimal
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from botconfig.demo.seed import demo_seed
from botconfig.models import BotConfiguration
from tests.importers.legacy_support import snapshot
from trading.models import AccountBalance, Bot

pytestmark = pytest.mark.django_db


def register(*args: str) -> str:
    out = StringIO()
    call_command("register_bot", "lxalgo_001", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "lxalgo.json"
    path.write_text(json.dumps({"symbols": ["BTC/USDT"], "risk": {"max_leverage": 2}}))
    return path


def args(config_file: Path, capital: str = "10000") -> list[str]:
    return [
        "--name=LXAlgo",
        "--strategy-type=breakout",
        f"--initial-capital={capital}",
        f"--config={config_file}",
        "--at=2025-06-01T00:00:00Z",
    ]


def test_registers_the_bot_its_configuration_and_an_opening_balance(config_file: Path) -> None:
    output = register(*args(config_file))

    assert "registered bot lxalgo_001: configuration version 1" in output
    bot = Bot.objects.get(pk="lxalgo_001")
    assert (bot.name, bot.strategy_type, bot.exchange, bot.initial_capital_usd) == (
        "LXAlgo",
        "breakout",
        "binance",
        Decimal("10000"),
    )
    config = BotConfiguration.objects.get(bot=bot)
    assert (config.version, config.is_active) == (1, True)
    assert config.config == {"symbols": ["BTC/USDT"], "risk": {"max_leverage": 2}}
    opening = AccountBalance.objects.get(bot=bot)
    assert (opening.ts, opening.balance_usd, opening.equity_usd, opening.snapshot_type) == (
        datetime(2025, 6, 1, tzinfo=UTC),
        Decimal("10000"),
        Decimal("10000"),
        "manual",
    )


def test_a_second_run_with_the_same_values_changes_nothing(config_file: Path) -> None:
    register(*args(config_file))
    before = snapshot()

    output = register(*args(config_file))

    assert output.startswith("nothing to do: bot lxalgo_001 is already registered")
    assert snapshot() == before


def test_different_values_for_an_existing_bot_are_refused(
    config_file: Path, tmp_path: Path
) -> None:
    register(*args(config_file))
    before = snapshot()

    with pytest.raises(CommandError, match=r"initial_capital is 10000\.00000000, not 9000"):
        register(*args(config_file, capital="9000"))
    other = tmp_path / "other.json"
    other.write_text("{}")
    with pytest.raises(CommandError, match="active configuration"):
        register(*args(other))

    assert snapshot() == before


def test_dry_run_writes_nothing(config_file: Path) -> None:
    before = snapshot()

    output = register(*args(config_file), "--dry-run")

    assert output.startswith("would register bot lxalgo_001")
    assert snapshot() == before


def readme_command(command: str) -> list[str]:
    """The arguments of README.md's one ``make manage ARGS="<command> ..."`` line."""
    readme = (settings.BASE_DIR / "README.md").read_text(encoding="utf-8")
    lines = re.findall(rf'^make manage ARGS="({command} [^"]*)"$', readme, re.MULTILINE)
    assert len(lines) == 1
    return shlex.split(lines[0])


def test_the_readmes_register_bot_command_works_as_written_next_to_the_demo(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    demo_seed()  # what a fresh `make run` holds
    demo = snapshot()
    monkeypatch.chdir(settings.BASE_DIR)  # where `make manage` runs manage.py
    command, *arguments = readme_command("register_bot")

    out = StringIO()
    call_command(command, *arguments, stdout=out)

    assert out.getvalue().startswith(
        "registered bot lxalgo_001: configuration version 1, opening balance 10000"
    )
    bot = Bot.objects.get(pk="lxalgo_001")
    example = json.loads((settings.BASE_DIR / "docs/examples/lxalgo.json").read_text())
    assert BotConfiguration.objects.get(bot=bot).config == example
    assert (bot.name, bot.strategy_type, bot.mode, bot.initial_capital_usd) == (
        "LXAlgo",
        "mean_reversion",
        "paper",
        Decimal("10000"),
    )
    assert (bot.max_position_size_usd, bot.max_leverage, bot.max_open_positions) == (
        Decimal("2000"),
        Decimal("5"),
        3,
    )
    after = snapshot()  # the demo's rows as they were; the new ones (later ids) after them
    assert {table: after[table][: len(rows)] for table, rows in demo.items()} == demo


def test_without_config_a_type_whose_schema_requires_keys_is_refused_naming_each_key_once() -> None:
    before = snapshot()

    with pytest.raises(CommandError) as refused:
        register("--name=LXAlgo", "--strategy-type=mean_reversion", "--initial-capital=10000")

    assert str(refused.value) == (
        "register_bot: the configuration is refused: exchange: required; pause_on_breach: "
        "required; risk: required; strategy: required; symbols: required; timeframe: required; "
        "nothing written. No --config was given, so the configuration was {}: give the bot's "
        "with --config file.json (docs/examples/lxalgo.json is one for mean_reversion)"
    )
    assert snapshot() == before
