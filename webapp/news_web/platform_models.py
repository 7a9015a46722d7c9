"""Typed views of the platform API's JSON objects (docs/platform-api.md, "Objects").

Post, "Platform layer": the platform exposes a crisp, product-agnostic
interface. These small frozen dataclasses are the web tier's copy of that
interface, so templates and views work with named, typed fields instead of raw
dictionaries, and a contract change fails loudly in one place.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Callable, Generic, TypeVar
from urllib.parse import urlsplit

# The platform's page size (docs/platform-api.md: "Pages hold 30 items"); the
# web tier needs it only to number rows across pages.
PAGE_SIZE = 30

T = TypeVar("T")


def _timestamp(value: str) -> datetime:
    """Parse an ISO 8601 timestamp; Python 3.11 accepts the trailing ``Z`` too."""
    return datetime.fromisoformat(value)


@dataclass(frozen=True, slots=True)
class UserRef:
    """A user as it appears in follower and following lists."""

    id: int
    username: str

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> UserRef:
        """Build from the API's ``UserRef`` object."""
        return cls(id=int(data["id"]), username=str(data["username"]))


@dataclass(frozen=True, slots=True)
class User:
    """A user profile with its counters."""

    id: int
    username: str
    date_joined: datetime
    followers_count: int
    following_count: int
    stories_count: int
    karma: int
    # The avatar's path under settings.MEDIA_URL, or "" for none.
    avatar: str
    version: int

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> User:
        """Build from the API's ``User`` object."""
        return cls(
            id=int(data["id"]),
            username=str(data["username"]),
            date_joined=_timestamp(data["date_joined"]),
            followers_count=int(data["followers_count"]),
            following_count=int(data["following_count"]),
            stories_count=int(data["stories_count"]),
            karma=int(data["karma"]),
            avatar=str(data["avatar"]),
            version=int(data["version"]),
        )


@dataclass(frozen=True, slots=True)
class Story:
    """A submitted story: a link, a text post, or both."""

    id: int
    author_id: int
    author_username: str
    title: str
    url: str | None
    domain: str | None
    text: str
    votes: int
    created_at: datetime
    version: int

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Story:
        """Build from the API's ``Story`` object; an empty url means text-only."""
        return cls(
            id=int(data["id"]),
            author_id=int(data["author_id"]),
            author_username=str(data["author_username"]),
            title=str(data["title"]),
            url=data.get("url") or None,
            domain=data.get("domain") or None,
            text=data.get("text") or "",
            votes=int(data["votes"]),
            created_at=_timestamp(data["created_at"]),
            version=int(data["version"]),
        )

    @property
    def external_url(self) -> str | None:
        """The story's link, only if it is http(s).

        The platform already validates the scheme; checking again here means a
        ``javascript:`` URL can never reach an ``href`` even if that changes.
        """
        if self.url and urlsplit(self.url).scheme.lower() in ("http", "https"):
            return self.url
        return None


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a paginated list (``StoryPage`` or ``UserPage``)."""

    items: list[T]
    page: int
    has_next: bool

    @property
    def first_rank(self) -> int:
        """The rank of the first item, so numbering continues across pages."""
        return (self.page - 1) * PAGE_SIZE + 1

    @property
    def has_previous(self) -> bool:
        """Whether a previous page exists."""
        return self.page > 1

    @classmethod
    def from_json(cls, data: dict[str, Any], item: Callable[[dict[str, Any]], T]) -> Page[T]:
        """Build from a page object, converting each item with ``item``."""
        return cls(
            items=[item(entry) for entry in data["items"]],
            page=int(data["page"]),
            has_next=bool(data["has_next"]),
        )


@dataclass(frozen=True, slots=True)
class FollowResult:
    """The answer to a follow or unfollow: whether anything changed, and both users after it."""

    changed: bool
    user: User
    other: User

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FollowResult:
        """Build from ``{changed, user, other}``."""
        return cls(
            changed=bool(data["changed"]),
            user=User.from_json(data["user"]),
            other=User.from_json(data["other"]),
        )


@dataclass(frozen=True, slots=True)
class VoteResult:
    """The answer to a vote: whether it counted, and the story after it."""

    counted: bool
    story: Story

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> VoteResult:
        """Build from ``{counted, story}``."""
        return cls(counted=bool(data["counted"]), story=Story.from_json(data["story"]))


# --- Off-line processing (docs/platform-api.md, "Off-line processing") ----------------


@dataclass(frozen=True, slots=True)
class ExportJob:
    """An "export my data" job as its owner polls it (post, "Message queues")."""

    id: uuid.UUID
    state: str  # pending, running, done or failed
    progress: int  # 0-100
    created_at: datetime
    finished_at: datetime | None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ExportJob:
        """Build from the API's ``ExportJob`` object; progress is clamped to 0-100."""
        finished = data.get("finished_at")
        return cls(
            id=uuid.UUID(str(data["id"])),
            state=str(data["state"]),
            progress=max(0, min(100, int(data["progress"]))),
            created_at=_timestamp(data["created_at"]),
            finished_at=_timestamp(finished) if finished else None,
        )

    @property
    def is_active(self) -> bool:
        """Whether the job may still change, so its page should keep refreshing."""
        return self.state in ("pending", "running")

    @property
    def is_done(self) -> bool:
        """Whether the document is ready to download."""
        return self.state == "done"


@dataclass(frozen=True, slots=True)
class DomainCount:
    """Visits from one referring domain; ``""`` is a direct visit."""

    domain: str
    visits: int

    @property
    def label(self) -> str:
        """The domain as shown to readers: ``(direct)`` for visits without a referrer."""
        return self.domain or "(direct)"


@dataclass(frozen=True, slots=True)
class HourCount:
    """Visits in one hour (0-23, UTC) of a day."""

    hour: int
    visits: int


@dataclass(frozen=True, slots=True)
class DomainVisits:
    """One UTC day of the precalculated rollups (post, "Scheduling periodic tasks")."""

    day: date
    total: int
    domains: list[DomainCount]
    hours: list[HourCount]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DomainVisits:
        """Build from the API's ``DomainVisits`` object."""
        return cls(
            day=date.fromisoformat(str(data["day"])),
            total=int(data["total"]),
            domains=[DomainCount(str(d["domain"]), int(d["visits"])) for d in data["domains"]],
            hours=[HourCount(int(h["hour"]), int(h["visits"])) for h in data["hours"]],
        )
