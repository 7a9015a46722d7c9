"""The single-process baseline's launch glue: port, command line and environment, from the topology.

No server runs here. The baseline's own Django settings are checked in a
subprocess (this pytest process already hosts the web tier's settings, and
Django can be set up once per process): that they load from
:func:`scalestack.baseline.environment` and accept a session cookie made by
the web tier's session engine, and nothing else.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.sessions.backends.signed_cookies import SessionStore

from scalestack import baseline
from scalestack.topology import PROFILE_PORT_OFFSET, Topology, load


@pytest.fixture
def topologies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Topology]:
    """Every profile, each with a throwaway data directory (its secrets are generated there)."""
    found = {}
    for profile in PROFILE_PORT_OFFSET:
        monkeypatch.setenv("SCALESTACK_VAR", str(tmp_path / profile))
        found[profile] = load(profile)
    return found


def _ports(t: Topology) -> set[int]:
    """Every port a profile's stack listens on."""
    servers = {p.port for p in t.processes() if p.port is not None}
    return servers | {t.platform_pool_port, t.db_read_port, t.db_write_port, t.stats_port,
                      t.rabbitmq_management_port, t.rabbitmq_dist_port}


def test_the_port_is_8090_moved_by_the_profile_offset(topologies: dict[str, Topology]) -> None:
    assert {name: baseline.port(t) for name, t in topologies.items()} == {
        "dev": 8090, "test": 28090, "faults": 9090}


def test_the_port_clashes_with_no_stack_of_any_profile(topologies: dict[str, Topology]) -> None:
    # Any profile's baseline may run beside any profile's stack.
    taken = set().union(*(_ports(t) for t in topologies.values()))
    for t in topologies.values():
        assert baseline.port(t) not in taken


def test_the_command_is_one_gunicorn_process_with_four_threads_on_loopback(
        topologies: dict[str, Topology]) -> None:
    t = topologies["test"]
    argv = baseline.command(t)
    assert Path(argv[0]).name == "gunicorn" and Path(argv[0]).is_file()
    assert Path(argv[0]).parent == Path(sys.executable).parent  # the stack's own virtualenv
    assert argv[1] == "baseline.wsgi:application"

    def flag(name: str) -> str:
        return argv[argv.index(name) + 1]

    assert (flag("--workers"), flag("--threads"), flag("--worker-class")) == ("1", "4", "gthread")
    assert flag("--bind") == "127.0.0.1:28090"
    chdir = Path(flag("--chdir"))
    assert chdir == baseline.BASELINE_DIR and (chdir / "baseline" / "wsgi.py").is_file()


def test_the_environment_reads_the_primary_directly_with_the_web_tiers_key(
        topologies: dict[str, Topology]) -> None:
    t = topologies["test"]
    env = baseline.environment(t)
    # The primary's own port: no HAProxy pool between the baseline and its database.
    assert env["DATABASE_URL"] == t.database_url(t.postgres.port)
    assert f":{t.postgres.port}/" in env["DATABASE_URL"]
    assert f":{t.db_write_port}/" not in env["DATABASE_URL"] and f":{t.db_read_port}/" not in env["DATABASE_URL"]
    assert env["MEMCACHED_SERVERS"].split(",") == ["127.0.0.1:31311", "127.0.0.1:31312"]
    # The web tier's key, so the stack's session cookies verify on the baseline.
    assert env["DJANGO_SECRET_KEY"] == t.web_env()["DJANGO_SECRET_KEY"] == t.secrets()["DJANGO_SECRET_KEY"]
    # It never calls the platform, so it does not get the platform's token.
    assert t.secrets()["PLATFORM_TOKEN"] not in env.values()
    assert env["DJANGO_SETTINGS_MODULE"] == "baseline.settings"
    # Its cache keys are its own, apart from the platform's "ss-test" ones ...
    assert env["CACHE_KEY_PREFIX"] == "baseline-test"
    # ... and a run may ask for a namespace of its own, to start with a cold cache.
    assert baseline.environment(t, cache_namespace="run7")["CACHE_KEY_PREFIX"] == "baseline-test-run7"


