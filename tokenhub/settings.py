"""Tokenhub settings, read from the environment (django-environ).

Every value that matters in production comes from the environment and is parsed strictly: a typo in a
boolean or an integer fails at import, not at the first request. Embedded defaults (SQLite, a file-system
broker) exist only so `make dev` works on a machine with no PostgreSQL or Redis; `tokenhub.runtime`
decides and reports which was chosen.
"""

import importlib.util
from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from tokenhub import runtime
from tokenhub.logs import logging_config
from tokenhub.sentry import sentry_init

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_bool(name: str, *, default: bool) -> bool:
    """Like env.bool, but a value that is neither true nor false is an error, not a silent False."""
    raw = env.str(name, default=str(default)).strip().lower()
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean (use true/false, 1/0, yes/no, on/off).")


DEBUG = env_bool("DEBUG", default=False)

SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    SECRET_KEY = "django-insecure-dev-only-key-never-used-with-debug-off"  # noqa: S105

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "drf_spectacular",
    "django_htmx",
    "axes",
    "merchants",
    "wallets",
    "agents",
    "widgets",
    "analytics",
]
if importlib.util.find_spec("devtools") is not None:
    INSTALLED_APPS.append("devtools")  # the Qwen simulator's command; absent from production installs

MIDDLEWARE = [
    "tokenhub.logs.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # Accept-Language, or the language cookie the switch sets; a signed-in user's own choice wins below.
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "merchants.middleware.CurrentMerchantMiddleware",
    # The user's saved language and the store's time zone, for every page after log-in.
    "merchants.middleware.UserLocaleMiddleware",
    # Last, as django-axes asks: it inspects the outcome of authentication.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "tokenhub.urls"
WSGI_APPLICATION = "tokenhub.wsgi.application"
ASGI_APPLICATION = "tokenhub.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "wallets.context_processors.balance_alert",
                "merchants.context_processors.current_merchant",
                "tokenhub.context_processors.simulated_answers",
                "agents.context_processors.support_inbox",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------------
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Parameters travel apart from the SQL (psycopg's server-side binding): quoting the ~60 values of a
    # run's one-statement create or settle into the text cost more CPU than the rest of the statement.
    DATABASES["default"].setdefault("OPTIONS", {})["server_side_binding"] = env_bool(
        "DATABASE_SERVER_SIDE_BINDING", default=True
    )
    # A statement a connection has run this many times is prepared on the server: planning the run's
    # create, claim and settle statements (three tables each, the ledger's guards) cost PostgreSQL more than
    # running them. 0 turns it off, for a pooler that cannot keep prepared statements (PgBouncer < 1.21 in
    # transaction mode).
    _prepare_threshold = env.int("DATABASE_PREPARE_THRESHOLD", default=5)
    DATABASES["default"]["OPTIONS"]["prepare_threshold"] = _prepare_threshold or None
    # Short transactions only; a bounded pool keeps a 100-thread worker under max_connections.
    _pool_size = env.int("DATABASE_POOL_MAX_SIZE", default=0)
    if _pool_size:
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": 1,
            "max_size": _pool_size,
            "timeout": env.float("DATABASE_POOL_TIMEOUT", default=10.0),
        }
    else:
        DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
        DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
elif DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # SQLite is the embedded dev default: WAL and a busy timeout let web and worker share it.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "init_command": "PRAGMA journal_mode=WAL;", "transaction_mode": "IMMEDIATE"}
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis and Celery -----------------------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
_broker_choice = runtime.choose_broker(
    broker_url=env.str("CELERY_BROKER_URL", default=""),
    redis_url=REDIS_URL,
    base_dir=BASE_DIR,
    embedded=env_bool("TOKENHUB_EMBEDDED", default=False),
)
CELERY_BROKER_URL = _broker_choice.url
CELERY_BROKER_TRANSPORT_OPTIONS = _broker_choice.transport_options
# kombu's Redis transport with one client per channel (tokenhub/broker.py); other brokers as kombu has them.
CELERY_BROKER_TRANSPORT = runtime.broker_transport(CELERY_BROKER_URL)
# Redis for rate limits and streams; empty when no Redis is reachable (dev embedded mode).
REDIS_URL = _broker_choice.redis_url
TOKENHUB_BROKER_DESCRIPTION = _broker_choice.description

CELERY_TASK_ACKS_LATE = True
# A task whose worker died is handed to the sweeper, not re-queued forever (celery discussion #8969).
CELERY_TASK_REJECT_ON_WORKER_LOST = False
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=120)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=150)
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_WORKER_POOL = env.str("CELERY_WORKER_POOL", default="threads")
CELERY_WORKER_CONCURRENCY = env.int("CELERY_WORKER_CONCURRENCY", default=100)
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE = {
    "wallets-expire-holds": {"task": "wallets.tasks.holds_expire", "schedule": timedelta(seconds=60)},
    "wallets-expire-promotional-credits": {
        "task": "wallets.tasks.promos_expire",
        "schedule": timedelta(seconds=60),
    },
    # Workers also take turns at recovery from their heartbeat thread, so runs recover with beat down.
    "agents-recover-runs": {
        "task": "agents.tasks.runs_recover",
        "schedule": timedelta(seconds=env.float("RUN_RECOVERY_INTERVAL_SECONDS", default=5.0)),
    },
    # Auto-recharge attempts whose task never ran (broker down) are sent again (docs/payments.md).
    "wallets-resume-recharges": {"task": "wallets.tasks.recharges_resume", "schedule": timedelta(minutes=1)},
    "wallets-expire-adjustment-requests": {
        "task": "wallets.tasks.adjustment_requests_expire",
        "schedule": timedelta(minutes=10),
    },
    "merchants-sweep-emails": {"task": "merchants.tasks.emails_sweep", "schedule": timedelta(minutes=5)},
    # The operator's analytics read a fact table rebuilt from the ledger (docs/analytics.md).
    "analytics-refresh-economics": {
        "task": "analytics.economics_refresh",
        "schedule": timedelta(minutes=env.float("ANALYTICS_REFRESH_MINUTES", default=15.0)),
    },
}
if CELERY_TASK_SOFT_TIME_LIMIT >= CELERY_TASK_TIME_LIMIT:
    raise ImproperlyConfigured("CELERY_TASK_SOFT_TIME_LIMIT must be below CELERY_TASK_TIME_LIMIT.")

CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
        if REDIS_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

# --- Qwen endpoint --------------------------------------------------------------------------------
QWEN_API_KEY = env.str("QWEN_API_KEY", default="")
QWEN_SIMULATOR_PORT = env.int("QWEN_SIMULATOR_PORT", default=8765)
# Without a key the platform talks to its own simulator, never to the real endpoint.
QWEN_BASE_URL = env.str(
    "QWEN_BASE_URL",
    default=(
        "https://dashscope-intl.aliyuncs.com/compatible-mode/v1"
        if QWEN_API_KEY
        else f"http://127.0.0.1:{QWEN_SIMULATOR_PORT}/v1"
    ),
)
# The dashboard says "simulated answers" while the tools talk to the local simulator: `true`/`false` to say
# so outright (make dev sets it), empty to decide from QWEN_BASE_URL (a loopback host means the simulator).
_qwen_simulated = env.str("QWEN_SIMULATED", default="").strip().lower()
if _qwen_simulated not in ("", "true", "false"):
    raise ImproperlyConfigured("QWEN_SIMULATED must be true, false or empty.")
QWEN_SIMULATED: bool | None = None if not _qwen_simulated else _qwen_simulated == "true"
# Per read (connect, each chunk), and the total a whole call may take, whatever the endpoint sends.
QWEN_TIMEOUT_SECONDS = env.float("QWEN_TIMEOUT_SECONDS", default=30.0)
QWEN_CALL_DEADLINE_SECONDS = env.float("QWEN_CALL_DEADLINE_SECONDS", default=60.0)
QWEN_MAX_RETRIES = env.int("QWEN_MAX_RETRIES", default=4)
QWEN_RATE_LIMITS = env.json("QWEN_RATE_LIMITS", default={})
QWEN_RATE_LIMIT_MAX_WAIT_SECONDS = env.float("QWEN_RATE_LIMIT_MAX_WAIT_SECONDS", default=5.0)
# Celery retries of 429/5xx/timeouts: exponential from the base, capped, with jitter.
QWEN_RETRY_BACKOFF_SECONDS = env.float("QWEN_RETRY_BACKOFF_SECONDS", default=2.0)
QWEN_RETRY_BACKOFF_MAX_SECONDS = env.float(
    "QWEN_RETRY_BACKOFF_MAX_SECONDS", default=60.0
)  # {"qwen-plus": {"rpm": 15000, "tpm": 5000000}}

