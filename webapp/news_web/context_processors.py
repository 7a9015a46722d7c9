"""Template context shared by every page: the logged-in user and how the page was served.

Post, "Load balancing" and "Caching": the footer of every page shows which web
server rendered it, which platform servers answered behind HAProxy, and how the
platform's data cache answered, the same figures as the response headers set by
``middleware.PlatformTraceMiddleware``.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest

from news_web import platform_client
from news_web.auth import current_user

SITE_NAME = "scalestack news"


def scalestack(request: HttpRequest) -> dict[str, Any]:
    """Expose ``site_name``, ``web_user`` and the ``served`` figures to templates."""
    trace = platform_client.current_trace()
    return {
        "site_name": SITE_NAME,
        "web_user": current_user(request),
        "served": {
            "web_server": settings.SCALESTACK_SERVER_NAME,
            # How this web server reaches the platform: HAProxy's pool or the smart client.
            "balancing": settings.PLATFORM_BALANCING,
            "platform_servers": list(trace.servers) if trace else [],
            "cache_hits": trace.hits if trace else 0,
            "cache_misses": trace.misses if trace else 0,
            "platform_calls": trace.calls if trace else 0,
            # Time until rendering started; the platform calls are all done by then.
            "elapsed_ms": trace.elapsed_ms() if trace else 0,
        },
    }
