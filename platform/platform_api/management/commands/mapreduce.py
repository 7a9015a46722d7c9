"""``manage.py mapreduce suggested|follows``: run a map-reduce job now.

The post's "Map-reduce". By default the job is a Celery chord over the
workers (maps over ``--partitions`` partitions, then one reduce), exactly as
the hourly schedule runs it; ``--wait`` waits for the reduce and prints what
it did and how long it took. ``--inline`` runs it in this process instead,
without the broker.
"""
from __future__ import annotations

import json
import time
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from platform_api.tasks import mapreduce


class Command(BaseCommand):
    """Start (and optionally wait for) one map-reduce job."""

    help = "Run the 'suggested' (stories) or 'follows' (people you may follow) map-reduce job."

    def add_arguments(self, parser: ArgumentParser) -> None:
        """The job, ``--partitions``, ``--wait``, ``--timeout``, ``--inline`` and ``--dry-run``."""
        parser.add_argument("job", choices=sorted(mapreduce.JOBS))
        parser.add_argument("--partitions", type=int, default=None, help="map tasks (default MAPREDUCE_PARTITIONS)")
        parser.add_argument("--wait", action="store_true", help="wait for the reduce and print its summary")
        parser.add_argument("--queue", default=None, help="Celery queue for the job's tasks (default: the default)")
        parser.add_argument("--timeout", type=float, default=600.0, help="seconds --wait waits (default 600)")
        parser.add_argument("--inline", action="store_true", help="run in this process, without the workers")
        parser.add_argument("--dry-run", action="store_true", help="compute but do not store the result")

    def handle(self, *args: Any, **options: Any) -> None:
        """Run the job and report."""
        partitions = options["partitions"] or mapreduce.default_partitions()
        if partitions < 1:
            raise CommandError("--partitions must be at least 1")
        write = not options["dry_run"]
        started = time.monotonic()
        if options["inline"]:
            summary = mapreduce.run_inline(options["job"], partitions, write=write)
            self._report(summary, time.monotonic() - started)
            return
        result = mapreduce.launch(options["job"], partitions, write=write, queue=options["queue"])
        self.stdout.write(f"{options['job']}: chord of {partitions} maps started; reduce task {result.id}")
        if not options["wait"]:
            return
        try:
            summary = result.get(timeout=options["timeout"], interval=0.2)
        except Exception as exc:
            raise CommandError(f"{options['job']} failed or timed out: {exc!r}") from exc
        self._report(summary, time.monotonic() - started)

    def _report(self, summary: dict[str, Any], elapsed: float) -> None:
        self.stdout.write(json.dumps(summary))
        self.stdout.write(self.style.SUCCESS(f"{summary['job']}: {summary['rows']} rows in {elapsed:.2f}s"))
