"""The platform API, v1: the HTTP face of the post's "Platform layer" section.

"Your web applications communicate with a platform layer which in turn
communicates with your databases": the web tier (and any other product) calls
these endpoints over HTTP through HAProxy and never touches PostgreSQL or
memcached itself. That lets the two tiers scale independently, and this
versioned, documented interface (``docs/platform-api.md``, and the OpenAPI
document at ``/v1/openapi.json``) is the "crisp product-agnostic interface"
behind which the platform team may change how data is stored and cached.

The views are thin: they check input (django-ninja and :mod:`.schemas`), call
:mod:`.repository`, and shape the answer. Every error is JSON
``{"detail": ...}`` with a 4xx status (503 when the database is down), never a
500.

Every write endpoint is :func:`.idempotency.idempotent` (post, "Redundancy and
failover"): it honours an ``Idempotency-Key`` header, so a retried write is
never applied twice, and it answers a read-only 503 when the primary is down
(:mod:`.read_only`).
"""
from __future__ import annotations

import hmac
import logging
from typing import Any

from django.conf import settings
from django.db import DataError, IntegrityError, InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from ninja import File, NinjaAPI, UploadedFile
from ninja.security import HttpBearer
from psycopg_pool import PoolTimeout

from platform_api import avatars, health, read_only, repository, rules
from platform_api.idempotency import IdempotencyError, idempotent
from platform_api.primary import PrimaryUnavailable
from platform_api.schemas import (
    ErrorOut,
    FollowingOut,
    FollowResultOut,
    HealthOut,
    SignInIn,
    SignUpIn,
    SortOrder,
    StoryIn,
    StoryOut,
    StoryPageOut,
    UserOut,
    UserPageOut,
    VoteIn,
    VoteResultOut,
)

log = logging.getLogger(__name__)


class ServiceToken(HttpBearer):
    """``Authorization: Bearer <PLATFORM_TOKEN>``: the web tier's credential.

    Compared in constant time so the token cannot be guessed byte by byte.
    """

    def authenticate(self, request: HttpRequest, token: str) -> str | None:
        """Accept the request if ``token`` is the configured service token."""
        if hmac.compare_digest(token.encode(), settings.PLATFORM_TOKEN.encode()):
            return "web"
        return None


api = NinjaAPI(
    title="scalestack platform",
    version="1",
    description="The platform layer of scalestack; see docs/platform-api.md.",
    urls_namespace="platform-v1",
    openapi_url="/openapi.json",
    docs_url="/docs",
    auth=ServiceToken(),
)

# Answers every operation may give besides its success.
#
# Query parameters are declared with plain annotations (``page: PageNumber = 1``):
# django-ninja makes simple types query parameters by default, and its
# ``Query[...]`` wrapper around an ``Annotated`` type loses the default.
ERRORS: dict[int, Any] = {400: ErrorOut, 401: ErrorOut, 404: ErrorOut, 422: ErrorOut, 503: ErrorOut}
# Writes may also answer 409: a conflict, or their Idempotency-Key still in use.
WRITE_ERRORS: dict[int, Any] = {**ERRORS, 409: ErrorOut}
# An upload may also be too large (413) or not an accepted image (415).
UPLOAD_ERRORS: dict[int, Any] = {**WRITE_ERRORS, 413: ErrorOut, 415: ErrorOut}


# --------------------------------------------------------------------------
# Errors: always JSON {"detail": ...}, never a 500
# --------------------------------------------------------------------------
def _error(request: HttpRequest, status: int, detail: Any) -> HttpResponse:
    return api.create_response(request, {"detail": detail}, status=status)


@api.exception_handler(repository.NotFound)
def _not_found(request: HttpRequest, exc: repository.NotFound) -> HttpResponse:
    return _error(request, 404, str(exc))


@api.exception_handler(Http404)
def _http404(request: HttpRequest, exc: Http404) -> HttpResponse:
    return _error(request, 404, str(exc) or "not found")


@api.exception_handler(repository.Conflict)
def _conflict(request: HttpRequest, exc: repository.Conflict) -> HttpResponse:
    return _error(request, 409, str(exc))


@api.exception_handler(IntegrityError)
def _integrity_error(request: HttpRequest, exc: IntegrityError) -> HttpResponse:
    # Only a race the repository did not foresee gets here; the database kept
    # its constraints, so the request conflicted with data written meanwhile.
    log.warning("integrity error answered as 409: %s", exc)
    return _error(request, 409, "the request conflicts with data written at the same time; try again")


@api.exception_handler(repository.InvalidRequest)
def _invalid(request: HttpRequest, exc: repository.InvalidRequest) -> HttpResponse:
    return _error(request, 400, str(exc))


