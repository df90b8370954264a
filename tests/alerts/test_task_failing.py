"""A task failing repeatedly: the Celery failure signal's handler (as a worker calls it) counts
the streak in Redis; the third failure in a row writes one task_failing system event, which a
rule sends on; a success ends the streak."""

import pytest

from alerts import tasks
from alerts.models import Alert
from audit.models import SystemEvent
from audit.monitoring.tasks import _failed, _streak_end, _succeeded
from tests.alerts.conftest import make_channel, make_rule

pytestmark = pytest.mark.django_db


def test_the_third_failure_in_a_row_is_an_event_and_an_alert() -> None:
    make_rule(make_channel("ops", "http://127.0.0.1:9/"), event_type="task_failing")
    task = tasks.deliver
    _streak_end(task.name)  # from an earlier run of this test on the same Redis
    try:
        _failed(sender=task, exception=RuntimeError("smtp down"))
        _failed(sender=task, exception=RuntimeError("smtp down"))
        assert not SystemEvent.objects.filter(event_type="task_failing").exists()
        _failed(sender=task, exception=RuntimeError("smtp down"))
        _failed(sender=task, exception=RuntimeError("smtp down"))  # same streak: no second

        (event,) = SystemEvent.objects.filter(event_type="task_failing")
        assert (event.component, event.severity, event.details) == (
            "celery",
            "error",
            {"task": "alerts.deliver", "streak": 3},
        )
        assert event.message == (
            "task alerts.deliver failed 3 times in a row; last: RuntimeError('smtp down')"
        )
        alert = Alert.objects.get()
        assert (alert.event_type, alert.source_id) == ("task_failing", event.id)

        _succeeded(sender=task)
        for _ in range(3):
            _failed(sender=task, exception=RuntimeError("again"))
        assert SystemEvent.objects.filter(event_type="task_failing").count() == 2
    finally:
        _streak_end(task.name)
