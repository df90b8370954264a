"""The risk checks: each bot's limits, and bots that stopped sending heartbeats.

Limits are the bot's own columns (``trading.bots.max_*``), read here in one set-based
statement. They are not edited on their own: the configuration in force is their one source
(its ``risk.max_*`` keys, the same block the bot enforces on itself), and putting a version in
force writes them (``botconfig.services.config_version_create``, same transaction, with the
bot's change record). The configuration in force also says what to do on a breach:
``"pause_on_breach": true`` (the JSON value true, at the top level) pauses the bot through
``botconfig.services.bot_pause``; anything else only alerts.

The measures (every bot but stopped ones, in one statement, ``MEASURES_SQL``):

- daily loss: -(realized pnl of today's closed trades (UTC day, backtests left out) + the
  unrealized pnl the bot last reported on its open positions). Counting open losses catches a
  bot in trouble before it closes the trade.
- drawdown: (peak - E) / peak x 100 on the realized equity curve (METRICS.md), E now. The
  curve is continued from the bot's latest ``trading.risk_metrics`` row before today
  (``equity_close_usd`` and ``equity_peak_usd``, the exact running peak the daily rollup keeps)
  with the trades closed since, so a run reads about a day of trades, not all history. A bot
  without rollup rows is read from its first trade (exact, slower). A trade written late for
  an earlier day leaves those rows behind until the next scheduled rollup redoes them
  (trading.RiskMetricsBacklog), at most 15 minutes.
- position size: the largest open position's quantity x current price (average entry price
  where no price is known); leverage: the highest leverage of an open position; open
  positions: how many positions are not closed.

A limit is breached when the measure is above it (a limit is the most allowed). One risk event
per breach: while an unresolved event of the same type for the same bot exists, the breach is
the same one and nothing is written. When a run finds the measure back within its limit it
resolves that event (``resolved_by`` empty: the system, with a note and a change record), so a
breach that clears and comes back is a new event. Staff resuming a bot during a breach that is
still open is a decision the check respects: it pauses again only on a new breach. Staff
resolving the event itself while the breach is still on ends that episode instead: the next
run finds no open event, writes a new one and, with ``pause_on_breach``, pauses the bot again.

Stale heartbeat: an active bot whose last heartbeat is older than
``settings.BOT_HEARTBEAT_STALE_SECONDS``; a bot that never sent one counts from its creation. One
event per episode: the episode's event is resolved by the first run that sees a fresh heartbeat.

Each check runs in one transaction holding a transaction-level advisory lock, so two concurrent
runs cannot both write the same event: the second waits, then finds the first one's events.
"""

from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from audit.models import ChangeAction, RiskAction, RiskEvent, RiskEventType, Severity
from audit.services import change_record, json_safe, model_values
from botconfig.models import BotConfiguration
from botconfig.services import bot_pause
from trading.db import advisory_lock_key
from trading.models import Bot, BotStatus
from trading.services.runs import bot_runs_close_stale

LIMIT_EVENT_TYPES = (
    RiskEventType.DAILY_LOSS_LIMIT,
    RiskEventType.DRAWDOWN_LIMIT,
    RiskEventType.POSITION_SIZE_LIMIT,
    RiskEventType.LEVERAGE_LIMIT,
    RiskEventType.OPEN_POSITIONS_LIMIT,
)
RESOLVE_FIELDS = ["resolved", "resolved_at", "resolved_by", "resolution_note"]
USD = Decimal("0.00000001")
PCT = Decimal("0.000001")

# Every bot but stopped ones, with its limits and measures. ``since``: where the drawdown curve
# continues from (the end of the latest rollup day before today, or the beginning of time).
MEASURES_SQL = """
WITH checked AS (
    SELECT b.bot_id, b.status, b.initial_capital_usd AS initial, b.max_daily_loss_usd,
           b.max_drawdown_pct, b.max_position_size_usd, b.max_leverage, b.max_open_positions
    FROM trading.bots b
    WHERE b.status <> 'stopped'
), rollup AS (
    SELECT DISTINCT ON (r.bot_id) r.bot_id, r.date, r.equity_close_usd, r.equity_peak_usd
    FROM trading.risk_metrics r
    JOIN checked c ON c.bot_id = r.bot_id
    WHERE r.date < %(today)s AND r.equity_close_usd IS NOT NULL
    ORDER BY r.bot_id, r.date DESC
), base AS (
    SELECT c.bot_id,
           COALESCE(r.equity_close_usd, c.initial) AS equity_start,
           GREATEST(c.initial, COALESCE(r.equity_peak_usd, r.equity_close_usd, c.initial))
               AS peak_start,
           COALESCE(((r.date + 1)::timestamp AT TIME ZONE 'UTC'), '-infinity'::timestamptz)
               AS since,
           r.date AS rollup_date
    FROM checked c
    LEFT JOIN rollup r ON r.bot_id = c.bot_id
), curve AS (
    -- One range scan of trades_bot_closed_exit_idx per bot, from its own ``since``.
    SELECT b.bot_id, t.pnl_usd,
           b.equity_start + sum(t.pnl_usd) OVER (
               PARTITION BY b.bot_id ORDER BY t.exit_time, t.id ROWS UNBOUNDED PRECEDING
           ) AS equity
    FROM base b
    CROSS JOIN LATERAL (
        SELECT t.id, t.exit_time, t.pnl_usd
        FROM trading.trades t
        WHERE t.bot_id = b.bot_id AND t.status = 'closed' AND t.source <> 'backtest'
          AND t.exit_time >= b.since AND t.exit_time <= %(now)s
        OFFSET 0  -- keeps the planner from flattening this into one scan of all trades
    ) t
), curve_now AS (
    SELECT bot_id, sum(pnl_usd) AS pnl, max(equity) AS peak FROM curve GROUP BY bot_id
), today AS (
    SELECT t.bot_id, sum(t.pnl_usd) AS realized
    FROM checked c
    JOIN trading.trades t ON t.bot_id = c.bot_id
    WHERE t.status = 'closed' AND t.source <> 'backtest'
      AND t.exit_time >= %(day_start)s AND t.exit_time <= %(now)s
    GROUP BY t.bot_id
), open_positions AS (
    SELECT p.bot_id,
           count(*) AS n,
           sum(p.unrealized_pnl_usd) AS unrealized,
           array_agg(p.id ORDER BY p.id) AS ids,
           (array_agg(ARRAY[p.id::numeric, p.quantity * COALESCE(p.current_price,
                p.avg_entry_price)] ORDER BY p.quantity * COALESCE(p.current_price,
                p.avg_entry_price) DESC, p.id))[1:1] AS largest,
           (array_agg(ARRAY[p.id::numeric, p.leverage] ORDER BY p.leverage DESC, p.id))[1:1]
               AS most_leveraged
    FROM checked c
    JOIN trading.positions p ON p.bot_id = c.bot_id
    WHERE p.status <> 'closed'
    GROUP BY p.bot_id
)
SELECT c.bot_id, c.status, c.max_daily_loss_usd, c.max_drawdown_pct, c.max_position_size_usd,
       c.max_leverage, c.max_open_positions,
       COALESCE(d.realized, 0) AS realized_today,
       COALESCE(o.unrealized, 0) AS unrealized,
       b.equity_start + COALESCE(k.pnl, 0) AS equity,
       GREATEST(b.peak_start, k.peak) AS peak,
       b.rollup_date,
       COALESCE(o.n, 0) AS open_positions,
       COALESCE(o.ids, '{}') AS position_ids,
       o.largest[1][1]::bigint AS largest_id, o.largest[1][2] AS largest_usd,
       o.most_leveraged[1][1]::bigint AS leveraged_id, o.most_leveraged[1][2] AS leverage
FROM checked c
JOIN base b ON b.bot_id = c.bot_id
LEFT JOIN curve_now k ON k.bot_id = c.bot_id
LEFT JOIN today d ON d.bot_id = c.bot_id
LEFT JOIN open_positions o ON o.bot_id = c.bot_id
ORDER BY c.bot_id
"""


