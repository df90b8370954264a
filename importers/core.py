"""The framework every importer plugs into: one transaction, a report, progress, an audit event.

How a source plugs in
---------------------
1. Read the source in place and map its rows to the dicts the ``trading.services.ingest``
   services take (``trade_upsert_many`` and friends). Use the helpers here for what every
   legacy format needs: ``decimal_from_real`` / ``decimal_for`` (a binary float through its
   shortest text, rounded half-even to the column's scale), ``utc_parse`` (``...Z``,
   ``...+00:00`` and naive text, all UTC), ``utc_from_epoch_ms``, ``symbol_split``
   (``BTCUSDT`` -> ``BTC/USDT``) and ``legacy_json`` (JSON text kept even when broken).
   A row breaking a hard rule raises ``SourceError`` naming the table, legacy key and field.
2. Write a function ``work(ctx: ImportContext) -> None``. It adds what it read
   (``ctx.report.read(table, n)``), its duplicates and warnings, and writes each table with
   ``ctx.write(table, service, rows)``: chunked, counted, with a progress bar on long runs.
3. Describe the job: ``ImportJob(command=..., source=<location, password removed by
   source_label>, bot=BotSpec(...), work=work)``, and run it with ``import_run(job,
   dry_run=..., progress=...)``, or subclass ``importers.command.ImportCommand`` and return the
   job from ``job(**options)``: the command then gives ``--dry-run``, ``--progress``, ``--merge``
   and ``--stale-after`` (importers.guard), prints the report, and turns ``SourceError`` into a
   ``CommandError`` (exit 1).

``import_run`` does the whole import in one ``transaction.atomic()``: it registers the bot when
missing (botconfig's ``bot_register``, with its audit record), runs ``work``, and records one
audit SystemEvent (component ``importer``, event_type ``import_completed``, details = the
report's counts and the source). A dry run does the same and rolls it all back at the end, so
its counts are exactly those a real run would make, and it leaves no audit event. Any failure
rolls back everything: nothing is written.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from functools import cache
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit, urlunsplit

from django.core.exceptions import ValidationError
from django.db import DatabaseError, models, transaction

from analytics.tasks import risk_metrics_backfill, views_refresh_task
from atb_site.celery import enqueue_on_commit
from audit.services.records import system_event_record
from botconfig.services import bot_register
from trading.models import Bot, BotMode, Trade
from trading.services.ingest import RowsRefused, UpsertCounts, risk_metrics_backlog_mark
from trading.services.runs import import_run_begin, import_run_end

__all__ = [
    "CHUNK_ROWS",
    "COMPONENT",
    "EVENT_COMPLETED",
    "PROGRESS_FROM",
    "QUOTE_CURRENCIES",
    "BotSpec",
    "FieldReader",
    "ImportContext",
    "ImportJob",
    "Progress",
    "Report",
    "ReportWarning",
    "SourceError",
    "TableCounts",
    "column_text",
    "decimal_argument",
    "decimal_for",
    "decimal_from_real",
    "decimal_places",
    "import_run",
    "json_nul_escaped",
    "json_strict",
    "legacy_json",
    "nul_escaped",
    "source_label",
    "sqlite_read_only",
    "symbol_split",
    "utc_from_epoch_ms",
    "utc_parse",
]

CHUNK_ROWS = 5000  # rows per set-based statement: big enough to amortise, small enough to stream
PROGRESS_FROM = 2000  # rows: a shorter import is over before a bar would say anything
QUOTE_CURRENCIES = ("USDT", "USDC", "BTC", "ETH", "USD")  # tried in this order (legacy README)
COMPONENT = "importer"
EVENT_COMPLETED = "import_completed"


class SourceError(Exception):
    """The source cannot be imported: unreadable, a table missing, a row breaking a hard rule.

    The message names what failed (table, legacy key, field); nothing is written.
    """


# --- the report -------------------------------------------------------------------------------


@dataclass
class TableCounts:
    read: int = 0
    created: int = 0
    updated: int = 0
    already_present: int = 0
    duplicates: int = 0

    def as_json(self) -> dict[str, int]:
        return {
            "read": self.read,
            "created": self.created,
            "updated": self.updated,
            "already_present": self.already_present,
            "duplicates": self.duplicates,
        }


@dataclass(frozen=True)
class ReportWarning:
    table: str
    legacy_key: str
    message: str

    def __str__(self) -> str:
        return f"{self.table} {self.legacy_key}: {self.message}"


@dataclass
class Report:
    """What one import read and wrote, per unified table, and every warning with its legacy key."""

    command: str
    source: str
    bot_id: str
    dry_run: bool = False
    bot_registered: bool = False
    tables: dict[str, TableCounts] = field(default_factory=dict)
    warnings: list[ReportWarning] = field(default_factory=list)
    duplicates: list[ReportWarning] = field(default_factory=list)  # (table, dropped key, kept key)
    run_id: int | None = None  # the run the import's new rows are linked to (None: no new rows)

    def table(self, name: str) -> TableCounts:
        return self.tables.setdefault(name, TableCounts())

    def read(self, table: str, count: int) -> None:
        self.table(table).read += count

    def add(self, table: str, counts: UpsertCounts) -> None:
        tally = self.table(table)
        tally.created += counts.created
        tally.updated += counts.updated
        tally.already_present += counts.unchanged

    def warn(self, table: str, legacy_key: object, message: str) -> None:
        self.warnings.append(ReportWarning(table, str(legacy_key), message))

    def duplicate(self, table: str, legacy_key: object, kept: object) -> None:
        """``legacy_key`` repeats ``kept`` in every column but its id: counted, not imported."""
        self.table(table).duplicates += 1
        self.duplicates.append(ReportWarning(table, str(legacy_key), f"duplicate of {kept}"))

    @property
    def created(self) -> int:
        return sum(t.created for t in self.tables.values())

    @property
    def updated(self) -> int:
        return sum(t.updated for t in self.tables.values())

    @property
    def nothing_to_do(self) -> bool:
        return self.created == 0 and self.updated == 0 and not self.bot_registered

    def as_json(self) -> dict[str, Any]:
        return {
            "command": self.command,
            "source": self.source,
            "bot_id": self.bot_id,
            "dry_run": self.dry_run,
            "bot_registered": self.bot_registered,
            "tables": {name: t.as_json() for name, t in self.tables.items()},
            "duplicates": [[d.table, d.legacy_key, d.message] for d in self.duplicates],
            "warnings": [[w.table, w.legacy_key, w.message] for w in self.warnings],
        }

    def render(self) -> str:
        """The final text report: a table of counts, the duplicates, the warnings, a verdict."""
        mode = " (dry run: nothing written)" if self.dry_run else ""
        lines = [f"{self.command} {self.source} -> bot {self.bot_id}{mode}"]
        if self.bot_registered:
            lines.append(f"  bot {self.bot_id} registered")
        header = ("table", "read", "created", "updated", "already present", "duplicates")
        rows = [header] + [
            (
                name,
                *(
                    f"{n:,}"
                    for n in (t.read, t.created, t.updated, t.already_present, t.duplicates)
                ),
            )
            for name, t in self.tables.items()
        ]
        widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
        for row in rows:
            cells = [row[0].ljust(widths[0])] + [
                cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)
            ]
            lines.append("  " + "  ".join(cells).rstrip())
        if self.duplicates:
            lines.append(f"duplicates ({len(self.duplicates)}, not imported):")
            lines += [f"  {d}" for d in self.duplicates]
        if self.warnings:
            lines.append(f"warnings ({len(self.warnings)}):")
            lines += [f"  {w}" for w in self.warnings]
        verb = "would be" if self.dry_run else "were"
        if self.nothing_to_do:
            lines.append("nothing to do: already imported (0 created, 0 updated)")
        else:
            lines.append(f"{self.created:,} rows {verb} created, {self.updated:,} updated")
        return "\n".join(lines) + "\n"


# --- progress ---------------------------------------------------------------------------------


class Progress:
    """A one-line progress bar on stderr, or nothing.

    Shown when enabled (``--progress``, or stderr is a terminal) and the run is long
    (``total`` >= PROGRESS_FROM rows). Redraws at most ten times a second.
    """

    def __init__(
        self, *, label: str, total: int, enabled: bool, stream: IO[str] | None = None
    ) -> None:
        self.label = label
        self.total = total
        self.done = 0
        self.stream = stream if stream is not None else sys.stderr
        self.shown = enabled and total >= PROGRESS_FROM
        self._drawn_at = 0.0

    def advance(self, count: int) -> None:
        self.done += count
        if not self.shown:
            return
        now = time.monotonic()
        if now - self._drawn_at >= 0.1 or self.done >= self.total:
            self._drawn_at = now
            share = min(self.done / self.total, 1.0) if self.total else 1.0
            bar = "#" * int(share * 30)
            self.stream.write(
                f"\r{self.label:<16} [{bar:<30}] {self.done:>10,}/{self.total:,} {share:4.0%}"
            )
            self.stream.flush()

    def close(self) -> None:
        if self.shown:
            self.stream.write("\n")
            self.stream.flush()


def progress_default() -> bool:
    return sys.stderr.isatty()


# --- the job and the runner -------------------------------------------------------------------


@dataclass(frozen=True)
class BotSpec:
    """The bot an import writes to, and how to register it when it is missing."""

    bot_id: str
    name: str
    strategy_type: str
    exchange: str
    initial_capital_usd: Decimal
    base_currency: str = "USDT"
    mode: str = BotMode.LIVE
    metadata: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] | None = None


# Row fields that place a written row in time, for the earliest day an import touched.
TIME_FIELDS = ("entry_time", "exit_time", "opened_at", "closed_at", "ts", "generated_at")


@dataclass
class ImportContext:
    bot: Bot
    report: Report
    progress_enabled: bool
    earliest: datetime | None = None  # the earliest time of a row written (created or changed)
    stale: datetime | None = None  # the source's last activity, when too old (importers.guard)
    trade_keys: set[str] = field(default_factory=set)  # the trade_ids this import writes
    run_id: int | None = None  # the import's run: what it creates is linked to it

    def touched(self, rows: Iterable[dict[str, Any]]) -> None:
        """Note the earliest time among ``rows`` (written ones): the daily rollups are redone
        from its day on once the import commits."""
        times = [
            value
            for row in rows
            for name in TIME_FIELDS
            if isinstance(value := row.get(name), datetime)
        ]
        if times and (self.earliest is None or min(times) < self.earliest):
            self.earliest = min(times)

    def progress(self, label: str, total: int) -> Progress:
        return Progress(label=label, total=total, enabled=self.progress_enabled)

    def symbol(self, table: str, key: str, raw: str, legacy: dict[str, Any]) -> str:
        """``symbol_split(raw)``; the raw spelling kept in ``legacy["symbol"]`` when it changes,
        and a warning (the symbol kept as it is) when no quote currency fits."""
        symbol = symbol_split(raw)
        if symbol is None:
            self.report.warn(table, key, f"symbol {raw!r} ends with no known quote: kept as is")
            return raw
        if symbol != raw:
            legacy["symbol"] = raw
        return symbol

    def text(self, table: str, key: str, name: str, value: object, legacy: dict[str, Any]) -> str:
        """``column_text`` for the trades column ``name``; when the text had to change, the text
        as read is kept in ``legacy[name]`` and the report warns."""
        text, change = column_text(
            value, getattr(Trade._meta.get_field(name), "max_length", 0) or 0
        )
        if change is not None:
            legacy[name] = nul_escaped(value)
            self.report.warn(table, key, f"{name} {change}: the full text is kept under legacy")
        return text

    def write(
        self,
        table: str,
        service: Callable[..., UpsertCounts],
        rows: list[dict[str, Any]],
        *,
        chunk: int = CHUNK_ROWS,
        keys: Callable[[dict[str, Any]], str] | None = None,
    ) -> None:
        """Write ``rows`` through ``service(bot=, rows=)`` in chunks, counting into the report.

        ``keys`` names a row's legacy key, for the message when the database refuses a chunk.
        """
        bar = self.progress(table, len(rows))
        try:
            for start in range(0, len(rows), chunk):
                part = rows[start : start + chunk]
                try:
                    for row in part:  # services without runs ignore the key
                        row["run_id"] = self.run_id
                    with transaction.atomic():  # a savepoint: the probe below needs it
                        counts = service(bot=self.bot, rows=part)
                except RowsRefused as exc:
                    index, name, reason = exc.errors[0]
                    key = keys(part[index]) if keys is not None else f"row {start + index}"
                    raise SourceError(
                        f"{table} {key}: {name or 'row'}: {reason} ({len(exc.errors)} rows refused)"
                    ) from exc
                except DatabaseError as exc:
                    raise self._refused(table, service, part, start, keys, exc) from exc
                self.report.add(table, counts)
                if table == "trades":
                    self.trade_keys.update(str(row["trade_id"]) for row in part)
                if counts.created or counts.updated:
                    self.touched(part)
                bar.advance(len(part))
        finally:
            bar.close()

    def _refused(
        self,
        table: str,
        service: Callable[..., UpsertCounts],
        part: list[dict[str, Any]],
        start: int,
        keys: Callable[[dict[str, Any]], str] | None,
        error: DatabaseError,
    ) -> SourceError:
        """What the database refused of a chunk, named: each row is written alone, in a savepoint
        always rolled back, until one fails. (Only on failure; the import then stops.)"""
        for index, row in enumerate(part):
            try:
                with transaction.atomic():
                    service(bot=self.bot, rows=[row])
                    raise _Probed
            except _Probed:
                continue
            except (DatabaseError, RowsRefused) as exc:
                key = keys(row) if keys is not None else f"row {start + index}"
                return SourceError(f"{table} {key}: the database refused it: {_first_line(exc)}")
        rows = f"rows {start}-{start + len(part) - 1}"
        return SourceError(f"{table} {rows}: the database refused them: {_first_line(error)}")


class _Probed(Exception):
    """Rolls back a row written only to see whether the database takes it."""


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


@dataclass(frozen=True)
class ImportJob:
    command: str
    source: str  # where the rows come from, for the report and the audit event: no password
    bot: BotSpec
    work: Callable[[ImportContext], None]
    last_activity: datetime | None = None  # the source's latest time of any kind


def import_run(
    job: ImportJob,
    *,
    dry_run: bool = False,
    progress: bool = False,
    merge: bool = False,
    stale_after: timedelta | None = None,
) -> Report:
    """Run ``job`` in one transaction; on ``dry_run`` roll it all back after counting.

    Raises SourceError (nothing written) when the source or the database refuses a row, and
    MergeRefused (nothing written) when the bot holds trades of another source and not
    ``merge``. ``stale_after``: see importers.guard (None: open positions stay open).
    """
    from importers.guard import merge_check, stale_since  # guard builds on this module

    report = Report(command=job.command, source=job.source, bot_id=job.bot.bot_id)
    report.dry_run = dry_run
    try:
        with transaction.atomic():
            bot, report.bot_registered = bot_ensure(job.bot, note=f"{job.command} {job.source}")
            ctx = ImportContext(bot=bot, report=report, progress_enabled=progress)
            ctx.stale = stale_since(job.last_activity, stale_after=stale_after)
            run = import_run_begin(bot=bot, command=job.command, source=job.source)
            ctx.run_id = run.pk
            job.work(ctx)
            merge_check(ctx, merge=merge)
            report.run_id = import_run_end(run=run)
            if dry_run:
                transaction.set_rollback(True)
            else:
                system_event_record(
                    component=COMPONENT,
                    event_type=EVENT_COMPLETED,
                    message=_summary(report),
                    bot=bot,
                    details=report.as_json(),
                )
                _follow_ups(bot, ctx.earliest)
    except ValidationError as exc:
        raise SourceError(f"bot {job.bot.bot_id}: {exc}; nothing written") from exc
    except DatabaseError as exc:
        raise SourceError(f"the database refused the import, nothing written: {exc}") from exc
    return report


def _follow_ups(bot: Bot, earliest: datetime | None) -> None:
    """The bot's daily risk rows marked stale from the earliest day the import touched (in its
    transaction, so the mark cannot be lost; the scheduled rollup only redoes yesterday and
    today, and redoes marked days), then, once the import commits (never if it rolls back),
    the marked days redone and both materialized views refreshed, so the admin, the API and the
    dashboard show the history at once instead of after the next scheduled run."""
    if earliest is None:
        return
    risk_metrics_backlog_mark(bot_id=bot.bot_id, since=earliest.astimezone(UTC).date())
    enqueue_on_commit(risk_metrics_backfill)
    enqueue_on_commit(views_refresh_task)


def bot_ensure(spec: BotSpec, *, note: str) -> tuple[Bot, bool]:
    """The bot, locked for the import; registered (with its audit record) when missing."""
    bot = Bot.objects.select_for_update().filter(pk=spec.bot_id).first()
    if bot is not None:
        return bot, False
    bot = bot_register(
        bot_id=spec.bot_id,
        name=spec.name,
        strategy_type=spec.strategy_type,
        exchange=spec.exchange,
        initial_capital_usd=spec.initial_capital_usd,
        config=spec.config,
        change_reason=note[:200],
        base_currency=spec.base_currency,
        mode=spec.mode,
        metadata={"registered_by": note.split(" ", 1)[0], **spec.metadata},
    )
    return bot, True


def _summary(report: Report) -> str:
    return (
        f"{report.command}: {report.created} created, {report.updated} updated, "
        f"{len(report.duplicates)} duplicates, {len(report.warnings)} warnings"
    )


def decimal_argument(text: str) -> Decimal:
    """An argparse type: a positive finite decimal, exactly as written."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value.is_finite() or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number")
    return value


