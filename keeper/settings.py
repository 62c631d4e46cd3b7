"""Keeper settings: every environment variable is read here, once.

See README.md ("Configuration") and .env.example for the full list.
"""

import ipaddress
import secrets
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from keeper.env import env_bool, env_float, env_int, env_json_b64, env_list, env_str, validate_bootstrap_keys
from keeper.observability.logging import LOG_FORMATS, default_log_format, logging_config

BASE_DIR = Path(__file__).resolve().parent.parent


def _secret_key() -> str:
    """KEEPER_SECRET_KEY, or a random key kept in a private file for the embedded setup.

    Generating a key per process would break sessions between gunicorn workers,
    so the generated key is written once and reused.
    """
    configured = env_str("KEEPER_SECRET_KEY")
    if configured:
        return configured
    path = BASE_DIR / ".keeper-secret-key"
    if not path.exists():
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(50))
    return path.read_text().strip()


SECRET_KEY = _secret_key()
KEEPER_DEBUG = env_bool("KEEPER_DEBUG", False)
# Django's DEBUG stays off: it would expose tracebacks. KEEPER_DEBUG only logs SQL.
DEBUG = False
ALLOWED_HOSTS = env_list("KEEPER_ALLOWED_HOSTS", ["*"])
CSRF_TRUSTED_ORIGINS = env_list("KEEPER_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "corsheaders",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "mozilla_django_oidc",
    "keeper",
    "keeper.events",
    "apps.catalog",
    "apps.accounts",
    "apps.throttling",
    "apps.keys",
]

MIDDLEWARE = [
    # First: one log line, X-Request-ID and metrics for every answer, as it finally leaves.
    "keeper.observability.middleware.RequestObservabilityMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # CORS first, so every answer carries it (errors and 429s too); then gzip over the final headers.
    "keeper.api.middleware.CorsMiddleware",
    "keeper.api.middleware.CompressMiddleware",
    "keeper.api.middleware.CacheControlMiddleware",
    "keeper.api.middleware.RejectNullBytesMiddleware",
    # A database outage is a JSON 503 with Retry-After (views here; middleware: the 500 handler).
    "keeper.api.database.DatabaseUnavailableMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Django's messages, their storage made only when the admin uses it.
    "keeper.api.middleware.LazyMessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Outside the rate limits, so it counts their refusals too (the staff overview's traffic).
    "apps.keys.middleware.TrafficMiddleware",
    "apps.throttling.middleware.RateLimitMiddleware",
    "apps.keys.middleware.KeyUsageMiddleware",
]

ROOT_URLCONF = "keeper.urls"
# "SQLite does not support indexes with non-key columns": the catalog's server_page index includes the id
# for PostgreSQL, and an SQLite index holds the row id anyway (apps/catalog/models.py).
SILENCED_SYSTEM_CHECKS = ["models.W040"]
WSGI_APPLICATION = "keeper.wsgi.application"
ASGI_APPLICATION = "keeper.asgi.application"
APPEND_SLASH = False

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
                "apps.accounts.context_processors.oidc",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------
DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{BASE_DIR / 'keeper.sqlite3'}")
try:
    _database = dj_database_url.parse(DATABASE_URL, conn_max_age=60, conn_health_checks=True)
except ValueError as exc:
    raise ImproperlyConfigured(f"DATABASE_URL is not a valid database URL: {exc}") from None
if _database["ENGINE"] == "django.db.backends.sqlite3":
    _database["OPTIONS"] = {
        # WAL lets readers keep serving the old catalog while a sync writes the new one.
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        # Commands, the sync and the write-behind flusher wait this long for the write lock; requests
        # served by gunicorn wait KEEPER_DATABASE_LOCK_WAIT_SECONDS at most (keeper/writes.py).
        "timeout": 30,
    }
elif _database["ENGINE"] not in ("django.db.backends.postgresql",):
    raise ImproperlyConfigured("DATABASE_URL must point to SQLite or PostgreSQL")
else:
    # A server that drops packets (rather than refusing) fails a connection in seconds, not minutes:
    # the request is a JSON 503 (keeper/api/database.py). `?connect_timeout=` in the URL wins.
    _database.setdefault("OPTIONS", {}).setdefault("connect_timeout", 5)
