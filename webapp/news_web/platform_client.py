"""The web tier's only door to data: an HTTP client for the platform API.

Post, "Platform layer": the web application talks to a platform layer, which in
turn talks to the databases and caches; this tier never opens a database or
cache connection itself. Post, "Software load balancers": it reaches the
platform through HAProxy's locally bound port (``PLATFORM_URL``, by default
``127.0.0.1:9000``), so HAProxy, not this code, picks a healthy platform server.
That is also why this is not a "smart client": it knows one address. The
post's other way is one setting away: with ``PLATFORM_BALANCING = "smart"``,
``build_client`` mounts the smart client of ``news_web.smart_client`` on the
session, and this module's code runs unchanged on top of it.

Per incoming web request it records which platform servers answered
(``X-Served-By``) and how the platform's data cache answered (``X-Cache``,
post "Caching"), so every page can show the architecture at work.

Post, "Redundancy and failover": every write method takes an
``idempotency_key``, sent as the ``Idempotency-Key`` header, which is what
lets the retry policy in :func:`build_session` send a write again safely.
"""

from __future__ import annotations

import contextvars
import hashlib
import os
import re
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any
from urllib.parse import quote

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter
from urllib3.filepost import encode_multipart_formdata
from urllib3.util import Retry

from news_web import idempotency
from news_web.platform_models import (
    DomainVisits,
    ExportJob,
    FollowResult,
    Page,
    Story,
    User,
    UserRef,
    VoteResult,
)
from news_web.smart_client import SMART_BASE_URL, build_adapter_from_settings

# Seconds a click may take to be accepted before the redirect goes ahead
# without it (post, "Message queues": the platform only publishes the event,
# which normally takes a few milliseconds).
CLICK_TIMEOUT = 2.0

# --- Errors ---------------------------------------------------------------------


class PlatformError(Exception):
    """Any failed platform call; ``message`` is readable, ``status`` the HTTP status (0 if none)."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class NotFound(PlatformError):
    """404: the user or story does not exist."""


class Conflict(PlatformError):
    """409: e.g. the username is taken."""


class Unauthorized(PlatformError):
    """401/403: bad user credentials on ``POST /v1/sessions``, or a bad service token elsewhere."""


class Invalid(PlatformError):
    """400/422: the platform rejected the input; ``field_errors`` maps field names to messages."""

    def __init__(self, message: str, status: int, field_errors: dict[str, list[str]] | None = None) -> None:
        super().__init__(message, status)
        self.field_errors: dict[str, list[str]] = field_errors or {}


class Unavailable(PlatformError):
    """5xx, a timeout, or no connection: the platform cannot answer right now."""


class ReadOnly(Unavailable):
    """503 with ``X-Read-Only: true``: the primary database is down, so the write was not saved.

    ``retry_after`` is the platform's ``Retry-After`` (seconds), for the page to pass on.
    """

    def __init__(self, message: str, status: int, retry_after: int) -> None:
        super().__init__(message, status)
        self.retry_after = retry_after


# Seconds to suggest when the platform's Retry-After is missing or not a number.
DEFAULT_RETRY_AFTER = 5


# --- Per-request trace ----------------------------------------------------------

_CACHE_HEADER = re.compile(r"hits=(\d+)\s+misses=(\d+)")


@dataclass
class PlatformTrace:
    """What the platform calls of one web request did: who served them, and cache hits/misses."""

    servers: list[str] = field(default_factory=list)
    hits: int = 0
    misses: int = 0
    calls: int = 0
    # When the web request started, so the footer can say how long the page took.
    started: float = field(default_factory=time.perf_counter)

    def record(self, headers: Mapping[str, str]) -> None:
        """Add one platform response's ``X-Served-By`` and ``X-Cache`` to the totals."""
        self.calls += 1
        server = headers.get("X-Served-By", "").strip()
        if server and server not in self.servers:
            self.servers.append(server)
        match = _CACHE_HEADER.search(headers.get("X-Cache", ""))
        if match:
            self.hits += int(match.group(1))
            self.misses += int(match.group(2))

    @property
    def servers_header(self) -> str:
        """The distinct platform servers in call order, comma-separated ("" when none)."""
        return ", ".join(self.servers)

    @property
    def cache_header(self) -> str:
        """The summed cache figures in the platform's own format."""
        return f"hits={self.hits} misses={self.misses}"

    def elapsed_ms(self) -> int:
        """Milliseconds since the web request started."""
        return round((time.perf_counter() - self.started) * 1000)


