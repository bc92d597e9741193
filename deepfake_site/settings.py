"""Settings for the deepfake detection service: one module, driven by environment variables.

Every variable is listed, with its meaning, in `.env.example`. Defaults give a working first run on
a laptop (SQLite, an embedded broker); `DJANGO_DEBUG=false` switches every security default on.
"""

from __future__ import annotations

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# A local .env is a convenience for development; real deployments set the environment.
env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DJANGO_DEBUG", default=True)

# Writable state (SQLite files, uploads, the embedded broker) lives in one ignored folder.
VAR_DIR = Path(env.str("DJANGO_VAR_DIR", default=str(BASE_DIR / "var")))
# SQLite and the embedded broker cannot create their folder themselves.
VAR_DIR.mkdir(parents=True, exist_ok=True)

if DEBUG:
    SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="insecure-development-key-not-for-production")
else:
    # No default: production must never run on a key that is in the repository.
    SECRET_KEY = env.str("DJANGO_SECRET_KEY")

ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])
# A refused form gets a page in the site's layout that says what to do (Django's is bare).
CSRF_FAILURE_VIEW = "deepfake_site.errors.csrf_failure"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "drf_spectacular",
    "django_filters",
    "drf_spectacular_sidecar",
    "allauth",
    "allauth.account",
    "accounts",
    "detection",
]

MIDDLEWARE = [
    "deepfake_site.logging.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Content-Security-Policy and Permissions-Policy on pages and on what whitenoise below serves.
    "deepfake_site.security_headers.SecurityHeadersMiddleware",
    # Serves collected static files from the web process itself (gunicorn in docker compose).
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
]

ROOT_URLCONF = "deepfake_site.urls"
WSGI_APPLICATION = "deepfake_site.wsgi.application"
ASGI_APPLICATION = "deepfake_site.asgi.application"

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
                "deepfake_site.context_processors.site",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
DATABASES = {
    "default": env.db_url(
        "DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}"
    ),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web server and the worker write concurrently: wait for the lock instead of failing.
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 20
else:
    # Reuse connections for a minute; health checks catch a dead one before it is used.
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        # No JIT compilation: our queries are short, and PostgreSQL spent about 130 ms compiling
        # the CSV export's query at 100k rows before sending its first row (bench.growth).
        options = DATABASES["default"].setdefault("OPTIONS", {})
        options["options"] = f"{options.get('options', '')} -c jit=off".strip()
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis, cache ---------------------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
# Bounded connect timeout: an upload must not hang when Redis is down (the sweeper re-queues).
REDIS_SOCKET_TIMEOUT = env.float("REDIS_SOCKET_TIMEOUT", default=2.0)

if REDIS_URL:
    # Shared by every web process, so rate limits and throttles hold across them. While Redis is
    # unreachable it counts in each process's memory (deepfake_site/cache.py): limits hold per
    # process instead of failing open (none) or closed (every page and API call a 500).
    CACHES = {
        "default": {
            "BACKEND": "deepfake_site.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": {
                "socket_connect_timeout": REDIS_SOCKET_TIMEOUT,
                "socket_timeout": REDIS_SOCKET_TIMEOUT,
            },
        }
    }
else:
    # A folder cache is shared by every local process (web and worker) and needs no server.
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }

# --- Celery ---------------------------------------------------------------------------------
# With no Redis, kombu's SQLAlchemy transport over SQLite is a broker that needs no server.
CELERY_BROKER_URL = env.str(
    "CELERY_BROKER_URL",
    default=REDIS_URL or f"sqla+sqlite:///{VAR_DIR / 'celery-broker.sqlite3'}",
)
# Soft < hard < visibility timeout, or a slow task is delivered a second time while it still runs.
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=60)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=90)
CELERY_BROKER_VISIBILITY_TIMEOUT = env.int("CELERY_BROKER_VISIBILITY_TIMEOUT", default=300)
# Tasks a worker process runs on one database connection before Celery closes it anyway (see
# deepfake_site/celery.py); Django's DATABASE_CONN_MAX_AGE still ends it sooner.
CELERY_DB_REUSE_MAX = env.int("CELERY_DB_REUSE_MAX", default=1000)
# How often an idle worker asks the embedded SQLite broker for work (it cannot be woken up): the
# mean wait a message adds is half of it; each poll is one small SQLite query.
CELERY_EMBEDDED_BROKER_POLL_SECONDS = env.float(
    "CELERY_EMBEDDED_BROKER_POLL_SECONDS", default=0.05
)
# Each worker process holds one message at a time: a killed child loses at most that one, and a
# long inference does not keep queued work away from idle workers.
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_WORKER_CONCURRENCY = env.int("CELERY_WORKER_CONCURRENCY", default=1)
# How long a new pool child may take to report in. Each child loads TensorFlow and the model first
# (8-17 s on 2 busy cores); with Celery's default of 4 s every replacement child was killed before
# it was up, in a loop, after the first one died.
CELERY_WORKER_PROC_ALIVE_TIMEOUT = env.float("CELERY_WORKER_PROC_ALIVE_TIMEOUT", default=120.0)
# The queue tasks go to and workers read; the end-to-end tests use one per run, so messages left
# over from an earlier run never reach their worker.
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_TASK_DEFAULT_QUEUE", default="celery")
# TensorFlow threads per worker process (0: TensorFlow decides, one per core). One each: the
# face step and the model are small, and TensorFlow's spinning thread pools took the core the
# web server needed (8 clients, 2 cores: 17.9 images/s with TensorFlow's choice, 28.2 with one
# thread; docs/performance.md). More throughput comes from more worker processes, not threads.
ML_INTRA_OP_THREADS = env.int("ML_INTRA_OP_THREADS", default=1) or None
ML_INTER_OP_THREADS = env.int("ML_INTER_OP_THREADS", default=1) or None
# Model directory the workers load; empty means the model shipped in ml/models/default.
ML_MODEL_DIR = env.str("ML_MODEL_DIR", default="")
# How long a web process reuses its answer to "which model version serves now?" (read from the
# workers' heartbeats; every upload asks): a burst of uploads reads it once. 0 reads it each time.
DETECTION_MODEL_VERSION_CACHE_SECONDS = env.float(
    "DETECTION_MODEL_VERSION_CACHE_SECONDS", default=5.0
)
# Periodic sweeper (celery beat): rows pending longer than this are queued again if the broker
# lost their message (one still queued behind a backlog is left alone).
DETECTION_SWEEP_INTERVAL = env.int("DETECTION_SWEEP_INTERVAL", default=60)
DETECTION_STALE_AFTER = env.int("DETECTION_STALE_AFTER", default=120)
# Stored files no row refers to (an upload rolled back after its files were written) are removed
# by an hourly task once older than this; the grace period covers transactions still open.
DETECTION_ORPHAN_FILES_AFTER = env.int("DETECTION_ORPHAN_FILES_AFTER", default=3600)
# Attempts before a detection that keeps failing is marked failed for good.
DETECTION_MAX_ATTEMPTS = env.int("DETECTION_MAX_ATTEMPTS", default=3)
# Uploads older than this many days are deleted, rows and files; 0 keeps them forever.
DETECTION_RETENTION_DAYS = env.int("DETECTION_RETENTION_DAYS", default=30)
# Upload limits: checked before the image is decoded.
DETECTION_MAX_UPLOAD_BYTES = env.int("DETECTION_MAX_UPLOAD_BYTES", default=10 * 1024 * 1024)
DETECTION_MAX_FILES_PER_REQUEST = env.int("DETECTION_MAX_FILES_PER_REQUEST", default=20)
DETECTION_MAX_PIXELS = env.int("DETECTION_MAX_PIXELS", default=40_000_000)
# Faces judged per image, largest first: each costs a model call, and a crowd photo would
# otherwise hold a worker for seconds.
DETECTION_MAX_FACES = env.int("DETECTION_MAX_FACES", default=10)
# The browser model of the private check page (python -m ml export-web writes it): its manifest's
# version and thresholds judge the verdicts browsers save. Not read from the environment: the
# page serves this very folder as static files, so it cannot live elsewhere (tests point it at
# their own manifests).
DETECTION_WEB_MODEL_DIR = str(BASE_DIR / "static" / "private-check" / "model")
# C2PA Content Credentials are checked against these root certificates (a PEM file, such as the
# C2PA trust list); empty: signatures are still verified, but no signer is reported as trusted.
DETECTION_C2PA_TRUST_ANCHORS = env.str("DETECTION_C2PA_TRUST_ANCHORS", default="")

