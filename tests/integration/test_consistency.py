"""No read returns an older value than an acknowledged write (the post's "Cache invalidation").

These tests drive the races on purpose: a slow read-through fill that lands
after a write-through, and many writers and readers on one object at once.
"""
from __future__ import annotations

import random
import threading
import time

import requests

from scalestack.topology import Topology
from tests.integration.helpers import Member, memcached_delete, sql, story_key


def _new_story(api: requests.Session, api_url: str, author: Member, title: str) -> int:
    response = api.post(f"{api_url}/v1/stories", timeout=10,
                        json={"author_id": author.id, "title": title, "url": "https://example.org/race", "text": ""})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def _session(t: Topology) -> requests.Session:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {t.secrets()['PLATFORM_TOKEN']}"
    return session


def test_a_slow_read_through_fill_never_overwrites_a_newer_write_through(
    api: requests.Session, api_url: str, running_stack: Topology, member: Member
) -> None:
    story_id = _new_story(api, api_url, member, "race: slow fill vs write-through")
    memcached_delete(running_stack, story_key(running_stack, story_id))
    seen: dict[str, int] = {}

    def slow_reader() -> None:
        # Misses, reads votes=0 from PostgreSQL, then holds the fill for 2 s.
        response = _session(running_stack).get(
            f"{api_url}/v1/stories/{story_id}", headers={"X-Debug-Fill-Delay": "2"}, timeout=10
        )
        seen["votes"] = response.json()["votes"]

    reader = threading.Thread(target=slow_reader)
    reader.start()
    time.sleep(1.0)
    vote = api.post(f"{api_url}/v1/stories/{story_id}/votes", json={"user_id": 1}, timeout=10)
    assert vote.status_code == 200 and vote.json()["counted"] is True
    assert vote.json()["story"]["votes"] == 1
    reader.join()
    assert seen["votes"] == 0, "the slow reader must have read the row before the vote (else no race)"

    # The vote was acknowledged before the slow fill landed; every later read,
    # on any platform server, sees it.
    for _ in range(8):
        response = api.get(f"{api_url}/v1/stories/{story_id}", timeout=10)
        assert response.json()["votes"] == 1
        assert response.headers["X-Cache"] == "hits=1 misses=0"


def test_concurrent_voters_and_readers_never_see_an_acknowledged_vote_undone(
    api_url: str, running_stack: Topology, api: requests.Session, member: Member
) -> None:
    story_id = _new_story(api, api_url, member, "race: many voters, many readers")
    voters = list(range(101, 161))  # seeded users
    acked = 0
    lock = threading.Lock()
    done = threading.Event()
    violations: list[str] = []
    reads = 0

    def vote(user_ids: list[int]) -> None:
        nonlocal acked
        session = _session(running_stack)
        for user_id in user_ids:
            response = session.post(f"{api_url}/v1/stories/{story_id}/votes", json={"user_id": user_id}, timeout=10)
            assert response.status_code == 200
            with lock:
                acked = max(acked, response.json()["story"]["votes"])

    def read() -> None:
        nonlocal reads
        session = _session(running_stack)
        while not done.is_set():
            with lock:
                floor = acked
            votes = session.get(f"{api_url}/v1/stories/{story_id}", timeout=10).json()["votes"]
            with lock:
                reads += 1
            if votes < floor:
                violations.append(f"read {votes} after {floor} was acknowledged")

    readers = [threading.Thread(target=read) for _ in range(3)]
    writers = [threading.Thread(target=vote, args=(voters[i::4],)) for i in range(4)]
    for thread in readers + writers:
        thread.start()
    for thread in writers:
        thread.join()
    done.set()
    for thread in readers:
        thread.join()

    assert not violations, violations[:5]
    assert reads > 20
    assert api.get(f"{api_url}/v1/stories/{story_id}", timeout=10).json()["votes"] == len(voters)
    assert sql(running_stack, f"select count(*) from votes where story_id = {story_id}") == str(len(voters))


def test_out_of_order_write_throughs_leave_the_newest_counter(
    api_url: str, running_stack: Topology, api: requests.Session, member: Member
) -> None:
    """Concurrent follows and unfollows of one user: the cached profile ends equal to the database."""
    followers = list(range(200, 240))
    rng = random.Random(7)

    def churn(user_ids: list[int]) -> None:
        session = _session(running_stack)
        for user_id in user_ids:
            for method in ("put", "delete", "put")[: rng.randint(1, 3)]:
                response = getattr(session, method)(f"{api_url}/v1/users/{user_id}/following/{member.id}", timeout=10)
                assert response.status_code == 200, response.text

    threads = [threading.Thread(target=churn, args=(followers[i::4],)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    truth = int(sql(running_stack, f"select count(*) from follows where followee_id = {member.id}"))
    assert 0 < truth <= len(followers)
    for _ in range(4):
        profile = api.get(f"{api_url}/v1/users/{member.username}", timeout=10)
        assert profile.json()["followers_count"] == truth
    stored = int(sql(running_stack, f"select followers_count from users where id = {member.id}"))
    assert stored == truth