# A ContextVar rather than a thread-local, so it is right under threads and
# under ASGI alike; the middleware sets a fresh trace per request and resets it.
_trace: contextvars.ContextVar[PlatformTrace | None] = contextvars.ContextVar("platform_trace", default=None)


def begin_trace() -> tuple[PlatformTrace, contextvars.Token[PlatformTrace | None]]:
    """Start recording platform calls for the current request."""
    trace = PlatformTrace()
    return trace, _trace.set(trace)


def end_trace(token: contextvars.Token[PlatformTrace | None]) -> None:
    """Stop recording; calls made afterwards go nowhere."""
    _trace.reset(token)


def current_trace() -> PlatformTrace | None:
    """The trace of the request being handled, or None outside a request."""
    return _trace.get()


# --- HTTP session ---------------------------------------------------------------


# Methods sent again after they may have reached the platform: reads always,
# writes only with an Idempotency-Key (the keyed adapter below).
READ_METHODS = frozenset({"GET"})
RESENDABLE_WITH_KEY = frozenset({"GET", "POST", "PUT", "DELETE"})


class AccidentRetry(Retry):
    """urllib3's ``Retry`` that leaves alone a 5xx which says when to come back.

    A 503 with ``Retry-After`` is the platform answering on purpose (read-only
    mode, its database down), the same on every platform server for the next
    few seconds, so sending it again at once only doubles the wait. HAProxy's
    own 502/503/504 carry no ``Retry-After``: those are the accidents worth a retry.
    """

    def is_retry(self, method: str, status_code: int, has_retry_after: bool = False) -> bool:
        """Retry a listed status only if the answer has no ``Retry-After``."""
        if has_retry_after and self.status_forcelist and status_code in self.status_forcelist:
            return False
        return super().is_retry(method, status_code, has_retry_after)


def retry_policy(methods: frozenset[str]) -> Retry:
    """urllib3's ``Retry`` for requests that may be sent again with these ``methods``.

    Connection errors are retried for every method: the request never left,
    so even a POST cannot have been applied. Read errors (a timeout, a reset)
    and 502/503/504 answers (HAProxy still sending to a platform server that
    just died, or its "no server available") are retried only for ``methods``.
    The budget is the same small one for all: at most two retries, one of them
    after a read error or a 5xx, 50-100 ms apart.
    """
    return AccidentRetry(
        total=2,
        connect=2,
        read=1,
        status=1,
        other=0,
        allowed_methods=methods,
        status_forcelist=frozenset({502, 503, 504}),
        backoff_factor=0.05,
        # Keep the worst case bounded; a Retry-After of minutes would hang the page.
        respect_retry_after_header=False,
        # Hand the last 5xx back to us, so it is mapped to Unavailable below.
        raise_on_status=False,
    )


class IdempotentRetryAdapter(HTTPAdapter):
    """An ``HTTPAdapter`` whose retries depend on whether a write carries an ``Idempotency-Key``.

    urllib3's ``Retry`` decides by method alone and never sees the headers,
    so a keyed write goes through a second adapter whose policy also allows
    POST, PUT and DELETE. Without a key a write that may have reached the
    platform is never sent again (it could apply twice); with one, the
    platform answers the copy from the first attempt (``platform_api.idempotency``).
    """

    def __init__(self, pool_maxsize: int) -> None:
        super().__init__(pool_connections=1, pool_maxsize=pool_maxsize, max_retries=retry_policy(READ_METHODS))
        self.keyed = HTTPAdapter(
            pool_connections=1, pool_maxsize=pool_maxsize, max_retries=retry_policy(RESENDABLE_WITH_KEY)
        )

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        """Send through the keyed adapter if the request is a write with a key, else as usual."""
        if idempotency.keyed_write(request.method, request.headers):
            return self.keyed.send(request, *args, **kwargs)
        return super().send(request, *args, **kwargs)

    def close(self) -> None:
        """Close both adapters' pooled connections."""
        super().close()
        self.keyed.close()


def build_session(token: str, pool_maxsize: int) -> requests.Session:
    """A pooled session with the service token and conservative retries.

    Retries are limited to what is safe (:func:`retry_policy`): connection
    errors for everything, and read errors and 502/503/504 answers for GETs and
    for writes that carry an ``Idempotency-Key`` (:class:`IdempotentRetryAdapter`).
    A write without a key is never sent again once it may have reached the platform.
    """
    adapter = IdempotentRetryAdapter(pool_maxsize)
    session = requests.Session()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["Authorization"] = f"Bearer {token}"
    session.headers["Accept"] = "application/json"
    return session


