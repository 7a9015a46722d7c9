""""Export my data": schedule it and let the user poll.

The post's "Message queues", first pattern: "perform almost no work in the
consumer (merely scheduling a task) and inform your user that the task will
occur offline, usually with a polling mechanism to update the interface once
the task is complete". The request creates an ``export_jobs`` row and returns;
the Celery task builds the document; the page polls the row's ``state`` and
``progress``.

For the API (``platform_api.api_offline``):

* :func:`start_export` creates the job (or returns the user's unfinished
  one) and publishes the task after commit;
* :func:`export_status` reads a job's state for the polling page.

Nothing is lost and nothing runs twice at once:

* the job row is the durable record. If the broker is down when the task is
  published, the job stays ``pending`` and :func:`resend_stalled_exports`
  (periodic) publishes it again later;
* a copy of the task only works on a job it claims: a ``pending`` one, or a
  ``running`` one whose previous worker died (the message is then a
  redelivery or a retry). A duplicate of a running or finished job does
  nothing, so re-running a done job changes nothing.
"""
from __future__ import annotations

import logging
import time
import uuid
from datetime import timedelta
from typing import Any, Callable, Iterator

from celery import Task
from django.conf import settings
from django.db import OperationalError, connections, transaction
from django.utils import timezone

from platform_api.celery_app import app
from platform_api.models import ExportJob, Follow, Story, User, Vote

log = logging.getLogger(__name__)
WRITE_DB = "default"
READ_DB = "replica"
FORMAT = "scalestack-export/1"
CHUNK_ROWS = 200  # rows read per query; progress is saved after each
STALLED_AFTER = timedelta(seconds=60)  # a job still pending this long is published again
REUSE_UNFINISHED_FOR = timedelta(minutes=10)  # a new request within this joins the unfinished job

Row = dict[str, Any]


# --------------------------------------------------------------------------
# For the API
# --------------------------------------------------------------------------
def start_export(user_id: int) -> ExportJob:
    """Create an export job for ``user_id`` and queue its task once the row commits.

    If the user already has a job that is pending or running (and recent, so
    a job stuck by some failure cannot block them forever), that job is
    returned instead, so a double click does not export twice. A failure to
    reach the broker is logged, not raised: the job is committed and
    :func:`resend_stalled_exports` will publish it.
    """
    with transaction.atomic(using=WRITE_DB):
        unfinished = (
            ExportJob.objects.using(WRITE_DB)
            .defer("result")
            .filter(
                user_id=user_id,
                state__in=[ExportJob.PENDING, ExportJob.RUNNING],
                created_at__gte=timezone.now() - REUSE_UNFINISHED_FOR,
            )
            .order_by("-created_at")
            .first()
        )
        if unfinished is not None:
            return unfinished
        job = ExportJob.objects.using(WRITE_DB).create(id=uuid.uuid4(), user_id=user_id)
        transaction.on_commit(lambda: _publish(job.id), using=WRITE_DB)
    return job


def export_status(job_id: uuid.UUID | str) -> Row | None:
    """``{id, user_id, state, progress, error, created_at, finished_at}``, or ``None``.

    Read on the primary: the page polls right after the job was created, and
    the row changes while it is polled, so neither the replica nor the cache
    would do.
    """
    row = (
        ExportJob.objects.using(WRITE_DB)
        .filter(id=job_id)
        .values("id", "user_id", "state", "progress", "error", "created_at", "finished_at")
        .first()
    )
    return row


def _publish(job_id: uuid.UUID) -> bool:
    """Queue the export task; if the broker is unreachable, leave the job pending. Whether it was queued."""
    try:
        export_user_data.delay(str(job_id))
        return True
    except Exception as exc:  # kombu raises OperationalError; any failure leaves a pending job
        log.warning("export %s stays pending until the broker is back: %r", job_id, exc)
        return False


# --------------------------------------------------------------------------
# The task
# --------------------------------------------------------------------------
CLAIM_SQL = """
    UPDATE export_jobs SET state = 'running', progress = 0, error = ''
    WHERE id = %s AND (state = 'pending' OR (state = 'running' AND %s))
    RETURNING user_id
"""


@app.task(
    name="exports.export_user_data",
    bind=True,
    autoretry_for=(OperationalError,),
    retry_backoff=2,
    max_retries=5,
)
def export_user_data(self: Task, job_id: str, chunk_delay: float | None = None) -> Row:
    """Build the export document of one job, saving progress as it goes.

    ``chunk_delay`` (or the ``EXPORT_CHUNK_DELAY`` setting) sleeps between
    chunks: only for tests and demos that need to watch a job in progress.
    """
    takeover = bool((self.request.delivery_info or {}).get("redelivered")) or self.request.retries > 0
    with transaction.atomic(using=WRITE_DB), connections[WRITE_DB].cursor() as cursor:
        cursor.execute(CLAIM_SQL, [job_id, takeover])
        claimed = cursor.fetchone()
    if claimed is None:
        state = ExportJob.objects.using(WRITE_DB).filter(id=job_id).values_list("state", flat=True).first()
        log.info("export %s not claimed (state %s): another copy has it or it is finished", job_id, state)
        return {"job": job_id, "ran": False, "state": state}
    delay = float(getattr(settings, "EXPORT_CHUNK_DELAY", 0.0) if chunk_delay is None else chunk_delay)
    started = time.monotonic()
    try:
        document = build_document(claimed[0], lambda pct: _save_progress(job_id, pct), delay)
    except OperationalError:
        raise  # the database is unreachable: retried (the job stays running, a retry may take it over)
    except Exception as exc:
        log.exception("export %s failed", job_id)
        ExportJob.objects.using(WRITE_DB).filter(id=job_id).update(
            state=ExportJob.FAILED, error=f"{type(exc).__name__}: {exc}"[:2000], finished_at=timezone.now()
        )
        return {"job": job_id, "ran": True, "state": ExportJob.FAILED}
    ExportJob.objects.using(WRITE_DB).filter(id=job_id, state=ExportJob.RUNNING).update(
        state=ExportJob.DONE, progress=100, result=document, finished_at=timezone.now()
    )
    seconds = time.monotonic() - started
    counts = {key: len(document[key]) for key in ("stories", "votes", "following", "followers")}
    log.info("export %s of user %s done in %.2fs: %s", job_id, claimed[0], seconds, counts)
    return {"job": job_id, "ran": True, "state": ExportJob.DONE, "rows": counts}


