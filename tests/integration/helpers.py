"""Helpers shared by the integration tests: forms, CSRF, users, raw cache and SQL access."""
from __future__ import annotations

import re
import socket
import uuid
from dataclasses import dataclass

import requests

from scalestack import stack
from scalestack.source_address import SourceAddressAdapter
from scalestack.topology import Topology


def sql(t: Topology, query: str) -> str:
    """Run a query on the primary as the superuser; return psql's unaligned output."""
    return stack.psql(t, query, database="scalestack").strip()


def memcached_delete(t: Topology, key: str) -> None:
    """Delete a (mangled) key from every memcached node, behind the platform's back."""
    for node in t.memcached:
        with socket.create_connection((node.host, node.port), timeout=2) as conn:
            conn.sendall(f"delete {key}\r\n".encode())
            conn.recv(100)


def story_key(t: Topology, story_id: int) -> str:
    """The memcached key of a story object, as platform_api.cache_keys mangles it."""
    from platform_api.cache_keys import KEY_SCHEMA_VERSION, story_cache_key

    return f"ss-{t.profile}:{KEY_SCHEMA_VERSION}:{story_cache_key(story_id)}"


CSRF_RE = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


def csrf_token(html: str) -> str:
    """The CSRF token of the first form on a page."""
    match = CSRF_RE.search(html)
    assert match, "page has no CSRF token"
    return match.group(1)


def post_form(session: requests.Session, url: str, data: dict[str, str], **kwargs) -> requests.Response:
    """GET a form page for its CSRF token, then POST ``data`` to ``url``."""
    page = session.get(kwargs.pop("form_url", url), timeout=10)
    return session.post(url, data={"csrfmiddlewaretoken": csrf_token(page.text), **data},
                        timeout=10, allow_redirects=kwargs.pop("allow_redirects", True), **kwargs)


@dataclass
class Member:
    """A signed-up user with a logged-in browser session."""

    username: str
    password: str
    session: requests.Session
    id: int


def make_member(site: str, api: requests.Session, api_url: str) -> Member:
    """Sign a new user up through the site's form; return its logged-in session."""
    username = f"t{uuid.uuid4().hex[:12]}"
    password = "correct horse battery"
    session = requests.Session()
    response = post_form(session, f"{site}/signup", {"username": username, "password": password,
                                                      "password2": password})
    assert response.status_code == 200, response.text[:500]
    user = api.get(f"{api_url}/v1/users/{username}", timeout=10).json()
    return Member(username, password, session, user["id"])


def wait_until(check, timeout: float, what: str, interval: float = 0.25):
    """Poll ``check`` until it returns something truthy; fail the test after ``timeout`` s."""
    import time

    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")


def pid_of(t: Topology, name: str) -> int:
    """The pid supervisord reports for a running process."""
    for row in stack.status(t):
        if row.name == name:
            assert row.pid, f"{name} is not running"
            return row.pid
    raise KeyError(name)


def follow_via_api(api: requests.Session, api_url: str, followee_id: int, follower_ids: range) -> None:
    """Factory: make many users follow one, through the platform API (four at a time)."""
    from concurrent.futures import ThreadPoolExecutor

    def follow(follower_id: int) -> int:
        return api.put(f"{api_url}/v1/users/{follower_id}/following/{followee_id}", timeout=30).status_code

    with ThreadPoolExecutor(max_workers=4) as pool:
        codes = list(pool.map(follow, follower_ids))
    assert set(codes) == {200}, set(codes)


def client_from(source: str) -> requests.Session:
    """A session whose connections come from ``source`` (e.g. ``127.0.0.20``)."""
    session = requests.Session()
    session.mount("http://", SourceAddressAdapter(source))
    return session


def png(colour: tuple[int, int, int], size: int = 64) -> bytes:
    """A small solid-colour PNG (an avatar to upload)."""
    from io import BytesIO

    from PIL import Image

    buffer = BytesIO()
    Image.new("RGB", (size, size), colour).save(buffer, "PNG")
    return buffer.getvalue()


def upload_avatar(session: requests.Session, site: str, filename: str, content: bytes,
                  content_type: str = "image/png") -> requests.Response:
    """Upload ``content`` as the signed-in member's avatar through the site's form (not following the redirect)."""
    page = session.get(f"{site}/settings/avatar", timeout=10)
    assert page.status_code == 200
    return session.post(f"{site}/settings/avatar", data={"csrfmiddlewaretoken": csrf_token(page.text)},
                               files={"file": (filename, content, content_type)}, allow_redirects=False,
                               timeout=20)
