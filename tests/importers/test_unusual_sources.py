"""Sources the samples do not show, as larger real ones hold them: JSON that jsonb refuses, text
longer than its column, cancelled orders that filled nothing, a database without trades, a WAL
database in a folder nobody may write to, and a value no column can hold. Each is imported (with
a warning naming its legacy key) or refused naming the row, the field and the reason; nothing
is lost silently and a refused import writes nothing.

Each test edits a copy of a sample (tests/importers/samples) with SQL, so what it expects is
read from that copy.
"""

import json
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db.models import Sum

from tests.importers.legacy_support import LEGACY, MOMENTUM_DB, counts, snapshot
from trading.models import Bot, Order, OrderFill, Trade

pytestmark = pytest.mark.django_db

FREQTRADE_DB = LEGACY / "freqtrade.sqlite"


Statement = str | tuple[str, tuple[Any, ...]]


def edited(sample: Path, folder: Path, *statements: Statement) -> Path:
    """A copy of ``sample`` in ``folder`` with ``statements`` (SQL, or SQL and parameters) run
    on it."""
    copy = folder / sample.name
    shutil.copy(sample, copy)
    with sqlite3.connect(copy) as conn:
        for statement in statements:
            sql, params = (statement, ()) if isinstance(statement, str) else statement
            conn.execute(sql, params)
    conn.close()
    return copy


def momentum(path: Path, *args: str) -> str:
    out = StringIO()
    call_command("import_momentum", "--source", str(path), *args, stdout=out)
    return out.getvalue()


def freqtrade(path: Path, bot_id: str = "ft_edge", *args: str) -> str:
    out = StringIO()
    call_command(
        "import_freqtrade",
        "--source",
        str(path),
        "--bot-id",
        bot_id,
        "--initial-capital",
        "1000",
        "--no-progress",
        *args,
        stdout=out,
    )
    return out.getvalue()


def rows(path: Path, sql: str, *params: Any) -> list[sqlite3.Row]:
    conn = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        return list(conn.execute(sql, params))
    finally:
        conn.close()


# --- Momentum: metadata jsonb cannot hold, long and NUL text ---------------------------------

REFUSED_BY_JSONB = {
    1: ('{"rsi": NaN, "atr": 0.5}', "NaN is not a number JSON allows"),
    2: ('{"stop": Infinity}', "Infinity is not a number JSON allows"),
    3: ("[-Infinity]", "-Infinity is not a number JSON allows"),
    4: ('{"note": "a\\u0000b"}', "a string in it holds a NUL character"),
}


def test_metadata_jsonb_refuses_is_kept_as_text_and_warned(tmp_path: Path) -> None:
    # given: valid JSON to Python's json.loads, but not to PostgreSQL's jsonb
    source = edited(
        MOMENTUM_DB,
        tmp_path,
        *(
            ("UPDATE trades SET metadata = ? WHERE id = ?", (text, row_id))
            for row_id, (text, _) in REFUSED_BY_JSONB.items()
        ),
    )
    # when
    output = momentum(source)
    # then: every trade imported, the text kept as it was, a warning naming the trade and why
    assert Trade.objects.filter(bot_id="momentum_001").count() == 240
    for row_id, (text, reason) in REFUSED_BY_JSONB.items():
        (legacy,) = rows(source, "SELECT trade_id, metadata FROM trades WHERE id = ?", row_id)
        trade = Trade.objects.get(bot_id="momentum_001", trade_id=legacy["trade_id"])
        assert trade.strategy_data["legacy_raw"] == legacy["metadata"] == text
        assert f"trades {legacy['trade_id']}: metadata is not valid JSON ({reason}" in output
    total = Trade.objects.filter(bot_id="momentum_001").aggregate(s=Sum("pnl_usd"))["s"]
    assert total == Decimal("10931.57615709")  # the sample's sum: no trade lost


def test_metadata_with_a_legacy_key_of_its_own_keeps_it(tmp_path: Path) -> None:
    source = edited(
        MOMENTUM_DB,
        tmp_path,
        """UPDATE trades SET metadata = '{"legacy": {"v": 1}, "rsi": 5}' WHERE id = 1""",
    )
    momentum(source)
    trade = Trade.objects.get(bot_id="momentum_001", trade_id="mom-20250321-000000")
    assert trade.strategy_data == {
        "rsi": 5,
        "legacy": {"table": "trades", "id": 1, "metadata_legacy": {"v": 1}},
    }


