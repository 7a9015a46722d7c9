"""Exercise the platform's off-line endpoints in a process of its own, with no services.

Run by ``test_platform_api_offline.py`` (through ``platform_support.run_probe``)
under the platform's settings, with an unreachable database, broker and data
cache. Two kinds of case:

* unpatched: input that must be refused is refused before any query or
  publish; anything that reaches the database is a 503, never a 500;
* patched: the few functions that would need PostgreSQL (a story lookup, an
  export job) are replaced by fakes, and the broker by a recorder, to check
  what the endpoints do with what they get, including the exact click event
  that is published.

Prints one JSON line: ``{"cases": {name: [status, body]}, ...}``.
"""
from __future__ import annotations

import json
import sys
import types
import uuid
from datetime import UTC, datetime
from typing import Any

import django

django.setup()

from ninja.testing import TestClient  # noqa: E402

from platform_api import clicks, offline_reads, repository  # noqa: E402
from platform_api.api import api  # noqa: E402
from platform_api.messaging import publisher  # noqa: E402
from platform_api.models import ExportJob  # noqa: E402
from platform_api.offline_schemas import check_referrer_domain  # noqa: E402
from platform_probe import call  # noqa: E402  (same folder: the probes share one request helper)

AUTH = {"Authorization": "Bearer unit-test-token"}
JOB = uuid.UUID("12345678-1234-5678-1234-567812345678")
WHEN = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)


def unpatched_cases(client: TestClient) -> dict[str, list[Any]]:
    """Validation and outage answers of the real code."""
    post = lambda body: call(client, "post", "/clicks", json=body, headers=AUTH)  # noqa: E731
    get = lambda path: call(client, "get", path, headers=AUTH)  # noqa: E731
    return {
        "click_no_token": call(client, "post", "/clicks", json={"story_id": 1}),
        "click_story_zero": post({"story_id": 0, "referrer_domain": ""}),
        "click_story_text": post({"story_id": "abc"}),
        "click_no_story": post({"referrer_domain": "example.org"}),
        "click_user_zero": post({"story_id": 1, "user_id": 0}),
        "click_domain_html": post({"story_id": 1, "referrer_domain": "<script>x</script>"}),
        "click_domain_space": post({"story_id": 1, "referrer_domain": "a b.example"}),
        "click_domain_url": post({"story_id": 1, "referrer_domain": "https://example.org/"}),
        "click_domain_long": post({"story_id": 1, "referrer_domain": "a" * 256}),
        "click_not_json": call(client, "post", "/clicks", body="{nope", headers=AUTH),
        # Broker down (nothing on port 9) and database down: the outbox cannot
        # take the event either, so the click is refused with a 503.
        "click_all_down": post({"story_id": 1}),
        "export_user_zero": call(client, "post", "/users/0/exports", headers=AUTH),
        "export_bad_job": get("/users/1/exports/not-a-uuid"),
        "export_db_down": get(f"/users/1/exports/{JOB}"),
        "download_db_down": get(f"/users/1/exports/{JOB}/download"),
        "start_export_db_down": call(client, "post", "/users/1/exports", headers=AUTH),
        "day_bad_month": get("/analytics/domains?day=2024-13-01"),
        "day_feb_30": get("/analytics/domains?day=2024-02-30"),
        "day_word": get("/analytics/domains?day=yesterday"),
        "day_timestamp": get("/analytics/domains?day=1700000000"),
        "day_too_late": get("/analytics/domains?day=9999-12-31"),
        "day_too_early": get("/analytics/domains?day=1969-12-31"),
        "day_db_down": get("/analytics/domains?day=2024-05-06"),
        "today_db_down": get("/analytics/domains"),
        "trending_page_zero": get("/trending?page=0"),
        "trending_db_down": get("/trending"),
        "story_suggestions_limit_zero": get("/stories/1/suggestions?limit=0"),
        "story_suggestions_limit_big": get("/stories/1/suggestions?limit=21"),
        "story_suggestions_db_down": get("/stories/1/suggestions"),
        "user_suggestions_bad_id": get("/users/0/suggestions"),
        "user_suggestions_db_down": get("/users/1/suggestions"),
    }


def _fake_story(story_id: int) -> dict[str, Any] | None:
    """Story 1 exists; no other does."""
    return {"id": 1, "version": 1} if story_id == 1 else None


def _fake_job(user_id: int, job_id: uuid.UUID, *, with_document: bool = False) -> ExportJob:
    """User 1 owns JOB (done, or as the job state override says); nobody owns anything else."""
    if user_id != 1 or job_id != JOB:
        raise repository.NotFound(f"export {job_id} not found")
    return ExportJob(
        id=JOB, user_id=1, state=FAKE_JOB_STATE["state"], progress=FAKE_JOB_STATE["progress"],
        result={"user": {"username": "alice"}, "stories": []} if FAKE_JOB_STATE["state"] == "done" else None,
        created_at=WHEN, finished_at=WHEN if FAKE_JOB_STATE["state"] == "done" else None,
    )