# --- helpers every legacy format needs --------------------------------------------------------


class FieldReader:
    """Reads one legacy row's fields; a value breaking a hard rule raises SourceError naming
    the table, the row's legacy key and the field."""

    def __init__(self, table: str, key: str) -> None:
        self.table = table
        self.key = key

    def fail(self, name: str, problem: str) -> SourceError:
        return SourceError(f"{self.table} {self.key}: {name}: {problem}")

    def number(
        self, model: type[models.Model], field_name: str, value: Any, name: str
    ) -> Decimal | None:
        try:
            return decimal_for(value, model, field_name)
        except ValueError as exc:
            raise self.fail(name, str(exc)) from exc

    def positive(
        self, model: type[models.Model], field_name: str, value: Any, name: str
    ) -> Decimal:
        number = self.number(model, field_name, value, name)
        if number is None or number <= 0:
            raise self.fail(name, f"{value!r} is not a positive number")
        return number

    def optional_time(self, value: Any, name: str) -> datetime | None:
        try:
            return utc_parse(value)
        except ValueError as exc:
            raise self.fail(name, str(exc)) from exc

    def time(self, value: Any, name: str) -> datetime:
        moment = self.optional_time(value, name)
        if moment is None:
            raise self.fail(name, "missing")
        return moment

    def choice(self, name: str, value: Any, choices: dict[str, Any]) -> Any:
        text = value.strip() if isinstance(value, str) else value
        if text not in choices:
            raise self.fail(name, f"{value!r} is not one of {', '.join(choices)}")
        return choices[text]


