"""gunicorn's threaded worker with the sync worker's timeout: a request that runs longer than
GUNICORN_TIMEOUT gets its worker killed and replaced, wherever it is stuck.

The threaded worker (gthread) keeps a client's connection open between requests (HTTP
keep-alive, GUNICORN_KEEPALIVE seconds): a bot's next request skips the TCP handshake and the
accept, which was a third of a single-trade POST's time over a fresh connection (the sync
worker closes every connection after its answer). But its heartbeat, which the arbiter
watches to kill a stuck worker, comes from the main thread, which only waits on sockets: a
request thread stuck in Python (a loop, a call that never returns) would never be noticed,
and the worker would hold that thread, and any connections queued behind it, for good.

So this worker's heartbeat is the start of the oldest request still running (now when none
is): the arbiter sees it age exactly as a sync worker's does while it serves a request, sends
SIGABRT once it is older than GUNICORN_TIMEOUT ("WORKER TIMEOUT" in the log) and SIGKILL a
second later when the stuck thread keeps the process from exiting, and starts a new worker.
With one thread (the default) a request is served in the main thread itself, as by the sync
worker, whose heartbeat then simply stops while it runs.
A request waiting on PostgreSQL is answered 503 at DATABASE_REQUEST_DEADLINE before that
(atb_site/db/deadline.py); this is the backstop for everything else. A streamed answer that
makes progress (an export's chunks: ``atb_site.progress.beat``) counts as started again at
each chunk, so only a stream that stops moving is killed.
"""

import os
import threading
import time
from concurrent.futures import Future
from typing import Any

from gunicorn.workers.gthread import ThreadWorker  # type: ignore[import-untyped]

from atb_site import progress


class WatchedThreadWorker(ThreadWorker):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._request_started: dict[int, float] = {}  # by request thread: time.monotonic()
        progress.install(self.request_progressed)

    def enqueue_req(self, conn: Any) -> None:
        """With one thread (GUNICORN_THREADS=1, the default), a request is served in the main
        thread, as the sync worker serves it: gthread's hand-off to a pool thread and back costs
        two thread wake-ups a request, which a busy machine makes slow. The main thread does
        not beat meanwhile, so the arbiter's timeout applies as to a sync worker."""
        if self.cfg.threads > 1:
            super().enqueue_req(conn)
            return
        done: Future[Any] = Future()
        try:
            done.set_result(self.handle(conn))
        except Exception as exc:  # as a pool thread's future would hold it
            done.set_exception(exc)
        self.finish_request(conn, done)

    def handle_request(self, req: Any, conn: Any) -> Any:
        thread = threading.get_ident()
        self._request_started[thread] = time.monotonic()
        try:
            return super().handle_request(req, conn)
        finally:
            del self._request_started[thread]

    def request_progressed(self) -> None:
        """The calling request thread's answer moved on: its age starts again (and, served in
        the main thread, which does not beat while it serves, the heartbeat is written now)."""
        thread = threading.get_ident()
        if thread not in self._request_started:
            return
        self._request_started[thread] = time.monotonic()
        if self.cfg.threads <= 1:
            self.notify()

    def notify(self) -> None:
        """The heartbeat: when the oldest running request started, else now (gunicorn's
        WorkerTmp keeps it as the file's time.monotonic() mtime, which the arbiter reads)."""
        started = list(self._request_started.values())  # a copy: request threads change it
        beat = min(started, default=time.monotonic())
        os.utime(self.tmp.fileno(), (beat, beat))
