"""The smart client: the web tier balancing over the platform servers itself.

Post, "Smart clients": a smart client "takes a pool of service hosts and
balances load across them, detects downed hosts and avoids sending requests
their way (they also have to detect recovered hosts, deal with adding new
hosts, etc, making them fun to get working decently and a terror to setup)".
This module is that client, switched on with ``PLATFORM_BALANCING = "smart"``:

- the pool is the JSON file ``PLATFORM_SERVERS_FILE``, written by the launcher
  from the topology and re-read when it changes, so **added hosts** are used
  without a restart;
- requests go **round-robin** over the servers believed up;
- a failed connection or exchange (refused, connect timeout, reset, read
  timeout) marks the server **down**. After a connection that could not be
  made, the call moves to the next server, whatever its method: nothing
  reached the application. A GET may also move on once after a read error or a
  502/503/504 (one without ``Retry-After``: a platform that says when to come
  back means it); a POST, PUT or DELETE does so only if it carries an
  ``Idempotency-Key``, because without one it could apply twice (post,
  "Redundancy and failover": the platform answers a keyed copy from the first);
- a down server is probed with ``GET /v1/healthz`` after a cooldown
  (``PLATFORM_SMART_COOLDOWN``) and rejoins the pool when healthy, so
  **recovered hosts** come back by themselves.

Why HAProxy stays the default (post, "Software load balancers": "For most
systems, I'd recommend starting with a software load balancer and moving to
smart clients or hardware load balancing only with deliberate need"). HAProxy
does all of the above in a few lines of configuration, shared by every client
in any language, with health checks that run whether or not traffic flows, a
stats page and a runtime API to drain a server. This module does a subset of
it, in Python, for this one client only: another service that wanted the
platform would need its own copy. "Developers lean towards smart clients
because they are developers, and so they are used to writing software to solve
their problems, and smart clients are software": here the software costs a
module of its own, threads and locks (gunicorn's gthread workers share it), a
config file the launcher must keep current, and tests with real sockets. What
it buys is one hop less on every call, and no HAProxy process on the path.

The client is a ``requests`` transport adapter mounted on the ordinary
platform session (see ``platform_client.build_client``), so ``PlatformClient``
does not change: it still records ``X-Served-By`` and ``X-Cache`` from whatever
answered, and pages show which platform server served them in both modes.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import BaseAdapter, HTTPAdapter
from urllib3.exceptions import ConnectTimeoutError

from news_web import idempotency

logger = logging.getLogger("news_web.smart_client")

# The base URL the platform client uses in smart mode. It names no real host:
# the adapter mounted on it swaps in a real server for every request.
SMART_BASE_URL = "http://platform.smart-client"

# Answers that mean "this server cannot serve right now", worth one more try
# elsewhere for a GET or a keyed write (the list ``build_session`` retries in
# HAProxy mode), unless they carry Retry-After.
RETRY_STATUSES = frozenset({502, 503, 504})
HEALTH_PATH = "/v1/healthz"

Timeout = float | tuple[float | None, float | None] | None


@dataclass(eq=False)
class Server:
    """One platform server and what this process believes about it."""

    name: str
    url: str
    up: bool = True
    # time.monotonic() of the last failure; the next probe waits a cooldown after it.
    down_since: float = 0.0
    probing: bool = False


class ServerFile:
    """The launcher's ``{"servers": [{"name": ..., "url": ...}]}`` file, re-read when it changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._signature: tuple[int, int, int] | None = None

    def changed(self) -> list[tuple[str, str]] | None:
        """The servers as ``(name, url)`` pairs if the file changed since last time, else None.

        The signature includes the inode because the launcher replaces the file
        by renaming a new one over it; two writes within one mtime tick still differ.
        A missing or unreadable file keeps the last good list (returns None).
        """
        try:
            stat = os.stat(self.path)
        except OSError:
            return None
        signature = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        if signature == self._signature:
            return None
        try:
            data = json.loads(self.path.read_text())
            servers = [(str(s["name"]), str(s["url"]).rstrip("/")) for s in data["servers"]]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            logger.warning("cannot read %s (%s); keeping the previous server list", self.path, exc)
            return None
        self._signature = signature
        return servers