# --- Stripe ---------------------------------------------------------------------------------------
STRIPE_SECRET_KEY = env.str("STRIPE_SECRET_KEY", default="")
STRIPE_WEBHOOK_SECRET = env.str("STRIPE_WEBHOOK_SECRET", default="")
STRIPE_API_BASE = env.str("STRIPE_API_BASE", default="https://api.stripe.com")

# --- Ledger ---------------------------------------------------------------------------------------
# A hold lives a little longer than the slowest run can, so the sweeper always fails the run first.
HOLD_TIMEOUT = timedelta(seconds=env.int("HOLD_TIMEOUT_SECONDS", default=3600))
# Promotional credits a store created by sign-up receives once: about ten listings' holds, for two weeks.
TRIAL_TOKENS = env.int("TRIAL_TOKENS", default=50_000)
TRIAL_DAYS = env.int("TRIAL_DAYS", default=14)
if TRIAL_TOKENS < 0 or TRIAL_DAYS < 1:
    raise ImproperlyConfigured("TRIAL_TOKENS must be 0 or more and TRIAL_DAYS at least 1.")
# From a run's first claim to its end, retries and recoveries included (docs/architecture.md, "Recovery").
RUN_DEADLINE = timedelta(seconds=env.int("RUN_DEADLINE_SECONDS", default=110))
HOLD_EXPIRY_LOOKBACK = timedelta(seconds=env.int("HOLD_EXPIRY_LOOKBACK_SECONDS", default=86400))
# A queued run not claimed this long after it was enqueued (or due) is enqueued again: its message is lost.
RUN_REQUEUE_AFTER = timedelta(seconds=env.int("RUN_REQUEUE_AFTER_SECONDS", default=30))
# A run no worker started within this is failed as not_started (its hold released).
RUN_QUEUE_TIMEOUT = timedelta(seconds=env.int("RUN_QUEUE_TIMEOUT_SECONDS", default=1800))
# Leases: a worker renews its runs' leases every third of this; a lapsed lease means the worker is gone.
RUN_LEASE_SECONDS = env.int("RUN_LEASE_SECONDS", default=30)
RUN_MAX_RECOVERIES = env.int("RUN_MAX_RECOVERIES", default=2)
RUN_RECOVERY_INTERVAL_SECONDS = env.float("RUN_RECOVERY_INTERVAL_SECONDS", default=5.0)
# SIGTERM: calls in flight may finish for this long, then their runs are handed back to the queue.
RUN_SHUTDOWN_GRACE_SECONDS = env.float("RUN_SHUTDOWN_GRACE_SECONDS", default=20.0)
# Worker threads that may touch the database at once; the rest wait on the model without a connection.
RUN_DB_CONCURRENCY = env.int("RUN_DB_CONCURRENCY", default=10)
# The customer-service bot streams its reply into Redis for the dashboard (server-sent events).
RUN_STREAM_REPLIES = env_bool("RUN_STREAM_REPLIES", default=True)
ADJUSTMENT_APPROVAL_THRESHOLD = env.int("ADJUSTMENT_APPROVAL_THRESHOLD", default=1_000_000)
# The threshold applies to the sum of one staff member's adjustments to one wallet over this window.
ADJUSTMENT_APPROVAL_WINDOW = timedelta(seconds=env.int("ADJUSTMENT_APPROVAL_WINDOW_SECONDS", default=86400))
# A request nobody decided within this expires (beat sweeps it); its requester may ask again.
ADJUSTMENT_REQUEST_EXPIRY = timedelta(seconds=env.int("ADJUSTMENT_REQUEST_EXPIRY_SECONDS", default=7 * 86400))
LOW_BALANCE_THRESHOLD = env.int("LOW_BALANCE_THRESHOLD", default=10_000)
if RUN_DEADLINE >= HOLD_TIMEOUT:
    raise ImproperlyConfigured("RUN_DEADLINE_SECONDS must be below HOLD_TIMEOUT_SECONDS.")
