"""Idempotency keys on the web tier: forms carry one, views forward it, retries rely on it."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from django.test import Client

from news_web import idempotency
from news_web.platform_client import PlatformClient, Unavailable, build_session, retry_policy

if TYPE_CHECKING:
    from tests.unit.conftest import WebFakePlatform

TEMPLATES = Path(__file__).resolve().parents[2] / "webapp" / "news_web" / "templates" / "news_web"
UUID4 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
KEY_INPUT = re.compile(r'<input type="hidden" name="idempotency_key" value="([^"]*)">')


@pytest.fixture
def web_alice(web_client: Client, web_login: Callable[..., None]) -> Client:
    """The test client, logged in as alice (uid 1)."""
    web_login(web_client, 1, "alice")
    return web_client


def keys_in(response: Any) -> list[str]:
    """The idempotency keys of every form on a page."""
    return KEY_INPUT.findall(response.content.decode())


# --- Forms ----------------------------------------------------------------------------


def test_every_vote_form_gets_a_fresh_key_of_its_own(web_client: Client, web_platform: WebFakePlatform) -> None:
    stories = [web_platform.story("One", id=1), web_platform.story("Two", id=2)]
    web_platform.ok("GET", "/v1/stories", web_platform.page(stories))

    first, second = keys_in(web_client.get("/")), keys_in(web_client.get("/"))

    assert len(first) == 2 and len(second) == 2
    assert all(UUID4.fullmatch(key) for key in first + second)
    # One per form and per rendering: a vote on one story never reuses another's key.
    assert len(set(first + second)) == 4


@pytest.mark.parametrize("path", ["/submit", "/signup", "/export"])
def test_write_pages_render_one_key(web_alice: Client, web_platform: WebFakePlatform, path: str) -> None:
    keys = keys_in(web_alice.get(path))
    assert len(keys) == 1 and UUID4.fullmatch(keys[0])


def test_every_write_form_in_the_templates_carries_the_key_field() -> None:
    """Forms that post to the platform carry ``{% idempotency_field %}``; login and logout write nothing."""
    forms = []
    for template in sorted(TEMPLATES.glob("*.html")):
        for form in re.findall(r'<form method="post".*?</form>', template.read_text(), re.S):
            action = re.search(r"{% url '(\w+)'", form)
            assert action, form
            if action.group(1) in ("login", "logout"):
                continue
            forms.append(action.group(1))
            assert "{% idempotency_field %}" in form, f"{template.name}: the {action.group(1)} form has no key"
    assert sorted(set(forms)) == ["avatar", "export", "follow", "signup", "submit", "unfollow", "vote"]


# --- Views forward the key --------------------------------------------------------------


def test_a_vote_forwards_the_forms_key(web_alice: Client, web_platform: WebFakePlatform) -> None:
    web_platform.ok("POST", "/v1/stories/5/votes", {"counted": True, "story": web_platform.story(id=5)})
    web_alice.post("/s/5/vote", {"idempotency_key": "form-key-1"})
    web_alice.post("/s/5/vote", {"idempotency_key": "form-key-1"})
    calls = web_platform.calls_to("POST", "/v1/stories/5/votes")
    assert [call.headers["Idempotency-Key"] for call in calls] == ["form-key-1", "form-key-1"]


def test_a_form_without_a_key_still_works_with_a_key_made_here(
    web_alice: Client, web_platform: WebFakePlatform
) -> None:
    web_platform.ok("POST", "/v1/stories/5/votes", {"counted": True, "story": web_platform.story(id=5)})
    assert web_alice.post("/s/5/vote").status_code == 302
    assert web_alice.post("/s/5/vote", {"idempotency_key": ""}).status_code == 302
    sent = [call.headers["Idempotency-Key"] for call in web_platform.calls_to("POST", "/v1/stories/5/votes")]
    assert all(UUID4.fullmatch(key) for key in sent) and sent[0] != sent[1]


@pytest.mark.parametrize("bad", ["has space", "k" * 65, "<script>", "cl\u00e9"])
def test_a_malformed_key_is_the_400_page_and_no_call(web_alice: Client, web_platform: WebFakePlatform, bad: str) -> None:
    response = web_alice.post("/s/5/vote", {"idempotency_key": bad})
    assert response.status_code == 400
    assert "Bad request" in response.content.decode()
    assert web_platform.calls == []


def test_every_write_view_forwards_its_key(web_alice: Client, web_platform: WebFakePlatform) -> None:
    bob = web_platform.user("bob", id=2)
    alice = web_platform.user("alice", id=1)
    web_platform.ok("GET", "/v1/users/bob", bob)
    web_platform.ok("PUT", "/v1/users/1/following/2", {"changed": True, "user": alice, "other": bob})
    web_platform.ok("DELETE", "/v1/users/1/following/2", {"changed": True, "user": alice, "other": bob})
    web_platform.reply("POST", "/v1/stories", web_platform.Reply(201, web_platform.story(id=9)))
    job = {"id": "12345678-1234-5678-1234-567812345678", "state": "pending", "progress": 0,
           "created_at": "2024-01-02T03:04:05Z", "finished_at": None}
    web_platform.reply("POST", "/v1/users/1/exports", web_platform.Reply(202, job))

    web_alice.post("/u/bob/follow", {"idempotency_key": "k-follow"})
    web_alice.post("/u/bob/unfollow", {"idempotency_key": "k-unfollow"})
    web_alice.post("/submit", {"title": "T", "url": "https://a.example", "idempotency_key": "k-story"})
    web_alice.post("/export", {"idempotency_key": "k-export"})

    sent = {(c.method, c.path): c.headers.get("Idempotency-Key") for c in web_platform.calls if c.method != "GET"}
    assert sent == {
        ("PUT", "/v1/users/1/following/2"): "k-follow",
        ("DELETE", "/v1/users/1/following/2"): "k-unfollow",
        ("POST", "/v1/stories"): "k-story",
        ("POST", "/v1/users/1/exports"): "k-export",
    }


def test_sign_up_forwards_its_key(web_client: Client, web_platform: WebFakePlatform) -> None:
    web_platform.reply("POST", "/v1/users", web_platform.Reply(201, web_platform.user("newbie", id=3)))
    form = {"username": "newbie", "password": "password123", "password2": "password123", "idempotency_key": "k-signup"}
    assert web_client.post("/signup", form).status_code == 302
    assert web_platform.calls_to("POST", "/v1/users")[0].headers["Idempotency-Key"] == "k-signup"


def test_reads_and_clicks_carry_no_key(web_client: Client, web_platform: WebFakePlatform) -> None:
    web_platform.ok("GET", "/v1/stories/4", web_platform.story(id=4))
    web_platform.reply("POST", "/v1/clicks", web_platform.Reply(202, {"accepted": True, "queued": "broker"}))
    web_client.get("/r/4")
    assert all("Idempotency-Key" not in call.headers for call in web_platform.calls)
    assert web_platform.calls_to("POST", "/v1/clicks")


# --- Retries ------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
def test_the_retry_policies_resend_a_write_only_with_a_key(method: str) -> None:
    unkeyed = build_session("t", 1).get_adapter("http://x").max_retries  # type: ignore[attr-defined]
    keyed = build_session("t", 1).get_adapter("http://x").keyed.max_retries  # type: ignore[attr-defined]
    assert not unkeyed.is_retry(method, 503)
    assert keyed.is_retry(method, 503)
    assert keyed.is_retry("GET", 502)
    # Bounded alike: two retries in all, one after a read error or a 5xx.
    assert (keyed.total, keyed.read, keyed.status) == (unkeyed.total, unkeyed.read, unkeyed.status) == (2, 1, 1)


def test_a_503_that_says_when_to_come_back_is_not_retried() -> None:
    policy = retry_policy(frozenset({"GET", "POST"}))
    assert policy.is_retry("GET", 503, has_retry_after=False)
    assert not policy.is_retry("GET", 503, has_retry_after=True)
    assert not policy.is_retry("POST", 503, has_retry_after=True)


class _Platform(BaseHTTPRequestHandler):
    """A platform whose first answer to each method is a failure: a 503, or a read timeout (``slow``)."""

    seen: dict[str, int] = {}
    keys: list[str | None] = []
    mode = "503"

    def _answer(self) -> None:
        count = self.seen.get(self.command, 0) + 1
        self.seen[self.command] = count
        self.keys.append(self.headers.get("Idempotency-Key"))
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if count == 1 and self.mode == "slow":
            time.sleep(0.6)  # longer than the client's timeout: a read timeout
        status, body = (503, b'{"detail": "x"}') if count == 1 and self.mode == "503" else (200, b'{"ok": 1}')
        if self.mode == "always_503":
            status, body = 503, b'{"detail": "x"}'
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = _answer
    do_PUT = _answer
    do_GET = _answer

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet."""


@pytest.fixture
def platform_server() -> Iterator[Callable[[str], str]]:
    """Start the flaky platform in a given mode; returns its base URL."""
    servers: list[ThreadingHTTPServer] = []

    def start(mode: str) -> str:
        _Platform.seen, _Platform.keys, _Platform.mode = {}, [], mode
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Platform)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("mode", ["503", "slow"])
def test_a_keyed_write_is_sent_again_after_a_503_or_a_read_timeout(
    platform_server: Callable[[str], str], mode: str
) -> None:
    client = PlatformClient(platform_server(mode), 0.3, build_session("t", pool_maxsize=2))
    assert client._call("POST", "/v1/stories", json={}, idempotency_key="k-1") == {"ok": 1}
    assert _Platform.seen == {"POST": 2}
    assert _Platform.keys == ["k-1", "k-1"]


@pytest.mark.parametrize("mode", ["503", "slow"])
def test_an_unkeyed_write_is_never_sent_again(platform_server: Callable[[str], str], mode: str) -> None:
    client = PlatformClient(platform_server(mode), 0.3, build_session("t", pool_maxsize=2))
    with pytest.raises(Unavailable):
        client._call("PUT", "/v1/users/1/following/2")
    assert _Platform.seen == {"PUT": 1}


def test_a_keyed_write_is_retried_once_at_most(platform_server: Callable[[str], str]) -> None:
    client = PlatformClient(platform_server("always_503"), 0.3, build_session("t", pool_maxsize=2))
    with pytest.raises(Unavailable):
        client._call("POST", "/v1/stories", json={}, idempotency_key="k-2")
    assert _Platform.seen == {"POST": 2}


def test_the_key_check_matches_the_platforms_rule() -> None:
    assert idempotency.KEY_PATTERN.pattern == r"[A-Za-z0-9_-]{1,64}"
    assert idempotency.safe_to_resend("GET", {}) and idempotency.safe_to_resend("HEAD", {})
    assert not idempotency.safe_to_resend("POST", {})
    assert idempotency.safe_to_resend("POST", {"Idempotency-Key": "k"})
    assert not idempotency.safe_to_resend("POST", {"Idempotency-Key": ""})