@dataclass(frozen=True)
class Breach:
    bot_id: str
    event_type: RiskEventType
    limit_value: Decimal
    actual_value: Decimal
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Measures:
    """One bot's limits and where it stands, as MEASURES_SQL reads them."""

    bot_id: str
    status: str
    max_daily_loss_usd: Decimal | None
    max_drawdown_pct: Decimal | None
    max_position_size_usd: Decimal | None
    max_leverage: Decimal | None
    max_open_positions: int | None
    realized_today: Decimal
    unrealized: Decimal
    equity: Decimal
    peak: Decimal
    rollup_date: Any
    open_positions: int
    position_ids: list[int]
    largest_id: int | None
    largest_usd: Decimal | None
    leveraged_id: int | None
    leverage: Decimal | None

    def breaches(self, *, day: str) -> list[Breach]:
        found: list[Breach] = []

        def over(
            kind: RiskEventType, limit: Decimal | int | None, actual: Decimal | int | None, **d: Any
        ) -> None:
            if limit is not None and actual is not None and actual > limit:
                found.append(Breach(self.bot_id, kind, Decimal(limit), Decimal(actual), d))

        loss = -(self.realized_today + self.unrealized)
        over(
            RiskEventType.DAILY_LOSS_LIMIT,
            self.max_daily_loss_usd,
            loss.quantize(USD),
            unit="usd",
            day=day,
            realized_pnl_usd=self.realized_today,
            unrealized_pnl_usd=self.unrealized,
        )
        drawdown = ((self.peak - self.equity) / self.peak * 100).quantize(PCT)
        over(
            RiskEventType.DRAWDOWN_LIMIT,
            self.max_drawdown_pct,
            drawdown,
            unit="pct",
            equity_usd=self.equity,
            peak_usd=self.peak,
            continued_from_rollup_of=self.rollup_date,
        )
        over(
            RiskEventType.POSITION_SIZE_LIMIT,
            self.max_position_size_usd,
            None if self.largest_usd is None else self.largest_usd.quantize(USD),
            unit="usd",
            position_id=self.largest_id,
        )
        over(
            RiskEventType.LEVERAGE_LIMIT,
            self.max_leverage,
            self.leverage,
            unit="x",
            position_id=self.leveraged_id,
        )
        over(
            RiskEventType.OPEN_POSITIONS_LIMIT,
            self.max_open_positions,
            self.open_positions,
            unit="count",
            position_ids=self.position_ids,
        )
        return found


