"""JSON bodies parsed with every number read from its text: money never passes through a float."""

import io
import json
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

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
        try:
            data = json.loads(raw.decode("utf-8"), parse_float=Decimal, parse_constant=_refuse)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ParseError(f"The body is not valid JSON: {exc}") from exc
        except RecursionError as exc:  # "[[[[..." thousands deep: the client's fault, not a 500
            raise ParseError("The body's JSON nests too deeply.") from exc
        # UTF-8 cannot carry a lone surrogate; only a \uD800-\uDFFF escape can, so a body
        # without one (nearly every body) is not walked.
        if _SURROGATE_ESCAPE.search(raw) is not None:
            _refuse_lone_surrogates(data)
        return data


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
