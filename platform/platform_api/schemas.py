"""Request and response bodies of the platform API (``docs/platform-api.md``).

These classes are the machine-readable half of the post's "crisp,
product-agnostic interface" (section "Platform layer"): django-ninja turns them
into the OpenAPI document at ``/v1/openapi.json`` and validates every request
body against them, so bad input is a 422 before any query runs. The rules
themselves live in :mod:`platform_api.rules`, which has no Django imports and
is what the unit tests exercise.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from ninja import Schema
from pydantic import model_validator

from platform_api.rules import (
    LoginPassword,
    LoginUsername,
    Password,
    RowId,
    StoryText,
    StoryUrl,
    Title,
    Username,
    require_url_or_text,
)

SortOrder = Literal["top", "new"]


# --------------------------------------------------------------------------
# Request bodies
# --------------------------------------------------------------------------
class SignUpIn(Schema):
    """``POST /v1/users``: a new account."""

    username: Username
    password: Password


class SignInIn(Schema):
    """``POST /v1/sessions``: credentials to check (any wrong ones are a 401)."""

    username: LoginUsername
    password: LoginPassword


class StoryIn(Schema):
    """``POST /v1/stories``: a link, a text post, or both."""

    author_id: RowId
    title: Title
    url: StoryUrl = ""
    text: StoryText = ""

    @model_validator(mode="after")
    def _url_or_text(self) -> StoryIn:
        require_url_or_text(self.url, self.text)
        return self


class VoteIn(Schema):
    """``POST /v1/stories/{id}/votes``: who votes."""

    user_id: RowId


# --------------------------------------------------------------------------
# Responses
# --------------------------------------------------------------------------
class UserOut(Schema):
    """A user profile with its denormalised counters."""

    id: int
    username: str
    date_joined: datetime
    followers_count: int
    following_count: int
    stories_count: int
    karma: int
    # The avatar's path under the web tier's MEDIA_URL, or "" for none.
    avatar: str
    version: int


class UserRefOut(Schema):
    """A user as listed among followers or following."""

    id: int
    username: str


class StoryOut(Schema):
    """A story; ``url`` is empty and ``domain`` null for a text-only story."""

    id: int
    author_id: int
    author_username: str
    title: str
    url: str
    domain: str | None
    text: str
    votes: int
    created_at: datetime
    version: int


class StoryPageOut(Schema):
    """One page (30 items) of stories."""

    items: list[StoryOut]
    page: int
    has_next: bool


class UserPageOut(Schema):
    """One page (30 items) of users."""

    items: list[UserRefOut]
    page: int
    has_next: bool


class FollowingOut(Schema):
    """Whether one user follows another."""

    following: bool


class FollowResultOut(Schema):
    """The answer to a follow or unfollow: whether it changed anything, and both users."""

    changed: bool
    user: UserOut
    other: UserOut


class VoteResultOut(Schema):
    """The answer to a vote: whether it counted, and the story after it."""

    counted: bool
    story: StoryOut


class HealthOut(Schema):
    """What ``/v1/healthz`` found (``database`` is the read pool, ``primary`` the write pool)."""

    status: Literal["ok", "degraded", "unavailable", "draining"]
    server: str
    database: bool
    primary: bool
    cache: bool


class ErrorOut(Schema):
    """Every error: a readable message, or pydantic's list of field errors (422)."""

    detail: Any
