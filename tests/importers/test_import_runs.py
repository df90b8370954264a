"""Imported history gets a run per import (issue 18): the rows an import creates are linked to
its run, which spans them; a re-import that creates nothing leaves no empty run, and a bot's
open run never receives imported rows."""

from datetime import UTC, datetime

import pytest
from django.db.models import Max, Min

from audit.models import ChangeLog
from tests.importers.legacy_support import MOMENTUM_DB
from tests.importers.test_freqtrade import BOT_ID, run_import
from tests.importers.test_momentum import run as momentum_import
from trading.models import AccountBalance, BotRun, Order, Trade
from trading.services.runs import bot_run_open

pytestmark = pytest.mark.django_db


def test_a_legacy_import_links_every_row_it_creates_to_its_run() -> None:
    momentum_import(MOMENTUM_DB)

    run = BotRun.objects.get(bot_id="momentum_001")
    assert (run.mode, run.status, run.end_reason) == ("imported", "closed", "imported")
    assert run.metadata == {"command": "import_momentum", "source": str(MOMENTUM_DB)}
    assert Trade.objects.filter(bot_id="momentum_001", run=run).count() == 240
    assert AccountBalance.objects.filter(bot_id="momentum_001", run=run).count() == 448
    assert not Trade.objects.filter(run__isnull=True).exists()
    trades = Trade.objects.aggregate(first=Min("entry_time"), last=Max("exit_time"))
    balances = AccountBalance.objects.aggregate(first=Min("ts"), last=Max("ts"))
    assert run.started_at == min(trades["first"], balances["first"])
    assert run.ended_at == max(trades["last"], balances["last"])
    log = ChangeLog.objects.get(entity_type="trading.botrun")
    assert (log.entity_id, log.action) == (str(run.pk), "import")

    momentum_import(MOMENTUM_DB)  # nothing new: no second, empty run
    assert list(BotRun.objects.values_list("pk", flat=True)) == [run.pk]


def test_a_freqtrade_import_links_trades_and_orders_not_to_the_open_run() -> None:
    run_import(capital=1000)  # registers the bot
    first = BotRun.objects.get()
    live, _ = bot_run_open(bot=first.bot, mode="live", started_at=datetime(2026, 1, 5, tzinfo=UTC))
    Order.objects.filter(bot_id=BOT_ID).delete()  # imported again, into a second run
    Trade.objects.filter(bot_id=BOT_ID).delete()

    run_import()

    second = BotRun.objects.exclude(pk__in=[first.pk, live.pk]).get()
    assert second.mode == "imported"
    assert Trade.objects.filter(run=second).count() == Trade.objects.count() > 0
    assert Order.objects.filter(run=second).count() == Order.objects.count() > 0
    assert not Trade.objects.filter(run=live).exists()
