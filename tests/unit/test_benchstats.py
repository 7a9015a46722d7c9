"""The benchmark figures, from the servers' own accounting: percentiles, memcached's counters, CPU per role."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import psutil
import pytest
from pymemcache.client.base import Client

from scalestack.benchstats import Latency, cpu_by_role, cpu_seconds, cpu_shares, hit_ratio, lookups, memcached_counters


def test_percentiles_are_nearest_rank_values_that_were_measured() -> None:
    latency = Latency.of(float(ms) for ms in range(1, 101))
    assert latency == Latency(count=100, p50=50.0, p95=95.0, p99=99.0, max=100.0)
    assert Latency.of([7.0]) == Latency(1, 7.0, 7.0, 7.0, 7.0)
    assert Latency.of([]).count == 0


@pytest.fixture
def memcached() -> Iterator[str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    args = ["/usr/bin/memcached", "-l", "127.0.0.1", "-p", str(port), "-U", "0", "-m", "8"]
    # As root, memcached insists on dropping to a user of its own.
    process = subprocess.Popen([*args, "-u", "memcache"] if os.geteuid() == 0 else args)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "memcached did not start"
                time.sleep(0.05)
        yield f"127.0.0.1:{port}"
    finally:
        process.kill()
        process.wait()


def test_the_hit_ratio_comes_from_memcacheds_own_counters(memcached: str) -> None:
    before = memcached_counters([memcached])
    host, port = memcached.rsplit(":", 1)
    client = Client((host, int(port)))
    client.set("present", b"1")
    for key in ("present", "present", "present", "absent"):
        client.get(key)
    client.close()
    after = memcached_counters([memcached])
    assert after[memcached]["get_hits"] - before[memcached]["get_hits"] == 3
    assert hit_ratio(before, after) == 0.75
    assert lookups(before, after) == 4


def test_the_hit_ratio_sums_the_nodes_and_survives_one_coming_or_going() -> None:
    before = {"a": {"get_hits": 10, "get_misses": 10}, "gone": {"get_hits": 5, "get_misses": 0}}
    after = {"a": {"get_hits": 16, "get_misses": 12}, "new": {"get_hits": 2, "get_misses": 0}}
    assert hit_ratio(before, after) == 8 / 10
    assert hit_ratio(after, after) is None
    assert lookups(before, after) == 10 and lookups(after, after) == 0


BURN = "import time\nend = time.process_time() + 0.3\nwhile time.process_time() < end: pass\n"


def test_cpu_seconds_include_the_children_a_server_forks() -> None:
    # A parent that only sleeps once its child, which burns 0.3 s of CPU, is
    # done: the way a gunicorn master looks after a worker was replaced.
    burner = subprocess.Popen([sys.executable, "-c",
                               f"import subprocess, sys, time; subprocess.run([sys.executable, '-c', {BURN!r}]); "
                               "time.sleep(30)"])
    try:
        deadline = time.monotonic() + 20
        while cpu_seconds(burner.pid) < 0.3:
            assert time.monotonic() < deadline, "the child's CPU time was not counted"
            time.sleep(0.05)
        shares = cpu_shares({"web": 0.0, "idle": 0.0}, cpu_by_role({"web": [burner.pid], "idle": []}))
        assert shares == {"web": 1.0, "idle": 0.0}
    finally:
        burner.kill()
        burner.wait()


def test_cpu_seconds_include_living_children() -> None:
    # The parent waits on a child that burns 0.3 s and then stays alive: a
    # gunicorn master and a busy worker.
    burn_then_sleep = BURN + "time.sleep(30)\n"
    parent = subprocess.Popen([sys.executable, "-c",
                               f"import subprocess, sys; subprocess.run([sys.executable, '-c', {burn_then_sleep!r}])"])
    try:
        deadline = time.monotonic() + 20
        while cpu_seconds(parent.pid) < 0.3:
            assert time.monotonic() < deadline, "the living child's CPU time was not counted"
            time.sleep(0.05)
    finally:
        for child in psutil.Process(parent.pid).children(recursive=True):
            child.kill()
        parent.kill()
        parent.wait()


def test_cpu_shares_split_the_seconds_spent_between_readings() -> None:
    before = {"web": 10.0, "platform": 4.0, "postgres": 1.0}
    after = {"web": 13.0, "platform": 4.5, "postgres": 1.5}
    assert cpu_shares(before, after) == {"web": 0.75, "platform": 0.125, "postgres": 0.125}
