"""Map-reduce across the Celery workers: suggested stories and people you may follow.

The post's "Map-reduce": "Adding a map-reduce layer makes it possible to
perform data and/or processing intensive operations in a reasonable amount of
time. You might use it for calculating suggested users in a social graph".
Each job is a Celery ``chord``: a ``group`` of map tasks, one per partition of
the users (``id % N``), spread over every worker process, then one reduce task
once they have all finished. The pure map and reduce functions are in
:mod:`.mapreduce_core`; their SQL ground truth in :mod:`.ground_truth`.

How the data moves, and why:

* each map reads only its partition, from the read pool (the post's
  "dedicated slaves for the purpose of performing these queries");
* a map stores its output in the result store (PostgreSQL, through
  django-celery-results) under an id of its own, and returns only a small
  summary naming it. The chord hands those summaries to the reduce, which
  reads the outputs itself. So the broker only ever carries small messages,
  and Celery's chord bookkeeping never decodes megabytes of intermediate
  data, however large it grows: the result store plays the part of
  Hadoop's distributed file system;
* the reduce replaces the output table in one transaction (readers see the
  old index or the new one, never half) and bumps the cache generation after
  commit, then deletes the intermediate outputs.

A periodic run claims its slot when it starts the chord; the reduce marks the
run finished in the transaction that stores the result, and skips storing if
a run for a later slot has already stored one.
"""
from __future__ import annotations

import logging
import time
import zlib
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Iterable, Mapping, Sequence

from celery import chord, group
from celery.result import AsyncResult
from django.conf import settings
from django.db import OperationalError, connections, transaction

from platform_api import cache, cache_keys
from platform_api.celery_app import app
from platform_api.tasks import ground_truth
from platform_api.tasks import mapreduce_core as core
from platform_api.tasks.periodic import finish_run, periodic_task
from platform_api.tasks.slots import format_slot, parse_slot

log = logging.getLogger(__name__)
WRITE_DB = "default"
READ_DB = "replica"
# Serialises the reduces of one job (pg_advisory_xact_lock(JOB_LOCK, job)).
JOB_LOCK = 0x5CA1E8
RowTuple = core.RowTuple
rows_digest = core.rows_digest


def default_partitions() -> int:
    """How many map tasks a job runs (``MAPREDUCE_PARTITIONS``, default 4: one per worker process)."""
    return int(getattr(settings, "MAPREDUCE_PARTITIONS", 4))


# --------------------------------------------------------------------------
# Map inputs: one partition's rows
# --------------------------------------------------------------------------
def read_click_partition(
    partition: int, partitions: int, source: str = "clicks", using: str = READ_DB
) -> list[tuple[int, int]]:
    """(user id, story id) of every click by a user in ``partition``."""
    if source not in ground_truth.CLICK_SOURCES:
        raise ValueError(f"unknown click source {source!r}")
    sql = f"SELECT user_id, story_id FROM {source} WHERE user_id IS NOT NULL AND user_id %% %s = %s"
    with connections[using].cursor() as cursor:
        cursor.execute(sql, [partitions, partition])
        return cursor.fetchall()


def read_follow_partition(
    partition: int, partitions: int, source: str = "follows", using: str = READ_DB
) -> tuple[list[int], dict[int, list[int]]]:
    """The partition's users and the follow lists a friends-of-friends map needs.

    Returns (users in the partition who follow anyone, ``following``) where
    ``following`` holds the lists of those users and of everyone they follow:
    the first and the second hop.
    """
    if source not in ground_truth.FOLLOW_SOURCES:
        raise ValueError(f"unknown follow source {source!r}")
    sql = f"""
        SELECT follower_id, followee_id FROM {source}
        WHERE follower_id %% %s = %s
           OR follower_id IN (SELECT followee_id FROM {source} WHERE follower_id %% %s = %s)
    """
    following: dict[int, list[int]] = defaultdict(list)
    with connections[using].cursor() as cursor:
        cursor.execute(sql, [partitions, partition, partitions, partition])
        for follower, followee in cursor.fetchall():
            following[follower].append(followee)
    users = sorted(u for u in following if core.partition_of(u, partitions) == partition)
    return users, following


