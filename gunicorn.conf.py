"""gunicorn settings from the environment (gunicorn reads this file from the working directory).

| variable | default | setting |
|---|---|---|
| PORT | 8000 | listen on 0.0.0.0:PORT |
| WEB_CONCURRENCY | 2 x CPUs + 1, at most 4 | worker processes |
| GUNICORN_WORKER | threaded | threaded (keep-alive), or sync (one thread only) |
| GUNICORN_THREADS | 1 | request threads per worker (more than 1: threaded) |
| GUNICORN_TIMEOUT | 30 | seconds a request may take before its worker is restarted |
| DATABASE_REQUEST_DEADLINE | GUNICORN_TIMEOUT / 2 | must be shorter than GUNICORN_TIMEOUT |
| GUNICORN_GRACEFUL_TIMEOUT | 30 | seconds workers get to finish requests on a restart |
| GUNICORN_KEEPALIVE | 5 | seconds an idle keep-alive connection is kept (0: close each) |
| GUNICORN_MAX_REQUESTS | 10000 | a worker is replaced after this many requests (0: never) |
| GUNICORN_MAX_REQUESTS_JITTER | 5000 | up to this many more, so workers are not replaced together |
| GUNICORN_PRELOAD | true | load the app once in the master; a new worker is a fork of it |
| GUNICORN_ACCESS_LOG_FORMAT | see below | gunicorn's access-log format (its %(x)s atoms) |
| LOG_FORMAT, LOG_LEVEL, DJANGO_DEBUG | as Django | error and access logs like Django's |

The worker (GUNICORN_WORKER=threaded) is gunicorn's threaded worker (gthread), watched
(atb_site/gunicorn_worker.py): it keeps a client's connection open between requests, for a bot's
HTTP client (requests.Session, aiohttp) to reuse, which saves a single-trade POST the TCP
handshake and accept the sync worker's new connection per request costs, and about a fifth of
its CPU (docs/BENCHMARKS.md). With one thread it serves the request in its main thread, as the
sync worker does; with more, its heartbeat is the start of the oldest running request. Either
way a request stuck longer than GUNICORN_TIMEOUT still gets its worker killed and replaced, as
a sync worker would be. A kept connection stays with its worker, so a request can wait behind a
long one there while another worker idles (the sync worker takes each request from the shared
queue): two fleet runs of 100 bots each way on a busy machine showed no difference that its
noise did not swamp (docs/BENCHMARKS.md, "Keep-alive"). GUNICORN_WORKER=sync is the old worker.

Preloading makes replacing a worker (every GUNICORN_MAX_REQUESTS requests) a fork instead of
loading Django again: about 0.8 s of CPU that, on a small machine, the other worker's requests
waited for (the slowest single-trade POST went from about 700 ms to about 240 ms). Nothing
connects at import (PostgreSQL and Redis are reached on first use, in each worker), and the
monitoring buffers start afresh in a forked child. A code change needs a restart, not a HUP;
deploys restart anyway.

A replaced worker leaves a gap of about a second before its replacement takes requests (0.74
to 0.96 s measured with one worker; gunicorn's master loop wakes once a second). At 1,000
requests and a jitter of 100, a fleet of 100 bots (60 requests a second over 4 workers)
replaced every worker within seconds of the others about once a minute, and p99 in that minute
went from 0.1-0.9 s to 1-7 s on a busy machine. Hence 10,000 with a
jitter of half as much: a worker lives several minutes at that load, and workers are replaced
minutes apart, so one gap is covered by the others.

The worker cap keeps connections in check: each thread of each worker holds a PostgreSQL
connection, and a platform's container may report the host's CPUs rather than its share.
"""

import os
import sys
from pathlib import Path

# The project, importable however gunicorn was started (--chdir, another working directory).
sys.path.insert(0, str(Path(__file__).resolve().parent))

import environ

from atb_site.db.session import set_process_kind
from atb_site.logs import log_format, logging_config
from atb_site.startup import refuse, settings_or_exit