class ServerPool:
    """The pool: which servers exist, which are up, whose turn it is. Thread-safe."""

    def __init__(
        self,
        source: ServerFile,
        cooldown: float,
        probe: Callable[[Server], bool],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.source = source
        self.cooldown = cooldown
        self._probe = probe
        self._clock = clock
        self._lock = threading.Lock()
        self._servers: list[Server] = []
        self._turn = 0

    def _reload(self) -> None:
        """Adopt a changed file; servers that stay keep their up/down state. Caller holds the lock."""
        pairs = self.source.changed()
        if pairs is None:
            return
        known = {s.url: s for s in self._servers}
        self._servers = [known.get(url) or Server(name, url) for name, url in pairs]
        for server, (name, _) in zip(self._servers, pairs):
            server.name = name
        logger.info("platform servers: %s", ", ".join(s.name for s in self._servers) or "none")

    def candidates(self) -> list[Server]:
        """The servers to try for one call, in order.

        The up servers come first, starting at the next one in turn (round
        robin). Down servers come last, as a last resort, so a call can still
        succeed if every server was marked down. Down servers whose cooldown
        has passed get a health probe in the background.
        """
        due: list[Server] = []
        with self._lock:
            self._reload()
            up = [s for s in self._servers if s.up]
            down = [s for s in self._servers if not s.up]
            start = self._turn % len(up) if up else 0
            self._turn += 1
            now = self._clock()
            for server in down:
                if not server.probing and now - server.down_since >= self.cooldown:
                    server.probing = True
                    due.append(server)
        for server in due:
            threading.Thread(target=self._run_probe, args=(server,), name=f"probe-{server.name}", daemon=True).start()
        return up[start:] + up[:start] + down

    def _run_probe(self, server: Server) -> None:
        """Probe one down server and put it back in the pool if it is healthy."""
        try:
            healthy = self._probe(server)
        except Exception:  # a probe must never kill its thread noisily
            logger.exception("health probe of %s failed", server.name)
            healthy = False
        with self._lock:
            server.probing = False
        if healthy:
            self.mark_up(server)
        else:
            self.mark_down(server)

    def mark_down(self, server: Server) -> None:
        """Take a server out of rotation until a probe finds it healthy."""
        with self._lock:
            was_up = server.up
            server.up = False
            server.down_since = self._clock()
        if was_up:
            logger.warning("platform server %s (%s) is down; avoiding it", server.name, server.url)

    def mark_up(self, server: Server) -> None:
        """Put a server back in rotation."""
        with self._lock:
            was_up = server.up
            server.up = True
        if not was_up:
            logger.info("platform server %s (%s) is back", server.name, server.url)

    def status(self) -> dict[str, bool]:
        """``{name: up}`` for every known server (for tests and debugging)."""
        with self._lock:
            self._reload()
            return {s.name: s.up for s in self._servers}


def never_sent(exc: requests.RequestException) -> bool:
    """True if the request failed before a connection existed, so it cannot have reached the app.

    urllib3 reports both a refused connection and a connect timeout as a
    ``ConnectTimeoutError`` (``NewConnectionError`` is a subclass), which
    requests wraps in ``ConnectTimeout`` or in ``ConnectionError(MaxRetryError)``.
    A reset or a read timeout on an open connection is something else: the
    request may have been read and applied.
    """
    if isinstance(exc, requests.ConnectTimeout):
        return True
    if isinstance(exc, requests.ConnectionError) and exc.args:
        reason = getattr(exc.args[0], "reason", exc.args[0])
        return isinstance(reason, ConnectTimeoutError)
    return False


def _accident(response: requests.Response) -> bool:
    """A 502/503/504 without ``Retry-After``: worth one more try on another server.

    With ``Retry-After`` the platform answered on purpose (read-only mode, its
    database down), and every other server would say the same.
    """
    return response.status_code in RETRY_STATUSES and not response.headers.get("Retry-After")


class SmartAdapter(BaseAdapter):
    """A ``requests`` adapter that sends each request to a platform server of its own choosing."""

    def __init__(
        self,
        servers_file: Path,
        *,
        cooldown: float = 2.0,
        connect_timeout: float = 0.5,
        probe_timeout: float = 1.0,
        pool_maxsize: int = 10,
    ) -> None:
        super().__init__()
        self.connect_timeout = connect_timeout
        self.probe_timeout = probe_timeout
        # No retries below us: choosing where to retry is this class's job.
        self.inner = HTTPAdapter(pool_connections=16, pool_maxsize=pool_maxsize, max_retries=0)
        self.pool = ServerPool(ServerFile(servers_file), cooldown, self.probe)

    def _timeout(self, timeout: Timeout) -> Timeout:
        """A short connect timeout, so a dead host costs little before the next one is tried."""
        if isinstance(timeout, (int, float)):
            return (min(self.connect_timeout, float(timeout)), float(timeout))
        return timeout

    @staticmethod
    def _retarget(request: requests.PreparedRequest, server: Server) -> requests.PreparedRequest:
        """A copy of ``request`` addressed to ``server`` (same path, query, headers and body)."""
        parts = urlsplit(request.url or "")
        attempt = request.copy()
        attempt.url = server.url + (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return attempt

    def send(  # type: ignore[override]
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Timeout = None,
        verify: bool | str = True,
        cert: Any = None,
        proxies: Mapping[str, str] | None = None,
    ) -> requests.Response:
        """Send ``request`` to the next server up, moving on only where that is safe."""
        candidates = self.pool.candidates()
        if not candidates:
            raise requests.ConnectionError("no platform servers in the pool", request=request)
        repeatable = idempotency.safe_to_resend(request.method, request.headers)
        second_chance = repeatable  # one more server after a maybe-sent failure: GET or keyed write
        failure: requests.RequestException | None = None
        held: requests.Response | None = None  # a 5xx kept in case no other server answers
        for index, server in enumerate(candidates):
            is_last = index == len(candidates) - 1
            try:
                response = self.inner.send(
                    self._retarget(request, server),
                    stream=stream, timeout=self._timeout(timeout), verify=verify, cert=cert, proxies=proxies,
                )
            except requests.RequestException as exc:
                self.pool.mark_down(server)
                failure = exc
                if never_sent(exc):
                    continue
                if second_chance:
                    second_chance = False
                    continue
                raise
            # It answered, so it is up (this also rescues a last-resort server).
            self.pool.mark_up(server)
            if _accident(response) and second_chance and not is_last:
                second_chance = False
                held = response
                continue
            if held is not None:
                held.close()
            return response
        if held is not None:
            return held
        assert failure is not None  # the loop returns on any answer it keeps
        raise failure

    def probe(self, server: Server) -> bool:
        """``GET /v1/healthz`` on one server: True when it answers 200."""
        request = requests.Request("GET", server.url + HEALTH_PATH, headers={"Accept": "application/json"}).prepare()
        try:
            response = self.inner.send(request, timeout=(self.connect_timeout, self.probe_timeout))
        except requests.RequestException:
            return False
        try:
            return response.status_code == 200
        finally:
            response.close()

    def close(self) -> None:
        """Close the pooled connections."""
        self.inner.close()


def build_adapter_from_settings() -> SmartAdapter:
    """The adapter the settings describe (``PLATFORM_SERVERS_FILE`` and the ``PLATFORM_SMART_*`` values)."""
    from django.conf import settings

    return SmartAdapter(
        Path(settings.PLATFORM_SERVERS_FILE),
        cooldown=settings.PLATFORM_SMART_COOLDOWN,
        connect_timeout=settings.PLATFORM_SMART_CONNECT_TIMEOUT,
        pool_maxsize=settings.PLATFORM_POOL_MAXSIZE,
    )
