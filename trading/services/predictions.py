"""The prediction cache (issue 18, item 5): batches written in one set-based statement and
through to Redis, rows past their model's TTL expired, and predictions scored against the
candle that came. Reads are in trading/selectors/predictions.py.

Redis holds one hash per read key (bot, model, symbol, target time): a field per prediction
(``version|exchange|timeframe|horizon``, its JSON) and, once a read has loaded the whole group
from PostgreSQL, the marker field ``~``. A write adds its fields (HSET) and sets the hash to
expire with its rows; only a hash with the marker is served, so one written only by inserts
(which may not hold the group's older rows) is completed by the first read. Every call goes
through the Redis breaker: with Redis away, writes still commit and reads use PostgreSQL.
"""

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from trading.models import Bot
from trading.redis_breaker import redis_attempt, redis_client, redis_key
from trading.services.live_state import iso_utc
from trading.services.market import TIMEFRAME_SECONDS

COMPLETE = "~"  # the hash's marker field: the hash holds its whole group

# unnest keeps the batch one statement whatever its size: eleven arrays, one row per item.
INSERT_SQL = """
WITH written AS (
    INSERT INTO trading.predictions AS p (
        bot_id, model_name, model_version, symbol, exchange, timeframe, target_ts, horizon,
        value, confidence, features_hash, created_at
    )
    SELECT %s, b.* , now() FROM unnest(
        %s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::timestamptz[],
        %s::int[], %s::numeric[], %s::numeric[], %s::text[]
    ) AS b
    ON CONFLICT ON CONSTRAINT predictions_natural_key DO UPDATE SET
        value = EXCLUDED.value,
        confidence = EXCLUDED.confidence,
        features_hash = EXCLUDED.features_hash,
        actual = NULL, error = NULL, hit = NULL, scored_at = NULL
    WHERE (p.value, p.confidence, p.features_hash)
        IS DISTINCT FROM (EXCLUDED.value, EXCLUDED.confidence, EXCLUDED.features_hash)
    RETURNING xmax = 0 AS inserted
)
SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM written
"""

# Field order of the unnest arrays, after bot_id.
COLUMNS = (
    "model_name",
    "model_version",
    "symbol",
    "exchange",
    "timeframe",
    "target_ts",
    "horizon",
    "value",
    "confidence",
    "features_hash",
)

# The rows of each model past its TTL after their target time (the models' TTLs as two arrays,
# the default for the others).
EXPIRE_SQL = """
DELETE FROM trading.predictions p
WHERE p.target_ts < %s - make_interval(secs => COALESCE(
    (SELECT t.ttl FROM unnest(%s::text[], %s::int[]) AS t(model, ttl) WHERE t.model = p.model_name),
    %s
))
"""

_PERIODS = ", ".join(f"('{tf}', {seconds})" for tf, seconds in TIMEFRAME_SECONDS.items())

# Each unscored prediction whose target candle has closed and is stored: its close (actual),
# value - actual (error), and whether the direction from the base candle's close (``horizon``
# periods before the target) was right (hit; NULL when the base candle is not stored). A flat
# prediction of a flat market is a hit.
SCORE_SQL = f"""
UPDATE trading.predictions p SET
    actual = m.close,
    error = p.value - m.close,
    hit = (
        SELECT sign(p.value - b.close) = sign(m.close - b.close)
        FROM trading.market_data b
        WHERE b.symbol = p.symbol AND b.exchange = p.exchange AND b.timeframe = p.timeframe
          AND b.ts = p.target_ts - make_interval(secs => p.horizon * tf.seconds)
    ),
    scored_at = %s
FROM (VALUES {_PERIODS}) AS tf(timeframe, seconds), trading.market_data m
WHERE p.scored_at IS NULL
  AND tf.timeframe = p.timeframe
  AND p.target_ts + make_interval(secs => tf.seconds) <= %s
  AND m.symbol = p.symbol AND m.exchange = p.exchange AND m.timeframe = p.timeframe
  AND m.ts = p.target_ts
"""  # noqa: S608 - the periods are the code's constants


@dataclass(frozen=True)
class WriteResult:
    created: int
    updated: int
    unchanged: int


def ttl_seconds(model_name: str) -> int:
    """How long a model's predictions are kept after their target time (PREDICTION_TTL_SECONDS,
    else PREDICTION_TTL_DEFAULT_SECONDS)."""
    return int(
        settings.PREDICTION_TTL_SECONDS.get(model_name, settings.PREDICTION_TTL_DEFAULT_SECONDS)
    )


def number_text(value: Decimal | None) -> str | None:
    """A stored number as text, as ``numeric::text`` prints it (the values come quantized to
    their column's scale)."""
    return None if value is None else format(value, "f")


def cache_key(bot_id: str, model_name: str, symbol: str, target_ts: datetime) -> str:
    return redis_key(f"pred:{bot_id}:{model_name}:{symbol}:{iso_utc(target_ts)}")


def cache_field(row: dict[str, Any]) -> str:
    return f"{row['model_version']}|{row['exchange']}|{row['timeframe']}|{row['horizon']}"