@api.exception_handler(DataError)
def _data_error(request: HttpRequest, exc: DataError) -> HttpResponse:
    # Validation should stop such values first; this is the safety net.
    log.warning("data error answered as 400: %s", exc)
    return _error(request, 400, "a value in the request is out of range or malformed")


@api.exception_handler(avatars.AvatarRejected)
def _avatar_rejected(request: HttpRequest, exc: avatars.AvatarRejected) -> HttpResponse:
    # 413 too large, 415 not an accepted image, 422 too many pixels.
    return _error(request, exc.status, str(exc))


@api.exception_handler(IdempotencyError)
def _idempotency_error(request: HttpRequest, exc: IdempotencyError) -> HttpResponse:
    # 400 malformed key, 422 key reused for another request, 409 key still in use.
    return _error(request, exc.status, str(exc))


# The one answer to every database outage: 503 with Retry-After, and the
# read-only message when a write cannot reach the primary (read_only.py).
@api.exception_handler(OperationalError)
@api.exception_handler(InterfaceError)
@api.exception_handler(PoolTimeout)
@api.exception_handler(PrimaryUnavailable)
def _database_unavailable(request: HttpRequest, exc: Exception) -> HttpResponse:
    return read_only.unavailable_response(request, exc)


def not_found_view(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """Django's 404 for URLs no route matches, as JSON (``handler404``)."""
    return JsonResponse({"detail": "no such endpoint"}, status=404)


def bad_request_view(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """Django's 400 (e.g. a disallowed Host header), as JSON (``handler400``)."""
    return JsonResponse({"detail": "bad request"}, status=400)


def server_error_view(request: HttpRequest) -> HttpResponse:
    """Django's 500, as JSON (``handler500``); a bug if it is ever seen."""
    return JsonResponse({"detail": "internal error"}, status=500)


def _user_or_404(user_id: int) -> dict[str, Any]:
    user = repository.get_user(user_id)
    if user is None:
        raise repository.NotFound(f"user {user_id} not found")
    return user


def _user_id_or_404(username: str) -> int:
    user_id = repository.get_user_id(username)
    if user_id is None:
        raise repository.NotFound(f"user {username!r} not found")
    return user_id


# --------------------------------------------------------------------------
# Health
# --------------------------------------------------------------------------
@api.get("/healthz", auth=None, response={200: HealthOut, 503: HealthOut}, tags=["health"])
def healthz(request: HttpRequest) -> tuple[int, dict[str, Any]]:
    """Whether this server should get requests: HAProxy's health check (see :mod:`.health`).

    503 while draining or when the read pool is unreachable; the primary and
    memcached are reported but never fail it, because losing them costs only
    writes or speed, and every server shares them.
    """
    body = health.report()
    return health.http_status(body["status"]), body


# --------------------------------------------------------------------------
# Accounts
# --------------------------------------------------------------------------
@api.post("/users", response={201: UserOut, **WRITE_ERRORS}, tags=["users"])
@idempotent
def sign_up(request: HttpRequest, body: SignUpIn) -> tuple[int, dict[str, Any]]:
    """Create an account; 409 if the name is taken (in any letter case)."""
    return 201, repository.create_user(body.username, body.password)


# Not @idempotent: signing in writes nothing, so a retry is already harmless,
# and it must keep working (a read) while the primary is down.
@api.post("/sessions", response={200: UserOut, **ERRORS}, tags=["users"])
def sign_in(request: HttpRequest, body: SignInIn) -> tuple[int, dict[str, Any]]:
    """Check credentials; the user on success, 401 otherwise."""
    user = repository.authenticate(body.username, body.password)
    if user is None:
        return 401, {"detail": "wrong username or password"}
    return 200, user


# --------------------------------------------------------------------------
# Users and the social graph
# --------------------------------------------------------------------------
@api.get("/users/{username}", response={200: UserOut, **ERRORS}, tags=["users"])
def get_user(request: HttpRequest, username: str) -> dict[str, Any]:
    """A user's profile by name (case-insensitive)."""
    user = repository.get_user_by_username(username)
    if user is None:
        raise repository.NotFound(f"user {username!r} not found")
    return user


@api.get("/users/{username}/stories", response={200: StoryPageOut, **ERRORS}, tags=["users"])
def user_stories(request: HttpRequest, username: str, page: rules.PageNumber = 1) -> dict[str, Any]:
    """A page of the user's stories, newest first."""
    return repository.user_stories(_user_id_or_404(username), page)


@api.get("/users/{username}/followers", response={200: UserPageOut, **ERRORS}, tags=["users"])
def user_followers(request: HttpRequest, username: str, page: rules.PageNumber = 1) -> dict[str, Any]:
    """A page of the user's followers, most recent first."""
    return repository.followers(_user_id_or_404(username), page)


@api.get("/users/{username}/following", response={200: UserPageOut, **ERRORS}, tags=["users"])
def user_following(request: HttpRequest, username: str, page: rules.PageNumber = 1) -> dict[str, Any]:
    """A page of the users this user follows, most recent first."""
    return repository.following(_user_id_or_404(username), page)


@api.get("/users/{user_id}/following/{other_id}", response={200: FollowingOut, **ERRORS}, tags=["follows"])
def is_following(request: HttpRequest, user_id: rules.RowId, other_id: rules.RowId) -> dict[str, Any]:
    """Whether ``user_id`` follows ``other_id``."""
    _user_or_404(user_id)
    _user_or_404(other_id)
    return {"following": repository.is_following(user_id, other_id)}


@api.put("/users/{user_id}/following/{other_id}", response={200: FollowResultOut, **WRITE_ERRORS}, tags=["follows"])
@idempotent
def follow(request: HttpRequest, user_id: rules.RowId, other_id: rules.RowId) -> dict[str, Any]:
    """``user_id`` follows ``other_id``; doing it again changes nothing."""
    changed, user, other = repository.follow(user_id, other_id)
    return {"changed": changed, "user": user, "other": other}


@api.delete("/users/{user_id}/following/{other_id}", response={200: FollowResultOut, **WRITE_ERRORS}, tags=["follows"])
@idempotent
def unfollow(request: HttpRequest, user_id: rules.RowId, other_id: rules.RowId) -> dict[str, Any]:
    """``user_id`` stops following ``other_id``; doing it again changes nothing."""
    changed, user, other = repository.unfollow(user_id, other_id)
    return {"changed": changed, "user": user, "other": other}


@api.put("/users/{user_id}/avatar", response={200: UserOut, **UPLOAD_ERRORS}, tags=["users"])
@idempotent
def set_avatar(request: HttpRequest, user_id: rules.RowId, file: File[UploadedFile]) -> dict[str, Any]:
    """Replace the user's avatar with the uploaded ``file`` (multipart); the user comes back.

    A JPEG, PNG, GIF or WebP of at most 2 MiB and 4096x4096 pixels, stored as
    a 256x256 WebP under a new, content-versioned name (see :mod:`.avatars`).
    The file is written before the row names it, so a committed ``avatar``
    always exists; bad input is refused before either.
    """
    _user_or_404(user_id)  # no file for a user who does not exist
    webp = avatars.normalise(avatars.read_upload(file))
    return repository.set_avatar(user_id, avatars.store(user_id, webp))


@api.get("/users/{user_id}/home", response={200: StoryPageOut, **ERRORS}, tags=["follows"])
def home(request: HttpRequest, user_id: rules.RowId, page: rules.PageNumber = 1) -> dict[str, Any]:
    """Stories by the people the user follows, newest first."""
    _user_or_404(user_id)
    return repository.home_timeline(user_id, page)


# --------------------------------------------------------------------------
# Stories and votes
# --------------------------------------------------------------------------
@api.get("/stories", response={200: StoryPageOut, **ERRORS}, tags=["stories"])
def list_stories(
    request: HttpRequest, sort: SortOrder = "top", page: rules.PageNumber = 1
) -> dict[str, Any]:
    """The front page (``top``, by gravity) or the newest stories (``new``)."""
    return repository.story_page(sort, page)


@api.post("/stories", response={201: StoryOut, **WRITE_ERRORS}, tags=["stories"])
@idempotent
def submit_story(request: HttpRequest, body: StoryIn) -> tuple[int, dict[str, Any]]:
    """Submit a link or text story as ``author_id``."""
    return 201, repository.create_story(body.author_id, body.title, body.url, body.text)


@api.get("/stories/{story_id}", response={200: StoryOut, **ERRORS}, tags=["stories"])
def get_story(request: HttpRequest, story_id: rules.RowId) -> dict[str, Any]:
    """One story."""
    story = repository.get_story(story_id)
    if story is None:
        raise repository.NotFound(f"story {story_id} not found")
    return story


@api.post("/stories/{story_id}/votes", response={200: VoteResultOut, **WRITE_ERRORS}, tags=["stories"])
@idempotent
def vote(request: HttpRequest, story_id: rules.RowId, body: VoteIn) -> dict[str, Any]:
    """``user_id`` votes for the story; a second vote is not counted."""
    counted, story = repository.vote(story_id, body.user_id)
    return {"counted": counted, "story": story}


api.add_router("", "platform_api.api_offline.router")  # clicks, exports, analytics, trending, suggestions
