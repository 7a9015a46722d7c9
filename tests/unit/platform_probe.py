"""Exercise the platform API in a process of its own, with no services running.

Run by ``test_platform_api.py`` (through ``platform_support.run_probe``) with
the platform's settings, an unreachable database and the data cache off. It
calls the real django-ninja API through ninja's test client and prints one JSON
line: for each case, the status code and body. Requests that must be refused
before any query are answered without a database; those that reach one get 503.
"""
from __future__ import annotations

import json
from typing import Any

import django

django.setup()

from ninja.testing import TestClient  # noqa: E402

from platform_api.api import api  # noqa: E402
from platform_api.schemas import SignUpIn, StoryIn  # noqa: E402

AUTH = {"Authorization": "Bearer unit-test-token"}
GOOD_STORY = {"author_id": 1, "title": "A title", "url": "https://example.org/a", "text": ""}


def call(client: TestClient, method: str, path: str, **kwargs: Any) -> list[Any]:
    """One request; ``[status, parsed body]``, or ``[500, ...]`` for an unhandled exception.

    Django would answer an exception that escapes the API with a 500; the
    probe records it as one, so that only the cases it affects fail.
    """
    try:
        response = getattr(client, method)(path, **kwargs)
    except Exception as exc:  # noqa: BLE001 - reported, not hidden
        return [500, f"unhandled {type(exc).__name__}: {exc}"]
    try:
        body = json.loads(response.content or b"null")
    except ValueError:
        body = response.content.decode(errors="replace")
    return [response.status_code, body]


def main() -> None:
    """Run every case and print the report."""
    client = TestClient(api)
    cases: dict[str, list[Any]] = {
        "no_token": call(client, "get", "/stories"),
        "wrong_token": call(client, "get", "/stories", headers={"Authorization": "Bearer nope"}),
        "basic_auth": call(client, "get", "/stories", headers={"Authorization": "Basic eDp5"}),
        "page_zero": call(client, "get", "/stories?page=0", headers=AUTH),
        "page_too_far": call(client, "get", "/stories?page=1001", headers=AUTH),
        "bad_sort": call(client, "get", "/stories?sort=sideways", headers=AUTH),
        "huge_id": call(client, "get", "/stories/99999999999999999999", headers=AUTH),
        "signup_bad": call(client, "post", "/users", json={"username": "ab", "password": "secret7"}, headers=AUTH),
        "not_json": call(client, "post", "/users", body="{not json", headers=AUTH),
        "blank_title": call(client, "post", "/stories", json={**GOOD_STORY, "title": "   "}, headers=AUTH),
        "js_url": call(client, "post", "/stories", json={**GOOD_STORY, "url": "javascript:alert(1)"}, headers=AUTH),
        "no_url_no_text": call(client, "post", "/stories", json={**GOOD_STORY, "url": ""}, headers=AUTH),
        "vote_no_user": call(client, "post", "/stories/1/votes", json={}, headers=AUTH),
        "self_follow": call(client, "put", "/users/5/following/5", headers=AUTH),
        "db_down_read": call(client, "get", "/stories", headers=AUTH),
        "db_down_write": call(client, "post", "/stories", json=GOOD_STORY, headers=AUTH),
        "healthz_db_down": call(client, "get", "/healthz"),
    }
    story = StoryIn(author_id=3, title="  Padded title  ", url="  https://example.org/x  ", text=" body ")
    schema = api.get_openapi_schema()
    report = {
        "cases": cases,
        "story_in": story.model_dump(),
        "signup_in": SignUpIn(username="Good_Name-1", password="x" * 8).model_dump(),
        "openapi": {
            "title": schema["info"]["title"],
            "version": schema["info"]["version"],
            "paths": {path: sorted(ops) for path, ops in schema["paths"].items()},
        },
    }
    print(json.dumps(report, default=str))


if __name__ == "__main__":
    main()