@cache
def decimal_places(model: type[models.Model], field_name: str) -> Decimal:
    """The quantum of a DecimalField: Decimal('1e-8') for 8 decimal places."""
    model_field = model._meta.get_field(field_name)
    places = getattr(model_field, "decimal_places", None)
    if places is None:
        raise TypeError(f"{model.__name__}.{field_name} is not a DecimalField")
    return Decimal(1).scaleb(-places)


def decimal_from_real(value: object, quantum: Decimal) -> Decimal | None:
    """A legacy number as a Decimal rounded half-even to ``quantum``; None stays None.

    A binary float goes through its shortest round-tripping text (``repr``), so 0.1 becomes
    Decimal('0.1'), not 0.1000000000000000055511151231257827. Text and Decimals are read
    exactly. Raises ValueError for what is not a finite number.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a number")
    if isinstance(value, float):
        number = Decimal(repr(value))
    elif isinstance(value, Decimal | int):
        number = Decimal(value)
    elif isinstance(value, str):
        try:
            number = Decimal(value.strip())
        except InvalidOperation as exc:
            raise ValueError(f"{value!r} is not a number") from exc
    else:
        raise ValueError(f"{value!r} is not a number")
    if not number.is_finite():
        raise ValueError(f"{value!r} is not a finite number")
    return number.quantize(quantum, rounding=ROUND_HALF_EVEN)


def decimal_for(value: object, model: type[models.Model], field_name: str) -> Decimal | None:
    """``decimal_from_real`` at the scale of ``model.field_name`` (its decimal_places)."""
    return decimal_from_real(value, decimal_places(model, field_name))


def utc_parse(value: object) -> datetime | None:
    """A legacy time as an aware UTC datetime; None and '' stay None.

    Reads ISO-8601 text with ``Z``, with an offset (converted to UTC), or naive (which the
    legacy bots wrote in UTC), with ``T`` or a space, with or without fractions; naive
    datetimes (a PostgreSQL ``timestamp``) are UTC too. Raises ValueError otherwise.
    """
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            moment = datetime.fromisoformat(text)
        except ValueError as exc:
            raise ValueError(f"{value!r} is not an ISO-8601 time") from exc
    else:
        raise ValueError(f"{value!r} is not a time")
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def utc_from_epoch_ms(value: object) -> datetime:
    """Epoch milliseconds (an integer, or a float of one) as an aware UTC datetime, exactly."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{value!r} is not epoch milliseconds")
    millis = int(value)
    seconds, rest = divmod(millis, 1000)
    return datetime.fromtimestamp(seconds, tz=UTC).replace(microsecond=rest * 1000)


