"""Read-only mode: with the primary down, writes get a clear 503 and reads go on.

The post's "Redundancy and failover": the platform reads through HAProxy's read
pool and writes through its write pool (the primary). Losing the primary must
therefore cost the writes only. Every write endpoint (the ones marked
:func:`platform_api.idempotency.idempotent`, see :func:`mark_write`) that
cannot reach the primary answers

    503 {"detail": "The site is read-only for now: ..."}
    Retry-After: 5
    X-Read-Only: true

at once, never a 500 and never a hang; reads are untouched. The web tier
recognises the answer by ``X-Read-Only`` and tells the user that their write
was not saved.

:func:`unavailable_response` is the platform's one answer to every database
outage: the API's exception handler and the idempotency transaction both use
it, so a failure looks the same wherever it is caught.
"""
from __future__ import annotations

import logging

from django.db import InterfaceError, OperationalError, connections
from django.http import HttpRequest, JsonResponse
from psycopg_pool import PoolTimeout

from platform_api import primary
from platform_api.primary import PrimaryUnavailable

log = logging.getLogger(__name__)

WRITE_DB = "default"
RETRY_AFTER_SECONDS = 5
READ_ONLY_DETAIL = (
    "The site is read-only for now: the primary database is unavailable. Try again in a few seconds."
)
DATABASE_DOWN_DETAIL = "the database is unavailable; try again shortly"
# Machine-readable twin of READ_ONLY_DETAIL, so clients need not match text.
READ_ONLY_HEADER = "X-Read-Only"

# Everything that means "a database could not be reached". PoolTimeout is
# psycopg_pool's "no connection within the pool timeout"; Django normally wraps
# it in its own OperationalError, but not when the pool is used directly.
DATABASE_ERRORS: tuple[type[Exception], ...] = (OperationalError, InterfaceError, PoolTimeout, PrimaryUnavailable)

_WRITE_ATTRIBUTE = "_scalestack_write"


def mark_write(request: HttpRequest) -> None:
    """Record that ``request`` is served by a write endpoint (so it needs the primary)."""
    setattr(request, _WRITE_ATTRIBUTE, True)


def is_write(request: HttpRequest) -> bool:
    """Whether :func:`mark_write` was called for ``request``."""
    return bool(getattr(request, _WRITE_ATTRIBUTE, False))


def primary_failed(request: HttpRequest, exc: BaseException) -> bool:
    """Whether ``exc`` means the primary is unavailable to this request.

    :class:`PrimaryUnavailable` always does. A driver error does when it
    happened during a write and on the ``default`` alias: Django sets
    ``errors_occurred`` on the connection whose call failed (and clears it on
    every successful connect, commit or rollback), so a write endpoint whose
    read of the replica failed is not mistaken for a dead primary.
    """
    if isinstance(exc, PrimaryUnavailable):
        return True
    if not is_write(request):
        return False
    if isinstance(exc, PoolTimeout):
        return True  # raised outside Django's wrapper: only write paths take pool connections directly
    return bool(connections[WRITE_DB].errors_occurred)


def unavailable_response(request: HttpRequest, exc: BaseException) -> JsonResponse:
    """The 503 for a database outage: read-only for a write without its primary, else "unavailable"."""
    if primary_failed(request, exc):
        log.warning("primary unavailable, %s %s refused (read-only): %s", request.method, request.path, exc)
        if not isinstance(exc, PrimaryUnavailable):
            # Tell the probe, so the next writes in this process fail at once
            # instead of each waiting for a pooled connection to time out.
            primary.probe.mark_down(exc)
        response = JsonResponse({"detail": READ_ONLY_DETAIL}, status=503)
        response[READ_ONLY_HEADER] = "true"
    else:
        log.error("database unavailable: %s", exc)
        response = JsonResponse({"detail": DATABASE_DOWN_DETAIL}, status=503)
    # Both outages usually end within seconds (a restart, a failover); tell
    # clients when to try again rather than letting them hammer the server.
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response