def _readable_detail(body: Any) -> tuple[str, dict[str, list[str]]]:
    """Turn ``{"detail": str | [pydantic errors]}`` into a message and per-field messages."""
    detail = body.get("detail") if isinstance(body, dict) else None
    if isinstance(detail, str):
        return detail, {}
    if isinstance(detail, list):
        fields: dict[str, list[str]] = {}
        lines: list[str] = []
        for item in detail:
            if not isinstance(item, dict):
                continue
            msg = str(item.get("msg", "invalid value"))
            loc = [part for part in item.get("loc", []) if isinstance(part, str)]
            name = loc[-1] if loc else ""
            # ninja's loc is e.g. ["body", "payload", "title"]; only the last part is a field.
            if name in ("body", "payload", "query", "path", ""):
                lines.append(msg)
                continue
            fields.setdefault(name, []).append(msg)
            lines.append(f"{name}: {msg}")
        return "; ".join(lines) or "Invalid input.", fields
    return "", {}


def error_for(response: requests.Response) -> PlatformError:
    """Map an error response to the typed exception the views handle."""
    status = response.status_code
    try:
        body = response.json()
    except ValueError:  # HAProxy's own 502/503 pages are HTML
        body = None
    message, fields = _readable_detail(body)
    message = message or f"platform answered {status}"
    if status in (400, 422):
        return Invalid(message, status, fields)
    if status in (401, 403):
        return Unauthorized(message, status)
    if status == 404:
        return NotFound(message, status)
    if status == 409:
        return Conflict(message, status)
    if status == 503 and response.headers.get("X-Read-Only", "").lower() == "true":
        return ReadOnly(message, status, _retry_after(response.headers.get("Retry-After")))
    if status >= 500:
        return Unavailable(message, status)
    return PlatformError(message, status)


def _retry_after(value: str | None) -> int:
    """``Retry-After`` in seconds, as the platform sends it (a number); a sane default otherwise."""
    if value and value.strip().isdigit():
        return min(int(value), 3600)
    return DEFAULT_RETRY_AFTER


# --- The client -----------------------------------------------------------------


def _name(username: str) -> str:
    """Quote a username for a path segment, so no input can change the API path."""
    return quote(username, safe="")


