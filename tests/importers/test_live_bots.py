"""Imports never disturb live bots: the README's import steps on a database seeded with the demo
data, a refusal to mix sources in one bot without ``--merge``, and open positions of a source
that went quiet long ago kept out of today's exposure."""

import shutil
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from analytics.selectors.portfolio import portfolio_summary
from analytics.services.risk import risk_limits_check
from audit.models import RiskEvent
from botconfig.demo import DEMO_BOT_IDS, demo_seed
from tests.factories import make_bot, make_position, make_trade
from tests.importers.legacy_support import (
    MOMENTUM_DB,
    SHORTSELLER_SQL,
    scratch_database,
    snapshot,
)
from trading.models import Bot, Position, Trade

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def shortseller_url() -> Iterator[str]:
    with scratch_database(SHORTSELLER_SQL.read_text(encoding="utf-8")) as url:
        yield url


def bot_states() -> dict[str, str]:
    return dict(Bot.objects.values_list("bot_id", "status"))


def readme_imports(shortseller_url: str) -> None:
    """The README's import section, as written (default bot ids)."""
    out = StringIO()
    call_command("import_shortseller", "--source-url", shortseller_url, stdout=out)
    call_command("import_momentum", "--source", str(MOMENTUM_DB), stdout=out)


def test_readme_import_steps_after_seed_demo_pause_no_bot_and_leave_the_demo_alone(
    shortseller_url: str,
) -> None:
    demo_seed()
    risk_limits_check()  # the demo's own breaches, as a fresh `make run` has them
    before = bot_states()
    demo_trades = {b: Trade.objects.filter(bot_id=b).count() for b in DEMO_BOT_IDS}

    readme_imports(shortseller_url)
    new_events = risk_limits_check()

    assert [(e.bot_id, e.event_type) for e in new_events] == []
    after = bot_states()
    assert {b: after[b] for b in before} == before  # no demo bot paused or changed
    assert {b: Trade.objects.filter(bot_id=b).count() for b in DEMO_BOT_IDS} == demo_trades
    # The legacy bots got bots of their own, their 2025 positions closed (stale).
    assert Trade.objects.filter(bot_id="momentum_001").count() == 240
    assert Trade.objects.filter(bot_id="shortseller_001").count() == 300
    assert not Position.objects.filter(bot_id__in=["momentum_001", "shortseller_001"]).exclude(
        status="closed"
    )


def momentum(*args: str) -> str:
    out = StringIO()
    call_command("import_momentum", "--source", str(MOMENTUM_DB), *args, stdout=out)
    return out.getvalue()


def test_an_import_into_a_bot_with_trades_of_another_source_refuses_with_its_counts() -> None:
    demo_seed()
    demo_trades = Trade.objects.filter(bot_id="demo_momentum").count()
    before = snapshot()

    with pytest.raises(CommandError) as refused:
        momentum("--bot-id", "demo_momentum")

    message = str(refused.value)
    assert message.startswith(
        f"import_momentum: bot demo_momentum already holds {demo_trades:,} trades from another "
        "source; nothing written. Give --merge"
    )
    lines = [line.split() for line in message.splitlines()]
    assert ["trades", "240", "240", "0", "0", "0"] in lines
    assert ["positions", "2", "2", "0", "0", "0"] in lines
    assert ["account_balance", "448", "448", "0", "0", "0"] in lines
    assert "690 rows would be created, 0 updated" in message
    assert snapshot() == before  # nothing changed, not even an audit event


def test_merge_imports_into_a_bot_with_trades_of_another_source() -> None:
    demo_seed()
    demo_trades = Trade.objects.filter(bot_id="demo_momentum").count()

    output = momentum("--bot-id", "demo_momentum", "--merge")

    assert "690 rows were created, 0 updated" in output
    assert Trade.objects.filter(bot_id="demo_momentum").count() == demo_trades + 240
    # A second run writes nothing, so it needs no --merge: nothing to refuse.
    assert "nothing to do" in momentum("--bot-id", "demo_momentum")


def test_a_second_run_of_the_same_import_is_not_another_source() -> None:
    momentum()
    before = snapshot()

    output = momentum("--dry-run")  # its own trades only

    assert "nothing to do: already imported" in output
    assert snapshot() == before


def table_counts(output: str, table: str) -> list[str]:
    return next(line.split()[1:] for line in output.splitlines() if line.split()[:1] == [table])


def fresh_copy(tmp_path: Path, now: datetime) -> Path:
    """The momentum sample with one more equity snapshot, at ``now``: a source still running."""
    copy = tmp_path / "trading.db"
    shutil.copyfile(MOMENTUM_DB, copy)
    with sqlite3.connect(copy) as conn:
        conn.execute(
            "INSERT INTO equity_snapshots (ts, equity, cash) "
            "SELECT ?, equity, cash FROM equity_snapshots ORDER BY ts DESC LIMIT 1",
            [int(now.timestamp() * 1000)],
        )
    return copy


def test_stale_open_positions_are_no_exposure_and_fresh_ones_still_count(tmp_path: Path) -> None:
    now = datetime.now(tz=UTC)
    fresh = fresh_copy(tmp_path, now)
    momentum("--bot-id", "stale_momentum")
    call_command(
        "import_momentum", "--source", str(fresh), "--bot-id", "fresh_momentum", stdout=StringIO()
    )
    Bot.objects.filter(pk__in=["stale_momentum", "fresh_momentum"]).update(max_open_positions=1)

    events = risk_limits_check(now=now)

    assert [(e.bot_id, e.event_type, e.actual_value) for e in events] == [
        ("fresh_momentum", "open_positions_limit", Decimal(2))
    ]
    assert not RiskEvent.objects.filter(bot_id="stale_momentum").exists()
    rows = {b["bot_id"]: b for b in portfolio_summary(now=now)["bots"]}
    assert rows["stale_momentum"]["open_positions"] == 0
    assert rows["stale_momentum"]["exposure_usd"] == Decimal(0)
    assert rows["fresh_momentum"]["open_positions"] == 2
    stale = Position.objects.filter(bot_id="stale_momentum").order_by("symbol")
    # The sample's last activity: its latest exit_time (sqlite3: max(exit_time)).
    last = datetime(2025, 6, 4, 22, 14, tzinfo=UTC)
    assert [(p.status, p.quantity, p.metadata["stale"]["closed_unknown"]) for p in stale] == [
        ("closed", Decimal(0), True),
        ("closed", Decimal(0), True),
    ]
    assert {p.closed_at for p in stale} == {last}


def test_merge_never_closes_a_live_position_on_the_same_market() -> None:
    # given: a live bot holding an open SOL/USDT long and its trade
    bot = make_bot("live_momentum")
    live = make_position(bot, symbol="SOL/USDT", opened_at=datetime(2026, 1, 5, tzinfo=UTC))
    make_trade(bot, trade_id="live-1", symbol="SOL/USDT")

    output = momentum("--bot-id", "live_momentum", "--merge")

    live.refresh_from_db()
    assert (live.status, live.quantity) == ("open", Decimal(1))
    assert table_counts(output, "positions") == ["2", "1", "0", "0", "0"]
    assert (
        "positions SOL/USDT/binance/long: stale (the source's last activity "
        "2025-06-04T22:14:00+00:00), and the bot holds an open position on it opened at "
        "2026-01-05T00:00:00+00:00: not imported" in output
    )
    atom = Position.objects.get(bot=bot, symbol="ATOM/USDT")
    assert (atom.status, atom.quantity, atom.metadata["stale"]["open_quantity"]) == (
        "closed",
        Decimal(0),
        "82.0014850000",
    )
