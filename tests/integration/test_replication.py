"""The read pool: a streaming replica, a lag-aware health check and the read fence.

The post's "Redundancy and failover" with its localhost:9001 (read pool) and
:9002 (write pool). These tests make the replica lag on purpose with
``recovery_min_apply_delay`` and check that no read ever returns an older
value than an acknowledged write, that a replica lagging past the bound leaves
the pool and comes back, and that losing the primary leaves the site readable
and honest about writes.
"""
from __future__ import annotations

import threading
import time
from typing import Iterator

import pytest
import requests

from scalestack import stack
from scalestack.topology import Topology
from tests.integration.helpers import Member, memcached_delete, story_key, wait_until


def _pool_state(t: Topology, pool: str, server: str) -> str | None:
    for line in stack.haproxy_command(t, "show stat").splitlines():
        fields = line.split(",")
        if fields[:2] == [pool, server]:
            return fields[17]
    return None


def _on_replica(t: Topology, query: str) -> str:
    return stack.psql(t, query, database="scalestack", server=t.postgres_replica).strip()


@pytest.fixture
def delayed_replica(running_stack: Topology) -> Iterator[None]:
    """Whatever a test sets, the replica applies WAL at once again afterwards."""
    yield
    stack.set_replica_delay(running_stack, 0)
    wait_until(lambda: _pool_state(running_stack, "db_read_pool", "postgres-replica") == "UP", 30,
               "the replica back in the read pool")


def test_the_replica_streams_from_the_primary_and_serves_only_the_read_pool(running_stack: Topology) -> None:
    t = running_stack
    replica = requests.get(f"http://{t.pgcheck_for(t.postgres_replica).address}/status", timeout=5).json()
    assert replica["role"] == "replica" and replica["wal_receiver"] == "streaming"
    slot = stack.psql(t, "SELECT active FROM pg_replication_slots WHERE slot_name = :'s'",
                      variables={"s": t.replication_slot}).strip()
    assert slot == "t", "the replica streams through its replication slot"
    assert _pool_state(t, "db_read_pool", "postgres") == "UP"
    assert _pool_state(t, "db_read_pool", "postgres-replica") == "UP"
    assert _pool_state(t, "db_write_pool", "postgres") == "UP"
    # It answers /primary with 503, so it can never take a write.
    assert _pool_state(t, "db_write_pool", "postgres-replica") == "DOWN"


def test_a_lagging_replica_never_shows_an_older_value_than_an_acknowledged_write(
    api: requests.Session, api_url: str, running_stack: Topology, member: Member, delayed_replica: None
) -> None:
    t = running_stack
    # 2 s behind: within the 5 s bound, so the replica stays in the read pool.
    stack.set_replica_delay(t, 2)
    created = api.post(f"{api_url}/v1/stories", timeout=10, json={
        "author_id": member.id, "title": "written while the replica lags", "url": "https://example.org/lag", "text": ""})
    assert created.status_code == 201, created.text
    story_id = created.json()["id"]
    vote = api.post(f"{api_url}/v1/stories/{story_id}/votes", json={"user_id": 1}, timeout=10)
    assert vote.status_code == 200 and vote.json()["story"]["votes"] == 1

    # The control: the replica itself does not have the story yet, so a
    # read-through fill that trusted it would return 404 or 0 votes.
    assert _on_replica(t, f"SELECT count(*) FROM stories WHERE id = {story_id}") == "0"
    assert _pool_state(t, "db_read_pool", "postgres-replica") == "UP"

    # Every read, each one a cache miss that fills from the read pool, sees the
    # acknowledged writes.
    for _ in range(6):
        memcached_delete(t, story_key(t, story_id))
        response = api.get(f"{api_url}/v1/stories/{story_id}", timeout=10)
        assert response.status_code == 200, response.text
        assert response.json()["votes"] == 1
    assert _on_replica(t, f"SELECT count(*) FROM stories WHERE id = {story_id}") == "0", (
        "the reads above must have happened while the replica still lagged")
    # And once the delay has passed, the replica has it too.
    wait_until(lambda: _on_replica(t, f"SELECT count(*) FROM stories WHERE id = {story_id}") == "1",
               10, "the replica to apply the story")


