"""market-data/: candles in (bots, up to 50,000 a request) and out (bots and staff);
prices/: the latest candle of every market, from Redis.

Candles are the bulkiest thing bots send, so they have two fast paths. A batch without an
Idempotency-Key goes first from its bytes straight to COPY text (trading.api.market_fast:
msgspec structs, prices as sent, the table's CHECK constraints judging their order). A batch
that path leaves alone is parsed by the API's parser and cleaned here by one tight loop that
accepts the well-formed candle without building a dict per field. Anything that loop does not
accept at once goes through the generic ``Shape`` (the same rules, spelled field by field), so a
bad candle gets the same errors, in the same format, as every other endpoint.
"""

import base64
import binascii
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from django.http import HttpResponse
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from trading.api.common import bot_of_request, fast_path_body, refuse_foreign_bot_ids
from trading.api.errors import FieldError, InvalidInput
from trading.api.idempotency import idempotent
from trading.api.market_fast import (
    FUTURE_SKEW,
    PERIOD_MINUTES,
    STREAM_CANDLES,
    candles_insert_fast,
)
from trading.api.permissions import IsBot, IsBotOrStaff
from trading.api.replica import StaffReadsFromReplica
from trading.api.shapes import (
    F,
    Shape,
    choice,
    ident,
    is_identifier,
    moment,
    nests_within_limit,
    quantity,
)
from trading.api.trades import IDEMPOTENCY_PARAMETER
from trading.models import Timeframe
from trading.selectors.candles import candles_range
from trading.selectors.market import prices_latest
from trading.services.candles_derived import DERIVED_TIMEFRAMES, derived_candles_catch_up
from trading.services.ingest import jsonb_text
from trading.services.market import TIMEFRAME_SECONDS, CandleRow, market_data_insert_stream

MAX_CANDLES = 50_000
DEFAULT_LIMIT = 1_000
MAX_LIMIT = 10_000

_PERIOD_NAMES = {
    "1m": "1 minute",
    "5m": "5 minutes",
    "15m": "15 minutes",
    "1h": "1 hour",
    "4h": "4 hours",
    "1d": "1 day",
}
_PERIOD_MINUTES = PERIOD_MINUTES


# --- Validation -------------------------------------------------------------------------------


def indicators_json(value: dict[str, Any]) -> str:
    """The indicators object as JSON text for the jsonb column."""
    return jsonb_text(value) if value else "{}"


def _candle_rules(row: dict[str, Any]) -> list[tuple[str | None, str]]:
    errors: list[tuple[str | None, str]] = []
    open_, high, low, close = row["open"], row["high"], row["low"], row["close"]
    if high < open_ or high < close:
        errors.append(("high", "must be at least open and close"))
    if low > open_ or low > close:
        errors.append(("low", "must be at most open and close"))
    ts: datetime = row["ts"]
    timeframe: str = row["timeframe"]
    if ts.second or ts.microsecond or (ts.hour * 60 + ts.minute) % _PERIOD_MINUTES[timeframe]:
        errors.append(
            (
                "ts",
                f"must be a {timeframe} candle's open time: a whole multiple of "
                f"{_PERIOD_NAMES[timeframe]} from 00:00 UTC",
            )
        )
    if ts > timezone.now() + FUTURE_SKEW:
        errors.append(("ts", "must not be in the future"))
    return errors


CANDLE_SHAPE = Shape(
    name="Candle",
    fields={
        "symbol": ident(64, help="BASE/QUOTE, e.g. BTC/USDT; derivatives keep :SETTLE."),
        "exchange": ident(50),
        "timeframe": choice(Timeframe.values),
        "ts": moment(
            help="The candle's open time, with a UTC offset; a whole multiple of the timeframe "
            "from 00:00 UTC (a 1m candle has seconds 0, a 1d candle is at midnight UTC)."
        ),
        "open": quantity(gt=Decimal(0)),
        "high": quantity(gt=Decimal(0), help="At least open and close."),
        "low": quantity(gt=Decimal(0), help="At most open and close."),
        "close": quantity(gt=Decimal(0)),
        "volume": quantity(ge=Decimal(0), default=Decimal(0)),
        "indicators": F("object", required=False, default=dict, help="Pre-computed values."),
    },
    rules=[_candle_rules],
    server_owned=("id",),
)
CandleInputSerializer = CANDLE_SHAPE.serializer()