# --------------------------------------------------------------------------
# The two jobs
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class Job:
    """One map-reduce job: how to map a partition, reduce, and where the result goes."""

    name: str
    map_partition: Callable[[int, int, str, str], Any]
    reduce: Callable[[Iterable[Any]], Mapping[int, core.Ranked]]
    table: str
    owner_column: str
    default_source: str
    periodic_task: str


def _map_suggested(partition: int, partitions: int, source: str, using: str) -> core.PairCounts:
    return core.map_co_clicks(read_click_partition(partition, partitions, source, using))


def _map_follows(partition: int, partitions: int, source: str, using: str) -> core.FollowRows:
    users, following = read_follow_partition(partition, partitions, source, using)
    return core.map_friends_of_friends(users, following)


JOBS: dict[str, Job] = {
    "suggested": Job(
        "suggested", _map_suggested, core.reduce_co_clicks,
        "suggested_stories", "story_id", "clicks", "mapreduce.suggested.periodic",
    ),
    "follows": Job(
        "follows", _map_follows, core.reduce_friends_of_friends,
        "follow_suggestions", "user_id", "follows", "mapreduce.follows.periodic",
    ),
}


def store(job: Job, rows: Sequence[RowTuple], run: tuple[str, datetime] | None = None) -> bool:
    """Replace the job's output table with ``rows`` in the caller's transaction; whether it did.

    With ``run`` (a periodic run's task and slot), the run is marked finished
    in the same transaction, and nothing is stored if a run for a later slot
    already finished (this one was delayed).
    """
    with connections[WRITE_DB].cursor() as cursor:
        # crc32, not hash(): the lock id must be the same in every process.
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [JOB_LOCK, zlib.crc32(job.name.encode()) & 0x7FFFFFFF])
        if run is not None:
            cursor.execute(
                "SELECT 1 FROM periodic_runs WHERE task = %s AND slot > %s AND finished_at IS NOT NULL",
                [run[0], run[1]],
            )
            if cursor.fetchone():
                log.info("%s: a later run already stored its result; %s not stored", job.name, run[1])
                finish_run(*run)
                return False
        cursor.execute(f"DELETE FROM {job.table}")
        raw = cursor.connection  # psycopg's own connection, for COPY
        columns = f"{job.owner_column}, suggested_id, score, rank"
        with raw.cursor() as copy_cursor, copy_cursor.copy(f"COPY {job.table} ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        if run is not None:
            finish_run(*run)
    cache.bump_generations_on_commit([cache_keys.SUGGESTIONS_GENERATION])
    return True


def reduce_and_store(
    job: Job, partials: Iterable[Any], *, write: bool = True, run: tuple[str, datetime] | None = None
) -> dict[str, Any]:
    """The reduce: merge the maps' outputs, rank, and (if ``write``) store; return a summary."""
    started = time.monotonic()
    rows = core.ranked_rows(job.reduce(partials))
    reduced = time.monotonic()
    stored = False
    if write:
        with transaction.atomic(using=WRITE_DB):
            stored = store(job, rows, run)
    return {
        "job": job.name,
        "rows": len(rows),
        "owners": len({row[0] for row in rows}),
        "digest": core.rows_digest(rows),
        "stored": stored,
        "reduce_seconds": round(reduced - started, 3),
        "store_seconds": round(time.monotonic() - reduced, 3),
    }


def run_inline(
    name: str,
    partitions: int | None = None,
    *,
    source: str | None = None,
    using: str = WRITE_DB,
    write: bool = True,
) -> dict[str, Any]:
    """Run a job in this process, map after map, without the broker (the seed, tests, the bench).

    ``using`` is where the maps read: the seed reads its own uncommitted
    transaction on the primary.
    """
    job = JOBS[name]
    n = partitions or default_partitions()
    started = time.monotonic()
    partials = [job.map_partition(p, n, source or job.default_source, using) for p in range(n)]
    mapped = time.monotonic()
    summary = reduce_and_store(job, partials, write=write)
    summary["map_seconds"] = round(mapped - started, 3)
    summary["intermediate_records"] = sum(_output_size(partial) for partial in partials)
    return summary


# --------------------------------------------------------------------------
# The Celery tasks
# --------------------------------------------------------------------------
def _output_size(output: Any) -> int:
    """Records in a map output (pair counts or suggestion rows)."""
    return len(output.get("k", output.get("user", [])))


# A map only reads its partition and stores its output under its own task id,
# so running it again is harmless: a connection that could not be had for a
# moment (a pool timeout while a replica rejoins, a busy machine) is retried
# with Celery's own backoff rather than failing the whole chord.
@app.task(name="mapreduce.map", bind=True, autoretry_for=(OperationalError,), retry_backoff=1,
          retry_backoff_max=8, retry_jitter=True, max_retries=3)
def map_task(self: Any, name: str, partition: int, partitions: int, source: str | None = None) -> dict[str, Any]:
    """Map one partition of job ``name``; store the output; return a summary naming it.

    The output id is derived from this task's id, so a redelivered map
    overwrites its own earlier output rather than leaving a second copy.
    """
    job = JOBS[name]
    started = time.monotonic()
    output = job.map_partition(partition, partitions, source or job.default_source, READ_DB)
    output_id = f"{self.request.id}.output"
    app.backend.store_result(output_id, output, "SUCCESS")
    summary = {
        "partition": partition,
        "output_id": output_id,
        "records": _output_size(output),
        "seconds": round(time.monotonic() - started, 3),
    }
    log.info("%s map %d/%d: %s", name, partition, partitions, summary)
    return summary


@app.task(name="mapreduce.reduce")
def reduce_task(
    summaries: list[dict[str, Any]], name: str, write: bool = True, run: list[str] | None = None
) -> dict[str, Any]:
    """The chord's callback: read every map's output, reduce, store, then delete the outputs."""
    job = JOBS[name]
    started = time.monotonic()
    output_ids = [summary["output_id"] for summary in summaries]
    partials = [_map_output(output_id) for output_id in output_ids]
    loaded = time.monotonic()
    run_key = (run[0], parse_slot(run[1])) if run else None
    summary = reduce_and_store(job, partials, write=write, run=run_key)
    summary["load_seconds"] = round(loaded - started, 3)
    summary["map_seconds"] = max((s["seconds"] for s in summaries), default=0.0)
    summary["intermediate_records"] = sum(s["records"] for s in summaries)
    for output_id in output_ids:
        AsyncResult(output_id, app=app).forget()
    log.info("%s reduce: %s", name, summary)
    return summary


def _map_output(output_id: str) -> Any:
    """One map's stored output."""
    meta = app.backend.get_task_meta(output_id)
    if meta["status"] != "SUCCESS":
        raise RuntimeError(f"map output {output_id} is missing ({meta['status']})")
    return meta["result"]


def launch(
    name: str,
    partitions: int | None = None,
    *,
    source: str | None = None,
    write: bool = True,
    run: tuple[str, datetime] | None = None,
    queue: str | None = None,
) -> AsyncResult:
    """Start job ``name`` as a chord over the workers; returns the reduce's result handle.

    ``queue`` sends every task of the job to that Celery queue instead of the
    default one (a benchmark against a private set of workers).
    """
    n = partitions or default_partitions()
    options = {"queue": queue} if queue else {}
    maps = group(map_task.s(name, p, n, source).set(**options) for p in range(n))
    run_arg = [run[0], format_slot(run[1])] if run else None
    return chord(maps)(reduce_task.s(name, write, run_arg).set(**options))


def _periodic_launcher(name: str) -> Callable[[datetime], dict[str, Any]]:
    """The slot function of a job's periodic task: start the chord, return at once."""
    task_name = JOBS[name].periodic_task

    def start(slot: datetime) -> dict[str, Any]:
        result = launch(name, run=(task_name, slot))
        return {"chord": result.id, "partitions": default_partitions()}

    start.__name__ = f"start_{name}"
    start.__doc__ = f"Start the {name!r} map-reduce for ``slot``; the reduce marks the run finished."
    return start


suggested_periodic_task = periodic_task("mapreduce.suggested.periodic", atomic=False)(_periodic_launcher("suggested"))
follows_periodic_task = periodic_task("mapreduce.follows.periodic", atomic=False)(_periodic_launcher("follows"))
