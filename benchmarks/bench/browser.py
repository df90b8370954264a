"""The dashboard in Chromium: from navigation to every chart drawn.

The page says when it is done: ``document.documentElement.dataset.ready == "1"`` once every
chart has drawn and every figure is filled from the API. The row is skipped, with the reason,
when Chromium, Playwright or the page is not there.
"""

import shutil
from collections.abc import Callable
from typing import Any

from benchmarks.bench.baseline import measure
from benchmarks.bench.reads import Repeats, ms_op, unavailable
from benchmarks.bench.report import Operation, Target

Log = Callable[[str], None]
CHROMIUM = "/usr/bin/chromium"
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
DASHBOARD_URL = "/dashboard/"
READY = 'document.documentElement.dataset.ready === "1"'
READY_TIMEOUT_MS = 30_000


def dashboard_op() -> Operation:
    return ms_op(
        "dashboard_page",
        "dashboard page, navigation to charts drawn (Chromium)",
        Target("p50", "<", 1000),
        baseline="",
    )


def dashboard_operation(
    *, base_url: str, cookie_name: str, session_key: str, repeats: Repeats, log: Log
) -> Operation:
    op = dashboard_op()
    chromium = shutil.which(CHROMIUM)
    if chromium is None:
        return unavailable(op, f"no Chromium at {CHROMIUM}")
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError:
        return unavailable(op, "Playwright is not installed")
    url = base_url + DASHBOARD_URL
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            try:
                context = browser.new_context()
                context.add_cookies([{"name": cookie_name, "value": session_key, "url": base_url}])
                page = context.new_page()
                response = page.goto(url, wait_until="commit")
                if response is None or response.status != 200:
                    status = None if response is None else response.status
                    return unavailable(op, f"GET {DASHBOARD_URL} answered {status}")

                def visit() -> Any:
                    page.goto(url, wait_until="commit")
                    return page.wait_for_function(READY, timeout=READY_TIMEOUT_MS)

                measure(op, visit, baseline=None, warmup=repeats.warmup, samples=repeats.samples)
            finally:
                browser.close()
    except Error as exc:
        op.seconds.clear()
        return unavailable(op, f"Chromium: {str(exc).splitlines()[0][:200]}")
    log(f"dashboard: {len(op.seconds)} page loads")
    return op
