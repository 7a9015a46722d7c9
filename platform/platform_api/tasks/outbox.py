"""The outbox relay: publish events that could not be published when they committed.

The post's "Message queues", made loss-free: an event is written to
``outbox_events`` in the transaction that causes it (:mod:`platform_api.events`),
and published after commit. If RabbitMQ was unreachable then, the row waits;
this task, run every ``OUTBOX_RELAY_INTERVAL`` seconds by beat, publishes it
once the broker is back. It needs no slot: ``SELECT ... FOR UPDATE SKIP
LOCKED`` makes two overlapping relays publish disjoint rows, and consumers
deduplicate on ``event_id`` anyway.
"""
from __future__ import annotations

import logging

from platform_api import events
from platform_api.celery_app import app

log = logging.getLogger(__name__)


@app.task(name="outbox.relay", ignore_result=True)
def relay_outbox() -> int:
    """Publish up to a thousand waiting events, oldest first; return how many."""
    published = events.relay_outbox()
    if published:
        log.info("relayed %d outbox events", published)
    return published
