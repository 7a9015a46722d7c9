"""PostgreSQL under load: the replica stopped and started, then the primary.

The post's "Redundancy and failover" for the database, behind HAProxy's read
pool (the primary and the streaming replica) and write pool (the primary only):

* without the replica, reads go to the primary and nothing fails; once it is
  back, the read pool uses it again (the platform recycles its pooled
  connections, every 10 s in this profile);
* without the primary, reads go on from the replica, writes are refused with a
  clear 503 ("read-only for now", with Retry-After), nothing that was
  acknowledged is lost, and writes work again once it is back, with no one
  stepping in.
"""
from __future__ import annotations

import time
from typing import Callable

import pytest

from scalestack import stack
from scalestack.topology import Topology
from tests.faults.checks import server_status, server_total
from tests.faults.loadgen import CLIENT_ERROR, FAILURE, READ_ONLY, LoadRun
from tests.faults.scenario import AFTER, DURING, assert_no_failures, assert_no_write_lost, warm_up
from tests.integration.helpers import wait_until

pytestmark = pytest.mark.timeout(300)

WRITES = ("story", "vote", "follow")


def test_replica_stopped_then_started(faults_stack: Topology, load_run: Callable[[str], LoadRun]) -> None:
    t = faults_stack
    replica = t.postgres_replica.name
    with load_run("postgres-replica stopped, later started") as run:
        warm_up(run)
        run.begin("during")
        stack.stop(t, replica)
        run.hold(DURING)
        stack.start(t, replica)
        run.begin("after")
        wait_until(lambda: server_status(t, "db_read_pool", replica) == "UP", 30, "the replica UP in the read pool")
        up_at, sessions_when_up = time.time(), server_total(t, "db_read_pool", replica)
        # The platform's pooled connections are recycled every 10 s: new ones
        # are balanced over both servers again.
        wait_until(lambda: server_total(t, "db_read_pool", replica) > sessions_when_up, 30,
                   "a new read-pool connection to the replica")
        back_in_use_after = time.time() - up_at
        run.hold(max(0.0, AFTER - back_in_use_after))
    result = run.result
    assert result is not None
    result.extra.update({"replica UP again after (s)": round(up_at - result.start_of("after"), 1),
                         "first new read-pool connection to it after (s)": round(back_in_use_after, 1)})
    assert_no_failures(result)
    assert_no_write_lost(t, result)


def test_primary_stopped_then_started(faults_stack: Topology, load_run: Callable[[str], LoadRun]) -> None:
    t = faults_stack
    with load_run("postgres (primary) stopped, later started") as run:
        warm_up(run)
        run.begin("during")
        stack.stop(t, t.postgres.name)
        run.hold(DURING)
        stack.start(t, t.postgres.name)
        run.begin("after")
        wait_until(lambda: server_status(t, "db_write_pool", t.postgres.name) == "UP", 30,
                   "the primary UP in the write pool")
        back_at = time.time()
        run.hold(AFTER)
    result = run.result
    assert result is not None
    refusals = result.where(READ_ONLY)
    last_refusal = max((r["t"] for r in refusals), default=0.0)
    writes_after = [a for a in result.acks if a["ack"] in WRITES and a["t"] > last_refusal]
    result.extra.update({
        "primary UP in the write pool after (s)": round(back_at - result.start_of("after"), 1),
        "writes refused read-only": len(refusals),
        "slowest refusal (ms)": max((r["ms"] for r in refusals), default=0),
        "writes acknowledged after the last refusal": len(writes_after),
    })
    total = result.total
    # Reads (and every other request) never fail; writes fail only cleanly.
    assert total.failures == 0, result.describe(FAILURE)
    assert total.client_errors == 0, result.describe(CLIENT_ERROR)
    assert [r for r in refusals if result.phase_of(r["t"]) == "during"], (
        "no write was refused while the primary was down: the test did not exercise it")
    # A refusal must have been answered after the fault began. (A write sent a
    # few milliseconds before the primary began to stop can be refused: it
    # reached the database after the stop had started.)
    fault_at = result.start_of("during")
    early = [r for r in refusals if r["t"] + r["ms"] / 1000 < fault_at]
    assert not early, f"refused before the fault: {early[:3]}"
    no_retry_after = [r for r in refusals if not (r["retry_after"] or "").isdigit() or int(r["retry_after"]) <= 0]
    assert not no_retry_after, f"{len(no_retry_after)} read-only 503s without a Retry-After: {no_retry_after[:3]}"
    # Writes resume by themselves once the primary is back.
    assert writes_after, "no write was acknowledged after the last read-only refusal"
    assert last_refusal < result.phases[-1][2] - 2, "writes were still refused at the end of the run"
    assert_no_write_lost(t, result)
