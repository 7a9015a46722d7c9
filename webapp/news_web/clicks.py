"""The click redirect ``/r/<story id>``: count the click off-line, send the reader on at once.

Post, "Message queues": the click is recorded by publishing an event (the
platform's ``POST /v1/clicks`` confirms it with RabbitMQ and returns); a batch
consumer writes the click log and periodic tasks roll it up, all outside this
request. The reader is never held up by analytics: if the platform cannot take
the click, the redirect still happens and only the count is missing.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import urlsplit

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from news_web import platform_client
from news_web.auth import current_user
from news_web.platform_models import Story

logger = logging.getLogger(__name__)

# The platform's rule for a referring domain (platform_api/offline_schemas.py),
# repeated here so that a forged Referer never costs the click: a host the
# platform would refuse is recorded as "" (no usable referrer) instead.
REFERRER_MAX_LENGTH = 255
_HOST_NAME_RE = re.compile(r"[a-z0-9_-]+(?:\.[a-z0-9_-]+)*")
_IPV6_RE = re.compile(r"[0-9a-f]*:[0-9a-f]*:[0-9a-f:.]*")


def referrer_domain(referer: str | None) -> str:
    """The host of a ``Referer`` header, lower case and without port; ``""`` when absent or unusable.

    Our own host counts like any other: a click from the front page is
    recorded as coming from the site's own host name.
    """
    if not referer:
        return ""
    try:
        host = urlsplit(referer.strip()).hostname or ""
    except ValueError:  # e.g. an unbalanced "[" in the host part
        return ""
    host = host.rstrip(".")
    if len(host) > REFERRER_MAX_LENGTH or not (_HOST_NAME_RE.fullmatch(host) or _IPV6_RE.fullmatch(host)):
        return ""
    return host


def _destination(story: Story) -> str:
    """Where a click on ``story`` goes: its link, or its own page for a text-only story."""
    return story.external_url or reverse("story", args=[story.id])


def _record(request: HttpRequest, story: Story) -> None:
    """Send the click to the platform; log, never raise, if it cannot be taken."""
    me = current_user(request)
    try:
        platform_client.get_client().record_click(
            story.id, me.id if me else None, referrer_domain(request.headers.get("Referer"))
        )
    except platform_client.PlatformError as exc:
        logger.warning("click on story %s not recorded: %s", story.id, exc.message)


@require_safe
@never_cache
def click(request: HttpRequest, story_id: int) -> HttpResponse:
    """Record a click on the story, then 302 to where it links.

    Only a GET counts: a HEAD (link checkers, some prefetchers) is answered
    with the same redirect but records nothing. ``never_cache`` keeps browsers
    and proxies from replaying the redirect without asking, which would lose
    repeat clicks.
    """
    story = platform_client.get_client().get_story(story_id)  # NotFound is the 404 page
    if request.method == "GET":
        _record(request, story)
    return HttpResponseRedirect(_destination(story))
