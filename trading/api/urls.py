"""/api/v1/: every endpoint of API.md. Each resource's views live in their own module."""

from django.urls import path

from trading.api import collections, lists, orders, predictions, runs
from trading.api.market import MarketDataView, PriceListView
from trading.api.state import HeartbeatView
from trading.api.trades import TradeCollectionView

app_name = "api"

urlpatterns = [
    path("trades/", TradeCollectionView.as_view(), name="trades"),
    path(
        "orders/<str:client_order_id>/fills/",
        orders.FillWriteView.as_view(),
        name="order-fills",
    ),
    path("fills/", lists.FillListView.as_view(), name="fills"),
    path("market-data/", MarketDataView.as_view(), name="market-data"),
    path("prices/", PriceListView.as_view(), name="prices"),
    path("heartbeat/", HeartbeatView.as_view(), name="heartbeat"),
    path("predictions/", predictions.PredictionCollectionView.as_view(), name="predictions"),
    path(
        "predictions/scores/", predictions.PredictionScoreView.as_view(), name="prediction-scores"
    ),
    path("runs/", runs.RunCollectionView.as_view(), name="runs"),
    path("runs/<int:pk>/", runs.RunDetailView.as_view(), name="run"),
    path("runs/<int:pk>/close/", runs.RunCloseView.as_view(), name="run-close"),
    path("trades/<int:pk>/", lists.TradeDetailView.as_view(), name="trade"),
    path("orders/<int:pk>/", lists.OrderDetailView.as_view(), name="order"),
    path("positions/<int:pk>/", lists.PositionDetailView.as_view(), name="position"),
    path("signals/<int:pk>/", lists.SignalDetailView.as_view(), name="signal"),
    path("balances/<int:pk>/", lists.BalanceDetailView.as_view(), name="balance"),
    path("bots/", lists.BotListView.as_view(), name="bots"),
    path("bots/<slug:bot_id>/", lists.BotDetailView.as_view(), name="bot"),
    # GET lists and bots' POST on one URL each (trading/api/collections.py).
    path("orders/", collections.OrderCollectionView.as_view(), name="orders"),
    path("positions/", collections.PositionCollectionView.as_view(), name="positions"),
    path("signals/", collections.SignalCollectionView.as_view(), name="signals"),
    path("balances/", collections.BalanceCollectionView.as_view(), name="balances"),
]