def symbol_split(raw: str, quotes: Iterable[str] = QUOTE_CURRENCIES) -> str | None:
    """``BTCUSDT`` -> ``BTC/USDT``: split at the first quote currency (in ``quotes`` order) the
    symbol ends with. A symbol that already has a ``/`` is kept; None when no quote fits."""
    text = raw.strip().upper()
    if "/" in text:
        return text
    for quote in quotes:
        if text.endswith(quote) and len(text) > len(quote):
            return f"{text[: -len(quote)]}/{quote}"
    return None


# ``\u0000`` as json.dumps writes a NUL: not preceded by an escaped backslash of the text.
_NUL_ESCAPE = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")


def json_nul_escaped(text: str) -> str:
    """JSON text (as json.dumps writes it) with every NUL character in it written as the six
    characters ``\\u0000``, a text jsonb can hold; a quick scan when there is none."""
    if "\\u0000" not in text:
        return text
    return _NUL_ESCAPE.sub(lambda found: found.group(0)[:-6] + "\\\\u0000", text)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def json_strict(text: str) -> Any:
    """JSON text as PostgreSQL's jsonb takes it: ``NaN``, ``Infinity`` and ``-Infinity`` (which
    Python's ``json.dumps`` writes, and ``json.loads`` reads back) and NUL characters (a
    ``\\u0000`` in a string or a key) are refused with ValueError, as malformed text is."""
    value = json.loads(text, parse_constant=_no_constant)
    if _NUL_ESCAPE.search(json.dumps(value)):  # json.dumps in C: a NUL anywhere, key or value
        raise ValueError("a string in it holds a NUL character, which jsonb cannot store")
    return value


