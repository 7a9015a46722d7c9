"""RabbitMQ stopped and started under load: nothing fails, no event is lost.

The post's "Off-line processing": stories and clicks are published as events;
with the broker away the platform keeps them in the outbox
(``platform/platform_api/events.py``), and the relay publishes them once it is
back. So every story posted during the outage reaches its author's followers'
home timelines afterwards, and every click-through is counted exactly once.
"""
from __future__ import annotations

import time
from typing import Callable

import pytest
import requests

from scalestack import stack
from scalestack.topology import Topology
from tests.faults.checks import clicks_since, outbox_waiting, timeline_gaps, user_ids
from tests.faults.loadgen import LoadRun
from tests.faults.scenario import AFTER, BEFORE, DURING, assert_no_failures, assert_no_write_lost
from tests.integration.helpers import follow_via_api, wait_until

pytestmark = pytest.mark.timeout(300)

# Seeded users who follow every member of the load, so that each story posted
# has followers to fan out to.
FOLLOWERS = range(1, 21)


def test_rabbitmq_stopped_then_started_loses_no_event(
    faults_stack: Topology, load_run: Callable[[str], LoadRun], api: requests.Session, api_url: str
) -> None:
    t = faults_stack
    with load_run("rabbitmq stopped, later started") as run:
        run.wait_until_ready()
        run.begin("before")
        _, acks = run.records_so_far()
        members = user_ids(t, [a["user"] for a in acks if a["ack"] == "signup"])
        for member_id in members.values():
            follow_via_api(api, api_url, member_id, FOLLOWERS)
        run.hold(BEFORE)
        run.begin("during")
        stack.stop(t, "rabbitmq")
        run.hold(DURING)
        waiting = outbox_waiting(t)
        stack.start(t, "rabbitmq")
        run.begin("after")
        run.hold(AFTER)
    result = run.result
    assert result is not None
    during_start = result.start_of("during")
    started = result.start_of("warm-up")
    posted_since_outage = [a["id"] for a in result.acknowledged("story") if a["t"] >= during_start]
    posted_during = [a for a in result.acknowledged("story") if result.phase_of(a["t"]) == "during"]
    clicks = len(result.acknowledged("click"))
    result.extra.update({"outbox events waiting when the broker came back": waiting,
                         "stories posted during the outage": len(posted_during),
                         "clicks acknowledged": clicks})
    assert_no_failures(result)
    assert waiting > 0, "nothing waited in the outbox: the outage was not exercised"
    assert posted_during, "no story was posted during the outage"

    # Off-line: every follower (of before the outage) gets every story posted since.
    recovered = time.monotonic()
    wait_until(lambda: timeline_gaps(t, posted_since_outage, during_start)[0] == 0, 90,
               "every story in every follower's home timeline")
    _, expected = timeline_gaps(t, posted_since_outage, during_start)
    assert expected > 0, "the stories had no followers to reach"
    wait_until(lambda: outbox_waiting(t) == 0, 60, "the outbox to empty")
    wait_until(lambda: clicks_since(t, started) >= clicks, 90, "every acknowledged click counted")
    result.extra.update({"timeline entries delivered for stories since the outage": expected,
                         "all delivered and counted after (s)": round(time.monotonic() - recovered, 1)})
    # Exactly once: a redelivery or a re-publish must not count a click twice.
    time.sleep(3)
    counted = clicks_since(t, started)
    result.extra["clicks counted"] = counted
    assert counted == clicks, f"{counted} clicks counted for {clicks} acknowledged"
    assert_no_write_lost(t, result)