# Video clips (MP4, WebM, MOV, recognised by content). Limits checked from the container's
# headers before any frame is decoded; a clip over one is refused with nothing stored.
DETECTION_VIDEO_MAX_BYTES = env.int("DETECTION_VIDEO_MAX_BYTES", default=100 * 1024 * 1024)
DETECTION_VIDEO_MAX_SECONDS = env.float("DETECTION_VIDEO_MAX_SECONDS", default=120.0)
# Pixels per frame: 4K UHD. A larger frame costs the decoder memory and the face step time.
DETECTION_VIDEO_MAX_PIXELS = env.int("DETECTION_VIDEO_MAX_PIXELS", default=3840 * 2160)
DETECTION_VIDEO_MAX_FRAMES = env.int("DETECTION_VIDEO_MAX_FRAMES", default=20_000)
# Frame rates outside this range are a broken or hostile header, not a real clip.
DETECTION_VIDEO_MAX_FRAME_RATE = env.float("DETECTION_VIDEO_MAX_FRAME_RATE", default=240.0)
# The worker judges this many frames per second of video, evenly spread, and at most the cap
# (a long clip is sampled more thinly): each sampled frame costs a face step and model calls.
DETECTION_VIDEO_SAMPLE_FPS = env.float("DETECTION_VIDEO_SAMPLE_FPS", default=2.0)
DETECTION_VIDEO_MAX_SAMPLES = env.int("DETECTION_VIDEO_MAX_SAMPLES", default=120)

# A whole upload request above this is refused at its first file part, unread (413): room for
# the maximum number of files of the maximum size, plus 1 MiB for fields and part headers.
# One video of the largest size must fit too (the larger of the two; not a full batch of videos).
DETECTION_MAX_REQUEST_BYTES = env.int(
    "DETECTION_MAX_REQUEST_BYTES",
    default=max(
        DETECTION_MAX_FILES_PER_REQUEST * DETECTION_MAX_UPLOAD_BYTES, DETECTION_VIDEO_MAX_BYTES
    )
    + 1024 * 1024,
)
# Our handler first: it stops reading a file as soon as it passes its limit (an image's or a
# video's, by its first bytes); Django's handlers alone would spool a file of any size to disk
# before the view sees it.
FILE_UPLOAD_HANDLERS = [
    "detection.uploads.streaming.UploadLimitHandler",
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "django.core.files.uploadhandler.TemporaryFileUploadHandler",
]

# Django refuses larger non-file request bodies (form fields) before views run.
DATA_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
# Twice the per-request maximum: a few files too many get the upload page's or API's own clear
# message (detection_create_many), while the parser still stops a flood of file parts early.
DATA_UPLOAD_MAX_NUMBER_FILES = DETECTION_MAX_FILES_PER_REQUEST * 2

