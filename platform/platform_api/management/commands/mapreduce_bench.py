"""``manage.py mapreduce_bench``: map-reduce over the workers against one SQL query.

The post's "Map-reduce": "For sufficiently small systems you can often get
away with adhoc queries on a SQL database, but that approach may not scale up
trivially". This measures where that is true here. For each job and data
size it times

* **SQL**: the ground-truth query (:mod:`platform_api.tasks.ground_truth`),
  one statement on one PostgreSQL backend;
* **map-reduce**: the Celery chord over the running workers (maps in
  parallel, one reduce), computing the same result without storing it;
* optionally (``--inline``) the same map and reduce functions in this one
  process, to separate the cost of the computation from the cost of
  distributing it;

checks that both give the same rows (a digest of every row), and prints a
table. ``--scale 1 4`` repeats it with the data copied 4 times over (as if the
site had four times the users, each behaving like one of today's), in scratch
tables that are dropped afterwards.
"""
from __future__ import annotations

import statistics
import time
from argparse import ArgumentParser
from typing import Any, Callable

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, connections
from rich.console import Console
from rich.table import Table

from platform_api.tasks import ground_truth, mapreduce

WRITE_DB = "default"
SCALED_SOURCES = {"suggested": "mapreduce_bench_clicks", "follows": "mapreduce_bench_follows"}

# Copies of the data with every user id moved by copy * offset, so each copy
# is a disjoint set of users with the same behaviour. Same indexes as the
# real tables, so neither side is favoured.
SCALE_SQL = {
    "suggested": [
        "DROP TABLE IF EXISTS mapreduce_bench_clicks",
        """CREATE TABLE mapreduce_bench_clicks AS
           SELECT c.user_id + k * %(offset)s AS user_id, c.story_id
           FROM clicks c CROSS JOIN generate_series(0, %(scale)s - 1) AS k
           WHERE c.user_id IS NOT NULL""",
        "CREATE INDEX ON mapreduce_bench_clicks (user_id, story_id)",
        "ANALYZE mapreduce_bench_clicks",
    ],
    "follows": [
        "DROP TABLE IF EXISTS mapreduce_bench_follows",
        """CREATE TABLE mapreduce_bench_follows AS
           SELECT f.follower_id + k * %(offset)s AS follower_id, f.followee_id + k * %(offset)s AS followee_id
           FROM follows f CROSS JOIN generate_series(0, %(scale)s - 1) AS k""",
        "CREATE UNIQUE INDEX ON mapreduce_bench_follows (follower_id, followee_id)",
        "CREATE INDEX ON mapreduce_bench_follows (followee_id)",
        "ANALYZE mapreduce_bench_follows",
    ],
}
INPUT_ROWS_SQL = {
    "suggested": "SELECT count(*) FROM {source} WHERE user_id IS NOT NULL",
    "follows": "SELECT count(*) FROM {source}",
}


def _median_run(repeat: int, fn: Callable[[], Any]) -> tuple[float, Any]:
    """The median wall time of ``repeat`` calls, and the last call's result."""
    times = []
    result = None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


