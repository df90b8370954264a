"""The dashboard in a real browser: Chromium logs in through the admin's login form, opens both
pages, and the test checks that every chart drew, that every figure shown is the API's, that
the pages refresh without a reload, and that empty data renders cleanly. Screenshots go to
.data/screenshots/ (git-ignored), with the navigation-to-ready times in timings.json.

The figures are compared with the same API fetched by the Django test client as staff: each
filled element's data-value must be the API's raw value and its text must be trading/display.py's
rendering of it (format.js is its twin). Nothing here is timed against a limit: the benchmark
measures speed (it waits for the same ready signal).
"""

import json
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.utils import timezone

from analytics.models import PortfolioSnapshot
from analytics.selectors import portfolio_summary
from analytics.sql import MATERIALIZED_VIEWS
from botconfig.demo import DEMO_BOT_IDS, demo_seed
from tests.factories import make_bot, make_position
from trading.display import DASH, RISK_UNITS, UNKNOWN, shown
from trading.models import Bot
from trading.selectors.precision import price_places

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Page

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "pw-for-browser-tests"
READY = "document.documentElement.dataset.ready === '1'"
TIMINGS: dict[str, int] = {}
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# --- Set-up -------------------------------------------------------------------------------------


def refresh_views() -> None:
    with connection.cursor() as cursor:
        for view in MATERIALIZED_VIEWS:
            cursor.execute(f"REFRESH MATERIALIZED VIEW {view}")


@pytest.fixture(autouse=True)
def fresh_views(db: None) -> None:
    """The materialized views as this test's data make them: emptying the tables between tests
    leaves the views with what an earlier test refreshed into them."""
    refresh_views()


@pytest.fixture
def staff() -> User:
    return User.objects.create_user("operator", password=PASSWORD, is_staff=True)


@pytest.fixture
def api(staff: User) -> Callable[[str], Any]:
    client = Client()
    client.force_login(staff)

    def get(url: str) -> Any:
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code, response.content[:300])
        return response.json()

    return get


@pytest.fixture
def demo() -> datetime:
    """The demo data set, a bot without trades, and an hour of five-minute portfolio snapshots."""
    now = timezone.now()
    demo_seed(now=now)
    make_bot("quiet_001", name="Quiet")
    bucket = now.replace(minute=now.minute - now.minute % 5, second=0, microsecond=0)
    total = portfolio_summary(now=now)["total_equity_usd"]
    for i in range(12):
        equity = total - Decimal(i * 37) + Decimal((i % 3) * 55)
        PortfolioSnapshot.objects.create(
            ts=bucket - timedelta(minutes=5 * (11 - i)),
            total_equity_usd=equity,
            total_balance_usd=equity - Decimal("250"),
        )
    refresh_views()  # as the beat does every five minutes: past days are read from the views
    return now


@pytest.fixture
def page(browser_context_factory: Callable[[], "BrowserContext"]) -> "Page":
    context = browser_context_factory()
    # The admin's login page names no icon, so Chromium asks for /favicon.ico, a 404 here.
    context.route("**/favicon.ico", lambda route: route.fulfill(status=204))
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.errors = errors  # type: ignore[attr-defined]
    return page


def _login(page: "Page", base: str, path: str) -> None:
    page.goto(base + path)
    assert "/admin/login/" in page.url, page.url
    page.fill("#id_username", "operator")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(base + path)


def _open(page: "Page", url: str, name: str, folder: Path) -> None:
    """Navigate and wait for the ready signal; note the page's navigation-to-ready time."""
    page.goto(url)
    page.wait_for_function(READY, timeout=20_000)
    TIMINGS[name] = int(page.evaluate("Number(document.documentElement.dataset.readyMs)"))
    (folder / "timings.json").write_text(json.dumps(TIMINGS, indent=2, sort_keys=True))


def _shoot(page: "Page", folder: Path, name: str) -> None:
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


# --- What the page shows ------------------------------------------------------------------------

CELL = """el => ({
    field: el.dataset.field, kind: el.dataset.kind || "text", value: el.dataset.value,
    isNull: el.dataset.null === "1", text: el.textContent.trim()
})"""


def _figures(page: "Page", source: str) -> list[dict[str, Any]]:
    return page.eval_on_selector_all(
        f'[data-source="{source}"][data-field]', f"els => els.map({CELL})"
    )


def _table(page: "Page", source: str) -> list[list[dict[str, Any]]]:
    return page.eval_on_selector_all(
        f'table[data-source="{source}"] tbody tr[data-row]',
        f"rows => rows.map(tr => [...tr.cells].map({CELL}))",
    )