DATABASES = {"default": _database}
# The longest a request served by gunicorn waits for a lock (SQLite's write lock, a PostgreSQL row or table
# lock): a write the caller asked for is then a JSON 503 with Retry-After; Keeper's own bookkeeping is
# written behind by a thread and never waits in a request (keeper/writes.py). Far below gunicorn's
# 30 s timeout, so that no worker is killed for waiting on the database.
KEEPER_DATABASE_LOCK_WAIT_SECONDS = env_float("KEEPER_DATABASE_LOCK_WAIT_SECONDS", 1.0, minimum=0.01)
if KEEPER_DATABASE_LOCK_WAIT_SECONDS > 5:
    raise ImproperlyConfigured(
        f"KEEPER_DATABASE_LOCK_WAIT_SECONDS must be <= 5, got {KEEPER_DATABASE_LOCK_WAIT_SECONDS:g}"
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache, Redis and Celery ----------------------------------------------------
REDIS_URL = env_str("REDIS_URL")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "keeper",
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 2, "SOCKET_TIMEOUT": 2},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# Rendered catalog responses, keyed by catalog version: shared in Redis, else per process and bounded.
CACHES["catalog"] = (
    {
        **CACHES["default"],
        "KEY_PREFIX": "keeper-catalog",
        # Redis down is a miss, not an error: the answer is computed and served (django-redis option).
        "OPTIONS": {**CACHES["default"]["OPTIONS"], "IGNORE_EXCEPTIONS": True},
    }
    if REDIS_URL
    else {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "LOCATION": "catalog-responses",
        # Bounded: with bodies of at most KEEPER_CATALOG_RESPONSE_CACHE_MAX_BYTES, ~200 MB per process at worst.
        "OPTIONS": {"MAX_ENTRIES": 100},
    }
)
# Seconds a rendered catalog response is reused while the catalog is unchanged; 0 turns it off.
KEEPER_CATALOG_RESPONSE_CACHE_SECONDS = env_int("KEEPER_CATALOG_RESPONSE_CACHE_SECONDS", 3600, minimum=0)
# How stale each process's idea of the catalog version may be (the syncing process knows at once).
KEEPER_CATALOG_VERSION_TTL_SECONDS = env_float("KEEPER_CATALOG_VERSION_TTL_SECONDS", 1.0, minimum=0.0)
# Cache-Control max-age of catalog answers, and of price answers (prices change more often).
KEEPER_CATALOG_MAX_AGE_SECONDS = env_int("KEEPER_CATALOG_MAX_AGE_SECONDS", 600, minimum=0)
KEEPER_PRICES_MAX_AGE_SECONDS = env_int("KEEPER_PRICES_MAX_AGE_SECONDS", 120, minimum=0)
# Larger responses (e.g. limit=-1 over many servers) are served but not kept.
KEEPER_CATALOG_RESPONSE_CACHE_MAX_BYTES = env_int("KEEPER_CATALOG_RESPONSE_CACHE_MAX_BYTES", 2_000_000, minimum=0)

CATALOG_SYNC_INTERVAL_MINUTES = env_int("KEEPER_CATALOG_SYNC_INTERVAL_MINUTES", 10, minimum=1)
CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = REDIS_URL is None
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BEAT_SCHEDULE = {
    "sync-catalog": {
        "task": "apps.catalog.tasks.sync_catalog",
        "schedule": CATALOG_SYNC_INTERVAL_MINUTES * 60.0,
    },
}

# --- Catalog --------------------------------------------------------------------
# A local .db/.sql/.sql.xz file or an http(s) URL; empty means the sparecores-data package.
KEEPER_CATALOG_SOURCE = env_str("KEEPER_CATALOG_SOURCE")
KEEPER_CATALOG_DOWNLOAD_TIMEOUT = env_int("KEEPER_CATALOG_DOWNLOAD_TIMEOUT", 60, minimum=1)
# Days of catalog history (what each sync changed, apps/catalog/history.py) kept; 0 records none.
KEEPER_HISTORY_DAYS = env_int("KEEPER_HISTORY_DAYS", 365, minimum=0)
CELERY_BEAT_SCHEDULE["prune-catalog-history"] = {
    "task": "apps.catalog.tasks.prune_catalog_history",
    "schedule": 24 * 60 * 60.0,
}
# Watches (saved catalog queries re-run after each sync, apps/catalog/watches): at most this many per caller.
KEEPER_WATCHES_PER_CALLER = env_int("KEEPER_WATCHES_PER_CALLER", 50, minimum=0)
# How often the schedule looks for a sync whose watches are not evaluated yet (the embedded setup's only
# trigger; with Celery a sync also enqueues the evaluation when it commits, this is the safety net).
KEEPER_WATCHES_EVALUATE_SECONDS = env_int("KEEPER_WATCHES_EVALUATE_SECONDS", 60, minimum=1)
CELERY_BEAT_SCHEDULE["evaluate-watches"] = {
    "task": "apps.catalog.watches.tasks.evaluate_watches",
    "schedule": float(KEEPER_WATCHES_EVALUATE_SECONDS),
}
# Read by the sparecores-data package itself too; Keeper needs to know them to call it right.
SC_DATA_NO_UPDATE = bool(env_str("SC_DATA_NO_UPDATE"))
SC_DATA_HTTP_TIMEOUT = env_str("SC_DATA_HTTP_TIMEOUT")

