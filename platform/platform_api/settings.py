"""Settings for the platform service, read once from the environment.

One module, typed reads, safe local defaults; secrets have no default so a
missing one stops start-up (cookiecutter-django's pattern). The launcher
(``scalestack.topology``) is the only thing that writes these variables.
"""
from __future__ import annotations

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent
# platform/platform_api/settings.py -> the repository root (for var/ defaults).
REPO_ROOT = BASE_DIR.parent.parent
env = environ.Env()

SECRET_KEY: str = env.str("DJANGO_SECRET_KEY")
PLATFORM_TOKEN: str = env.str("PLATFORM_TOKEN")
DEBUG: bool = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS: list[str] = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
SERVER_NAME: str = env.str("SCALESTACK_SERVER_NAME", default="platform-dev")
# While this file exists /v1/healthz answers 503 (scalestack drain). Empty: never draining.
SCALESTACK_DRAIN_FILE: str = env.str("SCALESTACK_DRAIN_FILE", default="")

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django_celery_results",
    "platform_api",
]
AUTH_USER_MODEL = "platform_api.User"

MIDDLEWARE = [
    "platform_api.middleware.ServedByMiddleware",
    "django.middleware.common.CommonMiddleware",
    # Avatar uploads: an oversized body is refused unread, the rest is kept
    # for the idempotency fingerprint (see the class docstring) ...
    "platform_api.avatars.UploadLimitMiddleware",
    # ... then parsed for PUT, which Django itself only does for POST.
    "ninja.compatibility.files.fix_request_files_middleware",
]
ROOT_URLCONF = "platform_api.urls"
# Only django-ninja's interactive docs page (/v1/docs) renders a template.
TEMPLATES = [{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True}]
WSGI_APPLICATION = "platform_api.wsgi.application"
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
APPEND_SLASH = False


def _database(url_var: str, default: str) -> dict:
    """A PostgreSQL alias behind one of HAProxy's database pools.

    Connections come from psycopg_pool (Django 5.1+'s ``OPTIONS["pool"]``), one
    pool per worker process; ``CONN_MAX_AGE`` must stay 0 with a pool.
    """
    config = env.db_url(url_var, default=default)
    config["OPTIONS"] = {
        "pool": {
            "min_size": env.int("DATABASE_POOL_MIN", default=1),
            "max_size": env.int("DATABASE_POOL_MAX", default=4),
            "timeout": env.float("DATABASE_POOL_TIMEOUT", default=5.0),
            # HAProxy balances connections, not queries: a pooled connection
            # stays on the server it was opened to. Recycling connections lets
            # the read pool spread them again after a replica returns.
            "max_lifetime": env.float("DATABASE_POOL_MAX_LIFETIME", default=60.0),
            # psycopg_pool retries a failed connect with exponential backoff
            # (1, 2, 4, 8 s...). After a 10 s outage of the primary that could
            # leave the pool asleep for seconds after the primary is back;
            # giving up after 2 s makes the next request start afresh at once.
            "reconnect_timeout": env.float("DATABASE_POOL_RECONNECT_TIMEOUT", default=2.0),
        },
        "connect_timeout": 3,
    }
    config["CONN_MAX_AGE"] = 0
    # Check a pooled connection before handing it out: HAProxy cuts the
    # connections of a server it marks down (on-marked-down shutdown-sessions),
    # and a request must get a fresh connection, not that dead one.
    config["CONN_HEALTH_CHECKS"] = True
    return config


# The post's software load balancer: writes go to HAProxy's write pool
# (localhost:9002, the primary only) and reads to its read pool (localhost:9001).
DATABASES = {
    "default": _database("DATABASE_WRITE_URL", "postgres://scalestack:scalestack@127.0.0.1:9002/scalestack"),
    "replica": _database("DATABASE_READ_URL", "postgres://scalestack:scalestack@127.0.0.1:9001/scalestack"),
}
DATABASES["replica"]["TEST"] = {"MIRROR": "default"}
DATABASE_ROUTERS = ["platform_api.routers.ReadWriteRouter"]
# The read fence (platform_api/primary.py): read from the replica only once it
# has replayed every write acknowledged so far. Off only to demonstrate what
# replica lag looks like without it.
READ_FENCE_ENABLED: bool = env.bool("READ_FENCE_ENABLED", default=True)
# After the primary fails to answer, skip it for this long (reads use the
# replica, writes get a 503 at once) instead of waiting on it in every request.
PRIMARY_RETRY_SECONDS: float = env.float("PRIMARY_RETRY_SECONDS", default=1.0)

