"""`make run`: migrate, schedule the periodic tasks, seed demo data on the first start, ensure an
admin, run web + worker + beat.

Runs inside tools/devservices.py, so DATABASE_URL and REDIS_URL are set. Ctrl-C stops all three
processes (and devservices then stops the embedded servers it started).
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / ".data"
PY = sys.executable
CELERY = str(Path(PY).parent / "celery")

ENSURE_ADMIN = """
import os, secrets
from django.contrib.auth import get_user_model
User = get_user_model()
name = os.environ.get("DJANGO_SUPERUSER_USERNAME")
if name:
    if not User.objects.filter(username=name).exists():
        User.objects.create_superuser(
            name, os.environ.get("DJANGO_SUPERUSER_EMAIL", ""),
            os.environ["DJANGO_SUPERUSER_PASSWORD"],
        )
        print(f"created superuser {name!r} from DJANGO_SUPERUSER_*")
elif not User.objects.filter(is_superuser=True).exists():
    password = secrets.token_urlsafe(12)
    User.objects.create_superuser("admin", "admin@localhost", password)
    path = os.environ["ATB_CREDENTIALS_FILE"]
    with open(path, "w") as handle:
        handle.write(f"username: admin\\npassword: {password}\\n")
    os.chmod(path, 0o600)
    print(f"created superuser 'admin' with password {password!r} (also in {path})")
"""


def manage(*args: str) -> None:
    subprocess.run([PY, "manage.py", *args], cwd=ROOT, check=True)


def first_start_marker() -> Path:
    # One marker per database, so pointing DATABASE_URL elsewhere seeds that database too.
    digest = hashlib.sha256(os.environ["DATABASE_URL"].encode()).hexdigest()[:12]
    return DATA / f"seeded-{digest}"


def main() -> int:
    DATA.mkdir(exist_ok=True)
    os.environ.setdefault("ATB_CREDENTIALS_FILE", str(DATA / "admin-credentials.txt"))
    manage("migrate", "--noinput")
    manage("setup_periodic_tasks")
    marker = first_start_marker()
    if not marker.exists():
        manage("seed_demo")
        marker.touch()
    manage("shell", "-c", ENSURE_ADMIN)
    credentials = Path(os.environ["ATB_CREDENTIALS_FILE"])
    if credentials.exists() and not os.environ.get("DJANGO_SUPERUSER_USERNAME"):
        print(f"admin credentials: {credentials}")

    port = os.environ.get("PORT", "8000")
    commands = {
        "web": [PY, "manage.py", "runserver", f"127.0.0.1:{port}"],
        "worker": [CELERY, "-A", "atb_site", "worker", "-l", "info", "--concurrency", "2"],
        "beat": [
            CELERY,
            "-A",
            "atb_site",
            "beat",
            "-l",
            "info",
            "--pidfile=",
            "--scheduler",
            "django_celery_beat.schedulers:DatabaseScheduler",
        ],
    }
    processes = {name: subprocess.Popen(cmd, cwd=ROOT) for name, cmd in commands.items()}
    print(f"web on http://127.0.0.1:{port}/admin/ with a Celery worker and beat; Ctrl-C stops all")

    def stop(_signum: int = 0, _frame: object = None) -> None:
        for process in processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        while all(p.poll() is None for p in processes.values()):
            time.sleep(0.5)
    finally:
        stop()
        for process in processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
    failed = [name for name, p in processes.items() if p.returncode not in (0, -signal.SIGTERM)]
    if failed:
        print(f"stopped because {', '.join(failed)} exited", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