# --- Auth, accounts -------------------------------------------------------------------------
# Our own user model from the start: swapping it later, once databases hold users, is a rebuild.
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "detection:upload"
ACCOUNT_LOGOUT_REDIRECT_URL = "account_login"
ACCOUNT_LOGIN_METHODS = {"username", "email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "username*", "password1*", "password2*"]
# Sign-up must not say which e-mail addresses have accounts: allauth can only answer a taken
# address like a fresh one ("check your inbox", and a mail saying the account exists) when every
# address is confirmed before sign-in. With the default console backend the mails are printed by
# the web process. Other values ("none", "optional") let sign-up reveal taken addresses.
ACCOUNT_EMAIL_VERIFICATION = env.str("ACCOUNT_EMAIL_VERIFICATION", default="mandatory")
ACCOUNT_PREVENT_ENUMERATION = True
# Confirming the address in the browser that signed up signs in, as sign-up itself used to.
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = False
# Failed logins per IP and per account; allauth counts them in the shared cache.
ACCOUNT_RATE_LIMITS = {
    "login_failed": env.str("ACCOUNT_LOGIN_FAILED_RATE", default="10/m/ip,5/5m/key"),
}
# accounts: rate limits count per client IP; behind a reverse proxy every request would otherwise
# share the proxy's address (one lockout for everyone). Set to the number of trusted proxies that
# append to X-Forwarded-For (1 behind a single nginx/traefik); 0 uses REMOTE_ADDR.
ALLAUTH_TRUSTED_PROXY_COUNT = env.int("ALLAUTH_TRUSTED_PROXY_COUNT", default=0)
# accounts: the sign-in form labels its first field "Username or email" instead of "Login";
# sign-up with a taken address costs the same password hash as a fresh one.
ACCOUNT_FORMS = {"login": "accounts.forms.LoginForm", "signup": "accounts.forms.SignupForm"}
# accounts: the per-account sign-in lockout counts per account, whichever login was typed.
ACCOUNT_ADAPTER = "accounts.adapter.AccountAdapter"
EMAIL_BACKEND = env.str(
    "DJANGO_EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend"
)
DEFAULT_FROM_EMAIL = env.str("DJANGO_DEFAULT_FROM_EMAIL", default="deepfake-detector@localhost")

# --- REST API -------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "detection.api.pagination.PageNumberPagination",
    "PAGE_SIZE": 25,
    # Adds the errors DRF itself answers with (401, 403, 404, 429) to every operation.
    "DEFAULT_SCHEMA_CLASS": "deepfake_site.api_schema.AutoSchema",
    # One error shape for every refusal: {"detail", "code", "errors": [...]}.
    "EXCEPTION_HANDLER": "deepfake_site.api_errors.api_exception_handler",
    # "reads" counts requests (a DRF throttle); "uploads" and "uploads_daily" count images, charged
    # atomically per request by detection.throttles.upload_budget_charge (pages and API alike).
    "DEFAULT_THROTTLE_RATES": {
        "uploads": env.str("API_THROTTLE_UPLOADS", default="30/min"),
        "uploads_daily": env.str("API_THROTTLE_UPLOADS_DAILY", default="1000/day"),
        "reads": env.str("API_THROTTLE_READS", default="600/min"),
    },
}
# The longest a GET of one detection may wait for its verdict (?wait=): a waiting request holds
# one of the web server's threads (Procfile.dev: gthread) and nothing else.
API_MAX_WAIT_SECONDS = env.float("API_MAX_WAIT_SECONDS", default=30.0)
SPECTACULAR_SETTINGS = {
    "TITLE": "Deepfake detection API",
    "DESCRIPTION": "Upload images, get real/fake verdicts, review your history.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI assets come from the sidecar package: no CDN at run time.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Two fields named "label" with different choices (a detection's, a face's): named here, so
    # the detection's keeps the component name clients were generated with.
    "ENUM_NAME_OVERRIDES": {
        "LabelEnum": "detection.models.Detection.Label",
        "FaceLabelEnum": "detection.models.DetectionFace.Label",
        # Where a file declared its provenance: a name of its own, not a generic "SourceEnum".
        "ProvenanceSourceEnum": "detection.uploads.provenance.SOURCES",
    },
}

