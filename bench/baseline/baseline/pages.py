"""The data of each page: the ORM queries, read through memcached for ``CACHE_TTL`` seconds.

This is the part that differs from the stack. The platform caches objects and
id lists separately, writes objects through after each commit and bumps list
generations on writes (``platform/platform_api/repository.py``), so a write
shows on its pages at once. The baseline does what a typical single Django app does
instead: it caches each page's whole data under one key for a short, fixed
time and never invalidates anything. A vote, a new story or a follow shows up
here within ``CACHE_TTL`` seconds (30 by default), not at once.

The queries return the same rows, in the same order, as the platform's:

* the front page ranks by Hacker News' gravity score, best first, ties by id
  (``platform_api.rules.TOP_SCORE_SQL``, reproduced below);
* a user page shows the user's stories newest first, and the first followers
  and followings, most recent first;
* the home page is one range scan of the member's stored timeline
  (``timeline_entries``, written by the platform's fan-out on write), newest
  first, ties by story id; its first page adds "people you may follow".

Unlike the platform, which reads ids first and then the objects from its
object cache, each list here is one query with its joins (``values()`` across
the foreign keys), which is what the ORM leads a single app to write.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit

from django.conf import settings
from django.core.cache import cache
from django.db.models import QuerySet
from django.db.models.expressions import RawSQL
from django.db.models.functions import Lower

from baseline.models import Follow, FollowSuggestion, Story, TimelineEntry, User

T = TypeVar("T")

# The platform's page size (platform_api.rules.PAGE_SIZE): a page of 30 rows,
# fetched as 31 so the extra row says whether a next page exists without a COUNT.
PAGE_SIZE = 30
# The web tier's page limit; deeper pages are 404s on both sites.
MAX_PAGE = 1000
# "People you may follow" shown on the home page (news_web.views.SUGGESTIONS_SHOWN).
SUGGESTIONS_SHOWN = 5

# Hacker News' gravity formula, the platform's front-page order. The twin of
# platform_api.rules.TOP_SCORE_SQL, written again rather than imported so the
# baseline shares no code with the stack; the integration test checks that both
# front pages list the same stories. The cast to float8 keeps power() out of
# numeric arithmetic (since PostgreSQL 14 extract() returns numeric).
GRAVITY = 1.8
AGE_OFFSET_HOURS = 2
TOP_SCORE_SQL = (
    '"stories"."votes" / power(extract(epoch from (now() - "stories"."created_at"))::float8 / 3600'
    f" + {AGE_OFFSET_HOURS}, {GRAVITY})"
)

# What a story row on a page shows, as ``values()`` lookups on ``Story``.
STORY_LOOKUPS = ("id", "title", "url", "votes", "created_at", "author__username")
PROFILE_LOOKUPS = ("id", "username", "date_joined", "followers_count", "following_count", "stories_count", "karma")


@dataclass(frozen=True, slots=True)
class StoryRow:
    """One story as a page lists it."""

    id: int
    title: str
    url: str
    domain: str | None
    votes: int
    created_at: datetime
    author_username: str


@dataclass(frozen=True, slots=True)
class StoryPage:
    """One page of a story list, and whether there is a next one."""

    items: list[StoryRow]
    page: int
    has_next: bool

    @property
    def first_rank(self) -> int:
        """The rank of the first row, so numbering continues across pages."""
        return (self.page - 1) * PAGE_SIZE + 1


@dataclass(frozen=True, slots=True)
class UserPage:
    """A profile: the user's counters, latest stories, first followers and followings."""

    profile: dict[str, Any]
    stories: StoryPage
    followers: list[str]
    followers_more: bool
    following: list[str]
    following_more: bool


@dataclass(frozen=True, slots=True)
class HomePage:
    """A member's home timeline page, with suggestions on the first page."""

    stories: StoryPage
    suggestions: list[str]


# --------------------------------------------------------------------------
# Cache keys: one function per cached query (Django adds KEY_PREFIX and VERSION)
# --------------------------------------------------------------------------
def front_page_cache_key(page: int) -> str:
    """The front page's data, page ``page``."""
    return f"front:{page}"


def user_page_cache_key(username: str) -> str:
    """A user page's data; names are unique ignoring case, so the key is lower-cased."""
    return f"user:{username.lower()}"


def home_page_cache_key(user_id: int, page: int) -> str:
    """A member's home timeline data, page ``page``."""
    return f"home:{user_id}:{page}"


# A cached "no such user" is stored as None, so a miss needs its own marker.
_MISS = object()


def read_through(key: str, fetch: Callable[[], T]) -> T:
    """The cached value under ``key``, or ``fetch()``'s, stored for ``CACHE_TTL`` seconds.

    Plain get-then-set with no stampede lock: when a popular entry expires,
    every thread that misses it runs the query at once. That is the usual
    single-app behaviour this baseline stands for (the platform uses
    dogpile.cache's lock instead).
    """
    if not settings.CACHE_TTL:
        return fetch()  # CACHE_TTL=0: no cache at all, every page fresh (the stack's guarantee)
    value = cache.get(key, _MISS)
    if value is _MISS:
        value = fetch()
        cache.set(key, value)
    return value