def test_a_replica_lagging_past_the_bound_leaves_the_read_pool_and_returns(
    api: requests.Session, api_url: str, running_stack: Topology, member: Member, delayed_replica: None
) -> None:
    t = running_stack
    stack.set_replica_delay(t, t.replica_max_lag * 2)
    stop = threading.Event()

    def keep_writing() -> None:
        # Lag is only measured while there is WAL waiting to be applied.
        while not stop.is_set():
            api.post(f"{api_url}/v1/stories", timeout=10, json={
                "author_id": member.id, "title": "keeps the WAL moving", "url": "https://example.org/w", "text": ""})
            stop.wait(0.3)

    writer = threading.Thread(target=keep_writing)
    writer.start()
    try:
        wait_until(lambda: _pool_state(t, "db_read_pool", "postgres-replica") == "DOWN",
                   t.replica_max_lag + 15, "HAProxy to take the lagging replica out of the read pool")
        status = requests.get(f"http://{t.pgcheck_for(t.postgres_replica).address}/read", timeout=5)
        assert status.status_code == 503 and status.json()["lag_seconds"] > t.replica_max_lag
        # Reads go on, from the primary.
        assert api.get(f"{api_url}/v1/stories?sort=new", timeout=10).status_code == 200
    finally:
        stop.set()
        writer.join()
    stack.set_replica_delay(t, 0)
    wait_until(lambda: _pool_state(t, "db_read_pool", "postgres-replica") == "UP", 30,
               "the caught-up replica to rejoin the read pool")


def test_with_the_primary_stopped_reads_go_on_and_writes_get_a_clear_503(
    api: requests.Session, api_url: str, site: str, running_stack: Topology, member: Member
) -> None:
    t = running_stack
    before = api.post(f"{api_url}/v1/stories", timeout=10, json={
        "author_id": member.id, "title": "acknowledged before the primary stopped", "url": "https://example.org/p",
        "text": ""})
    assert before.status_code == 201
    story_id = before.json()["id"]
    stack.stop(t, "postgres")
    try:
        wait_until(lambda: _pool_state(t, "db_write_pool", "postgres") == "DOWN", 10, "the write pool to empty")
        # Reads: the acknowledged story, uncached, from the replica.
        memcached_delete(t, story_key(t, story_id))
        read = api.get(f"{api_url}/v1/stories/{story_id}", timeout=10)
        assert read.status_code == 200 and read.json()["title"] == "acknowledged before the primary stopped"
        assert member.session.get(f"{site}/", timeout=10).status_code == 200
        # Writes: a prompt, clear 503 with Retry-After, not a 500 or a hang.
        started = time.monotonic()
        write = api.post(f"{api_url}/v1/stories/{story_id}/votes", json={"user_id": 2}, timeout=10)
        assert write.status_code == 503, write.text
        assert "read-only" in write.json()["detail"]
        assert int(write.headers["Retry-After"]) > 0
        assert time.monotonic() - started < 5
    finally:
        stack.start(t, "postgres")
    # Writes resume by themselves once HAProxy sees the primary again.
    wait_until(lambda: api.post(f"{api_url}/v1/stories/{story_id}/votes", json={"user_id": 2},
                                timeout=10).status_code == 200, 30, "writes to resume")
    assert api.get(f"{api_url}/v1/stories/{story_id}", timeout=10).json()["votes"] == 1
    # Connections opened before the restart (pooled ones, and the fence's probe
    # in each gunicorn thread) are dead now; none of them may turn a later
    # write into a false "read-only".
    time.sleep(t.slowstart_seconds)
    for voter in range(3, 23):
        vote = api.post(f"{api_url}/v1/stories/{story_id}/votes", json={"user_id": voter}, timeout=10)
        assert vote.status_code == 200, vote.text