# Open, high, low, close and volume as the fast path takes them, joined by ";".
_PLAIN_PRICES = re.compile(";".join(["[0-9.]{1,11}"] * 5))
_NUMBER_TYPES = frozenset((str, Decimal, int))
_FAST_MISSES = (KeyError, TypeError, ValueError, ArithmeticError)
TS_OUT_OF_RANGE = "must be between 1970 and 9998"  # as the Shape words it


def _candle_fast(item: Any, latest: datetime, names: set[str]) -> CandleRow | None:
    """The candle as a row when it is plainly well-formed, else None: the Shape then judges it.

    Whatever this accepts the Shape accepts too, with the same values; it passes over more:
    prices written with an exponent, a sign or more than 11 characters, times with another
    offset than UTC. ``names`` holds the symbols and exchanges already found well-formed in
    this batch.

    Prices are compared as floats, which is exact here: a plain decimal of at most 11 digits
    converts to a distinct float, and conversion keeps order.
    """
    if type(item) is not dict:
        return None
    size = len(item)
    # Eight required fields, volume and indicators optional: no room for unknown fields.
    if size != 9 and size != 8 + ("volume" in item) + ("indicators" in item):
        return None
    symbol = item["symbol"]
    exchange = item["exchange"]
    if symbol not in names and not _plain_name(symbol, 64, names):
        return None
    if exchange not in names and not _plain_name(exchange, 50, names):
        return None
    timeframe = item["timeframe"]
    minutes = _PERIOD_MINUTES.get(timeframe) if type(timeframe) is str else None
    ts = datetime.fromisoformat(item["ts"])  # TypeError for anything but a string
    if minutes is None or ts.tzinfo is not UTC:
        return None
    if ts.second or ts.microsecond or (ts.hour * 60 + ts.minute) % minutes:
        return None
    if ts > latest or ts.year < 1970:
        return None
    open_ = item["open"]
    high = item["high"]
    low = item["low"]
    close = item["close"]
    volume = item.get("volume", "0")
    if (
        type(open_) is not str
        or type(high) is not str
        or type(low) is not str
        or type(close) is not str
        or type(volume) is not str
    ):
        if (
            type(open_) not in _NUMBER_TYPES
            or type(high) not in _NUMBER_TYPES
            or type(low) not in _NUMBER_TYPES
            or type(close) not in _NUMBER_TYPES
            or type(volume) not in _NUMBER_TYPES
        ):
            return None
        open_, high, low, close, volume = str(open_), str(high), str(low), str(close), str(volume)
    # As text (a Decimal as str() writes it): digits and points only, so no sign, exponent,
    # space or NaN, and at most 11 characters, so within 18 digits before the point and 10
    # after. float() refuses "1.2.3" and ".".
    if _PLAIN_PRICES.fullmatch(f"{open_};{high};{low};{close};{volume}") is None:
        return None
    o, h, lo, c = float(open_), float(high), float(low), float(close)
    float(volume)
    if not (lo > 0.0 and h >= o and h >= c and lo <= o and lo <= c):
        return None
    indicators = item.get("indicators")
    if indicators is None:
        if size != 8 + ("volume" in item):  # an explicit null is the Shape's to refuse
            return None
        indicators_text = "{}"
    elif type(indicators) is dict:
        if not nests_within_limit(indicators):
            return None
        indicators_text = indicators_json(indicators)
    else:
        return None
    return (symbol, exchange, timeframe, ts, open_, high, low, close, volume, indicators_text)


