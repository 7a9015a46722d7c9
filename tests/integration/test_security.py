"""Service tokens, CSRF, escaping, hashed passwords, and a web tier with no database."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import requests

from scalestack import stack
from scalestack.topology import REPO, Topology
from tests.integration.helpers import Member, csrf_token, post_form, sql


def test_platform_calls_without_a_valid_token_get_401(api_url: str) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic eDp5"}):
        response = requests.get(f"{api_url}/v1/stories", headers=headers, timeout=10)
        assert response.status_code == 401
        assert "detail" in response.json()
        response = requests.post(f"{api_url}/v1/stories", headers=headers, timeout=10,
                                 json={"author_id": 1, "title": "x", "url": "https://example.org", "text": ""})
        assert response.status_code == 401
    assert requests.get(f"{api_url}/v1/healthz", timeout=10).status_code == 200


def test_openapi_document_describes_the_v1_api(api_url: str) -> None:
    doc = requests.get(f"{api_url}/v1/openapi.json", timeout=10).json()
    assert doc["openapi"].startswith("3.")
    for path in ("/v1/stories", "/v1/stories/{story_id}", "/v1/users", "/v1/sessions"):
        assert any(p.replace("{id}", "{story_id}") == path or p == path for p in doc["paths"]), path


def test_csrf_is_enforced_on_every_form(site: str, member: Member) -> None:
    for path in ("/submit", "/s/1/vote", f"/u/{member.username}/follow", "/logout", "/login", "/signup"):
        response = member.session.post(f"{site}{path}", data={"title": "no token"}, timeout=10)
        assert response.status_code == 403, path


def test_story_titles_are_escaped(site: str, member: Member) -> None:
    title = '<script>alert("owned")</script>'
    response = post_form(member.session, f"{site}/submit",
                         {"title": title, "url": "https://example.org/xss", "text": "<b>bold?</b>"})
    assert response.status_code == 200
    assert title not in response.text
    assert "&lt;script&gt;alert(&quot;owned&quot;)&lt;/script&gt;" in response.text
    assert "<b>bold?</b>" not in response.text


def test_passwords_are_stored_as_django_hashes(running_stack: Topology, member: Member) -> None:
    stored = sql(running_stack, f"select password from users where username = '{member.username}'")
    assert stored.startswith("pbkdf2_sha256$")
    assert member.password not in stored


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


def test_the_web_tier_has_no_database_credentials(running_stack: Topology) -> None:
    password = running_stack.secrets()["DATABASE_PASSWORD"]
    for row in stack.status(running_stack):
        if row.role not in ("web", "platform"):
            continue
        env = _environ(row.pid)
        if row.role == "web":
            assert not any("DATABASE" in key for key in env), row.name
            assert all(password not in value for value in env.values()), row.name
        else:
            assert password in env["DATABASE_WRITE_URL"]
    # The web settings define no database, so the ORM cannot connect anywhere.
    check = subprocess.run(
        [sys.executable, "-c",
         "import django; django.setup(); from django.conf import settings; from django.db import connection\n"
         "assert settings.DATABASES in ({}, {'default': {'ENGINE': 'django.db.backends.dummy'}}) or "
         "settings.DATABASES['default']['ENGINE'].endswith('dummy'), settings.DATABASES\n"
         "try:\n    connection.cursor()\nexcept Exception as e:\n    print(type(e).__name__)\n"],
        cwd=REPO / "webapp", env={**os.environ, **running_stack.web_env()}, capture_output=True, text=True,
    )
    assert check.returncode == 0, check.stderr
    assert "ImproperlyConfigured" in check.stdout


def test_stdlib_platform_module_is_not_shadowed_in_any_process(running_stack: Topology) -> None:
    """The repository has a ``platform/`` folder; Django and others import the stdlib ``platform``."""
    for row in stack.status(running_stack):
        if row.role not in ("web", "platform"):
            continue
        cwd = os.readlink(f"/proc/{row.pid}/cwd")
        result = subprocess.run(
            [sys.executable, "-c", "import platform, sys; print(platform.system(), platform.__file__)"],
            cwd=cwd, capture_output=True, text=True,
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith("Linux /usr/lib/python3"), (row.name, result.stdout)