# --- API ------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_RENDERER_CLASSES": ["keeper.api.renderers.ORJSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["keeper.api.parsers.JSONParser"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "keeper.api.negotiation.KeeperContentNegotiation",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "keeper.api.schema.KeeperAutoSchema",
    "EXCEPTION_HANDLER": "keeper.api.exceptions.exception_handler",
    # No `?format=`: responses are JSON (the key event stream is chosen by Accept), and the
    # parameter would otherwise be a 404 for unknown formats, not the 400 of any unknown parameter.
    "URL_FORMAT_OVERRIDE": None,
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # First: Keeper's own capability tokens are judged by Keeper, never sent to the identity provider.
        "apps.keys.authentication.CapabilityTokenAuthentication",
        "apps.accounts.authentication.TokenIntrospectionAuthentication",
        "apps.keys.authentication.ApiKeyAuthentication",
        "apps.accounts.authentication.SessionCookieAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    "DEFAULT_THROTTLE_CLASSES": [
        "apps.throttling.throttles.GlobalTokenBucketThrottle",
        "apps.throttling.throttles.CreditThrottle",
        "apps.keys.throttles.DailyQuotaThrottle",
    ],
}

# --- CORS: any origin may read the API (no cookies are sent cross-origin) ------
CORS_ALLOW_ALL_ORIGINS = True
CORS_ALLOW_CREDENTIALS = False
CORS_ALLOW_METHODS = ["GET", "HEAD", "OPTIONS"]
# As the newest Spare Cores API: its web front end sends Sentry's tracing headers and an application id.
CORS_ALLOW_HEADERS = [
    "accept", "authorization", "content-type", "if-none-match", "x-api-key", "x-request-id",
    "sentry-trace", "baggage", "x-application-id",
]  # fmt: skip
CORS_EXPOSE_HEADERS = [
    "X-Total-Count", "X-RateLimit-Limit", "X-RateLimit-Cost", "X-RateLimit-Remaining", "Retry-After", "ETag",
    "X-Request-ID",
]  # fmt: skip
CORS_PREFLIGHT_MAX_AGE = 86400

# --- Serving: what one caller (or one slow socket) may hold -------------------
# Read by the gunicorn worker (keeper/server.py) before a request reaches Django.
KEEPER_HEADER_TIMEOUT_SECONDS = env_float("KEEPER_HEADER_TIMEOUT_SECONDS", 5.0, minimum=0.1)
KEEPER_BODY_TIMEOUT_SECONDS = env_float("KEEPER_BODY_TIMEOUT_SECONDS", 10.0, minimum=0.1)
KEEPER_MAX_REQUEST_BODY_BYTES = env_int("KEEPER_MAX_REQUEST_BODY_BYTES", 1_048_576, minimum=1024)
# A client that takes none of its answer for this long is cut off (keeper/server.py).
KEEPER_SEND_TIMEOUT_SECONDS = env_float("KEEPER_SEND_TIMEOUT_SECONDS", 30.0, minimum=0.1)
# Bytes of answers a worker holds for clients that have not taken them yet; past it, streams wait and
# an answer made whole over 64 KiB is a JSON 503 (unless it is the only one held).
KEEPER_SEND_BUFFER_BYTES = env_int("KEEPER_SEND_BUFFER_BYTES", 64 * 1024 * 1024, minimum=65_536)
# Django's own limit for form posts (the admin), the same figure.
DATA_UPLOAD_MAX_MEMORY_SIZE = KEEPER_MAX_REQUEST_BODY_BYTES
# Long-lived responses (GET /keys/watch) open at once, per process and per caller in a process.
KEEPER_STREAMS_PER_PROCESS = env_int("KEEPER_STREAMS_PER_PROCESS", 8, minimum=1)
KEEPER_STREAMS_PER_CALLER = env_int("KEEPER_STREAMS_PER_CALLER", 2, minimum=1)

# --- AI assist (/ai/assist_*_filters): an OpenAI-compatible chat completions API --
# Unset key: those endpoints answer 503. The key is sent only as a bearer header, never logged.
OPENAI_API_KEY = env_str("OPENAI_API_KEY")
OPENAI_BASE_URL = (env_str("OPENAI_BASE_URL", "https://api.openai.com/v1") or "").rstrip("/")
if not OPENAI_BASE_URL.startswith(("http://", "https://")):
    raise ImproperlyConfigured(f"OPENAI_BASE_URL must be an http(s) URL, got {OPENAI_BASE_URL!r}")
OPENAI_MODEL = env_str("OPENAI_MODEL", "gpt-4o-mini")
# The whole call (connect, wait, download). Calls run in a thread of their own (keeper/server.py),
# and a worker that stops waits for them, within gunicorn's 30 s graceful timeout.
OPENAI_TIMEOUT_SECONDS = env_float("OPENAI_TIMEOUT_SECONDS", 15.0, minimum=0.1)
if OPENAI_TIMEOUT_SECONDS > 25:
    raise ImproperlyConfigured(f"OPENAI_TIMEOUT_SECONDS must be <= 25, got {OPENAI_TIMEOUT_SECONDS:g}")
# Provider calls under way at once per process; more are answered 503 with Retry-After, unsent.
KEEPER_AI_CALLS_PER_PROCESS = env_int("KEEPER_AI_CALLS_PER_PROCESS", 4, minimum=1)

# --- Who is calling: OAuth 2.0 token introspection (RFC 7662) -------------------
# Names as in the Spare Cores API, so operators keep their configuration.
AUTH_TOKEN_INTROSPECTION_URL = env_str("AUTH_TOKEN_INTROSPECTION_URL")
AUTH_CLIENT_ID = env_str("AUTH_CLIENT_ID")
AUTH_CLIENT_SECRET = env_str("AUTH_CLIENT_SECRET")
if AUTH_TOKEN_INTROSPECTION_URL and not (AUTH_CLIENT_ID and AUTH_CLIENT_SECRET):
    raise ImproperlyConfigured(
        "AUTH_CLIENT_ID and AUTH_CLIENT_SECRET are required when AUTH_TOKEN_INTROSPECTION_URL is set"
    )
AUTH_TOKEN_VALIDATION_CEL = env_str("AUTH_TOKEN_VALIDATION_CEL")
AUTH_TOKEN_EXTRA_FIELDS_CEL = env_str("AUTH_TOKEN_EXTRA_FIELDS_CEL")
AUTH_TOKEN_INTROSPECTION_TIMEOUT_SECONDS = env_float("AUTH_TOKEN_INTROSPECTION_TIMEOUT_SECONDS", 5.0, minimum=0.1)
AUTH_TOKEN_CACHE_L1_TTL_SECONDS = env_int("AUTH_TOKEN_CACHE_L1_TTL_SECONDS", 60, minimum=0)
AUTH_TOKEN_CACHE_L1_MAX_SIZE = env_int("AUTH_TOKEN_CACHE_L1_MAX_SIZE", 1000, minimum=0)
AUTH_TOKEN_CACHE_L2_TTL_SECONDS = env_int("AUTH_TOKEN_CACHE_L2_TTL_SECONDS", 300, minimum=0)
AUTH_TOKEN_CACHE_NEGATIVE_TTL_SECONDS = env_int("AUTH_TOKEN_CACHE_NEGATIVE_TTL_SECONDS", 5, minimum=0)
# Cache keys are HMACs of the token with this salt; default derived from the secret key.
AUTH_TOKEN_CACHE_SALT = env_str("AUTH_TOKEN_CACHE_SALT") or f"keeper-token-cache:{SECRET_KEY}"
# The newest Spare Cores API's other bearer token verifiers (apps/accounts/bearer.py checks these at start-up).
# JWT access tokens (RS256/ES256) against a JWKS URL or one PEM public key; audiences and azp are comma lists.
AUTH_JWT_JWKS_URL = env_str("AUTH_JWT_JWKS_URL")
AUTH_JWT_JWKS_CACHE_TTL_SECONDS = env_int("AUTH_JWT_JWKS_CACHE_TTL_SECONDS", 300, minimum=1)
AUTH_JWT_JWKS_TIMEOUT_SECONDS = env_float("AUTH_JWT_JWKS_TIMEOUT_SECONDS", 5.0, minimum=0.1)
AUTH_JWT_PUBLIC_KEY = env_str("AUTH_JWT_PUBLIC_KEY")
AUTH_JWT_ISSUER = env_str("AUTH_JWT_ISSUER")
AUTH_JWT_AUDIENCE = env_list("AUTH_JWT_AUDIENCE")
AUTH_JWT_AUTHORIZED_PARTIES = env_list("AUTH_JWT_AUTHORIZED_PARTIES")
# Opaque keys of another system, checked by its verification service (POST {<request field>: key}).
AUTH_API_KEY_VERIFY_URL = env_str("AUTH_API_KEY_VERIFY_URL")
AUTH_API_KEY_VERIFY_BEARER = env_str("AUTH_API_KEY_VERIFY_BEARER")
AUTH_API_KEY_VERIFY_REQUEST_FIELD = env_str("AUTH_API_KEY_VERIFY_REQUEST_FIELD", "secret")
AUTH_API_KEY_VERIFY_SUBJECT_FIELD = env_str("AUTH_API_KEY_VERIFY_SUBJECT_FIELD", "subject")
AUTH_API_KEY_VERIFY_CLAIMS_FIELD = env_str("AUTH_API_KEY_VERIFY_CLAIMS_FIELD", "claims")
AUTH_API_KEY_VERIFY_TIMEOUT_SECONDS = env_float("AUTH_API_KEY_VERIFY_TIMEOUT_SECONDS", 5.0, minimum=0.1)
# A JSON array of {token, subject, api_credits_per_minute?} (secrets: never logged or quoted in errors).
AUTH_STATIC_TOKENS = env_str("AUTH_STATIC_TOKENS")
# Optional: a token matching one of these goes to that verifier first; a verifier with a regex sees no other token.
AUTH_TOKEN_INTROSPECTION_REGEX = env_str("AUTH_TOKEN_INTROSPECTION_REGEX")
AUTH_JWT_TOKEN_REGEX = env_str("AUTH_JWT_TOKEN_REGEX")
AUTH_API_KEY_TOKEN_REGEX = env_str("AUTH_API_KEY_TOKEN_REGEX")
# A token (or OIDC) user is staff when this claim is true, or is a list containing KEEPER_STAFF_GROUP.
KEEPER_STAFF_CLAIM = env_str("KEEPER_STAFF_CLAIM", "groups")
KEEPER_STAFF_GROUP = env_str("KEEPER_STAFF_GROUP", "keeper-staff")
# Organization memberships from the token's claims: a list of slugs, or {slug: "admin" | "member"}.
KEEPER_ORGANIZATIONS_CLAIM = env_str("KEEPER_ORGANIZATIONS_CLAIM", "organizations")

# --- Staff sign-in to the admin: OpenID Connect (mozilla-django-oidc) ----------
OIDC_RP_CLIENT_ID = env_str("OIDC_RP_CLIENT_ID")
OIDC_RP_CLIENT_SECRET = env_str("OIDC_RP_CLIENT_SECRET")
OIDC_OP_AUTHORIZATION_ENDPOINT = env_str("OIDC_OP_AUTHORIZATION_ENDPOINT")
OIDC_OP_TOKEN_ENDPOINT = env_str("OIDC_OP_TOKEN_ENDPOINT")
OIDC_OP_USER_ENDPOINT = env_str("OIDC_OP_USER_ENDPOINT")
OIDC_OP_JWKS_ENDPOINT = env_str("OIDC_OP_JWKS_ENDPOINT")
OIDC_OP_LOGOUT_ENDPOINT = env_str("OIDC_OP_LOGOUT_ENDPOINT")
OIDC_RP_SIGN_ALGO = env_str("OIDC_RP_SIGN_ALGO", "RS256")
OIDC_RP_SCOPES = env_str("OIDC_RP_SCOPES", "openid email profile")
OIDC_ENABLED = bool(OIDC_RP_CLIENT_ID)
if OIDC_ENABLED:
    _missing = [
        name
        for name in (
            "OIDC_RP_CLIENT_SECRET",
            "OIDC_OP_AUTHORIZATION_ENDPOINT",
            "OIDC_OP_TOKEN_ENDPOINT",
            "OIDC_OP_USER_ENDPOINT",
        )
        if not globals()[name]
    ]
    if OIDC_RP_SIGN_ALGO.startswith("RS") and not OIDC_OP_JWKS_ENDPOINT:
        _missing.append("OIDC_OP_JWKS_ENDPOINT")
    if _missing:
        raise ImproperlyConfigured(f"OIDC_RP_CLIENT_ID is set, so these are required too: {', '.join(_missing)}")
# First: a password sign-in past the failure limits (KEEPER_LOGIN_FAILURE_*) is refused before any password is hashed.
AUTHENTICATION_BACKENDS = ["apps.throttling.logins.LoginThrottleBackend", "django.contrib.auth.backends.ModelBackend"]
if OIDC_ENABLED:
    AUTHENTICATION_BACKENDS.insert(1, "apps.accounts.oidc.StaffOIDCBackend")
if OIDC_OP_LOGOUT_ENDPOINT:
    OIDC_OP_LOGOUT_URL_METHOD = "apps.accounts.oidc.provider_logout_url"
# Django group (with the permissions to manage keys, limits and organizations) that SSO staff join.
KEEPER_STAFF_DJANGO_GROUP = env_str("KEEPER_STAFF_DJANGO_GROUP", "Keeper staff")
LOGIN_REDIRECT_URL = "/admin/"
LOGOUT_REDIRECT_URL = "/admin/"
LOGIN_REDIRECT_URL_FAILURE = "/admin/login/"

# --- API keys ------------------------------------------------------------------
# Keys are stored as HMAC-SHA256(pepper, key). Changing the pepper invalidates every generated key.
KEEPER_API_KEY_PEPPER = env_str("KEEPER_API_KEY_PEPPER") or f"keeper-api-key-pepper:{SECRET_KEY}"
# Bootstrap keys: base64 of a JSON array of {"key", "name", "scope"}; merged at start-up, stored hashed.
# Unset (None) leaves the stored bootstrap keys as they are; see apps/keys/bootstrap.py.
KEEPER_API_KEYS = validate_bootstrap_keys(env_json_b64("KEEPER_API_KEYS", None))
KEEPER_KEY_EXPIRY_WARNING_DAYS = env_int("KEEPER_KEY_EXPIRY_WARNING_DAYS", 7, minimum=1)
KEEPER_KEY_LAST_USED_INTERVAL_SECONDS = env_int("KEEPER_KEY_LAST_USED_INTERVAL_SECONDS", 60, minimum=0)
# Usage counters are added to the database in batches, at most this many seconds apart per process.
KEEPER_KEY_USAGE_FLUSH_SECONDS = env_int("KEEPER_KEY_USAGE_FLUSH_SECONDS", 10, minimum=0)
# How long GET /keys/watch keeps one event stream open (clients reconnect with Last-Event-ID).
KEEPER_KEY_WATCH_SECONDS = env_int("KEEPER_KEY_WATCH_SECONDS", 25, minimum=1)
CELERY_BEAT_SCHEDULE["warn-expiring-keys"] = {
    "task": "apps.keys.tasks.warn_expiring_keys",
    "schedule": 24 * 60 * 60.0,
}
# Capability tokens (POST /keys/validate, apps/keys/capability.py): their `iss` and `aud`; Keeper accepts
# only tokens carrying both.
KEEPER_TOKEN_ISSUER = env_str("KEEPER_TOKEN_ISSUER", "keeper")
KEEPER_TOKEN_AUDIENCE = env_str("KEEPER_TOKEN_AUDIENCE", "keeper-api")
# Encrypts the stored signing keys (AES-GCM, key derived with HKDF). Changed: run `rotate_signing_key`.
KEEPER_TOKEN_KEY_SECRET = env_str("KEEPER_TOKEN_KEY_SECRET") or f"keeper-token-signing-keys:{SECRET_KEY}"
CELERY_BEAT_SCHEDULE["prune-signing-keys"] = {
    "task": "apps.keys.tasks.prune_signing_keys",
    "schedule": 60 * 60.0,
}

# --- Events and webhooks (keeper/events) ----------------------------------------
# Days events are kept (GET /events, a watch's events); older ones are deleted daily with their deliveries.
KEEPER_EVENTS_DAYS = env_int("KEEPER_EVENTS_DAYS", 30, minimum=1)
CELERY_BEAT_SCHEDULE["prune-events"] = {"task": "keeper.events.tasks.prune_events", "schedule": 24 * 60 * 60.0}
KEEPER_WEBHOOKS_PER_CALLER = env_int("KEEPER_WEBHOOKS_PER_CALLER", 10, minimum=0)
# Webhook receivers may be at these networks (CIDR, comma-separated) even if private or loopback; by default
# only public addresses are (keeper/outbound.py). http:// receivers only with KEEPER_WEBHOOK_ALLOW_HTTP.
KEEPER_WEBHOOK_ALLOWED_NETWORKS = env_list("KEEPER_WEBHOOK_ALLOWED_NETWORKS", [])
for _network in KEEPER_WEBHOOK_ALLOWED_NETWORKS:
    try:
        ipaddress.ip_network(_network, strict=False)
    except ValueError:
        raise ImproperlyConfigured(f"KEEPER_WEBHOOK_ALLOWED_NETWORKS: {_network!r} is not a network") from None
KEEPER_WEBHOOK_ALLOW_HTTP = env_bool("KEEPER_WEBHOOK_ALLOW_HTTP", False)
# Seconds one delivery attempt may take in all (connect, answer, reading at most 64 KiB of it).
KEEPER_WEBHOOK_TIMEOUT_SECONDS = env_int("KEEPER_WEBHOOK_TIMEOUT_SECONDS", 10, minimum=1, maximum=60)
# An endpoint is disabled after this many deliveries in a row failed every attempt of the retry schedule.
KEEPER_WEBHOOK_DISABLE_AFTER_FAILED_DELIVERIES = env_int("KEEPER_WEBHOOK_DISABLE_AFTER_FAILED_DELIVERIES", 5, minimum=1)
# Due deliveries and retries are sent this often (each delivery is also sent on commit when Celery has a broker).
CELERY_BEAT_SCHEDULE["deliver-webhooks"] = {"task": "keeper.events.tasks.deliver_webhooks", "schedule": 5.0}

# --- How much: credit limits and the global token bucket -----------------------
RATE_LIMIT_ENABLED = env_bool("RATE_LIMIT_ENABLED", False)
RATE_LIMIT_BACKEND = env_str("RATE_LIMIT_BACKEND", "memory")
if RATE_LIMIT_BACKEND not in ("memory", "redis"):
    raise ImproperlyConfigured(f"RATE_LIMIT_BACKEND must be memory or redis, got {RATE_LIMIT_BACKEND!r}")
if RATE_LIMIT_ENABLED and RATE_LIMIT_BACKEND == "redis" and not REDIS_URL:
    raise ImproperlyConfigured("RATE_LIMIT_BACKEND=redis needs REDIS_URL")
RATE_LIMIT_CREDITS_PER_MINUTE = env_int("RATE_LIMIT_CREDITS_PER_MINUTE", 60, minimum=1)
RATE_LIMIT_DEFAULT_CREDIT_COST = env_int("RATE_LIMIT_DEFAULT_CREDIT_COST", 1, minimum=0)
RATE_LIMIT_UNAUTHORIZED_PENALTY = env_int("RATE_LIMIT_UNAUTHORIZED_PENALTY", 10, minimum=0)
# Proxies (IPs or CIDR ranges) whose X-Forwarded-For is believed.
RATE_LIMIT_TRUSTED_PROXIES = env_list("RATE_LIMIT_TRUSTED_PROXIES", [])
# Seconds a process keeps route costs before re-reading them (staff edits apply within this).
RATE_LIMIT_ROUTE_COST_TTL_SECONDS = env_int("RATE_LIMIT_ROUTE_COST_TTL_SECONDS", 5, minimum=0)
# The memory backend keeps at most this many credit pools per process (about 350 bytes each); past it the
# least recently charged caller is forgotten and starts its minute over.
RATE_LIMIT_MEMORY_MAX_POOLS = env_int("RATE_LIMIT_MEMORY_MAX_POOLS", 50_000, minimum=1)
# Failed password sign-ins (the admin's login form) allowed per client address and per user name within the
# window; past either, password sign-ins from that address or for that name are refused (429) until the oldest
# failure leaves the window. Counted where the credit pools are (RATE_LIMIT_BACKEND), whether limits are on or not.
KEEPER_LOGIN_FAILURE_LIMIT = env_int("KEEPER_LOGIN_FAILURE_LIMIT", 5, minimum=1)
KEEPER_LOGIN_FAILURE_WINDOW_SECONDS = env_int("KEEPER_LOGIN_FAILURE_WINDOW_SECONDS", 900, minimum=1)

