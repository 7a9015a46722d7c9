"""Request and response bodies of the off-line endpoints (``docs/platform-api.md``).

The post's "Off-line processing" section seen from the API: a click is
accepted (``202``) and handed to a message queue, an export is scheduled and
then polled, and analytics, trending and suggestions are precalculated results
("Caching": "precalculated results") read back from tables that Celery tasks
and map-reduce jobs fill. :mod:`platform_api.api_offline` serves them.

The referrer rule is a plain function (:func:`check_referrer_domain`) so that
it can be tested without Django settings, like :mod:`platform_api.rules`.
"""
from __future__ import annotations

import re
import uuid
from datetime import date, datetime
from typing import Annotated, Any, Literal

from ninja import Schema
from pydantic import AfterValidator, BeforeValidator, Field

from platform_api.rules import RowId
from platform_api.schemas import StoryOut, UserRefOut

REFERRER_DOMAIN_MAX_LENGTH = 255
# A DNS-like host name (labels of letters, digits, ``_`` and ``-`` between
# single dots), or an IPv6 literal as ``urlsplit(...).hostname`` gives it
# (``::1``, without brackets). Nothing else: the value comes from a Referer
# header, which anyone can set, and it is shown back on the analytics page.
_HOST_NAME_RE = re.compile(r"[a-z0-9_-]+(?:\.[a-z0-9_-]+)*")
_IPV6_RE = re.compile(r"[0-9a-f]*:[0-9a-f]*:[0-9a-f:.]*")

# Suggestions are stored ranked; a caller asks for at most this many.
MAX_SUGGESTIONS = 20
DEFAULT_SUGGESTIONS = 5
# Days an analytics query may name (the day after MAX_DAY must still be a date).
MIN_DAY = date(1970, 1, 1)
MAX_DAY = date(9999, 12, 30)
_DAY_TEXT_RE = re.compile(r"\d{4}-\d{2}-\d{2}")


def check_referrer_domain(value: str) -> str:
    """Normalise a referring host (lower case, no trailing dot) or raise ``ValueError``.

    ``""`` means "no referrer" (a direct visit) and is kept as it is.
    """
    value = value.strip().lower().rstrip(".")
    if value == "":
        return value
    if len(value) > REFERRER_DOMAIN_MAX_LENGTH:
        raise ValueError(f"must be at most {REFERRER_DOMAIN_MAX_LENGTH} characters")
    if not (_HOST_NAME_RE.fullmatch(value) or _IPV6_RE.fullmatch(value)):
        raise ValueError("must be a host name such as news.example.org, or empty")
    return value


def _day_text(value: Any) -> Any:
    """Accept only ``YYYY-MM-DD`` (pydantic alone would also take a Unix timestamp)."""
    if not isinstance(value, str) or not _DAY_TEXT_RE.fullmatch(value):
        raise ValueError("must be a day written YYYY-MM-DD")
    return value


def _day_in_range(value: date) -> date:
    if not MIN_DAY <= value <= MAX_DAY:
        raise ValueError(f"must be between {MIN_DAY} and {MAX_DAY}")
    return value


# ``max_length`` refuses an oversized value before any other work is done on it.
ReferrerDomain = Annotated[str, Field(max_length=REFERRER_DOMAIN_MAX_LENGTH), AfterValidator(check_referrer_domain)]
Day = Annotated[date, BeforeValidator(_day_text), AfterValidator(_day_in_range)]
SuggestionLimit = Annotated[int, Field(ge=1, le=MAX_SUGGESTIONS)]
ExportState = Literal["pending", "running", "done", "failed"]


# --------------------------------------------------------------------------
# Request bodies
# --------------------------------------------------------------------------
class ClickIn(Schema):
    """``POST /v1/clicks``: one click on a story's link, as the web tier saw it."""

    story_id: RowId
    user_id: RowId | None = None
    referrer_domain: ReferrerDomain = ""


# --------------------------------------------------------------------------
# Responses
# --------------------------------------------------------------------------
class ClickAcceptedOut(Schema):
    """The click is safe: confirmed by RabbitMQ, or kept in the durable outbox."""

    accepted: bool
    queued: Literal["broker", "outbox"]


class ExportJobOut(Schema):
    """An "export my data" job as its owner polls it; ``progress`` is 0–100."""

    id: uuid.UUID
    state: ExportState
    progress: int
    created_at: datetime
    finished_at: datetime | None


class DomainCountOut(Schema):
    """Visits from one referring domain (``""`` for direct visits)."""

    domain: str
    visits: int


class HourCountOut(Schema):
    """Visits in one hour of the day (UTC), all domains together."""

    hour: int
    visits: int


class DomainVisitsOut(Schema):
    """One UTC day of the precalculated rollups: per domain (best first) and per hour."""

    day: date
    total: int
    domains: list[DomainCountOut]
    hours: list[HourCountOut]


class StoryClicksOut(Schema):
    """A story's click count, from the click log."""

    story_id: int
    clicks: int


class StorySuggestionsOut(Schema):
    """Stories that people who clicked a story also clicked, best first."""

    items: list[StoryOut]


class UserSuggestionsOut(Schema):
    """People a user may want to follow (friends of friends), best first."""

    items: list[UserRefOut]