def _plain_name(value: Any, max_length: int, names: set[str]) -> bool:
    """Whether ``value`` is a symbol or exchange the fast path takes (noted in ``names``, so
    that the batch's other candles skip the check): text of 1 to ``max_length`` characters,
    not only spaces, without NUL, and an identifier (no invisible characters, no edge spaces)."""
    if type(value) is not str or not 0 < len(value) <= max_length or value.isspace():
        return False
    if "\x00" in value or not is_identifier(value):
        return False
    names.add(value)
    return True


def candles_clean(
    items: list[Any], *, now: datetime, chunk: int = STREAM_CANDLES
) -> Iterator[list[CandleRow]]:
    """Every candle cleaned, ``chunk`` at a time, so that the first are written while the rest
    are cleaned (market_data_insert_stream). After a bad candle no chunk comes any more: once
    all are checked, InvalidInput names every bad candle by its index (and the writer, which
    it stops, has written nothing)."""
    latest = now + FUTURE_SKEW
    names: set[str] = set()
    errors: list[FieldError] = []
    fast = _candle_fast
    rows: list[CandleRow] = []
    for index, item in enumerate(items):
        try:
            row = fast(item, latest, names)
        except _FAST_MISSES:
            row = None
        if row is None:
            row = _candle_checked(item, index, errors)
            if row is None:
                continue
        rows.append(row)
        if len(rows) == chunk:
            if not errors:
                yield rows
            rows = []
    if errors:
        raise InvalidInput(errors, batch=True)
    if rows:
        yield rows


def _candle_checked(item: Any, index: int, errors: list[FieldError]) -> CandleRow | None:
    """The candle through the generic Shape; None (its errors noted) when it is bad."""
    try:
        cleaned, item_errors = CANDLE_SHAPE.clean(item, index)
    except OverflowError:  # an offset that takes the time out of Python's years
        cleaned, item_errors = {}, [FieldError("ts", "must be between 1970 and 9998", index)]
    if item_errors:
        errors.extend(item_errors)
        return None
    return (
        cleaned["symbol"],
        cleaned["exchange"],
        cleaned["timeframe"],
        cleaned["ts"],
        str(cleaned["open"]),
        str(cleaned["high"]),
        str(cleaned["low"]),
        str(cleaned["close"]),
        str(cleaned["volume"]),
        indicators_json(cleaned["indicators"]),
    )


def _candle_items(request: Request) -> list[Any]:
    data = request.data
    if not isinstance(data, list):
        raise InvalidInput([FieldError("body", "must be a JSON array of candles")])
    if not data:
        raise InvalidInput([FieldError("body", "the batch is empty")])
    if len(data) > MAX_CANDLES:
        raise InvalidInput(
            [FieldError("body", f"a batch holds at most {MAX_CANDLES} candles, not {len(data)}")]
        )
    return data


# --- Query parameters -------------------------------------------------------------------------


def _moment_param(name: str, value: str, errors: list[FieldError]) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        errors.append(FieldError(name, f"{value!r} is not an ISO-8601 date-time"))
        return None
    if parsed.tzinfo is None:
        errors.append(FieldError(name, "must carry a UTC offset (e.g. 'Z' or '+00:00')"))
        return None
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        errors.append(FieldError(name, "must be between the years 1 and 9999 in UTC"))
        return None


def _encode_cursor(ts: datetime) -> str:
    return base64.urlsafe_b64encode(ts.isoformat().encode()).decode().rstrip("=")


def _decode_cursor(value: str) -> datetime:
    text = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
    moment_ = datetime.fromisoformat(text)
    if moment_.tzinfo is None:
        raise ValueError(text)
    return moment_


def _text_query(request: Request, name: str, errors: list[FieldError]) -> str | None:
    """The parameter ("" when absent), or None when it is refused (the error is noted)."""
    value = request.query_params.get(name, "")
    if "\x00" in value:
        errors.append(FieldError(name, "may not contain NUL characters"))
        return None
    return value


