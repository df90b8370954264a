"""The dashboard in Chromium: from navigation to every chart drawn, for the portfolio page and
for the page of the data set's busiest bot.

The page says when it is done: ``document.documentElement.dataset.ready == "1"`` once every
chart has drawn and every figure is filled from the API. A row is skipped, with the reason,
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
PORTFOLIO_URL = "/dashboard/"
# Polled from the navigation's commit on, when the new document may have no root element yet:
# a plain `document.documentElement.dataset` threw there ("Cannot read properties of null").
READY = 'document.documentElement?.dataset.ready === "1"'
READY_TIMEOUT_MS = 30_000
# Issue 4: "the dashboard page from navigation to charts drawn under 1 s in Chromium".
PAGE_TARGET = Target("p50", "<", 1000)


def dashboard_ops() -> list[Operation]:
    """The portfolio page's row and the bot page's row, not measured yet."""
    return [
        ms_op(
            "dashboard_page",
            "dashboard: portfolio page, navigation to charts drawn (Chromium)",
            PAGE_TARGET,
            baseline="",
        ),
        ms_op(
            "dashboard_bot_page",
            "dashboard: busiest bot's page, navigation to charts drawn (Chromium)",
            PAGE_TARGET,
            baseline="",
        ),
    ]


def bot_page_url(bot_id: str) -> str:
    return f"/dashboard/bots/{bot_id}/"


def dashboard_operations(
    *,
    base_url: str,
    cookie_name: str,
    session_key: str,
    bot_id: str,
    repeats: Repeats,
    log: Log,
) -> list[Operation]:
    """Each page loaded in one Chromium with a staff session, one after the other."""
    ops = dashboard_ops()
    paths = [PORTFOLIO_URL, bot_page_url(bot_id)]
    chromium = shutil.which(CHROMIUM)
    if chromium is None:
        return [unavailable(op, f"no Chromium at {CHROMIUM}") for op in ops]
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError:
        return [unavailable(op, "Playwright is not installed") for op in ops]
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            try:
                context = browser.new_context()
                context.add_cookies([{"name": cookie_name, "value": session_key, "url": base_url}])
                page = context.new_page()
                for op, path in zip(ops, paths, strict=True):
                    url = base_url + path
                    response = page.goto(url, wait_until="commit")
                    if response is None or response.status != 200:
                        status = None if response is None else response.status
                        unavailable(op, f"GET {path} answered {status}")
                        continue

                    def visit(url: str = url) -> Any:
                        page.goto(url, wait_until="commit")
                        return page.wait_for_function(READY, timeout=READY_TIMEOUT_MS)

                    measure(
                        op, visit, baseline=None, warmup=repeats.warmup, samples=repeats.samples
                    )
                    log(f"{op.name}: {len(op.seconds)} page loads of {path}")
            finally:
                browser.close()
    except Error as exc:
        why = f"Chromium: {str(exc).splitlines()[0][:200]}"
        for op in ops:
            if op.available and len(op.seconds) < repeats.samples:
                op.seconds.clear()
                unavailable(op, why)
    return ops
