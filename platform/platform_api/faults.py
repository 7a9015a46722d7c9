"""Test-only fault injection: make one request's cache fills slow on demand.

Installed only when ``SCALESTACK_FAULT_INJECTION`` is true (see settings), and
it checks the setting again on every request, so the dev stack can never be
slowed down by a header. The integration tests use it to reproduce the race
the cache module guards against: a read-through fill that read an old row
while a write committed and wrote its newer value through (``cache.py`` rule 1).
"""
from __future__ import annotations

from typing import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from platform_api import cache, rules

FILL_DELAY_HEADER = "HTTP_X_DEBUG_FILL_DELAY"


class FillDelayMiddleware:
    """Honour ``X-Debug-Fill-Delay: <seconds>`` by slowing this request's fills.

    It must run inside ``ServedByMiddleware``, whose ``cache.begin_request()``
    resets the delay to zero at the start of every request.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        """Set the fill delay from the header (400 if it is malformed), then run the view."""
        raw = request.META.get(FILL_DELAY_HEADER)
        if raw is not None and settings.FAULT_INJECTION:
            try:
                cache.set_fill_delay(rules.parse_fill_delay(raw))
            except ValueError as exc:
                return JsonResponse({"detail": str(exc)}, status=400)
        return self.get_response(request)