def _check(cell: dict[str, Any], raw: Any, where: str, row: dict[str, Any] | None = None) -> None:
    field = cell["field"]
    assert cell["kind"], where
    if field == "heartbeat_age_s" and raw is not None:
        assert abs(float(cell["value"]) - float(raw)) < 120, (where, cell, raw)
        return
    if raw is None:
        absent = UNKNOWN if cell["kind"] == "price" and field != "exit_price" else DASH
        assert (cell["isNull"], cell["value"], cell["text"]) == (True, "", absent), (where, cell)
        return
    if isinstance(raw, bool):
        assert cell["value"] == ("true" if raw else "false"), (where, cell, raw)
    elif isinstance(raw, int | float):
        assert float(cell["value"]) == raw, (where, cell, raw)
    else:
        assert cell["value"] == str(raw), (where, cell, raw)
    row = row or {}
    places = price_places().get(row.get("symbol", "")) if cell["kind"] == "price" else None
    unit = RISK_UNITS.get(row.get("event_type", ""))
    assert cell["text"] == shown(cell["kind"], raw, places=places, unit=unit), (where, cell, raw)


def _check_figures(page: "Page", source: str, data: dict[str, Any]) -> int:
    cells = _figures(page, source)
    assert cells, source
    for cell in cells:
        assert cell["field"] in data, (source, cell["field"], sorted(data))
        if cell["field"] == "as_of":
            _same_moment(cell["value"], data["as_of"])
        else:
            _check(cell, data[cell["field"]], f"{source}.{cell['field']}")
    return len(cells)


def _check_table(page: "Page", source: str, rows: list[dict[str, Any]]) -> int:
    shown_rows = _table(page, source)
    assert len(shown_rows) == len(rows), (source, len(shown_rows), len(rows))
    for i, (cells, row) in enumerate(zip(shown_rows, rows, strict=True)):
        for cell in cells:
            _check(cell, row[cell["field"]], f"{source}[{i}].{cell['field']}", row)
    if not rows:
        assert page.locator(f'table[data-source="{source}"] td.empty').count() == 1
    return sum(len(cells) for cells in shown_rows)


def _same_moment(shown_value: str, api_value: str) -> None:
    seconds = abs(
        datetime.fromisoformat(shown_value.replace("Z", "+00:00"))
        - datetime.fromisoformat(api_value.replace("Z", "+00:00"))
    ).total_seconds()
    assert seconds < 120, (shown_value, api_value)


def _charts(page: "Page") -> dict[str, dict[str, Any]]:
    """Per chart: drawn/empty flags, the coloured pixels on its canvas, and uPlot's data."""
    return page.evaluate(
        """() => Object.fromEntries([...document.querySelectorAll("[data-chart]")].map(el => {
            const name = el.dataset.chart;
            const canvas = el.querySelector("canvas");
            let painted = 0;
            if (canvas) {
                const context = canvas.getContext("2d");
                const px = context.getImageData(0, 0, canvas.width, canvas.height).data;
                for (let i = 3; i < px.length; i += 4) if (px[i]) painted++;
            }
            const chart = window.atbDashboard.charts[name];
            return [name, {drawn: el.dataset.drawn, empty: el.dataset.empty, painted,
                           data: chart ? chart.data : null}];
        }))"""
    )


def _assert_drawn(charts: dict[str, dict[str, Any]], names: set[str]) -> None:
    assert set(charts) == names
    for name, chart in charts.items():
        assert (chart["drawn"], chart["empty"]) == ("1", "0"), name
        assert chart["painted"] > 500, (name, chart["painted"])


def _series(xs: list[float], ys: list[float | None]) -> dict[float, float]:
    return {x: y for x, y in zip(xs, ys, strict=True) if y is not None}


