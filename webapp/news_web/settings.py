"""Settings for the web tier, read once from the environment.

Post, "Load balancing": the web servers sit behind a load balancer, so any of
them must be able to answer any request. That is why this tier keeps no state of
its own: no database (``DATABASES = {}``), sessions and flash messages in signed
cookies, users and stories in the platform API ("Platform layer"), and static
files served by nginx rather than by the web servers.

Every value comes from an environment variable through ``environ.Env`` with a
typed read. Secrets have no default, so a process started without them stops
at import time instead of running with a guessable key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import environ
from django.core.exceptions import ImproperlyConfigured

# webapp/news_web/settings.py -> the package, webapp/, and the repository root.
PACKAGE_DIR: Path = Path(__file__).resolve().parent
REPO_ROOT: Path = PACKAGE_DIR.parent.parent

env = environ.Env()


def _required_str(name: str) -> str:
    """Read a secret that has no default; an unset or empty value stops start-up."""
    value: str = env.str(name)  # raises ImproperlyConfigured when unset
    if not value.strip():
        raise ImproperlyConfigured(f"Set the {name} environment variable to a non-empty value")
    return value


# --- Secrets (no defaults) ---------------------------------------------------
# Every web server must share this key: it signs the session cookie, so a cookie
# made on web-1 is only valid on web-2 if both have the same key.
SECRET_KEY: str = _required_str("DJANGO_SECRET_KEY")
# The service token the platform uses to authenticate the web tier.
PLATFORM_TOKEN: str = _required_str("PLATFORM_TOKEN")

# --- Identity and platform access ---------------------------------------------
SCALESTACK_SERVER_NAME: str = env.str("SCALESTACK_SERVER_NAME", default="web-dev")
# While this file exists /healthz answers 503, so HAProxy drains this server
# (``scalestack drain`` creates it). Empty: never draining.
SCALESTACK_DRAIN_FILE: str = env.str("SCALESTACK_DRAIN_FILE", default="")
# HAProxy's locally bound port for the platform pool (post, "Software load balancers").
PLATFORM_URL: str = env.str("PLATFORM_URL", default="http://127.0.0.1:9000").rstrip("/")
PLATFORM_TIMEOUT: float = env.float("PLATFORM_TIMEOUT", default=5.0)
# Kept connections to HAProxy per process; it should cover the worker's threads.
PLATFORM_POOL_MAXSIZE: int = env.int("PLATFORM_POOL_MAXSIZE", default=10)

# Who balances the platform calls. "haproxy" (the default, post "Software load
# balancers"): every call goes to PLATFORM_URL. "smart" (post "Smart clients"):
# this process balances over the servers in PLATFORM_SERVERS_FILE itself, see
# news_web/smart_client.py for what that costs.
PLATFORM_BALANCING: str = env.str("PLATFORM_BALANCING", default="haproxy").strip().lower()
if PLATFORM_BALANCING not in ("haproxy", "smart"):
    raise ImproperlyConfigured(f"PLATFORM_BALANCING must be 'haproxy' or 'smart', not {PLATFORM_BALANCING!r}")
# The launcher writes this from the topology; the smart client re-reads it when it changes.
PLATFORM_SERVERS_FILE: Path = Path(
    env.str("PLATFORM_SERVERS_FILE", default=str(REPO_ROOT / "var" / "etc" / "platform-servers.json"))
)
# Seconds a server that failed stays out of rotation before a health probe may bring it back.
PLATFORM_SMART_COOLDOWN: float = env.float("PLATFORM_SMART_COOLDOWN", default=2.0)
# Short, so a dead host costs little before the call moves to the next one (loopback here).
PLATFORM_SMART_CONNECT_TIMEOUT: float = env.float("PLATFORM_SMART_CONNECT_TIMEOUT", default=0.5)

# --- Django core ---------------------------------------------------------------
DEBUG: bool = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS: list[str] = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS: list[str] = env.list("CSRF_TRUSTED_ORIGINS", default=[])

ROOT_URLCONF = "news_web.urls"
WSGI_APPLICATION = "news_web.wsgi.application"

# No database apps: auth, contenttypes and the database session backend would
# each need tables. Users live in the platform; sessions live in cookies.
INSTALLED_APPS: list[str] = [
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "news_web",
]

# The web tier has no database at all (see the module docstring).
DATABASES: dict[str, Any] = {}

MIDDLEWARE: list[str] = [
    # Outermost, so that every response (CSRF failures and redirects included)
    # carries the X-Served-By / X-Platform-Served-By / X-Cache headers.
    "news_web.middleware.PlatformTraceMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Innermost, so that it sees exceptions from views before Django turns them
    # into a generic 500: platform outages become a friendly 503.
    "news_web.middleware.PlatformErrorMiddleware",
]

TEMPLATES: list[dict[str, Any]] = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            # Autoescape stays on (the default); user data is never marked safe.
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.messages.context_processors.messages",
                # MEDIA_URL, for avatars.
                "django.template.context_processors.media",
                "news_web.context_processors.scalestack",
            ],
        },
    },
]

# --- Sessions and messages: signed cookies, no server-side store -------------
# A session made on web-1 keeps working on web-2 when web-1 is stopped, because
# the whole session travels in the cookie, signed with SECRET_KEY.
# Known trade-off: logout clears the cookie in this browser, but the server keeps
# no list of sessions, so a copy of the cookie stays valid until it expires.
SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"
SESSION_COOKIE_AGE = 14 * 24 * 3600  # two weeks, then the signature expires
MESSAGE_STORAGE = "django.contrib.messages.storage.cookie.CookieStorage"

# Off by default because the dev stack serves plain HTTP on localhost.
SECURE_COOKIES: bool = env.bool("DJANGO_SECURE_COOKIES", default=False)
SESSION_COOKIE_HTTPONLY = True  # the messages cookie follows this flag too
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = SECURE_COOKIES
CSRF_COOKIE_HTTPONLY = True  # no JavaScript needs it: forms use {% csrf_token %}
CSRF_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SECURE = SECURE_COOKIES
CSRF_FAILURE_VIEW = "news_web.views.csrf_failure"

# --- Static files: hashed names, served by nginx ----------------------------
STATIC_URL: str = env.str("STATIC_URL", default="http://localhost:8081/static/")
STATIC_ROOT: Path = Path(env.str("STATIC_ROOT", default=str(REPO_ROOT / "var" / "static")))
STORAGES: dict[str, dict[str, Any]] = {
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.ManifestStaticFilesStorage"},
}

# --- User uploads: stored by the platform, served by the static host ---------
# Avatars are written by the platform under its MEDIA_ROOT and served by nginx
# (behind a CDN) at this URL; pages build ``MEDIA_URL + user.avatar``. The
# names are versioned by content, so the CDN may cache them forever.
MEDIA_URL: str = env.str("MEDIA_URL", default="http://localhost:8081/media/")

# --- Internationalisation ------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

# --- Logging: everything to stdout, supervisord/gunicorn capture it ----------
LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": f"%(asctime)s {SCALESTACK_SERVER_NAME} %(levelname)s %(name)s %(message)s"},
    },
    "handlers": {
        "stdout": {"class": "logging.StreamHandler", "stream": "ext://sys.stdout", "formatter": "plain"},
    },
    "root": {"handlers": ["stdout"], "level": "INFO"},
    "loggers": {
        "django": {"handlers": ["stdout"], "level": "INFO", "propagate": False},
        "news_web": {"handlers": ["stdout"], "level": "INFO", "propagate": False},
    },
}
