"""Tell the caller which platform server answered and how the cache did."""
from __future__ import annotations

from typing import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from platform_api import cache


class ServedByMiddleware:
    """Add ``X-Served-By`` and ``X-Cache`` to every platform response.

    The web tier aggregates these into its own headers and page footer, so a
    reader can see load balancing and caching at work on every page.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        """Reset the per-request cache counters, run the view, report them."""
        stats = cache.begin_request()
        response = self.get_response(request)
        response["X-Served-By"] = settings.SERVER_NAME
        response["X-Cache"] = f"hits={stats.hits} misses={stats.misses}"
        return response
