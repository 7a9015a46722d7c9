"""Event bodies as the consumers read them: decoding, validation and chunk planning.

Part of the post's "Message queues": a consumer must be able to tell an event
it can never process (malformed JSON, a missing field, a story id that is not
a number) from one that failed for a passing reason. Parsing happens here, in
pure functions with no Django models, so that every rule is unit-tested
without services; :mod:`consumers.base` turns an :class:`InvalidEvent` into a
``nack``, and RabbitMQ dead-letters the message after its delivery limit.

The bodies are the ones ``docs/offline-design.md`` specifies:

* ``story.created``: ``{event_id, story_id, author_id, created_at}``
* ``fanout.chunk``: the same plus ``after_follower_id``
* ``click``: ``{event_id, story_id, user_id or null, referrer_domain, clicked_at}``
"""
from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Collection, Sequence

# Routing keys (the same strings as ``platform_api.messaging``; repeated here
# so this module stays importable without Django, and checked equal by a test).
STORY_CREATED = "story.created"
FANOUT_CHUNK = "fanout.chunk"
CLICK = "click"

# PostgreSQL's bigint: an id outside it can never match a row, and would make
# the query itself fail instead of finding nothing.
MAX_ROW_ID = 2**63 - 1
REFERRER_DOMAIN_MAX_LENGTH = 255

# The namespace of continuation event ids: ``uuid5(namespace, "story:after")``.
# A redelivered chunk therefore publishes a continuation with the same
# ``event_id`` as the first time, which makes the duplicate easy to recognise
# in the logs (its effect is nil either way: inserts ignore conflicts).
CHUNK_NAMESPACE = uuid.UUID("6f1c1d7e-2f7a-4d51-9f55-0c9d8b7a3e21")


class InvalidEvent(ValueError):
    """A message that no retry can make valid (bad JSON, a missing or wrong field)."""


@dataclass(frozen=True)
class FanoutEvent:
    """One unit of fan-out work: write ``story_id`` for followers after ``after_follower_id``."""

    event_id: str
    story_id: int
    author_id: int
    created_at: datetime
    # 0 for ``story.created`` (start with the lowest follower id); the last
    # follower id of the previous chunk for ``fanout.chunk``.
    after_follower_id: int = 0


@dataclass(frozen=True)
class ClickEvent:
    """One click on a story's link, as the platform published it."""

    event_id: uuid.UUID
    story_id: int
    user_id: int | None
    referrer_domain: str
    clicked_at: datetime


