"""Who is logged in, kept in a signed-cookie session instead of a database.

Post, "Load balancing": because the session travels in a signed cookie, any web
server behind the load balancer can serve any user's next request, and stopping
one web server logs nobody out. The platform checks passwords
(``POST /v1/sessions``); this module only remembers the answer as
``{"uid": int, "uname": str}``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import TypeVar
from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme

from news_web.platform_models import User

SESSION_UID = "uid"
SESSION_UNAME = "uname"

View = TypeVar("View", bound=Callable[..., HttpResponse])


@dataclass(frozen=True, slots=True)
class SessionUser:
    """The logged-in user as the session remembers them."""

    id: int
    username: str


def current_user(request: HttpRequest) -> SessionUser | None:
    """The logged-in user, or None; a tampered or odd session counts as logged out."""
    uid = request.session.get(SESSION_UID)
    uname = request.session.get(SESSION_UNAME)
    if isinstance(uid, int) and isinstance(uname, str):
        return SessionUser(id=uid, username=uname)
    return None


def logged_in_user(request: HttpRequest) -> SessionUser:
    """The logged-in user inside a ``login_required`` view; anyone else is refused."""
    me = current_user(request)
    if me is None:
        raise PermissionDenied("login required")
    return me


def log_in(request: HttpRequest, user: User) -> None:
    """Remember ``user`` in a session with a fresh key (defeats session fixation)."""
    request.session.cycle_key()
    request.session[SESSION_UID] = user.id
    request.session[SESSION_UNAME] = user.username


def log_out(request: HttpRequest) -> None:
    """Forget the user; the response then deletes the session cookie."""
    request.session.flush()


def safe_next(request: HttpRequest, candidate: str | None) -> str | None:
    """``candidate`` if it is a local URL on this site, else None (no open redirects)."""
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return None


def login_url(next_url: str | None) -> str:
    """The login page, carrying ``next`` when there is one."""
    url = reverse("login")
    return f"{url}?{urlencode({'next': next_url})}" if next_url else url


def login_required(view: View) -> View:
    """Send anonymous users to the login page, then back.

    For a GET (or HEAD) the way back is the page itself. A POST (vote, follow) cannot be
    replayed by a redirect, so the way back is the form's own ``next`` field,
    i.e. the page the button was on.
    """

    @wraps(view)
    def wrapper(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        if current_user(request) is not None:
            return view(request, *args, **kwargs)
        if request.method in ("GET", "HEAD"):
            back = request.get_full_path()
        else:
            back = safe_next(request, request.POST.get("next"))
            messages.info(request, "Log in first, then try again.")
        return HttpResponseRedirect(login_url(back))

    return wrapper  # type: ignore[return-value]