def _save_progress(job_id: str, percent: int) -> None:
    """Store progress (committed at once, so the polling page sees it)."""
    ExportJob.objects.using(WRITE_DB).filter(id=job_id, state=ExportJob.RUNNING).update(progress=percent)


# --------------------------------------------------------------------------
# Building the document, in chunks
# --------------------------------------------------------------------------
def _chunks(query: Any, fields: tuple[str, ...], key: str = "id") -> Iterator[list[Row]]:
    """Rows of ``query`` in chunks of :data:`CHUNK_ROWS`, by keyset pagination on ``key``.

    Keyset (``WHERE id > last``) rather than OFFSET: each chunk is an index
    range scan however far into the user's data it is.
    """
    last = 0
    while True:
        rows = list(query.filter(**{f"{key}__gt": last}).order_by(key).values(key, *fields)[:CHUNK_ROWS])
        if not rows:
            return
        yield rows
        last = rows[-1][key]


def _section_queries(user_id: int) -> dict[str, tuple[Any, tuple[str, ...], Callable[[Row], Row]]]:
    """For each section of the document: its query, the fields read, and the row shape."""
    return {
        "stories": (
            Story.objects.using(READ_DB).filter(author_id=user_id),
            ("title", "url", "text", "votes", "created_at"),
            lambda r: {k: r[k] for k in ("id", "title", "url", "text", "votes")} | {"created_at": _iso(r["created_at"])},
        ),
        "votes": (
            Vote.objects.using(READ_DB).filter(user_id=user_id),
            ("story_id", "story__title", "created_at"),
            lambda r: {"story_id": r["story_id"], "story_title": r["story__title"], "voted_at": _iso(r["created_at"])},
        ),
        "following": (
            Follow.objects.using(READ_DB).filter(follower_id=user_id),
            ("followee_id", "followee__username", "created_at"),
            lambda r: {"user_id": r["followee_id"], "username": r["followee__username"], "since": _iso(r["created_at"])},
        ),
        "followers": (
            Follow.objects.using(READ_DB).filter(followee_id=user_id),
            ("follower_id", "follower__username", "created_at"),
            lambda r: {"user_id": r["follower_id"], "username": r["follower__username"], "since": _iso(r["created_at"])},
        ),
    }


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def progress_percent(done: int, total: int) -> int:
    """0-99 while rows remain (100 is only ever set with the finished document)."""
    if total <= 0:
        return 99
    return min(99, done * 100 // total)


def build_document(user_id: int, report: Callable[[int], None], chunk_delay: float = 0.0) -> Row:
    """The export document of ``user_id``: profile, stories, votes, following, followers.

    Reads the replica (the post's "dedicated slaves" for heavy reads), chunk
    by chunk, calling ``report(percent)`` after each chunk.
    """
    user = User.objects.using(READ_DB).filter(id=user_id).values(
        "id", "username", "date_joined", "karma", "followers_count", "following_count", "stories_count"
    ).first()
    if user is None:
        raise LookupError(f"user {user_id} does not exist")
    sections = _section_queries(user_id)
    total = sum(query.count() for query, _, _ in sections.values())
    document: Row = {
        "format": FORMAT,
        "generated_at": timezone.now().isoformat(),
        "user": user | {"date_joined": _iso(user["date_joined"])},
    }
    done = 0
    for name, (query, fields, shape) in sections.items():
        document[name] = []
        for chunk in _chunks(query, fields):
            document[name].extend(shape(row) for row in chunk)
            done += len(chunk)
            report(progress_percent(done, total))
            if chunk_delay:
                time.sleep(chunk_delay)
    return document


# --------------------------------------------------------------------------
# Nothing lost: jobs whose task never reached the broker
# --------------------------------------------------------------------------
@app.task(name="exports.resend_stalled", ignore_result=True)
def resend_stalled_exports() -> int:
    """Publish again the tasks of jobs pending for over :data:`STALLED_AFTER`.

    Such a job's task was never published (the broker was down) or is still
    queued behind others; a duplicate is harmless because only one copy can
    claim a pending job.
    """
    cutoff = timezone.now() - STALLED_AFTER
    ids = list(
        ExportJob.objects.using(WRITE_DB)
        .filter(state=ExportJob.PENDING, created_at__lt=cutoff)
        .values_list("id", flat=True)[:100]
    )
    published = 0
    for job_id in ids:
        if not _publish(job_id):
            break  # the broker is down: the next run will try again
        published += 1
    if published:
        log.info("re-published %d stalled export jobs", published)
    return published
