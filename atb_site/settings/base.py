"""Settings for every environment, driven by environment variables (see .env.example).

Development: DJANGO_DEBUG=true (make run sets it). Production: DJANGO_DEBUG unset or false, in
which case DJANGO_SECRET_KEY is required and the secure-transport settings are on, so that
`python manage.py check --deploy --fail-level WARNING` passes. test.py overrides for speed.
"""

from pathlib import Path
from urllib.parse import quote

import environ
from django.core.exceptions import ImproperlyConfigured

from atb_site.db import timeouts
from atb_site.logs import log_format, logging_config
from atb_site.settings.replicas import replica_databases

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
if (BASE_DIR / ".env").is_file():
    env.read_env(str(BASE_DIR / ".env"))

DEBUG = env.bool("DJANGO_DEBUG", default=False)

SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY is not set. Production (DJANGO_DEBUG unset or false) refuses to "
            'start without it. Generate one with: python -c "import secrets; '
            'print(secrets.token_urlsafe(50))"  (or set DJANGO_DEBUG=true for local development).'
        )
    SECRET_KEY = "django-insecure-local-development-key-never-used-in-production"  # noqa: S105

# Railway publishes the service's domain; its health checker calls from healthcheck.railway.app.
RAILWAY_PUBLIC_DOMAIN = env.str("RAILWAY_PUBLIC_DOMAIN", default="")
ALLOWED_HOSTS = env.list(
    "DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"] if DEBUG else []
)
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])
if RAILWAY_PUBLIC_DOMAIN:
    ALLOWED_HOSTS += [RAILWAY_PUBLIC_DOMAIN, "healthcheck.railway.app"]
    CSRF_TRUSTED_ORIGINS += [f"https://{RAILWAY_PUBLIC_DOMAIN}"]

INSTALLED_APPS = [
    "atb_site.apps.AdminConfig",  # django.contrib.admin, the site of atb_site.admin_tools
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "django_celery_beat",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    # Ours. trading is the base: the others may import it, it imports none of them.
    "trading",
    "audit",
    "botconfig",
    "analytics",
    "alerts",  # above audit: reads its events (triggers), imported by analytics' schedule only
    "benchmarks",  # a leaf: imports the others, imported by none
    "importers",  # a leaf too: legacy bots and freqtrade databases in
]

