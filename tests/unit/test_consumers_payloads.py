"""Consumers: which event bodies are accepted, and how a big fan-out is cut into chunks.

Pure functions from ``consumers.payloads``; no services, no Django models.
"""
from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone
from typing import Any

import pytest

from tests.unit.platform_support import ensure_platform_importable

ensure_platform_importable()

from consumers import payloads  # noqa: E402
from consumers.payloads import InvalidEvent  # noqa: E402
from platform_api import messaging  # noqa: E402

EVENT_ID = "0b6f2a4e-62a4-4d7e-9d6a-0d3c6f1e2a11"
CREATED = "2026-11-26T05:08:25.123456+00:00"


def story_created(**overrides: Any) -> dict[str, Any]:
    """A ``story.created`` body as ``repository.create_story`` publishes it."""
    return {"event_id": EVENT_ID, "story_id": 42, "author_id": 7, "created_at": CREATED, **overrides}


def click(**overrides: Any) -> dict[str, Any]:
    """A ``click`` body as the platform publishes it."""
    return {
        "event_id": EVENT_ID,
        "story_id": 42,
        "user_id": 9,
        "referrer_domain": "news.ycombinator.com",
        "clicked_at": CREATED,
        **overrides,
    }


def test_routing_keys_match_the_platforms() -> None:
    assert payloads.STORY_CREATED == messaging.STORY_CREATED
    assert payloads.FANOUT_CHUNK == messaging.FANOUT_CHUNK
    assert payloads.CLICK == messaging.CLICK
    # and the queues route exactly what the consumers parse
    assert set(messaging.QUEUES["fanout"].bindings) == {payloads.STORY_CREATED, payloads.FANOUT_CHUNK}
    assert set(messaging.QUEUES["clicks"].bindings) == {payloads.CLICK}


# --------------------------------------------------------------------------
# decode
# --------------------------------------------------------------------------
@pytest.mark.parametrize("body", [b"{not json", b"\xff\xfe", b"", b"[1, 2]", b'"text"', b"null", b"17"])
def test_only_a_json_object_decodes(body: bytes) -> None:
    with pytest.raises(InvalidEvent):
        payloads.decode(body)


def test_a_json_object_decodes() -> None:
    assert payloads.decode(json.dumps(story_created()).encode()) == story_created()


# --------------------------------------------------------------------------
# fan-out events
# --------------------------------------------------------------------------
def test_story_created_parses_and_starts_at_the_first_follower() -> None:
    event = payloads.parse_fanout("story.created", story_created())
    assert event == payloads.FanoutEvent(
        EVENT_ID, 42, 7, datetime(2026, 11, 26, 5, 8, 25, 123456, tzinfo=timezone.utc), 0
    )


def test_a_chunk_parses_with_its_position() -> None:
    event = payloads.parse_fanout("fanout.chunk", story_created(after_follower_id=1500))
    assert event.after_follower_id == 1500


@pytest.mark.parametrize(
    ("routing_key", "body"),
    [
        ("story.created", {k: v for k, v in story_created().items() if k != "story_id"}),
        ("story.created", {k: v for k, v in story_created().items() if k != "event_id"}),
        ("story.created", {k: v for k, v in story_created().items() if k != "author_id"}),
        ("story.created", {k: v for k, v in story_created().items() if k != "created_at"}),
        ("story.created", story_created(story_id="42")),
        ("story.created", story_created(story_id=True)),
        ("story.created", story_created(story_id=0)),
        ("story.created", story_created(story_id=2**63)),
        ("story.created", story_created(story_id=4.0)),
        ("story.created", story_created(event_id="not-a-uuid")),
        ("story.created", story_created(created_at="yesterday")),
        ("story.created", story_created(created_at="2026-11-26T05:08:25")),  # no zone
        ("fanout.chunk", story_created()),  # no after_follower_id
        ("fanout.chunk", story_created(after_follower_id=-1)),
        ("click", story_created()),  # wrong queue
    ],
)
def test_bad_fanout_events_are_invalid(routing_key: str, body: dict[str, Any]) -> None:
    with pytest.raises(InvalidEvent):
        payloads.parse_fanout(routing_key, body)