settings_or_exit("gunicorn")  # a missing DJANGO_SECRET_KEY or DATABASE_URL: one line, exit 1

# Before the app loads: this process's connections get the web's PostgreSQL timeouts and each
# request its deadline for waiting on PostgreSQL (atb_site/db/session.py, atb_site/db/deadline.py).
set_process_kind("web")


def _env_int(name: str, default: int, *, minimum: int = 0) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, not {raw!r}") from None
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, not {value}")
    return value


def default_workers() -> int:
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return min(2 * (cpus or 1) + 1, 4)


def check_request_deadline(raw: str, timeout: int) -> None:
    """A request's deadline for PostgreSQL (as settings read DATABASE_REQUEST_DEADLINE) must
    pass before gunicorn kills the worker, or a frozen database still costs the worker."""
    if not raw.strip():
        return
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"DATABASE_REQUEST_DEADLINE must be a number, not {raw!r}") from None
    if value >= timeout:
        raise ValueError(
            f"DATABASE_REQUEST_DEADLINE ({value:g} s) must be shorter than GUNICORN_TIMEOUT "
            f"({timeout} s), so that a request answers 503 before its worker is killed"
        )


WORKER_CLASSES = {"sync": "sync", "threaded": "atb_site.gunicorn_worker.WatchedThreadWorker"}


def worker_class_for(raw: str, threads: int) -> str:
    """GUNICORN_WORKER's class (threaded unless told): never gunicorn's own gthread, whose timeout
    misses a stuck request thread."""
    name = raw.strip().lower() or "threaded"
    if name not in WORKER_CLASSES:
        raise ValueError(f"GUNICORN_WORKER must be sync or threaded, not {raw!r}")
    if name == "sync" and threads > 1:
        raise ValueError(
            f"GUNICORN_WORKER=sync serves one request at a time: GUNICORN_THREADS ({threads}) "
            "wants threaded"
        )
    return WORKER_CLASSES[name]


# A bad value stops start-up with one line naming the variable, as the settings' do.
try:
    bind = f"0.0.0.0:{_env_int('PORT', 8000, minimum=1)}"
    workers = _env_int("WEB_CONCURRENCY", default_workers(), minimum=1)
    threads = _env_int("GUNICORN_THREADS", 1, minimum=1)
    worker_class = worker_class_for(os.environ.get("GUNICORN_WORKER", ""), threads)
    timeout = _env_int("GUNICORN_TIMEOUT", 30, minimum=1)
    graceful_timeout = _env_int("GUNICORN_GRACEFUL_TIMEOUT", 30)
    check_request_deadline(os.environ.get("DATABASE_REQUEST_DEADLINE", ""), timeout)
    keepalive = _env_int("GUNICORN_KEEPALIVE", 5)
    max_requests = _env_int("GUNICORN_MAX_REQUESTS", 10_000)
    max_requests_jitter = _env_int("GUNICORN_MAX_REQUESTS_JITTER", 5_000)
    preload_app = environ.Env().bool("GUNICORN_PRELOAD", default=True)
    logconfig_dict = logging_config(
        fmt=log_format(
            debug=environ.Env().bool("DJANGO_DEBUG", default=False),  # read as settings read it
            requested=os.environ.get("LOG_FORMAT", ""),
        ),
        level=os.environ.get("LOG_LEVEL", "INFO"),
    )
except ValueError as exc:
    refuse("gunicorn", str(exc))

forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "*")  # behind the platform's proxy
# No control socket (gunicornc): the platform starts and stops the server, and two servers on one
# machine would share its default path.
control_socket_disable = True

accesslog = "-"
errorlog = "-"
# In JSON lines the request's fields (method, path, status, bytes, duration_ms, remote_addr,
# user_agent, request_id) are keys of their own; the message stays readable.
access_log_format = os.environ.get(
    "GUNICORN_ACCESS_LOG_FORMAT", '%(h)s "%(r)s" %(s)s %(b)s %(M)sms "%(a)s"'
)
loglevel = os.environ.get("LOG_LEVEL", "INFO").lower()