def legacy_json(text: object) -> tuple[Any, str | None]:
    """JSON text as its value, and None; or, when jsonb cannot hold it, ``{"legacy_raw": text}``
    and why (the caller warns with the row's legacy key). None and '' give ``{}``.

    Broken is malformed text, and valid JSON that jsonb refuses (``json_strict``): NaN,
    Infinity, NUL. A NUL character in the text itself is kept as the six characters
    ``\\u0000``, the only thing changed of what the source held."""
    if text is None or text == "":
        return {}, None
    raw = text if isinstance(text, str) else str(text)
    try:
        return json_strict(raw), None
    except ValueError as exc:
        return {"legacy_raw": nul_escaped(raw)}, str(exc)


def nul_escaped(value: object) -> str:
    """Text as jsonb can keep it: a NUL character (which PostgreSQL's text and jsonb cannot
    hold) as the six characters ``\\u0000``; nothing else changed."""
    return str(value).replace("\x00", "\\u0000")


def column_text(value: object, max_length: int) -> tuple[str, str | None]:
    """Legacy text as a varchar(``max_length``) column holds it, and how it had to change (None
    when it did not): NUL characters, which PostgreSQL's text cannot hold, are dropped; text
    longer than the column is cut to it. None is ''."""
    text = "" if value is None else str(value)
    changes = []
    if "\x00" in text:
        text = text.replace("\x00", "")
        changes.append("held NUL characters (dropped)")
    if len(text) > max_length:
        changes.append(f"is {len(text):,} characters, cut to the column's {max_length}")
        text = text[:max_length]
    return text, "; ".join(changes) or None


