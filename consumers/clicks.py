"""The click log: a batch consumer, so the redirect never waits on PostgreSQL.

The post's "Message queues", first benefit: the web request publishes a click
and redirects at once; this consumer, in the off-line pool, writes the clicks
in batches of up to ``batch_size`` (200) gathered for at most 200 ms, one
insert and one transaction per batch, then acknowledges the batch with one
``basic_ack(multiple=True)``.

Exactly-once counting: every click carries an ``event_id`` made when it
happened, and ``clicks.event_id`` is unique, so a redelivered batch or a click
the outbox relay published twice is inserted once.

A click that can never be written (malformed, or naming a story that does not
exist) must not fail the other clicks in its batch: the batch is checked
first with one query, and only the bad clicks are nacked, to be dead-lettered
after the delivery limit.
"""
from __future__ import annotations

import logging
import uuid
from datetime import datetime
from typing import Any, Sequence

from django.db import transaction

from consumers import payloads
from consumers.base import WRITE_DB, QueueConsumer, Refusals, insert_ignoring_conflicts
from platform_api.models import Click, Story

log = logging.getLogger(__name__)


class ClickConsumer(QueueConsumer):
    """Writes click events into ``clicks`` in batches, each click once."""

    queue_name = "clicks"
    batch_size = 200
    batch_wait_seconds = 0.2

    def parse(self, routing_key: str, data: dict[str, Any]) -> payloads.ClickEvent:
        """``click`` bodies (see :mod:`consumers.payloads`)."""
        return payloads.parse_click(routing_key, data)

    def consume_batch(self, events: Sequence[payloads.ClickEvent]) -> Refusals:
        """Insert the batch's clicks on existing stories in one transaction; refuse the rest."""
        story_ids = [event.story_id for event in events]
        with transaction.atomic(using=WRITE_DB):
            existing = set(
                Story.objects.using(WRITE_DB).filter(id__in=set(story_ids)).values_list("id", flat=True)
            )
            refusals = {
                position: f"story {story_ids[position]} does not exist"
                for position in payloads.unknown_story_positions(story_ids, existing)
            }
            rows: list[tuple[uuid.UUID, int, int | None, str, datetime]] = [
                (event.event_id, event.story_id, event.user_id, event.referrer_domain, event.clicked_at)
                for position, event in enumerate(events)
                if position not in refusals
            ]
            inserted = insert_ignoring_conflicts(
                Click._meta.db_table,
                [
                    ("event_id", "uuid"),
                    ("story_id", "bigint"),
                    ("user_id", "bigint"),
                    ("referrer_domain", "text"),
                    ("clicked_at", "timestamptz"),
                ],
                rows,
                ("event_id",),
            )
            if inserted:
                counted = sorted({row[1] for row in rows})
                transaction.on_commit(lambda: write_through_counts(counted), using=WRITE_DB)
        self.stats["clicks"] += inserted
        self.stats["duplicates"] += len(rows) - inserted
        log.debug("%s: %d clicks, %d new, %d refused", self.name, len(events), inserted, len(refusals))
        return refusals


def write_through_counts(story_ids: list[int]) -> None:
    """Write the new click counts of ``story_ids`` through to the cache (after commit).

    One grouped query for the whole batch; the counts carry the newest click id
    as their version, so two consumers finishing out of order leave the newer.
    """
    from platform_api import cache, cache_keys, offline_reads

    for story_id, value in offline_reads.click_counts(story_ids, using=WRITE_DB).items():
        cache.write_through(cache_keys.story_clicks_cache_key(story_id), value)
