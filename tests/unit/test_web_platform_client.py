"""The web tier's platform client: auth header, trace headers, error mapping, retries."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import pytest
from django.conf import settings

from news_web import platform_client
from news_web.platform_client import (
    Conflict,
    Invalid,
    NotFound,
    PlatformClient,
    Unauthorized,
    Unavailable,
    build_session,
)
from news_web.platform_models import Story

if TYPE_CHECKING:
    from tests.unit.conftest import WebFakePlatform


def test_every_call_sends_the_service_token(web_platform: WebFakePlatform) -> None:
    web_platform.ok("GET", "/v1/stories", web_platform.page([]))
    web_platform.ok("POST", "/v1/stories/5/votes", {"counted": True, "story": web_platform.story(id=5)})
    client = platform_client.get_client()

    client.stories("top", 2)
    client.vote(5, 7)

    assert [c.headers["Authorization"] for c in web_platform.calls] == ["Bearer unit-test-token"] * 2
    assert web_platform.calls[0].query == {"sort": "top", "page": "2"}
    assert web_platform.calls[1].body == {"user_id": 7}


def test_trace_collects_distinct_servers_in_order_and_sums_cache_figures(web_platform: WebFakePlatform) -> None:
    servers = iter(["platform-2", "platform-1", "platform-2"])
    caches = iter(["hits=2 misses=0", "hits=0 misses=1", "hits=1 misses=3"])
    web_platform.reply(
        "GET",
        "/v1/stories/1",
        lambda call: web_platform.Reply(200, web_platform.story(id=1), served_by=next(servers), cache=next(caches)),
    )
    trace, token = platform_client.begin_trace()
    try:
        for _ in range(3):
            platform_client.get_client().get_story(1)
    finally:
        platform_client.end_trace(token)

    assert trace.servers == ["platform-2", "platform-1"]
    assert trace.servers_header == "platform-2, platform-1"
    assert (trace.hits, trace.misses, trace.calls) == (3, 4, 3)
    assert trace.cache_header == "hits=3 misses=4"
    assert platform_client.current_trace() is None


def test_failed_calls_are_traced_too(web_platform: WebFakePlatform) -> None:
    web_platform.fail("GET", "/v1/users/nobody", 404, served_by="platform-3", cache="hits=0 misses=1")
    trace, token = platform_client.begin_trace()
    try:
        with pytest.raises(NotFound):
            platform_client.get_client().get_user("nobody")
    finally:
        platform_client.end_trace(token)
    assert trace.servers == ["platform-3"]
    assert trace.misses == 1


@pytest.mark.parametrize(
    ("status", "detail", "error"),
    [
        (404, "No such story.", NotFound),
        (409, "That username is taken.", Conflict),
        (401, "Bad credentials.", Unauthorized),
        (400, "You cannot follow yourself.", Invalid),
        (500, "boom", Unavailable),
        (502, "bad gateway", Unavailable),
    ],
)
def test_error_statuses_map_to_typed_exceptions(
    web_platform: WebFakePlatform, status: int, detail: str, error: type[Exception]
) -> None:
    web_platform.fail("POST", "/v1/users", status, detail)
    with pytest.raises(error) as caught:
        platform_client.get_client().create_user("bob", "password123")
    assert caught.value.message == detail  # type: ignore[attr-defined]
    assert caught.value.status == status  # type: ignore[attr-defined]


def test_422_becomes_invalid_with_readable_field_messages(web_platform: WebFakePlatform) -> None:
    detail = [
        {"type": "string_too_long", "loc": ["body", "payload", "title"], "msg": "String should have at most 200 characters"},
        {"type": "value_error", "loc": ["body", "payload"], "msg": "Value error, give a url or a text"},
    ]
    web_platform.fail("POST", "/v1/stories", 422, detail)
    with pytest.raises(Invalid) as caught:
        platform_client.get_client().create_story(1, "t", "", "x")
    assert caught.value.field_errors == {"title": ["String should have at most 200 characters"]}
    assert caught.value.message == (
        "title: String should have at most 200 characters; Value error, give a url or a text"
    )


def test_non_json_error_page_from_the_load_balancer_is_unavailable(web_platform: WebFakePlatform) -> None:
    web_platform.reply("GET", "/v1/stories", web_platform.Reply(503, raw="<html>No server is available</html>"))
    with pytest.raises(Unavailable) as caught:
        platform_client.get_client().stories("new")
    assert caught.value.status == 503


def test_story_json_becomes_typed_story() -> None:
    story = Story.from_json(
        {
            "id": 3, "author_id": 1, "author_username": "a", "title": "t", "url": "", "domain": None,
            "text": None, "votes": 4, "created_at": "2024-05-06T07:08:09Z", "version": 2,
        }
    )
    assert story.url is None and story.text == "" and story.external_url is None
    assert story.created_at == datetime(2024, 5, 6, 7, 8, 9, tzinfo=timezone.utc)


def test_external_url_refuses_non_web_schemes() -> None:
    base = {
        "id": 3, "author_id": 1, "author_username": "a", "title": "t", "domain": None, "text": "",
        "votes": 0, "created_at": "2024-05-06T07:08:09+00:00", "version": 1,
    }
    assert Story.from_json({**base, "url": "javascript:alert(1)"}).external_url is None
    assert Story.from_json({**base, "url": "HTTPS://ok.example/x"}).external_url == "HTTPS://ok.example/x"


def test_usernames_are_quoted_into_one_path_segment(web_platform: WebFakePlatform) -> None:
    web_platform.ok("GET", "/v1/users/a%2F..%2Fb", web_platform.user("x"))
    platform_client.get_client().get_user("a/../b")
    assert web_platform.calls[0].path == "/v1/users/a%2F..%2Fb"


def test_get_client_is_one_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    platform_client.install_client(None)
    first = platform_client.get_client()
    assert platform_client.get_client() is first
    assert first.base_url == settings.PLATFORM_URL and first.timeout == settings.PLATFORM_TIMEOUT
    adapter = first.session.get_adapter(settings.PLATFORM_URL)
    assert adapter._pool_maxsize == settings.PLATFORM_POOL_MAXSIZE  # type: ignore[attr-defined]
    # After a fork (a new pid) the child must not reuse the parent's sockets.
    real_pid = platform_client.os.getpid()
    monkeypatch.setattr(platform_client.os, "getpid", lambda: real_pid + 1)
    assert platform_client.get_client() is not first
    platform_client.install_client(None)


# --- Retries against a real local HTTP server (in-process, no services) ----------


class _Flaky(BaseHTTPRequestHandler):
    """Answers 503 to the first request of each method, then 200."""

    seen: dict[str, int] = {}

    def _answer(self) -> None:
        count = self.seen.get(self.command, 0) + 1
        self.seen[self.command] = count
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        status, body = (503, b'{"detail": "warming up"}') if count == 1 else (200, b'{"status": "ok"}')
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Served-By", f"platform-{count}")
        self.end_headers()
        self.wfile.write(body)

    do_GET = _answer
    do_POST = _answer

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet."""


