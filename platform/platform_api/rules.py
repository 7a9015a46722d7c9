"""The platform's pure rules: input limits, page windows, ranking and domains.

Nothing here imports Django or django-ninja, so the unit tests can check every
rule without configuring settings (the web tier's tests configure Django with
*its* settings in the same pytest process, and Django can only be set up once).
:mod:`platform_api.schemas` builds the request bodies from these types, and
:mod:`platform_api.repository` uses the paging and ranking rules.

Limits are those of ``docs/platform-api.md``: a username is 3–30 letters, digits,
``_`` or ``-``; a password 8–128 characters; a title 1–200 characters after
stripping; a url an http(s) URL of at most 500 characters (or empty when there
is text); a text at most 5,000 characters; a page 1–1000 of 30 items.
"""
from __future__ import annotations

import math
import re
from typing import Annotated, Sequence, TypeVar
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field, StringConstraints

T = TypeVar("T")

USERNAME_PATTERN = r"^[A-Za-z0-9_-]{3,30}$"
PASSWORD_MIN_LENGTH = 8
PASSWORD_MAX_LENGTH = 128
TITLE_MAX_LENGTH = 200
URL_MAX_LENGTH = 500
TEXT_MAX_LENGTH = 5000
PAGE_SIZE = 30
MAX_PAGE = 1000
# Ids are PostgreSQL bigints; a larger number in a path or body would make the
# database raise "out of range", so it is refused as bad input before that.
MAX_ID = 2**63 - 1

_USERNAME_RE = re.compile(USERNAME_PATTERN)
# Characters below U+0020 (and DEL) other than the usual whitespace of a text
# body. PostgreSQL refuses NUL outright, and the others have no business in a
# title or a link.
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


# --------------------------------------------------------------------------
# Input validation
# --------------------------------------------------------------------------
def is_valid_username(name: str) -> bool:
    """Whether ``name`` could be a username at all (used before any lookup)."""
    return bool(_USERNAME_RE.fullmatch(name))


def _single_line(value: str) -> str:
    """Refuse control characters and line breaks (titles are one line)."""
    if _CONTROL_RE.search(value) or "\n" in value or "\r" in value or "\t" in value:
        raise ValueError("must not contain control characters or line breaks")
    return value


def _printable_text(value: str) -> str:
    """Refuse control characters other than tabs and line breaks in a text body."""
    if _CONTROL_RE.search(value):
        raise ValueError("must not contain control characters")
    return value


def check_story_url(value: str) -> str:
    """Accept an empty string or an absolute ``http``/``https`` URL with a host.

    The URL is kept exactly as given (no normalisation), because it is shown
    back to readers and linked to. Anything else (``javascript:``, ``ftp:``,
    relative paths, spaces) is refused, so the web tier can put it in an
    ``href`` as it is.
    """
    if value == "":
        return value
    if any(ch.isspace() for ch in value) or _CONTROL_RE.search(value):
        raise ValueError("must not contain spaces or control characters")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port like :99999
    except ValueError as exc:
        raise ValueError(f"is not a valid URL ({exc})") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise ValueError("must be an http:// or https:// URL")
    if not parts.hostname:
        raise ValueError("must name a host")
    return value


def require_url_or_text(url: str, text: str) -> None:
    """A story needs a link, a text, or both; raise ``ValueError`` otherwise."""
    if not url and not text:
        raise ValueError("a story needs a url or a text (or both)")


Username = Annotated[str, StringConstraints(pattern=USERNAME_PATTERN)]
Password = Annotated[str, StringConstraints(min_length=PASSWORD_MIN_LENGTH, max_length=PASSWORD_MAX_LENGTH)]
# Signing in checks credentials, not the sign-up rules: any short-enough string
# may be tried, and a wrong one is a 401. The maxima still bound the work the
# password hasher can be made to do.
LoginUsername = Annotated[str, StringConstraints(min_length=1, max_length=30)]
LoginPassword = Annotated[str, StringConstraints(min_length=1, max_length=PASSWORD_MAX_LENGTH)]
Title = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=TITLE_MAX_LENGTH),
    AfterValidator(_single_line),
]
StoryUrl = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=URL_MAX_LENGTH),
    AfterValidator(check_story_url),
]
StoryText = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=TEXT_MAX_LENGTH),
    AfterValidator(_printable_text),
]
RowId = Annotated[int, Field(ge=1, le=MAX_ID)]
PageNumber = Annotated[int, Field(ge=1, le=MAX_PAGE)]


# --------------------------------------------------------------------------
# Paging: lists cache one id more than a page, to know whether there is a next
# --------------------------------------------------------------------------
def page_window(page: int) -> tuple[int, int]:
    """The ``(offset, limit)`` of ids to fetch for ``page``: one extra id.

    The extra id tells whether a next page exists without a ``COUNT(*)``.
    """
    if not 1 <= page <= MAX_PAGE:
        raise ValueError(f"page must be 1..{MAX_PAGE}")
    return (page - 1) * PAGE_SIZE, PAGE_SIZE + 1


def split_page(ids: Sequence[T]) -> tuple[list[T], bool]:
    """Split a fetched window into the page's ids and whether a next page exists."""
    return list(ids[:PAGE_SIZE]), len(ids) > PAGE_SIZE


# --------------------------------------------------------------------------
# Ranking: Hacker News' gravity formula
# --------------------------------------------------------------------------
GRAVITY = 1.8
AGE_OFFSET_HOURS = 2
# The SQL the front page orders by. A story's score falls with age, so it
# cannot be indexed; the list of ids is cached instead (with a short soft TTL
# so that the drift with time is bounded). The cast matters: since PostgreSQL
# 14 ``extract`` returns ``numeric``, and ``power()`` on numerics made this
# query take 120 ms on 10,000 stories instead of about 5 ms in double precision.
TOP_SCORE_SQL = (
    f"(votes) / power(extract(epoch from (now() - created_at))::float8 / 3600 + {AGE_OFFSET_HOURS}, {GRAVITY})"
)


def hot_score(votes: int, age_hours: float) -> float:
    """The front page's score in Python, the twin of :data:`TOP_SCORE_SQL`.

    Used by tests to reason about the ordering; the database computes the real one.
    """
    return votes / math.pow(age_hours + AGE_OFFSET_HOURS, GRAVITY)


# --------------------------------------------------------------------------
# Presentation
# --------------------------------------------------------------------------
def domain_of(url: str) -> str | None:
    """The host a story links to, without ``www.``; ``None`` for a text-only story.

    Shown next to the title as Hacker News does, so readers see where a link goes.
    """
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


# --------------------------------------------------------------------------
# Fault injection (test stack only)
# --------------------------------------------------------------------------
MAX_FILL_DELAY_SECONDS = 5.0


def parse_fill_delay(raw: str) -> float:
    """Seconds from an ``X-Debug-Fill-Delay`` header: a finite number in 0..5."""
    try:
        seconds = float(raw)
    except ValueError:
        raise ValueError("X-Debug-Fill-Delay must be a number of seconds") from None
    if not math.isfinite(seconds) or not 0 <= seconds <= MAX_FILL_DELAY_SECONDS:
        raise ValueError(f"X-Debug-Fill-Delay must be between 0 and {MAX_FILL_DELAY_SECONDS:g} seconds")
    return seconds
