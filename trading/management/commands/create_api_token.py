from typing import Any

from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError, CommandParser

from trading.services.tokens import staff_token_create


class Command(BaseCommand):
    help = "Create a personal API token for a staff user. Printed once, as the last line."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--name", default="", help="A label shown in the admin.")

    def handle(self, *args: Any, username: str, name: str, **options: Any) -> None:
        user = User.objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user {username!r}.")
        if not user.is_staff or not user.is_active:
            raise CommandError(f"{username!r} is not an active staff user; API tokens are staff's.")
        issued = staff_token_create(user=user, name=name)
        self.stderr.write(f"token {issued.token.prefix}… for {username}; it is not shown again:")
        self.stdout.write(issued.key)