class PlatformClient:
    """Typed methods for every endpoint of docs/platform-api.md."""

    def __init__(self, base_url: str, timeout: float, session: requests.Session) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.session = session

    def _send(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        body: tuple[bytes, str] | None = None,
        timeout: float | None = None,
        idempotency_key: str | None = None,
    ) -> requests.Response:
        """Send one request, record its trace headers, and return the successful response or raise.

        ``body`` is an already encoded body and its content type, for what is not JSON.
        """
        headers: dict[str, str] = {}
        if idempotency_key:
            headers[idempotency.HEADER] = idempotency_key
        data = None
        if body is not None:
            data, headers["Content-Type"] = body
        try:
            response = self.session.request(
                method,
                f"{self.base_url}{path}",
                params=params,
                json=json,
                data=data,
                headers=headers or None,
                timeout=timeout or self.timeout,
            )
        except requests.RequestException as exc:  # refused, timed out, retries used up
            raise Unavailable(f"platform unreachable: {exc.__class__.__name__}") from exc
        trace = current_trace()
        if trace is not None:
            # Errors count too: the platform answered, and may have used its cache.
            trace.record(response.headers)
        if response.status_code >= 400:
            raise error_for(response)
        return response

    def _call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        body: tuple[bytes, str] | None = None,
        timeout: float | None = None,
        idempotency_key: str | None = None,
    ) -> Any:
        """Send one request and return its JSON body, or raise the typed error."""
        response = self._send(
            method, path, params=params, json=json, body=body, timeout=timeout, idempotency_key=idempotency_key
        )
        try:
            return response.json()
        except ValueError as exc:
            raise Unavailable("platform answered with something other than JSON") from exc

    # Accounts
    def create_user(self, username: str, password: str, *, idempotency_key: str | None = None) -> User:
        """``POST /v1/users``: sign up; Conflict if the name is taken."""
        body = {"username": username, "password": password}
        return User.from_json(self._call("POST", "/v1/users", json=body, idempotency_key=idempotency_key))

    def authenticate(self, username: str, password: str) -> User:
        """``POST /v1/sessions``: check a password; Unauthorized if wrong."""
        return User.from_json(self._call("POST", "/v1/sessions", json={"username": username, "password": password}))

    # Users
    def get_user(self, username: str) -> User:
        """``GET /v1/users/{username}``."""
        return User.from_json(self._call("GET", f"/v1/users/{_name(username)}"))

    def user_stories(self, username: str, page: int = 1) -> Page[Story]:
        """``GET /v1/users/{username}/stories``."""
        data = self._call("GET", f"/v1/users/{_name(username)}/stories", params={"page": page})
        return Page.from_json(data, Story.from_json)

    def followers(self, username: str, page: int = 1) -> Page[UserRef]:
        """``GET /v1/users/{username}/followers``."""
        data = self._call("GET", f"/v1/users/{_name(username)}/followers", params={"page": page})
        return Page.from_json(data, UserRef.from_json)

    def following(self, username: str, page: int = 1) -> Page[UserRef]:
        """``GET /v1/users/{username}/following``."""
        data = self._call("GET", f"/v1/users/{_name(username)}/following", params={"page": page})
        return Page.from_json(data, UserRef.from_json)

    def is_following(self, user_id: int, other_id: int) -> bool:
        """``GET /v1/users/{user_id}/following/{other_id}``."""
        return bool(self._call("GET", f"/v1/users/{int(user_id)}/following/{int(other_id)}")["following"])

    def follow(self, user_id: int, other_id: int, *, idempotency_key: str | None = None) -> FollowResult:
        """``PUT /v1/users/{user_id}/following/{other_id}`` (idempotent)."""
        path = f"/v1/users/{int(user_id)}/following/{int(other_id)}"
        return FollowResult.from_json(self._call("PUT", path, idempotency_key=idempotency_key))

    def unfollow(self, user_id: int, other_id: int, *, idempotency_key: str | None = None) -> FollowResult:
        """``DELETE /v1/users/{user_id}/following/{other_id}`` (idempotent)."""
        path = f"/v1/users/{int(user_id)}/following/{int(other_id)}"
        return FollowResult.from_json(self._call("DELETE", path, idempotency_key=idempotency_key))

    def set_avatar(self, user_id: int, image: bytes, *, idempotency_key: str | None = None) -> User:
        """``PUT /v1/users/{user_id}/avatar``: upload ``image`` as the multipart field ``file``.

        The platform checks and converts it (413, 415 or 422 otherwise) and
        answers the user with the new ``avatar``. The body is encoded here,
        with a boundary derived from the key, rather than by requests'
        ``files=``, whose boundary is random: the platform fingerprints a keyed
        write by its body, so only identical bytes let a re-posted form be
        answered from the first upload instead of refused as another request.
        """
        # Without a key any boundary will do: a fresh uuid4 is as random as requests' own.
        seed = idempotency_key or idempotency.new_key()
        boundary = hashlib.sha256(seed.encode()).hexdigest()[:32]
        body = encode_multipart_formdata(
            {"file": ("avatar", image, "application/octet-stream")}, boundary=boundary
        )
        path = f"/v1/users/{int(user_id)}/avatar"
        return User.from_json(self._call("PUT", path, body=body, idempotency_key=idempotency_key))

    def home(self, user_id: int, page: int = 1) -> Page[Story]:
        """``GET /v1/users/{user_id}/home``: stories by the people the user follows."""
        data = self._call("GET", f"/v1/users/{int(user_id)}/home", params={"page": page})
        return Page.from_json(data, Story.from_json)

    # Stories
    def stories(self, sort: str, page: int = 1) -> Page[Story]:
        """``GET /v1/stories?sort=top|new``."""
        data = self._call("GET", "/v1/stories", params={"sort": sort, "page": page})
        return Page.from_json(data, Story.from_json)

    def get_story(self, story_id: int) -> Story:
        """``GET /v1/stories/{id}``."""
        return Story.from_json(self._call("GET", f"/v1/stories/{int(story_id)}"))

    def create_story(
        self, author_id: int, title: str, url: str, text: str, *, idempotency_key: str | None = None
    ) -> Story:
        """``POST /v1/stories``; an absent url or text is sent as an empty string."""
        body = {"author_id": author_id, "title": title, "url": url, "text": text}
        return Story.from_json(self._call("POST", "/v1/stories", json=body, idempotency_key=idempotency_key))

    def vote(self, story_id: int, user_id: int, *, idempotency_key: str | None = None) -> VoteResult:
        """``POST /v1/stories/{id}/votes``; a repeated vote answers ``counted: false``.

        Unless it repeats the key of the first: then it gets the first answer again.
        """
        path = f"/v1/stories/{int(story_id)}/votes"
        return VoteResult.from_json(
            self._call("POST", path, json={"user_id": user_id}, idempotency_key=idempotency_key)
        )

    # Off-line processing (post, "Off-line processing")
    def record_click(self, story_id: int, user_id: int | None, referrer_domain: str) -> str:
        """``POST /v1/clicks``; returns where the event is queued (``broker`` or ``outbox``).

        With a short timeout of its own: the click is analytics, and the user
        being redirected must not wait long for it. For the same reason it
        carries no idempotency key, so it is never retried once sent and never
        waits for PostgreSQL (an unkeyed click only needs RabbitMQ).
        """
        body = {"story_id": int(story_id), "user_id": user_id, "referrer_domain": referrer_domain}
        return str(self._call("POST", "/v1/clicks", json=body, timeout=CLICK_TIMEOUT)["queued"])

    def start_export(self, user_id: int, *, idempotency_key: str | None = None) -> ExportJob:
        """``POST /v1/users/{user_id}/exports``: schedule an export; the job comes back at once."""
        path = f"/v1/users/{int(user_id)}/exports"
        return ExportJob.from_json(self._call("POST", path, idempotency_key=idempotency_key))

    def export_job(self, user_id: int, job_id: uuid.UUID) -> ExportJob:
        """``GET /v1/users/{user_id}/exports/{job_id}``; NotFound if it is not the user's job."""
        return ExportJob.from_json(self._call("GET", f"/v1/users/{int(user_id)}/exports/{uuid.UUID(str(job_id))}"))

    def export_document(self, user_id: int, job_id: uuid.UUID) -> bytes:
        """``GET .../exports/{job_id}/download``: the JSON document as sent; Conflict until done."""
        path = f"/v1/users/{int(user_id)}/exports/{uuid.UUID(str(job_id))}/download"
        return self._send("GET", path).content

    def domain_visits(self, day: date) -> DomainVisits:
        """``GET /v1/analytics/domains?day=``: one UTC day of the referrer rollups."""
        return DomainVisits.from_json(self._call("GET", "/v1/analytics/domains", params={"day": day.isoformat()}))

    def trending(self, page: int = 1) -> Page[Story]:
        """``GET /v1/trending``: stories as the last periodic run ranked them."""
        data = self._call("GET", "/v1/trending", params={"page": page})
        return Page.from_json(data, Story.from_json)

    def story_suggestions(self, story_id: int, limit: int = 5) -> list[Story]:
        """``GET /v1/stories/{id}/suggestions``: people who clicked this also clicked these."""
        data = self._call("GET", f"/v1/stories/{int(story_id)}/suggestions", params={"limit": limit})
        return [Story.from_json(item) for item in data["items"]]

    def story_clicks(self, story_id: int) -> int:
        """``GET /v1/stories/{id}/clicks``: how often the story's link was followed."""
        return int(self._call("GET", f"/v1/stories/{int(story_id)}/clicks")["clicks"])

    def follow_suggestions(self, user_id: int, limit: int = 5) -> list[UserRef]:
        """``GET /v1/users/{user_id}/suggestions``: people the user may follow."""
        data = self._call("GET", f"/v1/users/{int(user_id)}/suggestions", params={"limit": limit})
        return [UserRef.from_json(item) for item in data["items"]]

    def healthz(self, timeout: float | None = None) -> dict[str, Any]:
        """``GET /v1/healthz`` on whichever platform server the balancing picks."""
        result: dict[str, Any] = self._call("GET", "/v1/healthz", timeout=timeout)
        return result


