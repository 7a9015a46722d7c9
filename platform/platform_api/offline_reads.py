"""Reads of what off-line processing precalculated, and of export jobs.

The post's "Caching" section says the results worth caching are often
*precalculated* ones, and its "Off-line processing" section says where they
come from: periodic tasks ("daily rollups of analytics") and map-reduce jobs
("calculating suggested users in a social graph"). The Celery tasks in
``platform_api/tasks/`` write these tables; this module only reads them:

* :func:`domain_visits`: visits per referring domain and per hour of one day,
  from the ``domain_visits`` rollups;
* :func:`trending_page`: the trending list, from ``trending_stories``;
* :func:`story_suggestions` and :func:`follow_suggestions`: the map-reduce
  indexes ``suggested_stories`` and ``follow_suggestions``;
* :func:`export_job` and :func:`export_document`: the post's "schedule it and
  let the user poll" pattern, read back for the polling page.

Lists are cached as ids under generation keys (``cache.cached_list``), exactly
like the foundation's lists, and their objects come from the object cache
(``repository.get_stories`` / ``get_users``), so a vote shows up at once in a
cached trending page. The tasks bump the generations after each run commits.
"""
from __future__ import annotations

import functools
import uuid
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.db.models import Count, Max, Sum

from platform_api import cache, cache_keys, repository, rules
from platform_api.models import (
    Click, DomainVisits, ExportJob, Follow, FollowSuggestion, SuggestedStory, TrendingStory,
)

WRITE_DB = "default"
# The analytics page shows a domain table and a chart; a day with more
# referring domains than this (Referer headers are anyone's to set) keeps only
# the busiest ones in the answer, while ``total`` still counts them all.
MAX_DOMAINS = 100
# Ids kept per cached suggestion list; a request slices the first ``limit``.
SUGGESTION_IDS = 20


# --------------------------------------------------------------------------
# Analytics: the rollups (post, "Scheduling periodic tasks", "Caching")
# --------------------------------------------------------------------------
def day_bounds(day: date) -> tuple[datetime, datetime]:
    """The UTC start of ``day`` and of the next day: days are UTC days."""
    start = datetime.combine(day, time.min, tzinfo=UTC)
    return start, start + timedelta(days=1)


def domain_visits(day: date) -> dict[str, Any]:
    """``{day, total, domains, hours}`` for one UTC day, read through the cache.

    The soft TTL is short (60 s) because today's figures grow as the hourly
    rollups run; a rollup task may also bump the generation to show its run at once.
    """
    key_fn = functools.partial(cache_keys.domain_visits_cache_key, day.isoformat())
    return cache.cached_list(
        key_fn,
        [cache_keys.DOMAIN_VISITS_GENERATION],
        lambda: _fetch_domain_visits(day),
        cache_keys.DOMAIN_VISITS_SOFT_TTL,
    )


def _fetch_domain_visits(day: date) -> dict[str, Any]:
    """Read one day's rollups from PostgreSQL (no cache)."""
    start, end = day_bounds(day)
    hour_rows = DomainVisits.objects.filter(period=DomainVisits.HOUR, slot_start__gte=start, slot_start__lt=end)
    day_rows = DomainVisits.objects.filter(period=DomainVisits.DAY, slot_start=start)
    # The day rollup is the answer once it exists. Before it does (today,
    # until the daily task has run), the hourly rollups already summed so far
    # give the same per-domain figures for the hours they cover.
    per_domain = day_rows if day_rows.exists() else hour_rows
    by_domain = per_domain.values("domain").annotate(total=Sum("visits"))
    top = by_domain.order_by("-total", "domain")[:MAX_DOMAINS]
    total = per_domain.aggregate(total=Sum("visits"))["total"] or 0
    per_hour = {
        row["slot_start"].astimezone(UTC).hour: row["total"]
        for row in hour_rows.values("slot_start").annotate(total=Sum("visits")).order_by()
    }
    return {
        "day": day,
        "total": int(total),
        "domains": [{"domain": row["domain"], "visits": int(row["total"])} for row in top],
        # Every hour, zeros included, so a chart's axis never depends on the data.
        "hours": [{"hour": hour, "visits": int(per_hour.get(hour, 0))} for hour in range(24)],
    }


# --------------------------------------------------------------------------
# Trending (a periodic task ranks, requests only read)
# --------------------------------------------------------------------------
def trending_page(page: int) -> dict[str, Any]:
    """A ``StoryPage`` of the trending list, by the rank the last run gave."""
    offset, limit = rules.page_window(page)
    query = TrendingStory.objects.order_by("rank", "story_id").values_list("story_id", flat=True)

    def fetch() -> list[int]:
        return list(query[offset : offset + limit])

    key_fn = functools.partial(cache_keys.trending_cache_key, page)
    ids = cache.cached_list(key_fn, [cache_keys.TRENDING_GENERATION], fetch, cache_keys.TRENDING_SOFT_TTL)
    ids, has_next = rules.split_page(ids)
    return {"items": repository.get_stories(ids), "page": page, "has_next": has_next}


