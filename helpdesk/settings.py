"""Settings, read from the environment (see README: DATABASE_URL, REDIS_URL, SECRET_KEY, ...)."""

from __future__ import annotations

import warnings
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

from helpdesk.env import (
    celery_broker_from_redis_url,
    channel_layer_prefix_from_redis_url,
    database_from_url,
    env_bool,
    env_float,
    env_int,
    env_list,
    env_str,
)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("HELPDESK_VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY", "")
# Older keys still accepted for sessions, signatures and credentials at rest while SECRET_KEY is rotated.
SECRET_KEY_FALLBACKS = env_list("SECRET_KEY_FALLBACKS", "")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,.localhost,127.0.0.1")
PUBLIC_DOMAIN = env_str("PUBLIC_DOMAIN", "localhost")
WHATSAPP_GRAPH_URL = env_str("WHATSAPP_GRAPH_URL", "https://graph.facebook.com/v25.0").rstrip("/")
# Keys for access tokens and app secrets at rest, newest first (helpdesk/crypto.py): FIELD_ENCRYPTION_KEYS
# (comma-separated) or the single FIELD_ENCRYPTION_KEY; derived from SECRET_KEY (and its fallbacks) when unset.
FIELD_ENCRYPTION_KEY = env_str("FIELD_ENCRYPTION_KEY", "")
FIELD_ENCRYPTION_KEYS = env_list("FIELD_ENCRYPTION_KEYS", "")

DATABASE_URL = env_str("DATABASE_URL", "")
REDIS_URL = env_str("REDIS_URL", "")
if not DATABASE_URL or not REDIS_URL:
    # Zero-setup default: `python -m helpdesk.services` starts embedded servers and sets both.
    from helpdesk.services import embedded_urls

    _embedded = embedded_urls(VAR_DIR)
    DATABASE_URL = DATABASE_URL or _embedded["DATABASE_URL"]
    REDIS_URL = REDIS_URL or _embedded["REDIS_URL"]
    # Commands run beside `make run` share the launcher's key (a development checkout, never production).
    SECRET_KEY = SECRET_KEY or _embedded.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Outside debug mode the server and worker need SECRET_KEY: a long random "
            "value, e.g. from `python -c 'import secrets; print(secrets.token_urlsafe(50))'`, the same for every "
            "process of the deployment (it also encrypts credentials at rest). For development set DEBUG=1 "
            "or use `make run`, which keep a generated key in var/secret_key."
        )
    from helpdesk.services import development_secret_key

    SECRET_KEY = development_secret_key(VAR_DIR)

# Production switch (behind TLS): secure cookies, HSTS, redirect to HTTPS. `manage.py check --deploy` is clean
# with HTTPS=1, DEBUG off and a real SECRET_KEY.
HTTPS = env_bool("HTTPS", False)

SHARED_APPS = [
    "daphne",
    "helpdesk.tenancy",  # before django_tenants: its `migrate` extends theirs
    "django_tenants",
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",  # trigram and full-text search lookups (the search)
    "rest_framework",
    "knox",  # API tokens: stored hashed, idle expiry
    "axes",  # failed-login throttling
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "csp",
]
TENANT_APPS = [
    "django.contrib.contenttypes",
    "conversations",
    "tickets",
]
INSTALLED_APPS = SHARED_APPS + [app for app in TENANT_APPS if app not in SHARED_APPS]

TENANT_MODEL = "tenancy.Tenant"
TENANT_DOMAIN_MODEL = "tenancy.Domain"
AUTH_USER_MODEL = "tenancy.User"
PUBLIC_SCHEMA_URLCONF = "helpdesk.urls_public"
ROOT_URLCONF = "helpdesk.urls_tenant"
DATABASE_ROUTERS = ("django_tenants.routers.TenantSyncRouter",)

MIDDLEWARE = [
    # First: the visitor's language (cookie, Accept-Language) applies to every page, even the 404 of an unknown
    # host that TenantMainMiddleware answers itself (the language no longer lives in the session).
    "django.middleware.locale.LocaleMiddleware",
    "helpdesk.tenancy.middleware.TenantMiddleware",  # django-tenants', setting the search path once
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "axes.middleware.AxesMiddleware",  # last: turns a locked-out login into its 429 answer
]

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
            ],
        },
    },
]

WSGI_APPLICATION = "helpdesk.wsgi.application"
ASGI_APPLICATION = "helpdesk.asgi.application"

DATABASES = {"default": database_from_url(DATABASE_URL)}
# A bounded pool per process (psycopg_pool through Django): a burst waits up to DB_POOL_TIMEOUT seconds for a
# connection and is then answered 503 with Retry-After (helpdesk.api_errors.server_error), instead of opening
# connections until PostgreSQL refuses everyone. The budget against max_connections: docs/deployment.md.
DB_POOL_MAX_SIZE = env_int("DB_POOL_MAX_SIZE", 8)
DB_POOL_TIMEOUT = env_float("DB_POOL_TIMEOUT", 5.0)
if env_bool("DB_POOL", True):
    DATABASES["default"]["OPTIONS"]["pool"] = {  # type: ignore[index]
        "min_size": 1,
        "max_size": DB_POOL_MAX_SIZE,
        "timeout": DB_POOL_TIMEOUT,
        "max_idle": 300,
    }
# django-tenants sets the search path once per connection and schema, not before every statement (safe with the
# pool: closing a connection, which returns it to the pool, forgets the path, so the next user sets it again).
TENANT_LIMIT_SET_CALLS = True
DATA_UPLOAD_MAX_MEMORY_SIZE = 4 * 1024 * 1024  # Meta's webhook payloads reach 3 MB
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

CHANNEL_LAYERS = {
    "default": {
        # Pub/sub: no per-channel capacity to overflow and one connection per process; frames that are
        # still lost are recovered by the client's resume from the event log.
        "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
        "CONFIG": {
            "hosts": [REDIS_URL],
            "prefix": env_str("CHANNEL_LAYER_PREFIX", channel_layer_prefix_from_redis_url(REDIS_URL)),
        },
    }
}

# Files of messages (photos, voice notes, documents): Django's storage, the filesystem under var/ unless
# MEDIA_S3_BUCKET names an S3-compatible bucket (AWS, MinIO, Cloudflare R2, Wasabi, ...; django-storages).
# Never served from a public path or a bucket URL: only through /api/v1/messages/{id}/media/, which checks the
# tenant membership and streams the bytes, so the bucket stays private.
MEDIA_ROOT = env_str("MEDIA_ROOT", str(VAR_DIR / "media"))
MEDIA_S3_BUCKET = env_str("MEDIA_S3_BUCKET")
STORAGES: dict[str, dict[str, Any]] = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},  # Django's default
}
if MEDIA_S3_BUCKET:
    STORAGES["default"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": MEDIA_S3_BUCKET,
            "endpoint_url": env_str("MEDIA_S3_ENDPOINT_URL") or None,  # unset: AWS itself
            "region_name": env_str("MEDIA_S3_REGION") or None,
            # Unset: boto3's own chain (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, a profile, an instance role).
            "access_key": env_str("MEDIA_S3_ACCESS_KEY_ID") or None,
            "secret_key": env_str("MEDIA_S3_SECRET_ACCESS_KEY") or None,
            "location": env_str("MEDIA_S3_PREFIX").strip("/"),  # keys under a prefix (a shared bucket)
            "default_acl": None,  # no ACL sent: objects stay as private as the bucket
            "querystring_auth": True,  # a URL the storage makes would be signed and expire (we make none)
            "file_overwrite": False,  # a name already taken gets a suffix: never another message's file
            # Reading a file downloads it whole first: past 5 MB into a temporary file, not the process's memory.
            "max_memory_size": 5 * 1024 * 1024,
        },
    }