def test_each_profile_gets_its_own_data(topologies: dict[str, Topology]) -> None:
    dev, test = baseline.environment(topologies["dev"]), baseline.environment(topologies["test"])
    assert dev["DATABASE_URL"] != test["DATABASE_URL"]
    assert not set(dev["MEMCACHED_SERVERS"].split(",")) & set(test["MEMCACHED_SERVERS"].split(","))
    assert dev["CACHE_KEY_PREFIX"] != test["CACHE_KEY_PREFIX"]


def test_the_log_goes_to_the_profiles_data_directory(topologies: dict[str, Topology]) -> None:
    t = topologies["test"]
    assert baseline.log_file(t) == t.var / "baseline.log"


# A script run with the baseline's settings: what its view function makes of a session cookie.
_READ_COOKIE = """
import json, sys
import django
django.setup()
from django.contrib.sessions.middleware import SessionMiddleware
from django.http import HttpResponse
from django.test import RequestFactory
from baseline.views import signed_in_member

request = RequestFactory().get("/home", HTTP_COOKIE="sessionid=" + sys.argv[1])
SessionMiddleware(lambda r: HttpResponse()).process_request(request)
member = signed_in_member(request)
print(json.dumps(None if member is None else [member.id, member.username]))
"""


def _baseline_reads(cookie: str, secret: str, t: Topology) -> object:
    env = {**baseline.environment(t), "DJANGO_SECRET_KEY": secret, "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-c", _READ_COOKIE, cookie], cwd=baseline.BASELINE_DIR, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout)


def _web_tier_cookie(uid: object, uname: object) -> str:
    """A session cookie as the web tier's login makes it (news_web.auth.log_in), under its settings."""
    session = SessionStore()
    session["uid"], session["uname"] = uid, uname
    session.save()
    assert session.session_key
    return session.session_key


def test_the_baseline_accepts_the_web_tiers_session_cookie_and_only_with_its_key(
        topologies: dict[str, Topology]) -> None:
    t = topologies["test"]
    # This process runs the web tier's settings (tests/unit/conftest.py): its key signs the cookie.
    web_key = settings.SECRET_KEY
    cookie = _web_tier_cookie(42, "ada")
    assert _baseline_reads(cookie, web_key, t) == [42, "ada"]
    # The same cookie under another key is a forgery: signed out.
    assert _baseline_reads(cookie, "another-secret-key", t) is None
    # A well-signed session that does not hold the web tier's fields is signed out too.
    assert _baseline_reads(_web_tier_cookie("42", "ada"), web_key, t) is None


_READ_THROUGH_TWICE = """
import django
django.setup()
from baseline import pages
class Untouchable:
    def __getattr__(self, name):
        raise SystemExit("the cache was used")
pages.cache = Untouchable()
calls = []
for _ in range(2):
    pages.read_through("front:1", lambda: calls.append(1) or "rows")
print(len(calls))
"""


def test_cache_ttl_zero_reads_every_page_fresh(topologies: dict[str, Topology]) -> None:
    t = topologies["test"]
    assert "CACHE_TTL" not in baseline.environment(t)  # the settings' default: 30 s
    env = {**baseline.environment(t, cache_ttl=0), "PATH": "/usr/bin:/bin"}
    assert env["CACHE_TTL"] == "0"
    result = subprocess.run([sys.executable, "-c", _READ_THROUGH_TWICE], cwd=baseline.BASELINE_DIR, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    # No cache: the query ran for both reads, and the cache was never asked.
    assert result.stdout.strip() == "2"
    cached = subprocess.run([sys.executable, "-c", _READ_THROUGH_TWICE], cwd=baseline.BASELINE_DIR,
                            env={**env, "CACHE_TTL": "30"}, capture_output=True, text=True, timeout=60)
    assert "the cache was used" in cached.stderr