# --------------------------------------------------------------------------
# Suggestions (post, "Map-reduce": pre-generated indexes)
# --------------------------------------------------------------------------
def click_counts(story_ids: list[int], using: str | None = None) -> dict[int, dict[str, Any]]:
    """Each story's click count as a cacheable object, straight from the click log.

    Its ``version`` is the story's newest click id: the click consumer writes
    counts through after each batch, and ids only grow, so a late
    write-through can never replace a newer count. A purge lowers the count
    without a newer id, which is why the purge deletes the entry instead.
    """
    rows = Click.objects.using(using) if using else Click.objects
    found = {
        row["story_id"]: {"story_id": row["story_id"], "clicks": row["clicks"], "version": row["newest"]}
        for row in rows.filter(story_id__in=story_ids)
        .values("story_id")
        .annotate(clicks=Count("id"), newest=Max("id"))
    }
    return {sid: found.get(sid, {"story_id": sid, "clicks": 0, "version": 0}) for sid in story_ids}


def story_clicks(story_id: int) -> dict[str, Any]:
    """How many times a story's link was clicked: read through the cache."""
    value = cache.read_through(
        cache_keys.story_clicks_cache_key(story_id), lambda: click_counts([story_id])[story_id]
    )
    return {"story_id": story_id, "clicks": value["clicks"] if value else 0}


def story_suggestions(story_id: int, limit: int) -> list[dict[str, Any]]:
    """Up to ``limit`` stories that people who clicked ``story_id`` also clicked."""

    def fetch() -> list[int]:
        query = (
            SuggestedStory.objects.filter(story_id=story_id)
            .exclude(suggested_id=story_id)
            .order_by("rank")
            .values_list("suggested_id", flat=True)
        )
        return list(query[:SUGGESTION_IDS])

    key_fn = functools.partial(cache_keys.suggested_stories_cache_key, story_id)
    ids = cache.cached_list(key_fn, [cache_keys.SUGGESTIONS_GENERATION], fetch, cache_keys.SUGGESTIONS_SOFT_TTL)
    # Stories deleted since the job ran are left out by get_stories.
    return repository.get_stories(ids[:limit])


def follow_suggestions(user_id: int, limit: int) -> list[dict[str, Any]]:
    """Up to ``limit`` people ``user_id`` may follow, as ``UserRef`` dicts.

    People the user has followed since the job ran are filtered out here, and
    the cache key includes the user's follows generation, so following someone
    from the list removes them from it on the next page view.
    """

    def fetch() -> list[int]:
        followed = Follow.objects.filter(follower_id=user_id).values("followee_id")
        query = (
            FollowSuggestion.objects.filter(user_id=user_id)
            .exclude(suggested_id=user_id)
            .exclude(suggested_id__in=followed)
            .order_by("rank")
            .values_list("suggested_id", flat=True)
        )
        return list(query[:SUGGESTION_IDS])

    key_fn = functools.partial(cache_keys.follow_suggestions_cache_key, user_id)
    depends_on = [cache_keys.SUGGESTIONS_GENERATION, cache_keys.user_follows_generation(user_id)]
    ids = cache.cached_list(key_fn, depends_on, fetch, cache_keys.SUGGESTIONS_SOFT_TTL)
    return [{"id": user["id"], "username": user["username"]} for user in repository.get_users(ids[:limit])]


# --------------------------------------------------------------------------
# Export jobs (post, "Message queues": schedule it and let the user poll)
# --------------------------------------------------------------------------
def export_job_dict(job: ExportJob) -> dict[str, Any]:
    """The public form of a job (``ExportJob`` in the API doc); never the document itself."""
    return {
        "id": job.id,
        "state": job.state,
        "progress": job.progress,
        "created_at": job.created_at,
        "finished_at": job.finished_at,
    }


def _owned_job(user_id: int, job_id: uuid.UUID, *, with_document: bool = False) -> ExportJob:
    """The job if it is ``user_id``'s, else :class:`repository.NotFound` (someone else's job too).

    Read on the primary, not the replica: the web tier asks for a job right
    after creating it, and a replica that has not caught up would answer 404.
    The job row is not cached either, because its state changes while it is polled.
    The document is only read when asked for: polls should not carry it.
    """
    query = ExportJob.objects.using(WRITE_DB).filter(id=job_id, user_id=user_id)
    job = (query if with_document else query.defer("result")).first()
    if job is None:
        raise repository.NotFound(f"export {job_id} not found")
    return job


def export_job(user_id: int, job_id: uuid.UUID) -> dict[str, Any]:
    """One of ``user_id``'s export jobs, for the polling page."""
    return export_job_dict(_owned_job(user_id, job_id))


def export_document(user_id: int, job_id: uuid.UUID) -> Any:
    """The finished export's JSON document; :class:`repository.Conflict` until it is done."""
    job = _owned_job(user_id, job_id, with_document=True)
    if job.state != ExportJob.DONE or job.result is None:
        raise repository.Conflict(f"export {job_id} is {job.state}, not ready to download")
    return job.result
