"""Middleware that makes the architecture visible and platform failures friendly.

Post, "Load balancing": with several interchangeable web servers behind nginx
and several platform servers behind HAProxy, you can only see the balancing at
work if every response says who served it. ``PlatformTraceMiddleware`` adds:

- ``X-Served-By``: this web server's name (``SCALESTACK_SERVER_NAME``);
- ``X-Platform-Served-By``: the platform servers this request's calls reached;
- ``X-Cache``: the platform's data-cache hits and misses, summed (post, "Caching").

Post, "Load balancing" again, on redundancy: losing a server should lower
capacity, not break pages, so ``PlatformErrorMiddleware`` turns an unreachable
platform into a 503 page instead of a traceback. Post, "Redundancy and
failover": when the platform's primary database is down, the site is
read-only; reads render as usual, and a write gets a page that says it was not
saved (the platform's ``X-Read-Only`` 503, ``platform_client.ReadOnly``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from news_web import platform_client

logger = logging.getLogger("news_web.request")

GetResponse = Callable[[HttpRequest], HttpResponse]


class PlatformTraceMiddleware:
    """Start a platform trace per request and report it in response headers and one log line."""

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        """Run the request inside a fresh trace, then stamp the headers on whatever came back."""
        trace, token = platform_client.begin_trace()
        try:
            response = self.get_response(request)
        finally:
            platform_client.end_trace(token)
        response["X-Served-By"] = settings.SCALESTACK_SERVER_NAME
        response["X-Platform-Served-By"] = trace.servers_header
        response["X-Cache"] = trace.cache_header
        if request.path == "/healthz":
            # HAProxy checks every server every second; logging those would
            # drown the requests a person is watching for.
            return response
        logger.info(
            "%s %s %s %dms platform=[%s] calls=%d cache=%s",
            request.method,
            request.get_full_path(),
            response.status_code,
            trace.elapsed_ms(),
            trace.servers_header,
            trace.calls,
            trace.cache_header,
        )
        return response


def error_page(request: HttpRequest, status: int, title: str, message: str) -> HttpResponse:
    """Render the shared error page with the site's header and footer."""
    return render(
        request,
        "news_web/error.html",
        {"status": status, "title": title, "message": message},
        status=status,
    )


# What each write view saves, for the read-only page ("Your vote was not saved").
UNSAVED_WRITES: dict[str, str] = {
    "vote": "Your vote",
    "submit": "Your story",
    "follow": "Your follow",
    "unfollow": "Your unfollow",
    "signup": "Your new account",
    "export": "Your export request",
    "avatar": "Your new avatar",
}


def read_only_page(request: HttpRequest, retry_after: int) -> HttpResponse:
    """503 "read-only for now": the write was not saved; ``Retry-After`` as the platform said."""
    match = request.resolver_match
    what = UNSAVED_WRITES.get(match.url_name if match else "", "Your change")
    response = error_page(
        request,
        503,
        "The site is read-only for now",
        f"{what} was not saved: the database that takes changes is unavailable for a moment. "
        "Reading works as usual. Try again in a few seconds.",
    )
    response["Retry-After"] = str(retry_after)
    return response


class PlatformErrorMiddleware:
    """Turn platform errors that views did not handle into 404 and 503 pages."""

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        """Pass the request through unchanged."""
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        """Map NotFound to 404, Invalid to 400, Conflict to 409, and Unavailable (or a rejected service token) to 503."""
        if isinstance(exception, platform_client.NotFound):
            return error_page(request, 404, "Not found", "There is nothing here.")
        if isinstance(exception, platform_client.Invalid):
            # Views with forms show these next to the fields; this is the fallback for the rest.
            return error_page(request, 400, "Not possible", exception.message)
        if isinstance(exception, platform_client.Conflict):
            return error_page(request, 409, "Conflict", exception.message)
        if isinstance(exception, platform_client.ReadOnly):
            logger.warning("read-only: %s %s not saved", request.method, request.get_full_path())
            return read_only_page(request, exception.retry_after)
        if isinstance(exception, platform_client.Unavailable):
            logger.warning("platform unavailable for %s: %s", request.get_full_path(), exception.message)
            return self._unavailable(request)
        if isinstance(exception, platform_client.Unauthorized):
            # Outside login, a 401 means the platform rejected our service token:
            # an operator's problem, so log it loudly and show the user a 503.
            logger.error("platform rejected the service token (PLATFORM_TOKEN): %s", exception.message)
            return self._unavailable(request)
        return None

    @staticmethod
    def _unavailable(request: HttpRequest) -> HttpResponse:
        response = error_page(
            request,
            503,
            "Temporarily unavailable",
            "The news service cannot reach its data right now. Please try again in a moment.",
        )
        # A hint to clients and crawlers; the platform usually recovers within seconds.
        response["Retry-After"] = "5"
        return response
