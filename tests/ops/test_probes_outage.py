"""The probes of a process whose PostgreSQL and Redis are both stopped: a fresh Django process
(a subprocess) configured with ports nothing listens on, called through its WSGI handler.

Liveness 200; readiness 503 naming PostgreSQL (Redis only degraded); /metrics 200 with
``atb_database_up 0``; an API call 503 in the API's error format (never 500); each within 2 s.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.ops.test_metrics import parse
from tests.ops.test_probes import dead_port

ROOT = Path(__file__).resolve().parents[2]
SECRET = "0utage-Pa55word"

SCRIPT = """
import json, sys, time
import django
django.setup()
from django.test import Client

client = Client()
answers = {}
for url, headers in [
    ("/health/live", {}),
    ("/health/ready", {}),
    ("/metrics", {"HTTP_AUTHORIZATION": "Bearer scrape-0utage"}),
    ("/api/v1/database/health", {"HTTP_AUTHORIZATION": "Bearer some-token"}),
    ("/api/v1/trades/", {"HTTP_AUTHORIZATION": "Bearer some-token"}),
]:
    start = time.monotonic()
    response = client.get(url, **headers)
    answers[url] = {
        "status": response.status_code,
        "seconds": time.monotonic() - start,
        "body": response.content.decode(),
        "retry_after": response.get("Retry-After"),
    }
json.dump(answers, sys.stdout)
"""


def test_with_postgresql_and_redis_stopped_the_probes_answer_fast_and_never_500() -> None:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "atb_site.settings.test",
        "DATABASE_URL": f"postgres://postgres:{SECRET}@127.0.0.1:{dead_port()}/gone",
        "REDIS_URL": f"redis://127.0.0.1:{dead_port()}/0",
        "DJANGO_ALLOWED_HOSTS": "testserver",
        "LOG_LEVEL": "CRITICAL",
        "METRICS_TOKEN": "scrape-0utage",  # checked without the database
    }
    run = subprocess.run(  # noqa: S603
        [sys.executable, "-c", SCRIPT],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    answers = json.loads(run.stdout)

    for url, answer in answers.items():
        assert answer["seconds"] < 2.0, f"{url} took {answer['seconds']:.2f} s"
        assert SECRET not in answer["body"], url

    assert answers["/health/live"]["status"] == 200
    assert json.loads(answers["/health/live"]["body"]) == {"status": "ok"}

    ready = answers["/health/ready"]
    assert ready["status"] == 503
    body = json.loads(ready["body"])
    assert body["status"] == "unavailable"
    assert body["failed"] == ["postgres"]  # Redis down alone is degraded, not a failure
    assert body["checks"]["redis"]["status"] == "degraded"
    assert body["checks"]["beat"]["status"] == "unknown"
    assert body["checks"]["backup"]["status"] == "unknown"

    metrics = answers["/metrics"]
    assert metrics["status"] == 200
    samples = parse(metrics["body"]).samples
    assert samples[("atb_database_up", ())] == 0
    assert samples[("atb_redis_up", ())] == 0
    assert samples[("atb_ready", ())] == 0
    assert not [name for name, _ in samples if name.startswith("atb_http_requests_total")]

    for url in ("/api/v1/database/health", "/api/v1/trades/"):
        assert answers[url]["status"] == 503, answers[url]
        assert answers[url]["retry_after"] == "5"
        assert json.loads(answers[url]["body"]) == {
            "error": "unavailable",
            "detail": "The database could not answer (unreachable, busy or timed out); "
            "try again shortly.",
        }
