"""Bot runs: opened when a bot starts, closed when it stops, closed as crashed when its
heartbeats stop. What the bot writes while a run is open is linked to it by the write paths
themselves (OPEN_RUN_SQL inside their one statement), so a bot never has to send the id."""

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from trading.models import Bot, BotRun, RunMode, RunStatus

# trading imports none of audit, yet every change of a run is in the change log: the audit app
# registers its recorder here at start-up (AppConfig.ready), called as recorder(run, action,
# old_values, new_values, actor_bot) inside the transaction of the change.
RunChangeRecorder = Callable[[BotRun, str, dict[str, Any], dict[str, Any], Bot | None], None]
run_change_recorders: list[RunChangeRecorder] = []

_RECORDED = ("status", "ended_at", "end_reason")


def _record(run: BotRun, action: str, old: dict[str, Any], actor_bot: Bot | None) -> None:
    new = {name: getattr(run, name) for name in _RECORDED}
    if action in ("create", "import"):
        new |= {
            "mode": run.mode,
            "started_at": run.started_at,
            "config_version": run.config_version,
            "code_version": run.code_version,
            "strategy_name": run.strategy_name,
            "host": run.host,
        }
    for record in run_change_recorders:
        record(run, action, old, new, actor_bot)


class RunRefused(ValueError):
    """A run request the stored runs refuse; ``field`` names the input to blame."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def bot_run_open(
    *,
    bot: Bot,
    mode: str,
    started_at: datetime,
    config_version: int | None = None,
    code_version: str = "",
    strategy_name: str = "",
    strategy_params: dict[str, Any] | None = None,
    host: str = "",
    metadata: dict[str, Any] | None = None,
    actor_bot: Bot | None = None,
) -> tuple[BotRun, bool]:
    """Open a run of ``bot`` (idempotent by (bot, started_at): a repeat returns the stored run
    and False). A run still open (the bot restarted without closing it) is closed first as
    crashed, ending where the new one starts. The bot's row lock serialises two opens at once:
    the second sees the first's run."""
    values = {
        "mode": mode,
        "config_version": config_version,
        "code_version": code_version,
        "strategy_name": strategy_name,
        "strategy_params": strategy_params or {},
        "host": host,
    }
    with transaction.atomic():
        Bot.objects.select_for_update().only("bot_id").get(pk=bot.pk)
        stored = BotRun.objects.filter(bot=bot, started_at=started_at).first()
        if stored is not None:
            differing = sorted(k for k, v in values.items() if getattr(stored, k) != v)
            if differing:
                raise RunRefused(
                    "started_at",
                    f"run {stored.pk} of {bot.bot_id} started at this time with other "
                    f"{', '.join(differing)}",
                )
            return stored, False
        previous = BotRun.objects.filter(bot=bot, ended_at__isnull=True).first()
        if previous is not None:
            old = {name: getattr(previous, name) for name in _RECORDED}
            previous.status = RunStatus.CRASHED
            previous.ended_at = max(previous.started_at, started_at)
            previous.end_reason = "a new run was opened before this one was closed"
            previous.save(update_fields=list(_RECORDED))
            _record(previous, "update", old, actor_bot)
        run = BotRun.objects.create(
            bot=bot, started_at=started_at, metadata=metadata or {}, **values
        )
        _record(run, "create", {}, actor_bot)
    return run, True


def bot_run_close(
    *,
    run: BotRun,
    ended_at: datetime | None = None,
    reason: str = "",
    status: str = RunStatus.CLOSED,
    actor_bot: Bot | None = None,
) -> tuple[BotRun, bool]:
    """Close an open run (at ``ended_at``, now by default); a run already ended is returned as
    it is, with False (a retried close)."""
    with transaction.atomic():
        locked = BotRun.objects.select_for_update().get(pk=run.pk)
        if locked.ended_at is not None:
            return locked, False
        ended_at = ended_at or timezone.now()
        if ended_at < locked.started_at:
            raise RunRefused(
                "ended_at", f"must not be before the run's start, {locked.started_at.isoformat()}"
            )
        old = {name: getattr(locked, name) for name in _RECORDED}
        locked.status = status
        locked.ended_at = ended_at
        locked.end_reason = reason
        locked.save(update_fields=list(_RECORDED))
        _record(locked, "update", old, actor_bot)
    return locked, True