def prediction_json(row: dict[str, Any]) -> dict[str, Any]:
    """A prediction as the read returns it (Redis or PostgreSQL, the same text)."""
    return {
        "model_name": row["model_name"],
        "model_version": row["model_version"],
        "symbol": row["symbol"],
        "exchange": row["exchange"],
        "timeframe": row["timeframe"],
        "target_ts": iso_utc(row["target_ts"]),
        "horizon": row["horizon"],
        "value": number_text(row["value"]),
        "confidence": number_text(row["confidence"]),
        "features_hash": row["features_hash"],
    }


def expire_at(model_name: str, target_ts: datetime) -> int:
    return int((target_ts + timedelta(seconds=ttl_seconds(model_name))).timestamp())


def predictions_write(*, bot: Bot, rows: list[dict[str, Any]]) -> WriteResult:
    """``rows`` (clean, one per natural key) stored in one statement, then written through to
    Redis once committed. A repeat changes nothing; another value for a stored key replaces it
    (and clears its score: it is scored again)."""
    if not rows:
        return WriteResult(0, 0, 0)
    arrays = [[row[name] for row in rows] for name in COLUMNS]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(INSERT_SQL, [bot.bot_id, *arrays])
        created, updated = cursor.fetchone()
        transaction.on_commit(lambda: _write_through(bot.bot_id, rows))
    return WriteResult(created, updated, len(rows) - created - updated)


# One call for a whole batch (a pipeline of 20,000 commands costs the client far more): per row,
# its hash, field, JSON and expiry.
_WRITE_SCRIPT = """
for i = 1, #KEYS do
    redis.call('HSET', KEYS[i], ARGV[3 * i - 2], ARGV[3 * i - 1])
    redis.call('EXPIREAT', KEYS[i], ARGV[3 * i])
end
return #KEYS
"""


def _write_through(bot_id: str, rows: list[dict[str, Any]]) -> None:
    keys: list[str] = []
    args: list[str | int] = []
    prefix = redis_key(f"pred:{bot_id}:")
    targets: dict[datetime, str] = {}
    for row in rows:
        target = row["target_ts"]
        text = targets.get(target)
        if text is None:
            text = targets[target] = iso_utc(target)
        keys.append(f"{prefix}{row['model_name']}:{row['symbol']}:{text}")
        args += [
            cache_field(row),
            json.dumps(prediction_json(row), separators=(",", ":")),
            expire_at(row["model_name"], target),
        ]

    def write() -> None:
        redis_client().eval(_WRITE_SCRIPT, len(keys), *keys, *args)

    redis_attempt("prediction cache write", write, None)


# A read's whole group, loaded from PostgreSQL: fields a write put there meanwhile are kept
# (HSETNX: they are newer than the read's snapshot), then the marker.
_FILL_SCRIPT = """
for i = 1, #ARGV - 1, 2 do
    redis.call('HSETNX', KEYS[1], ARGV[i], ARGV[i + 1])
end
redis.call('HSET', KEYS[1], '~', '1')
redis.call('EXPIREAT', KEYS[1], ARGV[#ARGV])
return 1
"""


def prediction_cache_fill(
    *, bot_id: str, model_name: str, symbol: str, target_ts: datetime, items: list[dict[str, Any]]
) -> None:
    """The group read from PostgreSQL stored in Redis as whole (marked): the next read is hot."""
    args: list[str | int] = []
    for item in items:
        args += [cache_field(item), json.dumps(item, separators=(",", ":"))]
    args.append(expire_at(model_name, target_ts))
    key = cache_key(bot_id, model_name, symbol, target_ts)
    redis_attempt(
        "prediction cache fill",
        lambda: redis_client().eval(_FILL_SCRIPT, 1, key, *args),
        None,
    )


def prediction_cache_read(
    *, bot_id: str, model_name: str, symbol: str, target_ts: datetime
) -> list[dict[str, Any]] | None:
    """The group from Redis when it holds it whole, else None."""
    key = cache_key(bot_id, model_name, symbol, target_ts)

    def read() -> dict[bytes, bytes]:
        return dict(redis_client().hgetall(key))  # type: ignore[arg-type]

    nothing: dict[bytes, bytes] = {}
    held = redis_attempt("prediction cache read", read, nothing)
    if not held or COMPLETE.encode() not in held:
        return None
    return [json.loads(value) for field, value in held.items() if field != COMPLETE.encode()]


def predictions_expire(*, now: datetime | None = None) -> int:
    """Delete every prediction past its model's TTL after its target time; returns how many.
    (Their Redis hashes expire by themselves at the same time.)"""
    ttls = settings.PREDICTION_TTL_SECONDS
    with connection.cursor() as cursor:
        cursor.execute(
            EXPIRE_SQL,
            [
                now or timezone.now(),
                list(ttls),
                [int(v) for v in ttls.values()],
                int(settings.PREDICTION_TTL_DEFAULT_SECONDS),
            ],
        )
        return cursor.rowcount


def predictions_score(*, now: datetime | None = None) -> int:
    """Score every unscored prediction whose target candle has closed and is stored; returns how
    many were scored. One statement: each row is scored once (its scored_at is then set)."""
    moment = now or timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(SCORE_SQL, [moment, moment])
        return cursor.rowcount
