"""The dashboard pages without a browser: who may open them, and that they load nothing from
outside the site (no CDN)."""

import json
import re
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.contrib.staticfiles import finders
from django.test import Client

from tests.factories import make_bot, make_candle
from trading.display import RISK_UNITS

pytestmark = pytest.mark.django_db

PORTFOLIO = "/dashboard/"
BOT = "/dashboard/bots/momentum_001/"


@pytest.fixture
def staff_client() -> Client:
    user = User.objects.create_user("operator", password="pw-for-tests", is_staff=True)
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize("url", [PORTFOLIO, BOT])
def test_anonymous_is_sent_to_the_login_page(url: str) -> None:
    make_bot("momentum_001")

    response = Client().get(url)

    assert response.status_code == 302
    assert response["Location"] == f"/admin/login/?next={url}"


@pytest.mark.parametrize("url", [PORTFOLIO, BOT])
def test_a_user_without_the_staff_flag_is_sent_to_the_login_page(url: str) -> None:
    make_bot("momentum_001")
    client = Client()
    client.force_login(User.objects.create_user("visitor", password="pw-for-tests"))

    response = client.get(url)

    assert response.status_code == 302
    assert response["Location"] == f"/admin/login/?next={url}"


def test_staff_get_the_portfolio_page_with_the_api_addresses(staff_client: Client) -> None:
    make_candle(symbol="ETH/USDT", close=Decimal("101.25"))
    response = staff_client.get(PORTFOLIO)

    assert response.status_code == 200
    assert [t.name for t in response.templates][:2] == [
        "dashboard/portfolio.html",
        "dashboard/base.html",
    ]
    config = _config(response.content.decode())
    assert config["page"] == "portfolio"
    assert config["refresh_seconds"] == 30
    assert config["stale_seconds"] == settings.BOT_HEARTBEAT_STALE_SECONDS
    assert config["snapshot_hours"] == 24
    assert config["api"] == {
        "summary": "/api/v1/portfolio/summary/",
        "snapshots": "/api/v1/portfolio/snapshots/",
        "positions": "/api/v1/positions/",
        "risk_events": "/api/v1/risk-events/",
        "performance": "/api/v1/portfolio/performance/",
    }
    assert config["bot_page"] == "/dashboard/bots/__bot__/"
    # What format.js needs to write prices and risk values as trading/display.py does.
    assert config["price_places"] == {"ETH/USDT": 2}
    assert config["risk_units"] == RISK_UNITS
    assert config["risk_units"]["stale_heartbeat"] == "seconds"


def test_staff_get_a_bot_page(staff_client: Client) -> None:
    make_bot("momentum_001", name="Momentum")

    response = staff_client.get(BOT)

    assert response.status_code == 200
    html = response.content.decode()
    assert "Momentum" in html
    config = _config(html)
    assert config["page"] == "bot"
    assert config["bot_id"] == "momentum_001"
    assert config["equity_max_points"] == 2000
    assert config["price_places"] == {}  # no candles: prices are shown exactly
    assert config["risk_units"] == RISK_UNITS
    assert config["api"] == {
        "summary": "/api/v1/bots/momentum_001/summary/",
        "equity": "/api/v1/bots/momentum_001/equity/",
        "performance": "/api/v1/bots/momentum_001/performance/",
        "breakdown": "/api/v1/bots/momentum_001/breakdown/",
        "trades": "/api/v1/trades/",
    }


def test_an_unknown_bot_is_a_404(staff_client: Client) -> None:
    make_bot("momentum_001")

    assert staff_client.get("/dashboard/bots/nobody_001/").status_code == 404


def test_the_bot_page_has_a_labelled_cell_for_every_summary_figure(staff_client: Client) -> None:
    make_bot("momentum_001")

    html = staff_client.get(BOT).content.decode()

    fields = set(re.findall(r'data-source="summary" data-field="([a-z0-9_]+)"', html))
    assert fields == SUMMARY_FIELDS - {"bot_id"}


@pytest.mark.parametrize("url", [PORTFOLIO, BOT])
def test_the_pages_load_nothing_from_another_site(staff_client: Client, url: str) -> None:
    make_bot("momentum_001")

    html = staff_client.get(url).content.decode()

    assert re.findall(r"(?:https?:)?//", html) == []
    assets = re.findall(r'(?:src|href)="(/static/[^"]+)"', html)
    assert sorted(assets) == [
        "/static/dashboard/dashboard.css",
        "/static/dashboard/dashboard.js",
        "/static/dashboard/format.js",
        "/static/vendor/uplot/uPlot.iife.min.js",
        "/static/vendor/uplot/uPlot.min.css",
    ]
    for asset in assets:
        found = finders.find(asset.removeprefix(f"/{settings.STATIC_URL.strip('/')}/"))
        assert found, asset
        text = Path(str(found)).read_text()
        # The vendored file names its home in its banner comment; nothing is fetched from it.
        urls = set(re.findall(r"https?://[^\s\"')]+", text))
        assert urls <= {"https://github.com/leeoniya/uPlot"}, (asset, urls)


def test_the_charting_library_is_vendored_with_its_licence() -> None:
    folder = Path(settings.BASE_DIR) / "static" / "vendor" / "uplot"

    assert "MIT License" in (folder / "LICENSE").read_text()
    readme = (folder / "README.md").read_text()
    assert "uPlot 1.6.32" in readme
    assert "(v1.6.32)" in (folder / "uPlot.iife.min.js").read_text()[:100]


SUMMARY_FIELDS = {
    "bot_id",
    "since",
    "until",
    "include_backtest",
    "initial_capital_usd",
    "equity_usd",
    "trades_closed",
    "trades_open",
    "wins",
    "losses",
    "breakeven",
    "win_rate",
    "gross_profit_usd",
    "gross_loss_usd",
    "net_pnl_usd",
    "profit_factor",
    "expectancy_usd",
    "expectancy_ratio",
    "avg_win_usd",
    "avg_loss_usd",
    "best_trade_usd",
    "worst_trade_usd",
    "avg_duration_s",
    "avg_win_duration_s",
    "avg_loss_duration_s",
    "fees_usd",
    "volume_usd",
    "max_drawdown_usd",
    "max_drawdown_pct",
    "max_drawdown_peak_at",
    "max_drawdown_trough_at",
    "sharpe",
    "sortino",
    "cagr",
    "calmar",
    "days",
    "first_trade_at",
    "last_trade_at",
    "reported_equity_usd",
    "reported_equity_at",
}


def _config(html: str) -> dict:
    match = re.search(r'<script id="dashboard-config" type="application/json">(.*?)</script>', html)
    assert match
    return json.loads(match.group(1))
