"""scalestack.cpucap against the kernel's own cgroups: a real process tree, a real quota."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from scalestack import cpucap

BUSY = "import os, time\nchild = os.fork()\nwhile True: pass\n"


def _writable() -> bool:
    try:
        version, root = cpucap.hierarchy()
    except cpucap.CpuCapError:
        return False
    return os.access(root, os.W_OK)


pytestmark = pytest.mark.skipif(not _writable(), reason="no writable cgroup CPU controller here")


@pytest.fixture
def busy_tree():
    """A spinning process with a spinning child (a master and a worker)."""
    process = subprocess.Popen([sys.executable, "-c", BUSY])
    try:
        deadline = time.monotonic() + 5
        while len(cpucap.tree(process.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        yield process
    finally:
        for pid in reversed(cpucap.tree(process.pid)):
            os.kill(pid, 9)
        process.wait()


def test_a_capped_tree_is_throttled_then_released(busy_tree: subprocess.Popen) -> None:
    pids = cpucap.tree(busy_tree.pid)
    assert len(pids) == 2
    before = {pid: cpucap._current_group(pid, cpucap.hierarchy()[0]) for pid in pids}
    scope = f"scalestack-unit-{os.getpid()}"
    with cpucap.capped(scope, {"web-1": busy_tree.pid}, cpus=0.1) as caps:
        group = caps.groups["web-1"]
        # Both processes of the tree joined the group, whose quota is 10 % of a period.
        assert {int(p) for p in (group / "cgroup.procs").read_text().split()} == set(pids)
        quota = (group / "cpu.max").read_text().split()[0] if caps.version == "v2" \
            else (group / "cpu.cfs_quota_us").read_text().strip()
        assert int(quota) == cpucap.PERIOD_US // 10
        # Two spinning processes against a tenth of a CPU: the kernel throttles them.
        deadline = time.monotonic() + 5
        while caps.throttled("web-1") == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert caps.throttled("web-1") > 0
    # Released: back in their own groups, and the groups are gone.
    assert {pid: cpucap._current_group(pid, caps.version) for pid in pids} == before
    assert not (caps.root / scope).exists()


def test_tree_of_a_missing_process_is_empty() -> None:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    assert cpucap.tree(process.pid) == []


def test_the_group_is_named_under_the_scope(busy_tree: subprocess.Popen) -> None:
    scope = f"scalestack-unit-{os.getpid()}-b"
    caps = cpucap.CpuCaps(scope)
    try:
        group = caps.cap("platform-2", busy_tree.pid, cpus=0.5)
        assert group == caps.root / scope / "platform-2"
    finally:
        caps.release()
    assert not (caps.root / scope).exists()