# The data cache: pymemcache's HashClient over every memcached node (the post's
# smart client). DATA_CACHE_ENABLED=false turns it off so the two can be compared.
MEMCACHED_SERVERS: list[str] = env.list("MEMCACHED_SERVERS", default=["127.0.0.1:11311", "127.0.0.1:11312"])
DATA_CACHE_ENABLED: bool = env.bool("DATA_CACHE_ENABLED", default=True)
# How the smart client treats a node that stops answering (pymemcache's
# HashClient; see platform_api.memcache_client). Every command waits at most
# MEMCACHED_TIMEOUT, so a hung node costs a request half a second, not a hang.
# After MEMCACHED_RETRY_ATTEMPTS failures, MEMCACHED_RETRY_TIMEOUT seconds
# apart, the node leaves the hash ring and its keys go to the other nodes; every
# MEMCACHED_DEAD_TIMEOUT seconds it is tried again, and flushed before it is
# put back so it cannot serve values from before its outage.
MEMCACHED_CONNECT_TIMEOUT: float = env.float("MEMCACHED_CONNECT_TIMEOUT", default=0.25)
MEMCACHED_TIMEOUT: float = env.float("MEMCACHED_TIMEOUT", default=0.5)
MEMCACHED_RETRY_ATTEMPTS: int = env.int("MEMCACHED_RETRY_ATTEMPTS", default=1)
MEMCACHED_RETRY_TIMEOUT: float = env.float("MEMCACHED_RETRY_TIMEOUT", default=1.0)
MEMCACHED_DEAD_TIMEOUT: float = env.float("MEMCACHED_DEAD_TIMEOUT", default=5.0)
CACHE_KEY_PREFIX: str = env.str("CACHE_KEY_PREFIX", default="ss")

# User uploads (avatars, platform_api/avatars.py) are written here and served
# from here by the static host (nginx, behind a CDN), never by this service.
MEDIA_ROOT: Path = Path(env.str("MEDIA_ROOT", default=str(REPO_ROOT / "var" / "media")))

# Test-only hooks (a slow read-through fill, to reproduce the stale-fill race).
# Never on in the dev stack; the test stack turns it on explicitly.
FAULT_INJECTION: bool = env.bool("SCALESTACK_FAULT_INJECTION", default=False)
if FAULT_INJECTION:
    # Inside ServedByMiddleware, whose begin_request() resets the delay first.
    MIDDLEWARE.append("platform_api.faults.FillDelayMiddleware")

# ---------------------------------------------------------------------------
# Off-line processing: RabbitMQ (events for the pika consumers) and Celery.
RABBITMQ_URL: str = env.str("RABBITMQ_URL", default="amqp://scalestack:scalestack@127.0.0.1:5673/%2F")
RABBITMQ_MANAGEMENT_URL: str = env.str("RABBITMQ_MANAGEMENT_URL", default="http://127.0.0.1:15673")

CELERY_BROKER_URL = RABBITMQ_URL
# Task state and chord bookkeeping live in PostgreSQL (django-celery-results),
# so a worker or broker restart loses no result.
CELERY_RESULT_BACKEND = "django-db"
CELERY_RESULT_EXTENDED = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
# Acknowledge a task only after it ran, and give it back if the worker dies
# mid-task: a task is never lost, so every task must be idempotent.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# Long tasks: a worker reserves one task at a time, so a slow export doesn't
# hold back tasks another worker could run.
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_TRACK_STARTED = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_TIMEZONE = "UTC"

# Schedules (seconds). The test stack shortens them so tests take seconds.
TRENDING_INTERVAL: int = env.int("SCALESTACK_TRENDING_SECONDS", default=60)
OUTBOX_RELAY_INTERVAL: int = env.int("SCALESTACK_RELAY_SECONDS", default=2)
BEAT_LEASE_POLL: float = env.float("SCALESTACK_BEAT_POLL_SECONDS", default=2.0)
CLICK_RETENTION_DAYS: int = env.int("SCALESTACK_CLICK_RETENTION_DAYS", default=30)
# Seconds an export pauses between chunks. 0 in production; the dev stack sets
# a little so that the job page's polling and progress bar can be seen at work.
EXPORT_CHUNK_DELAY: float = env.float("SCALESTACK_EXPORT_CHUNK_DELAY", default=0.0)
MAPREDUCE_PARTITIONS: int = env.int("SCALESTACK_MAPREDUCE_PARTITIONS", default=4)
# Followers per fan-out message: a big author's story becomes many small
# messages, interleaved with everyone else's.
FANOUT_CHUNK_SIZE: int = env.int("SCALESTACK_FANOUT_CHUNK", default=500)

PASSWORD_HASHERS = env.list(
    "DJANGO_PASSWORD_HASHERS",
    default=[
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
        "django.contrib.auth.hashers.ScryptPasswordHasher",
    ],
)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # pika logs every connection step at INFO; the publisher opens one per thread.
        "pika": {"level": "WARNING"},
    },
}
