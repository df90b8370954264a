"""Every operation of the OpenAPI schema, fuzzed from the schema itself, as a bot and as staff:
no answer is a 5xx and every answer matches what the schema documents for it.

The schema is fetched from the WSGI application at /api/schema/ (as staff: it is staff-only)
and the cases are sent to the same application, on the test database. Each request commits on
its own (transactional_db), as in production, so a refused write cannot poison the next one.
Generation is derandomized: the same cases run every time.
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
import schemathesis
from django.contrib.auth.models import User
from django.core.wsgi import get_wsgi_application
from django.test import override_settings
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
)

from tests.factories import T0, make_bot, make_candle, make_position, make_trade
from trading.models import AccountBalance, Bot, Order, Signal
from trading.services.tokens import bot_token_create, staff_token_create

pytestmark = pytest.mark.django_db(transaction=True)

EXAMPLES = 8  # per operation, principal and mode: 20 to 50 s in all on this 2-core machine
# Server errors and schema violations. Not status_code_conformance: the schema documents the
# success answers, and a 400, 403 or 404 to a fuzzed request is the API doing its job.
CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    content_type_conformance,
    response_headers_conformance,
]


@dataclass(frozen=True)
class Seeded:
    """Rows for the fuzzed requests to find: path parameters that name something that exists."""

    bot: Bot
    path_values: dict[str, dict[str, Any]]  # path prefix -> path parameters


@pytest.fixture
def seeded(transactional_db: None) -> Seeded:
    bot = make_bot("fuzz_bot", name="Fuzz")
    trade = make_trade(bot, trade_id="fz-1")
    position = make_position(bot)
    make_candle()
    order = Order.objects.create(
        bot=bot,
        client_order_id="fz-order-1",
        symbol="BTC/USDT",
        side="buy",
        order_type="limit",
        quantity=Decimal("1"),
        price=Decimal("60000"),
    )
    signal = Signal.objects.create(
        bot=bot, symbol="BTC/USDT", signal_type="breakout", direction="long", generated_at=T0
    )
    balance = AccountBalance.objects.create(
        bot=bot, ts=T0, balance_usd=Decimal("10000"), equity_usd=Decimal("10100")
    )
    return Seeded(
        bot=bot,
        path_values={
            "/api/v1/trades/{id}/": {"id": trade.pk},
            "/api/v1/positions/{id}/": {"id": position.pk},
            "/api/v1/orders/{id}/": {"id": order.pk},
            "/api/v1/orders/{client_order_id}/": {"client_order_id": order.client_order_id},
            "/api/v1/signals/{id}/": {"id": signal.pk},
            "/api/v1/balances/{id}/": {"id": balance.pk},
            "/api/v1/bots/{bot_id}/": {"bot_id": bot.bot_id},
        },
    )


@pytest.fixture
def principals(seeded: Seeded) -> dict[str, str]:
    """Authorization headers: the bot's token, and a staff user's (staff flag, no permissions)."""
    staff = User.objects.create_user("fuzz_staff", password="pw", is_staff=True)
    return {
        "bot": f"Bearer {bot_token_create(bot=seeded.bot).key}",
        "staff": f"Bearer {staff_token_create(user=staff).key}",
    }


@pytest.fixture
def schema(principals: dict[str, str]) -> Iterator[Any]:
    # The WSGI test client calls itself "localhost"; fuzzing must never be throttled.
    with override_settings(
        ALLOWED_HOSTS=["localhost", "testserver"], API_THROTTLE_RATE="1000000/s"
    ):
        yield schemathesis.openapi.from_wsgi(
            "/api/schema/?format=json",
            get_wsgi_application(),
            headers={"Authorization": principals["staff"]},
        )


def fuzz(strategy: Any, authorization: str, examples: int) -> Callable[[], None]:
    @settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],  # no shrinking: report the case as found
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def run(case: Any) -> None:
        case.call_and_validate(headers={"Authorization": authorization}, checks=CHECKS)

    return run


def known_path_values(path: str, seeded: Seeded) -> dict[str, Any] | None:
    for prefix, values in seeded.path_values.items():
        if path.startswith(prefix):
            return values
    return None


def test_every_operation_as_bot_and_as_staff_has_no_server_error_or_schema_violation(
    schema: Any, principals: dict[str, str], seeded: Seeded
) -> None:
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10  # the schema really was read

    for operation in operations:
        known = known_path_values(operation.path, seeded)
        for who, authorization in principals.items():
            runs = [
                (mode.value, operation.as_strategy(mode), EXAMPLES)
                for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
            ]
            if known is not None:
                runs.append(("existing", operation.as_strategy(path_parameters=known), 3))
            for label, strategy, examples in runs:
                try:
                    fuzz(strategy, authorization, examples)()
                except Exception as exc:  # collect every operation's failure, then report all
                    failures.append(f"{operation.label} as {who} ({label}):\n{exc}")

    assert not failures, f"{len(failures)} failing runs:\n\n" + "\n\n".join(failures)