# --- Static and media -----------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = Path(env.str("DJANGO_STATIC_ROOT", default=str(VAR_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"]
# Uploads are private: MEDIA_ROOT has no URL; images go out only through an owner-checked view.
MEDIA_ROOT = Path(env.str("DJANGO_MEDIA_ROOT", default=str(VAR_DIR / "media")))
MEDIA_URL = None
# Uploads go through the storage API only, so an object store can replace the disk when workers
# run on other hosts (docs/scaling.md). Naming a bucket switches to an S3-compatible store
# (django-storages); otherwise they stay in MEDIA_ROOT. An empty value below is left to boto3's
# own lookup (AWS_* variables, ~/.aws, an instance role).
DETECTION_S3_BUCKET = env.str("DETECTION_S3_BUCKET", default="")
_s3_options = {
    # Only for a store other than AWS (MinIO, Ceph, Garage...), e.g. http://minio.internal:9000.
    "endpoint_url": env.str("DETECTION_S3_ENDPOINT_URL", default=""),
    # Requests are signed for a region: AWS needs the bucket's, other stores mostly accept any.
    "region_name": env.str("DETECTION_S3_REGION", default=""),
    # A key pair of its own, so the service's credentials can be limited to this one bucket.
    "access_key": env.str("DETECTION_S3_ACCESS_KEY_ID", default=""),
    "secret_key": env.str("DETECTION_S3_SECRET_ACCESS_KEY", default=""),
    # "path" for stores without a host name per bucket (MinIO's default); empty: boto3 decides.
    "addressing_style": env.str("DETECTION_S3_ADDRESSING_STYLE", default=""),
    # A key prefix, so that one bucket can hold several deployments.
    "location": env.str("DETECTION_S3_PREFIX", default=""),
}
if DETECTION_S3_BUCKET:
    _default_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": DETECTION_S3_BUCKET,
            # Names are random (detection_upload_to), so saving checks no existing key: one
            # request less per upload. Objects get the bucket's ACL: keep the bucket private.
            "file_overwrite": True,
            **{name: value for name, value in _s3_options.items() if value},
        },
    }
else:
    _default_storage = {
        "BACKEND": env.str(
            "DJANGO_FILE_STORAGE", default="django.core.files.storage.FileSystemStorage"
        )
    }
STORAGES = {
    "default": _default_storage,
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
FILE_UPLOAD_PERMISSIONS = 0o600
FILE_UPLOAD_DIRECTORY_PERMISSIONS = 0o700

# --- Internationalisation -------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("DJANGO_TIME_ZONE", default="UTC")
USE_I18N = True
# English only, but allauth's Title Case labels and buttons become sentence case, like ours.
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_TZ = True

# --- Security -------------------------------------------------------------------------------
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
SECURE_REFERRER_POLICY = "same-origin"
if not DEBUG:
    # Behind a TLS-terminating proxy that sets X-Forwarded-Proto.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
    # /health/ is probed over plain HTTP inside the compose network.
    SECURE_REDIRECT_EXEMPT = [r"^health/$"]
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=60 * 60 * 24 * 365)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=True)

# --- Logging --------------------------------------------------------------------------------
LOG_LEVEL = env.str("DJANGO_LOG_LEVEL", default="INFO")
# JSON lines for machines (production); plain text reads better in a terminal.
LOG_JSON = env.bool("LOG_JSON", default=not DEBUG)
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "context": {"()": "deepfake_site.logging.ContextFilter"},
        "server_access": {"()": "deepfake_site.logging.ServerAccessFilter"},
    },
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s %(detection_id)s",
        },
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "filters": ["context"],
            "formatter": "json" if LOG_JSON else "plain",
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    # One line per request. Every logger below writes through root's handler only, and a web
    # server's access line is kept only below 400: django.request writes the 4xx/5xx ones.
    "loggers": {
        # Named so that dictConfig removes Django's own handlers on "django" (a console handler
        # when DEBUG, mail_admins): with them each django.request line was written twice. INFO
        # is Django's own level for it.
        "django": {"level": "INFO"},
        "django.db.backends": {"level": "WARNING"},
        # runserver's access log (manage.py runserver by hand; make run uses gunicorn).
        "django.server": {"filters": ["server_access"], "propagate": True},
        # gunicorn's access log (--access-logfile - in the Dockerfile): configuring it here, in
        # each worker once the app loads, replaces gunicorn's plain-text handler with ours.
        "gunicorn.access": {"filters": ["server_access"], "propagate": True},
    },
}
