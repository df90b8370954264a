"""Creating channels and rules (the admin's forms and `manage.py alerts` share these checks)."""

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator, validate_email
from django.db import transaction

from alerts.models import Channel, ChannelKind, EventType, Rule
from audit.models import ChangeAction, Severity
from audit.services import change_record, model_values
from trading.models import Bot

CHANNEL_FIELDS = ["name", "kind", "url", "chat_id", "recipients", "is_active"]  # never the secret
RULE_FIELDS = ["event_type", "min_severity", "bot", "channel", "escalate_after_minutes"]


def channel_clean(*, kind: str, url: str, secret: str, chat_id: str, recipients: str) -> None:
    """Raise ValidationError naming each field a channel of ``kind`` lacks or has wrong."""
    errors: dict[str, str] = {}
    if kind not in ChannelKind.values:
        errors["kind"] = f"One of {', '.join(ChannelKind.values)}."
    if kind in (ChannelKind.WEBHOOK, ChannelKind.SLACK, ChannelKind.DISCORD):
        try:
            URLValidator(schemes=["http", "https"])(url)
        except ValidationError:
            errors["url"] = f"A {kind} channel needs an http(s) URL."
    if kind == ChannelKind.WEBHOOK and not secret:
        errors["secret"] = "A webhook channel needs a secret to sign its messages with."  # noqa: S105
    if kind == ChannelKind.TELEGRAM:
        if not secret:
            errors["secret"] = "A telegram channel needs the bot token as its secret."  # noqa: S105
        if not chat_id:
            errors["chat_id"] = "A telegram channel needs a chat id."
    if kind == ChannelKind.EMAIL:
        addresses = [r.strip() for r in recipients.split(",") if r.strip()]
        if not addresses:
            errors["recipients"] = "An email channel needs at least one address."
        for address in addresses:
            try:
                validate_email(address)
            except ValidationError:
                errors["recipients"] = f"{address!r} is not an e-mail address."
    if errors:
        raise ValidationError(errors)


@transaction.atomic
def channel_create(
    *,
    name: str,
    kind: str,
    url: str = "",
    secret: str = "",
    chat_id: str = "",
    recipients: str = "",
) -> Channel:
    channel_clean(kind=kind, url=url, secret=secret, chat_id=chat_id, recipients=recipients)
    if Channel.objects.filter(name=name).exists():
        raise ValidationError({"name": f"A channel named {name!r} exists already."})
    channel = Channel.objects.create(
        name=name, kind=kind, url=url, secret=secret, chat_id=chat_id, recipients=recipients
    )
    change_record(
        entity=channel,
        action=ChangeAction.CREATE,
        new_values=model_values(channel, CHANNEL_FIELDS),
        note="alerts channel add",
    )
    return channel


@transaction.atomic
def rule_create(
    *,
    channel_name: str,
    event_type: str,
    severity: str = Severity.WARNING,
    bot_id: str | None = None,
    escalate_after_minutes: int | None = None,
    escalation_channel_name: str | None = None,
) -> Rule:
    errors: dict[str, str] = {}
    channel = Channel.objects.filter(name=channel_name).first()
    if channel is None:
        errors["channel"] = f"No channel named {channel_name!r}."
    if event_type not in EventType.values:
        errors["event"] = f"One of {', '.join(EventType.values)}."
    if severity not in Severity.values:
        errors["severity"] = f"One of {', '.join(Severity.values)}."
    if bot_id is not None and not Bot.objects.filter(pk=bot_id).exists():
        errors["bot"] = f"No bot {bot_id!r}."
    escalation = None
    if escalation_channel_name is not None:
        escalation = Channel.objects.filter(name=escalation_channel_name).first()
        if escalation is None:
            errors["escalate_to"] = f"No channel named {escalation_channel_name!r}."
    if (escalate_after_minutes is None) != (escalation_channel_name is None):
        errors["escalate_after"] = "Escalation needs both --escalate-after and --escalate-to."
    elif escalate_after_minutes is not None and escalate_after_minutes < 1:
        errors["escalate_after"] = "At least 1 minute."
    if errors or channel is None:
        raise ValidationError(errors)
    rule = Rule.objects.create(
        channel=channel,
        event_type=event_type,
        min_severity=severity,
        bot_id=bot_id,
        escalate_after_minutes=escalate_after_minutes,
        escalation_channel=escalation,
    )
    change_record(
        entity=rule,
        action=ChangeAction.CREATE,
        new_values=model_values(rule, RULE_FIELDS),
        note="alerts rule add",
    )
    return rule
