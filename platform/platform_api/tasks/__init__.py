"""Celery tasks: the post's "Off-line processing" section, the parts that run on workers.

* "Scheduling periodic tasks": :mod:`.periodic` (one run per time slot),
  :mod:`.slots` (the schedule and its slots), :mod:`platform_api.beat` (two
  schedulers, one active), and the periodic jobs :mod:`.rollups`,
  :mod:`.trending`, :mod:`.purge` and :mod:`.outbox`.
* "Message queues", pattern 1 (schedule it and let the user poll): :mod:`.exports`.
* "Map-reduce": :mod:`.mapreduce` (Celery group + chord over partitions), whose
  pure map and reduce functions are in :mod:`.mapreduce_core` and whose plain
  SQL ground truth is :mod:`.ground_truth`.

This ``__init__`` deliberately imports nothing. The pure modules (``slots``,
``mapreduce_core``) are then importable without Django, which the unit tests
need (their process is configured with the web tier's settings), and the Celery
app imports the task modules itself from :data:`TASK_MODULES`.
"""
from __future__ import annotations

#: Every module that defines tasks; ``platform_api.celery_app`` imports them
#: (Celery's ``include``) so a worker knows every task by name.
TASK_MODULES: tuple[str, ...] = (
    "platform_api.tasks.outbox",
    "platform_api.tasks.exports",
    "platform_api.tasks.rollups",
    "platform_api.tasks.trending",
    "platform_api.tasks.purge",
    "platform_api.tasks.mapreduce",
)
