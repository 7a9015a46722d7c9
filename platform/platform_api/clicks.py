"""Click tracking: publish the click to RabbitMQ and return; never write the click log inline.

The post's "Message queues": "web applications quickly publish messages to
the queue, and have other consumer processes perform the processing outside
the scope and timeline of the client request." A click is on the path of a
user following a link, so it must be cheap: this module builds the event and
hands it to :func:`platform_api.events.publish_or_store`, which waits only for
RabbitMQ's publisher confirm. The click batch consumer (``consumers/``) writes
the ``clicks`` table later, in batches, deduplicating on ``event_id``.

Only when the broker is unreachable does the event go to PostgreSQL, and then
into the durable outbox, never the click tables: the relay publishes it when
RabbitMQ is back, so the click is counted late rather than lost.
"""
from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Literal

from platform_api import events, messaging, repository


def record_click(
    story_id: int, user_id: int | None, referrer_domain: str, event_id: uuid.UUID | None = None
) -> Literal["broker", "outbox"]:
    """Publish one click event; return where it is queued (``"broker"`` or ``"outbox"``).

    ``event_id`` is the event's id when the caller has one to repeat (derived
    from an idempotency key); by default every click gets a fresh one.

    Raises :class:`platform_api.repository.NotFound` if the story does not exist.
    That check goes through the story object cache, which the web tier's redirect
    has just filled, so it is normally a cache hit and costs no query.
    """
    if repository.get_story(story_id) is None:
        raise repository.NotFound(f"story {story_id} not found")
    payload = {
        "story_id": story_id,
        "user_id": user_id,
        "referrer_domain": referrer_domain,
        # The time of the click, not of its processing: the rollups bucket on it,
        # and a click relayed from the outbox an hour later still counts in its hour.
        "clicked_at": datetime.now(UTC).isoformat(),
    }
    published = events.publish_or_store(messaging.CLICK, payload, event_id=event_id)
    return "broker" if published else "outbox"
