"""Read-only pages of the news site, the error pages, and the health check.

Post, "Platform layer": every page here is assembled from platform API calls;
the web tier holds no data of its own. Post, "Load balancing": ``healthz`` is
what the load balancer in front of the web servers asks to decide whether this
server stays in the pool, so it is cheap and does not depend on the platform
(``news_web.health`` says why).
Post, "Off-line processing": the trending list and the suggestions beside a
story and on the home page are precalculated by periodic tasks and map-reduce
jobs; these pages only read them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseServerError, JsonResponse
from django.shortcuts import render
from django.template import loader
from django.urls import reverse
from django.views.decorators.http import require_safe

from news_web import health, platform_client
from news_web.auth import current_user, login_required, logged_in_user
from news_web.middleware import error_page
from news_web.platform_models import UserRef

MAX_PAGE = 1000  # the platform's limit (docs/platform-api.md, "Limits")
# Suggestions shown beside a story and on the home page.
SUGGESTIONS_SHOWN = 5

logger = logging.getLogger(__name__)
T = TypeVar("T")


def optional_panel(what: str, fetch: Callable[[], list[T]]) -> list[T]:
    """A secondary part of a page (suggestions): its items, or none if the platform fails.

    The page's main content was already fetched; a side panel that cannot be
    filled is left out rather than turning the whole page into an error.
    """
    try:
        return fetch()
    except platform_client.PlatformError as exc:
        logger.warning("%s left out: %s", what, exc.message)
        return []


def page_number(request: HttpRequest) -> int:
    """The ``?page=`` number, 1 by default; anything else than 1..1000 is a page that does not exist."""
    raw = request.GET.get("page", "1")
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE:
        raise Http404("no such page")
    return int(raw)


def _story_list(request: HttpRequest, heading: str, sort: str) -> HttpResponse:
    stories = platform_client.get_client().stories(sort, page_number(request))
    return render(request, "news_web/stories.html", {"heading": heading, "stories": stories})


@require_safe
def front(request: HttpRequest) -> HttpResponse:
    """The front page: top stories."""
    return _story_list(request, "Top stories", "top")


@require_safe
def newest(request: HttpRequest) -> HttpResponse:
    """Newest stories first."""
    return _story_list(request, "Newest stories", "new")


@require_safe
def trending(request: HttpRequest) -> HttpResponse:
    """Trending stories, as the periodic trending task last ranked them."""
    stories = platform_client.get_client().trending(page_number(request))
    return render(
        request, "news_web/stories.html", {"heading": "Trending", "stories": stories, "empty_hint": "trending"}
    )


@require_safe
@login_required
def home(request: HttpRequest) -> HttpResponse:
    """The home timeline, and on its first page "People you may follow" (friends of friends)."""
    me = logged_in_user(request)
    client = platform_client.get_client()
    page = page_number(request)
    stories = client.home(me.id, page)
    people: list[UserRef] = []
    if page == 1:
        people = optional_panel("follow suggestions", lambda: client.follow_suggestions(me.id, SUGGESTIONS_SHOWN))
    return render(
        request,
        "news_web/home.html",
        {"heading": "Your home", "stories": stories, "empty_hint": "follow", "people_suggestions": people},
    )


@require_safe
def story(request: HttpRequest, story_id: int) -> HttpResponse:
    """One story with its vote button, and what people who clicked it also clicked.

    A platform 404 becomes this site's 404.
    """
    client = platform_client.get_client()
    item = client.get_story(story_id)
    also_clicked = optional_panel("story suggestions", lambda: client.story_suggestions(item.id, SUGGESTIONS_SHOWN))
    clicks = optional_panel("story clicks", lambda: [client.story_clicks(item.id)])
    context = {"story": item, "also_clicked": also_clicked, "clicks": clicks[0] if clicks else None}
    return render(request, "news_web/story.html", context)


@require_safe
def user(request: HttpRequest, username: str) -> HttpResponse:
    """A profile: counters, stories, first followers and following, and a follow button."""
    client = platform_client.get_client()
    profile = client.get_user(username)
    me = current_user(request)
    context = {
        "profile": profile,
        "stories": client.user_stories(profile.username),
        "followers": client.followers(profile.username),
        "following": client.following(profile.username),
        "is_self": me is not None and me.id == profile.id,
        # None hides the button: anonymous visitors, and your own profile.
        "is_following": client.is_following(me.id, profile.id) if me and me.id != profile.id else None,
    }
    return render(request, "news_web/user.html", context)


def _user_list(request: HttpRequest, username: str, which: str) -> HttpResponse:
    client = platform_client.get_client()
    page = page_number(request)
    profile = client.get_user(username)
    if which == "followers":
        people = client.followers(profile.username, page)
        heading = f"People following {profile.username}"
    else:
        people = client.following(profile.username, page)
        heading = f"People {profile.username} follows"
    return render(request, "news_web/user_list.html", {"profile": profile, "people": people, "heading": heading})


@require_safe
def followers(request: HttpRequest, username: str) -> HttpResponse:
    """Who follows ``username``, paginated."""
    return _user_list(request, username, "followers")


@require_safe
def following(request: HttpRequest, username: str) -> HttpResponse:
    """Whom ``username`` follows, paginated."""
    return _user_list(request, username, "following")


@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    """``200 {"status": "ok", "server": ..., "platform": {...}}``; 503 ``"draining"`` while drained.

    The platform report comes from memory (refreshed in the background) and
    never fails the check: a shared dependency failing every web server's
    check at once would turn a partial outage into a total one.
    """
    is_draining = health.draining()
    body = {
        "status": "draining" if is_draining else "ok",
        "server": settings.SCALESTACK_SERVER_NAME,
        "platform": health.watch.report(),
    }
    return JsonResponse(body, status=503 if is_draining else 200)


# --- Error pages (wired in urls.py and settings.CSRF_FAILURE_VIEW) ----------------


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """400 page."""
    return error_page(request, 400, "Bad request", "The request could not be understood.")


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """403 page."""
    return error_page(request, 403, "Forbidden", "You are not allowed to do that.")


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """404 page, for unknown URLs and for platform 404s alike."""
    return error_page(request, 404, "Not found", "There is nothing here.")


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """403 when a form's CSRF token is missing or wrong."""
    return error_page(
        request,
        403,
        "Form expired",
        "This form was too old or came from another site. Go back, reload the page and try again.",
    )


def server_error(request: HttpRequest) -> HttpResponse:
    """500 page, rendered without the request context so it cannot fail the same way twice."""
    body = loader.get_template("news_web/500.html").render({"front_url": reverse("front")})
    return HttpResponseServerError(body)
