"""Visits per referring domain per hour and per day: precalculated analytics.

The post's "Off-line processing" names this very job ("create daily rollups of
analytics"), and its "Caching" section is why: the analytics page reads a few
rows of ``domain_visits`` instead of counting the click log on every view.

Each rollup is one ``INSERT ... SELECT ... GROUP BY ... ON CONFLICT DO UPDATE``
over a time range, so re-running it for the same slot gives the same rows
(idempotent, besides the once-per-slot guard of :mod:`.periodic`):

* ``rollups.hour`` at five past each hour, for the previous hour;
* ``rollups.day`` just after midnight UTC, for the previous day;
* ``rollups.today`` every trending interval: the current day and hour so far,
  so today's figures are on the page without waiting for midnight.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connections

from platform_api import cache, cache_keys
from platform_api.tasks.periodic import periodic_task
from platform_api.tasks.slots import floor_time

log = logging.getLogger(__name__)
WRITE_DB = "default"
PERIOD_SECONDS = {"hour": 3600, "day": 86400}

# One statement: count the clicks of every slot in [start, end), upsert the
# counts, and delete rows of those slots whose domain no longer has clicks.
# ``date_trunc(unit, ts, 'UTC')`` buckets by UTC hours and days whatever the
# session's time zone. ``period`` is both the stored period and the unit.
ROLLUP_SQL = """
WITH counts AS (
    SELECT date_trunc(%(period)s, clicked_at, 'UTC') AS slot_start,
           referrer_domain AS domain,
           count(*) AS visits
    FROM clicks
    WHERE clicked_at >= %(start)s AND clicked_at < %(end)s
    GROUP BY 1, 2
), stale AS (
    DELETE FROM domain_visits d
    WHERE d.period = %(period)s AND d.slot_start >= %(start)s AND d.slot_start < %(end)s
      AND NOT EXISTS (SELECT 1 FROM counts c WHERE c.slot_start = d.slot_start AND c.domain = d.domain)
)
INSERT INTO domain_visits (period, slot_start, domain, visits)
SELECT %(period)s, slot_start, domain, visits FROM counts
ON CONFLICT (period, slot_start, domain) DO UPDATE SET visits = EXCLUDED.visits
"""


def retention_horizon(now: datetime) -> datetime:
    """Clicks before this may have been purged; a rollup must not start before it."""
    return now - timedelta(days=int(getattr(settings, "CLICK_RETENTION_DAYS", 30)))


def rollup(period: str, start: datetime, end: datetime, now: datetime | None = None) -> dict[str, Any]:
    """(Re)compute the ``period`` ("hour" or "day") rollups of every slot in [start, end).

    ``start`` and ``end`` must be slot boundaries. A range reaching back past
    the click retention is refused: the raw clicks may be gone, and recounting
    them would replace a correct rollup with a smaller one (the rollups are
    what outlives the purge).
    """
    if period not in PERIOD_SECONDS:
        raise ValueError(f"unknown period {period!r}")
    if floor_time(start, PERIOD_SECONDS[period]) != start or floor_time(end, PERIOD_SECONDS[period]) != end:
        raise ValueError(f"{start}..{end} is not a whole number of {period}s")
    now = now or datetime.now(start.tzinfo)
    if start < retention_horizon(now):
        log.warning("rollup %s %s..%s skipped: before the click retention horizon", period, start, end)
        return {"period": period, "start": start.isoformat(), "rows": 0, "skipped": "past retention"}
    with connections[WRITE_DB].cursor() as cursor:
        cursor.execute(ROLLUP_SQL, {"period": period, "start": start, "end": end})
        rows = cursor.rowcount
    cache.bump_generations_on_commit([cache_keys.DOMAIN_VISITS_GENERATION])
    return {"period": period, "start": start.isoformat(), "rows": rows}


def rollup_hour(slot: datetime) -> dict[str, Any]:
    """The hour starting at ``slot``."""
    return rollup("hour", slot, slot + timedelta(hours=1))


def rollup_day(slot: datetime) -> dict[str, Any]:
    """The UTC day starting at ``slot``."""
    return rollup("day", slot, slot + timedelta(days=1))


def rollup_today(slot: datetime) -> dict[str, Any]:
    """The day and the hour that contain ``slot``, so far."""
    hour = floor_time(slot, PERIOD_SECONDS["hour"])
    day = floor_time(slot, PERIOD_SECONDS["day"])
    return {"hour": rollup_hour(hour)["rows"], "day": rollup_day(day)["rows"]}


rollup_hour_task = periodic_task("rollups.hour")(rollup_hour)
rollup_day_task = periodic_task("rollups.day")(rollup_day)
rollup_today_task = periodic_task("rollups.today")(rollup_today)
