"""JSON bodies parsed with every number read from its text: money never passes through a float."""

import json
from decimal import Decimal
from typing import Any

from django.conf import settings
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
            return json.loads(raw.decode("utf-8"), parse_float=Decimal, parse_constant=_refuse)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ParseError(f"The body is not valid JSON: {exc}") from exc
        except RecursionError as exc:  # "[[[[..." thousands deep: the client's fault, not a 500
            raise ParseError("The body's JSON nests too deeply.") from exc


def _refuse(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")