MIDDLEWARE = [
    # First, so that it times the whole stack (audit/monitoring/middleware.py).
    "audit.monitoring.middleware.MonitoringMiddleware",
    # A web request's deadline for waiting on PostgreSQL (atb_site/db/deadline.py).
    "atb_site.db.deadline.DatabaseDeadlineMiddleware",
    # An /api/ body sent chunked, read under API_MAX_BODY_BYTES (trading/api/parsers.py).
    "trading.api.parsers.ChunkedBodyMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "atb_site.urls"
WSGI_APPLICATION = "atb_site.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]


# --- PostgreSQL --------------------------------------------------------------------------------
def _database_url() -> str:
    url = env.str("DATABASE_URL", default="")
    if url:
        return url
    host = env.str("PGHOST", default="")
    if host:
        # Railway's PostgreSQL plugin exposes PG* variables; build the URL from them.
        user = quote(env.str("PGUSER", default="postgres"), safe="")
        password = quote(env.str("PGPASSWORD", default=""), safe="")
        auth = f"{user}:{password}" if password else user
        port = env.int("PGPORT", default=5432)
        name = quote(env.str("PGDATABASE", default="railway"), safe="")
        return f"postgres://{auth}@{host}:{port}/{name}"
    raise ImproperlyConfigured(
        "No database configured: set DATABASE_URL (or Railway's PGHOST, PGPORT, PGUSER, "
        "PGPASSWORD, PGDATABASE). `make run` and `make test` start an embedded PostgreSQL "
        "and set DATABASE_URL for you."
    )


_db = env.db_url_config(_database_url())
# Django's PostgreSQL backend, plus introspection of our schemas (see atb_site/db/).
_db["ENGINE"] = "atb_site.db"
_db["CONN_HEALTH_CHECKS"] = True
_db["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
_db.setdefault("OPTIONS", {})
# Django turns psycopg's prepared statements off; its own cursors bind on the client and never
# prepare. atb_site.db's prepared cursors (the API's hot statements) do, from the 5th run on a
# connection, as psycopg would by default.
_db["OPTIONS"]["prepare_threshold"] = 5
if env.bool("DATABASE_POOL", default=False):
    # Django's psycopg pool: one pool per process; persistent connections must be off with it.
    _db["CONN_MAX_AGE"] = 0
    _db["OPTIONS"]["pool"] = {
        "min_size": env.int("DATABASE_POOL_MIN_SIZE", default=1),
        "max_size": env.int("DATABASE_POOL_MAX_SIZE", default=10),
        # Seconds a request waits for a pooled connection: a pool that cannot connect gives up as
        # a connection attempt does (its default of 30 s outlasts gunicorn's worker timeout).
        "timeout": env.int("DATABASE_CONNECT_TIMEOUT", default=5),
    }
# PostgreSQL's JIT compiler for this service's sessions (atb_site/db/session.py): off unless set.
DATABASE_JIT = env.bool("DATABASE_JIT", default=False)
# --- PgBouncer in transaction mode (atb_site/db/pgbouncer.py) ----------------------------------
# DATABASE_URL then names the pooler, and each kind of process connects to its kind's database on
# it (<name>__web ...), whose connect_query sets that kind's timeouts. DATABASE_DIRECT_URL names
# the server itself, for what outlives a transaction: the migrate and optimize locks, VACUUM,
# pg_dump and pg_restore.
DATABASE_PGBOUNCER = env.bool("DATABASE_PGBOUNCER", default=False)
DATABASE_DIRECT_URL = env.str("DATABASE_DIRECT_URL", default="")
if DATABASE_PGBOUNCER:
    if not DATABASE_DIRECT_URL:
        raise ImproperlyConfigured(
            "DATABASE_PGBOUNCER=true needs DATABASE_DIRECT_URL, the PostgreSQL server's own URL "
            "(locks that outlive a transaction, VACUUM and backups cannot go through PgBouncer)."
        )
    # No server-side cursor outlives its transaction's server connection, and PgBouncer before
    # 1.21 (Debian 12 has 1.18) cannot keep a prepared statement: atb_site.db's prepared cursors
    # then bind on the server without preparing.
    _db["DISABLE_SERVER_SIDE_CURSORS"] = True
    _db["OPTIONS"]["prepare_threshold"] = None
DATABASES = {"default": _db}
# The PostgreSQL schemas our apps' tables live in (SCHEMA.md).
DATABASE_APP_SCHEMAS = ("trading", "audit", "config", "analytics", "alerts")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: the Celery broker and the cache ----------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:6379/0")
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="atb"),
        "TIMEOUT": 300,
        # A Redis that hangs must fail fast, so the PostgreSQL fallbacks get their turn.
        "OPTIONS": {
            "socket_connect_timeout": env.float("REDIS_CONNECT_TIMEOUT", default=0.5),
            "socket_timeout": env.float("REDIS_SOCKET_TIMEOUT", default=0.5),
        },
    }
}
# The circuit breaker every Redis call goes through (trading/redis_breaker.py): after this many
# failures in a row a process skips Redis for the cool-down, then tries it once again.
REDIS_BREAKER_FAILURES = env.int("REDIS_BREAKER_FAILURES", default=3)
REDIS_BREAKER_COOLDOWN_SECONDS = env.float("REDIS_BREAKER_COOLDOWN_SECONDS", default=5.0)

CELERY_BROKER_URL = REDIS_URL
CELERY_TIMEZONE = "UTC"
CELERY_ENABLE_UTC = True
CELERY_TASK_ACKS_LATE = True  # a task whose worker dies mid-run is delivered again
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# With Redis, a task taken by a worker that dies before acknowledging it (acks_late) goes back to
# the queue once it has been unacknowledged this long: longer than any task runs, or a running
# task would be handed to a second worker.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=3600)
}
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)