class Command(BaseCommand):
    """Time the map-reduce jobs against their SQL ground truth and print a table."""

    help = "Compare each map-reduce job (over the workers) with one SQL query computing the same result."

    def add_arguments(self, parser: ArgumentParser) -> None:
        """Jobs, partitions, scales, repeats, and where to read."""
        parser.add_argument("--jobs", nargs="+", choices=sorted(mapreduce.JOBS), default=sorted(mapreduce.JOBS))
        parser.add_argument("--partitions", type=int, default=None, help="map tasks (default MAPREDUCE_PARTITIONS)")
        parser.add_argument("--scale", type=int, nargs="+", default=[1], help="data sizes, as multiples (e.g. 1 4)")
        parser.add_argument("--repeat", type=int, default=3, help="runs per measurement; the median is shown")
        parser.add_argument("--inline", action="store_true", help="also time map and reduce in this one process")
        parser.add_argument("--using", default="replica", help="database alias both sides read (default replica)")
        parser.add_argument("--queue", default=None, help="Celery queue for the job's tasks (default: the default)")
        parser.add_argument("--timeout", type=float, default=900.0, help="seconds to wait for one chord")

    def handle(self, *args: Any, **options: Any) -> None:
        """Measure every (scale, job) and print the table."""
        partitions = options["partitions"] or mapreduce.default_partitions()
        if options["repeat"] < 1 or partitions < 1 or min(options["scale"]) < 1:
            raise CommandError("--repeat, --partitions and --scale must be at least 1")
        table = Table(title=f"map-reduce ({partitions} partitions, Celery workers) vs one SQL query")
        for column in ("job", "scale", "input rows", "result rows", "SQL", "map-reduce", "maps / load / reduce",
                       "inline", "same result"):
            table.add_column(column, justify="left" if column in ("job", "same result") else "right")
        try:
            for scale in options["scale"]:
                for job in options["jobs"]:
                    table.add_row(*self._measure(job, scale, partitions, options))
        finally:
            self._drop_scaled()
        # A fixed width when not on a terminal, so logs and reports keep the table readable.
        Console(width=None if Console().is_terminal else 150).print(table)

    # ------------------------------------------------------------------
    def _measure(self, job: str, scale: int, partitions: int, options: dict[str, Any]) -> list[str]:
        source = self._prepare(job, scale, options["using"])
        with connections[options["using"]].cursor() as cursor:
            cursor.execute(INPUT_ROWS_SQL[job].format(source=source))
            (input_rows,) = cursor.fetchone()

        def sql() -> list[tuple[int, int, int, int]]:
            with connections[options["using"]].cursor() as cursor:
                return ground_truth.run(cursor, job, source)

        def chord() -> dict[str, Any]:
            result = mapreduce.launch(job, partitions, source=source, write=False, queue=options["queue"])
            return result.get(timeout=options["timeout"], interval=0.05)

        self.stderr.write(f"{job} x{scale}: SQL ...")
        sql_s, rows = _median_run(options["repeat"], sql)
        self.stderr.write(f"{job} x{scale}: map-reduce over the workers ...")
        mr_s, summary = _median_run(options["repeat"], chord)
        inline = "-"
        if options["inline"]:
            inline_s, _ = _median_run(
                options["repeat"],
                lambda: mapreduce.run_inline(job, partitions, source=source, using=options["using"], write=False),
            )
            inline = f"{inline_s:.2f}s"
        same = summary["digest"] == mapreduce.rows_digest(rows) and summary["rows"] == len(rows)
        breakdown = f"{summary['map_seconds']:.2f} / {summary['load_seconds']:.2f} / {summary['reduce_seconds']:.2f}"
        return [
            job, f"x{scale}", f"{input_rows:,}", f"{len(rows):,}", f"{sql_s:.2f}s", f"{mr_s:.2f}s",
            breakdown, inline, "yes" if same else "NO",
        ]

    def _prepare(self, job: str, scale: int, using: str) -> str:
        """The source table for ``job`` at ``scale``: the real one, or a scaled copy visible on ``using``."""
        if scale == 1:
            return mapreduce.JOBS[job].default_source
        source = SCALED_SOURCES[job]
        with connections[WRITE_DB].cursor() as cursor:
            cursor.execute("SELECT coalesce(max(id), 0) + 1 FROM users")
            (offset,) = cursor.fetchone()
            for statement in SCALE_SQL[job]:
                cursor.execute(statement, {"offset": offset, "scale": scale})
            cursor.execute(INPUT_ROWS_SQL[job].format(source=source))
            (expected,) = cursor.fetchone()
        self._wait_visible(source, job, expected, using)
        return source

    def _wait_visible(self, source: str, job: str, expected: int, using: str, timeout: float = 60.0) -> None:
        """Wait until the replica has replayed the scratch table (both sides must read the same rows)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                with connections[using].cursor() as cursor:
                    cursor.execute(INPUT_ROWS_SQL[job].format(source=source))
                    if cursor.fetchone()[0] == expected:
                        return
            except DatabaseError:
                pass  # not replicated yet
            if time.monotonic() > deadline:
                raise CommandError(f"{source} did not reach {using} within {timeout:g}s")
            time.sleep(0.2)

    def _drop_scaled(self) -> None:
        with connections[WRITE_DB].cursor() as cursor:
            for source in SCALED_SOURCES.values():
                cursor.execute(f"DROP TABLE IF EXISTS {source}")
