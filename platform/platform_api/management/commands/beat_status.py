"""``manage.py beat_status``: which beat process holds the scheduler lease.

For ``scalestack status`` (the post's "Scheduling periodic tasks": the
redundant scheduler of :mod:`platform_api.beat`). Prints the active beat's
name, or ``none``; with ``--runs``, also the latest run of every periodic task.
"""
from __future__ import annotations

import json
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, connections

from platform_api.beat import active_beat

LATEST_RUNS_SQL = """
    SELECT DISTINCT ON (task) task, slot, runner, started_at, finished_at
    FROM periodic_runs ORDER BY task, slot DESC
"""


class Command(BaseCommand):
    """Print the active beat's name (or ``none``)."""

    help = "Print the name of the beat process that holds the scheduler lease, or 'none'."

    def add_arguments(self, parser: ArgumentParser) -> None:
        """``--runs`` and ``--json``."""
        parser.add_argument("--runs", action="store_true", help="also show each periodic task's latest run")
        parser.add_argument("--json", action="store_true", help="print JSON: {active, runs}")

    def handle(self, *args: Any, **options: Any) -> None:
        """Ask the primary's ``pg_locks`` who holds the lease."""
        try:
            active = active_beat()
            runs = _latest_runs() if options["runs"] or options["json"] else []
        except DatabaseError as exc:
            raise CommandError(f"PostgreSQL unreachable: {exc}") from exc
        if options["json"]:
            self.stdout.write(json.dumps({"active": active, "runs": runs}, default=str))
            return
        self.stdout.write(active or "none")
        for run in runs:
            state = "finished" if run["finished_at"] else "running"
            self.stdout.write(f"  {run['task']:<30} {run['slot']:%Y-%m-%d %H:%M:%S}  {state:<8} {run['runner']}")


def _latest_runs() -> list[dict[str, Any]]:
    """The latest slot of each periodic task, from the primary."""
    with connections["default"].cursor() as cursor:
        cursor.execute(LATEST_RUNS_SQL)
        columns = [col.name for col in cursor.description]
        return [dict(zip(columns, row)) for row in cursor.fetchall()]
