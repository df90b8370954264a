"""The prediction cache's operations (issue 18, item 5): POST predictions/ in batches of
10,000 against a raw COPY of the same rows, and a cached read of one group by (model, symbol,
target time) against the raw SELECT PostgreSQL would otherwise answer it with.

The read is timed in process (the selector, as reads.py times the others): its Redis is the
one the bench's gunicorn wrote through to; one HTTP GET first marks the group whole, and
every timed read must be a hit.
"""

import json
import time
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol
from urllib.parse import urlencode

from django.core.cache import caches
from django.utils import timezone

from benchmarks.bench.report import Operation, Target
from benchmarks.bench.scratch import BenchError, ScratchDatabase
from benchmarks.bench.workload import ApiClient, raw_copy
from trading.selectors.predictions import GROUP_SQL, prediction_group

PREDICTIONS_URL = "/api/v1/predictions/"
BATCH = 10_000
SYMBOLS = 100  # a batch: 100 symbols x 100 target hours, one model version per batch
MODEL = "bench_lstm"
RAW_COPY = (
    "COPY trading.predictions (bot_id, model_name, model_version, symbol, exchange, timeframe, "
    "target_ts, horizon, value, confidence, features_hash, created_at) FROM STDIN"
)


class Options(Protocol):
    @property
    def batches(self) -> int: ...
    @property
    def warmup_batches(self) -> int: ...
    @property
    def reads(self) -> Any: ...


def prediction_batch_op() -> Operation:
    return Operation(
        name="prediction_batch_post",
        label=f"POST predictions/ ({BATCH:,} predictions)",
        rows_per_call=BATCH,
        unit="predictions/s",
        target=Target("p50", ">=", 50_000),  # issue 18
        baseline_label=f"COPY {BATCH:,} rows",
    )


def prediction_read_op() -> Operation:
    return Operation(
        name="prediction_read_cached",
        label="Read predictions by (model, symbol, target), hot",
        rows_per_call=1,
        unit="ms",
        target=Target("p50", "<", 1.0),  # issue 18
        baseline_label="SELECT the group",
    )


def _first_target() -> datetime:
    # Ahead of now: the hashes live until the target time plus the model's TTL.
    return (timezone.now() + timedelta(days=1)).replace(minute=0, second=0, microsecond=0)


def _batch(version: str, first_target: datetime) -> list[dict[str, Any]]:
    return [
        {
            "model_name": MODEL,
            "model_version": version,
            "symbol": f"P{s:03d}/USDT",
            "exchange": "binance",
            "timeframe": "1h",
            "target_ts": (first_target + timedelta(hours=h)).isoformat(),
            "horizon": 1,
            "value": str(Decimal("60000.25") + Decimal(s * 100 + h) / 8),
            "confidence": "0.625",
            "features_hash": f"f{s}-{h}",
        }
        for s in range(SYMBOLS)
        for h in range(BATCH // SYMBOLS)
    ]


def _raw_values(items: list[dict[str, Any]], bot_id: str) -> list[tuple[Any, ...]]:
    now = timezone.now()
    return [
        (
            bot_id,
            "raw_" + i["model_name"],
            i["model_version"],
            i["symbol"],
            i["exchange"],
            i["timeframe"],
            i["target_ts"],
            i["horizon"],
            i["value"],
            i["confidence"],
            i["features_hash"],
            now,
        )
        for i in items
    ]


def prediction_batches(
    op: Operation,
    client: ApiClient,
    scratch: ScratchDatabase,
    options: Options,
    *,
    raw_bot: str,
    log: Any,
) -> datetime:
    """The batches, each beside a raw COPY of the same rows; returns their first target time."""
    first_target = _first_target()
    with scratch.connect() as raw:
        for n in range(options.warmup_batches + options.batches):
            items = _batch(f"v{n}", first_target)
            api = client.post_ok(
                PREDICTIONS_URL, json.dumps(items).encode(), expect={"created": BATCH}
            )
            base = raw_copy(raw, RAW_COPY, _raw_values(items, raw_bot))
            if n >= options.warmup_batches:
                op.seconds.append(api)
                op.baseline_seconds.append(base)
    log(f"prediction batches: {options.batches} x {BATCH:,}")
    return first_target


def prediction_reads(
    op: Operation,
    client: ApiClient,
    scratch: ScratchDatabase,
    options: Options,
    *,
    target: datetime,
    bot_id: str,
    key_prefix: str,
) -> None:
    """One group read hot (in process) beside the raw SELECT of it, after one HTTP GET. The
    bench's gunicorn keys its cache with ``key_prefix``: the reads here use it too."""
    symbol = "P000/USDT"
    query = urlencode({"model": MODEL, "symbol": symbol, "target": target.isoformat()})
    client.connection.request("GET", f"{PREDICTIONS_URL}?{query}", headers=client.headers)
    response = client.connection.getresponse()
    body = response.read()
    if response.status != 200:
        raise BenchError(f"GET {PREDICTIONS_URL} answered {response.status}: {body[:300]!r}")
    expected = len(json.loads(body)["results"])
    repeats = options.reads
    cache = caches["default"]
    own_prefix = cache.key_prefix
    cache.key_prefix = key_prefix
    try:
        _timed_reads(op, scratch, repeats, target=target, bot_id=bot_id, expected=expected)
    finally:
        cache.key_prefix = own_prefix


def _timed_reads(
    op: Operation,
    scratch: ScratchDatabase,
    repeats: Any,
    *,
    target: datetime,
    bot_id: str,
    expected: int,
) -> None:
    symbol = "P000/USDT"
    with scratch.connect() as raw:
        for n in range(repeats.warmup + repeats.samples * 10):
            started = time.perf_counter()
            items, hot = prediction_group(
                bot_id=bot_id, model_name=MODEL, symbol=symbol, target_ts=target
            )
            api = time.perf_counter() - started
            if not hot or len(items) != expected or not expected:
                raise BenchError(f"the read was not served by Redis ({len(items)}/{expected})")
            started = time.perf_counter()
            raw.execute(GROUP_SQL, [bot_id, MODEL, symbol, target]).fetchall()
            base = time.perf_counter() - started
            if n >= repeats.warmup:
                op.seconds.append(api)
                op.baseline_seconds.append(base)
