"""Fan-out on write: tie up the loose ends of posting a story.

The post's "Message queues", second pattern: "perform enough work in-line to
make it appear to the user that the task has completed, and tie up hanging
ends afterwards (... updating your followers' timelines out of band)". The
platform stores the story and the author's own timeline entry in-line
(``repository.create_story``) and publishes ``story.created``; this consumer
writes the story into every follower's home timeline.

Chunks: one event covers at most ``FANOUT_CHUNK_SIZE`` followers (500). If
there may be more, the consumer publishes a ``fanout.chunk`` event that
continues after the last follower id, and that event joins the back of the
queue. An author with thousands of followers (the post's Scobleizer) is
therefore many small messages interleaved with everyone else's, and never
holds a consumer for long.

Each batch is one transaction on the primary; its inserts ignore conflicts on
``timeline_once (user, story)``, so a redelivered event writes nothing twice.
After commit, and before the ack, the consumer bumps every reached follower's
home-timeline cache generation and publishes the continuations (confirmed).
"""
from __future__ import annotations

import dataclasses
import logging
from datetime import datetime
from typing import Any, Sequence

from django.conf import settings
from django.db import transaction

from consumers import payloads
from consumers.base import WRITE_DB, QueueConsumer, Refusals, insert_ignoring_conflicts
from platform_api import cache, cache_keys, messaging
from platform_api.models import Follow, Story, TimelineEntry

log = logging.getLogger(__name__)

DEFAULT_CHUNK_SIZE = 500


class FanoutConsumer(QueueConsumer):
    """Writes new stories into followers' home timelines, one chunk of followers per event."""

    queue_name = "fanout"
    # 16 events of up to 500 followers: at most 8,000 rows in one transaction.
    batch_size = 16
    batch_wait_seconds = 0.05

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.chunk_size: int = getattr(settings, "FANOUT_CHUNK_SIZE", DEFAULT_CHUNK_SIZE)

    def parse(self, routing_key: str, data: dict[str, Any]) -> payloads.FanoutEvent:
        """``story.created`` and ``fanout.chunk`` bodies (see :mod:`consumers.payloads`)."""
        return payloads.parse_fanout(routing_key, data)

    def consume_batch(self, events: Sequence[payloads.FanoutEvent]) -> Refusals:
        """Write one chunk of followers per event, commit, bump caches, publish continuations."""
        with transaction.atomic(using=WRITE_DB):
            stories = _stories([event.story_id for event in events])
            refusals = {
                position: f"story {events[position].story_id} does not exist"
                for position in payloads.unknown_story_positions([e.story_id for e in events], stories)
            }
            rows: list[tuple[int, int, int, datetime]] = []
            reached: set[int] = set()
            continuations: list[dict[str, Any]] = []
            for position, event in enumerate(events):
                if position in refusals:
                    continue
                # The story row, not the event, is the truth about who wrote it and when.
                author_id, created_at = stories[event.story_id]
                event = dataclasses.replace(event, author_id=author_id, created_at=created_at)
                followers = _follower_chunk(author_id, event.after_follower_id, self.chunk_size)
                rows.extend((follower, event.story_id, author_id, created_at) for follower in followers)
                reached.update(followers)
                after = payloads.next_chunk_after(followers, self.chunk_size)
                if after is not None:
                    continuations.append(payloads.continuation(event, after))
            inserted = insert_ignoring_conflicts(
                TimelineEntry._meta.db_table,
                [("user_id", "bigint"), ("story_id", "bigint"), ("author_id", "bigint"), ("created_at", "timestamptz")],
                rows,
                ("user_id", "story_id"),
            )
        # Committed. Every follower reached gets a fresh home timeline on their
        # next read, also on a redelivery (the entry may be from the first try).
        if cache.enabled() and reached:
            cache.bump_generations(cache_keys.user_home_generation(user_id) for user_id in reached)
        # Published before the ack: if the process dies in between, the chunk is
        # redelivered and publishes the same continuation again (harmless),
        # whereas the other order could lose the rest of the fan-out.
        for body in continuations:
            messaging.publisher.publish(messaging.FANOUT_CHUNK, body, message_id=body["event_id"])
        self.stats["entries"] += inserted
        self.stats["duplicates"] += len(rows) - inserted
        self.stats["continuations"] += len(continuations)
        log.debug(
            "%s: %d events, %d entries (%d new), %d continuations",
            self.name, len(events), len(rows), inserted, len(continuations),
        )
        return refusals


def _stories(ids: Sequence[int]) -> dict[int, tuple[int, datetime]]:
    """``{story id: (author id, created_at)}`` for the ids that exist (one query, primary)."""
    rows = Story.objects.using(WRITE_DB).filter(id__in=set(ids)).values_list("id", "author_id", "created_at")
    return {story_id: (author_id, created_at) for story_id, author_id, created_at in rows}


def _follower_chunk(author_id: int, after_follower_id: int, limit: int) -> list[int]:
    """The next ``limit`` followers of ``author_id`` by id (keyset pagination on the primary)."""
    return list(
        Follow.objects.using(WRITE_DB)
        .filter(followee_id=author_id, follower_id__gt=after_follower_id)
        .order_by("follower_id")
        .values_list("follower_id", flat=True)[:limit]
    )