# A run must end (queue wait, then its deadline, then the settling margin) before its hold times out.
if RUN_QUEUE_TIMEOUT + RUN_DEADLINE + timedelta(seconds=60) >= HOLD_TIMEOUT:
    raise ImproperlyConfigured(
        "RUN_QUEUE_TIMEOUT_SECONDS + RUN_DEADLINE_SECONDS + 60 must be below HOLD_TIMEOUT_SECONDS."
    )
if RUN_DEADLINE.total_seconds() <= QWEN_CALL_DEADLINE_SECONDS:
    raise ImproperlyConfigured("QWEN_CALL_DEADLINE_SECONDS must be below RUN_DEADLINE_SECONDS.")
if RUN_LEASE_SECONDS < 3:
    raise ImproperlyConfigured("RUN_LEASE_SECONDS must be at least 3 (it is renewed every third of it).")

# --- Auth -----------------------------------------------------------------------------------------
AUTH_USER_MODEL = "merchants.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
# One lockout policy for the dashboard and admin. It locks the account being guessed (from any address)
# and the address-and-account pair, never a whole address: wrong passwords for one account leave every
# other account able to log in. Both forms post the email as `username` (django-axes would otherwise look
# for `email`, the user model's USERNAME_FIELD, and record every failure without one).
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = ["username", ["ip_address", "username"]]
AXES_USERNAME_FORM_FIELD = "username"
AXES_USERNAME_CALLABLE = "merchants.lockout.username_of"
AXES_LOCKOUT_CALLABLE = "merchants.lockout.lockout_response"
AXES_RESET_ON_SUCCESS = True
AXES_HTTP_RESPONSE_CODE = 429
# Links in emails expire: a password reset (Django's token, void once the password changes), an invitation
# (single use), an email confirmation.
PASSWORD_RESET_TIMEOUT = env.int("PASSWORD_RESET_TIMEOUT_SECONDS", default=3 * 3600)
INVITATION_EXPIRY = timedelta(seconds=env.int("INVITATION_EXPIRY_SECONDS", default=7 * 86400))
EMAIL_CONFIRMATION_EXPIRY = timedelta(seconds=env.int("EMAIL_CONFIRMATION_EXPIRY_SECONDS", default=3 * 86400))
API_KEYS_PER_STORE = env.int("API_KEYS_PER_STORE", default=20)

# --- Email ----------------------------------------------------------------------------------------
# SMTP, from EMAIL_URL (smtp://user:password@host:port, smtp+tls://, smtp+ssl://) or the EMAIL_* settings.
# `make dev` points it at a local catcher; tests at an SMTP server they start. Sending is a Celery task
# (merchants.tasks.email_deliver): a request never waits for the mail server.
if env.str("EMAIL_URL", default=""):
    globals().update(env.email_url("EMAIL_URL"))
else:
    EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.smtp.EmailBackend")
    EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
    EMAIL_PORT = env.int("EMAIL_PORT", default=25)
    EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
    EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
    EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", default=False)
    EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", default=False)
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT_SECONDS", default=10)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Tokenhub <no-reply@tokenhub.local>")
SERVER_EMAIL = env.str("SERVER_EMAIL", default=DEFAULT_FROM_EMAIL)
EMAIL_MAX_ATTEMPTS = env.int("EMAIL_MAX_ATTEMPTS", default=6)
# Where links in emails point when no request is at hand (beat, worker).
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000").rstrip("/")

# --- REST API -------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["tokenhub.api.parsers.LimitedJSONParser"],
    "UNAUTHENTICATED_USER": None,
    # Bearer first: with no credentials DRF then answers 401 with WWW-Authenticate, not 403.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "merchants.api.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",  # the dashboard's calls, CSRF enforced
    ],
    "DEFAULT_PERMISSION_CLASSES": ["merchants.api.permissions.IsMerchantMember"],
    "DEFAULT_THROTTLE_CLASSES": ["merchants.api.throttling.ApiKeyRateThrottle"],
    "EXCEPTION_HANDLER": "tokenhub.api.exceptions.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Tokenhub API",
    "DESCRIPTION": "Run AI tools for your store, paid from your prepaid token wallet.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
}
API_MAX_BODY_BYTES = env.int("API_MAX_BODY_BYTES", default=64 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=5 * 1024 * 1024)

# --- I18N, static ---------------------------------------------------------------------------------
# English and Simplified Chinese (docs/i18n.md). The browser's Accept-Language picks one until the user
# chooses (merchants.i18n); the catalogue is locale/zh_Hans, compiled by `make install`.
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文")]
LOCALE_PATHS = [BASE_DIR / "locale"]
# Our own short formats (e.g. the usage chart's "Feb 1" / "2月1日"), over Django's per-language ones.
FORMAT_MODULE_PATH = ["tokenhub.formats"]
LANGUAGE_COOKIE_NAME = "tokenhub_language"
LANGUAGE_COOKIE_AGE = 365 * 86400
LANGUAGE_COOKIE_SAMESITE = "Lax"
# UTC in the database and for background work; each store's own zone is activated for its pages.
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Hashed, compressed assets in production (after collectstatic); served straight from the apps otherwise.
STATIC_MANIFEST = env_bool("STATIC_MANIFEST", default=not DEBUG)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if STATIC_MANIFEST
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}
WHITENOISE_USE_FINDERS = not STATIC_MANIFEST

# --- Security -------------------------------------------------------------------------------------
_secure = env_bool("TOKENHUB_SECURE_COOKIES", default=not DEBUG)
SESSION_COOKIE_SECURE = _secure
CSRF_COOKIE_SECURE = _secure
LANGUAGE_COOKIE_SECURE = _secure
LANGUAGE_COOKIE_HTTPONLY = True  # read by the server only; the switch is a form
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", default=_secure)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000 if _secure else 0)
# Both reach beyond this app (every subdomain; browsers' built-in lists, for months), so only the operator
# who owns the whole domain opts in. The warnings for them are silenced below.
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", default=False)
# Trusting X-Forwarded-Proto is safe only behind a proxy that always sets it (platform/nginx.conf does);
# without one any client could claim https and defeat SECURE_SSL_REDIRECT and the secure-cookie checks.
TRUSTED_PROXY_SSL_HEADER = env_bool("TRUSTED_PROXY_SSL_HEADER", default=False)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if TRUSTED_PROXY_SSL_HEADER else None
SILENCED_SYSTEM_CHECKS = [
    # security.W005 (no includeSubDomains) and W021 (no preload): off by default on purpose, see above.
    "security.W005",
    "security.W021",
]
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# Content-Security-Policy (django-csp) on every response: scripts and styles only from our own static
# files, so an injected <script>, inline handler or style attribute does not run. Templates keep no inline
# JS or CSS (static/tokenhub.js does that work); a view that cannot comply widens its own policy with
# csp.decorators.csp_update (the Swagger UI page), never the whole site. form-action names Stripe Checkout
# because the buy form's POST is redirected there, and Chromium applies form-action to the redirect too.
INSTALLED_APPS += ["csp"]
MIDDLEWARE.insert(
    MIDDLEWARE.index("django.middleware.security.SecurityMiddleware") + 1, "csp.middleware.CSPMiddleware"
)
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'", "https://checkout.stripe.com"],
    }
}
SESSION_COOKIE_HTTPONLY = True

# --- Observability --------------------------------------------------------------------------------
LOG_FORMAT = env.str("LOG_FORMAT", default="plain" if DEBUG else "json")
if LOG_FORMAT not in ("plain", "json"):
    raise ImproperlyConfigured(f"LOG_FORMAT={LOG_FORMAT!r}: use plain or json.")
LOGGING = logging_config(level=env.str("LOG_LEVEL", default="INFO"), json_format=LOG_FORMAT == "json")
# /metrics answers only `Authorization: Bearer <METRICS_TOKEN>`; empty: /metrics answers 404.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
# Each process adds its events up and writes them to Redis this often (tokenhub/metrics.py); a scrape shows
# another process's events at most this late.
METRICS_FLUSH_SECONDS = env.float("METRICS_FLUSH_SECONDS", default=1.0)
SENTRY_DSN = env.str("SENTRY_DSN", default="")
if SENTRY_DSN:
    sentry_init(dsn=SENTRY_DSN, environment=env.str("SENTRY_ENVIRONMENT", default="production"))

