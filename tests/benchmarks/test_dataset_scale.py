"""generate_dataset --scale large: its sizes, and the chunked making of its rows, at a size a test
can load (the large set itself is 50,000,000 candles; docs/BENCHMARKS.md has its load)."""

import io
import json
from datetime import UTC, datetime

import pytest
from django.core.management import call_command

from benchmarks.bench.reads import dataset_scale
from benchmarks.dataset import SCALES, DatasetSpec, dataset_load, table_digests
from benchmarks.dataset.columns import Table
from benchmarks.dataset.spec import BASES
from benchmarks.dataset.tables import dataset_tables
from tests.benchmarks.loaded import quiet, scalar

pytestmark = pytest.mark.django_db

UNTIL = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
# The large scale's shape (200 markets) at a test's size: 3 bots, 3,000 trades, 10 minutes of
# candles for each market; 30 days rather than 365, so the 200 price paths stay small.
TINY = {"bots": 3, "trades": 3_000, "candles": 2_000, "days": 30}


def tiny(seed: int = 7) -> DatasetSpec:
    return DatasetSpec(seed=seed, until=UNTIL, **{**SCALES["large"], **TINY})


def test_the_large_scale_is_ten_times_full_on_four_times_the_markets() -> None:
    large, full = SCALES["large"], SCALES["full"]

    assert large == {
        "bots": 1_000,
        "trades": 10_000_000,
        "candles": 50_000_000,
        "symbols": 200,
        "days": 365,
    }
    assert {k: large[k] // full[k] for k in ("bots", "trades", "candles")} == {
        "bots": 10,
        "trades": 10,
        "candles": 10,
    }
    spec = DatasetSpec(seed=7, until=UNTIL, **large)
    assert spec.scale == "large"
    assert spec.candles_per_symbol == 250_000  # 173.6 days of minutes, within the year
    assert spec.path_minutes == 365 * 24 * 60
    assert DatasetSpec(seed=7, until=UNTIL, **full).scale == "full"
    assert tiny().scale == "custom"
    # 200 distinct markets, the full scale's 50 first.
    assert len(set(BASES)) == len(BASES) == 200
    assert BASES[:3] == ("BTC", "ETH", "SOL") and BASES[49:51] == ("SEI", "MKT051")
    with pytest.raises(ValueError, match="symbols must be 1 to 200"):
        DatasetSpec(seed=7, until=UNTIL, **{**large, "symbols": 201})


def test_the_command_loads_the_large_shape_with_exact_counts_in_time_order() -> None:
    out = io.StringIO()
    sizes = [f"--{k}={v}" for k, v in TINY.items()]
    call_command(
        "generate_dataset", "--scale", "large", *sizes, "--until", "2025-06-01T12:00Z", stdout=out
    )

    counts = {
        table: scalar(f"SELECT count(*) FROM {table}")  # noqa: S608 - constant
        for table in ("trading.bots", "trading.trades", "trading.orders", "trading.market_data")
    }
    assert counts == {
        "trading.bots": 3,
        "trading.trades": 3_000,
        "trading.orders": 6_000,  # an entry order, and an exit order or a resting stop, each
        # 10 minutes of 200 markets, and the first market's 30 days before them (the bench
        # reads a year of its 1h candles at full and large).
        "trading.market_data": 2_000 + (30 * 1440 - 10),
    }
    assert scalar("SELECT count(DISTINCT symbol) FROM trading.market_data") == 200
    assert scalar("SELECT count(DISTINCT ts) FROM trading.market_data") == 30 * 1440
    assert scalar("SELECT count(*) FROM trading.account_balance") == 3 * 30 * 24
    # Every filled order has one fill or two; resting stops none.
    assert scalar("""
        SELECT array_agg(DISTINCT o.status || ':' || (SELECT count(*) FROM trading.order_fills f
                                                      WHERE f.order_id = o.id))
        FROM trading.orders o
    """) == ["filled:1", "filled:2", "submitted:0"]
    assert scalar("SELECT array_agg(DISTINCT metadata->>'scale') FROM trading.bots") == ["custom"]
    assert "trading.market_data" in out.getvalue() and "45,190" in out.getvalue()
    # Physical order is time order: ids follow entry, submission and the minute; within a
    # minute, the markets in their order (BTC first).
    for table, column in (
        ("trading.trades", "entry_time"),
        ("trading.orders", "submitted_at"),
        ("trading.order_fills", "filled_at"),
        ("trading.market_data", "ts"),
    ):
        later = scalar(
            f"SELECT count(*) FROM (SELECT {column} < lag({column}) OVER (ORDER BY id) AS back "  # noqa: S608
            f"FROM {table}) t WHERE back"
        )
        assert later == 0, table
    history = 30 * 1440 - 10  # the first market's minutes, before every market's
    firsts = scalar(
        "SELECT array_agg(DISTINCT symbol) FROM trading.market_data "  # noqa: S608 - a number
        f"WHERE id > {history} AND (id - {history} - 1) % 200 = 0"
    )
    assert firsts == ["BTC/USDT"]


def test_chunked_rows_equal_unchunked_rows() -> None:
    dataset_load(spec=tiny(), log=quiet, chunk_rows=10**9)  # every table in one chunk
    whole = table_digests()

    report = dataset_load(spec=tiny(), replace=True, log=quiet, chunk_rows=7)

    assert table_digests() == whole
    assert all(whole.values())
    assert report.rows["trading.market_data"] == 2_000 + (30 * 1440 - 10)
    assert json.loads(json.dumps(report.as_json()))["spec"]["scale"] == "custom"


def test_candles_in_any_chunks_are_the_same_bytes_and_are_made_in_row_order() -> None:
    types = {
        "symbol": "text",
        "exchange": "text",
        "timeframe": "text",
        "indicators": "jsonb",
        "id": "bigint",
        "ts": "timestamp with time zone",
        **{k: "numeric" for k in ("open", "high", "low", "close", "volume")},
    }

    def candles() -> Table:
        table = list(dataset_tables(tiny()))[-1]
        assert table.name == "trading.market_data"
        return table

    whole = b"".join(candles().chunks(types, 2_000))
    assert len(whole) > 2_000 * 60
    assert b"".join(candles().chunks(types, 7)) == whole
    # A chunk's wicks and volume are the next draws of their streams: asking for rows out of
    # order would give other rows, so it is refused.
    high = next(c for c in candles().columns if c.name == "high")
    with pytest.raises(ValueError, match="row order"):
        high.values(500, 1_000)


def test_the_bench_names_the_scale_of_the_data_set_present() -> None:
    assert dataset_scale({"scale": "large"}, {"bots": 3, "trades": 3_000}) == "large"
    # A data set loaded before the scale was recorded: known by its bots and trades.
    assert dataset_scale({}, {"bots": 100, "trades": 1_000_000}) == "full"
    assert dataset_scale({}, {"bots": 10, "trades": 5_000}) == "small"
    assert dataset_scale({}, {"bots": 100, "trades": 999_999}) == "custom"
