"""The Celery application: off-line workers and the periodic schedule.

The post's "Off-line processing": the workers (``worker-1``, ``worker-2``) are
the "separate machine pool for performing off-line processing", fed through
RabbitMQ; the schedule below is its "Scheduling periodic tasks", published by
whichever of the two beat processes is active (:mod:`platform_api.beat`).

Shaped like cookiecutter-django's ``config/celery_app.py``: Celery reads every
``CELERY_*`` Django setting (broker, ``acks_late``, prefetch 1, the django-db
result backend), and the schedule is defined here in code, so both beat
processes (and a reader) see the same one.

Run a worker from ``platform/``::

    celery -A platform_api.celery_app worker -n worker-1@%h --concurrency 2 --without-gossip --without-mingle
"""
from __future__ import annotations

import logging
import os
from typing import Any

# Before Celery() is created: its Django fix-up (django.setup() in each
# worker, connections closed between tasks) only engages when this is set.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "platform_api.settings")

from celery import Celery, signals  # noqa: E402
from django.conf import settings  # noqa: E402

from platform_api.tasks import TASK_MODULES  # noqa: E402
from platform_api.tasks.slots import SLOT_OPTION, every  # noqa: E402

HOUR = 3600
DAY = 86400

# ``include`` lists the task modules explicitly rather than autodiscovering
# ``platform_api.tasks``: that package's ``__init__`` stays free of Django
# imports so its pure parts can be unit-tested (see its docstring).
app = Celery("scalestack", include=list(TASK_MODULES))
app.config_from_object("django.conf:settings", namespace="CELERY")


def _setting(name: str, default: Any) -> Any:
    """A schedule setting; defaults keep this module importable under other settings."""
    return getattr(settings, name, default)


def beat_schedule() -> dict[str, dict[str, Any]]:
    """Every periodic task, when it fires and which slot it is for.

    Entries with ``options[SLOT_OPTION]`` get ``slot=`` added at publish time
    (:class:`platform_api.tasks.slots.SlotScheduler`) and run at most once per
    slot; the value is how many periods back the slot is. Frequent tasks
    expire after a few intervals: if the workers are busy (a map-reduce job),
    a newer run will supersede a stale one anyway.
    """
    trending = int(_setting("TRENDING_INTERVAL", 60))
    relay = int(_setting("OUTBOX_RELAY_INTERVAL", 2))
    return {
        # No slot: relaying is safe to repeat at any time (SKIP LOCKED rows).
        "relay-outbox": {
            "task": "outbox.relay",
            "schedule": every(relay),
            "options": {"expires": max(relay * 5, 10)},
        },
        "trending": {
            "task": "trending.recompute",
            "schedule": every(trending),
            "options": {SLOT_OPTION: 0, "expires": trending * 5},
        },
        # "Today so far", so the analytics page shows the current day and hour.
        "rollup-today": {
            "task": "rollups.today",
            "schedule": every(trending),
            "options": {SLOT_OPTION: 0, "expires": trending * 5},
        },
        "resend-stalled-exports": {
            "task": "exports.resend_stalled",
            "schedule": every(max(trending, 30)),
            "options": {"expires": max(trending, 30) * 2},
        },
        # Five minutes past each hour, for the hour before: late clicks from
        # the batch consumer (it writes within seconds) are in by then.
        "rollup-hour": {
            "task": "rollups.hour",
            "schedule": every(HOUR, offset=5 * 60),
            "options": {SLOT_OPTION: 1},
        },
        "rollup-day": {
            "task": "rollups.day",
            "schedule": every(DAY, offset=10 * 60),
            "options": {SLOT_OPTION: 1},
        },
        "purge-clicks": {
            "task": "purge.clicks",
            "schedule": every(DAY, offset=20 * 60),
            "options": {SLOT_OPTION: 0},
        },
        "mapreduce-suggested-stories": {
            "task": "mapreduce.suggested.periodic",
            "schedule": every(HOUR, offset=15 * 60),
            "options": {SLOT_OPTION: 0},
        },
        "mapreduce-follow-suggestions": {
            "task": "mapreduce.follows.periodic",
            "schedule": every(HOUR, offset=25 * 60),
            "options": {SLOT_OPTION: 0},
        },
    }


app.conf.beat_schedule = beat_schedule()
app.conf.beat_scheduler = "platform_api.tasks.slots:SlotScheduler"
# Beat re-checks its schedule at least this often (the default is 5 minutes),
# so a clock jump or a slow tick never delays the frequent entries for long.
app.conf.beat_max_loop_interval = 5


# Tasks too frequent to log each run at INFO ("received", "succeeded" every
# two seconds on every worker would bury everything else). Their failures are
# still logged: only INFO records are dropped, and the tasks log what they did
# when they did something.
QUIET_TASKS = frozenset({"outbox.relay", "exports.resend_stalled"})


class QuietTasksFilter(logging.Filter):
    """Drop Celery's INFO lines about :data:`QUIET_TASKS`."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Keep everything except INFO records about a quiet task."""
        args = record.args
        if record.levelno == logging.INFO and isinstance(args, dict) and args.get("name") in QUIET_TASKS:
            return False
        return True


for _logger in ("celery.worker.strategy", "celery.app.trace"):
    logging.getLogger(_logger).addFilter(QuietTasksFilter())


@signals.task_prerun.connect
def _new_unit_of_work(**_: Any) -> None:
    """Each task decides afresh whether the replica has caught up (the read fence)."""
    from platform_api import primary

    primary.new_unit_of_work()
