"""Unit-test fixtures. Web tier section: fixtures named ``web_*``, no services needed.

The web tier's unit tests run Django in-process with ``news_web.settings`` and a
fake platform: a ``requests`` transport adapter (the "responses" pattern, hand
rolled) mounted on the real ``PlatformClient``'s session. So the client's real
code runs (headers, error mapping, per-request trace) and only the network is fake.

Note for other sections: one Python process can host one Django settings module.
The web section configures ``news_web.settings`` when this file is imported.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

# --- Web tier: Django set-up ------------------------------------------------------

WEB_REPO_ROOT = Path(__file__).resolve().parents[2]
WEB_APP_DIR = WEB_REPO_ROOT / "webapp"
# webapp/, never the repository root: the root's platform/ folder must not
# shadow the standard library's platform module.
if str(WEB_APP_DIR) not in sys.path:
    sys.path.insert(0, str(WEB_APP_DIR))

WEB_TEST_ENV: dict[str, str] = {
    "DJANGO_SETTINGS_MODULE": "news_web.settings",
    "DJANGO_SECRET_KEY": "unit-test-secret-key-not-for-production",
    "PLATFORM_TOKEN": "unit-test-token",
    "PLATFORM_URL": "http://platform.test:9000",
    "SCALESTACK_SERVER_NAME": "web-test",
}


@contextmanager
def _web_env(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables only while settings are read, so nothing leaks to other tests."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, old in saved.items():
            if old is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = old


def _web_setup_django() -> None:
    import django
    from django.conf import settings
    from django.test.utils import setup_test_environment

    if settings.configured:
        return
    with _web_env(WEB_TEST_ENV):
        django.setup()
    # Allows the test client's "testserver" host and records rendered contexts.
    setup_test_environment()


_web_setup_django()


# --- Web tier: a fake platform ----------------------------------------------------


@dataclass
class WebPlatformCall:
    """One request the web tier sent to the (fake) platform."""

    method: str
    path: str
    query: dict[str, str]
    body: Any
    headers: dict[str, str]


@dataclass
class WebFakeReply:
    """What the fake platform answers: status, JSON body (or raw text), trace headers, and any others."""

    status: int = 200
    body: Any = None
    served_by: str = "platform-1"
    cache: str = "hits=0 misses=0"
    raw: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[WebPlatformCall], WebFakeReply]


class WebUnroutedCall(AssertionError):
    """The web tier called a platform path the test did not expect."""


@dataclass
class WebFakePlatform(BaseAdapter):
    """A requests transport that answers platform calls from routes a test registers."""

    # Tests build replies through the fixture (``web_platform.Reply(...)``) rather
    # than importing from conftest at run time, which pytest advises against.
    Reply: ClassVar[type[WebFakeReply]] = WebFakeReply

    routes: dict[tuple[str, str], Handler] = field(default_factory=dict)
    calls: list[WebPlatformCall] = field(default_factory=list)
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    # Answers for paths no exact route matched: (method, path regex, handler).
    # The suggestion panels and the click count beside a story, and on the home page, are secondary
    # content every such page asks for; unless a test registers them, they are
    # empty, so tests about the main content need not mention them.
    fallback_routes: list[tuple[str, re.Pattern[str], Handler]] = field(
        default_factory=lambda: [
            ("GET", re.compile(r"/v1/stories/\d+/suggestions"), lambda _call: WebFakeReply(200, {"items": []})),
            ("GET", re.compile(r"/v1/users/\d+/suggestions"), lambda _call: WebFakeReply(200, {"items": []})),
            ("GET", re.compile(r"/v1/stories/(\d+)/clicks"),
             lambda call: WebFakeReply(200, {"story_id": int(call.path.split("/")[3]), "clicks": 3})),
        ]
    )

    def __post_init__(self) -> None:
        super().__init__()

    # Registering answers
    def reply(self, method: str, path: str, reply: WebFakeReply | Handler) -> None:
        """Answer ``method path`` (path without query) with a fixed reply or a handler."""
        self.routes[(method.upper(), path)] = reply if callable(reply) else (lambda _call, r=reply: r)

    def ok(self, method: str, path: str, body: Any, **reply: Any) -> None:
        """Shortcut: answer 200 with ``body``."""
        self.reply(method, path, WebFakeReply(200, body, **reply))

    def fail(self, method: str, path: str, status: int, detail: Any = "nope", **reply: Any) -> None:
        """Shortcut: answer an error with ``{"detail": detail}``."""
        self.reply(method, path, WebFakeReply(status, {"detail": detail}, **reply))

    def calls_to(self, method: str, path: str) -> list[WebPlatformCall]:
        """The recorded calls to one endpoint."""
        return [c for c in self.calls if c.method == method.upper() and c.path == path]

    # Factories for the API's objects (docs/platform-api.md, "Objects")
    def user(self, username: str = "alice", **overrides: Any) -> dict[str, Any]:
        """A ``User`` object."""
        data: dict[str, Any] = {
            "id": next(self._ids),
            "username": username,
            "date_joined": "2024-01-02T03:04:05Z",
            "followers_count": 0,
            "following_count": 0,
            "stories_count": 0,
            "karma": 0,
            "avatar": "",
            "version": 1,
        }
        return {**data, **overrides}

    def story(self, title: str = "A story", **overrides: Any) -> dict[str, Any]:
        """A ``Story`` object, a link story by default."""
        data: dict[str, Any] = {
            "id": next(self._ids),
            "author_id": 1,
            "author_username": "alice",
            "title": title,
            "url": "https://www.example.com/a",
            "domain": "example.com",
            "text": "",
            "votes": 1,
            "created_at": "2024-01-02T03:04:05Z",
            "version": 1,
        }
        return {**data, **overrides}

    @staticmethod
    def page(items: list[dict[str, Any]], page: int = 1, has_next: bool = False) -> dict[str, Any]:
        """A ``StoryPage`` or ``UserPage`` object."""
        return {"items": items, "page": page, "has_next": has_next}

    # The transport
    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        """Record the call and build the registered answer."""
        parts = urlsplit(request.url or "")
        # JSON is decoded for the tests; anything else (a multipart upload) is kept as sent.
        is_json = request.headers.get("Content-Type", "").startswith("application/json")
        body = (json.loads(request.body) if is_json else request.body) if request.body else None
        call = WebPlatformCall(
            method=str(request.method),
            path=parts.path,
            query={k: v[-1] for k, v in parse_qs(parts.query).items()},
            body=body,
            headers=dict(request.headers),
        )
        self.calls.append(call)
        handler = self.routes.get((call.method, call.path)) or next(
            (h for method, pattern, h in self.fallback_routes if method == call.method and pattern.fullmatch(call.path)),
            None,
        )
        if handler is None:
            raise WebUnroutedCall(f"unexpected platform call {call.method} {request.url}")
        reply = handler(call)
        response = requests.Response()
        response.status_code = reply.status
        response._content = (reply.raw if reply.raw is not None else json.dumps(reply.body)).encode()
        response.headers = CaseInsensitiveDict(
            {
                "Content-Type": "text/html" if reply.raw is not None else "application/json",
                "X-Served-By": reply.served_by,
                "X-Cache": reply.cache,
                **reply.headers,
            }
        )
        response.url = request.url or ""
        response.request = request
        response.encoding = "utf-8"
        return response

    def close(self) -> None:
        """Nothing to release."""


# --- Web tier: fixtures -------------------------------------------------------------


@pytest.fixture(scope="session")
def web_static_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Run the real ``collectstatic`` once, so pages use hashed names exactly as in production."""
    from django.core.management import call_command
    from django.test.utils import override_settings

    root = tmp_path_factory.mktemp("web-static")
    override = override_settings(STATIC_ROOT=root)
    override.enable()
    try:
        call_command("collectstatic", interactive=False, verbosity=0)
        yield root
    finally:
        override.disable()


