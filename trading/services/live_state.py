"""Live state in Redis: the latest candle of every market and each bot's heartbeat.

PostgreSQL stays the system of record; Redis holds the hot copy that the busiest reads are
served from. Every call to Redis goes through ``redis_attempt`` (trading/redis_breaker.py):
when Redis is unreachable, or the circuit breaker skips it, it answers a fallback at once, so
callers fall back to PostgreSQL and writes still land. No request fails because Redis is down.

Keys (under the cache's KEY_PREFIX and version, so test runs and deployments never mix):
- ``prices:latest`` hash, field ``["BTC/USDT","binance","1m"]`` -> the candle as JSON;
  ``prices:ts`` hash, same fields -> the candle's open time in epoch microseconds. A Lua script
  writes a candle only when it is newer than the one held, so racing writers never move a
  price backwards. ``prices:seeded`` (expires after PRICES_SEEDED_SECONDS) says the hash holds
  every market's latest candle as of the price cache's *epoch* it names: without it, or when
  it names another epoch than PostgreSQL's, a read goes to PostgreSQL once and reseeds.
- The epoch is a PostgreSQL sequence (``trading.price_cache_epoch``) that every process whose
  price write did not reach Redis (unreachable, or skipped by the breaker) bumps once the
  candles are committed. So a price written while Redis was away is never served stale from
  Redis once it is back, by any process: a process that never saw the outage still reads the
  epoch from PostgreSQL (one sequence read per ``prices/`` request, microseconds) and finds the
  seeded hash out of date. Only a process that dies between its commit and the bump can leave a
  stale price, for at most PRICES_SEEDED_SECONDS.
- ``bot:<bot_id>:live`` hash: last_heartbeat_at, status, equity_usd, balance_usd.
- ``bot:<bot_id>:heartbeat-guard``: SET NX EX 10, at most one write-through per bot per 10 s.
"""

import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from django.db import DatabaseError, connection, transaction
from django.db.models import Subquery
from django.utils import timezone

from trading.models import AccountBalance, Bot, BotRun, BotStatus, SnapshotType
from trading.redis_breaker import redis_attempt, redis_client, redis_key

log = logging.getLogger(__name__)

# (symbol, exchange, timeframe): one market's candle series.
MarketKey = tuple[str, str, str]
# A candle as the API shows it: every value a string (decimal strings, ISO-8601 UTC times).
Price = dict[str, str]

PRICE_FIELDS = ("symbol", "exchange", "timeframe", "ts", "open", "high", "low", "close", "volume")
PRICES_LATEST = "prices:latest"
PRICES_TS = "prices:ts"
PRICES_SEEDED = "prices:seeded"
# How long Redis is trusted to hold every market's latest candle before one read reseeds it
# from PostgreSQL. Bounds how long a price written while Redis was unreachable can stay stale.
PRICES_SEEDED_SECONDS = 300

HEARTBEAT_WRITE_THROUGH_SECONDS = 10
LIVE_STATE_SECONDS = 86400

PRICE_EPOCH_SQL = (
    "SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM trading.price_cache_epoch"
)
PRICE_EPOCH_BUMP_SQL = "SELECT nextval('trading.price_cache_epoch')"

# Compare-and-set of many markets at once: KEYS = [latest hash, ts hash];
# ARGV = field, epoch microseconds, candle JSON, field, ... Returns how many were written.
_PRICES_CAS_LUA = """
local written = 0
for i = 1, #ARGV, 3 do
    local held = redis.call('HGET', KEYS[2], ARGV[i])
    if not held or tonumber(held) < tonumber(ARGV[i + 1]) then
        redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
        redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 2])
        written = written + 1
    end
end
return written
"""


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def iso_utc(moment: datetime) -> str:
    """ISO-8601 in UTC with a ``Z``, as the rest of the API writes times."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


# --- Latest prices ----------------------------------------------------------------------------


def _price_field(symbol: str, exchange: str, timeframe: str) -> str:
    return json.dumps([symbol, exchange, timeframe], ensure_ascii=False)


def _epoch_us(ts: str) -> int:
    moment = datetime.fromisoformat(ts)
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def price_cache_epoch() -> int:
    """The price cache's epoch in PostgreSQL (0 until a price first missed Redis)."""
    with connection.cursor() as cursor:
        cursor.execute(PRICE_EPOCH_SQL)
        return int(cursor.fetchone()[0])


def _seeded_mark(epoch: int) -> str:
    return f"epoch:{epoch}"


def _price_cache_missed() -> None:
    """A committed price did not reach Redis: move the epoch on, so that no process trusts a
    hash seeded before it. Logged, never raised (the candles are committed)."""
    try:
        with connection.cursor() as cursor:
            cursor.execute(PRICE_EPOCH_BUMP_SQL)
    except DatabaseError:
        log.exception(
            "price cache epoch not moved on: a price may be served stale for %s s",
            PRICES_SEEDED_SECONDS,
        )