def _connect_read_only(path: Path) -> sqlite3.Connection:
    """``path`` opened with ``mode=ro`` (SQLite itself refuses any write, and creates no file
    for a wrong path), and read once, so that a file it cannot read fails here."""
    conn = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.Error:
        conn.close()
        raise
    return conn


@contextmanager
def sqlite_read_only(path: str) -> Iterator[sqlite3.Connection]:
    """The SQLite database at ``path``, read in place and never written.

    A WAL-mode database (freqtrade's default) needs its ``-shm`` index beside it even to be
    read; where that file is missing and the folder is not writable for this user (a read-only
    mount, another user's folder), SQLite cannot open it. Then the database file and its
    ``-wal`` (the last transactions, not yet in the main file) are copied into a private
    temporary folder and read there. Raises SourceError when neither way opens it.
    """
    source = Path(path).resolve()
    with ExitStack() as stack:
        try:
            conn = _connect_read_only(source)
        except sqlite3.Error as exc:
            if os.access(source.parent, os.W_OK):
                raise SourceError(f"{path}: cannot open it as SQLite ({exc})") from exc
            scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="atb-import-")))
            copy = scratch / source.name
            for suffix in ("", "-wal"):
                if Path(f"{source}{suffix}").is_file():
                    shutil.copyfile(f"{source}{suffix}", f"{copy}{suffix}")
            try:
                conn = _connect_read_only(copy)
            except sqlite3.Error as again:
                raise SourceError(f"{path}: cannot open it as SQLite ({again})") from again
        stack.callback(conn.close)
        yield conn


def source_label(location: str) -> str:
    """A source for reports and audit records: a URL without its password, a path as given."""
    parts = urlsplit(location)
    if not parts.netloc:
        return location
    query = "&".join(
        item for item in parts.query.split("&") if not item.lower().startswith("password=")
    )
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    netloc = f"{parts.username}@{host}" if parts.username else host
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
