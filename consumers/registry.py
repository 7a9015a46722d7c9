"""Which class consumes which queue (Zulip's ``queue_processors`` registry).

The post's "Message queues": one consumer class per queue. Classes are named
by import path and loaded on demand, so that reading the registry (for
``--help``, or for tests) imports no Django models.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from consumers.base import QueueConsumer

CONSUMERS: dict[str, str] = {
    "fanout": "consumers.fanout:FanoutConsumer",
    "clicks": "consumers.clicks:ClickConsumer",
}


def names() -> list[str]:
    """Every queue that has a consumer, in a stable order."""
    return list(CONSUMERS)


def load(queue: str) -> type[QueueConsumer]:
    """The consumer class for ``queue``; ``KeyError`` if there is none."""
    from consumers.base import QueueConsumer

    module_name, class_name = CONSUMERS[queue].split(":")
    consumer = getattr(importlib.import_module(module_name), class_name)
    if not (isinstance(consumer, type) and issubclass(consumer, QueueConsumer)):
        raise TypeError(f"{CONSUMERS[queue]} is not a QueueConsumer")
    if consumer.queue_name != queue:
        raise TypeError(f"{CONSUMERS[queue]} consumes {consumer.queue_name!r}, not {queue!r}")
    return consumer
