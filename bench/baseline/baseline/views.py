"""The baseline's pages: front page, user page, home timeline, and a health check.

Each view reads its page's data from :mod:`baseline.pages` (memcached, else
PostgreSQL) and renders it in this process: no platform API, no load balancer
between the tiers, no second process. Only safe methods are served; the site
is read-only, so it has no forms, no CSRF and no session writes.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlencode

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from baseline import pages

# What the web tier's session holds (news_web.auth): {"uid": int, "uname": str}.
SESSION_UID = "uid"
SESSION_UNAME = "uname"
# The platform's username rule: anything else cannot exist, so no query is made.
USERNAME_RE = re.compile(r"[A-Za-z0-9_-]{3,30}")


@dataclass(frozen=True, slots=True)
class Member:
    """The signed-in member, as the web tier's session cookie names them."""

    id: int
    username: str


def signed_in_member(request: HttpRequest) -> Member | None:
    """The member the session cookie names, or None.

    The cookie is the web tier's: signed with the shared ``SECRET_KEY``, it is
    verified (and expired after ``SESSION_COOKIE_AGE``) by Django's
    signed-cookie engine before this sees it. A tampered cookie or an odd
    session reads as signed out, as in ``news_web.auth.current_user``.
    """
    uid = request.session.get(SESSION_UID)
    uname = request.session.get(SESSION_UNAME)
    if isinstance(uid, int) and isinstance(uname, str):
        return Member(id=uid, username=uname)
    return None


def page_number(request: HttpRequest) -> int:
    """The ``?page=`` number, 1 by default; anything but 1..1000 is a page that does not exist."""
    raw = request.GET.get("page", "1")
    if not raw.isdigit() or not 1 <= int(raw) <= pages.MAX_PAGE:
        raise Http404("no such page")
    return int(raw)


def _served(response: HttpResponse) -> HttpResponse:
    """Say who served the page, as the stack's ``X-Served-By`` does."""
    response["X-Served-By"] = settings.SERVER_NAME
    return response


@require_safe
def front(request: HttpRequest) -> HttpResponse:
    """The front page: top stories."""
    context = {"heading": "Top stories", "stories": pages.front_page(page_number(request)),
               "me": signed_in_member(request)}
    return _served(render(request, "baseline/stories.html", context))


@require_safe
def user(request: HttpRequest, username: str) -> HttpResponse:
    """A profile: counters, latest stories, first followers and followings."""
    if not USERNAME_RE.fullmatch(username):
        raise Http404("no such user")
    data = pages.user_page(username)
    if data is None:
        raise Http404("no such user")
    me = signed_in_member(request)
    user_id = data.profile["id"]
    context = {
        "data": data,
        "me": me,
        # None hides the marker: signed-out visitors, and one's own profile.
        "is_following": pages.is_following(me.id, user_id) if me and me.id != user_id else None,
    }
    return _served(render(request, "baseline/user.html", context))


@require_safe
def home(request: HttpRequest) -> HttpResponse:
    """The signed-in member's home timeline; anyone else goes to the (stack's) login page."""
    me = signed_in_member(request)
    if me is None:
        # The same answer as the web tier's login_required: /login?next=<this page>.
        return _served(HttpResponseRedirect(f"/login?{urlencode({'next': request.get_full_path()})}"))
    data = pages.home_page(me.id, page_number(request))
    context = {"heading": "Your home", "stories": data.stories, "suggestions": data.suggestions, "me": me}
    return _served(render(request, "baseline/home.html", context))


@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    """``200 {"status": "ok", "server": "baseline"}``: the process is up and serving."""
    return JsonResponse({"status": "ok", "server": settings.SERVER_NAME})
