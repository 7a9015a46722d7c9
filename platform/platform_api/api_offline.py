"""The platform API's off-line endpoints: clicks, exports, analytics, trending, suggestions.

A django-ninja ``Router`` mounted on the v1 API (``api.add_router`` in
:mod:`platform_api.api`), so it shares the service-token auth, the JSON error
handlers ("never a 500") and the ``/v1/openapi.json`` document.

How each endpoint maps to the post's "Off-line processing" section:

* ``POST /clicks`` (``202``): "Message queues": publish and return; the click
  batch consumer writes the click log later.
* ``POST /users/{id}/exports`` (``202``) then ``GET .../exports/{job}``: the
  first way of dividing work: "merely scheduling a task and inform your user
  that the task will occur offline, usually with a polling mechanism".
* ``GET /analytics/domains``: "Scheduling periodic tasks": the daily and
  hourly rollups ("create daily rollups of analytics").
* ``GET /trending``: a periodic ranking, recomputed every minute.
* ``GET /stories/{id}/suggestions`` and ``GET /users/{id}/suggestions``:
  "Map-reduce": "calculating suggested users in a social graph".
"""
from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from ninja import Router

from platform_api import clicks, idempotency, offline_reads, repository, rules
from platform_api.idempotency import idempotent
from platform_api.offline_schemas import (
    DEFAULT_SUGGESTIONS,
    ClickAcceptedOut,
    ClickIn,
    Day,
    DomainVisitsOut,
    ExportJobOut,
    StoryClicksOut,
    StorySuggestionsOut,
    SuggestionLimit,
    UserSuggestionsOut,
)
from platform_api.schemas import ErrorOut, StoryPageOut

# Auth and exception handlers are those of the NinjaAPI this router is mounted on.
router = Router()

# Answers every operation may give besides its success (as in api.py).
ERRORS: dict[int, Any] = {400: ErrorOut, 401: ErrorOut, 404: ErrorOut, 422: ErrorOut, 503: ErrorOut}
# Writes may also answer 409: their Idempotency-Key is still in use.
WRITE_ERRORS: dict[int, Any] = {**ERRORS, 409: ErrorOut}


def _user_or_404(user_id: int) -> None:
    """Raise :class:`repository.NotFound` unless ``user_id`` exists (object cache)."""
    if repository.get_user(user_id) is None:
        raise repository.NotFound(f"user {user_id} not found")


def _story_or_404(story_id: int) -> None:
    """Raise :class:`repository.NotFound` unless ``story_id`` exists (object cache)."""
    if repository.get_story(story_id) is None:
        raise repository.NotFound(f"story {story_id} not found")


# --------------------------------------------------------------------------
# Clicks
# --------------------------------------------------------------------------
@router.post("/clicks", response={202: ClickAcceptedOut, **WRITE_ERRORS}, tags=["clicks"])
# A click without a key needs only RabbitMQ, so it is taken while the primary is down.
@idempotent(needs_primary=False)
def record_click(request: HttpRequest, body: ClickIn) -> tuple[int, dict[str, Any]]:
    """Accept one click: published to RabbitMQ (or kept in the outbox), not yet counted.

    The answer is ``202 Accepted`` because the click log and the rollups are
    written off-line; this call never touches the click tables. With an
    ``Idempotency-Key`` the event's id comes from the key, so even a publish
    whose transaction then failed counts once when the client retries.
    """
    queued = clicks.record_click(
        body.story_id, body.user_id, body.referrer_domain, event_id=idempotency.event_id(request)
    )
    return 202, {"accepted": True, "queued": queued}


# --------------------------------------------------------------------------
# Export my data
# --------------------------------------------------------------------------
@router.post("/users/{user_id}/exports", response={202: ExportJobOut, **WRITE_ERRORS}, tags=["exports"])
@idempotent
def start_export(request: HttpRequest, user_id: rules.RowId) -> tuple[int, dict[str, Any]]:
    """Schedule an export of the user's stories, votes and follows; poll the job it returns."""
    _user_or_404(user_id)
    # Imported on use: the tasks package pulls in the Celery app, which this
    # module's other endpoints (and the unit tests' API probe) do not need.
    from platform_api.tasks.exports import start_export as schedule_export

    job = schedule_export(user_id)
    return 202, offline_reads.export_job_dict(job)


@router.get("/users/{user_id}/exports/{job_id}", response={200: ExportJobOut, **ERRORS}, tags=["exports"])
def get_export(request: HttpRequest, user_id: rules.RowId, job_id: uuid.UUID) -> dict[str, Any]:
    """The job's state and progress; 404 if it is not this user's job."""
    return offline_reads.export_job(user_id, job_id)


@router.get(
    "/users/{user_id}/exports/{job_id}/download",
    response={200: dict[str, Any], 409: ErrorOut, **ERRORS},
    tags=["exports"],
)
def download_export(request: HttpRequest, user_id: rules.RowId, job_id: uuid.UUID) -> HttpResponse:
    """The finished export as a JSON document; 409 while the job is not done."""
    document = offline_reads.export_document(user_id, job_id)
    # Sent as stored: the document is the task's output, not an API object,
    # so it is not re-validated against a schema.
    return JsonResponse(document, safe=False)


# --------------------------------------------------------------------------
# Analytics, trending, suggestions: precalculated results
# --------------------------------------------------------------------------
@router.get("/analytics/domains", response={200: DomainVisitsOut, **ERRORS}, tags=["analytics"])
def domain_visits(request: HttpRequest, day: Day | None = None) -> dict[str, Any]:
    """Visits per referring domain and per hour for one UTC day (today by default).

    From the rollups, so today's figures are partial: they grow as the periodic
    tasks run.
    """
    return offline_reads.domain_visits(day or datetime.now(UTC).date())


@router.get("/trending", response={200: StoryPageOut, **ERRORS}, tags=["stories"])
def trending(request: HttpRequest, page: rules.PageNumber = 1) -> dict[str, Any]:
    """A page of trending stories, as ranked by the last periodic run."""
    return offline_reads.trending_page(page)


@router.get("/stories/{story_id}/clicks", response={200: StoryClicksOut, **ERRORS}, tags=["stories"])
def story_clicks(request: HttpRequest, story_id: rules.RowId) -> dict[str, Any]:
    """How many clicks the click log holds for a story (counted off-line, so a moment behind)."""
    _story_or_404(story_id)
    return offline_reads.story_clicks(story_id)


@router.get("/stories/{story_id}/suggestions", response={200: StorySuggestionsOut, **ERRORS}, tags=["stories"])
def story_suggestions(
    request: HttpRequest, story_id: rules.RowId, limit: SuggestionLimit = DEFAULT_SUGGESTIONS
) -> dict[str, Any]:
    """Stories that people who clicked this one also clicked (the map-reduce index)."""
    _story_or_404(story_id)
    return {"items": offline_reads.story_suggestions(story_id, limit)}


@router.get("/users/{user_id}/suggestions", response={200: UserSuggestionsOut, **ERRORS}, tags=["follows"])
def follow_suggestions(
    request: HttpRequest, user_id: rules.RowId, limit: SuggestionLimit = DEFAULT_SUGGESTIONS
) -> dict[str, Any]:
    """People the user may follow: friends of friends not yet followed (the map-reduce index)."""
    _user_or_404(user_id)
    return {"items": offline_reads.follow_suggestions(user_id, limit)}