def _range_params(request: Request) -> dict[str, Any]:
    query = request.query_params
    errors: list[FieldError] = []
    found: dict[str, Any] = {}
    for name in ("symbol", "exchange"):
        value = _text_query(request, name, errors)
        if value == "":
            errors.append(FieldError(name, "is required"))
        found[name] = value
    timeframe = query.get("timeframe", "")
    if timeframe not in TIMEFRAME_SECONDS:
        errors.append(
            FieldError(
                "timeframe",
                "is required"
                if not timeframe
                else f"must be one of: {', '.join(Timeframe.values)}",
            )
        )
    found["timeframe"] = timeframe
    for name in ("start", "end"):
        moment_text = query.get(name)
        found[name] = _moment_param(name, moment_text, errors) if moment_text else None
    try:
        limit = int(query.get("limit", DEFAULT_LIMIT))
    except ValueError:
        limit = 0
    if not 1 <= limit <= MAX_LIMIT:
        errors.append(FieldError("limit", f"must be a whole number from 1 to {MAX_LIMIT}"))
    found["limit"] = limit
    cursor = query.get("cursor")
    if cursor:
        try:
            # PostgreSQL keeps microseconds: ts > after is ts >= after + 1 µs.
            following = _decode_cursor(cursor) + timedelta(microseconds=1)
        except (ValueError, OverflowError, binascii.Error):
            errors.append(FieldError("cursor", "is not a cursor this API gave out"))
        else:
            found["start"] = max(found["start"] or following, following)
    if found["start"] and found["end"] and found["end"] <= found["start"] and not cursor:
        errors.append(FieldError("end", "must be later than start"))
    if errors:
        raise InvalidInput(errors)
    return found


# --- Views ------------------------------------------------------------------------------------


def _candle_output_fields(*, indicators: bool) -> dict[str, serializers.Field]:
    price = {
        name: serializers.DecimalField(max_digits=28, decimal_places=10)
        for name in ("open", "high", "low", "close", "volume")
    }
    fields: dict[str, serializers.Field] = {
        "symbol": serializers.CharField(),
        "exchange": serializers.CharField(),
        "timeframe": serializers.ChoiceField(choices=Timeframe.values),
        "ts": serializers.DateTimeField(),
        **price,
    }
    if indicators:
        fields["indicators"] = serializers.DictField()
    return fields


CandlePageOutputSerializer = inline_serializer(
    "CandlePageOutput",
    fields={
        "next": serializers.URLField(allow_null=True),
        "results": inline_serializer(
            "CandleOutput", fields=_candle_output_fields(indicators=True), many=True
        ),
    },
)
InsertCountsOutputSerializer = inline_serializer(
    "InsertCountsOutput",
    fields={"inserted": serializers.IntegerField(), "duplicates": serializers.IntegerField()},
)
PriceListOutputSerializer = inline_serializer(
    "PriceListOutput",
    fields={
        "results": inline_serializer(
            "PriceOutput", fields=_candle_output_fields(indicators=False), many=True
        )
    },
)


def _text_param(name: str, description: str, required: bool = False) -> OpenApiParameter:
    return OpenApiParameter(name, str, OpenApiParameter.QUERY, required, description)