def test_exit_reason_longer_than_its_column_or_with_nul_is_cut_and_kept_whole(
    tmp_path: Path,
) -> None:
    # given: 300 characters; and a NUL (PostgreSQL's text holds none)
    long = "trailing stop " * 21 + "hit at last"
    source = edited(
        MOMENTUM_DB,
        tmp_path,
        ("UPDATE trades SET exit_reason = ? WHERE id = 1", (long,)),
        "UPDATE trades SET exit_reason = 'stop' || char(0) || 'loss' WHERE id = 2",
    )
    assert len(long) == 305
    # when
    output = momentum(source)
    # then
    first = Trade.objects.get(bot_id="momentum_001", trade_id="mom-20250321-000000")
    assert first.exit_reason == long[:255]
    assert first.strategy_data["legacy"]["exit_reason"] == long
    assert (
        "trades mom-20250321-000000: exit_reason is 305 characters, cut to the column's 255:"
        " the full text is kept under legacy"
    ) in output
    second = Trade.objects.get(bot_id="momentum_001", trade_id="mom-20250321-000001")
    assert second.exit_reason == "stoploss"
    assert second.strategy_data["legacy"]["exit_reason"] == "stop\\u0000loss"
    assert "trades mom-20250321-000001: exit_reason held NUL characters (dropped)" in output


def test_a_value_no_column_can_hold_is_refused_naming_the_trade_and_nothing_written(
    tmp_path: Path,
) -> None:
    # given: a symbol longer than any market's (64 characters)
    source = edited(
        MOMENTUM_DB, tmp_path, ("UPDATE trades SET symbol = ? WHERE id = 7", ("X" * 70 + "USDT",))
    )
    before = snapshot()
    # when / then
    with pytest.raises(CommandError) as refused:
        momentum(source)
    assert str(refused.value) == (
        "import_momentum: trades mom-20250321-000006: the database refused it:"
        " value too long for type character varying(64)"
    )
    assert snapshot() == before


# --- freqtrade: cancelled orders, long tags, no trades, a value too long ---------------------


def test_an_order_that_filled_nothing_null_is_not_counted_into_its_trade(tmp_path: Path) -> None:
    # given: trade 1's entry, again, cancelled with filled NULL (as freqtrade writes a
    # cancelled entry that never filled)
    (entry,) = rows(
        FREQTRADE_DB, "SELECT * FROM orders WHERE ft_trade_id = 1 AND ft_order_side = 'buy'"
    )
    source = edited(
        FREQTRADE_DB,
        tmp_path,
        (
            "INSERT INTO orders (ft_trade_id, ft_order_side, ft_pair, ft_is_open, ft_amount,"
            " ft_price, order_id, status, symbol, order_type, side, price, average, amount,"
            " filled, remaining, cost, order_date) SELECT ft_trade_id, ft_order_side, ft_pair, 0,"
            " ft_amount, ft_price, 'cancelled-1', 'canceled', symbol, order_type, side, price,"
            " NULL, amount, NULL, NULL, NULL, order_date FROM orders WHERE id = ?",
            (entry["id"],),
        ),
    )
    (cancelled,) = rows(source, "SELECT id FROM orders WHERE order_id = 'cancelled-1'")
    # when: the sample as it is, and with the cancelled order
    freqtrade(FREQTRADE_DB, "ft_plain")
    freqtrade(source, "ft_edge")
    # then: the trade is the same; the cancelled order is there, without a fill
    plain = Trade.objects.get(bot_id="ft_plain", trade_id="ft-1")
    trade = Trade.objects.get(bot_id="ft_edge", trade_id="ft-1")
    fields = ("quantity", "entry_price", "exit_price", "fees_usd", "pnl_usd", "pnl_pct")
    assert [getattr(trade, f) for f in fields] == [getattr(plain, f) for f in fields]
    assert trade.quantity == Decimal(repr(entry["filled"])).quantize(Decimal("1e-10"))
    order = Order.objects.get(bot_id="ft_edge", client_order_id=f"ft-{cancelled['id']}")
    assert (order.status, order.filled_quantity, order.fees_usd) == ("cancelled", 0, 0)
    assert not OrderFill.objects.filter(order=order).exists()
    assert Order.objects.filter(bot_id="ft_edge").count() == 320  # the sample's 319, and this


