"""What the web tier's ``/healthz`` reports, and why the platform never fails it.

Post, "Load balancing": HAProxy asks every web server once a second and takes
it out after two failures. Post, "Redundancy and failover": that check decides
which failures stay partial. So:

- **draining** (the file ``SCALESTACK_DRAIN_FILE`` exists, made by
  ``scalestack drain``): answer 503, so HAProxy sends no new requests while
  the ones in flight finish;
- **the platform** is reported, never a reason to fail. Every web server
  shares the same platform pool: if a platform outage failed their health
  checks, HAProxy would take every web server out at once, and a partial
  outage (some pages, or only writes) would become a total one, with not even
  an error page. The report is refreshed in the background at most every
  :data:`REFRESH_SECONDS`, so the check itself never waits for the platform.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings

logger = logging.getLogger(__name__)

# How old the platform report may get before a health check starts a refresh.
REFRESH_SECONDS = 5.0
# The refresh's own timeout: it runs in the background, so it need not be tiny.
PLATFORM_TIMEOUT = 1.0

Fetch = Callable[[], dict[str, Any]]
Spawn = Callable[[Callable[[], None]], None]


def draining() -> bool:
    """Whether this server is being drained: the drain file exists (one ``stat``; unset means never)."""
    path = settings.SCALESTACK_DRAIN_FILE
    return bool(path) and os.path.exists(path)


def fetch_platform_health() -> dict[str, Any]:
    """Ask the platform's ``/v1/healthz`` through this process's client (HAProxy or the smart client)."""
    from news_web import platform_client  # imported on use: platform_client needs settings loaded

    try:
        found = platform_client.get_client().healthz(timeout=PLATFORM_TIMEOUT)
    except platform_client.PlatformError as exc:
        return {"reachable": False, "error": exc.message}
    return {"reachable": True, "status": found.get("status", "unknown"), "server": found.get("server", "")}


def in_background(work: Callable[[], None]) -> None:
    """Run ``work`` in a daemon thread of its own."""
    threading.Thread(target=work, name="platform-health", daemon=True).start()


class PlatformWatch:
    """The last platform report, refreshed by a background thread when it is stale.

    ``report()`` never blocks on the platform: it returns what is known and,
    if that is older than ``refresh_seconds``, starts one refresh (never two at
    once) with ``spawn``. Until the first refresh finishes the status is ``"unknown"``.
    """

    def __init__(
        self,
        fetch: Fetch,
        refresh_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        spawn: Spawn = in_background,
    ) -> None:
        self.fetch = fetch
        self.refresh_seconds = refresh_seconds
        self._clock = clock
        self._spawn = spawn
        self._lock = threading.Lock()
        self._report: dict[str, Any] = {"reachable": None, "status": "unknown"}
        self._checked_at: float | None = None
        self._refreshing = False

    def report(self) -> dict[str, Any]:
        """The current report with its age in seconds (``None`` before the first), starting a refresh if stale."""
        with self._lock:
            now = self._clock()
            stale = self._checked_at is None or now - self._checked_at >= self.refresh_seconds
            start = stale and not self._refreshing
            if start:
                self._refreshing = True
            report = dict(self._report)
            age = None if self._checked_at is None else round(now - self._checked_at, 1)
        if start:
            self._spawn(self.refresh)
        return {**report, "age_seconds": age}

    def refresh(self) -> None:
        """Fetch a new report now (in the caller's thread) and keep it."""
        try:
            report = self.fetch()
        except Exception as exc:  # a report must never take the health check down
            logger.warning("platform health report failed: %r", exc)
            report = {"reachable": False, "error": type(exc).__name__}
        with self._lock:
            self._report = report
            self._checked_at = self._clock()
            self._refreshing = False


# One per process; tests swap it for one with a fake fetch.
watch = PlatformWatch(fetch_platform_health, REFRESH_SECONDS)
