"""Consumers: what is acked, nacked, retried and reconnected (``consumers.base``).

The real :class:`QueueConsumer` machinery runs against a fake pika channel and
connection that record every call, with ``consume_batch`` scripted per test.
No RabbitMQ and no database are involved.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import pika
import psycopg
import psycopg_pool
import pytest
from django import db

from tests.unit.platform_support import PLATFORM_DIR, PROBE_ENV, REPO_ROOT, ensure_platform_importable

ensure_platform_importable()

from consumers import base, payloads, registry  # noqa: E402
from consumers.base import BatchAbandoned, Delivery, QueueConsumer, is_transient  # noqa: E402
from platform_api import messaging  # noqa: E402


# --------------------------------------------------------------------------
# Fakes
# --------------------------------------------------------------------------
@dataclass
class FakeChannel:
    """Records acks and nacks in order."""

    calls: list[tuple[str, int, bool]] = field(default_factory=list)
    is_open: bool = True

    def basic_ack(self, delivery_tag: int, multiple: bool = False) -> None:
        self.calls.append(("ack", delivery_tag, multiple))

    def basic_nack(self, delivery_tag: int, multiple: bool = False, requeue: bool = True) -> None:
        assert requeue, "application errors are requeued; RabbitMQ's delivery limit dead-letters them"
        self.calls.append(("nack", delivery_tag, multiple))

    def acked(self) -> set[int]:
        """Every tag settled by an ack (``multiple`` acks every unsettled tag up to it)."""
        settled: set[int] = set()
        acked: set[int] = set()
        for kind, tag, multiple in self.calls:
            if kind == "nack":
                settled.add(tag)
            elif multiple:
                new = {t for t in range(1, tag + 1) if t not in settled}
                acked |= new
                settled |= new
            else:
                acked.add(tag)
                settled.add(tag)
        return acked

    def nacked(self) -> list[int]:
        return [tag for kind, tag, _ in self.calls if kind == "nack"]


class ScriptedConsumer(QueueConsumer):
    """Parses click bodies; ``consume_batch`` runs ``script`` and records each call."""

    queue_name = "clicks"
    batch_size = 10
    batch_wait_seconds = 0.05

    def __init__(self, script: Callable[[Sequence[payloads.ClickEvent]], dict[int, str]]) -> None:
        super().__init__("test-consumer", threading.Event())
        self.script = script
        self.batches: list[list[int]] = []
        self.sleeps: list[float] = []
        self._channel = FakeChannel()  # type: ignore[assignment]

    def parse(self, routing_key: str, data: dict[str, Any]) -> payloads.ClickEvent:
        return payloads.parse_click(routing_key, data)

    def consume_batch(self, events: Sequence[payloads.ClickEvent]) -> dict[int, str]:
        self.batches.append([e.story_id for e in events])
        return self.script(events)

    # No broker to keep alive and no database to release in these tests.
    def _sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)

    def _release_db(self) -> None:
        pass

    @property
    def channel(self) -> FakeChannel:
        return self._channel  # type: ignore[return-value]


def click_delivery(tag: int, story_id: Any = None, body: bytes | None = None, count: int = 0) -> Delivery:
    """A delivered click; ``story_id`` defaults to the tag, so batches are easy to read."""
    if body is None:
        body = json.dumps(
            {
                "event_id": f"00000000-0000-4000-8000-{tag:012d}",
                "story_id": tag if story_id is None else story_id,
                "user_id": None,
                "referrer_domain": "",
                "clicked_at": "2026-11-26T05:00:00+00:00",
            }
        ).encode()
    return Delivery(tag, "click", body, count)


def accept_all(events: Sequence[Any]) -> dict[int, str]:
    return {}


# --------------------------------------------------------------------------
# Acks and nacks
# --------------------------------------------------------------------------
def test_a_good_batch_is_applied_once_and_acked_with_one_multiple_ack() -> None:
    consumer = ScriptedConsumer(accept_all)
    consumer.process([click_delivery(tag) for tag in range(1, 6)])
    assert consumer.batches == [[1, 2, 3, 4, 5]]
    assert consumer.channel.calls == [("ack", 5, True)]


def test_unparseable_messages_are_nacked_and_the_rest_acked() -> None:
    consumer = ScriptedConsumer(accept_all)
    deliveries = [
        click_delivery(1),
        click_delivery(2, body=b"{not json"),
        click_delivery(3, story_id="not-a-number"),
        click_delivery(4),
    ]
    consumer.process(deliveries)
    assert consumer.batches == [[1, 4]], "bad messages never reach consume_batch"
    assert consumer.channel.nacked() == [2, 3]
    assert consumer.channel.acked() == {1, 4}
    # Nacks come first, so the multiple ack cannot swallow a refused tag.
    assert consumer.channel.calls[-1] == ("ack", 4, True)


def test_refused_events_are_nacked_before_the_ack_covers_the_rest() -> None:
    # Story 3 "does not exist": consume_batch refuses position 2 only.
    consumer = ScriptedConsumer(lambda events: {i: "missing" for i, e in enumerate(events) if e.story_id == 3})
    consumer.process([click_delivery(tag) for tag in (1, 2, 3, 4)])
    assert consumer.channel.calls == [("nack", 3, False), ("ack", 4, True)]
    assert consumer.channel.acked() == {1, 2, 4}


def test_a_refused_last_message_is_not_covered_by_the_ack() -> None:
    consumer = ScriptedConsumer(lambda events: {len(events) - 1: "missing"})
    consumer.process([click_delivery(tag) for tag in (1, 2, 3)])
    assert consumer.channel.calls == [("nack", 3, False), ("ack", 2, True)]


def test_a_batch_that_raises_is_retried_one_by_one_and_only_the_culprit_is_nacked() -> None:
    def script(events: Sequence[payloads.ClickEvent]) -> dict[int, str]:
        if any(e.story_id == 13 for e in events):
            raise ValueError("story 13 breaks the insert")
        return {}

    consumer = ScriptedConsumer(script)
    consumer.process([click_delivery(tag) for tag in (11, 12, 13, 14)])
    assert consumer.batches == [[11, 12, 13, 14], [11], [12], [13], [14]]
    assert consumer.channel.nacked() == [13]
    assert consumer.channel.acked() == {11, 12, 14}
    assert consumer.sleeps == [], "an application error is not retried with backoff"


def test_a_single_message_that_raises_is_nacked_without_a_second_try() -> None:
    consumer = ScriptedConsumer(lambda events: (_ for _ in ()).throw(KeyError("boom")))
    consumer.process([click_delivery(1, count=4)])
    assert consumer.batches == [[1]]
    assert consumer.channel.calls == [("nack", 1, False)]


def test_an_all_invalid_batch_calls_nothing() -> None:
    consumer = ScriptedConsumer(accept_all)
    consumer.process([click_delivery(1, body=b"[]"), click_delivery(2, body=b"{}")])
    assert consumer.batches == []
    assert consumer.channel.calls == [("nack", 1, False), ("nack", 2, False)]


# --------------------------------------------------------------------------
# Transient errors: retried in place, never nacked
# --------------------------------------------------------------------------
def flaky(failures: list[BaseException]) -> Callable[[Sequence[Any]], dict[int, str]]:
    """A ``consume_batch`` that raises each of ``failures`` once, then succeeds."""
    remaining = list(failures)

    def script(events: Sequence[Any]) -> dict[int, str]:
        if remaining:
            raise remaining.pop(0)
        return {}

    return script


def test_database_blips_are_retried_with_growing_capped_waits_and_nothing_is_nacked() -> None:
    blips: list[BaseException] = [db.OperationalError("server closed the connection")] * 7
    blips.append(db.InterfaceError("connection already closed"))
    consumer = ScriptedConsumer(flaky(blips))
    consumer.process([click_delivery(tag) for tag in (1, 2, 3)])
    assert len(consumer.batches) == 9, "8 failures, then the batch that worked"
    assert all(batch == [1, 2, 3] for batch in consumer.batches), "retried as a whole batch"
    assert consumer.channel.calls == [("ack", 3, True)]
    assert consumer.sleeps == sorted(consumer.sleeps), "the backoff grows"
    assert consumer.sleeps[0] < 1
    assert max(consumer.sleeps) == consumer.retry_max_wait, "and is capped"
    assert consumer.stats["retries"] == 8


def test_a_pool_timeout_and_an_unconfirmed_publish_are_transient_too() -> None:
    consumer = ScriptedConsumer(flaky([psycopg_pool.PoolTimeout("no connection"), messaging.PublishError("nack")]))
    consumer.process([click_delivery(1)])
    assert consumer.channel.calls == [("ack", 1, True)]
    assert len(consumer.sleeps) == 2


def test_a_stop_during_a_database_outage_leaves_the_batch_unsettled() -> None:
    consumer = ScriptedConsumer(flaky([db.OperationalError("down")] * 100))
    consumer.stop()
    with pytest.raises(BatchAbandoned):
        consumer.process([click_delivery(1), click_delivery(2)])
    assert consumer.channel.calls == [], "neither acked nor nacked: RabbitMQ redelivers it untouched"


def test_a_broker_error_while_applying_goes_to_the_reconnect_loop() -> None:
    consumer = ScriptedConsumer(flaky([pika.exceptions.StreamLostError("gone")]))
    with pytest.raises(pika.exceptions.AMQPError):
        consumer.process([click_delivery(1), click_delivery(2)])
    assert consumer.channel.calls == []
    assert len(consumer.batches) == 1, "not retried message by message"


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (db.OperationalError("x"), True),
        (db.InterfaceError("x"), True),
        (psycopg.OperationalError("x"), True),
        (psycopg_pool.PoolTimeout("x"), True),
        (messaging.PublishError("x"), True),
        (db.IntegrityError("x"), False),
        (db.DataError("x"), False),
        (ValueError("x"), False),
        (KeyError("x"), False),
    ],
)
def test_which_errors_are_transient(error: BaseException, transient: bool) -> None:
    assert is_transient(error) is transient


def test_a_wrapped_database_error_is_still_transient() -> None:
    try:
        try:
            raise psycopg.OperationalError("connection refused")
        except psycopg.Error as inner:
            raise RuntimeError("while writing the batch") from inner
    except RuntimeError as outer:
        assert is_transient(outer)


# --------------------------------------------------------------------------
# Gathering a batch
# --------------------------------------------------------------------------
class FakeConnection:
    """Delivers ``per_call`` messages on each ``process_data_events`` until ``total`` are out."""

    def __init__(self, consumer: QueueConsumer, total: int, per_call: int) -> None:
        self.consumer, self.total, self.per_call = consumer, total, per_call
        self.sent = 0
        self.time_limits: list[float] = []

    def process_data_events(self, time_limit: float) -> None:
        self.time_limits.append(time_limit)
        for _ in range(min(self.per_call, self.total - self.sent)):
            self.sent += 1
            delivery = click_delivery(self.sent)
            method = pika.spec.Basic.Deliver(delivery_tag=self.sent, routing_key="click")
            self.consumer._on_message(None, method, pika.BasicProperties(headers={"x-delivery-count": 2}), delivery.body)  # type: ignore[arg-type]


def test_a_batch_is_cut_at_batch_size() -> None:
    consumer = ScriptedConsumer(accept_all)
    consumer._connection = FakeConnection(consumer, total=25, per_call=4)  # type: ignore[assignment]
    first = consumer._collect()
    assert [d.delivery_tag for d in first] == list(range(1, 11))
    assert first[0].delivery_count == 2
    second = consumer._collect()
    assert [d.delivery_tag for d in second] == list(range(11, 21))


def test_a_partial_batch_goes_out_after_the_batch_wait() -> None:
    consumer = ScriptedConsumer(accept_all)
    connection = FakeConnection(consumer, total=3, per_call=3)
    consumer._connection = connection  # type: ignore[assignment]
    batch = consumer._collect()
    assert [d.delivery_tag for d in batch] == [1, 2, 3]
    assert connection.time_limits[0] == consumer.idle_poll_seconds, "waits for a first message"
    assert all(limit <= consumer.batch_wait_seconds for limit in connection.time_limits[1:])


def test_a_stop_ends_gathering_with_what_is_there() -> None:
    consumer = ScriptedConsumer(accept_all)
    consumer._connection = FakeConnection(consumer, total=0, per_call=0)  # type: ignore[assignment]
    consumer.stop()
    assert consumer._collect() == []


def test_prefetch_is_bounded_by_default_to_one_batch() -> None:
    consumer = ScriptedConsumer(accept_all)
    assert consumer.prefetch == consumer.batch_size == 10
    assert consumer.delivery_limit == messaging.QUEUES["clicks"].delivery_limit == 5


# --------------------------------------------------------------------------
# Reconnecting
# --------------------------------------------------------------------------
class RecordingEvent(threading.Event):
    """A stop event whose waits return at once and are recorded."""

    def __init__(self) -> None:
        super().__init__()
        self.waits: list[float] = []

    def wait(self, timeout: float | None = None) -> bool:
        self.waits.append(timeout or 0.0)
        return self.is_set()


def test_a_refused_connection_is_retried_with_backoff_until_stopped(monkeypatch: pytest.MonkeyPatch) -> None:
    stop = RecordingEvent()
    attempts: list[int] = []

    def refuse(params: Any) -> Any:
        attempts.append(1)
        if len(attempts) == 7:
            stop.set()
        raise pika.exceptions.AMQPConnectionError("connection refused")

    monkeypatch.setattr(base.pika, "BlockingConnection", refuse)
    monkeypatch.setattr(base.messaging, "connection_parameters", lambda url=None: object())
    consumer = ScriptedConsumer(accept_all)
    consumer._stop = stop
    consumer._channel = None
    consumer.run()  # returns: the stop was honoured
    assert len(attempts) == 7
    assert stop.waits[:4] == [0.5, 1.0, 2.0, 4.0]
    assert max(stop.waits) == consumer.reconnect_max_wait


# --------------------------------------------------------------------------
# The command and the registry, in a process of their own
# --------------------------------------------------------------------------
def test_the_registry_names_both_queues_of_the_design() -> None:
    assert registry.names() == ["fanout", "clicks"]
    assert set(registry.names()) == set(messaging.QUEUES)


def _platform_child(code: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` with the platform's settings, from ``platform/`` like supervisord does.

    ``PYTHONPATH`` holds the repository root (so ``consumers`` imports even
    without ``pip install -e``): the worst case for the stdlib ``platform``
    hazard, which the child checks.
    """
    env = {key: value for key, value in os.environ.items() if not key.startswith(("DJANGO_", "DATABASE_"))}
    env.update(PROBE_ENV)
    env["PYTHONPATH"] = str(REPO_ROOT)
    return subprocess.run(
        [sys.executable, "-c", code], cwd=PLATFORM_DIR, env=env, capture_output=True, text=True, timeout=120
    )


def test_consumer_classes_load_with_the_platform_settings_and_keep_stdlib_platform() -> None:
    code = (
        "import json, platform, django; django.setup()\n"
        "from consumers import registry\n"
        "out = {'system': platform.system()}\n"
        "for q in registry.names():\n"
        "    c = registry.load(q)\n"
        "    out[q] = [c.queue_name, c('x').prefetch, c.batch_size, c.batch_wait_seconds]\n"
        "from consumers.fanout import FanoutConsumer\n"
        "out['chunk'] = FanoutConsumer('x').chunk_size\n"
        "print(json.dumps(out))\n"
    )
    result = _platform_child(code)
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["system"] == "Linux"
    assert out["fanout"] == ["fanout", 16, 16, 0.05]
    assert out["clicks"] == ["clicks", 200, 200, 0.2]
    assert out["chunk"] == 500


def test_the_command_refuses_an_unknown_queue() -> None:
    result = _platform_child("import sys; sys.argv = ['consumers', 'nope']; import runpy; runpy.run_module('consumers', run_name='__main__')")
    assert result.returncode == 2
    assert "invalid choice: 'nope'" in result.stderr
