"""The platform's off-line endpoints without services: clicks, exports, analytics, trending, suggestions.

The real django-ninja API runs in a child process under the platform's own
settings (``platform_offline_probe.py`` through ``platform_support.run_probe``),
with an unreachable database, broker and data cache. The cache-key checks run
in this process: ``cache_keys`` has no Django imports that need settings.
"""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.unit.platform_support import ensure_platform_importable, run_probe

ensure_platform_importable()

from platform_api import cache_keys as ck  # noqa: E402

PROBE = Path(__file__).resolve().parent / "platform_offline_probe.py"
JOB = "12345678-1234-5678-1234-567812345678"


@pytest.fixture(scope="module")
def probe() -> dict[str, Any]:
    """One child process answers every case (a couple of seconds)."""
    return run_probe(PROBE)


def _case(probe: dict[str, Any], name: str) -> tuple[int, Any]:
    status, body = probe["cases"][name]
    return status, body


# --- POST /v1/clicks ------------------------------------------------------------------


def test_clicks_need_the_service_token(probe: dict[str, Any]) -> None:
    assert _case(probe, "click_no_token") == (401, {"detail": "Unauthorized"})


@pytest.mark.parametrize(
    ("case", "field"),
    [
        ("click_story_zero", "story_id"),
        ("click_story_text", "story_id"),
        ("click_no_story", "story_id"),
        ("click_user_zero", "user_id"),
        ("click_domain_html", "referrer_domain"),
        ("click_domain_space", "referrer_domain"),
        ("click_domain_url", "referrer_domain"),
        ("click_domain_long", "referrer_domain"),
    ],
)
def test_bad_clicks_are_422_naming_the_field(probe: dict[str, Any], case: str, field: str) -> None:
    status, body = _case(probe, case)
    assert status == 422
    assert [error["loc"][-1] for error in body["detail"]] == [field]


def test_an_unparseable_click_is_a_400(probe: dict[str, Any]) -> None:
    assert _case(probe, "click_not_json") == (400, {"detail": "Cannot parse request body"})


def test_a_click_is_published_with_a_fresh_event_id_and_the_time_of_the_click(probe: dict[str, Any]) -> None:
    assert _case(probe, "click_ok") == (202, {"accepted": True, "queued": "broker"})
    first = probe["cases"]["published"][0]
    assert first["routing_key"] == "click"
    payload = first["payload"]
    # The referrer is normalised (lower case, no trailing dot) before it is published.
    assert {k: payload[k] for k in ("story_id", "user_id", "referrer_domain")} == {
        "story_id": 1,
        "user_id": 7,
        "referrer_domain": "news.example.org",
    }
    # The consumer deduplicates on event_id, so it must be a UUID and the message id.
    assert first["message_id"] == payload["event_id"] == str(uuid.UUID(payload["event_id"]))
    clicked_at = datetime.fromisoformat(payload["clicked_at"])
    assert clicked_at.utcoffset() == timedelta(0)
    assert abs(datetime.fromisoformat(probe["today"]) - clicked_at.replace(tzinfo=None)) < timedelta(days=2)


def test_anonymous_direct_clicks_and_ipv6_referrers_are_accepted(probe: dict[str, Any]) -> None:
    assert _case(probe, "click_anonymous_direct")[0] == 202
    assert _case(probe, "click_ipv6")[0] == 202
    payloads = [p["payload"] for p in probe["cases"]["published"]]
    assert len(payloads) == 3, "one message per accepted click, none for the refused ones"
    assert (payloads[1]["user_id"], payloads[1]["referrer_domain"]) == (None, "")
    assert payloads[2]["referrer_domain"] == "::1"
    assert len({p["event_id"] for p in payloads}) == 3


def test_a_click_on_an_unknown_story_is_a_404_and_publishes_nothing(probe: dict[str, Any]) -> None:
    assert _case(probe, "click_unknown_story") == (404, {"detail": "story 2 not found"})
    assert all(p["payload"]["story_id"] == 1 for p in probe["cases"]["published"])


def test_a_click_kept_in_the_outbox_is_still_accepted(probe: dict[str, Any]) -> None:
    assert _case(probe, "click_outbox") == (202, {"accepted": True, "queued": "outbox"})


def test_a_click_with_neither_broker_nor_database_is_a_503(probe: dict[str, Any]) -> None:
    status, body = _case(probe, "click_all_down")
    assert status == 503 and "database" in body["detail"]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("", ""),
        ("  ", ""),
        ("Example.COM", "example.com"),
        ("example.com.", "example.com"),
        ("127.0.0.1", "127.0.0.1"),
        ("::1", "::1"),
        ("xn--bcher-kva.example", "xn--bcher-kva.example"),
    ],
)
def test_referrer_domains_are_normalised(probe: dict[str, Any], raw: str, expected: str) -> None:
    assert probe["rules"][raw] == expected


@pytest.mark.parametrize("raw", ["a..b", ".example", "ex ample", "exämple.de", "a" * 256, "host:8080", "<b>"])
def test_referrer_domains_that_are_not_hosts_are_refused(probe: dict[str, Any], raw: str) -> None:
    assert probe["rules"][raw].startswith("ValueError")


# --- Exports ---------------------------------------------------------------------------


def test_starting_an_export_schedules_it_and_answers_202_with_the_job(probe: dict[str, Any]) -> None:
    status, body = _case(probe, "start_export")
    assert status == 202
    assert body == {"id": JOB, "state": "pending", "progress": 0, "created_at": "2024-05-06T07:08:09Z", "finished_at": None}
    assert probe["cases"]["started"] == [1], "scheduled once, and not for the unknown user"
    assert _case(probe, "start_export_unknown_user") == (404, {"detail": "user 3 not found"})


def test_a_job_shows_state_and_progress_and_downloads_only_when_done(probe: dict[str, Any]) -> None:
    status, body = _case(probe, "job_running")
    assert status == 200 and (body["state"], body["progress"], body["finished_at"]) == ("running", 40, None)
    status, body = _case(probe, "download_running")
    assert status == 409 and "running" in body["detail"]
    status, body = _case(probe, "job_done")
    assert status == 200 and (body["state"], body["progress"]) == ("done", 100)
    assert "result" not in body, "the document is only sent by the download"
    assert _case(probe, "download_done") == (200, {"user": {"username": "alice"}, "stories": []})


@pytest.mark.parametrize("case", ["job_other_user", "download_other_user"])
def test_another_users_job_is_a_404(probe: dict[str, Any], case: str) -> None:
    assert _case(probe, case) == (404, {"detail": f"export {JOB} not found"})


@pytest.mark.parametrize(("case", "field"), [("export_user_zero", "user_id"), ("export_bad_job", "job_id")])
def test_bad_export_paths_are_422(probe: dict[str, Any], case: str, field: str) -> None:
    status, body = _case(probe, case)
    assert status == 422 and body["detail"][0]["loc"][-1] == field


# --- Analytics, trending, suggestions --------------------------------------------------


@pytest.mark.parametrize(
    "case", ["day_bad_month", "day_feb_30", "day_word", "day_timestamp", "day_too_late", "day_too_early"]
)
def test_bad_days_are_422(probe: dict[str, Any], case: str) -> None:
    status, body = _case(probe, case)
    assert status == 422 and body["detail"][0]["loc"] == ["query", "day"]


def test_domain_visits_are_read_for_the_day_asked_or_today(probe: dict[str, Any]) -> None:
    status, body = _case(probe, "day_ok")
    assert status == 200
    assert (body["day"], body["total"], body["domains"]) == ("2024-05-06", 3, [{"domain": "", "visits": 3}])
    assert [h["hour"] for h in body["hours"]] == list(range(24))
    assert _case(probe, "today_ok")[1]["day"] == probe["today"]
    assert probe["cases"]["fetched_days"] == ["2024-05-06", probe["today"]]


@pytest.mark.parametrize(
    ("case", "field"),
    [
        ("trending_page_zero", "page"),
        ("story_suggestions_limit_zero", "limit"),
        ("story_suggestions_limit_big", "limit"),
        ("user_suggestions_bad_id", "user_id"),
    ],
)
def test_bad_list_parameters_are_422(probe: dict[str, Any], case: str, field: str) -> None:
    status, body = _case(probe, case)
    assert status == 422 and body["detail"][0]["loc"][-1] == field


@pytest.mark.parametrize(
    "case",
    [
        "export_db_down",
        "download_db_down",
        "start_export_db_down",
        "day_db_down",
        "today_db_down",
        "trending_db_down",
        "story_suggestions_db_down",
        "user_suggestions_db_down",
    ],
)
def test_an_unreachable_database_is_a_503_not_a_500(probe: dict[str, Any], case: str) -> None:
    status, body = _case(probe, case)
    assert status == 503 and "database" in body["detail"]


# --- Cache keys of the precalculated lists ---------------------------------------------

GENS = {
    ck.TRENDING_GENERATION: 1,
    ck.SUGGESTIONS_GENERATION: 2,
    ck.DOMAIN_VISITS_GENERATION: 3,
    ck.user_follows_generation(7): 4,
    ck.user_follows_generation(8): 5,
}


def _bumped(name: str) -> dict[str, int]:
    return {**GENS, name: GENS[name] + 1}


def test_offline_list_keys_never_collide() -> None:
    keys = {
        ck.trending_cache_key(1, GENS),
        ck.trending_cache_key(2, GENS),
        ck.suggested_stories_cache_key(7, GENS),
        ck.suggested_stories_cache_key(8, GENS),
        ck.follow_suggestions_cache_key(7, GENS),
        ck.domain_visits_cache_key("2024-05-06", GENS),
        ck.domain_visits_cache_key("2024-05-07", GENS),
    }
    assert len(keys) == 7


def test_each_task_run_moves_only_its_own_lists() -> None:
    trending = _bumped(ck.TRENDING_GENERATION)
    assert ck.trending_cache_key(1, trending) != ck.trending_cache_key(1, GENS)
    assert ck.suggested_stories_cache_key(7, trending) == ck.suggested_stories_cache_key(7, GENS)
    suggestions = _bumped(ck.SUGGESTIONS_GENERATION)
    assert ck.suggested_stories_cache_key(7, suggestions) != ck.suggested_stories_cache_key(7, GENS)
    assert ck.follow_suggestions_cache_key(7, suggestions) != ck.follow_suggestions_cache_key(7, GENS)
    assert ck.trending_cache_key(1, suggestions) == ck.trending_cache_key(1, GENS)
    rollup = _bumped(ck.DOMAIN_VISITS_GENERATION)
    assert ck.domain_visits_cache_key("2024-05-06", rollup) != ck.domain_visits_cache_key("2024-05-06", GENS)


def test_following_someone_refreshes_only_that_users_suggestions() -> None:
    mine = _bumped(ck.user_follows_generation(7))
    assert ck.follow_suggestions_cache_key(7, mine) != ck.follow_suggestions_cache_key(7, GENS)
    other = _bumped(ck.user_follows_generation(8))
    assert ck.follow_suggestions_cache_key(7, other) == ck.follow_suggestions_cache_key(7, GENS)