@pytest.fixture
def web_flaky_server() -> Iterator[str]:
    _Flaky.seen = {}
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Flaky)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_get_is_retried_after_a_503_but_post_is_not(web_flaky_server: str) -> None:
    client = PlatformClient(web_flaky_server, 2.0, build_session("t", pool_maxsize=2))
    trace, token = platform_client.begin_trace()
    try:
        assert client.healthz() == {"status": "ok"}
        with pytest.raises(Unavailable):
            client._call("POST", "/v1/stories", json={})
    finally:
        platform_client.end_trace(token)
    assert _Flaky.seen == {"GET": 2, "POST": 1}
    # The trace sees the answer that reached the caller, not the retried one.
    assert trace.servers == ["platform-2", "platform-1"]


def test_connection_refused_is_unavailable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # Nothing listens on the port any more.
    client = PlatformClient(f"http://127.0.0.1:{port}", 1.0, build_session("t", pool_maxsize=1))
    with pytest.raises(Unavailable) as caught:
        client.get_story(1)
    assert "unreachable" in caught.value.message


def test_retry_policy_never_resends_writes() -> None:
    retry = build_session("t", 1).get_adapter("http://x").max_retries  # type: ignore[attr-defined]
    assert retry.allowed_methods == frozenset({"GET"})
    for method in ("POST", "PUT", "DELETE"):
        assert not retry.is_retry(method, 503)
    assert retry.is_retry("GET", 503)
