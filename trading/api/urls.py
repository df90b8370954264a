"""/api/v1/: every endpoint of API.md. Each resource's views live in their own module."""

from django.urls import path

from trading.api.trades import TradeCollectionView

app_name = "api"

urlpatterns = [
    path("trades/", TradeCollectionView.as_view(), name="trades"),
    # <writes: orders, fills, positions, signals, balances>
    # <market data, prices, heartbeat>
    # <reads: detail routes, bots>
]
