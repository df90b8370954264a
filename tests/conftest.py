from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from tests.alerts.smtp_sink import SmtpSink
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


@pytest.fixture
def smtp(settings: Any) -> Iterator[SmtpSink]:
    """A local SMTP sink that Django's e-mail backend sends to (alerts' e-mail channel,
    the scheduled reports)."""
    sink = SmtpSink()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", sink.port
    settings.DEFAULT_FROM_EMAIL = "alerts@atb.example"
    try:
        yield sink
    finally:
        sink.close()