@pytest.fixture
def web_platform() -> Iterator[WebFakePlatform]:
    """A fake platform behind the real ``PlatformClient``, installed as the process's client."""
    from django.conf import settings

    from news_web import platform_client

    fake = WebFakePlatform()
    session = platform_client.build_session(settings.PLATFORM_TOKEN, pool_maxsize=2)
    session.mount("http://", fake)
    platform_client.install_client(
        platform_client.PlatformClient(settings.PLATFORM_URL, settings.PLATFORM_TIMEOUT, session)
    )
    try:
        yield fake
    finally:
        platform_client.install_client(None)


@pytest.fixture
def web_client(web_static_root: Path, web_platform: WebFakePlatform) -> Any:
    """A Django test client for the web tier, with the fake platform in place."""
    from django.test import Client

    return Client()


@pytest.fixture
def web_login() -> Callable[..., None]:
    """Log a test client in by giving it a signed session cookie, as the login view would."""
    from django.conf import settings
    from django.contrib.sessions.backends.signed_cookies import SessionStore

    def login(client: Any, uid: int, uname: str) -> None:
        store = SessionStore()
        store["uid"] = uid
        store["uname"] = uname
        store.save()
        client.cookies[settings.SESSION_COOKIE_NAME] = store.session_key

    return login
