"""The web tier under load: a server stopped, a server hung, and the tier resized.

The post's "Load balancing" and "Redundancy": HAProxy health-checks every web
server twice a second, retries a refused connection on another server, gives
a hung server ``timeout server`` to answer before retrying the request
elsewhere, and reloads hitlessly when ``scalestack scale`` adds or removes one.
"""
from __future__ import annotations

import os
import signal
import time
from typing import Callable

import pytest

from scalestack import stack
from scalestack.topology import Topology
from tests.faults.checks import server_status, server_total
from tests.faults.loadgen import LoadRun
from tests.faults.scenario import AFTER, DURING, assert_no_failures, assert_no_write_lost, warm_up
from tests.integration.helpers import pid_of, wait_until

pytestmark = pytest.mark.timeout(240)


def _served_by(records: list[dict], server: str, since: float = 0.0) -> int:
    return sum(r["served_by"] == server and r["t"] >= since for r in records)


def test_web_1_stopped_then_started(faults_stack: Topology, load_run: Callable[[str], LoadRun]) -> None:
    t = faults_stack
    with load_run("web-1 stopped, later started") as run:
        warm_up(run)
        run.begin("during")
        stack.stop(t, "web-1")
        wait_until(lambda: server_status(t, "web_pool", "web-1") == "DOWN", 5, "HAProxy to see web-1 DOWN")
        down_at = time.time()
        run.hold(DURING)
        stack.start(t, "web-1")
        run.begin("after")
        # Nobody puts it back: HAProxy's health check does, after two passes.
        wait_until(lambda: server_status(t, "web_pool", "web-1") == "UP", 15, "web-1 UP in the web pool")
        back_at, total_when_back = time.time(), server_total(t, "web_pool", "web-1")
        run.hold(AFTER)
        total_at_end = server_total(t, "web_pool", "web-1")
    result = run.result
    assert result is not None
    served_after = _served_by(result.in_phase("after"), "web-1", since=back_at)
    result.extra.update({"web-1 DOWN in HAProxy after (s)": round(down_at - result.start_of("during"), 1),
                         "web-1 back UP after (s)": round(back_at - result.start_of("after"), 1),
                         "requests web-1 served after it was back": served_after,
                         "HAProxy stot of web-1 since it was back": total_at_end - total_when_back})
    assert_no_failures(result)
    assert total_at_end > total_when_back, "HAProxy sent web-1 nothing after it came back"
    assert served_after > 0, "no response came from web-1 after it came back"
    assert_no_write_lost(t, result)


def test_a_hung_web_server_loses_no_request_and_none_hangs(
    faults_stack: Topology, load_run: Callable[[str], LoadRun]
) -> None:
    t = faults_stack
    # Hung, not dead: SIGSTOP the whole process group (gunicorn's master and its
    # workers), so the kernel still accepts connections and nobody answers them.
    group = pid_of(t, "web-1")
    limit_ms = (t.hung_server_timeout + 2) * 1000
    with load_run("web-1 SIGSTOPped (hung, not dead), later SIGCONTed") as run:
        warm_up(run)
        run.begin("during")
        os.killpg(group, signal.SIGSTOP)
        try:
            # Its health checks time out (``timeout check``), and it leaves the pool.
            wait_until(lambda: server_status(t, "web_pool", "web-1") == "DOWN", 5, "HAProxy to see web-1 DOWN")
            down_at = time.time()
            run.hold(DURING)
        finally:
            os.killpg(group, signal.SIGCONT)
        run.begin("after")
        wait_until(lambda: server_status(t, "web_pool", "web-1") == "UP", 15, "web-1 UP in the web pool")
        run.hold(AFTER)
    result = run.result
    assert result is not None
    slowest = max(result.records, key=lambda r: r["ms"])
    result.extra.update({"hung web-1 DOWN in HAProxy after (s)": round(down_at - result.start_of("during"), 1),
                         "slowest request (ms)": slowest["ms"], "bound (ms)": limit_ms})
    assert_no_failures(result)
    assert slowest["ms"] <= limit_ms, (
        f"{slowest['method']} {slowest['name']} took {slowest['ms']:.0f} ms, more than HAProxy's "
        f"timeout server ({t.hung_server_timeout} s) + 2 s")
    assert_no_write_lost(t, result)


def test_scaling_the_web_tier_to_3_and_back_to_2_under_load(
    faults_stack: Topology, load_run: Callable[[str], LoadRun]
) -> None:
    t = faults_stack
    with load_run("scalestack scale web=3, then web=2") as run:
        warm_up(run)
        run.begin("during")
        bigger = stack.scale(t, web=3, platform=None, say=lambda m: None)

        def web_3_served() -> bool:
            records, _ = run.records_so_far()
            return _served_by(records, "web-3") >= 10

        wait_until(web_3_served, 20, "web-3 to serve its share")
        stack.scale(bigger, web=2, platform=None, say=lambda m: None)
        run.begin("after")
        run.hold(AFTER)
    result = run.result
    assert result is not None
    result.extra["requests web-3 served"] = _served_by(result.records, "web-3")
    assert_no_failures(result)
    assert_no_write_lost(t, result)