SPECTACULAR_SETTINGS = {
    "TITLE": "Keeper: Spare Cores catalog API",
    "DESCRIPTION": (
        "Search the Spare Cores catalog of cloud servers, regions, prices and benchmarks. "
        "Query strings are compatible with the Spare Cores Navigator API."
    ),
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # System fonts: ReDoc's own (Montserrat, Roboto) would come from Google Fonts (templates/drf_spectacular/).
    "REDOC_UI_SETTINGS": {
        "theme": {
            "typography": {
                "fontFamily": "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif",
                "headings": {"fontFamily": "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif"},
                "code": {"fontFamily": "ui-monospace, 'SFMono-Regular', Menlo, Consolas, monospace"},
            }
        }
    },
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "CatalogStatusEnum": "apps.catalog.choices.Status",
        "DatabaseStatusEnum": "apps.catalog.choices.DatabaseStatus",
        # A database's engine and wire protocol have the same choices (PostgreSQL): one enum for both.
        "DatabaseEngineEnum": "apps.catalog.choices.DatabaseEngine",
        "KeyStatusEnum": "apps.keys.choices.KeyStatus",
        "KeyScopeEnum": "apps.keys.choices.Scope",
        "SyncStatusEnum": "apps.catalog.choices.SyncStatus",
        "WatchStatusEnum": "apps.catalog.choices.WatchStatus",
        # Events and webhooks (keeper/events): one enum each, whatever the field is called.
        "EventTypeEnum": "keeper.events.types.EventType",
        "WebhookDeliveryStatusEnum": "keeper.events.models.DeliveryStatus",
        "WebhookAttemptOutcomeEnum": "keeper.events.models.AttemptOutcome",
    },
}

# --- Static files, i18n ---------------------------------------------------------
STATIC_URL = "static/"
# Static files (admin, Swagger UI) are served by WhiteNoise straight from the apps;
# set KEEPER_STATIC_ROOT and run collectstatic to serve them from one folder instead.
STATIC_ROOT = env_str("KEEPER_STATIC_ROOT")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

# --- Logging and metrics (keeper/observability) ---------------------------------
# json: one JSON object per line (production); text: for a person. Default: text on a terminal, else json.
KEEPER_LOG_FORMAT = (env_str("KEEPER_LOG_FORMAT") or default_log_format()).lower()
if KEEPER_LOG_FORMAT not in LOG_FORMATS:
    raise ImproperlyConfigured(f"KEEPER_LOG_FORMAT must be json or text, got {KEEPER_LOG_FORMAT!r}")
# KEEPER_DEBUG logs every SQL query.
LOGGING = logging_config(log_format=KEEPER_LOG_FORMAT, sql=KEEPER_DEBUG)
# Client networks (CIDR) that may read /metrics without credentials; admin-scoped callers may from anywhere.
# `none`: no network (an empty value means the default, as for every list here).
KEEPER_METRICS_ALLOWED_NETWORKS = env_list("KEEPER_METRICS_ALLOWED_NETWORKS", ["127.0.0.1/32", "::1/128"])
if [network.lower() for network in KEEPER_METRICS_ALLOWED_NETWORKS] == ["none"]:
    KEEPER_METRICS_ALLOWED_NETWORKS = []
for _network in KEEPER_METRICS_ALLOWED_NETWORKS:
    try:
        ipaddress.ip_network(_network)
    except ValueError:
        raise ImproperlyConfigured(f"KEEPER_METRICS_ALLOWED_NETWORKS: {_network!r} is not a CIDR range") from None
# Where every process keeps its metric values (multiprocess mode); keeper/gunicorn.conf.py sets a private
# one per gunicorn master. prometheus_client reads the variable itself too, when first imported.
PROMETHEUS_MULTIPROC_DIR = env_str("PROMETHEUS_MULTIPROC_DIR")

# --- Error reporting ------------------------------------------------------------
SENTRY_DSN = env_str("SENTRY_DSN")
if SENTRY_DSN:
    from keeper.observability.sentry import init_sentry

    init_sentry(SENTRY_DSN)
