"""Bad input gets a clear 4xx and changes nothing, on every form and API endpoint."""
from __future__ import annotations

import requests

from scalestack.topology import Topology
from tests.integration.helpers import Member, csrf_token, sql

COUNTS = "select (select count(*) from users), (select count(*) from stories), " \
         "(select count(*) from votes), (select count(*) from follows)"

LONG = "x" * 6000


def test_api_rejects_bad_input_with_a_4xx_and_changes_nothing(
    api: requests.Session, api_url: str, running_stack: Topology, member: Member
) -> None:
    before = sql(running_stack, COUNTS)
    cases: list[tuple[str, str, object]] = [
        ("post", "/v1/users", {"username": "a", "password": "long enough pw"}),
        ("post", "/v1/users", {"username": "bad name!", "password": "long enough pw"}),
        ("post", "/v1/users", {"username": "okname", "password": "short"}),
        ("post", "/v1/users", {"username": member.username, "password": "long enough pw"}),
        ("post", "/v1/users", {}),
        ("post", "/v1/sessions", {"username": member.username, "password": "wrong password"}),
        ("post", "/v1/sessions", {"username": member.username}),
        ("post", "/v1/stories", {"author_id": member.id, "title": "", "url": "https://example.org", "text": ""}),
        ("post", "/v1/stories", {"author_id": member.id, "title": "   ", "url": "https://example.org", "text": ""}),
        ("post", "/v1/stories", {"author_id": member.id, "title": "t" * 201, "url": "https://example.org", "text": ""}),
        ("post", "/v1/stories", {"author_id": member.id, "title": "js", "url": "javascript:alert(1)", "text": ""}),
        ("post", "/v1/stories", {"author_id": member.id, "title": "ftp", "url": "ftp://example.org/x", "text": ""}),
        ("post", "/v1/stories", {"author_id": member.id, "title": "nothing", "url": "", "text": ""}),
        ("post", "/v1/stories", {"author_id": member.id, "title": "long", "url": "", "text": LONG}),
        ("post", "/v1/stories", {"author_id": 999_999_999, "title": "ghost", "url": "https://example.org", "text": ""}),
        ("post", "/v1/stories", {"author_id": "one", "title": "t", "url": "https://example.org", "text": ""}),
        ("post", "/v1/stories/1/votes", {"user_id": 999_999_999}),
        ("post", "/v1/stories/999999999/votes", {"user_id": member.id}),
        ("post", "/v1/stories/1/votes", {}),
        ("put", f"/v1/users/{member.id}/following/{member.id}", None),
        ("put", f"/v1/users/{member.id}/following/999999999", None),
        ("delete", f"/v1/users/999999999/following/{member.id}", None),
        ("get", "/v1/stories?sort=sideways", None),
        ("get", "/v1/stories?page=0", None),
        ("get", "/v1/stories?page=abc", None),
        ("get", "/v1/stories/999999999", None),
        ("get", "/v1/users/nobody-here-at-all", None),
        ("get", "/v1/users/999999999/home", None),
    ]
    for method, path, body in cases:
        response = getattr(api, method)(f"{api_url}{path}", json=body, timeout=10)
        assert 400 <= response.status_code < 500, (method, path, body, response.status_code, response.text[:200])
        assert "detail" in response.json(), (path, response.text[:200])
    # Not JSON at all.
    response = api.post(f"{api_url}/v1/stories", data="{not json", headers={"Content-Type": "application/json"}, timeout=10)
    assert 400 <= response.status_code < 500
    assert sql(running_stack, COUNTS) == before


def test_forms_reject_bad_input_with_a_4xx_and_change_nothing(
    site: str, running_stack: Topology, member: Member
) -> None:
    before = sql(running_stack, COUNTS)
    session = member.session
    token = csrf_token(session.get(f"{site}/submit", timeout=10).text)
    cases: list[tuple[str, dict[str, str]]] = [
        ("/submit", {"title": "", "url": "https://example.org", "text": ""}),
        ("/submit", {"title": "no link, no text", "url": "", "text": ""}),
        ("/submit", {"title": "bad scheme", "url": "javascript:alert(1)", "text": ""}),
        ("/submit", {"title": "t" * 201, "url": "https://example.org", "text": ""}),
        ("/submit", {"title": "long", "url": "", "text": LONG}),
        (f"/u/{member.username}/follow", {}),  # following yourself
        ("/s/999999999/vote", {}),
    ]
    for path, data in cases:
        response = session.post(f"{site}{path}", data={"csrfmiddlewaretoken": token, **data}, timeout=10)
        assert 400 <= response.status_code < 500, (path, data, response.status_code)

    anonymous = requests.Session()
    token = csrf_token(anonymous.get(f"{site}/signup", timeout=10).text)
    for data in ({"username": "x", "password": "long enough pw"},
                 {"username": "has space", "password": "long enough pw"},
                 {"username": "fine_name", "password": "short"},
                 {"username": member.username, "password": "long enough pw"}):
        response = anonymous.post(f"{site}/signup", data={"csrfmiddlewaretoken": token, **data}, timeout=10)
        assert 400 <= response.status_code < 500, data
    response = anonymous.post(f"{site}/login", timeout=10,
                              data={"csrfmiddlewaretoken": token, "username": member.username, "password": "nope nope"})
    assert 400 <= response.status_code < 500
    assert "Wrong username or password" in response.text
    # Wrong methods and unknown pages.
    assert session.get(f"{site}/s/1/vote", timeout=10).status_code == 405
    assert session.get(f"{site}/s/999999999", timeout=10).status_code == 404
    assert session.get(f"{site}/u/nobody-here-at-all", timeout=10).status_code == 404
    assert sql(running_stack, COUNTS) == before


def test_anonymous_users_are_sent_to_log_in(site: str) -> None:
    for path in ("/home", "/submit"):
        response = requests.get(f"{site}{path}", allow_redirects=False, timeout=10)
        assert response.status_code == 302
        assert response.headers["Location"].startswith("/login?next=")