# Runs of a live or dry-run engine whose bot's last heartbeat (or the run's start, if later)
# is older than the cut-off: closed as crashed at that last sign of life. Backtests and imports
# have no heartbeats: they are closed by whoever opened them.
_STALE_RUNS_SQL = """
UPDATE trading.bot_runs AS r
SET status = 'crashed',
    ended_at = GREATEST(r.started_at, b.last_heartbeat_at),
    end_reason = %(reason)s
FROM trading.bots AS b
WHERE b.bot_id = r.bot_id
    AND r.ended_at IS NULL
    AND r.mode IN ('live', 'dry_run')
    AND GREATEST(r.started_at, b.last_heartbeat_at) < %(cutoff)s
RETURNING r.id
"""


def bot_runs_close_stale(*, cutoff: datetime, limit_seconds: int) -> list[BotRun]:
    """Close as crashed every open live or dry-run run whose bot has been silent since before
    ``cutoff`` (the stale-heartbeat check's); one statement. Returns the runs closed."""
    reason = f"heartbeats stopped (none for {limit_seconds} s)"
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_STALE_RUNS_SQL, {"cutoff": cutoff, "reason": reason})
        ids = [run_id for (run_id,) in cursor.fetchall()]
        runs = list(BotRun.objects.filter(pk__in=ids).order_by("pk"))
        for run in runs:
            _record(run, "update", {"status": RunStatus.OPEN, "ended_at": None}, None)
    return runs


# The span of what an import linked to its run: the earliest and latest moment of its trades,
# orders, signals and balances.
_IMPORT_SPAN_SQL = """
SELECT min(first), max(last) FROM (
    SELECT min(entry_time), max(coalesce(exit_time, entry_time))
        FROM trading.trades WHERE bot_id = %(bot_id)s AND run_id = %(run_id)s
    UNION ALL SELECT min(coalesce(submitted_at, filled_at)), max(coalesce(filled_at, submitted_at))
        FROM trading.orders WHERE bot_id = %(bot_id)s AND run_id = %(run_id)s
    UNION ALL SELECT min(generated_at), max(generated_at)
        FROM trading.signals WHERE bot_id = %(bot_id)s AND run_id = %(run_id)s
    UNION ALL SELECT min(ts), max(ts)
        FROM trading.account_balance WHERE bot_id = %(bot_id)s AND run_id = %(run_id)s
) AS spans (first, last)
"""


def import_run_begin(
    *, bot: Bot, command: str, source: str, mode: str = RunMode.IMPORTED
) -> BotRun:
    """The run an import writes into (importers/): closed from the start (never the bot's
    open run), its span set by import_run_end once the rows are in. Call it inside the
    import's transaction."""
    now = timezone.now()
    return BotRun.objects.create(
        bot=bot,
        mode=mode,
        status=RunStatus.CLOSED,
        started_at=now,
        ended_at=now,
        end_reason="imported",
        metadata={"command": command, "source": source},
    )


def import_run_end(*, run: BotRun, strategy_name: str = "") -> int | None:
    """Give the import's run the span of the rows linked to it, with its change record, and
    return its id; or delete it and return None when the import created nothing (a re-import
    of an unchanged source: its rows keep the run they were first imported in)."""
    with connection.cursor() as cursor:
        cursor.execute(_IMPORT_SPAN_SQL, {"bot_id": run.bot_id, "run_id": run.pk})
        first, last = cursor.fetchone()
    if first is None:
        run.delete()
        return None
    # (bot, started_at) is a run's key: an earlier run starting at the same moment keeps it.
    while BotRun.objects.filter(bot_id=run.bot_id, started_at=first).exclude(pk=run.pk).exists():
        first += timedelta(microseconds=1)
    run.started_at, run.ended_at = first, max(first, last)
    if strategy_name:
        run.strategy_name = strategy_name
    run.save(update_fields=["started_at", "ended_at", "strategy_name"])
    _record(run, "import", {}, None)
    return run.pk