class MarketDataView(StaffReadsFromReplica):
    def get_permissions(self) -> Any:
        return [IsBot()] if self.request.method == "POST" else [IsBotOrStaff()]

    @extend_schema(
        operation_id="market_data_range",
        summary="One market's candles in time order",
        description=(
            "Candles with start <= ts < end, oldest first, at most `limit` a page. `next` is the "
            "URL of the following page (the same query with a cursor), null on the last page.\n\n"
            "Timeframes above 1m are served bucket by bucket: a candle a bot sent for that "
            "timeframe is served as sent; every other bucket holding 1m candles is served as "
            "derived from them (UTC buckets, 4h and 1d aligned to 00:00 UTC: the first "
            "minute's open, the last's close, the highest high, the lowest low, the volumes' "
            "sum, exactly; `indicators` is `{}`). A bucket with minutes missing is derived from "
            "those stored; minutes sent late are in it at the next read."
        ),
        parameters=[
            _text_param("symbol", "e.g. BTC/USDT", required=True),
            _text_param("exchange", "e.g. binance", required=True),
            OpenApiParameter("timeframe", str, OpenApiParameter.QUERY, True, enum=Timeframe.values),
            OpenApiParameter(
                "start", datetime, OpenApiParameter.QUERY, False, "Inclusive; ISO-8601 with offset."
            ),
            OpenApiParameter(
                "end", datetime, OpenApiParameter.QUERY, False, "Exclusive; ISO-8601 with offset."
            ),
            OpenApiParameter(
                "limit",
                int,
                OpenApiParameter.QUERY,
                False,
                f"Candles per page, 1 to {MAX_LIMIT}; default {DEFAULT_LIMIT}.",
            ),
            _text_param("cursor", "From a previous page's `next`."),
        ],
        responses={200: CandlePageOutputSerializer},
    )
    def get(self, request: Request) -> HttpResponse:
        params = _range_params(request)
        symbol, exchange = params["symbol"], params["exchange"]
        if params["timeframe"] in DERIVED_TIMEFRAMES:  # minutes not yet derived, first
            derived_candles_catch_up(symbol=symbol, exchange=exchange)
        page = candles_range(
            symbol=symbol,
            exchange=exchange,
            timeframe=params["timeframe"],
            start=params["start"],
            end=params["end"],
            limit=params["limit"],
        )
        next_url = None
        if page.more and page.last_ts is not None:
            query = {name: value for name, value in request.query_params.items()}
            query["cursor"] = _encode_cursor(page.last_ts)
            next_url = request.build_absolute_uri(f"{request.path}?{urlencode(query)}")
        # The candles arrive as JSON from PostgreSQL; they are not parsed to be written again.
        body = f'{{"next": {json.dumps(next_url)}, "results": {page.candles_json}}}'
        return HttpResponse(body, content_type="application/json")

    @extend_schema(
        operation_id="market_data_insert",
        summary="Send candles (a JSON array, up to 50,000); stored candles are skipped",
        description=(
            "The table is shared by all bots: a candle already stored, by any bot, and a repeat "
            "of a candle earlier in the same batch are skipped and counted as duplicates (the "
            "first one stays). A batch with any bad candle writes nothing."
        ),
        request={"application/json": CandleInputSerializer(many=True)},
        parameters=[IDEMPOTENCY_PARAMETER],
        responses={200: InsertCountsOutputSerializer},
    )
    def post(self, request: Request) -> Response:
        bot = bot_of_request(request)
        raw = fast_path_body(request)

        def write() -> Response:
            if raw is not None:
                counts = candles_insert_fast(raw, now=timezone.now(), most=MAX_CANDLES)
                if counts is not None:
                    return Response(counts.as_json())
            items = _candle_items(request)
            refuse_foreign_bot_ids(items, bot)  # candles have no bot_id; another bot's is a 403
            chunks = candles_clean(items, now=timezone.now())
            counts = market_data_insert_stream(chunks=chunks)
            return Response(counts.as_json())

        return idempotent(request, write)


class PriceListView(APIView):
    permission_classes = [IsBotOrStaff]

    @extend_schema(
        operation_id="prices_latest",
        summary="The latest candle of every market (from Redis)",
        parameters=[
            _text_param("symbol", "Only this symbol."),
            _text_param("exchange", "Only this exchange."),
            OpenApiParameter(
                "timeframe", str, OpenApiParameter.QUERY, False, enum=Timeframe.values
            ),
        ],
        responses={200: PriceListOutputSerializer},
    )
    def get(self, request: Request) -> Response:
        errors: list[FieldError] = []
        symbol = _text_query(request, "symbol", errors) or None
        exchange = _text_query(request, "exchange", errors) or None
        timeframe = request.query_params.get("timeframe") or None
        if timeframe is not None and timeframe not in TIMEFRAME_SECONDS:
            errors.append(FieldError("timeframe", f"must be one of: {', '.join(Timeframe.values)}"))
        if errors:
            raise InvalidInput(errors)
        prices = prices_latest(symbol=symbol, exchange=exchange, timeframe=timeframe)
        return Response({"results": prices})