# --- Time, language ----------------------------------------------------------------------------
USE_TZ = True
TIME_ZONE = "UTC"
LANGUAGE_CODE = "en-us"
USE_I18N = True
# English dates and times as the dashboard writes them ("2026-12-07 23:05:09 UTC"): one format
# everywhere (atb_site/formats/en/formats.py; docs/DESIGN.md, "Numbers a desk can read").
FORMAT_MODULE_PATH = ["atb_site.formats"]

# --- Auth --------------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "admin:login"
# Sessions in PostgreSQL as Django keeps them, read by one plain statement (atb_site/sessions.py).
SESSION_ENGINE = "atb_site.sessions"

# --- Static files (whitenoise) -----------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# --- Security: on whenever DEBUG is off --------------------------------------------------------
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
if not DEBUG:
    # TLS ends at the platform's proxy (Railway), which says so in X-Forwarded-Proto.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
    SECURE_REDIRECT_EXEMPT = [r"^health/"]  # platform probes call over plain HTTP
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=60 * 60 * 24 * 365)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
    SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=True)

# --- Logging -----------------------------------------------------------------------------------
# One JSON object per line in production, plain text in debug; LOG_FORMAT=json|plain chooses.
# gunicorn (gunicorn.conf.py) and Celery (atb_site/celery.py) write through the same config.
LOG_FORMAT = log_format(debug=DEBUG, requested=env.str("LOG_FORMAT", default=""))
LOGGING = logging_config(fmt=LOG_FORMAT, level=env.str("LOG_LEVEL", default="INFO"))
LOGGING_CONFIG = "atb_site.logs.configure"  # also turns Python warnings into log lines

# --- The JSON API (API.md) ------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "trading.api.auth.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": ["trading.api.parsers.DecimalJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_THROTTLE_CLASSES": ["trading.api.throttling.TokenRateThrottle"],
    "EXCEPTION_HANDLER": "trading.api.errors.exception_handler",
    "UNAUTHENTICATED_USER": None,
}
# Requests per token per window ("6000/min"), counted in Redis (trading/api/throttling.py).
API_THROTTLE_RATE = env.str("API_THROTTLE_RATE", default="6000/min")
# Largest request body the API reads (50,000 candles fit in about 8 MB); larger gets 413.
API_MAX_BODY_BYTES = env.int("API_MAX_BODY_BYTES", default=16 * 1024 * 1024)
SPECTACULAR_SETTINGS = {
    "TITLE": "Trading bots API",
    "DESCRIPTION": "Bots write their trades, orders, positions, signals, balances, events and "
    "candles; the dashboard reads them. See API.md.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAdminUser"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # One component per enumeration shared by several serializers (inputs and outputs).
    "ENUM_NAME_OVERRIDES": {
        "BotStatusEnum": "trading.models.BotStatus.values",
        "TradeStatusEnum": "trading.models.TradeStatus.values",
        "PositionStatusEnum": "trading.models.PositionStatus.values",
        "OrderStatusEnum": "trading.models.OrderStatus.values",
        "TradeSideEnum": "trading.models.TradeSide.values",
        "OrderSideEnum": "trading.models.OrderSide.values",
        "TradeSourceEnum": "trading.models.TradeSource.values",
        "AcknowledgedEventSourceEnum": "alerts.api.SOURCES",
        "BotModeEnum": "trading.models.BotMode.values",
        "RunModeEnum": "trading.models.RunMode.values",
        "RunOpenModeEnum": "trading.api.runs.OPENED_MODES",
        "RunStatusEnum": "trading.models.RunStatus.values",
    },
}

# --- This project ------------------------------------------------------------------------------
# A bot whose last heartbeat is older than this is marked stale (admin, dashboard, risk checks).
BOT_HEARTBEAT_STALE_SECONDS = env.int("BOT_HEARTBEAT_STALE_SECONDS", default=300)

