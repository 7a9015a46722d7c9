"""Web tier settings: required secrets, typed env reads, no database, no stdlib shadowing.

Settings are read once per process, so each case runs in a fresh Python process
with an environment built from scratch (nothing inherited from the developer's shell).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
WEBAPP_DIR = REPO_ROOT / "webapp"
REQUIRED = {"DJANGO_SECRET_KEY": "k", "PLATFORM_TOKEN": "t"}

DUMP_SETTINGS = """
import json, sys
from django.conf import settings
import django
django.setup()
print(json.dumps({
    "PLATFORM_URL": settings.PLATFORM_URL,
    "PLATFORM_TIMEOUT": settings.PLATFORM_TIMEOUT,
    "SCALESTACK_SERVER_NAME": settings.SCALESTACK_SERVER_NAME,
    "STATIC_URL": settings.STATIC_URL,
    "STATIC_ROOT": str(settings.STATIC_ROOT),
    "MEDIA_URL": settings.MEDIA_URL,
    "STORAGE": settings.STORAGES["staticfiles"]["BACKEND"],
    "DEBUG": settings.DEBUG,
    "ALLOWED_HOSTS": settings.ALLOWED_HOSTS,
    "CSRF_TRUSTED_ORIGINS": settings.CSRF_TRUSTED_ORIGINS,
    "DATABASES": settings.DATABASES,
    "INSTALLED_APPS": settings.INSTALLED_APPS,
    "SESSION_ENGINE": settings.SESSION_ENGINE,
    "MESSAGE_STORAGE": settings.MESSAGE_STORAGE,
    "SCALESTACK_DRAIN_FILE": settings.SCALESTACK_DRAIN_FILE,
}))
"""


def run_python(code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run ``code`` with webapp/ on the path and exactly ``env`` (plus PATH)."""
    full_env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(WEBAPP_DIR),
                "DJANGO_SETTINGS_MODULE": "news_web.settings", **env}
    return subprocess.run(
        [sys.executable, "-c", code], env=full_env, cwd=WEBAPP_DIR, capture_output=True, text=True, timeout=60
    )


def dump(env: dict[str, str]) -> dict[str, Any]:
    """The interesting settings under ``env``."""
    result = run_python(DUMP_SETTINGS, env)
    assert result.returncode == 0, result.stderr
    loaded: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return loaded


@pytest.mark.parametrize("missing", ["DJANGO_SECRET_KEY", "PLATFORM_TOKEN"])
@pytest.mark.parametrize("how", ["unset", "empty"])
def test_a_missing_secret_stops_start_up(missing: str, how: str) -> None:
    env = dict(REQUIRED)
    if how == "unset":
        del env[missing]
    else:
        env[missing] = "  "
    result = run_python(DUMP_SETTINGS, env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and missing in result.stderr


def test_defaults() -> None:
    values = dump(REQUIRED)
    assert values == {
        "PLATFORM_URL": "http://127.0.0.1:9000",
        "PLATFORM_TIMEOUT": 5.0,
        "SCALESTACK_SERVER_NAME": "web-dev",
        "STATIC_URL": "http://localhost:8081/static/",
        "STATIC_ROOT": str(REPO_ROOT / "var" / "static"),
        "MEDIA_URL": "http://localhost:8081/media/",
        "STORAGE": "django.contrib.staticfiles.storage.ManifestStaticFilesStorage",
        "DEBUG": False,
        "ALLOWED_HOSTS": ["localhost", "127.0.0.1", "[::1]"],
        "CSRF_TRUSTED_ORIGINS": [],
        "DATABASES": {},
        "INSTALLED_APPS": ["django.contrib.messages", "django.contrib.staticfiles", "news_web"],
        "SESSION_ENGINE": "django.contrib.sessions.backends.signed_cookies",
        "MESSAGE_STORAGE": "django.contrib.messages.storage.cookie.CookieStorage",
        "SCALESTACK_DRAIN_FILE": "",  # never draining
    }


def test_env_values_are_read_with_their_types() -> None:
    values = dump(
        {
            **REQUIRED,
            "PLATFORM_URL": "http://127.0.0.1:9100/",
            "PLATFORM_TIMEOUT": "2.5",
            "SCALESTACK_SERVER_NAME": "web-2",
            "DJANGO_DEBUG": "true",
            "DJANGO_ALLOWED_HOSTS": "news.example,10.0.0.1",
            "CSRF_TRUSTED_ORIGINS": "https://news.example",
            "STATIC_URL": "/static/",
            "STATIC_ROOT": "/tmp/somewhere",
            "MEDIA_URL": "https://cdn.example/media/",
            "SCALESTACK_DRAIN_FILE": "/run/scalestack/drain/web-2",
        }
    )
    assert values["PLATFORM_URL"] == "http://127.0.0.1:9100"
    assert values["PLATFORM_TIMEOUT"] == 2.5
    assert values["SCALESTACK_SERVER_NAME"] == "web-2"
    assert values["DEBUG"] is True
    assert values["ALLOWED_HOSTS"] == ["news.example", "10.0.0.1"]
    assert values["CSRF_TRUSTED_ORIGINS"] == ["https://news.example"]
    assert (values["STATIC_URL"], values["STATIC_ROOT"]) == ("/static/", "/tmp/somewhere")
    assert values["MEDIA_URL"] == "https://cdn.example/media/"
    assert values["SCALESTACK_DRAIN_FILE"] == "/run/scalestack/drain/web-2"


def test_the_web_tier_never_loads_a_database_driver() -> None:
    code = DUMP_SETTINGS + (
        "\nimport news_web.urls, news_web.wsgi"
        "\nprint(json.dumps(sorted(m for m in sys.modules if m.startswith(('psycopg', 'django.contrib.auth', 'django.db.backends.postgresql')))))"
    )
    result = run_python(code, REQUIRED)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []
    sources = "\n".join(p.read_text() for p in (WEBAPP_DIR / "news_web").glob("*.py"))
    assert "psycopg" not in sources


def test_manage_py_keeps_the_standard_library_platform_module(tmp_path: Path) -> None:
    # A copy of the layout where the repository root's platform/ *would* shadow
    # the standard library (it has an __init__.py), with that root on PYTHONPATH:
    # manage.py must still give Django the real module.
    (tmp_path / "platform").mkdir()
    (tmp_path / "platform" / "__init__.py").write_text("def system():\n    return 'SHADOWED'\n")
    (tmp_path / "webapp").mkdir()
    (tmp_path / "webapp" / "manage.py").write_text((WEBAPP_DIR / "manage.py").read_text())
    (tmp_path / "webapp" / "news_web").symlink_to(WEBAPP_DIR / "news_web")
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(tmp_path), **REQUIRED}
    result = subprocess.run(
        [sys.executable, str(tmp_path / "webapp" / "manage.py"), "shell", "-c",
         "import platform; print(platform.system(), platform.__file__)"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    system, path = result.stdout.strip().splitlines()[-1].split()
    assert system != "SHADOWED" and not path.startswith(str(tmp_path))


def test_manage_py_check_passes() -> None:
    env = {"PATH": os.environ.get("PATH", ""), **REQUIRED}
    result = subprocess.run(
        [sys.executable, str(WEBAPP_DIR / "manage.py"), "check"],
        env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout
