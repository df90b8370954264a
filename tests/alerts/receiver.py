"""A real webhook receiver on 127.0.0.1 for the alert tests: it verifies the signature as
docs/DESIGN.md tells receivers to, deduplicates by alert id, and fails, hangs or rate-limits on
command."""

import hashlib
import hmac
import json
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Receiver:
    def __init__(self, secret: str | None) -> None:
        self.secret = secret  # None: a Slack/Discord/Telegram stand-in, no signature
        self.plain: list[tuple[str, dict[str, Any]]] = []  # (path, body) of unsigned messages
        self.lock = threading.Lock()
        self.mode = "ok"  # ok | fail | hang
        self.hang_seconds = 0.0
        self.rate_per_second: int | None = None
        self.retry_after = "1"
        self.arrivals: list[dict[str, Any]] = []  # every signed message that arrived
        self.first_seen: dict[int, float] = {}  # alert id -> time.time() of its first arrival
        self.bad_signatures = 0
        self.statuses: Counter[int] = Counter()
        self._accepted_at: list[float] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: Any) -> None:
                pass

            def do_POST(self) -> None:
                receiver.handle(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def verify(self, headers: Any, body: bytes) -> bool:
        assert self.secret is not None
        timestamp = headers.get("X-Alert-Timestamp", "")
        if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > 300:
            return False
        mac = hmac.new(self.secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
        return hmac.compare_digest("sha256=" + mac.hexdigest(), headers.get("X-Signature", ""))

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        body = request.rfile.read(int(request.headers.get("Content-Length", "0")))
        if self.secret is None:
            with self.lock:
                self.plain.append((request.path, json.loads(body)))
                return self._answer(request, 200)
        with self.lock:
            if not self.verify(request.headers, body):
                self.bad_signatures += 1
                return self._answer(request, 401)
            if self.mode == "fail":
                return self._answer(request, 500)
            if self.rate_per_second is not None:
                now = time.monotonic()
                self._accepted_at = [t for t in self._accepted_at if t > now - 1.0]
                if len(self._accepted_at) >= self.rate_per_second:
                    return self._answer(request, 429, {"Retry-After": self.retry_after})
                self._accepted_at.append(now)
            document = json.loads(body)
            assert document["id"] == int(request.headers["X-Alert-Id"])
            self.arrivals.append(document)
            self.first_seen.setdefault(document["id"], time.time())
            hang = self.hang_seconds if self.mode == "hang" else 0.0
        if hang:
            time.sleep(hang)
        with self.lock:
            self._answer(request, 200)

    def _answer(self, request: BaseHTTPRequestHandler, code: int, headers: Any = None) -> None:
        self.statuses[code] += 1
        try:
            request.send_response(code)
            for name, value in (headers or {}).items():
                request.send_header(name, value)
            request.send_header("Content-Length", "0")
            request.end_headers()
        except OSError:  # the sender gave up (timed out, or was killed)
            pass

    def ids(self) -> list[int]:
        with self.lock:
            return [a["id"] for a in self.arrivals]

    def unique(self) -> list[int]:
        """What a receiver deduplicating by alert id keeps, in arrival order."""
        return list(dict.fromkeys(self.ids()))

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