# --- Alerts (alerts/; docs/DESIGN.md "Alerts") ---------------------------------------------------
ALERTS_HTTP_TIMEOUT = env.float("ALERTS_HTTP_TIMEOUT", default=5.0)  # seconds per send
ALERTS_FAILING_AFTER = env.int("ALERTS_FAILING_AFTER", default=5)  # failures in a row
ALERTS_BACKOFF_SECONDS = env.float("ALERTS_BACKOFF_SECONDS", default=2.0)  # doubled each retry
ALERTS_BACKOFF_MAX_SECONDS = env.float("ALERTS_BACKOFF_MAX_SECONDS", default=600.0)
ALERTS_TELEGRAM_API_URL = env.str("ALERTS_TELEGRAM_API_URL", default="https://api.telegram.org")
ALERTS_OUTBOX_MAX_AGE_SECONDS = env.int("ALERTS_OUTBOX_MAX_AGE_SECONDS", default=300)
# A Celery task failing this many times in a row writes a task_failing system event.
TASK_FAILING_AFTER = env.int("TASK_FAILING_AFTER", default=3)
# E-mail channels and reports: Django's SMTP backend, configured from the environment.
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="alerts@localhost")

# --- Backups (audit/backups/, `manage.py db_backup`, the hourly task audit.db_backup) -----------
# Where dumps go. Development: .data/backups in the checkout. Production has no default: point it
# at persistent storage (a mounted volume); unset, every backup fails, recorded and loud.
BACKUP_DIR = env.str("BACKUP_DIR", default=str(BASE_DIR / ".data" / "backups") if DEBUG else "")
# The bin folder of pg_dump/pg_restore. Unset: the embedded distribution's, then PATH, then
# /usr/lib/postgresql/*/bin, whichever has a major version at least the server's.
PG_BIN_DIR = env.str("PG_BIN_DIR", default="")
# Grandfather-father-son: the newest backup of each of the last N hours, days, ISO weeks, months.
BACKUP_KEEP_HOURLY = env.int("BACKUP_KEEP_HOURLY", default=24)
BACKUP_KEEP_DAILY = env.int("BACKUP_KEEP_DAILY", default=7)
BACKUP_KEEP_WEEKLY = env.int("BACKUP_KEEP_WEEKLY", default=4)
BACKUP_KEEP_MONTHLY = env.int("BACKUP_KEEP_MONTHLY", default=12)

# --- Market data (trading/services/partitions.py) ----------------------------------------------
# Whole months of candles that ended more than this many days ago are dropped by the hourly
# maintenance task (a system event says which). Unset: every candle is kept.
MARKET_DATA_RETENTION_DAYS: int | None = env.int("MARKET_DATA_RETENTION_DAYS", default=None)
if MARKET_DATA_RETENTION_DAYS is not None and MARKET_DATA_RETENTION_DAYS < 1:
    raise ImproperlyConfigured(
        f"MARKET_DATA_RETENTION_DAYS must be a number of days of at least 1 (or unset: keep "
        f"every candle), not {MARKET_DATA_RETENTION_DAYS}"
    )

# --- Probes and metrics (audit/monitoring/views.py and its neighbours) ------------------------
# A PostgreSQL that does not answer must fail a connection attempt fast (libpq waits forever by
# default): requests then get 503 (MonitoringMiddleware) instead of hanging.
DATABASES["default"]["OPTIONS"].setdefault(
    "connect_timeout", env.int("DATABASE_CONNECT_TIMEOUT", default=5)
)
# TCP keepalives, so that a connection to a server that vanished (host down, network gone) is
# noticed within about a minute rather than the kernel's two hours, and unacknowledged writes are
# given up after DATABASE_TCP_USER_TIMEOUT seconds. DATABASE_URL's query string may override each
# (`?keepalives_idle=60`). A server that is frozen but whose kernel still ACKs is caught by
# neither: that is what DATABASE_REQUEST_DEADLINE is for (atb_site/db/deadline.py).
for _name, _value in {
    "keepalives": 1,
    "keepalives_idle": env.int("DATABASE_KEEPALIVES_IDLE", default=30),
    "keepalives_interval": 10,
    "keepalives_count": 3,
    "tcp_user_timeout": env.int("DATABASE_TCP_USER_TIMEOUT", default=30) * 1000,
}.items():
    DATABASES["default"]["OPTIONS"].setdefault(_name, _value)