# E-mail (health alerts to a tenant's admins): SMTP when EMAIL_HOST is set, else printed to the console.
EMAIL_HOST = env_str("EMAIL_HOST")
EMAIL_BACKEND = (
    "django.core.mail.backends.smtp.EmailBackend"
    if EMAIL_HOST
    else "django.core.mail.backends.console.EmailBackend"
)
EMAIL_PORT = env_int("EMAIL_PORT", 587)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "helpdesk@localhost")

CELERY_BROKER_URL = celery_broker_from_redis_url(REDIS_URL)
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 4
# How long the webhook applier task waits for more webhooks before it ends (conversations.webhooks): under
# steady traffic a batch starts as soon as the last one ends, without a Celery round trip per wake-up.
WEBHOOK_APPLIER_LINGER_SECONDS = env_float("WEBHOOK_APPLIER_LINGER_SECONDS", 2.0)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE = {
    "sweep-webhook-events": {"task": "conversations.tasks.sweep_webhook_events", "schedule": 15.0},
    "sweep-outbound-messages": {"task": "conversations.tasks.sweep_outbound_messages", "schedule": 30.0},
    "check-deadlines": {"task": "tickets.tasks.check_deadlines", "schedule": 60.0},
    "seal-report-days": {"task": "tickets.tasks.seal_report_days", "schedule": 3600.0},
    "sweep-pending-statuses": {"task": "conversations.tasks.sweep_pending_statuses", "schedule": 3600.0},
    "refresh-numbers": {"task": "conversations.tasks.refresh_all_numbers", "schedule": 3600.0},
    "sweep-media-downloads": {"task": "conversations.tasks.sweep_media_downloads", "schedule": 300.0},
    "sync-templates": {"task": "conversations.tasks.sync_all_templates", "schedule": 6 * 3600.0},
    "start-due-broadcasts": {"task": "conversations.tasks.start_due_broadcasts", "schedule": 15.0},
    "sweep-broadcasts": {"task": "conversations.tasks.sweep_broadcasts", "schedule": 30.0},
}
# Broadcasts run on a queue of their own, so that replies never wait behind them; a worker started without -Q
# consumes both (make run starts one for each).
CELERY_TASK_QUEUES = (Queue("celery"), Queue("broadcasts"))
CELERY_TASK_ROUTES = {"conversations.tasks.run_broadcast": {"queue": "broadcasts"}}
# A broadcast send under way when its worker died: resent only after Meta had this long to report it.
BROADCAST_INTERRUPTED_GRACE_SECONDS = env_int("BROADCAST_INTERRUPTED_GRACE_SECONDS", 120)

# Checked on every path that sets a password: create_tenant_user, createsuperuser, do_add_member.
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 8}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: refuses locked-out accounts and addresses
    "django.contrib.auth.backends.ModelBackend",
]
# Sessions carry their user's id, so that signing out everywhere (or a password change) ends them all.
SESSION_ENGINE = "helpdesk.tenancy.sessions"

# Login throttling (django-axes): after LOGIN_FAILURE_LIMIT failures in a row for an account or from an
# address, that failure and every attempt for LOGIN_COOLOFF_MINUTES are answered 429 (API: Retry-After).
AXES_FAILURE_LIMIT = int(env_float("LOGIN_FAILURE_LIMIT", 5))
AXES_COOLOFF_TIME = timedelta(minutes=env_float("LOGIN_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]  # either one locks
AXES_USERNAME_FORM_FIELD = "username"  # what the login forms post and authenticate() receives
AXES_USERNAME_CALLABLE = "helpdesk.tenancy.throttling.attempted_username"
AXES_CLIENT_IP_CALLABLE = "helpdesk.tenancy.throttling.client_ip"
AXES_LOCKOUT_CALLABLE = "helpdesk.tenancy.throttling.lockout_response"
AXES_RESET_ON_SUCCESS = True
AXES_DISABLE_ACCESS_LOG = True  # failures are kept; successful logins are not logged a second time
AXES_VERBOSE = False
# Reverse proxies in front of the app that append to X-Forwarded-For and set X-Forwarded-Proto (0: none, the
# client address is the connection's). Only trust what your own proxies set.
PROXY_COUNT = int(env_float("PROXY_COUNT", 0))

# API tokens (django-rest-knox): only a hash is stored; a token unused for API_TOKEN_IDLE_HOURS expires
# (every use moves its expiry on), and tokens are deleted when the password changes, the user is deactivated
# or signs out everywhere. Clients send `Authorization: Token <token>`.
API_TOKEN_IDLE_HOURS = env_float("API_TOKEN_IDLE_HOURS", 24)
REST_KNOX = {
    "TOKEN_TTL": timedelta(hours=API_TOKEN_IDLE_HOURS),
    "AUTO_REFRESH": True,
    "MIN_REFRESH_INTERVAL": 60,
    "AUTH_HEADER_PREFIX": "Token",
}
# Open websockets re-check their user, membership and token or session this often (a safety net: revocations
# close them at once through the channel layer).
WEBSOCKET_RECHECK_SECONDS = env_float("WEBSOCKET_RECHECK_SECONDS", 60)

LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/inbox/"
LOGOUT_REDIRECT_URL = "/login/"

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("id", "Bahasa Indonesia")]
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_I18N = True
TIME_ZONE = "UTC"
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
WHITENOISE_USE_FINDERS = True  # serve straight from static/ (no collectstatic needed to run)
warnings.filterwarnings("ignore", message="No directory at")

REST_FRAMEWORK = {
    # DRF's browsable API (HTML forms, inline script) only in debug mode; JSON otherwise.
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        *(["rest_framework.renderers.BrowsableAPIRenderer"] if DEBUG else []),
    ],
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "helpdesk.tenancy.authentication.TokenAuthentication",  # knox's, one statement less
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["helpdesk.tenancy.permissions.IsTenantMember"],
    # The API takes JSON bodies only (anything else: 415). Multipart is never used by clients, and daphne
    # (Twisted) answers a malformed multipart POST with an empty 400 before Django sees it.
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_PAGINATION_CLASS": "conversations.pagination.NumberedPagination",  # with ?page_size=
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "helpdesk.api_errors.HelpdeskAutoSchema",
    "EXCEPTION_HANDLER": "helpdesk.api_errors.exception_handler",  # every error is {detail, code}
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Helpdesk API",
    "DESCRIPTION": "WhatsApp helpdesk: conversations, messages and replies of one tenant.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # three models have a `status`: name each enum after its model (keeps `check --deploy` free of warnings)
    "ENUM_NAME_OVERRIDES": {
        "ConversationStatusEnum": "conversations.models.ConversationStatus",
        "MessageStatusEnum": "conversations.models.MessageStatus",
        "TicketStatusEnum": "tickets.models.TicketStatus",
    },
}

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False  # the pages' scripts send it back in X-CSRFToken
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
if PROXY_COUNT > 0:  # our proxy terminates TLS and says so (it must overwrite a client's X-Forwarded-Proto)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
if HTTPS:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    LANGUAGE_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = True
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]  # load balancers and monitors probe over plain HTTP
    SECURE_HSTS_SECONDS = int(env_float("HSTS_SECONDS", 365 * 24 * 3600))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True

# Content security policy (django-csp): scripts and styles only from our own files, never inline (pages pass
# data in data-* attributes); websockets to our own host ('self' covers ws/wss of the same host).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "font-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
        **({"upgrade-insecure-requests": True} if HTTPS else {}),
    }
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django.channels.server": {"level": "WARNING"}, "axes": {"level": "WARNING"}},
}