# --- One client per process -----------------------------------------------------

_client: PlatformClient | None = None
_client_pid: int = 0
_client_lock = threading.Lock()


def get_client() -> PlatformClient:
    """The process's client, built from settings on first use.

    It is keyed by process id because gunicorn forks workers: a pool of sockets
    inherited from the parent would be shared by two processes.
    """
    global _client, _client_pid
    pid = os.getpid()
    if _client is None or _client_pid != pid:
        with _client_lock:
            if _client is None or _client_pid != pid:
                _client = build_client()
                _client_pid = pid
    return _client


def build_client() -> PlatformClient:
    """A client as the settings say: through HAProxy's pool, or balanced by the smart client."""
    session = build_session(settings.PLATFORM_TOKEN, settings.PLATFORM_POOL_MAXSIZE)
    if settings.PLATFORM_BALANCING != "smart":
        return PlatformClient(settings.PLATFORM_URL, settings.PLATFORM_TIMEOUT, session)
    session.mount(f"{SMART_BASE_URL}/", build_adapter_from_settings())
    return PlatformClient(SMART_BASE_URL, settings.PLATFORM_TIMEOUT, session)


def install_client(client: PlatformClient | None) -> None:
    """Replace the process's client (tests inject one with a fake transport); None rebuilds from settings."""
    global _client, _client_pid
    with _client_lock:
        _client = client
        _client_pid = os.getpid() if client is not None else 0