def _lock(name: str) -> None:
    """Wait for the transaction-level advisory lock ``name`` (released at commit)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [advisory_lock_key(name)])


def _measures(*, now: datetime) -> list[Measures]:
    day_start = datetime.combine(now.astimezone(UTC).date(), time.min, tzinfo=UTC)
    with connection.cursor() as cursor:
        cursor.execute(
            MEASURES_SQL, {"now": now, "today": day_start.date(), "day_start": day_start}
        )
        columns = [c.name for c in cursor.description or ()]
        return [Measures(**dict(zip(columns, row, strict=True))) for row in cursor.fetchall()]


def _risk_event_clear(*, event: RiskEvent, now: datetime, note: str) -> None:
    """Resolve ``event`` as the system (no user): its condition is over."""
    old = model_values(event, RESOLVE_FIELDS)
    event.resolved = True
    event.resolved_at = now
    event.resolution_note = note
    event.save(update_fields=RESOLVE_FIELDS)
    change_record(
        entity=event,
        action=ChangeAction.RESOLVE,
        old_values=old,
        new_values=model_values(event, RESOLVE_FIELDS),
        note=note,
    )


def _open_events(
    *, bot_ids: list[str], types: tuple[str, ...]
) -> dict[tuple[str, str], list[RiskEvent]]:
    """The unresolved events of ``types`` of these bots, locked, by (bot, type). Usually one
    each; events written by other means (an import, the demo data) may make it more."""
    events = (
        RiskEvent.objects.select_for_update()
        .filter(bot_id__in=bot_ids, event_type__in=types, resolved=False)
        .order_by("ts", "id")
    )
    found: dict[tuple[str, str], list[RiskEvent]] = {}
    for event in events:
        found.setdefault((event.bot_id, event.event_type), []).append(event)
    return found


def _pause_on_breach(*, bot_ids: list[str]) -> set[str]:
    """The bots among ``bot_ids`` whose configuration in force says ``"pause_on_breach": true``."""
    configs = BotConfiguration.objects.filter(bot_id__in=bot_ids, is_active=True).values_list(
        "bot_id", "config"
    )
    return {
        bot_id
        for bot_id, config in configs
        if isinstance(config, dict) and config.get("pause_on_breach") is True
    }


@transaction.atomic
def risk_limits_check(*, now: datetime | None = None) -> list[RiskEvent]:
    """Compare every bot (but stopped ones) with its limits; write one risk event per new
    breach, pause bots whose configuration asks for it, and resolve events whose breach is
    over. Returns the events it created."""
    now = now or timezone.now()
    _lock("analytics.services.risk.risk_limits_check")
    measures = _measures(now=now)
    day = now.astimezone(UTC).date().isoformat()
    breaches = {(b.bot_id, b.event_type.value): b for m in measures for b in m.breaches(day=day)}
    open_events = _open_events(
        bot_ids=[m.bot_id for m in measures], types=tuple(t.value for t in LIMIT_EVENT_TYPES)
    )

    for key, events_open in open_events.items():
        if key not in breaches:
            for event in events_open:
                _risk_event_clear(
                    event=event,
                    now=now,
                    note=f"Cleared: back within the limit at {now.isoformat()}.",
                )

    new = [b for key, b in breaches.items() if key not in open_events]
    if not new:
        return []
    new_bot_ids = sorted({b.bot_id for b in new})
    pausing = _pause_on_breach(bot_ids=new_bot_ids)
    bots = Bot.objects.in_bulk(new_bot_ids)
    paused: set[str] = set()
    for bot_id in sorted(pausing):
        bot = bots[bot_id]
        if bot.status in (BotStatus.ACTIVE, BotStatus.ERROR):
            kinds = ", ".join(sorted(b.event_type.value for b in new if b.bot_id == bot_id))
            bot_pause(bot=bot, user=None, note=f"risk check: {kinds} breached; pause_on_breach")
            paused.add(bot_id)

    events = [
        RiskEvent(
            ts=now,
            bot_id=b.bot_id,
            event_type=b.event_type,
            severity=Severity.CRITICAL if b.bot_id in paused else Severity.WARNING,
            limit_value=b.limit_value,
            actual_value=b.actual_value,
            action_taken=RiskAction.BOT_PAUSED if b.bot_id in paused else RiskAction.ALERTED,
            details=json_safe(
                {**b.details, "pause_on_breach": b.bot_id in pausing, "checked_at": now}
            ),
        )
        for b in sorted(new, key=lambda b: (b.bot_id, b.event_type.value))
    ]
    return RiskEvent.objects.bulk_create(events)


@transaction.atomic
def heartbeat_stale_check(*, now: datetime | None = None) -> list[RiskEvent]:
    """One risk event per active bot that went quiet (an episode); resolve the episode of a bot
    whose heartbeat is fresh again. Returns the events it created."""
    now = now or timezone.now()
    _lock("analytics.services.risk.heartbeat_stale_check")
    limit = settings.BOT_HEARTBEAT_STALE_SECONDS
    cutoff = now - timedelta(seconds=limit)
    stale = Bot.objects.filter(status=BotStatus.ACTIVE).filter(
        Q(last_heartbeat_at__lt=cutoff) | Q(last_heartbeat_at__isnull=True, created_at__lt=cutoff)
    )
    open_events = RiskEvent.objects.select_for_update().filter(
        event_type=RiskEventType.STALE_HEARTBEAT, resolved=False
    )
    # The runs of engines gone quiet end here, as crashed, at their last heartbeat.
    bot_runs_close_stale(cutoff=cutoff, limit_seconds=limit)
    episodes: set[str] = set()
    for event in open_events.select_related("bot").order_by("ts", "id"):
        heartbeat = event.bot.last_heartbeat_at
        if heartbeat is not None and heartbeat >= cutoff:
            note = f"Cleared: heartbeat received at {heartbeat.isoformat()}."
            _risk_event_clear(event=event, now=now, note=note)
        else:
            episodes.add(event.bot_id)

    events = []
    for bot in stale.order_by("bot_id"):
        if bot.bot_id in episodes:
            continue
        since = bot.last_heartbeat_at or bot.created_at
        events.append(
            RiskEvent(
                ts=now,
                bot=bot,
                event_type=RiskEventType.STALE_HEARTBEAT,
                severity=Severity.WARNING,
                limit_value=Decimal(limit),
                actual_value=Decimal(int((now - since).total_seconds())),
                action_taken=RiskAction.ALERTED,
                details=json_safe(
                    {
                        "unit": "seconds",
                        "last_heartbeat_at": bot.last_heartbeat_at,
                        "created_at": bot.created_at,
                        "checked_at": now,
                    }
                ),
            )
        )
    return RiskEvent.objects.bulk_create(events)
