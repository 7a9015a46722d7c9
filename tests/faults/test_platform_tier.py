"""The platform tier under load: a platform server stopped and started, behind HAProxy and the smart client.

The post's "Load balancing" between the web and platform tiers, two ways:
HAProxy's platform pool (the default), and the web servers' own smart client
(``webapp/news_web/smart_client.py``). Either way, losing a platform server
must cost capacity only, and the server must come back into use by itself.
"""
from __future__ import annotations

import time
from typing import Callable

import pytest

from scalestack import stack
from scalestack.topology import Topology, load
from tests.faults.checks import server_status
from tests.faults.loadgen import LoadRun
from tests.faults.scenario import AFTER, DURING, assert_no_failures, assert_no_write_lost, warm_up
from tests.integration.helpers import wait_until

pytestmark = pytest.mark.timeout(300)


@pytest.mark.parametrize("balancing", ["haproxy", "smart"])
def test_platform_1_stopped_then_started(
    balancing: str, faults_stack: Topology, load_run: Callable[[str], LoadRun]
) -> None:
    t = load(faults_stack.profile)
    if balancing == "smart":
        # A rolling restart of the web tier, before the load starts.
        t = stack.set_balancing(t, "smart", say=lambda m: None)
    try:
        with load_run(f"platform-1 stopped, later started (balancing: {balancing})") as run:
            warm_up(run)
            run.begin("during")
            stack.stop(t, "platform-1")
            stopped_at = time.time()
            wait_until(lambda: server_status(t, "platform_pool", "platform-1") == "DOWN", 5, "platform-1 DOWN")
            run.hold(DURING)
            stack.start(t, "platform-1")
            run.begin("after")
            # HAProxy checks platform servers in both modes; the smart client
            # probes them itself, so this only says the server is healthy again.
            wait_until(lambda: server_status(t, "platform_pool", "platform-1") == "UP", 15, "platform-1 UP")
            back_at = time.time()
            run.hold(AFTER)
    finally:
        if balancing == "smart":
            stack.set_balancing(load(faults_stack.profile), "haproxy", say=lambda m: None)
    result = run.result
    assert result is not None
    used_again = sum("platform-1" in (r["platform"] or "") and r["t"] >= back_at for r in result.in_phase("after"))
    used_while_down = sum("platform-1" in (r["platform"] or "") and r["t"] >= stopped_at
                          for r in result.in_phase("during"))
    result.extra.update({"pages that used platform-1 after it was back": used_again,
                         "pages that used platform-1 after it had stopped": used_while_down})
    assert_no_failures(result)
    assert used_again > 0, f"the web tier ({balancing}) never used platform-1 again"
    assert_no_write_lost(t, result)
