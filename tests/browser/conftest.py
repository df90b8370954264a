"""Chromium for the dashboard tests: Debian's package, driven by Playwright's Python package.

``make test`` installs /usr/bin/chromium when it is missing (Makefile, ``chromium``). Without
it the browser tests are skipped with the reason, except under ``CI=true``, where they fail.
``CHROMIUM`` names another binary.
"""

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from django.conf import settings

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(settings.BASE_DIR) / ".data" / "screenshots"  # .data/ is git-ignored


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true and the browser test cannot run: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser_context_factory(django_db_setup: None) -> Iterator[Callable[[], "BrowserContext"]]:
    """A function making a fresh browser context (its own cookies) on one Chromium process.

    Playwright's sync API keeps an asyncio loop running in this thread while it is started,
    which Django's async-safety check mistakes for async code: the test database is set up
    before it starts (``django_db_setup``), and the tests' own plain ORM calls are allowed
    while it runs. Module-scoped, so nothing after these tests runs beside that loop.
    """
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        _unavailable(f"no Chromium at {CHROMIUM} (`make test` installs Debian's chromium as root)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:  # pragma: no cover - requirements-dev.txt lists it
        _unavailable(f"Playwright's Python package is not installed: {exc}")
    with pytest.MonkeyPatch.context() as patch, sync_playwright() as playwright:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        try:
            # Playwright gives the process a fresh, temporary user-data-dir of its own.
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        except Exception as exc:
            _unavailable(f"Chromium at {CHROMIUM} did not start: {exc}")
        contexts: list[BrowserContext] = []

        def make() -> "BrowserContext":
            context = browser.new_context(viewport={"width": 1400, "height": 900})
            contexts.append(context)
            return context

        yield make
        for context in contexts:
            context.close()
        browser.close()


@pytest.fixture(scope="session")
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS
