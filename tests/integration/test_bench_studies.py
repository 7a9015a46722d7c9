"""Every ``scalestack bench STUDY --quick`` runs on the test stack, reports sane figures, and
puts the stack back as it found it.

Only that each study works, never how fast anything is: the figures come from
the full studies (``make bench-studies``, docs/benchmarks.md), not from tests.
Each study is a subprocess of the real CLI, as a user runs it.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import psutil

from scalestack import baseline, cpucap, stack
from scalestack.topology import REPO, Topology, load


def _study(t: Topology, name: str) -> tuple[dict, Path]:
    result = subprocess.run([sys.executable, "-m", "scalestack.cli", "--profile", t.profile, "bench", name, "--quick"],
                            cwd=REPO, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    lines = result.stdout.strip().splitlines()
    figures = json.loads(Path(lines[-2].removeprefix("figures in ").strip()).read_text())
    plot = Path(lines[-1].removeprefix("plot in ").strip())
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert figures["study"] == name and figures["machine"]["cpus"] >= 1
    return figures, plot


def _sane(run: dict) -> None:
    assert run["requests"] > 0 and run["throughput_rps"] > 0, run
    assert run["failures"] == 0, run["failure_reasons"]
    assert 0 < run["p50_ms"] <= run["p95_ms"] <= run["p99_ms"], run
    assert run["cpu_ms_per_request"] > 0


def _platform_env(t: Topology, key: str) -> set[str]:
    """What every running platform server's processes were started with."""
    values = set()
    for row in stack.status(t):
        if row.role == "platform" and row.pid:
            values.add(psutil.Process(row.pid).environ().get(key))
    return values


def test_latency_study_sweeps_open_loop_rates(running_stack: Topology) -> None:
    figures, _ = _study(running_stack, "latency")
    assert [p["offered_rps"] for p in figures["points"]] == [5, 10]
    for point in figures["points"]:
        _sane(point)
        assert point["loop"] == "open" and point["dropped"] == 0
        assert point["generator_lag_p99_ms"] is not None


def test_cache_study_compares_on_and_off_and_turns_the_cache_back_on(running_stack: Topology) -> None:
    figures, _ = _study(running_stack, "cache")
    on, off = figures["arms"]["cache on"], figures["arms"]["cache off"]
    for arm in (on, off):
        _sane(arm["capacity"])
    # memcached's own counters: the platform looked its data up there with the cache on,
    # and (nearly) never with it off. What remains off is the fan-out consumers' cache
    # generation bumps, which the switch leaves alone.
    assert on["capacity"]["cache_hit_ratio"] > 0
    assert off["capacity"]["cache_lookups_per_request"] < on["capacity"]["cache_lookups_per_request"] / 5
    assert figures["ratios"]["capacity (on/off)"] > 0
    # Back as it was: every platform server runs with the cache on again.
    assert load(running_stack.profile).data_cache is True
    assert _platform_env(running_stack, "DATA_CACHE_ENABLED") == {"true"}


def test_balance_study_compares_haproxy_and_the_smart_client(running_stack: Topology) -> None:
    figures, _ = _study(running_stack, "balance")
    for mode in ("haproxy", "smart"):
        _sane(figures["arms"][mode]["capacity"])
        _sane(figures["arms"][mode]["open"])
    assert load(running_stack.profile).platform_balancing == "haproxy"


def test_scaling_study_caps_cpu_scales_and_loses_a_server_without_errors(running_stack: Topology) -> None:
    figures, _ = _study(running_stack, "scaling")
    points = figures["points"]
    assert [p["servers"] for p in points] == [1, 2]
    for point in points:
        _sane(point)
        # The cap bit: the kernel throttled the servers' groups.
        assert sum(point["throttled_periods"].values()) > 0
        assert len(point["throttled_periods"]) == 2 * point["servers"]
    assert points[0]["efficiency"] == 1.0 and points[1]["efficiency"] > 0
    loss = figures["loss"]
    assert loss["lost"] == ["web-2", "platform-2"]
    # Redundancy: a server lost under load costs capacity, not requests.
    assert loss["failures"] == 0, loss["failure_reasons"]
    assert loss["before_rps"] > 0 and loss["after_rps"] > 0
    # Back as it was: two servers per tier, uncapped.
    t = load(running_stack.profile)
    assert (t.web_servers, t.platform_servers) == (running_stack.web_servers, running_stack.platform_servers)
    _, root = cpucap.hierarchy()
    assert not (root / f"scalestack-{t.profile}").exists()


def test_fanout_study_reports_visibility_by_follower_count(running_stack: Topology) -> None:
    figures, _ = _study(running_stack, "fanout")
    assert [p["followers"] for p in figures["points"]] == [10, 100]
    for point in figures["points"]:
        assert 0 < point["visible_p50_ms"] <= point["visible_p99_ms"] <= point["all_visible_ms"], point


def test_baseline_study_compares_the_stack_with_one_django_process(running_stack: Topology) -> None:
    figures, _ = _study(running_stack, "baseline")
    assert list(figures["arms"]) == ["stack", "baseline (30 s page cache)", "baseline (no cache)"]
    for arm in figures["arms"]:
        _sane(figures["arms"][arm]["capacity"])
        _sane(figures["arms"][arm]["open"])
    # The baseline's process is gone afterwards.
    assert not stack.tcp_open("127.0.0.1", baseline.port(running_stack))


def test_a_study_name_that_does_not_exist_is_refused(running_stack: Topology) -> None:
    result = subprocess.run([sys.executable, "-m", "scalestack.cli", "--profile", running_stack.profile, "bench",
                             "nonsense"], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "invalid choice" in result.stderr
