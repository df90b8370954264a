"""Reads of the prediction cache: one group (bot, model, symbol, target time) from Redis when
hot, from PostgreSQL otherwise (then stored in Redis); and each model's track record."""

from datetime import datetime
from typing import Any

from django.db import connection

from trading.services.predictions import (
    COLUMNS,
    prediction_cache_fill,
    prediction_cache_read,
    prediction_json,
)

GROUP_SQL = """
SELECT model_name, model_version, symbol, exchange, timeframe, target_ts, horizon, value,
       confidence, features_hash
FROM trading.predictions
WHERE bot_id = %s AND model_name = %s AND symbol = %s AND target_ts = %s
"""

# Per model and version: predictions scored, those with a direction judged, hits, their rate
# and the mean absolute error (text: exact digits).
SCORES_SQL = """
SELECT model_name, model_version, count(*), count(hit), count(*) FILTER (WHERE hit),
       round(count(*) FILTER (WHERE hit)::numeric / NULLIF(count(hit), 0), 6)::text,
       round(avg(abs(error)), 10)::text
FROM trading.predictions
WHERE scored_at IS NOT NULL {where}
GROUP BY model_name, model_version
ORDER BY model_name, model_version
"""


def _ordered(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(
        items,
        key=lambda i: (i["model_version"], i["exchange"], i["timeframe"], i["horizon"]),
    )


def prediction_group(
    *, bot_id: str, model_name: str, symbol: str, target_ts: datetime
) -> tuple[list[dict[str, Any]], bool]:
    """The bot's predictions of ``model_name`` for ``symbol``'s candle at ``target_ts``, ordered
    by version, exchange, timeframe and horizon; and whether Redis served them."""
    held = prediction_cache_read(
        bot_id=bot_id, model_name=model_name, symbol=symbol, target_ts=target_ts
    )
    if held is not None:
        return _ordered(held), True
    with connection.cursor() as cursor:
        cursor.execute(GROUP_SQL, [bot_id, model_name, symbol, target_ts])
        items = [prediction_json(dict(zip(COLUMNS, row, strict=True))) for row in cursor]
    if items:
        prediction_cache_fill(
            bot_id=bot_id, model_name=model_name, symbol=symbol, target_ts=target_ts, items=items
        )
    return _ordered(items), False


def prediction_scores(*, bot_id: str | None, model_name: str | None) -> list[dict[str, Any]]:
    """Each model version's track record over its scored predictions (a bot: its own only)."""
    conditions, params = [], []
    if bot_id is not None:
        conditions.append("AND bot_id = %s")
        params.append(bot_id)
    if model_name is not None:
        conditions.append("AND model_name = %s")
        params.append(model_name)
    with connection.cursor() as cursor:
        cursor.execute(SCORES_SQL.format(where=" ".join(conditions)), params)
        return [
            {
                "model_name": name,
                "model_version": version,
                "scored": scored,
                "judged": judged,
                "hits": hits,
                "hit_rate": hit_rate,
                "mean_abs_error": mae,
            }
            for name, version, scored, judged, hits, hit_rate, mae in cursor
        ]