def _ts(iso: str) -> float:
    """Seconds since the epoch as the page computes them: Date.parse (whole ms) / 1000."""
    if len(iso) == 10:
        iso += "T00:00:00+00:00"
    moment = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    return ((moment - EPOCH) // timedelta(milliseconds=1)) / 1e3


# --- The tests ----------------------------------------------------------------------------------


def test_portfolio_page_shows_the_apis_figures_and_charts(
    live_server: Any, demo: datetime, api: Callable[[str], Any], page: "Page", screenshots: Path
) -> None:
    old = PortfolioSnapshot.objects.order_by("ts").first()
    assert old is not None
    PortfolioSnapshot.objects.create(  # older than the 24 hours the page draws
        ts=old.ts - timedelta(hours=25),
        total_equity_usd=old.total_equity_usd,
        total_balance_usd=old.total_balance_usd,
    )
    _login(page, live_server.url, "/dashboard/")
    _open(page, live_server.url + "/dashboard/", "portfolio", screenshots)
    _shoot(page, screenshots, "portfolio")

    summary = api("/api/v1/portfolio/summary/")
    assert {b["bot_id"] for b in summary["bots"]} == {*DEMO_BOT_IDS, "quiet_001"}
    checked = _check_figures(page, "summary", summary)
    checked += _check_table(page, "bots", summary["bots"])
    checked += _check_table(
        page, "positions", api("/api/v1/positions/?status=open&page_size=50")["results"]
    )
    checked += _check_table(
        page, "risk_events", api("/api/v1/risk-events/?page_size=10")["results"]
    )
    assert checked > 60

    charts = _charts(page)
    _assert_drawn(charts, {"equity", "daily-pnl", "exposure"})
    # Daily PnL and the realized equity at each day's close: portfolio/performance/'s rows,
    # each day's pnl the sum over bots of their own performance rows.
    days = api("/api/v1/portfolio/performance/?period=day")["rows"]
    per_bot: dict[float, Decimal] = defaultdict(Decimal)
    for bot in summary["bots"]:
        for row in api(f"/api/v1/bots/{bot['bot_id']}/performance/?period=day")["rows"]:
            per_bot[_ts(row["period_start"])] += Decimal(row["net_pnl_usd"])
    assert {_ts(r["period_start"]): Decimal(r["net_pnl_usd"]) for r in days} == per_bot
    xs, gains, losses = charts["daily-pnl"]["data"]
    drawn = {x: g if g is not None else lo for x, g, lo in zip(xs, gains, losses, strict=True)}
    assert drawn == {_ts(r["period_start"]): float(r["net_pnl_usd"]) for r in days}
    # Equity: the realized daily closes, beside the last 24 hours of snapshots' total equity.
    snapshots = api("/api/v1/portfolio/snapshots/?page_size=1000")["results"]
    assert len(snapshots) == 13
    xs, realized, totals = charts["equity"]["data"]
    assert _series(xs, realized) == {
        _ts(r["period_start"]): float(r["equity_close_usd"]) for r in days
    }
    assert _series(xs, totals) == {
        _ts(s["ts"]): float(s["total_equity_usd"])
        for s in snapshots[:12]  # not the old one
    }
    # Exposure: one bar per bot, in the API's order.
    assert charts["exposure"]["data"][1] == [float(b["exposure_usd"]) for b in summary["bots"]]
    # A heartbeat older than BOT_HEARTBEAT_STALE_SECONDS stands out.
    stale = [b["bot_id"] for b in summary["bots"] if (b["heartbeat_age_s"] or 0) > 300]
    assert stale  # the demo's demo_lxalgo has gone quiet
    assert page.locator('table[data-source="bots"] td.stale').count() == len(stale)
    # The bots table links to each bot's page.
    href = page.get_attribute('table[data-source="bots"] a[href*="demo_momentum"]', "href")
    assert href == "/dashboard/bots/demo_momentum/"
    assert page.errors == []  # type: ignore[attr-defined]


def test_bot_page_shows_the_apis_figures_and_charts(
    live_server: Any,
    demo: datetime,
    api: Callable[[str], Any],
    page: "Page",
    screenshots: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Fewer points than the demo bot's trades and balances: the page draws a down-sampled curve.
    monkeypatch.setattr("analytics.views.EQUITY_MAX_POINTS", 60)
    bot_id = "demo_momentum"
    _login(page, live_server.url, f"/dashboard/bots/{bot_id}/")
    _open(page, live_server.url + f"/dashboard/bots/{bot_id}/", "bot", screenshots)
    _shoot(page, screenshots, f"bot-{bot_id}")

    base = f"/api/v1/bots/{bot_id}/"
    summary = api(base + "summary/")
    assert summary["trades_closed"] > 0
    checked = _check_figures(page, "summary", summary)
    assert checked == len(summary) - 1  # every figure but bot_id, which heads the page
    months = api(base + "performance/?period=month")["rows"]
    exits = api(base + "breakdown/?by=exit_reason")["rows"]
    trades = api(f"/api/v1/trades/?bot_id={bot_id}&page_size=20")["results"]
    assert months and exits and trades
    _check_table(page, "monthly", months)
    _check_table(page, "exit_reasons", exits)
    _check_table(page, "trades", trades)

    charts = _charts(page)
    _assert_drawn(charts, {"equity", "drawdown"})
    equity = api(base + "equity/?max_points=60")
    full = api(base + "equity/")
    # Down-sampled: points of the curve itself, its extremes, and the maximum drawdown's ends.
    assert len(full["points"]) == equity["points_total"] > 60 >= len(equity["points"])
    assert len(full["reported"]) == equity["reported_total"] > 60 >= len(equity["reported"])
    every = {tuple(sorted(p.items())) for p in full["points"]}
    assert all(tuple(sorted(p.items())) in every for p in equity["points"])
    kept = {p["ts"] for p in equity["points"]}
    assert {summary["max_drawdown_peak_at"], summary["max_drawdown_trough_at"]} <= kept
    for key in ("equity_usd", "drawdown_pct"):
        values = [float(p[key]) for p in full["points"]]
        assert {min(values), max(values)} <= {float(p[key]) for p in equity["points"]}, key
    _check_figures(
        page,
        "equity",
        {"points_drawn": len(equity["points"]), "points_total": equity["points_total"]},
    )
    xs, realized, _peak, reported = charts["equity"]["data"]
    # Several trades may close in one second: the curve keeps the last equity of that second.
    assert _series(xs, realized) == {_ts(p["ts"]): float(p["equity_usd"]) for p in equity["points"]}
    assert _series(xs, reported) == {
        _ts(r["ts"]): float(r["equity_usd"]) for r in equity["reported"]
    }
    dxs, drawdowns = charts["drawdown"]["data"]
    assert len(dxs) == len(equity["points"])
    assert drawdowns == [-float(p["drawdown_pct"]) for p in equity["points"]]
    assert page.errors == []  # type: ignore[attr-defined]


def test_pages_refresh_without_a_reload(
    live_server: Any, demo: datetime, api: Callable[[str], Any], page: "Page", screenshots: Path
) -> None:
    _login(page, live_server.url, "/dashboard/")
    _open(page, live_server.url + "/dashboard/?refresh=1", "portfolio-refresh", screenshots)
    assert page.text_content("#dashboard-every") == "1"
    page.evaluate("window.sameDocument = true")
    before = api("/api/v1/portfolio/summary/")["open_positions"]
    loads = int(page.evaluate("Number(document.documentElement.dataset.loads)"))

    make_position(Bot.objects.get(bot_id="demo_momentum"), symbol="DOGE/USDT", opened_at=demo)

    after = api("/api/v1/portfolio/summary/")["open_positions"]
    assert after == before + 1
    page.wait_for_function(
        """([loads, after]) => Number(document.documentElement.dataset.loads) > loads
            && document.querySelector('[data-source="summary"][data-field="open_positions"]')
                .dataset.value === String(after)""",
        arg=[loads, after],
        timeout=15_000,
    )
    assert page.evaluate("window.sameDocument") is True
    assert page.evaluate("performance.getEntriesByType('navigation').length") == 1
    positions = api("/api/v1/positions/?status=open&page_size=50")["results"]
    assert any(p["symbol"] == "DOGE/USDT" for p in positions)
    page.wait_for_function(READY)
    _check_table(page, "positions", positions)
    _shoot(page, screenshots, "portfolio-refreshed")
    assert page.errors == []  # type: ignore[attr-defined]


def test_pages_render_cleanly_without_data(
    live_server: Any, staff: User, api: Callable[[str], Any], page: "Page", screenshots: Path
) -> None:
    make_bot("quiet_001", name="Quiet")

    _login(page, live_server.url, "/dashboard/")
    _open(page, live_server.url + "/dashboard/", "portfolio-empty", screenshots)
    _shoot(page, screenshots, "portfolio-empty")
    charts = _charts(page)
    for name in ("equity", "daily-pnl"):
        assert (charts[name]["drawn"], charts[name]["empty"]) == ("1", "1"), name
    _check_figures(page, "summary", api("/api/v1/portfolio/summary/"))
    _check_table(page, "positions", [])
    _check_table(page, "risk_events", [])

    _open(page, live_server.url + "/dashboard/bots/quiet_001/", "bot-empty", screenshots)
    _shoot(page, screenshots, "bot-empty")
    charts = _charts(page)
    assert {n: (c["drawn"], c["empty"]) for n, c in charts.items()} == {
        "equity": ("1", "1"),
        "drawdown": ("1", "1"),
    }
    _check_figures(page, "summary", api("/api/v1/bots/quiet_001/summary/"))
    for source in ("monthly", "exit_reasons", "trades"):
        _check_table(page, source, [])
    assert page.errors == []  # type: ignore[attr-defined]


# (kind, raw, context, the text both trading/display.py and format.js must write)
FORMAT_CASES: list[tuple[str, Any, dict[str, Any], str]] = [
    ("usd", "0.125", {}, "0.13 USD"),
    ("usd", "-0.125", {}, "-0.13 USD"),
    ("usd", "-0.004", {}, "0.00 USD"),
    ("usd", "1234567.891", {}, "1,234,567.89 USD"),
    ("usd", "1E+3", {}, "1,000.00 USD"),
    ("usd", "0.00000001", {}, "0.00 USD"),
    ("usd", 2.675, {}, "2.67 USD"),  # binary 2.67499999...: 2.67 in both
    ("usd", None, {}, DASH),
    ("pct", "-12.345", {}, "-12.35%"),
    ("percent", 0.5625, {}, "56.25%"),
    ("percent", 0.000005, {}, "0.00%"),
    ("percent", "0.123456", {}, "12.35%"),
    ("ratio", 1.23456789, {}, "1.2346"),
    ("ratio", -0.00005, {}, "-0.0001"),
    ("ratio", 0.00015, {}, "0.0001"),
    ("int", 1234567, {}, "1,234,567"),
    ("int", "42", {}, "42"),
    ("number", 29.166667, {}, "29.17"),
    ("number", 3, {}, "3"),
    ("qty", "60000.0000000000", {}, "60,000"),
    ("qty", "0.50000000", {}, "0.5"),
    ("qty", "-0.00000000", {}, "0"),
    ("qty", "1.5E-7", {}, "0.00000015"),
    ("price", "158.7005444615", {"places": 2}, "158.70"),
    ("price", "60123.4500000000", {"places": 1}, "60,123.5"),
    ("price", "0.0000123400", {"places": 8}, "0.00001234"),
    ("price", "3000.0000000000", {"places": 0}, "3,000"),
    ("price", "158.7005444615", {}, "158.7005444615"),  # a market without candles
    ("price", None, {"places": 2}, "unknown"),
    ("price", "0E-10", {"places": 2}, "0.00"),  # a known price of zero stays 0.00
    ("limit", "300.0000000000", {"unit": "seconds"}, "5m 00s"),
    ("limit", "1500.5000000000", {"unit": "usd"}, "1,500.50 USD"),
    ("limit", "20.0000000000", {"unit": "pct"}, "20.00%"),
    ("limit", "3.0000000000", {"unit": "x"}, "3x"),
    ("limit", "5.0000000000", {"unit": "count"}, "5"),
    ("limit", "0.0500000000", {"unit": "qty"}, "0.05"),
    ("limit", None, {"unit": "usd"}, DASH),
    ("leverage", "2.5000000000", {}, "2.5x"),
    ("duration", 59.5, {}, "1m 00s"),
    ("duration", 3599.4, {}, "59m 59s"),
    ("duration", 7500, {}, "2h 05m"),
    ("duration", 2 * 86400 + 3600 + 61, {}, "2d 01h"),
    ("duration", "4200.000000", {}, "1h 10m"),
    ("duration", 42, {}, "42s"),
    ("time", "2026-01-05T12:00:00.123456Z", {}, "2026-01-05 12:00:00 UTC"),
    ("time", "2026-01-05T13:30:59+01:00", {}, "2026-01-05 12:30:59 UTC"),
    ("month", "2026-01-01", {}, "2026-01"),
    ("bool", False, {}, "no"),
    ("text", "stop_loss", {}, "stop_loss"),
]


def test_the_python_rules_write_the_pinned_texts() -> None:
    assert [shown(kind, raw, **ctx) for kind, raw, ctx, _ in FORMAT_CASES] == [
        text for *_, text in FORMAT_CASES
    ]


def test_the_pages_format_figures_as_the_python_rules_do(
    live_server: Any, browser_context_factory: Callable[[], "BrowserContext"]
) -> None:
    page = browser_context_factory().new_page()
    page.goto(live_server.url + "/health/live")
    page.add_script_tag(url=live_server.url + "/static/dashboard/format.js")

    texts = page.evaluate(
        "cases => cases.map(([kind, raw, ctx]) => window.atbFormat.format(kind, raw, ctx))",
        [[kind, raw, ctx] for kind, raw, ctx, _ in FORMAT_CASES],
    )

    assert texts == [text for *_, text in FORMAT_CASES]
