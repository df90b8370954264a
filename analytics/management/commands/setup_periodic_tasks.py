from typing import Any

from django.core.management.base import BaseCommand

from analytics.services.schedule import periodic_tasks_not_in_code, periodic_tasks_setup


class Command(BaseCommand):
    help = (
        "Create or update, by name, the periodic tasks the code schedules (django_celery_beat). "
        "Safe on every release: a second run changes nothing; entries staff added are kept."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        for name, outcome in periodic_tasks_setup().items():
            self.stdout.write(f"{outcome:<9} {name}")
        for name in periodic_tasks_not_in_code():
            self.stdout.write(f"{'left':<9} {name} (not scheduled by the code)")
