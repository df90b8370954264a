"""The site's WSGI application with one more URL, for tests/ops/test_stuck_request.py: a request
to ``/stuck-in-python`` busies its thread in pure Python (no I/O, no query, so no database
deadline applies) until ``STUCK_SECONDS`` pass, long after any worker timeout of the test."""

import time
from collections.abc import Callable, Iterable
from typing import Any

from atb_site.wsgi import application as site

STUCK_PATH = "/stuck-in-python"
STUCK_SECONDS = 60.0  # bounded: a worker never killed still stops burning a core in the end


def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    if environ["PATH_INFO"] == STUCK_PATH:
        until = time.monotonic() + STUCK_SECONDS
        while time.monotonic() < until:
            pass
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"never stuck after all"]
    return site(environ, start_response)
