"""JSON bodies parsed with every number read from its text: money never passes through a float."""

import io
import json
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import msgspec
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from rest_framework import status
from rest_framework.exceptions import APIException, ParseError
from rest_framework.parsers import BaseParser


class PayloadTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "payload_too_large"


class DecimalJSONParser(BaseParser):
    """Numbers with a fraction or exponent become Decimal (from their text); integers stay int.

    NaN and Infinity are refused. Bodies over API_MAX_BODY_BYTES are refused with 413 before
    they are read.

    Not a subclass of DRF's JSONParser on purpose: DRF hands a JSONParser ``request.body``,
    which Django refuses beyond DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MiB) with an HTML 400. This
    parser reads the request's stream itself, at most API_MAX_BODY_BYTES + 1 bytes, so the
    API's own limit is the one that holds and Django's stays in force for form posts.
    """

    media_type = "application/json"

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        limit = settings.API_MAX_BODY_BYTES
        request = (parser_context or {}).get("request")
        length = 0
        if request is not None:
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = 0
        if length > limit:
            raise PayloadTooLarge(
                f"The body is {length} bytes; the most this API reads is {limit}."
            )
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise PayloadTooLarge(f"The body is over {limit} bytes, the most this API reads.")
        return parse_json_body(raw)


def parse_json_body(raw: bytes) -> Any:
    """``raw`` as the API reads a body: numbers with a fraction or exponent as Decimal from their
    text, a lone surrogate refused (ParseError or InvalidInput naming the field), a JSON field
    jsonb cannot hold tagged (RefusedObject, RefusedArray).

    msgspec reads nearly every body, in C at about twice json.loads' speed. Whatever it refuses
    or does not decide alike (malformed JSON, NaN, invalid UTF-8, a lone surrogate, an integer
    of more than 4,300 digits, nesting as deep as the C stack allows, a number beyond numeric, a
    NUL escape) is read again by json.loads, whose reading and messages are the API's own."""
    if b"\\u0000" not in raw:
        try:
            return _FAST.decode(raw)
        except (msgspec.MsgspecError, RecursionError, _Unusual):
            pass
    return _parse_slowly(raw)


def _parse_slowly(raw: bytes) -> Any:
    numbers = _Numbers()
    try:
        data = json.loads(raw.decode("utf-8"), parse_float=numbers.read, parse_constant=_refuse)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ParseError(f"The body is not valid JSON: {exc}") from exc
    except RecursionError as exc:  # "[[[[..." thousands deep: the client's fault, not a 500
        raise ParseError("The body's JSON nests too deeply.") from exc
    # UTF-8 cannot carry a lone surrogate; only a \uD800-\uDFFF escape can, so a body
    # without one (nearly every body) is not walked.
    if _SURROGATE_ESCAPE.search(raw) is not None:
        _refuse_lone_surrogates(data)
    # jsonb holds no NUL, which only a \u0000 escape can bring, and no number beyond
    # PostgreSQL's numeric: a JSON field holding either is tagged for its Shape to refuse.
    if numbers.unstorable or b"\\u0000" in raw:
        _tag_unstorable_json(data)
    return data


# PostgreSQL's numeric (what a jsonb number is) holds 131072 digits before the point and 16383
# after: 9.9e131071 and 1e-16383 are stored; 1e131072, 1e-16384 and 1.5e-16383 are refused
# ("value overflows numeric format"), by PostgreSQL 15 and 18 alike.
NUMERIC_MAX_ADJUSTED = 131_071
NUMERIC_MIN_EXPONENT = -16_383
NUMBER_BEYOND_NUMERIC = (
    "holds a number PostgreSQL cannot store: at most 131072 digits before the point and 16383 after"
)
NUL_IN_TEXT = "may not contain NUL characters"


def storable_number(number: Decimal) -> bool:
    """Whether PostgreSQL's numeric holds ``number`` (finite) as it is written."""
    return (
        number.adjusted() <= NUMERIC_MAX_ADJUSTED
        and number.as_tuple().exponent >= NUMERIC_MIN_EXPONENT  # type: ignore[operator]
    )


class _Numbers:
    """json.loads' parse_float: a Decimal from the literal's text, noting whether any is beyond
    PostgreSQL's numeric. Only a literal with an exponent or of more than 16,384 characters can
    be, so nearly every number costs two character searches and a length."""

    __slots__ = ("unstorable",)

    def __init__(self) -> None:
        self.unstorable = False

    def read(self, text: str) -> Decimal:
        number = Decimal(text)
        if ("e" in text or "E" in text or len(text) > 16_384) and not storable_number(number):
            self.unstorable = True
        return number


class _Unusual(Exception):
    """A number msgspec read that json.loads' path must read again (see parse_json_body)."""


def _usual_number(text: str) -> Decimal:
    """msgspec's float_hook: the Decimal of a literal with a fraction or exponent (msgspec
    passes its text), or _Unusual for one beyond PostgreSQL's numeric (_Numbers tags those)."""
    number = Decimal(text)
    if ("e" in text or "E" in text or len(text) > 16_384) and not storable_number(number):
        raise _Unusual
    return number


# msgspec refuses NaN and Infinity, invalid UTF-8 and a lone surrogate escape (as errors that
# send the body to json.loads), joins a surrogate pair, keeps a repeated key's last value (as
# json.loads does) and reads an integer of up to 4,300 digits as int (more: an error).
_FAST = msgspec.json.Decoder(float_hook=_usual_number)


class RefusedObject(dict[str, Any]):
    """A JSON field's object that jsonb cannot hold, as the parser hands it on: the same
    content, with the reason its Shape refuses it for (trading/api/shapes.py)."""

    reason = ""


class RefusedArray(list[Any]):
    """A JSON field's array that jsonb cannot hold; see RefusedObject."""

    reason = ""


def _tag_unstorable_json(data: Any) -> None:
    """Each item's field whose object or array holds a NUL (in a key or a string) or a number
    beyond PostgreSQL's numeric, replaced by a RefusedObject or RefusedArray: its Shape then
    names the field among the batch's other errors, and the Shapes' walk of every field stays
    the cheap one. A field's own text or number is its Shape's to check."""
    items = data if isinstance(data, list) else [data]
    for item in items:
        if not isinstance(item, dict):
            continue
        for field, value in item.items():
            if isinstance(value, dict | list):
                reason = _unstorable_in(value)
                if reason is not None:
                    tagged = (
                        RefusedObject(value) if isinstance(value, dict) else RefusedArray(value)
                    )
                    tagged.reason = reason
                    item[field] = tagged


def _unstorable_in(value: dict[str, Any] | list[Any]) -> str | None:
    """Why jsonb cannot hold ``value``, or None; without recursion (nesting is not limited yet)."""
    stack: list[Any] = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if "\x00" in "".join(node):
                return NUL_IN_TEXT
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, str):
            if "\x00" in node:
                return NUL_IN_TEXT
        elif isinstance(node, Decimal) and not storable_number(node):
            return NUMBER_BEYOND_NUMERIC
    return None


def _refuse(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


# A JSON escape of a UTF-16 surrogate, high or low ("\ud800" .. "\udfff", either case).
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
# What json.loads leaves of a surrogate escape not paired with its other half.
_LONE_SURROGATE = re.compile(r"[\ud800-\udfff]")


def _refuse_lone_surrogates(data: Any) -> None:
    """400 naming the first field holding a lone surrogate (in a value or a key, at any depth).

    Such a string is not Unicode text: PostgreSQL cannot store it, and encoding it to UTF-8
    raises. A proper pair ("\\ud83d\\ude80") was joined into one character by json.loads.
    """
    # Here, not at the top: errors imports DRF's views, whose APIView loads this parser.
    from trading.api.errors import FieldError, InvalidInput

    items = list(enumerate(data)) if isinstance(data, list) else [(None, data)]
    for index, item in items:
        found = _lone_surrogate_in(item, field=None)
        if found is not None:
            field, text = found
            raise InvalidInput(
                [
                    FieldError(
                        _printable(field) if field is not None else "body",
                        f"contains a lone UTF-16 surrogate ({_printable(text)}), which is not text",
                        index,
                    )
                ],
                batch=index is not None,
            )


def _lone_surrogate_in(item: Any, field: str | None) -> tuple[str | None, str] | None:
    """(the item's field that holds it, the surrogate), without recursion: nesting is not
    limited yet here."""
    stack: list[tuple[Any, str | None]] = [(item, field)]
    while stack:
        node, owner = stack.pop()
        if isinstance(node, str):
            match = _LONE_SURROGATE.search(node)
            if match is not None:
                return owner, match.group()
        elif isinstance(node, dict):
            for key, value in node.items():
                name = key if owner is None else owner  # the item's own field names it
                match = _LONE_SURROGATE.search(key)
                if match is not None:
                    return name, match.group()
                stack.append((value, name))
        elif isinstance(node, list):
            stack.extend((value, owner) for value in node)
    return None


def _printable(text: str) -> str:
    """``text`` with each surrogate written as its escape, so the answer can be encoded."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


class ChunkedBodyMiddleware:
    """An /api/ body sent with ``Transfer-Encoding: chunked`` and no Content-Length, read.

    Django reads a body only as far as its Content-Length says, so without one it reads nothing
    and DRF parses an empty body ("trade_id is required"). Where the server decodes the chunks
    and ends the input with the body (WSGI's ``wsgi.input_terminated``, as gunicorn sets it),
    the body is read here, at most API_MAX_BODY_BYTES + 1 bytes, and handed on with its length
    (one byte over is the parser's 413). Where it cannot (Django's development server), a JSON
    411 asks for a Content-Length.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        meta = request.META
        if (
            "chunked" in meta.get("HTTP_TRANSFER_ENCODING", "").lower()
            and not meta.get("CONTENT_LENGTH")
            and request.path_info.startswith("/api/")
        ):
            refusal = _read_chunked(request)
            if refusal is not None:
                return refusal
        return self.get_response(request)


def _read_chunked(request: HttpRequest) -> HttpResponse | None:
    environ = request.META
    if not environ.get("wsgi.input_terminated"):
        return JsonResponse(
            {
                "error": "length_required",
                "detail": "This server cannot read a chunked body; send it with a Content-Length.",
                "errors": [
                    {
                        "field": "body",
                        "reason": "Transfer-Encoding: chunked without a Content-Length",
                    }
                ],
            },
            status=status.HTTP_411_LENGTH_REQUIRED,
        )
    limit = settings.API_MAX_BODY_BYTES
    raw = environ["wsgi.input"].read(limit + 1)
    if len(raw) > limit:
        return JsonResponse(
            {
                "error": "payload_too_large",
                "detail": f"The body is over {limit} bytes, the most this API reads.",
            },
            status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        )
    # What WSGIRequest would have built had the client sent a Content-Length.
    environ["CONTENT_LENGTH"] = str(len(raw))
    request._stream = io.BytesIO(raw)
    return None
