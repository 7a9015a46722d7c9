"""``scalestack bench --smoke``: the harness runs against the test stack and reports sane numbers.

Only that it works, never how fast: performance is measured by the full
benchmark (``make bench``), not asserted in tests.
"""
from __future__ import annotations

import json
import subprocess
import sys

from scalestack.topology import REPO, Topology


def test_the_smoke_benchmark_runs_and_reports_sane_figures(running_stack: Topology) -> None:
    result = subprocess.run([sys.executable, "-m", "scalestack.cli", "--profile", running_stack.profile,
                             "bench", "--smoke"], cwd=REPO, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    path = result.stdout.strip().splitlines()[-1].removeprefix("figures in ").strip()
    figures = json.loads(open(path).read())
    assert figures["requests"] > 20
    assert figures["failures"] == 0, figures["per_request"]
    assert figures["throughput_rps"] > 0
    assert 0 < figures["p50_ms"] <= figures["p95_ms"] <= figures["p99_ms"] <= figures["max_ms"] + 1
    # The mix reached every kind of request it is made of.
    assert {"home timeline", "user timeline", "post"} <= set(figures["per_request"])
    # memcached's own counters saw the platform's lookups.
    assert figures["cache_hit_ratio"] is not None and 0 < figures["cache_hit_ratio"] <= 1
    # The CPU went somewhere, and the shares add up.
    assert abs(sum(figures["cpu_share"].values()) - 1) < 0.01
    assert figures["cpu_seconds"]["web"] > 0 and figures["cpu_seconds"]["platform"] > 0


def test_the_open_loop_smoke_benchmark_keeps_its_arrival_rate(running_stack: Topology) -> None:
    result = subprocess.run([sys.executable, "-m", "scalestack.cli", "--profile", running_stack.profile,
                             "bench", "--smoke", "--rate", "10"], cwd=REPO, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "generator lag p99" in result.stdout
    path = result.stdout.strip().splitlines()[-1].removeprefix("figures in ").strip()
    figures = json.loads(open(path).read())
    assert figures["loop"] == "open" and figures["offered_rps"] == 10
    assert figures["failures"] == 0, figures["failure_reasons"]
    # About 10 actions a second for 5 s (a post or a vote is two requests), whatever the latency.
    assert 30 <= figures["requests"] <= 130
    assert figures["generator_lag_p99_ms"] is not None and figures["dropped"] == 0
