"""A long answer that is making progress says so, so that the web server's timeout (a request
older than GUNICORN_TIMEOUT is taken to be stuck and its worker killed) measures the time since
its last progress rather than since it started.

A streamed export of a million rows may take longer than GUNICORN_TIMEOUT to send while sending
the whole time; each of its chunks calls ``beat()``. gunicorn's worker
(``atb_site.gunicorn_worker``) installs the hook; elsewhere (runserver, tests, Celery) it does
nothing.
"""

from collections.abc import Callable

_hook: Callable[[], None] | None = None


def install(hook: Callable[[], None] | None) -> None:
    global _hook
    _hook = hook


def beat() -> None:
    """The current request is alive: its timeout starts again now."""
    if _hook is not None:
        _hook()