def _seconds(name: str, default: float) -> float:
    try:
        return timeouts.seconds(name, default)
    except timeouts.TimeoutSettingError as exc:
        raise ImproperlyConfigured(str(exc)) from None


# PostgreSQL's statement, lock and idle-in-transaction timeouts for each kind of process, in
# seconds, 0 for none (atb_site/db/session.py): DATABASE_<TIMEOUT>_<KIND>, read and defaulted in
# atb_site/db/timeouts.py, which the PgBouncer configuration reads too.
try:
    DATABASE_SESSION_TIMEOUTS = timeouts.from_environment()
except timeouts.TimeoutSettingError as exc:
    raise ImproperlyConfigured(str(exc)) from None
# Seconds a web request may wait on PostgreSQL before its connection is dropped and it answers
# 503 (atb_site/db/deadline.py); 0: no deadline. Half of gunicorn's worker timeout by default, and
# gunicorn refuses to start with one that is not shorter than its timeout.
DATABASE_REQUEST_DEADLINE = _seconds(
    "DATABASE_REQUEST_DEADLINE", env.int("GUNICORN_TIMEOUT", default=30) / 2
)
# Request, query and Celery task counters, buffered per process and added into Redis every
# MONITORING_FLUSH_SECONDS (0: at the end of every request).
MONITORING_ENABLED = env.bool("MONITORING_ENABLED", default=True)
MONITORING_FLUSH_SECONDS = env.float("MONITORING_FLUSH_SECONDS", default=1.0)
# /metrics wants `Authorization: Bearer <METRICS_TOKEN>` (a scraper's secret, checked without the
# database), a staff API token or a staff session; empty, only the staff ways.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
# /health/ready: PostgreSQL's connect and statement timeout (seconds); beat's last run and the
# last verified backup older than these make a warning (still 200).
HEALTH_DATABASE_TIMEOUT = env.int("HEALTH_DATABASE_TIMEOUT", default=2)
HEALTH_BEAT_MAX_AGE_SECONDS = env.int("HEALTH_BEAT_MAX_AGE_SECONDS", default=600)
HEALTH_BACKUP_MAX_AGE_SECONDS = env.int("HEALTH_BACKUP_MAX_AGE_SECONDS", default=2 * 3600)
if not DEBUG:
    # Prometheus scrapes over the private network, in plain HTTP, like the platform's probes.
    SECURE_REDIRECT_EXEMPT = [*SECURE_REDIRECT_EXEMPT, r"^metrics$"]

# --- Read replicas for staff analytics (atb_site/db/replicas.py, atb_site/settings/replicas.py) -
# DATABASE_REPLICA_URL: comma-separated URLs; staff's analytics reads go to a replica whose
# replay lag is at most DATABASE_REPLICA_MAX_LAG_SECONDS, everything else to DATABASE_URL.
DATABASE_REPLICA_MAX_LAG_SECONDS = _seconds("DATABASE_REPLICA_MAX_LAG_SECONDS", 5.0)
DATABASES.update(
    replica_databases(
        env.list("DATABASE_REPLICA_URL", default=[]),
        primary=DATABASES["default"],
        connect_timeout=env.int("DATABASE_REPLICA_CONNECT_TIMEOUT", default=2),
        conn_max_age=env.int("DATABASE_CONN_MAX_AGE", default=60),
    )
)
DATABASE_REPLICAS = tuple(alias for alias in DATABASES if alias != "default")
DATABASE_ROUTERS = ["atb_site.db.replicas.ReplicaRouter"]

# The prediction cache (trading.predictions): how long a model's predictions are kept after
# their target time, in seconds, per model name (a JSON object), and for every other model.
PREDICTION_TTL_SECONDS: dict[str, int] = env.json("PREDICTION_TTL_SECONDS", default={})
PREDICTION_TTL_DEFAULT_SECONDS = env.int("PREDICTION_TTL_DEFAULT_SECONDS", default=30 * 86400)
