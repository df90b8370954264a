import pytest
from django.contrib.auth.models import User
from django.test import Client

from tests.factories import make_bot
from trading.models import Bot


@pytest.fixture
def bot(db: None) -> Bot:
    return make_bot("momentum_001", name="Momentum")


@pytest.fixture
def superuser(db: None) -> User:
    return User.objects.create_superuser("root", "root@example.com", "pw-for-tests")


@pytest.fixture
def admin_client_logged_in(superuser: User) -> Client:
    client = Client()
    client.force_login(superuser)
    return client
