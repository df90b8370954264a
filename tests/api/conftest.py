from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from tests.factories import make_bot
from trading.models import Bot
from trading.services.tokens import bot_token_create, staff_token_create


def client_with(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


@pytest.fixture
def bot_client(bot: Bot) -> APIClient:
    """A client holding momentum_001's token."""
    return client_with(bot_token_create(bot=bot).key)


@pytest.fixture
def other_bot(db: None) -> Bot:
    return make_bot("shortseller_001", name="Shortseller")


@pytest.fixture
def other_bot_client(other_bot: Bot) -> APIClient:
    return client_with(bot_token_create(bot=other_bot).key)


@pytest.fixture
def staff_user(db: None) -> User:
    return User.objects.create_user("analyst", password="pw", is_staff=True)


@pytest.fixture
def staff_client(staff_user: User) -> APIClient:
    return client_with(staff_token_create(user=staff_user).key)


@pytest.fixture
def post_json() -> Callable[..., Any]:
    def post(client: APIClient, url: str, body: Any, **headers: Any) -> Any:
        return client.post(url, body, format="json", **headers)

    return post