# --------------------------------------------------------------------------
# Pages
# --------------------------------------------------------------------------
def front_page(page: int) -> StoryPage:
    """Top stories by gravity score, page ``page``."""

    def fetch() -> StoryPage:
        ranked = Story.objects.annotate(score=RawSQL(TOP_SCORE_SQL, ())).order_by("-score", "-id")
        return _story_page(_window(ranked.values(*STORY_LOOKUPS), page), page)

    return read_through(front_page_cache_key(page), fetch)


def user_page(username: str) -> UserPage | None:
    """``username``'s profile page data (case-insensitive); None if there is no such user."""

    def fetch() -> UserPage | None:
        # Lower(username) = lower(name) is served by the unique lower() index.
        profile = (
            User.objects.alias(name_lower=Lower("username"))
            .filter(name_lower=username.lower())
            .values(*PROFILE_LOOKUPS)
            .first()
        )
        if profile is None:
            return None
        stories = Story.objects.filter(author_id=profile["id"]).order_by("-created_at", "-id")
        followers = _window(
            Follow.objects.filter(followee_id=profile["id"])
            .order_by("-created_at", "-id")
            .values_list("follower__username", flat=True),
            1,
        )
        following = _window(
            Follow.objects.filter(follower_id=profile["id"])
            .order_by("-created_at", "-id")
            .values_list("followee__username", flat=True),
            1,
        )
        return UserPage(
            profile=profile,
            stories=_story_page(_window(stories.values(*STORY_LOOKUPS), 1), 1),
            followers=followers[:PAGE_SIZE],
            followers_more=len(followers) > PAGE_SIZE,
            following=following[:PAGE_SIZE],
            following_more=len(following) > PAGE_SIZE,
        )

    return read_through(user_page_cache_key(username), fetch)


def home_page(user_id: int, page: int) -> HomePage:
    """The member's stored home timeline, page ``page``, and suggestions on page 1."""

    def fetch() -> HomePage:
        entries = (
            TimelineEntry.objects.filter(user_id=user_id)
            # The order of the timeline_user_newest index: one backward range scan.
            .order_by("-created_at", "-story_id")
            .values(*(f"story__{lookup}" for lookup in STORY_LOOKUPS))
        )
        rows = [_unprefixed(row, "story__") for row in _window(entries, page)]
        return HomePage(stories=_story_page(rows, page), suggestions=_suggestions(user_id) if page == 1 else [])

    return read_through(home_page_cache_key(user_id, page), fetch)


def is_following(user_id: int, other_id: int) -> bool:
    """Whether ``user_id`` follows ``other_id``: one index lookup, not cached (as on the platform)."""
    return Follow.objects.filter(follower_id=user_id, followee_id=other_id).exists()


def _suggestions(user_id: int) -> list[str]:
    """Names from the map-reduce's suggestions, minus anyone followed since it ran."""
    followed = Follow.objects.filter(follower_id=user_id).values("followee_id")
    query = (
        FollowSuggestion.objects.filter(user_id=user_id)
        .exclude(suggested_id=user_id)
        .exclude(suggested_id__in=followed)
        .order_by("rank")
        .values_list("suggested__username", flat=True)
    )
    return list(query[:SUGGESTIONS_SHOWN])


# --------------------------------------------------------------------------
# Rows into page data
# --------------------------------------------------------------------------
def _window(query: QuerySet, page: int) -> list[Any]:
    """Page ``page`` of a query, plus one row (the sign of a next page)."""
    offset = (page - 1) * PAGE_SIZE
    return list(query[offset : offset + PAGE_SIZE + 1])


def _story_page(rows: list[Mapping[str, Any]], page: int) -> StoryPage:
    """A page from a fetched window of ``STORY_LOOKUPS`` rows."""
    items = [
        StoryRow(
            id=row["id"],
            title=row["title"],
            url=row["url"],
            domain=domain_of(row["url"]),
            votes=row["votes"],
            created_at=row["created_at"],
            author_username=row["author__username"],
        )
        for row in rows[:PAGE_SIZE]
    ]
    return StoryPage(items=items, page=page, has_next=len(rows) > PAGE_SIZE)


def _unprefixed(row: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    """A ``values()`` row across a foreign key, with the relation's prefix taken off."""
    return {key.removeprefix(prefix): value for key, value in row.items()}


def domain_of(url: str) -> str | None:
    """The host a story links to, without ``www.``; None for a text-only story."""
    if not url:
        return None
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return None
    if not host:
        return None
    host = host.rstrip(".")
    return host[4:] if host.startswith("www.") else host
