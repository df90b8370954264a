from typing import Any

from django.core.management.base import BaseCommand

from botconfig.demo import demo_seed


class Command(BaseCommand):
    help = (
        "Register three demo bots (demo_shortseller, demo_momentum, demo_lxalgo) with a month of "
        "trades, orders, positions, balances, signals and events, and a week of one-minute "
        "candles. Safe to run twice: when the demo bots exist it changes nothing."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        report = demo_seed()
        if report.already_present:
            present = ", ".join(report.already_present)
            self.stdout.write(f"demo data already present ({present}): nothing to do")
            return
        self.stdout.write(self.style.SUCCESS("demo data created:"))
        width = max(len(table) for table in report.created)
        for table, count in report.created.items():
            self.stdout.write(f"  {table:<{width}}  {count:>6}")