def test_a_fee_paid_in_the_base_currency_is_not_part_of_the_trade_s_quantity(
    tmp_path: Path,
) -> None:
    # given: trade 1's entry paid 0.1 % of its fill in the base currency, its exit sold the rest
    (entry,) = rows(
        FREQTRADE_DB, "SELECT * FROM orders WHERE ft_trade_id = 1 AND ft_order_side = 'buy'"
    )
    fee_base = entry["filled"] / 1000
    source = edited(
        FREQTRADE_DB,
        tmp_path,
        ("UPDATE orders SET ft_fee_base = ? WHERE id = ?", (fee_base, entry["id"])),
        (
            "UPDATE orders SET filled = filled - ?, amount = amount - ?"
            " WHERE ft_trade_id = 1 AND ft_order_side = 'sell'",
            (fee_base, fee_base),
        ),
    )
    # when
    output = freqtrade(source)
    # then: the trade is what it holds, as freqtrade's amount; entries and exits agree
    trade = Trade.objects.get(bot_id="ft_edge", trade_id="ft-1")
    net = Decimal(repr(entry["filled"])) - Decimal(repr(fee_base))
    assert trade.quantity == net.quantize(Decimal("1e-10"))
    assert "trades ft-1: exits filled" not in output


def test_tags_as_long_as_freqtrade_s_columns_fit_and_longer_are_kept_whole(
    tmp_path: Path,
) -> None:
    # given: enter_tag at freqtrade's limit (255); exit_reason past it; a NUL in another tag
    source = edited(
        FREQTRADE_DB,
        tmp_path,
        ("UPDATE trades SET enter_tag = ? WHERE id = 1", ("e" * 255,)),
        ("UPDATE trades SET exit_reason = ? WHERE id = 2", ("x" * 300,)),
        "UPDATE trades SET enter_tag = 'rsi' || char(0) || 'cross' WHERE id = 3",
    )
    # when
    output = freqtrade(source)
    # then
    first, second, third = (
        Trade.objects.get(bot_id="ft_edge", trade_id=f"ft-{n}") for n in (1, 2, 3)
    )
    assert first.entry_tag == "e" * 255 and "uncut" not in first.strategy_data
    assert second.exit_reason == "x" * 255
    assert second.strategy_data["uncut"] == {"exit_reason": "x" * 300}
    assert (
        "trades ft-2: exit_reason is 300 characters, cut to the column's 255; kept whole in"
        " strategy_data"
    ) in output
    assert third.entry_tag == "rsicross"
    assert third.strategy_data["uncut"] == {"enter_tag": "rsi\\u0000cross"}
    assert "trades ft-1:" not in output.split("warnings", 1)[-1]


def test_a_nul_in_a_column_kept_under_legacy_is_kept_as_text(tmp_path: Path) -> None:
    # given: a NUL in a trade column and an order column the schema has no place for
    source = edited(
        FREQTRADE_DB,
        tmp_path,
        "UPDATE trades SET exit_order_status = 'clo' || char(0) || 'sed' WHERE id = 1",
        "UPDATE orders SET ft_order_tag = 'a' || char(0) WHERE ft_trade_id = 1",
    )
    # when
    freqtrade(source)
    # then: as the six characters \u0000, nothing else changed
    trade = Trade.objects.get(bot_id="ft_edge", trade_id="ft-1")
    assert trade.strategy_data["legacy"]["exit_order_status"] == "clo\\u0000sed"
    tags = {o.metadata["legacy"]["ft_order_tag"] for o in Order.objects.filter(trade=trade)}
    assert tags == {"a\\u0000"}


def test_an_order_id_longer_than_the_column_is_kept_whole_in_metadata(tmp_path: Path) -> None:
    (entry,) = rows(
        FREQTRADE_DB, "SELECT id FROM orders WHERE ft_trade_id = 1 AND ft_order_side = 'buy'"
    )
    long_id = "0123456789" * 20
    source = edited(
        FREQTRADE_DB,
        tmp_path,
        ("UPDATE orders SET order_id = ? WHERE id = ?", (long_id, entry["id"])),
    )
    output = freqtrade(source)
    order = Order.objects.get(bot_id="ft_edge", client_order_id=f"ft-{entry['id']}")
    assert order.exchange_order_id == long_id[:128]
    assert order.metadata["order_id"] == long_id
    assert f"orders ft-{entry['id']}: of ft-1: order_id is 200 characters" in output


def test_a_database_without_trades_registers_its_bot_with_the_exchange_given(
    tmp_path: Path,
) -> None:
    # given: freqtrade's tables, no trade yet (a bot that has just started)
    source = edited(FREQTRADE_DB, tmp_path, "DELETE FROM orders", "DELETE FROM trades")
    before = snapshot()
    # when: no exchange to be had
    with pytest.raises(CommandError) as refused:
        freqtrade(source)
    # then
    assert str(refused.value) == (
        f"import_freqtrade: bot ft_edge does not exist and {source} holds no trade naming its"
        " exchange: --exchange is needed to register it"
    )
    assert snapshot() == before
    # when: given
    output = freqtrade(source, "ft_edge", "--exchange", "kraken")
    # then
    bot = Bot.objects.get(pk="ft_edge")
    assert (bot.exchange, bot.initial_capital_usd) == ("kraken", Decimal(1000))
    assert "bot ft_edge registered" in output
    assert not Trade.objects.filter(bot=bot).exists()


