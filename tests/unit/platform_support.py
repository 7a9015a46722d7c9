"""Shared helpers for the platform's unit tests (``test_platform_*.py``).

Imported explicitly, not through ``conftest.py``: the unit-test conftest
configures Django with the *web* tier's settings, and one process can only
hold one settings module. So the platform's in-process tests only touch its
pure modules (``rules``, ``cache_keys``, ``seed_data``), and everything that
needs the platform's own settings runs in a child process (:func:`run_probe`).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
PLATFORM_DIR = REPO_ROOT / "platform"
PROBE = Path(__file__).resolve().parent / "platform_probe.py"

# The platform's settings for a child process: required secrets set, the data
# cache off, and a database address nothing listens on, so that any query
# fails fast (and shows up as a 503) instead of reaching a real database.
PROBE_ENV: dict[str, str] = {
    "DJANGO_SETTINGS_MODULE": "platform_api.settings",
    "DJANGO_SECRET_KEY": "unit-test-secret",
    "PLATFORM_TOKEN": "unit-test-token",
    "SCALESTACK_SERVER_NAME": "platform-unit",
    "DATA_CACHE_ENABLED": "false",
    "DATABASE_WRITE_URL": "postgres://nobody:nothing@127.0.0.1:9/none",
    "DATABASE_READ_URL": "postgres://nobody:nothing@127.0.0.1:9/none",
    "DATABASE_POOL_TIMEOUT": "0.5",
    "MEMCACHED_SERVERS": "127.0.0.1:9",
    # Nor a broker: a publish fails at once, as when RabbitMQ is down.
    "RABBITMQ_URL": "amqp://nobody:nothing@127.0.0.1:9/%2F",
}


def ensure_platform_importable() -> None:
    """Put ``platform/`` (never the repository root) on ``sys.path``.

    Appended, not prepended, so it can shadow nothing; an installed
    ``platform_api`` (``pip install -e .``) is found first anyway.
    """
    if str(PLATFORM_DIR) not in sys.path:
        sys.path.append(str(PLATFORM_DIR))


def run_probe(probe: Path = PROBE, extra_env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run ``probe`` (``platform_probe.py`` by default) under the platform's settings; return its JSON report.

    ``extra_env`` is applied over :data:`PROBE_ENV` (another settings module, a
    probe's mode).
    """
    env = {key: value for key, value in os.environ.items() if not key.startswith(("DJANGO_", "DATABASE_"))}
    env.update(PROBE_ENV)
    env.update(extra_env or {})
    env["PYTHONPATH"] = str(PLATFORM_DIR)
    result = subprocess.run(
        [sys.executable, str(probe)], cwd=PLATFORM_DIR, env=env, capture_output=True, text=True, timeout=120
    )
    if result.returncode != 0:
        raise AssertionError(f"platform probe failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])
