"""POST trades/'s fast path: a batch of well-formed trades from body bytes to COPY text with as
little Python per value as it takes (the way trading.api.market_fast takes candles).

The body is decoded by msgspec into typed structs: money and quantities as their JSON strings
(never a float, and no Decimal per value), times as text, strategy_data as its raw JSON. What
only Python can judge is checked, most of it a batch at once on joined text: names printable
without edge spaces, text lengths (PostgreSQL would cut trailing spaces silently), choices,
numbers written as plain decimals of at most the column's places (PostgreSQL would round half
away from zero, the Shape rounds half-even), times in UTC and a year the API takes, the rules
across fields, and a trade's value (quantity x entry_price) within a USD column. What the
table's CHECK constraints and PostgreSQL's input functions judge (a price above 0, an exit
after the entry, an impossible date, more digits than a column holds, malformed JSON numbers)
is left to them.

pnl_usd (a closed trade the bot did not price) and pnl_pct are computed by the very Python of
the generic path (trade_derived_fields, on Decimals of the sent texts), only for the trades
that have them: Decimal's 28-digit context and half-even quantize would take more than SQL's
round() to match. The rows go by COPY into a staging table and are upserted from it by the
generic statement (trade_upsert_copied).

Anything else takes the generic path (trading.api.trades), which parses the body again and
names every bad trade as always: a body this decoder refuses, a trade not taken at once
(``NotFast``), or a batch PostgreSQL refused (nothing written, the transaction undone).
"""

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC
from decimal import Decimal
from typing import Any

import msgspec
from django.db import DataError, IntegrityError
from django.utils import timezone

from trading.api.shapes import JSON_MAX_DEPTH, nests_within_limit
from trading.models import Bot, TradeSide, TradeSource, TradeStatus
from trading.services.ingest import UpsertCounts, trade_derived_fields
from trading.services.ingest.trades import trade_upsert_copied
from trading.services.market import COPY_ESCAPES

# A batch shorter than this takes the generic path: the staging table (created and dropped
# each time: catalog rows, a file, three round trips) costs about what the fast path saves on
# fewer trades. In-process, durable server, medians: 100 trades 36.8 ms either way (7.7 ms of
# Python against 10.0), 500 trades 68.9 ms against 81.8, 1,000 trades 131.5 against 155.6.
MIN_FAST_TRADES = 100
_ABSENT = "\x00"  # bot_id not sent: a decoded string holds no NUL (no \u escape is taken)
_EMPTY_OBJECT = msgspec.Raw(b"{}")
# A JSON text this long may hold an integer of more digits than the parser reads (4,300).
_LONGEST_RAW_JSON = 4_000
_CLOSED = TradeStatus.CLOSED.value
_OPEN = TradeStatus.OPEN.value
_SIDES = frozenset(TradeSide.values)
_STATUSES = frozenset(TradeStatus.values)
_SOURCES = frozenset(TradeSource.values)
_NULL = "\\N"
_TAB = "\t"


