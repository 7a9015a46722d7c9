"""A memcached node stopped and started under load: nothing fails, and nothing stale is served.

The post's "In-memory caches" and "Cache invalidation". While memcached-1 is
down its keys hash to memcached-2 (pymemcache's ``HashClient`` steps around
it), so a value written during the outage lands there. Once memcached-1 is
back its keys hash to it again; every platform thread must stop reading the
outage-time copies from memcached-2 and must not serve anything older than
the last acknowledged write (``platform/platform_api/memcache_client.py``).
"""
from __future__ import annotations

import re
import socket
import time
from typing import Callable

import pytest
import requests
from pymemcache.client.hash import HashClient

from scalestack import stack
from scalestack.topology import Process, Topology
from tests.faults.loadgen import LoadRun
from tests.faults.scenario import AFTER, DURING, assert_no_failures, assert_no_write_lost, warm_up
from tests.integration.helpers import story_key, wait_until

pytestmark = pytest.mark.timeout(240)


def _node_of(t: Topology, key: str) -> str:
    """The node (``host:port``) the platform's HashClient puts ``key`` on, with every node up.

    Same servers in the same order and pymemcache's default hasher, as the
    platform's ``cache.py`` builds it; ``_on_node`` below checks it for real.
    """
    client = HashClient([m.address for m in t.memcached])
    return client.hasher.get_node(key)


def _on_node(node: Process, key: str) -> bool:
    """Whether ``node`` holds ``key`` (asked directly, over memcached's text protocol)."""
    with socket.create_connection((node.host, node.port), timeout=2) as conn:
        conn.sendall(f"get {key}\r\n".encode())
        answer = b""
        while not answer.endswith(b"END\r\n"):
            chunk = conn.recv(65536)
            if not chunk:
                break
            answer += chunk
    return answer.startswith(b"VALUE ")


def _story_on_memcached_1(t: Topology, api: requests.Session, api_url: str) -> int:
    """A new story (0 votes) whose cache key lives on memcached-1."""
    node = t.memcached[0]
    for attempt in range(20):
        created = api.post(f"{api_url}/v1/stories", timeout=10, json={
            "author_id": 1, "title": f"cached on memcached-1? {attempt}", "url": "https://example.org/mc", "text": ""})
        assert created.status_code == 201, created.text
        story_id = created.json()["id"]
        if _node_of(t, story_key(t, story_id)) == node.address:
            return story_id
    raise AssertionError("no story key hashed to memcached-1 in 20 tries")


def _vote(api: requests.Session, api_url: str, story_id: int, user_id: int) -> int:
    """Vote through the platform API; the story's vote count as the write returned it."""
    response = api.post(f"{api_url}/v1/stories/{story_id}/votes", json={"user_id": user_id}, timeout=10)
    assert response.status_code == 200, f"vote by user {user_id}: {response.status_code} {response.text[:300]}"
    return response.json()["story"]["votes"]


def test_memcached_1_stopped_then_started_serves_nothing_stale(
    faults_stack: Topology, load_run: Callable[[str], LoadRun], api: requests.Session, api_url: str, site: str
) -> None:
    t = faults_stack
    story_id = _story_on_memcached_1(t, api, api_url)
    key = story_key(t, story_id)

    def cached_on_memcached_1() -> bool:
        # A read fills the cache; a platform thread that still avoids
        # memcached-1 after an earlier outage would fill memcached-2 instead.
        api.get(f"{api_url}/v1/stories/{story_id}", timeout=10)
        return _on_node(t.memcached[0], key)

    wait_until(cached_on_memcached_1, 20, "the story's key on memcached-1 (else the hashing check is wrong)")

    # The load votes too (the story is on /newest), so counts are compared by
    # order, not by value: votes only ever go up, so a read that returns fewer
    # votes than a vote already acknowledged is stale.
    seen: list[tuple[str, int, float]] = []  # (where, votes, seconds since memcached-1 was back)
    with load_run("memcached-1 stopped, later started") as run:
        warm_up(run)
        run.begin("during")
        stack.stop(t, "memcached-1")
        run.hold(2)
        # Written while memcached-1 is down: the write-through lands on memcached-2.
        during_outage = _vote(api, api_url, story_id, user_id=2)
        run.hold(DURING - 2)
        stack.start(t, "memcached-1")
        run.begin("after")
        back = time.monotonic()
        # At once, a newer value: it goes to memcached-1 again, while memcached-2
        # still holds the outage-time copy for any thread that looks there.
        latest = _vote(api, api_url, story_id, user_id=3)
        deadline = time.monotonic() + AFTER
        while time.monotonic() < deadline:
            # Each platform server directly (its threads in turn), and the page.
            for server in t.platform:
                votes = requests.get(f"http://{server.address}/v1/stories/{story_id}", timeout=10,
                                     headers=api.headers).json()["votes"]
                seen.append((server.name, votes, round(time.monotonic() - back, 1)))
            page = requests.get(f"{site}/s/{story_id}", timeout=10).text
            match = re.search(r"(\d+) points? by", page)
            seen.append(("page", int(match.group(1)) if match else -1, round(time.monotonic() - back, 1)))
            time.sleep(0.2)
    result = run.result
    assert result is not None
    stale = [(where, votes, at) for where, votes, at in seen if votes < latest]
    result.extra.update({"votes acknowledged during the outage / right after it": f"{during_outage} / {latest}",
                         "reads of the story after memcached-1 returned": len(seen),
                         "stale reads (fewer votes than acknowledged)": len(stale),
                         "last stale read (s after memcached-1 was back)": max((at for *_, at in stale), default=None)})
    assert_no_failures(result)
    assert latest > during_outage
    assert not stale, (f"{len(stale)} of {len(seen)} reads after memcached-1 returned showed fewer than the "
                       f"{latest} votes acknowledged (where, votes, seconds after it was back): {stale[:12]}")
    assert_no_write_lost(t, result)