FAKE_JOB_STATE: dict[str, Any] = {"state": "running", "progress": 40}


def patched_cases(client: TestClient) -> dict[str, Any]:
    """The endpoints' own behaviour, with fakes where a database would be needed."""
    published: list[dict[str, Any]] = []

    def record(routing_key: str, payload: dict[str, Any], message_id: str | None = None) -> None:
        published.append({"routing_key": routing_key, "payload": payload, "message_id": message_id})

    repository.get_story = _fake_story  # type: ignore[assignment]
    repository.get_user = lambda user_id: {"id": user_id} if user_id in (1, 2) else None  # type: ignore[assignment]
    publisher.publish = record  # type: ignore[method-assign]
    post = lambda body: call(client, "post", "/clicks", json=body, headers=AUTH)  # noqa: E731
    get = lambda path: call(client, "get", path, headers=AUTH)  # noqa: E731

    cases: dict[str, Any] = {
        "click_ok": post({"story_id": 1, "user_id": 7, "referrer_domain": "News.Example.ORG."}),
        "click_anonymous_direct": post({"story_id": 1, "user_id": None}),
        "click_ipv6": post({"story_id": 1, "referrer_domain": "::1"}),
        "click_unknown_story": post({"story_id": 2, "referrer_domain": ""}),
    }
    cases["published"] = published
    # The broker is down but the outbox took the event: still accepted.
    clicks.events.publish_or_store = lambda routing_key, payload, event_id=None: False  # type: ignore[assignment]
    cases["click_outbox"] = post({"story_id": 1})

    offline_reads._owned_job = _fake_job  # type: ignore[assignment]
    cases["job_running"] = get(f"/users/1/exports/{JOB}")
    cases["download_running"] = get(f"/users/1/exports/{JOB}/download")
    cases["job_other_user"] = get(f"/users/2/exports/{JOB}")
    cases["download_other_user"] = get(f"/users/2/exports/{JOB}/download")
    FAKE_JOB_STATE.update(state="done", progress=100)
    cases["job_done"] = get(f"/users/1/exports/{JOB}")
    cases["download_done"] = get(f"/users/1/exports/{JOB}/download")

    # The Celery engineer's ``platform_api.tasks.exports.start_export`` creates
    # the row and enqueues the task; a stand-in records that it was asked.
    started: list[int] = []

    def start_export(user_id: int) -> ExportJob:
        started.append(user_id)
        return ExportJob(id=JOB, user_id=user_id, state="pending", progress=0, created_at=WHEN)

    sys.modules["platform_api.tasks.exports"] = types.SimpleNamespace(start_export=start_export)  # type: ignore[assignment]
    cases["start_export"] = call(client, "post", "/users/1/exports", headers=AUTH)
    cases["start_export_unknown_user"] = call(client, "post", "/users/3/exports", headers=AUTH)
    cases["started"] = started

    fetched: list[str] = []

    def fake_fetch(day: Any) -> dict[str, Any]:
        fetched.append(day.isoformat())
        return {"day": day, "total": 3, "domains": [{"domain": "", "visits": 3}],
                "hours": [{"hour": h, "visits": 3 if h == 7 else 0} for h in range(24)]}

    offline_reads._fetch_domain_visits = fake_fetch  # type: ignore[assignment]
    cases["day_ok"] = get("/analytics/domains?day=2024-05-06")
    cases["today_ok"] = get("/analytics/domains")
    cases["fetched_days"] = fetched
    return cases


def main() -> None:
    """Run every case and print the report."""
    # Through the whole API, not the router alone: auth and error handlers are the API's.
    client = TestClient(api)
    cases = unpatched_cases(client)
    # The "database down" cases above taught the primary probe an outage; the
    # patched cases play a healthy database, so the outage is over.
    from platform_api import primary

    primary.probe.reset()
    cases.update(patched_cases(client))
    rules = {
        value: _try(check_referrer_domain, value)
        for value in ["", "  ", "Example.COM", "example.com.", "127.0.0.1", "::1", "xn--bcher-kva.example",
                      "a..b", ".example", "ex ample", "exämple.de", "a" * 256, "host:8080", "<b>"]
    }
    print(json.dumps({"cases": cases, "rules": rules, "today": datetime.now(UTC).date().isoformat()}, default=str))


def _try(fn: Any, value: str) -> Any:
    try:
        return fn(value)
    except ValueError as exc:
        return f"ValueError: {exc}"


if __name__ == "__main__":
    main()
