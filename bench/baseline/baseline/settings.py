"""Settings of the baseline site, read once from the environment.

The baseline is what a user would build instead of the stack: one Django
process that owns its data access. So, unlike the web tier
(``webapp/news_web/settings.py``), it has a database (the PostgreSQL primary,
connected to directly, not through HAProxy's pools) and a cache (Django's own
cache framework over both memcached nodes). It shares exactly one thing with
the web tier: the session. Same ``SECRET_KEY``, same signed-cookie engine, same
cookie name and age, so a member signed in on the stack is signed in here too,
and the benchmark can send both sites the same cookies. The baseline only ever
reads that session; it never writes one.

``scalestack/baseline.py`` sets every variable from the topology; secrets have
no default, so a process started without them stops at import time.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import environ
from django.core.exceptions import ImproperlyConfigured

PACKAGE_DIR = Path(__file__).resolve().parent
env = environ.Env()


def _required_str(name: str) -> str:
    """Read a secret that has no default; an unset or empty value stops start-up."""
    value: str = env.str(name)  # raises ImproperlyConfigured when unset
    if not value.strip():
        raise ImproperlyConfigured(f"Set the {name} environment variable to a non-empty value")
    return value


# The web tier's key: it signs the session cookie, so only with the same key
# does a cookie issued by the stack's login page verify here.
SECRET_KEY: str = _required_str("DJANGO_SECRET_KEY")
SERVER_NAME: str = env.str("SCALESTACK_SERVER_NAME", default="baseline")

DEBUG: bool = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS: list[str] = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
ROOT_URLCONF = "baseline.urls"
WSGI_APPLICATION = "baseline.wsgi.application"

# Only the app itself: its models are unmanaged views of the platform's tables
# (no migrations), and sessions need no app with signed cookies.
INSTALLED_APPS: list[str] = ["baseline"]

MIDDLEWARE: list[str] = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

TEMPLATES: list[dict[str, Any]] = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {"context_processors": ["django.template.context_processors.request"]},
    },
]

# --- The database: the primary, directly ------------------------------------
# psycopg 3 with Django 5.1+'s connection pool (psycopg_pool): one pool in the
# one process, as large as its thread count, so no request waits for a
# connection while a thread is free. ``CONN_MAX_AGE`` must stay 0 with a pool.
THREADS: int = env.int("BASELINE_THREADS", default=4)
DATABASES: dict[str, Any] = {"default": env.db_url("DATABASE_URL")}
DATABASES["default"]["OPTIONS"] = {
    "pool": {"min_size": 1, "max_size": THREADS, "timeout": env.float("DATABASE_POOL_TIMEOUT", default=5.0)},
    "connect_timeout": 3,
}
DATABASES["default"]["CONN_MAX_AGE"] = 0
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- The cache: Django's memcached backend over both nodes -------------------
# PyMemcacheCache spreads keys over the servers with pymemcache's HashClient.
# ``ignore_exc`` makes a memcached outage a cache miss rather than a 500, which
# is how a typical site configures it. Every page's data lives CACHE_TTL
# seconds and is never invalidated: the usual trade of a single-app site,
# bounded staleness instead of write-through.
CACHE_TTL: int = env.int("CACHE_TTL", default=30)
CACHES: dict[str, Any] = {
    "default": {
        "BACKEND": "django.core.cache.backends.memcached.PyMemcacheCache",
        "LOCATION": env.list("MEMCACHED_SERVERS"),
        "TIMEOUT": CACHE_TTL,
        # Its own namespace, so the platform's keys and the baseline's never meet.
        "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="baseline"),
        "OPTIONS": {
            "no_delay": True,
            "ignore_exc": True,
            "use_pooling": True,
            "max_pool_size": THREADS,
            "connect_timeout": 0.25,
            "timeout": 0.5,
        },
    },
}

# --- Sessions: the web tier's, read-only -------------------------------------
# These four must equal news_web.settings' (engine, cookie name, age and the
# key above), or the stack's cookies would not verify here.
SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"
SESSION_COOKIE_NAME = "sessionid"
SESSION_COOKIE_AGE = 14 * 24 * 3600
SESSION_COOKIE_HTTPONLY = True

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

# Everything to stdout; scalestack.baseline sends it to var/<profile>/baseline.log.
LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": f"%(asctime)s {SERVER_NAME} %(levelname)s %(name)s %(message)s"}},
    "handlers": {"stdout": {"class": "logging.StreamHandler", "stream": "ext://sys.stdout", "formatter": "plain"}},
    "root": {"handlers": ["stdout"], "level": "INFO"},
    "loggers": {"django": {"handlers": ["stdout"], "level": "INFO", "propagate": False}},
}