# --- REST API v1 (issue 5; owned by the API helper) -----------------------------------------------
INSTALLED_APPS += ["drf_spectacular_sidecar"]  # Swagger UI assets served locally: no CDN at runtime
# Right after SecurityMiddleware: an oversized /api/ body is refused before sessions, auth or any view.
MIDDLEWARE.insert(
    MIDDLEWARE.index("django.middleware.security.SecurityMiddleware") + 1,
    "tokenhub.api.middleware.ApiMiddleware",
)
# A call with an API key leaves the chain at ApiMiddleware and goes on through only these (tokenhub/api/
# middleware.py): the dashboard's sessions, CSRF, user, messages and lockout have nothing to do for it.
API_KEY_MIDDLEWARE = [
    "csp.middleware.CSPMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "tokenhub.edge.InputGuardMiddleware",
]
# Right after it: CORS for the chat widget's visitor API (/widget/v1/), per widget's allowed origins.
MIDDLEWARE.insert(
    MIDDLEWARE.index("tokenhub.api.middleware.ApiMiddleware") + 1, "widgets.middleware.WidgetCorsMiddleware"
)
# Per API key (or dashboard user): 6,000 a minute lets one bulk integration create 100 runs a second.
API_RATE_LIMIT_PER_MINUTE = env.int("API_RATE_LIMIT_PER_MINUTE", default=6000)
# A key found once is trusted from process memory this long; revocation still answers 401 at once (a Redis
# generation checked per request, merchants/api_keys.py). Prices and wallet ids: wallets/caches.py.
API_KEY_CACHE_SECONDS = env.float("API_KEY_CACHE_SECONDS", default=30.0)
PRICE_CACHE_SECONDS = env.float("PRICE_CACHE_SECONDS", default=60.0)
# How long a process trusts a wallet's balance mark (the balance below which a spend runs the alert and
# auto-recharge checks); another process's change of thresholds reaches this one within it.
BALANCE_MARK_CACHE_SECONDS = env.float("BALANCE_MARK_CACHE_SECONDS", default=30.0)
SPECTACULAR_SETTINGS.update(
    {
        "SWAGGER_UI_DIST": "SIDECAR",
        "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
        "REDOC_DIST": "SIDECAR",
        # The schema and docs are public; the endpoints they describe are not.
        "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
        "SERVE_AUTHENTICATION": [],
        "SCHEMA_PATH_PREFIX": r"/api/v1",
        "COMPONENT_SPLIT_REQUEST": True,
        "ENUM_NAME_OVERRIDES": {
            "RunStatusEnum": "agents.models.Run.Status",
            "ConversationStatusEnum": "agents.models.Conversation.Status",
            "ToolSlugEnum": "agents.api.runs.TOOL_SLUGS",
        },
    }
)

# --- Hardening (issue 11) -------------------------------------------------------------------------
# JSON bodies nest at most this deep (a run's input needs 3); Python's parser fails near 1,000 levels.
API_MAX_JSON_DEPTH = env.int("API_MAX_JSON_DEPTH", default=32)
# One rule at the edge: NUL and unpaired surrogates in a path, query or form field answer 400 (tokenhub/edge.py).
# After the merchant middleware, so the dashboard's 400 page shows the navigation.
MIDDLEWARE.insert(
    MIDDLEWARE.index("merchants.middleware.CurrentMerchantMiddleware") + 1,
    "tokenhub.edge.InputGuardMiddleware",
)
# Failed runs the merchant's input provoked (invalid model answers, moderation): past this many in the
# window, the store's new runs are refused with 429 until the oldest leaves it (agents/runs/failures.py).
RUN_FAILURE_LIMIT = env.int("RUN_FAILURE_LIMIT", default=20)
RUN_FAILURE_WINDOW_SECONDS = env.int("RUN_FAILURE_WINDOW_SECONDS", default=600)
# Open live-reply streams (agents/conversations/stream.py): a person has a few tabs; a store a few dozen.
STREAM_MAX_PER_USER = env.int("STREAM_MAX_PER_USER", default=10)
STREAM_MAX_PER_STORE = env.int("STREAM_MAX_PER_STORE", default=60)