# --------------------------------------------------------------------------
# clicks
# --------------------------------------------------------------------------
def test_a_click_parses() -> None:
    event = payloads.parse_click("click", click())
    assert event.event_id == uuid.UUID(EVENT_ID)
    assert (event.story_id, event.user_id, event.referrer_domain) == (42, 9, "news.ycombinator.com")
    assert event.clicked_at.tzinfo is not None


def test_an_anonymous_direct_click_parses() -> None:
    event = payloads.parse_click("click", click(user_id=None, referrer_domain=""))
    assert (event.user_id, event.referrer_domain) == (None, "")
    bare = {k: v for k, v in click().items() if k not in ("user_id", "referrer_domain")}
    assert payloads.parse_click("click", bare).user_id is None


def test_the_integration_tests_poison_click_is_invalid() -> None:
    poison = {"event_id": str(uuid.uuid4()), "story_id": "not-a-number", "clicked_at": "yesterday"}
    with pytest.raises(InvalidEvent, match="story_id"):
        payloads.parse_click("click", poison)


@pytest.mark.parametrize(
    "body",
    [
        {k: v for k, v in click().items() if k != "event_id"},
        {k: v for k, v in click().items() if k != "story_id"},
        {k: v for k, v in click().items() if k != "clicked_at"},
        click(user_id="9"),
        click(user_id=0),
        click(referrer_domain="x" * 256),
        click(referrer_domain=["a.example"]),
        click(event_id=12),
        click(clicked_at=1732597705),
    ],
)
def test_bad_clicks_are_invalid(body: dict[str, Any]) -> None:
    with pytest.raises(InvalidEvent):
        payloads.parse_click("click", body)


# --------------------------------------------------------------------------
# chunk planning
# --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("followers", "chunk", "expected"),
    [
        ([], 500, None),
        ([3, 8, 9], 500, None),
        (list(range(1, 501)), 500, 500),
        ([5, 10], 2, 10),
        ([5], 2, None),
    ],
)
def test_only_a_full_chunk_has_a_next_one(followers: list[int], chunk: int, expected: int | None) -> None:
    assert payloads.next_chunk_after(followers, chunk) == expected


def _fan_out(all_followers: list[int], chunk: int) -> tuple[list[int], int]:
    """Run the consumer's chunk loop against an in-memory follower list.

    Returns every follower written (in order) and how many messages it took.
    """
    event = payloads.parse_fanout("story.created", story_created())
    written: list[int] = []
    messages = 0
    while True:
        messages += 1
        followers = sorted(f for f in all_followers if f > event.after_follower_id)[:chunk]
        written.extend(followers)
        after = payloads.next_chunk_after(followers, chunk)
        if after is None:
            return written, messages
        body = payloads.continuation(event, after)
        event = payloads.parse_fanout("fanout.chunk", json.loads(json.dumps(body)))


@pytest.mark.parametrize(
    ("count", "chunk", "messages"),
    [(0, 500, 1), (499, 500, 1), (500, 500, 2), (1234, 500, 3), (5000, 500, 11)],
)
def test_chunks_reach_every_follower_exactly_once(count: int, chunk: int, messages: int) -> None:
    # Sparse, unordered ids, as real follower ids are.
    followers = [7 * i + 3 for i in range(count)][::-1]
    written, used = _fan_out(followers, chunk)
    assert written == sorted(followers)
    assert used == messages


def test_a_continuation_is_a_valid_chunk_event_with_a_stable_id() -> None:
    event = payloads.parse_fanout("story.created", story_created())
    body = payloads.continuation(event, 500)
    again = payloads.continuation(event, 500)
    assert body == again, "a redelivered chunk publishes the same continuation"
    assert body["event_id"] != payloads.continuation(event, 1000)["event_id"]
    assert body["event_id"] != EVENT_ID
    parsed = payloads.parse_fanout("fanout.chunk", json.loads(json.dumps(body)))
    assert (parsed.story_id, parsed.author_id, parsed.after_follower_id) == (42, 7, 500)
    assert parsed.created_at == event.created_at


# --------------------------------------------------------------------------
# batch validation
# --------------------------------------------------------------------------
def test_only_events_naming_missing_stories_are_refused() -> None:
    assert payloads.unknown_story_positions([1, 2, 3, 2, 9], {2, 3}) == [0, 4]
    assert payloads.unknown_story_positions([1, 2], {1, 2, 5}) == []
    assert payloads.unknown_story_positions([], set()) == []
