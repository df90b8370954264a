"""Alert channels and rules from the command line, for scripted set-ups:

manage.py alerts channel add --kind webhook --name ops --url URL --secret S
manage.py alerts channel test ops
manage.py alerts rule add --channel ops --event risk_limit --severity warning [--bot ID]
manage.py alerts list
"""

from argparse import ArgumentParser
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db.models import Count, Q

from alerts.models import Alert, AlertStatus, Channel, ChannelKind, DeliveryAttempt, EventType, Rule
from alerts.services.channels import channel_create, rule_create
from alerts.services.delivery import alert_test_create, alerts_deliver
from audit.models import Severity


def refused(exc: ValidationError) -> CommandError:
    return CommandError(
        "; ".join(
            f"--{field.replace('_', '-')}: {' '.join(errors)}"
            for field, errors in exc.message_dict.items()
        )
    )


class Command(BaseCommand):
    help = "Alert channels and rules: add, test, list."

    def add_arguments(self, parser: ArgumentParser) -> None:
        what = parser.add_subparsers(dest="what", required=True)
        channel = what.add_parser("channel").add_subparsers(dest="verb", required=True)
        add = channel.add_parser("add")
        add.add_argument("--kind", required=True, choices=ChannelKind.values)
        add.add_argument("--name", required=True)
        add.add_argument("--url", default="")
        add.add_argument("--secret", default="")
        add.add_argument("--chat-id", default="")
        add.add_argument("--recipients", default="", help="e-mail addresses, comma separated")
        test = channel.add_parser("test")
        test.add_argument("name")
        rule = what.add_parser("rule").add_subparsers(dest="verb", required=True)
        radd = rule.add_parser("add")
        radd.add_argument("--channel", required=True)
        radd.add_argument("--event", required=True, choices=EventType.values)
        radd.add_argument("--severity", default=Severity.WARNING, choices=Severity.values)
        radd.add_argument("--bot", default=None, help="one bot (default: all bots)")
        radd.add_argument("--escalate-after", type=int, default=None, help="minutes")
        radd.add_argument("--escalate-to", default=None, help="escalation channel's name")
        what.add_parser("list")

    def handle(self, *args: Any, **options: Any) -> None:
        what, verb = options["what"], options.get("verb")
        try:
            if (what, verb) == ("channel", "add"):
                channel = channel_create(
                    name=options["name"],
                    kind=options["kind"],
                    url=options["url"],
                    secret=options["secret"],
                    chat_id=options["chat_id"],
                    recipients=options["recipients"],
                )
                self.stdout.write(f"channel {channel.name} ({channel.kind}) added, id {channel.id}")
            elif (what, verb) == ("channel", "test"):
                self._test(options["name"])
            elif (what, verb) == ("rule", "add"):
                rule = rule_create(
                    channel_name=options["channel"],
                    event_type=options["event"],
                    severity=options["severity"],
                    bot_id=options["bot"],
                    escalate_after_minutes=options["escalate_after"],
                    escalation_channel_name=options["escalate_to"],
                )
                bot = rule.bot_id or "all bots"
                self.stdout.write(
                    f"rule {rule.id} added: {rule.event_type} >= {rule.min_severity}, {bot} "
                    f"-> {rule.channel.name}"
                )
            else:
                self._list()
        except ValidationError as exc:
            raise refused(exc) from exc

    def _test(self, name: str) -> None:
        channel = Channel.objects.filter(name=name).first()
        if channel is None:
            raise CommandError(f"no channel named {name!r}")
        alert = alert_test_create(channel=channel)
        alerts_deliver(budget_seconds=15.0)
        alert.refresh_from_db()
        attempt = DeliveryAttempt.objects.filter(alert=alert).order_by("-id").first()
        if alert.status == AlertStatus.DELIVERED and attempt is not None:
            code = attempt.response_code or "-"
            self.stdout.write(
                f"test message (alert {alert.id}) delivered to {name}: {code}, "
                f"{attempt.latency_ms} ms"
            )
            return
        why = attempt.error if attempt else "not tried yet (the channel is paused or queued)"
        raise CommandError(f"test message (alert {alert.id}) not delivered to {name}: {why}")

    def _list(self) -> None:
        channels = Channel.objects.annotate(
            backlog=Count("alerts", filter=Q(alerts__status=AlertStatus.PENDING))
        ).order_by("name")
        self.stdout.write("channels:")
        for c in channels:
            state = "failing" if c.failing else ("active" if c.is_active else "inactive")
            secret = "secret set" if c.secret else "no secret"
            self.stdout.write(
                f"  {c.name:<16} {c.kind:<9} {state:<8} {secret:<10} backlog {c.backlog}"
            )
        self.stdout.write("rules:")
        for r in Rule.objects.select_related("channel", "escalation_channel").order_by("id"):
            escalation = (
                f", escalate after {r.escalate_after_minutes} min to {r.escalation_channel.name}"
                if r.escalation_channel
                else ""
            )
            self.stdout.write(
                f"  {r.id:<4} {r.event_type:<16} >= {r.min_severity:<8} {r.bot_id or 'all bots'} "
                f"-> {r.channel.name}{escalation}{'' if r.is_active else ' (inactive)'}"
            )
        pending = Alert.objects.filter(status=AlertStatus.PENDING).count()
        self.stdout.write(f"pending alerts: {pending}")
