"""Figures per run and per configuration version (issue 18): the summary of METRICS.md over a
slice of one bot's trades, and two slices side by side with their differences.

A slice is either runs (the trades written in them, a backtest's included: trading.bot_runs)
or a configuration version (the trades entered while it was in force, [effective_from,
effective_to), backtests left out unless asked for). Its curve starts from the bot's initial
capital, so that two slices compare from the same start.
"""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from analytics.selectors.bots import bot_summary
from analytics.selectors.common import RATIO_PLACES
from botconfig.models import BotConfiguration
from trading.models import Bot, BotRun


class SliceRefused(ValueError):
    """A slice that names no run or configuration version of the bot; ``field`` is the input."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@dataclass(frozen=True)
class Slice:
    run_ids: tuple[int, ...] = ()
    config_version: int | None = None
    # The input fields that named it, for errors: ("run", "config_version") or a prefix's.
    run_field: str = "run"
    config_field: str = "config_version"


def _entered(bot: Bot, part: Slice) -> tuple[datetime, datetime | None] | None:
    if part.config_version is None:
        return None
    window = (
        BotConfiguration.objects.filter(bot=bot, version=part.config_version)
        .values_list("effective_from", "effective_to")
        .first()
    )
    if window is None:
        raise SliceRefused(
            part.config_field, f"{bot.bot_id} has no configuration version {part.config_version}"
        )
    return window


def _runs_checked(bot: Bot, part: Slice) -> tuple[int, ...]:
    wanted = tuple(sorted(set(part.run_ids)))
    found = set(BotRun.objects.filter(bot=bot, pk__in=wanted).values_list("pk", flat=True))
    missing = [run_id for run_id in wanted if run_id not in found]
    if missing:
        raise SliceRefused(
            part.run_field, f"{bot.bot_id} has no run {', '.join(map(str, missing))}"
        )
    return wanted


def bot_slice_summary(
    *,
    bot: Bot,
    part: Slice,
    since: datetime | None = None,
    until: datetime | None = None,
    include_backtest: bool = False,
) -> dict[str, Any]:
    """bot_summary over one slice, with what the slice was (``run_ids``, ``config_version``
    and its time in force). SliceRefused names a run or version that is not the bot's."""
    if part.run_ids and part.config_version is not None:
        raise SliceRefused(part.config_field, f"cannot be given with {part.run_field}")
    run_ids = _runs_checked(bot, part)
    entered = _entered(bot, part)
    summary = bot_summary(
        bot=bot,
        since=since,
        until=until,
        include_backtest=include_backtest,
        run_ids=run_ids,
        entered=entered,
    )
    return {
        **summary,
        "run_ids": list(run_ids),
        "config_version": part.config_version,
        "config_effective_from": entered[0] if entered else None,
        "config_effective_to": entered[1] if entered else None,
    }


def summary_differences(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """b - a for every figure both give as a number (money exact, ratios to RATIO_PLACES);
    null where either is null. Counts stay integers."""
    differences: dict[str, Any] = {}
    for name, first in a.items():
        second = b.get(name)
        if isinstance(first, bool) or name in ("run_ids", "config_version"):
            continue
        if isinstance(first, Decimal | int | float) or isinstance(second, Decimal | int | float):
            if first is None or second is None:
                differences[name] = None
            elif (isinstance(first, Decimal) and isinstance(second, Decimal)) or (
                isinstance(first, int) and isinstance(second, int)
            ):
                differences[name] = second - first
            else:
                differences[name] = round(float(second) - float(first), RATIO_PLACES) + 0.0
    return differences


def bot_slices_compare(
    *,
    bot: Bot,
    a: Slice,
    b: Slice,
    include_backtest: bool = False,
) -> dict[str, Any]:
    """Two slices of one bot side by side (a configuration's before and after, a live run and
    its backtest) and their differences, b - a."""
    first = bot_slice_summary(bot=bot, part=a, include_backtest=include_backtest)
    second = bot_slice_summary(bot=bot, part=b, include_backtest=include_backtest)
    return {
        "bot_id": bot.bot_id,
        "a": first,
        "b": second,
        "differences": summary_differences(first, second),
    }
