"""The daily purge of old clicks: the post's invalidation-safe bulk delete.

The post's "Cache invalidation" warns that "modifications to unknown number of
elements (e.g. deleting all objects created more than a week ago)" are where
caches go stale, and gives the remedy used here: "instead of ``DELETE FROM a
WHERE...``, retrieve all the items which match the criteria, invalidate the
corresponding cache rows and then delete the rows by their primary key
explicitly".

So, in batches of :data:`BATCH` clicks older than ``CLICK_RETENTION_DAYS``:
select their ids and stories, delete the cache entries built from them (each
story's click count), delete the rows by primary key, and delete the cache
entries once more after commit (a read between the first invalidation and the
commit could have refilled one from rows not yet deleted). The rollups in
``domain_visits`` stay: that is what precalculating them was for.

Also trimmed: published outbox events older than a day, the record of
periodic runs older than a month (a slot that old will never fire again), and
idempotency keys older than a day (``IDEMPOTENCY_KEYS_KEEP``): a client retries
a write within seconds, so a key only has to outlive any sensible retry, and
the purge at 00:20 deletes only keys older than the day before, so every key
is honoured for at least 24 hours.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any, Sequence

from django.conf import settings
from django.db import connections, transaction

from platform_api import cache, cache_keys
from platform_api.tasks.periodic import periodic_task

log = logging.getLogger(__name__)
WRITE_DB = "default"
BATCH = 5000
OUTBOX_KEEP = timedelta(days=1)
RUNS_KEEP = timedelta(days=31)
IDEMPOTENCY_KEYS_KEEP = timedelta(hours=24)

SELECT_BATCH_SQL = "SELECT id, story_id FROM clicks WHERE clicked_at < %s ORDER BY id LIMIT %s"
DELETE_BY_ID_SQL = "DELETE FROM clicks WHERE id = ANY(%s)"


def _invalidate(story_ids: Sequence[int]) -> None:
    """Delete the cached click count of each story (no-op with the cache off)."""
    if cache.enabled() and story_ids:
        cache.delete([cache_keys.story_clicks_cache_key(story_id) for story_id in story_ids])


def purge_clicks_before(cutoff: datetime, batch: int = BATCH) -> int:
    """Delete every click before ``cutoff``, batch by batch; return how many.

    Runs in the caller's transaction: each deleted batch is invisible to the
    next select, and nothing is gone until the whole purge commits.
    """
    deleted = 0
    with connections[WRITE_DB].cursor() as cursor:
        while True:
            cursor.execute(SELECT_BATCH_SQL, [cutoff, batch])
            rows = cursor.fetchall()
            if not rows:
                return deleted
            ids = [row[0] for row in rows]
            stories = sorted({row[1] for row in rows})
            _invalidate(stories)
            cursor.execute(DELETE_BY_ID_SQL, [ids])
            deleted += cursor.rowcount
            transaction.on_commit(lambda stories=stories: _invalidate(stories), using=WRITE_DB)
            log.info("purge: deleted %d clicks of %d stories (before %s)", len(ids), len(stories), cutoff)


def purge_idempotency_keys_before(cutoff: datetime) -> int:
    """Delete the idempotency keys created before ``cutoff``; return how many.

    A plain ``DELETE``: nothing caches the keys, and the ``created_at`` index
    makes it one range scan.
    """
    with connections[WRITE_DB].cursor() as cursor:
        cursor.execute("DELETE FROM idempotency_keys WHERE created_at < %s", [cutoff])
        return cursor.rowcount


def purge(slot: datetime) -> dict[str, Any]:
    """The purge for the day starting at ``slot``."""
    cutoff = slot - timedelta(days=int(getattr(settings, "CLICK_RETENTION_DAYS", 30)))
    clicks = purge_clicks_before(cutoff)
    with connections[WRITE_DB].cursor() as cursor:
        cursor.execute(
            "DELETE FROM outbox_events WHERE published_at IS NOT NULL AND published_at < %s", [slot - OUTBOX_KEEP]
        )
        outbox = cursor.rowcount
        cursor.execute("DELETE FROM periodic_runs WHERE slot < %s", [slot - RUNS_KEEP])
        runs = cursor.rowcount
    keys = purge_idempotency_keys_before(slot - IDEMPOTENCY_KEYS_KEEP)
    return {
        "clicks": clicks,
        "cutoff": cutoff.isoformat(),
        "outbox_events": outbox,
        "periodic_runs": runs,
        "idempotency_keys": keys,
    }


purge_task = periodic_task("purge.clicks")(purge)