# --------------------------------------------------------------------------
# Decoding and field rules
# --------------------------------------------------------------------------
def decode(body: bytes) -> dict[str, Any]:
    """The JSON object in ``body``; :class:`InvalidEvent` for anything else."""
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidEvent(f"body is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise InvalidEvent(f"body is a JSON {type(data).__name__}, not an object")
    return data


def _require(data: dict[str, Any], name: str) -> Any:
    if name not in data:
        raise InvalidEvent(f"missing field {name!r}")
    return data[name]


def _row_id(value: Any, name: str, *, minimum: int = 1) -> int:
    # ``bool`` is an ``int`` in Python, and ``true`` is never an id.
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidEvent(f"{name} must be an integer, not {value!r}")
    if not minimum <= value <= MAX_ROW_ID:
        raise InvalidEvent(f"{name} out of range: {value}")
    return value


def _event_id(value: Any) -> uuid.UUID:
    if not isinstance(value, str):
        raise InvalidEvent(f"event_id must be a UUID string, not {value!r}")
    try:
        return uuid.UUID(value)
    except ValueError as exc:
        raise InvalidEvent(f"event_id is not a UUID: {value!r}") from exc


def _timestamp(value: Any, name: str) -> datetime:
    """An ISO 8601 time with an offset (a naive time would be read in the wrong zone)."""
    if not isinstance(value, str):
        raise InvalidEvent(f"{name} must be an ISO 8601 string, not {value!r}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise InvalidEvent(f"{name} is not an ISO 8601 time: {value!r}") from exc
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise InvalidEvent(f"{name} has no time zone: {value!r}")
    return parsed


# --------------------------------------------------------------------------
# The events
# --------------------------------------------------------------------------
def parse_fanout(routing_key: str, data: dict[str, Any]) -> FanoutEvent:
    """A ``story.created`` or ``fanout.chunk`` body as a :class:`FanoutEvent`."""
    if routing_key not in (STORY_CREATED, FANOUT_CHUNK):
        raise InvalidEvent(f"the fanout queue does not handle {routing_key!r}")
    after = 0
    if routing_key == FANOUT_CHUNK:
        after = _row_id(_require(data, "after_follower_id"), "after_follower_id")
    return FanoutEvent(
        event_id=str(_event_id(_require(data, "event_id"))),
        story_id=_row_id(_require(data, "story_id"), "story_id"),
        author_id=_row_id(_require(data, "author_id"), "author_id"),
        created_at=_timestamp(_require(data, "created_at"), "created_at"),
        after_follower_id=after,
    )


def parse_click(routing_key: str, data: dict[str, Any]) -> ClickEvent:
    """A ``click`` body as a :class:`ClickEvent`.

    ``user_id`` and ``referrer_domain`` are optional by nature (an anonymous
    click, a direct visit): absent reads as ``null`` and ``""``. The others are
    required, because without them the click cannot be counted once
    (``event_id``), attributed (``story_id``) or rolled up (``clicked_at``).
    """
    if routing_key != CLICK:
        raise InvalidEvent(f"the clicks queue does not handle {routing_key!r}")
    user_id = data.get("user_id")
    domain = data.get("referrer_domain") or ""
    if not isinstance(domain, str) or len(domain) > REFERRER_DOMAIN_MAX_LENGTH:
        raise InvalidEvent(f"referrer_domain must be a host name of at most 255 characters, not {domain!r:.80}")
    return ClickEvent(
        event_id=_event_id(_require(data, "event_id")),
        story_id=_row_id(_require(data, "story_id"), "story_id"),
        user_id=None if user_id is None else _row_id(user_id, "user_id"),
        referrer_domain=domain,
        clicked_at=_timestamp(_require(data, "clicked_at"), "clicked_at"),
    )


# --------------------------------------------------------------------------
# Chunked fan-out and batch validation
# --------------------------------------------------------------------------
def next_chunk_after(follower_ids: Sequence[int], chunk_size: int) -> int | None:
    """Where the next chunk starts, or ``None`` if this chunk was the last.

    ``follower_ids`` are this chunk's followers in ascending order, read with
    ``LIMIT chunk_size``. A full chunk may have more followers after it, so
    the next chunk starts after its last id (keyset pagination: each chunk is
    an index range, however deep into the follower list it is). A short chunk
    was the end. When the follower count is an exact multiple of the chunk
    size, the last continuation finds nobody and ends the chain.
    """
    if chunk_size < 1:
        raise ValueError("chunk_size must be at least 1")
    if len(follower_ids) < chunk_size:
        return None
    return follower_ids[-1]


def continuation(event: FanoutEvent, after_follower_id: int) -> dict[str, Any]:
    """The ``fanout.chunk`` body that continues ``event`` after ``after_follower_id``.

    Its ``event_id`` is derived from the story and the position, so processing
    the same chunk twice (a redelivery after a crash) publishes the same event.
    """
    return {
        "event_id": str(uuid.uuid5(CHUNK_NAMESPACE, f"{event.story_id}:{after_follower_id}")),
        "story_id": event.story_id,
        "author_id": event.author_id,
        "created_at": event.created_at.isoformat(),
        "after_follower_id": after_follower_id,
    }


def unknown_story_positions(story_ids: Sequence[int], existing: Collection[int]) -> list[int]:
    """Positions in ``story_ids`` whose story does not exist (those events are refused).

    The consumer asks PostgreSQL once for the batch's existing ids, then
    refuses only the events that name a missing story, so one bad event does
    not fail the other 199 in its batch.
    """
    return [position for position, story_id in enumerate(story_ids) if story_id not in existing]
