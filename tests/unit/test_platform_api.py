"""The platform API's contract without services: auth, validation, error shapes.

The real django-ninja API runs in a child process under the platform's own
settings (see ``platform_support.run_probe``), with an unreachable database
and the data cache off. Input that must be refused is refused before any
query; anything that does reach the database gets a 503, never a 500.
"""
from __future__ import annotations

from typing import Any

import pytest

from tests.unit.platform_support import run_probe

DOC_ENDPOINTS = {
    "/v1/healthz": ["get"],
    "/v1/users": ["post"],
    "/v1/sessions": ["post"],
    "/v1/users/{username}": ["get"],
    "/v1/users/{username}/stories": ["get"],
    "/v1/users/{username}/followers": ["get"],
    "/v1/users/{username}/following": ["get"],
    "/v1/users/{user_id}/following/{other_id}": ["delete", "get", "put"],
    "/v1/users/{user_id}/avatar": ["put"],
    "/v1/users/{user_id}/home": ["get"],
    "/v1/stories": ["get", "post"],
    "/v1/stories/{story_id}": ["get"],
    "/v1/stories/{story_id}/votes": ["post"],
    # Off-line processing (platform_api/api_offline.py)
    "/v1/clicks": ["post"],
    "/v1/users/{user_id}/exports": ["post"],
    "/v1/users/{user_id}/exports/{job_id}": ["get"],
    "/v1/users/{user_id}/exports/{job_id}/download": ["get"],
    "/v1/analytics/domains": ["get"],
    "/v1/trending": ["get"],
    "/v1/stories/{story_id}/clicks": ["get"],
    "/v1/stories/{story_id}/suggestions": ["get"],
    "/v1/users/{user_id}/suggestions": ["get"],
}


@pytest.fixture(scope="module")
def probe() -> dict[str, Any]:
    """One child process answers every case (a couple of seconds)."""
    return run_probe()


@pytest.mark.parametrize("case", ["no_token", "wrong_token", "basic_auth"])
def test_calls_without_the_service_token_get_401(probe: dict[str, Any], case: str) -> None:
    status, body = probe["cases"][case]
    assert status == 401
    assert body == {"detail": "Unauthorized"}


@pytest.mark.parametrize(
    ("case", "field"),
    [
        ("page_zero", "page"),
        ("page_too_far", "page"),
        ("bad_sort", "sort"),
        ("huge_id", "story_id"),
        ("blank_title", "title"),
        ("js_url", "url"),
        ("vote_no_user", "user_id"),
    ],
)
def test_schema_errors_are_422_naming_the_field(probe: dict[str, Any], case: str, field: str) -> None:
    status, body = probe["cases"][case]
    assert status == 422
    assert any(error["loc"][-1] == field for error in body["detail"]), body


def test_a_story_with_neither_url_nor_text_is_a_422_with_a_readable_reason(probe: dict[str, Any]) -> None:
    status, body = probe["cases"]["no_url_no_text"]
    assert status == 422
    assert "url or a text" in body["detail"][0]["msg"]


def test_sign_up_errors_list_every_problem_and_never_echo_the_password(probe: dict[str, Any]) -> None:
    status, body = probe["cases"]["signup_bad"]
    assert status == 422
    assert {error["loc"][-1] for error in body["detail"]} == {"username", "password"}
    assert "secret7" not in str(body)


def test_unparseable_json_is_a_400(probe: dict[str, Any]) -> None:
    assert probe["cases"]["not_json"] == [400, {"detail": "Cannot parse request body"}]


def test_following_oneself_is_a_400_before_any_query(probe: dict[str, Any]) -> None:
    assert probe["cases"]["self_follow"] == [400, {"detail": "a user cannot follow themselves"}]


@pytest.mark.parametrize("case", ["db_down_read", "db_down_write"])
def test_an_unreachable_database_is_a_503_not_a_500(probe: dict[str, Any], case: str) -> None:
    status, body = probe["cases"][case]
    assert status == 503
    assert "database" in body["detail"]


def test_healthz_needs_no_token_and_reports_503_without_a_database(probe: dict[str, Any]) -> None:
    status, body = probe["cases"]["healthz_db_down"]
    assert status == 503
    assert body == {
        "status": "unavailable", "server": "platform-unit", "database": False, "primary": False, "cache": False,
    }


def test_request_bodies_are_cleaned_before_use(probe: dict[str, Any]) -> None:
    expected = {"author_id": 3, "title": "Padded title", "url": "https://example.org/x", "text": "body"}
    assert probe["story_in"] == expected
    assert probe["signup_in"]["username"] == "Good_Name-1"


def test_openapi_document_lists_exactly_the_documented_endpoints(probe: dict[str, Any]) -> None:
    openapi = probe["openapi"]
    assert (openapi["title"], openapi["version"]) == ("scalestack platform", "1")
    assert openapi["paths"] == DOC_ENDPOINTS