def test_a_pair_no_column_can_hold_is_refused_naming_the_trade_and_nothing_written(
    tmp_path: Path,
) -> None:
    source = edited(
        FREQTRADE_DB, tmp_path, ("UPDATE trades SET pair = ? WHERE id = 5", ("X" * 70 + "/USDT",))
    )
    before = snapshot()
    with pytest.raises(CommandError) as refused:
        freqtrade(source)
    assert str(refused.value) == (
        "import_freqtrade: trades ft-5: symbol: the database refused it"
        " (value too long for type character varying(64))"
    )
    assert snapshot() == before


# --- a WAL database in a folder nobody may write to ------------------------------------------


@contextmanager
def unwritable(folder: Path) -> Iterator[None]:
    """``folder`` made so that no one, root included, may create a file in it (as a read-only
    mount is): immutable (chattr +i) where this user may set that, else mode 0555."""
    chattr = shutil.which("chattr") or "/usr/bin/chattr"
    setting = subprocess.run([chattr, "+i", str(folder)], capture_output=True)  # noqa: S603
    immutable = setting.returncode == 0
    if not immutable:
        if os.geteuid() == 0:
            pytest.skip("root cannot be kept from writing: chattr +i is not permitted here")
        folder.chmod(0o555)
    try:
        yield
    finally:
        if immutable:
            subprocess.run([chattr, "-i", str(folder)], check=True)  # noqa: S603
        else:
            folder.chmod(0o755)


def wal_copy(sample: Path, folder: Path, statement: str) -> Path:
    """``sample`` in WAL mode in ``folder``, with ``statement`` committed to its -wal only (not
    checkpointed into the main file), and no -shm beside it: as a running bot's database is
    copied, or mounted read-only."""
    work = folder / "work"
    work.mkdir()
    shutil.copy(sample, work / sample.name)
    conn = sqlite3.connect(work / sample.name)
    assert conn.execute("PRAGMA journal_mode=WAL").fetchone() == ("wal",)
    conn.execute("PRAGMA wal_autocheckpoint=0")
    conn.execute(statement)
    conn.commit()
    target = folder / "mounted"
    target.mkdir()
    for suffix in ("", "-wal"):  # while the writer is open: the WAL is not checkpointed yet
        shutil.copy(f"{work / sample.name}{suffix}", f"{target / sample.name}{suffix}")
    conn.close()
    return target / sample.name


def files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_a_wal_database_in_a_folder_nobody_may_write_to_is_read_whole(tmp_path: Path) -> None:
    # given: the last transaction only in the -wal
    source = wal_copy(
        FREQTRADE_DB, tmp_path, "UPDATE trades SET exit_reason = 'from_the_wal' WHERE id = 1"
    )
    before = files(source.parent)
    assert set(before) == {"freqtrade.sqlite", "freqtrade.sqlite-wal"}
    # when
    with unwritable(source.parent):
        freqtrade(source)
    # then: the trade as the WAL has it; the folder as it was
    assert Trade.objects.get(bot_id="ft_edge", trade_id="ft-1").exit_reason == "from_the_wal"
    assert Trade.objects.filter(bot_id="ft_edge").count() == 150
    assert files(source.parent) == before


def test_a_momentum_wal_database_in_a_folder_nobody_may_write_to_is_read_whole(
    tmp_path: Path,
) -> None:
    source = wal_copy(MOMENTUM_DB, tmp_path, "UPDATE trades SET exit_reason = 'wal' WHERE id = 1")
    before = files(source.parent)
    with unwritable(source.parent):
        momentum(source)
    trade = Trade.objects.get(bot_id="momentum_001", trade_id="mom-20250321-000000")
    assert trade.exit_reason == "wal"
    assert files(source.parent) == before


def test_an_unreadable_file_in_a_folder_nobody_may_write_to_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "mounted"
    folder.mkdir()
    (folder / "trading.db").write_bytes(b"not a database" * 100)
    before = counts()
    with unwritable(folder), pytest.raises(CommandError) as refused:
        momentum(folder / "trading.db")
    assert "cannot" in str(refused.value) and "file is not a database" in str(refused.value)
    assert counts() == before
    assert json.dumps(sorted(p.name for p in folder.iterdir())) == '["trading.db"]'
