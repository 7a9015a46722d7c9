"""What every queue consumer shares: the post's "Message queues", made reliable.

Zulip's worker pattern (``zerver/worker/base.py``) over pika's
``BlockingConnection``. A subclass names its queue and implements
:meth:`QueueConsumer.parse` and :meth:`QueueConsumer.consume_batch`; this base
class does the rest, and each rule is here because a message must be neither
lost nor applied twice:

* **Bounded prefetch.** ``basic_qos(prefetch_count=...)``: RabbitMQ hands a
  consumer at most one batch of unacknowledged messages, so a slow or dead
  consumer strands little work and the others share the rest.
* **Batches.** Messages are gathered until there are ``batch_size`` of them or
  ``batch_wait_seconds`` have passed since the first, then applied in one
  database transaction.
* **Ack after commit.** The batch is acknowledged (one ``basic_ack`` with
  ``multiple=True``) only after ``consume_batch`` returned, i.e. after its
  transaction committed. A crash before that makes RabbitMQ redeliver the
  batch, and the consumers' inserts ignore conflicts on unique keys, so a
  redelivery changes nothing.
* **Application errors are nacked, then dead-lettered.** A message that cannot
  be parsed, or that ``consume_batch`` refuses, is ``nack``-ed with requeue;
  the quorum queue's ``x-delivery-limit`` (5) dead-letters it when it comes
  back once more, on its sixth delivery (``messaging.QueueSpec``). If the batch as a whole raises, each message is
  retried alone, so that only the bad one is nacked and its neighbours are not
  charged a delivery.
* **Infrastructure errors are retried in place.** A PostgreSQL or HAProxy blip
  (``OperationalError``, ``InterfaceError``, a pool timeout) or a publish that
  was not confirmed is retried with exponential backoff (tenacity) for as long
  as it takes, without nacking: a database outage must not dead-letter good
  messages.
* **Reconnects.** A lost or refused broker connection is re-opened with
  backoff, every attempt logged; what was unacknowledged is redelivered.
* **Graceful stop.** SIGTERM (``stop()``) lets the current batch finish and be
  acknowledged, then closes the connection.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any, ClassVar, Collection, Mapping, Sequence

import pika
import psycopg
import tenacity
from django import db
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection
from pika.spec import Basic, BasicProperties

from consumers.payloads import InvalidEvent, decode
from platform_api import messaging, primary

log = logging.getLogger(__name__)

WRITE_DB = "default"

# Errors of the infrastructure, not of the message: retry, never nack.
# psycopg_pool's PoolTimeout is a psycopg.OperationalError, and Django wraps
# psycopg's errors in its own classes with the original as ``__cause__``.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    db.OperationalError,
    db.InterfaceError,
    psycopg.OperationalError,
    psycopg.InterfaceError,
    messaging.PublishError,
)
# What a lost, refused or closed broker connection raises.
BROKER_ERRORS: tuple[type[BaseException], ...] = (pika.exceptions.AMQPError, OSError)


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` (or an error it was raised from) is an infrastructure error."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, TRANSIENT_ERRORS):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


class BatchAbandoned(Exception):
    """The consumer is stopping while the database is still failing: leave the batch unacked.

    Closing the connection returns the messages to the queue, untouched by
    any nack, for the next consumer to apply.
    """


@dataclass(frozen=True)
class Delivery:
    """One message as RabbitMQ delivered it."""

    delivery_tag: int
    routing_key: str
    body: bytes
    # How many times the quorum queue delivered it before (``x-delivery-count``).
    delivery_count: int = 0


Refusals = Mapping[int, str]
"""Positions in a batch that ``consume_batch`` refused, each with the reason."""


class QueueConsumer:
    """A consumer of one queue; subclasses set the class attributes and the two hooks."""

    queue_name: ClassVar[str]
    batch_size: ClassVar[int] = 1
    # How long to keep gathering once the first message of a batch is in.
    batch_wait_seconds: ClassVar[float] = 0.0
    # Unacknowledged messages RabbitMQ may hand this consumer; None = batch_size.
    prefetch_count: ClassVar[int | None] = None
    # Longest pause between two retries of a batch the database refused.
    retry_max_wait: ClassVar[float] = 10.0
    # Longest pause between two attempts to reach RabbitMQ. Short, because an
    # attempt costs one refused TCP connect, while a consumer that sleeps on
    # after the broker is back only delays the backlog.
    reconnect_max_wait: ClassVar[float] = 5.0
    # How often an idle consumer wakes up to notice a stop request.
    idle_poll_seconds: ClassVar[float] = 1.0
    # How often a summary of the work done is logged.
    stats_interval: ClassVar[float] = 60.0

    def __init__(self, name: str, stop_event: threading.Event | None = None, url: str | None = None) -> None:
        self.name = name
        self._stop = stop_event or threading.Event()
        self._url = url
        self._connection: BlockingConnection | None = None
        self._channel: BlockingChannel | None = None
        self._buffer: list[Delivery] = []
        self.stats: Counter[str] = Counter()
        self._stats_logged_at = time.monotonic()

    # ------------------------------------------------------------------
    # What subclasses implement
    # ------------------------------------------------------------------
    def parse(self, routing_key: str, data: dict[str, Any]) -> Any:
        """Turn a decoded body into the event ``consume_batch`` takes; raise :class:`InvalidEvent`."""
        raise NotImplementedError

    def consume(self, event: Any) -> None:
        """Apply one event (for consumers that have no batch form)."""
        raise NotImplementedError

    def consume_batch(self, events: Sequence[Any]) -> Refusals:
        """Apply ``events`` and return the positions refused (nacked), with reasons.

        Must commit before returning, must be idempotent (a batch can be
        applied again after a crash), and may raise: a transient error is
        retried, any other is narrowed down to the message that caused it.
        """
        for event in events:
            self.consume(event)
        return {}

    # ------------------------------------------------------------------
    # Control
    # ------------------------------------------------------------------
    @property
    def prefetch(self) -> int:
        """The ``basic_qos`` prefetch count: never unbounded."""
        return self.prefetch_count or self.batch_size

    @property
    def delivery_limit(self) -> int:
        """Returns after which RabbitMQ dead-letters a message (``x-delivery-limit`` of the queue)."""
        return messaging.QUEUES[self.queue_name].delivery_limit

    def stop(self) -> None:
        """Ask the consumer to finish its current batch and return from :meth:`run`."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        """Whether a stop was requested."""
        return self._stop.is_set()

    def run(self) -> None:
        """Consume until :meth:`stop`, reconnecting to RabbitMQ whenever it goes away."""
        attempt = 0
        while not self.stopping:
            try:
                self._connect()
                if attempt:
                    log.info("%s: reconnected to RabbitMQ after %d attempt(s)", self.name, attempt)
                attempt = 0
                self._consume_until_stopped()
            except BatchAbandoned:
                log.warning("%s: stopping with a batch the database refused; RabbitMQ will redeliver it", self.name)
                break
            except BROKER_ERRORS as exc:
                attempt += 1
                delay = min(self.reconnect_max_wait, 0.5 * 2 ** (attempt - 1))
                log.warning(
                    "%s: RabbitMQ connection lost or refused (%.300r); attempt %d, next in %.1f s",
                    self.name, exc, attempt, delay,
                )
                self._drop_connection()
                self._stop.wait(delay)
            finally:
                self._release_db()
        self._close()
        self._log_stats(force=True)
        log.info("%s: stopped", self.name)

    # ------------------------------------------------------------------
    # The connection
    # ------------------------------------------------------------------
    def _connect(self) -> None:
        """Open a connection and channel, declare the topology, set prefetch, subscribe."""
        self._drop_connection()
        connection = pika.BlockingConnection(messaging.connection_parameters(self._url))
        self._connection = connection
        channel = connection.channel()
        self._channel = channel
        messaging.declare_topology(channel)
        channel.basic_qos(prefetch_count=self.prefetch)
        channel.basic_consume(self.queue_name, self._on_message, auto_ack=False, consumer_tag=self.name)
        log.info(
            "%s: consuming %r (prefetch %d, batches of up to %d or %.0f ms)",
            self.name, self.queue_name, self.prefetch, self.batch_size, self.batch_wait_seconds * 1000,
        )

    def _on_message(
        self, channel: BlockingChannel, method: Basic.Deliver, properties: BasicProperties, body: bytes
    ) -> None:
        headers = properties.headers or {}
        count = headers.get("x-delivery-count", 0)
        self._buffer.append(
            Delivery(method.delivery_tag, method.routing_key, body, count if isinstance(count, int) else 0)
        )

    def _drop_connection(self) -> None:
        """Forget a connection that failed; its unacked messages go back to the queue."""
        connection, self._connection, self._channel = self._connection, None, None
        self._buffer.clear()  # delivery tags die with their channel
        if connection is not None and connection.is_open:
            try:
                connection.close()
            except BROKER_ERRORS:
                pass

    def _close(self) -> None:
        """Stop consuming and close the connection (the graceful end of :meth:`run`)."""
        if self._channel is not None and self._channel.is_open:
            try:
                self._channel.basic_cancel(self.name)
            except BROKER_ERRORS:
                pass
        self._drop_connection()

    # ------------------------------------------------------------------
    # Gathering batches
    # ------------------------------------------------------------------
    def _consume_until_stopped(self) -> None:
        while not self.stopping:
            batch = self._collect()
            if batch:
                self.process(batch)
                self._release_db()
            self._log_stats()

    def _collect(self) -> list[Delivery]:
        """Up to ``batch_size`` messages: wait for a first one, then at most ``batch_wait_seconds``.

        Returns early (maybe empty) when a stop is requested, so the current
        batch is the last one.
        """
        assert self._connection is not None
        deadline: float | None = None
        while not self.stopping and len(self._buffer) < self.batch_size:
            if self._buffer and deadline is None:
                deadline = time.monotonic() + self.batch_wait_seconds
            if deadline is None:
                timeout = self.idle_poll_seconds
            else:
                timeout = deadline - time.monotonic()
                if timeout <= 0:
                    break
            # Dispatches deliveries to _on_message and keeps heartbeats going.
            self._connection.process_data_events(time_limit=timeout)
        batch, self._buffer = self._buffer[: self.batch_size], self._buffer[self.batch_size :]
        return batch

    # ------------------------------------------------------------------
    # Applying a batch
    # ------------------------------------------------------------------
    def process(self, deliveries: Sequence[Delivery]) -> None:
        """Parse, apply and acknowledge one batch (the heart of the consumer)."""
        # Each batch is a unit of work for the read fence: its reads see every
        # write acknowledged before it started.
        primary.new_unit_of_work()
        self.stats["batches"] += 1
        self.stats["messages"] += len(deliveries)
        parsed: list[tuple[Delivery, Any]] = []
        for delivery in deliveries:
            try:
                parsed.append((delivery, self.parse(delivery.routing_key, decode(delivery.body))))
            except InvalidEvent as exc:
                self._refuse(delivery, str(exc))
        if not parsed:
            return
        try:
            refusals = self._apply([event for _, event in parsed])
        except pika.exceptions.AMQPError:
            raise  # the consumer's own connection broke while it waited: reconnect
        except Exception as exc:  # noqa: BLE001 - an application error; narrowed down below
            if is_transient(exc):
                raise BatchAbandoned from exc
            self._apply_one_by_one(parsed, exc)
            return
        for position, reason in sorted(refusals.items()):
            self._refuse(parsed[position][0], reason)
        accepted = [delivery for position, (delivery, _) in enumerate(parsed) if position not in refusals]
        if accepted:
            # Every earlier tag on this channel is already settled (acked or
            # nacked just above), so one ack with ``multiple`` covers the batch.
            self._ack(max(d.delivery_tag for d in accepted), multiple=True)
            self.stats["acked"] += len(accepted)

    def _apply_one_by_one(self, parsed: Sequence[tuple[Delivery, Any]], batch_error: Exception) -> None:
        """The batch raised: apply each message alone, so only the culprit is nacked.

        Safe because ``consume_batch`` is idempotent: events of the failed
        batch that are applied again insert nothing twice.
        """
        if len(parsed) == 1:
            delivery = parsed[0][0]
            log.error("%s: message %d failed", self.name, delivery.delivery_tag, exc_info=batch_error)
            self._refuse(delivery, f"{type(batch_error).__name__}: {batch_error}")
            return
        log.warning(
            "%s: a batch of %d failed (%s: %s); applying its messages one by one",
            self.name, len(parsed), type(batch_error).__name__, batch_error,
        )
        for delivery, event in parsed:
            try:
                refusals = self._apply([event])
            except pika.exceptions.AMQPError:
                raise
            except Exception as exc:  # noqa: BLE001
                if is_transient(exc):
                    raise BatchAbandoned from exc
                log.error("%s: message %d failed", self.name, delivery.delivery_tag, exc_info=exc)
                self._refuse(delivery, f"{type(exc).__name__}: {exc}")
                continue
            if refusals:
                self._refuse(delivery, next(iter(refusals.values())))
            else:
                self._ack(delivery.delivery_tag)
                self.stats["acked"] += 1

    def _apply(self, events: Sequence[Any]) -> Refusals:
        """``consume_batch`` with transient errors retried until they pass (or a stop)."""
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception(is_transient),
            wait=tenacity.wait_exponential(multiplier=0.25, max=self.retry_max_wait),
            stop=tenacity.stop_when_event_set(self._stop),
            sleep=self._sleep,
            before_sleep=self._before_retry,
            reraise=True,
        )
        return retrying(self.consume_batch, events)

    def _before_retry(self, state: tenacity.RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        self.stats["retries"] += 1
        log.warning(
            "%s: database or broker unavailable (%s: %s); retrying the batch in %.1f s (attempt %d)",
            self.name, type(exc).__name__, exc, state.upcoming_sleep, state.attempt_number,
        )
        # A connection that broke must not be handed out again.
        self._release_db()

    def _sleep(self, seconds: float) -> None:
        """Wait between retries while still answering RabbitMQ's heartbeats; wake on stop."""
        deadline = time.monotonic() + seconds
        while not self.stopping:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            if self._connection is not None:
                self._connection.sleep(min(remaining, 0.5))
            else:
                self._stop.wait(min(remaining, 0.5))

    def _release_db(self) -> None:
        """Return this thread's database connections to the pool (and drop broken ones)."""
        try:
            db.close_old_connections()
        except Exception:  # noqa: BLE001 - closing a dead connection may itself fail
            log.debug("closing database connections failed", exc_info=True)

    # ------------------------------------------------------------------
    # Settling messages
    # ------------------------------------------------------------------
    def _ack(self, delivery_tag: int, multiple: bool = False) -> None:
        assert self._channel is not None
        self._channel.basic_ack(delivery_tag=delivery_tag, multiple=multiple)

    def _refuse(self, delivery: Delivery, reason: str) -> None:
        """Nack with requeue; the quorum queue dead-letters it once the limit is reached.

        ``x-delivery-limit`` counts *returns*: a message may come back that many
        times, and the return after that dead-letters it, so it is delivered
        at most ``delivery_limit + 1`` times in all.
        """
        assert self._channel is not None
        deliveries = delivery.delivery_count + 1
        fate = "dead-lettered now" if delivery.delivery_count >= self.delivery_limit else "requeued"
        log.warning(
            "%s: refusing message %d (%s, delivery %d of at most %d, %s): %s",
            self.name, delivery.delivery_tag, delivery.routing_key, deliveries, self.delivery_limit + 1, fate, reason,
        )
        self._channel.basic_nack(delivery_tag=delivery.delivery_tag, multiple=False, requeue=True)
        self.stats["refused"] += 1

    def _log_stats(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._stats_logged_at < self.stats_interval:
            return
        if self.stats:
            summary = ", ".join(f"{key} {value}" for key, value in sorted(self.stats.items()))
            log.info("%s: in the last %.0f s: %s", self.name, now - self._stats_logged_at, summary)
        self.stats.clear()
        self._stats_logged_at = now


def insert_ignoring_conflicts(
    table: str, columns: Sequence[tuple[str, str]], rows: Collection[Sequence[Any]], conflict_on: Sequence[str]
) -> int:
    """Insert ``rows`` in one statement, skipping those a unique key already has.

    ``columns`` are ``(name, PostgreSQL type)`` pairs. The rows travel as one
    array per column (``unnest``), so a batch of any size is one statement and
    one round trip. Returns how many rows were new; the rest were duplicates
    (a redelivery, or an event published twice by the outbox relay).
    """
    if not rows:
        return 0
    names = ", ".join(name for name, _ in columns)
    arrays = ", ".join(f"%s::{pg_type}[]" for _, pg_type in columns)
    sql = (
        f'INSERT INTO "{table}" ({names}) SELECT * FROM unnest({arrays}) '
        f'ON CONFLICT ({", ".join(conflict_on)}) DO NOTHING'
    )
    params = [list(column) for column in zip(*rows)]
    with db.connections[WRITE_DB].cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount

