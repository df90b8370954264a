"""What the configuration tests share: the demo's trend-following configuration, a live bot
running it, and a staff member (not a superuser) using the real admin with CSRF checks on."""

from django.contrib.auth.models import Permission, User
from django.test import Client

from botconfig.demo.specs import SPECS
from botconfig.services import config_version_create
from tests.factories import make_bot
from trading.models import Bot

TREND = next(spec for spec in SPECS if spec.strategy_type == "trend_following")
GOOD = TREND.config  # valid by its schema
# What changing configurations and schemas in the admin needs, and nothing more.
CONFIG_PERMISSIONS = (
    "view_bot",
    "view_botconfiguration",
    "add_botconfiguration",
    "change_botconfiguration",
    "view_strategyschema",
    "change_strategyschema",
)


def live_trend_bot() -> Bot:
    """trend_001, active, with GOOD as its configuration version 1."""
    bot = make_bot("trend_001", strategy_type="trend_following", status="active")
    config_version_create(bot=bot, config=GOOD, user=None, change_reason="first")
    bot.refresh_from_db()
    return bot


def staff_member(*codenames: str) -> User:
    user = User.objects.create_user("ops", password="pw", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    return user


def csrf_client(user: User) -> Client:
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    return client