def price_cache_update(*, candles: Iterable[Price], seeded_epoch: int | None = None) -> int | None:
    """Hold each candle unless Redis already holds a newer one for its market.

    ``seeded_epoch``: the candles are every market's latest, read from PostgreSQL after it
    read this epoch (``price_cache_epoch``), so Redis may answer for all markets while the
    epoch holds, until PRICES_SEEDED_SECONDS pass. Returns how many candles were written, or
    None when Redis is unreachable or skipped (then the epoch moves on).
    """
    args: list[str | int] = []
    for candle in candles:
        args += [
            _price_field(candle["symbol"], candle["exchange"], candle["timeframe"]),
            _epoch_us(candle["ts"]),
            json.dumps({name: candle[name] for name in PRICE_FIELDS}, ensure_ascii=False),
        ]

    def write() -> int:
        client = redis_client()
        written = 0
        if args:
            script = client.register_script(_PRICES_CAS_LUA)
            written = int(script(keys=[redis_key(PRICES_LATEST), redis_key(PRICES_TS)], args=args))
        if seeded_epoch is not None:
            client.set(
                redis_key(PRICES_SEEDED), _seeded_mark(seeded_epoch), ex=PRICES_SEEDED_SECONDS
            )
        return written

    written = redis_attempt("price cache update", write, None)
    if written is None and args:
        _price_cache_missed()
    return written


@dataclass(frozen=True)
class CachedPrices:
    seeded: bool  # Redis holds every market's latest candle, as of PostgreSQL's epoch
    prices: dict[MarketKey, Price]


def price_cache_read() -> CachedPrices | None:
    """Every latest candle Redis holds (one round trip), or None when Redis is unreachable or
    skipped. Seeded only when the hash was seeded in PostgreSQL's current epoch."""

    def read() -> tuple[bytes | None, dict[bytes, bytes]]:
        pipe = redis_client().pipeline(transaction=False)
        pipe.get(redis_key(PRICES_SEEDED))
        pipe.hgetall(redis_key(PRICES_LATEST))
        mark, held = pipe.execute()
        return mark, held

    found = redis_attempt("price cache read", read, None)
    if found is None:
        return None
    mark, held = found
    prices: dict[MarketKey, Price] = {}
    for value in held.values():
        candle = json.loads(value)
        prices[(candle["symbol"], candle["exchange"], candle["timeframe"])] = candle
    seeded = mark is not None and bool(prices) and _text(mark) == _seeded_mark(price_cache_epoch())
    return CachedPrices(seeded=seeded, prices=prices)


# --- Bots' heartbeats -------------------------------------------------------------------------

# trading imports none of audit, yet a bot's own status change is recorded like any other
# change: the audit app registers its recorder here at start-up (AppConfig.ready). Each is
# called as recorder(bot, old_status, new_status) inside the transaction of the change.
StatusChangeRecorder = Callable[[Bot, str, str], None]
bot_status_recorders: list[StatusChangeRecorder] = []

PAUSED_BY_STAFF = "the bot is paused; only staff can resume it"


def _live_key(bot_id: str) -> str:
    return redis_key(f"bot:{bot_id}:live")


def _guard_key(bot_id: str) -> str:
    return redis_key(f"bot:{bot_id}:heartbeat-guard")


def heartbeat_guard_acquire(*, bot_id: str) -> bool | None:
    """True for the first heartbeat of a bot in a 10 s window, False for the others; None when
    Redis is unreachable (then every heartbeat writes through)."""
    return redis_attempt(
        "heartbeat guard",
        lambda: bool(
            redis_client().set(_guard_key(bot_id), 1, nx=True, ex=HEARTBEAT_WRITE_THROUGH_SECONDS)
        ),
        None,
    )


@dataclass(frozen=True)
class LiveState:
    bot_id: str
    status: str
    last_heartbeat_at: str | None
    equity_usd: str | None
    balance_usd: str | None

    def as_json(self) -> dict[str, Any]:
        return {
            "bot_id": self.bot_id,
            "status": self.status,
            "last_heartbeat_at": self.last_heartbeat_at,
            "equity_usd": self.equity_usd,
            "balance_usd": self.balance_usd,
        }


@dataclass(frozen=True)
class HeartbeatResult:
    state: LiveState
    written_through: bool
    notice: str | None  # why a requested status was not applied

    def as_json(self) -> dict[str, Any]:
        return {**self.state.as_json(), "notice": self.notice}


def _status_after(current: str, requested: str | None) -> tuple[str, str | None]:
    """The status a heartbeat leaves, and why the requested one was refused.

    A bot may set active, paused, stopped or error, but a paused bot stays paused until staff
    resume it (bot_resume): a pause is how a person or a risk check stops a bot trading, and a
    bot that could lift it would make it advisory.
    """
    if requested is None or requested == current:
        return current, None
    if current == BotStatus.PAUSED:
        return current, PAUSED_BY_STAFF
    return requested, None


def _write_through(
    *,
    bot: Bot,
    now: datetime,
    status: str | None,
    equity_usd: Decimal | None,
    balance_usd: Decimal | None,
) -> tuple[Bot, str | None]:
    with transaction.atomic():
        locked = (
            Bot.objects.select_for_update()
            .only("status", "last_heartbeat_at", "current_equity_usd")
            .get(pk=bot.pk)
        )
        old_status = locked.status
        new_status, notice = _status_after(old_status, status)
        changes: dict[str, Any] = {}
        if locked.last_heartbeat_at is None or locked.last_heartbeat_at < now:
            changes["last_heartbeat_at"] = now
        if equity_usd is not None:
            changes["current_equity_usd"] = equity_usd
        if new_status != old_status:
            changes["status"] = new_status
            changes["updated_at"] = now
        if changes:
            Bot.objects.filter(pk=bot.pk).update(**changes)
            for name, value in changes.items():
                setattr(locked, name, value)
        if balance_usd is not None and equity_usd is not None:
            AccountBalance.objects.create(
                bot_id=bot.pk,
                # The open run, if any: one probe inside the INSERT, as the batch paths do.
                run_id=Subquery(
                    BotRun.objects.filter(bot_id=bot.pk, ended_at__isnull=True).values("pk")
                ),
                ts=now,
                balance_usd=balance_usd,
                equity_usd=equity_usd,
                snapshot_type=SnapshotType.PERIODIC,
            )
        if new_status != old_status:
            for record in bot_status_recorders:
                record(locked, old_status, new_status)
    return locked, notice


def bot_heartbeat(
    *,
    bot: Bot,
    status: str | None = None,
    equity_usd: Decimal | None = None,
    balance_usd: Decimal | None = None,
    now: datetime | None = None,
) -> HeartbeatResult:
    """Stamp the bot's heartbeat: its live state in Redis at once, PostgreSQL at most every 10 s.

    The live state (last heartbeat, status, the equity and balance last sent) is written through
    to trading.bots (last_heartbeat_at, status, current_equity_usd) by the first heartbeat of a
    bot in each 10 s window, by every heartbeat that changes the status, and by every heartbeat
    while Redis is unreachable. A heartbeat with balance_usd and equity_usd that writes through
    also writes an account_balance row (snapshot_type periodic).
    """
    now = now or timezone.now()
    # ``bot`` was read with the caller's token in this request: its status is current.
    expected_status, notice = _status_after(bot.status, status)
    fields: dict[str, str] = {"last_heartbeat_at": iso_utc(now), "status": expected_status}
    if equity_usd is not None:
        fields["equity_usd"] = str(equity_usd)
    if balance_usd is not None:
        fields["balance_usd"] = str(balance_usd)

    def remember() -> dict[str, str]:
        pipe = redis_client().pipeline(transaction=True)
        mapping: dict[Any, Any] = dict(fields)
        pipe.hset(_live_key(bot.bot_id), mapping=mapping)
        pipe.expire(_live_key(bot.bot_id), LIVE_STATE_SECONDS)
        pipe.hgetall(_live_key(bot.bot_id))
        held: dict[bytes, bytes] = pipe.execute()[-1]
        return {_text(k): _text(v) for k, v in held.items()}

    held = redis_attempt("bot live state write", remember, fields)
    acquired = heartbeat_guard_acquire(bot_id=bot.bot_id)
    written_through = acquired is not False or expected_status != bot.status
    if written_through:
        live_equity = held.get("equity_usd")
        try:
            bot, notice = _write_through(
                bot=bot,
                now=now,
                status=status,
                equity_usd=Decimal(live_equity) if live_equity is not None else None,
                balance_usd=balance_usd,
            )
        except Exception:
            # Let the next heartbeat try PostgreSQL again rather than wait out the window.
            redis_attempt(
                "heartbeat guard release",
                lambda: redis_client().delete(_guard_key(bot.bot_id)),
                0,
            )
            raise
    return HeartbeatResult(
        state=_live_state(bot, held), written_through=written_through, notice=notice
    )


def _live_state(bot: Bot, held: dict[str, str]) -> LiveState:
    """The newer of what Redis holds and what PostgreSQL was last told; the status always from
    PostgreSQL, where every change of it is written at once."""
    stored_at = bot.last_heartbeat_at
    held_at = held.get("last_heartbeat_at")
    if held_at is not None and (stored_at is None or datetime.fromisoformat(held_at) >= stored_at):
        equity = held.get("equity_usd")
        if equity is None and bot.current_equity_usd is not None:
            equity = str(bot.current_equity_usd)
        return LiveState(bot.bot_id, bot.status, held_at, equity, held.get("balance_usd"))
    return LiveState(
        bot_id=bot.bot_id,
        status=bot.status,
        last_heartbeat_at=iso_utc(stored_at) if stored_at is not None else None,
        equity_usd=str(bot.current_equity_usd) if bot.current_equity_usd is not None else None,
        balance_usd=None,
    )


def bot_live_state(*, bot: Bot) -> LiveState:
    """The bot's live state: Redis when it holds it, else what PostgreSQL was last told."""

    def read() -> dict[str, str]:
        held = redis_client().hgetall(_live_key(bot.bot_id))
        return {_text(k): _text(v) for k, v in held.items()}

    return _live_state(bot, redis_attempt("bot live state read", read, {}))
