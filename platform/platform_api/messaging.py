"""RabbitMQ's topology and a publisher that only returns once the broker has the message.

The post's "Message queues": web requests publish an event and return; the
consumers in ``consumers/`` do the slow part off-line. This module is the one
place that declares the exchanges and queues, so publishers and consumers can
never disagree about them, and a publisher declares them before its first
publish so no event is ever routed to a queue that does not exist yet.

Queues are *quorum* queues: replicated-log queues that survive a broker
restart, and whose ``x-delivery-limit`` makes RabbitMQ itself dead-letter a
message that was returned too many times (a poison message), instead of
hand-written retry counting.
"""
from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass, field
from typing import Any

import pika
from django.conf import settings
from pika.adapters.blocking_connection import BlockingChannel

log = logging.getLogger(__name__)

EXCHANGE = "scalestack.events"
DEAD_EXCHANGE = "scalestack.dead"

# Routing keys of the events the platform publishes.
STORY_CREATED = "story.created"
FANOUT_CHUNK = "fanout.chunk"
CLICK = "click"


@dataclass(frozen=True)
class QueueSpec:
    """One work queue, its bindings and its dead-letter queue."""

    name: str
    bindings: tuple[str, ...]
    # Deliveries after which RabbitMQ dead-letters a message it keeps getting back.
    delivery_limit: int = 5
    arguments: dict[str, Any] = field(default_factory=dict)

    @property
    def dead_letter_queue(self) -> str:
        """Where messages that failed ``delivery_limit`` times end up."""
        return f"{self.name}.dead"

    def declare_arguments(self) -> dict[str, Any]:
        """``queue_declare`` arguments: a quorum queue with a delivery limit and a DLX."""
        return {
            "x-queue-type": "quorum",
            "x-delivery-limit": self.delivery_limit,
            "x-dead-letter-exchange": DEAD_EXCHANGE,
            "x-dead-letter-routing-key": self.dead_letter_queue,
            **self.arguments,
        }


QUEUES: dict[str, QueueSpec] = {
    "fanout": QueueSpec("fanout", (STORY_CREATED, FANOUT_CHUNK)),
    "clicks": QueueSpec("clicks", (CLICK,)),
}


def connection_parameters(url: str | None = None) -> pika.URLParameters:
    """Connection settings that fail fast: a publisher must not hang a web request."""
    params = pika.URLParameters(url or settings.RABBITMQ_URL)
    params.connection_attempts = 1
    params.socket_timeout = 2
    params.blocked_connection_timeout = 5
    params.heartbeat = 30
    params.client_properties = {"connection_name": settings.SERVER_NAME}
    return params


def declare_topology(channel: BlockingChannel) -> None:
    """Declare every exchange, queue and binding (idempotent)."""
    channel.exchange_declare(EXCHANGE, exchange_type="topic", durable=True)
    channel.exchange_declare(DEAD_EXCHANGE, exchange_type="direct", durable=True)
    for spec in QUEUES.values():
        channel.queue_declare(spec.name, durable=True, arguments=spec.declare_arguments())
        for key in spec.bindings:
            channel.queue_bind(spec.name, EXCHANGE, routing_key=key)
        channel.queue_declare(spec.dead_letter_queue, durable=True, arguments={"x-queue-type": "quorum"})
        channel.queue_bind(spec.dead_letter_queue, DEAD_EXCHANGE, routing_key=spec.dead_letter_queue)


class PublishError(Exception):
    """The broker did not confirm the message (unreachable, nacked or unroutable)."""


class Publisher:
    """A confirmed publisher: :meth:`publish` returns only once RabbitMQ has the message.

    pika's ``BlockingConnection`` is not thread-safe, so each thread (gunicorn
    runs several per worker) keeps its own connection. A broken connection is
    dropped and re-opened on the next publish.
    """

    def __init__(self, url: str | None = None) -> None:
        self._url = url
        self._local = threading.local()

    def _channel(self) -> BlockingChannel:
        channel = getattr(self._local, "channel", None)
        if channel is not None and channel.is_open:
            return channel
        self.close()
        connection = pika.BlockingConnection(connection_parameters(self._url))
        channel = connection.channel()
        declare_topology(channel)
        channel.confirm_delivery()
        self._local.connection = connection
        self._local.channel = channel
        return channel

    def publish(self, routing_key: str, payload: dict[str, Any], message_id: str | None = None) -> None:
        """Publish one persistent message and wait for the broker's confirm.

        ``mandatory`` makes an unroutable message an error rather than a silent
        drop. Raises :class:`PublishError` if the message is not confirmed.
        """
        body = json.dumps(payload, separators=(",", ":"), default=str).encode()
        properties = pika.BasicProperties(
            content_type="application/json", delivery_mode=pika.DeliveryMode.Persistent, message_id=message_id
        )
        try:
            self._channel().basic_publish(EXCHANGE, routing_key, body, properties, mandatory=True)
        except (pika.exceptions.AMQPError, OSError) as exc:
            self.close()
            raise PublishError(f"{routing_key}: {exc!r}") from exc

    def close(self) -> None:
        """Close this thread's connection, ignoring errors (it may be dead already)."""
        connection = getattr(self._local, "connection", None)
        self._local.connection = self._local.channel = None
        if connection is not None and connection.is_open:
            try:
                connection.close()
            except (pika.exceptions.AMQPError, OSError):
                pass


publisher = Publisher()
