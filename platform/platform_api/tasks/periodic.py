"""Periodic tasks that run at most once per time slot, whoever schedules them.

The post's "Scheduling periodic tasks" hopes for a scheduler that "easily
supports redundancy". Redundant schedulers (:mod:`platform_api.beat`) can, for
a moment, both publish the same run, and ``acks_late`` redelivers a run whose
worker died; so every periodic run is keyed on ``(task, slot)`` in
``periodic_runs``, whose unique constraint lets exactly one of them through.

:func:`periodic_task` registers a Celery task around a function of the slot.
By default the claim (``INSERT ... ON CONFLICT DO NOTHING``), the work and
``finished_at`` are ONE transaction:

* a double fire: the second insert waits on the first's row lock, then finds
  it committed and skips; the effects happen once;
* a worker killed mid-run: its transaction rolls back, claim included, so the
  redelivered message claims the slot afresh and the slot is not lost.

Jobs that span several tasks (a map-reduce chord) cannot be one transaction:
with ``atomic=False`` the claim commits at once, and the job calls
:func:`finish_run` when its last step commits. If starting the job fails, the
claim is withdrawn, so the retry can claim the slot again.

A run that fails because PostgreSQL is unreachable is retried with backoff
(its claim rolled back with it), so a database restart does not lose a slot.
"""
from __future__ import annotations

import logging
import time
from datetime import datetime
from typing import Any, Callable, TypeVar

from celery import Task
from django.db import InterfaceError, OperationalError, connections, transaction

from platform_api.celery_app import app
from platform_api.tasks.slots import parse_slot

log = logging.getLogger(__name__)
WRITE_DB = "default"
R = TypeVar("R")

CLAIM_SQL = """
    INSERT INTO periodic_runs (task, slot, runner, started_at)
    VALUES (%s, %s, %s, now())
    ON CONFLICT (task, slot) DO NOTHING
    RETURNING id
"""
FINISH_SQL = "UPDATE periodic_runs SET finished_at = now() WHERE task = %s AND slot = %s"
WITHDRAW_SQL = "DELETE FROM periodic_runs WHERE task = %s AND slot = %s AND finished_at IS NULL"

# Retries of a run whose database was unreachable: 2, 4, 8, 16, 32 s apart.
RETRY_OPTIONS: dict[str, Any] = {
    "autoretry_for": (OperationalError, InterfaceError),
    "retry_backoff": 2,
    "retry_backoff_max": 60,
    "retry_jitter": False,
    "max_retries": 5,
}


def claim_run(task: str, slot: datetime, runner: str) -> bool:
    """Record that ``task`` runs for ``slot``; ``False`` if that run exists already.

    Inside a transaction the row stays locked until commit, so a concurrent
    claim of the same slot waits and then sees the outcome.
    """
    with connections[WRITE_DB].cursor() as cursor:
        cursor.execute(CLAIM_SQL, [task, slot, runner[:100]])
        return cursor.fetchone() is not None


def finish_run(task: str, slot: datetime) -> None:
    """Mark the run of ``task`` for ``slot`` finished (in the caller's transaction)."""
    with connections[WRITE_DB].cursor() as cursor:
        cursor.execute(FINISH_SQL, [task, slot])


def withdraw_run(task: str, slot: datetime) -> None:
    """Delete an unfinished claim (its job could not be started), in its own transaction."""
    with transaction.atomic(using=WRITE_DB), connections[WRITE_DB].cursor() as cursor:
        cursor.execute(WITHDRAW_SQL, [task, slot])


def runner_name(task: Task, scheduled_by: str) -> str:
    """Who scheduled and who ran a run: ``beat-1 -> worker-2@host``."""
    return f"{scheduled_by or 'manual'} -> {task.request.hostname or 'local'}"


def periodic_task(
    name: str, *, atomic: bool = True, **task_options: Any
) -> Callable[[Callable[[datetime], R]], Task]:
    """Register ``fn(slot)`` as the Celery task ``name`` that runs once per slot.

    The task takes ``slot`` (an ISO datetime, added by the scheduler) and
    ``scheduled_by`` (the scheduler's name). It returns a small summary:
    ``{"task", "slot", "ran", "result", "seconds"}``; ``ran`` is false when the
    slot had already been run. Use it as a call, not a decorator, so the plain
    function stays importable for callers that need no claim (the seed)::

        rollup_hour_task = periodic_task("rollups.hour")(rollup_hour)
    """

    def decorate(fn: Callable[[datetime], R]) -> Task:
        def run(self: Task, slot: str, scheduled_by: str = "") -> dict[str, Any]:
            when = parse_slot(slot)
            runner = runner_name(self, scheduled_by)
            started = time.monotonic()
            if atomic:
                with transaction.atomic(using=WRITE_DB):
                    if not claim_run(name, when, runner):
                        return _skipped(name, slot, runner)
                    result = fn(when)
                    finish_run(name, when)
            else:
                with transaction.atomic(using=WRITE_DB):
                    claimed = claim_run(name, when, runner)
                if not claimed:
                    return _skipped(name, slot, runner)
                try:
                    result = fn(when)
                except Exception:
                    withdraw_run(name, when)
                    raise
            seconds = round(time.monotonic() - started, 3)
            log.info("%s slot %s ran (%s) in %.3fs: %s", name, slot, runner, seconds, result)
            return {"task": name, "slot": slot, "ran": True, "result": result, "seconds": seconds}

        # Not functools.wraps: Celery checks call arguments against the
        # signature it finds, which must be this wrapper's, not ``fn``'s.
        run.__doc__ = fn.__doc__
        run.__name__ = run.__qualname__ = f"{fn.__name__}_task"
        run.__module__ = fn.__module__
        return app.task(name=name, bind=True, **{**RETRY_OPTIONS, **task_options})(run)

    return decorate


def _skipped(name: str, slot: str, runner: str) -> dict[str, Any]:
    """The summary of a run that found its slot already taken (a double fire)."""
    log.info("%s slot %s already ran; skipped (%s)", name, slot, runner)
    return {"task": name, "slot": slot, "ran": False, "result": None, "seconds": 0.0}