class FastTrade(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """A trade as the fast path takes it: numbers and times as JSON strings (a JSON number, a
    null where the Shape refuses one, or any field but these makes the decoder refuse the body,
    and the generic path judge it)."""

    trade_id: str
    symbol: str
    exchange: str
    side: str
    quantity: str
    entry_price: str
    entry_time: str
    exit_price: str | None = None
    exit_time: str | None = None
    fees_usd: str = "0"
    pnl_usd: str | None = None
    status: str = _OPEN
    source: str | None = None
    leverage: str = "1"
    exit_reason: str = ""
    entry_tag: str = ""
    strategy_data: msgspec.Raw = _EMPTY_OBJECT
    bot_id: str = _ABSENT


_DECODER = msgspec.json.Decoder(list[FastTrade])


@dataclass(frozen=True)
class BotRef:
    """The bot a batch is checked for when only its id is known: a source not sent stays NULL."""

    bot_id: str
    mode: None = None


class NotFast(Exception):
    """The batch holds a trade the fast path does not take at once; the generic path judges it."""


def trades_decoded(
    raw: bytes, *, most: int, least: int = MIN_FAST_TRADES
) -> list[FastTrade] | None:
    """The batch as structs, or None when the fast path leaves it to the generic one: not an
    array of ``least`` to ``most`` trades, or holding a \\u escape (only an escape can
    bring a NUL or a lone surrogate, which the generic parser tags or refuses)."""
    if raw[:1] != b"[" or b"\\u" in raw:
        return None
    try:
        items = _DECODER.decode(raw)
    except (msgspec.MsgspecError, RecursionError):
        return None
    if not least <= len(items) <= most:
        return None
    return items


# Numbers as the fast path takes them, a column's values joined by tabs: plain decimals with at
# most the column's places (no exponent, space, "+", NaN or underscore); a sign only on USD
# amounts, which may be negative. Too many digits before the point, and 0 where a column holds
# only more, PostgreSQL refuses.
def _numbers(places: int, *, signed: bool) -> re.Pattern[str]:
    one = rf"{'-?' if signed else ''}(?:[0-9]+(?:\.[0-9]{{0,{places}}})?|\.[0-9]{{1,{places}}})"
    return re.compile(rf"(?:{one}\t)*{one}")


_QUANTITIES = _numbers(10, signed=False)
_USD = _numbers(8, signed=True)
_PCT = _numbers(6, signed=False)
# Times as the fast path takes them, joined by tabs: ISO-8601 in UTC, at most microseconds,
# read alike by Python and PostgreSQL (which take 24:00 and second 60 differently); an
# impossible day PostgreSQL refuses. Years 1970 to 9998 are checked on the text.
_TIME = (
    r"[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])"
    r"T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,6})?(?:Z|\+00:00)"
)
_TIMES = re.compile(rf"(?:{_TIME}\t)*{_TIME}")
_EARLIEST = "1970"
_TOO_LATE = "9999"  # a time of year 9999 or later starts so


def _names_checked(values: list[str], max_length: int) -> None:
    """``values`` (symbols or exchanges: a batch holds few) checked as the Shape's ident passes
    them, each once: 1 to ``max_length`` printable characters, no edge space."""
    for value in set(values):
        if not 0 < len(value) <= max_length or not value.isprintable():
            raise NotFast
        if value[0] == " " or value[-1] == " ":
            raise NotFast


def _idents_checked(ids: list[str], max_length: int) -> None:
    """trade_ids as the Shape's ident passes them (1 to ``max_length`` printable characters,
    no edge space), each once in the batch; a batch at once."""
    if len(set(ids)) != len(ids) or max(map(len, ids)) > max_length:
        raise NotFast
    joined = "\n".join(ids)
    if joined.count("\n") != len(ids) - 1 or not joined.replace("\n", "").isprintable():
        raise NotFast
    edged = f"\n{joined}\n"
    if "\n\n" in edged or "\n " in edged or " \n" in edged:
        raise NotFast


def _plain_numbers(pattern: re.Pattern[str], values: list[str]) -> None:
    if values and pattern.fullmatch("\t".join(values)) is None:
        raise NotFast


def _whole_digits(number: str) -> int:
    point = number.find(".")
    return len(number) if point < 0 else point


def _figures(
    item: FastTrade, side: str, status: str, refused: Callable[[dict[str, Any]], list[Any]]
) -> tuple[str, str]:
    """pnl_usd and pnl_pct as trade_derived_fields computes them (NotFast when ``refused``, the
    generic path's rules, finds them overflowing a column)."""
    exit_price = item.exit_price
    pnl = item.pnl_usd
    try:
        row = {
            "status": status,
            "side": side,
            "quantity": Decimal(item.quantity),
            "entry_price": Decimal(item.entry_price),
            "exit_price": None if exit_price is None else Decimal(exit_price),
            "fees_usd": Decimal(item.fees_usd),
            "pnl_usd": None if pnl is None else Decimal(pnl),
        }
        if refused(row):
            raise NotFast
        trade_derived_fields(row)
    except (ArithmeticError, ValueError):  # not a number: the generic path names it
        raise NotFast from None
    return (pnl if pnl is not None else str(row["pnl_usd"])), str(row["pnl_pct"])


def _strategy_field(strategy: msgspec.Raw) -> str:
    """strategy_data's JSON text as sent (PostgreSQL reads it into jsonb as the generic path's
    text of the parsed object): an object, nesting at most JSON_MAX_DEPTH levels, without an
    integer longer than the parser reads (NotFast otherwise)."""
    text = str(strategy, "utf-8")
    if text[0] != "{" or len(text) > _LONGEST_RAW_JSON:
        raise NotFast
    # A text of n characters nests at most n / 2 levels; a longer one with many brackets is
    # measured.
    if len(text) > 2 * JSON_MAX_DEPTH and text.count("{") + text.count("[") > JSON_MAX_DEPTH:
        try:
            if not nests_within_limit(msgspec.json.decode(text)):
                raise NotFast
        except (msgspec.MsgspecError, RecursionError):
            raise NotFast from None
    return text


def trades_copy_text(
    items: list[FastTrade],
    *,
    bot: Bot | BotRef,
    today: str,
    refused: Callable[[dict[str, Any]], list[Any]],
    escape: bool = False,
) -> tuple[str, bool]:
    """The trades as lines of COPY text in TRADE_COLUMNS' order (source defaulted to the bot's
    mode, pnl derived), and whether any entered before ``today`` (YYYY-MM-DD, UTC); NotFast at
    the first trade the fast path does not take. ``refused``: the generic path's overflow
    rules, run on a row of Decimals for the trades whose value or figures may overflow. A
    ``bot`` whose mode is None leaves a source not sent NULL (for the database to default).

    Text is escaped for COPY field by field only when ``escape``; a batch found to need it
    (a backslash, tab, newline or carriage return in its text) is built again with it."""
    bot_id = bot.bot_id
    mode = bot.mode
    escapes = COPY_ESCAPES
    ids: list[str] = []
    quantities: list[str] = []
    usd: list[str] = []
    leverages: list[str] = []
    entry_times: list[str] = []
    exit_times: list[str] = []
    texts: list[str] = []
    lines: list[str] = []
    for item in items:
        if item.bot_id != _ABSENT and item.bot_id != bot_id:
            raise NotFast
        side = item.side
        status = item.status
        source = item.source
        if side not in _SIDES or status not in _STATUSES:
            raise NotFast
        if source is None:
            source = _NULL if mode is None else mode
        elif source not in _SOURCES:
            raise NotFast
        quantity = item.quantity
        entry_price = item.entry_price
        exit_price = item.exit_price
        exit_time = item.exit_time
        fees = item.fees_usd
        sent_pnl = item.pnl_usd
        if status == _CLOSED:
            if exit_price is None or exit_time is None:
                raise NotFast
        elif status == _OPEN and exit_time is not None:
            raise NotFast
        if status == _CLOSED or sent_pnl is not None:
            pnl, pct = _figures(item, side, status, refused)
        else:
            pnl = pct = _NULL
            if _whole_digits(quantity) + _whole_digits(entry_price) > 11:  # may reach 10^12 USD
                _figures(item, side, status, refused)
        ids.append(item.trade_id)
        quantities.append(quantity)
        quantities.append(entry_price)
        usd.append(fees)
        leverages.append(item.leverage)
        entry_times.append(item.entry_time)
        texts.append(item.exit_reason)
        texts.append(item.entry_tag)
        if exit_price is None:
            exit_price = _NULL
        else:
            quantities.append(exit_price)
        if exit_time is None:
            exit_time = _NULL
        else:
            exit_times.append(exit_time)
        if sent_pnl is not None:
            usd.append(sent_pnl)
        strategy = item.strategy_data
        strategy_field = "{}" if strategy is _EMPTY_OBJECT else _strategy_field(strategy)
        head: tuple[str, ...] = (
            item.trade_id,
            item.symbol,
            item.exchange,
            side,
            quantity,
            entry_price,
        )
        tail: tuple[str, ...] = (item.exit_reason, item.entry_tag, strategy_field)
        if escape:
            head = tuple(value.translate(escapes) for value in head)
            tail = tuple(value.translate(escapes) for value in tail)
        lines.append(
            f"{_TAB.join(head)}\t{exit_price}\t{item.entry_time}\t{exit_time}\t{fees}\t{pnl}"
            f"\t{pct}\t{status}\t{source}\t{item.leverage}\t{_TAB.join(tail)}\n"
        )
    _idents_checked(ids, 128)
    _names_checked([item.symbol for item in items], 64)
    _names_checked([item.exchange for item in items], 50)
    _plain_numbers(_QUANTITIES, quantities)
    _plain_numbers(_USD, usd)
    _plain_numbers(_PCT, leverages)
    _times_checked(entry_times + exit_times)
    if max(map(len, texts)) > 255:
        raise NotFast
    text = "".join(lines)
    if not escape and not _plain_copy_text(text, len(lines)):
        return trades_copy_text(items, bot=bot, today=today, refused=refused, escape=True)
    return text, min(entry_times) < today


def _times_checked(times: list[str]) -> None:
    if _TIMES.fullmatch("\t".join(times)) is None:
        raise NotFast
    if min(times) < _EARLIEST or max(times) >= _TOO_LATE:
        raise NotFast


def _plain_copy_text(text: str, rows: int) -> bool:
    """Whether ``text``, ``rows`` lines of 18 fields written without escapes, needs none: no
    value holds a tab, newline, carriage return or backslash. A NULL field (\\N) follows a
    number or a time, which hold neither (as checked)."""
    if text.count("\t") != 17 * rows or text.count("\n") != rows or "\r" in text:
        return False
    return "\\" not in text.replace("\t\\N", "")


def trades_upsert_fast(
    raw: bytes, *, bot: Bot, most: int, refused: Callable[[dict[str, Any]], list[Any]]
) -> UpsertCounts | None:
    """Upsert the batch by the fast path; None (nothing written) when the generic path must
    judge it: the body not decoded here, a trade not taken at once, or the batch refused by
    PostgreSQL's checks."""
    items = trades_decoded(raw, most=most)
    if items is None:
        return None
    today = timezone.now().astimezone(UTC).date().isoformat()
    try:
        text, stale = trades_copy_text(items, bot=bot, today=today, refused=refused)
        return trade_upsert_copied(bot=bot, copy_text=text, sent=len(items), may_make_stale=stale)
    except NotFast:
        return None
    except (DataError, IntegrityError):  # a CHECK constraint or an input function refused it
        return None
