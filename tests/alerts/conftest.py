from collections.abc import Iterator

import pytest

from alerts.models import Channel, ChannelKind, Rule
from tests.alerts.receiver import Receiver

SECRET = "s3cret-for-tests"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    started = Receiver(SECRET)
    try:
        yield started
    finally:
        started.close()


def make_channel(name: str, url: str, kind: str = ChannelKind.WEBHOOK, **fields: object) -> Channel:
    return Channel.objects.create(name=name, kind=kind, url=url, secret=SECRET, **fields)


def make_rule(channel: Channel, event_type: str = "risk_limit", **fields: object) -> Rule:
    return Rule.objects.create(channel=channel, event_type=event_type, **fields)
