"""Publish events for what committed, and lose none when RabbitMQ is away.

The transactional outbox (Zulip and most production stacks use the same
shape): an event is a row written in the same transaction as the change that
causes it, so it exists exactly when that change committed. After commit the
platform publishes it at once with a publisher confirm and marks it published.
If RabbitMQ is unreachable, the user's request still succeeds; the row stays
in ``outbox_events`` and :func:`relay_outbox` (a periodic Celery task) publishes
it when the broker is back.

Delivery is therefore at-least-once: a crash between the confirm and the
``published_at`` update publishes an event twice. Every consumer is idempotent
on the event's ``event_id`` (unique constraints), which turns at-least-once
into exactly-once effects.
"""
from __future__ import annotations

import logging
import uuid
from typing import Any, Iterable

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from platform_api.messaging import PublishError, publisher
from platform_api.models import OutboxEvent

log = logging.getLogger(__name__)
WRITE_DB = "default"


def new_event(payload: dict[str, Any], event_id: uuid.UUID | None = None) -> dict[str, Any]:
    """``payload`` with an ``event_id`` (what consumers deduplicate on): ``event_id``, or a fresh one."""
    return {"event_id": str(event_id or uuid.uuid4()), **payload}


def publish_on_commit(routing_key: str, payload: dict[str, Any]) -> OutboxEvent:
    """Inside a write transaction: store the event; publish it once the transaction commits."""
    event = OutboxEvent.objects.using(WRITE_DB).create(routing_key=routing_key, payload=new_event(payload))
    transaction.on_commit(lambda: relay_events([event.id]), using=WRITE_DB)
    return event


def publish_or_store(routing_key: str, payload: dict[str, Any], event_id: uuid.UUID | None = None) -> bool:
    """Outside a transaction: publish now (confirmed), or keep the event in the outbox.

    For events with nothing to commit first, such as a click: the fast path
    never touches PostgreSQL. Returns whether it was published directly.
    ``event_id`` fixes the event's id (see :func:`new_event`).
    """
    event = new_event(payload, event_id)
    try:
        publisher.publish(routing_key, event, message_id=event["event_id"])
        return True
    except PublishError as exc:
        log.warning("broker unavailable, %s kept in the outbox: %s", routing_key, exc)
        OutboxEvent.objects.using(WRITE_DB).create(routing_key=routing_key, payload=event)
        return False


def relay_events(ids: Iterable[int]) -> int:
    """Publish the given outbox rows if still unpublished; return how many were published.

    ``SKIP LOCKED`` lets the request that wrote an event and the periodic relay
    run at the same time without publishing the same row twice in parallel.
    """
    ids = list(ids)
    published = 0
    try:
        with transaction.atomic(using=WRITE_DB):
            rows = list(
                OutboxEvent.objects.using(WRITE_DB)
                .select_for_update(skip_locked=True)
                .filter(id__in=ids, published_at__isnull=True)
                .order_by("id")
            )
            for row in rows:
                try:
                    publisher.publish(row.routing_key, row.payload, message_id=row.payload.get("event_id"))
                except PublishError as exc:
                    log.warning("outbox event %s not published yet: %s", row.id, exc)
                    OutboxEvent.objects.using(WRITE_DB).filter(id__in=[r.id for r in rows[published:]]).update(
                        attempts=F("attempts") + 1
                    )
                    break
                row.published_at = timezone.now()
                row.save(update_fields=["published_at"], using=WRITE_DB)
                published += 1
    except Exception:  # the request already succeeded; the relay will retry
        log.exception("relaying outbox events %s failed; the periodic relay will retry", ids)
    return published


def relay_outbox(limit: int = 1000) -> int:
    """Publish up to ``limit`` unpublished events, oldest first (the periodic relay)."""
    ids = list(
        OutboxEvent.objects.using(WRITE_DB)
        .filter(published_at__isnull=True)
        .order_by("id")
        .values_list("id", flat=True)[:limit]
    )
    return relay_events(ids) if ids else 0


def pending_count() -> int:
    """How many events wait in the outbox (shown by ``scalestack status``)."""
    return OutboxEvent.objects.using(WRITE_DB).filter(published_at__isnull=True).count()
