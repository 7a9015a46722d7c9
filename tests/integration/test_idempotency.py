"""A replayed write is applied once (idempotency keys on the real PostgreSQL).

HAProxy and the web tier replay a write only when it carries an idempotency
key; these tests replay such writes on purpose, concurrently and through the
site's own forms, and count what the database holds afterwards.
"""
from __future__ import annotations

import threading
import uuid

import requests

from scalestack.topology import Topology
from tests.integration.helpers import Member, csrf_token, sql


def _story(api: requests.Session, api_url: str, author: Member) -> int:
    response = api.post(f"{api_url}/v1/stories", timeout=10, json={
        "author_id": author.id, "title": "a story to vote on twice", "url": "https://example.org/i", "text": ""})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def test_concurrent_requests_with_one_key_apply_once(
    api: requests.Session, api_url: str, running_stack: Topology, member: Member
) -> None:
    story_id = _story(api, api_url, member)
    key = uuid.uuid4().hex
    answers: list[requests.Response] = []

    def vote(user_id: int) -> None:
        session = requests.Session()
        session.headers.update(api.headers)
        answers.append(session.post(f"{api_url}/v1/stories/{story_id}/votes", json={"user_id": 7},
                                    headers={"Idempotency-Key": key}, timeout=30))

    # Eight copies at once, spread by HAProxy over both platform servers: the
    # unique index makes all but one wait, then answer with the stored reply.
    threads = [threading.Thread(target=vote, args=(7,)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [a.status_code for a in answers] == [200] * 8
    assert len({a.text for a in answers}) == 1, "every copy gets the same answer"
    assert sum(a.headers.get("Idempotent-Replayed") == "true" for a in answers) == 7
    assert sql(running_stack, f"SELECT count(*) FROM votes WHERE story_id = {story_id}") == "1"
    assert sql(running_stack, f"SELECT count(*) FROM idempotency_keys WHERE key = '{key}'") == "1"


def test_the_same_key_for_another_request_is_refused_and_changes_nothing(
    api: requests.Session, api_url: str, running_stack: Topology, member: Member
) -> None:
    story_id = _story(api, api_url, member)
    key = uuid.uuid4().hex
    first = api.post(f"{api_url}/v1/stories/{story_id}/votes", json={"user_id": 8},
                     headers={"Idempotency-Key": key}, timeout=10)
    assert first.status_code == 200
    other = api.post(f"{api_url}/v1/stories/{story_id}/votes", json={"user_id": 9},
                     headers={"Idempotency-Key": key}, timeout=10)
    assert other.status_code == 422, other.text
    bad = api.post(f"{api_url}/v1/stories/{story_id}/votes", json={"user_id": 10},
                   headers={"Idempotency-Key": "not a valid key!"}, timeout=10)
    assert bad.status_code == 400
    assert sql(running_stack, f"SELECT count(*) FROM votes WHERE story_id = {story_id}") == "1"


def test_a_form_posted_twice_through_the_front_door_votes_once(
    site: str, api: requests.Session, api_url: str, running_stack: Topology, member: Member
) -> None:
    story_id = _story(api, api_url, member)
    page = member.session.get(f"{site}/s/{story_id}", timeout=10)
    assert page.status_code == 200
    import re

    key = re.search(r'name="idempotency_key" value="([A-Za-z0-9_-]+)"', page.text)
    assert key, "every form carries an idempotency key"
    form = {"csrfmiddlewaretoken": csrf_token(page.text), "idempotency_key": key.group(1), "next": f"/s/{story_id}"}
    # A double click, or a browser resending after a dropped connection.
    for _ in range(3):
        response = member.session.post(f"{site}/s/{story_id}/vote", data=form, timeout=10, allow_redirects=False)
        assert response.status_code in (302, 303), response.text[:300]
    assert sql(running_stack, f"SELECT count(*) FROM votes WHERE story_id = {story_id}") == "1"
    story = api.get(f"{api_url}/v1/stories/{story_id}", timeout=10).json()
    assert story["votes"] == 1
