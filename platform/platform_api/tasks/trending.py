"""The trending list, recomputed every ``TRENDING_INTERVAL`` seconds.

The post's "Off-line processing" ("it needs to occur periodically") and
"Caching" (precalculated results): a ranking that would cost a scan of the
click log per page view is computed once a minute by a worker, stored in
``trending_stories``, and read by requests through the cache.

Score of a story as of the slot: every click in the last hour counts 1 and
every vote 2, each halved for every :data:`HALF_LIFE` of age, so a story
climbing now beats one that peaked fifty minutes ago.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.db import connections

from platform_api import cache, cache_keys
from platform_api.tasks.periodic import periodic_task

log = logging.getLogger(__name__)
WRITE_DB = "default"

WINDOW = timedelta(hours=1)
HALF_LIFE = timedelta(minutes=30)
CLICK_WEIGHT = 1.0
VOTE_WEIGHT = 2.0
SIZE = 100  # stories kept in the ranking (the page shows 30 per page)
# Serialises replacements of the ranking (pg_advisory_xact_lock), so that a
# late run for an older slot can never overwrite a newer ranking.
LOCK_KEY = 0x5CA1E7

SCORE_SQL = """
WITH events AS (
    SELECT story_id, %(click_weight)s::float8 AS weight, clicked_at AS at
    FROM clicks WHERE clicked_at > %(since)s AND clicked_at <= %(as_of)s
    UNION ALL
    SELECT story_id, %(vote_weight)s::float8, created_at
    FROM votes WHERE created_at > %(since)s AND created_at <= %(as_of)s
)
SELECT story_id,
       sum(weight * power(0.5, extract(epoch FROM %(as_of)s - at) / %(half_life)s)) AS score
FROM events
GROUP BY story_id
ORDER BY score DESC, story_id
LIMIT %(size)s
"""


def trending_scores(as_of: datetime) -> list[tuple[int, float]]:
    """(story id, score) of the :data:`SIZE` best stories as of ``as_of``, best first."""
    params = {
        "since": as_of - WINDOW,
        "as_of": as_of,
        "click_weight": CLICK_WEIGHT,
        "vote_weight": VOTE_WEIGHT,
        "half_life": HALF_LIFE.total_seconds(),
        "size": SIZE,
    }
    with connections[WRITE_DB].cursor() as cursor:
        cursor.execute(SCORE_SQL, params)
        return [(story_id, float(score)) for story_id, score in cursor.fetchall()]


def recompute_trending(slot: datetime) -> dict[str, Any]:
    """Replace the ranking with the one as of ``slot``, in the caller's transaction.

    Skipped if the stored ranking is already for a later slot (this run was
    delayed, e.g. redelivered after a worker died).
    """
    with connections[WRITE_DB].cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [LOCK_KEY])
        cursor.execute("SELECT max(slot) FROM trending_stories")
        (stored,) = cursor.fetchone()
        if stored is not None and stored > slot:
            log.info("trending for %s superseded by the stored ranking for %s", slot, stored)
            return {"stories": 0, "superseded_by": stored.isoformat()}
        scores = trending_scores(slot)
        cursor.execute("DELETE FROM trending_stories")
        cursor.executemany(
            "INSERT INTO trending_stories (story_id, score, rank, slot) VALUES (%s, %s, %s, %s)",
            [(story_id, score, rank, slot) for rank, (story_id, score) in enumerate(scores, start=1)],
        )
    cache.bump_generations_on_commit([cache_keys.TRENDING_GENERATION])
    top = scores[0][0] if scores else None
    return {"stories": len(scores), "top_story": top}


recompute_trending_task = periodic_task("trending.recompute")(recompute_trending)
