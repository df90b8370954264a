from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from trading.models import Bot
from trading.services.tokens import bot_token_create


class Command(BaseCommand):
    help = "Create an API token for a bot. The token is printed once, as the last line."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("bot_id")
        parser.add_argument("--name", default="", help="A label shown in the admin.")

    def handle(self, *args: Any, bot_id: str, name: str, **options: Any) -> None:
        bot = Bot.objects.filter(bot_id=bot_id).first()
        if bot is None:
            raise CommandError(f"No bot {bot_id!r}. Register it first (admin or register_bot).")
        issued = bot_token_create(bot=bot, name=name)
        self.stderr.write(f"token {issued.token.prefix}… for {bot_id}; it is not shown again:")
        self.stdout.write(issued.key)
