"""A fixed CPU share per server: what makes one machine stand in for several.

The post's horizontal scalability says capacity grows with the number of
servers. On one machine with two cores, four gunicorn servers would simply
share the same two cores, and "more servers" would measure nothing. So the
scaling study gives every web and platform server a fixed slice of CPU, as if
each ran on its own small machine, with the kernel's CFS bandwidth control:
a quota of CPU time per period (``cpu.max`` in cgroup v2,
``cpu.cfs_quota_us`` / ``cpu.cfs_period_us`` in cgroup v1). Docker's
``--cpus`` is the same mechanism.

A server is a process tree (a gunicorn master and its workers), so every
process of the tree joins the group; processes it forks later inherit it.
``release`` puts every process back where it was and removes the groups, so
the stack runs unlimited again after the study.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Mapping

import psutil

PERIOD_US = 100_000
V2_ROOT = Path("/sys/fs/cgroup")
V1_ROOT = Path("/sys/fs/cgroup/cpu")


class CpuCapError(RuntimeError):
    """The kernel offers no CPU controller this process may use."""


def hierarchy() -> tuple[str, Path]:
    """("v2", root) when the unified hierarchy has the cpu controller, else ("v1", the cpu controller's root)."""
    controllers = V2_ROOT / "cgroup.controllers"
    if controllers.exists() and "cpu" in controllers.read_text().split():
        return "v2", V2_ROOT
    if (V1_ROOT / "cpu.cfs_quota_us").exists():
        return "v1", V1_ROOT
    raise CpuCapError("no cgroup CPU controller is mounted (neither cgroup v2's cpu nor v1's cpu)")


def _current_group(pid: int, version: str) -> str:
    """The process's group in the hierarchy we use, e.g. "/" (from /proc/<pid>/cgroup)."""
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if (version == "v2" and controllers == "") or (version == "v1" and "cpu" in controllers.split(",")):
            return path
    return "/"


def tree(pid: int) -> list[int]:
    """A process and all its descendants (a server's master and workers)."""
    try:
        parent = psutil.Process(pid)
        return [pid, *(child.pid for child in parent.children(recursive=True))]
    except psutil.NoSuchProcess:
        return []


@dataclass
class CpuCaps:
    """CPU groups under one scope (``scalestack-<profile>``); each holds one server's process tree."""

    scope: str
    version: str = ""
    root: Path = Path()
    # pid -> the group it came from, to put it back.
    origin: dict[int, str] = field(default_factory=dict)
    groups: dict[str, Path] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.version, self.root = hierarchy()

    def cap(self, name: str, pid: int, cpus: float) -> Path:
        """Limit the process tree of ``pid`` to ``cpus`` CPUs (0.25 = a quarter of one core)."""
        group = self.root / self.scope / name
        group.mkdir(parents=True, exist_ok=True)
        quota = max(1000, int(cpus * PERIOD_US))
        if self.version == "v2":
            (group / "cpu.max").write_text(f"{quota} {PERIOD_US}")
        else:
            (group / "cpu.cfs_period_us").write_text(str(PERIOD_US))
            (group / "cpu.cfs_quota_us").write_text(str(quota))
        for member in tree(pid):
            self.origin.setdefault(member, _current_group(member, self.version))
            try:
                (group / "cgroup.procs").write_text(str(member))
            except ProcessLookupError:
                pass  # it exited between listing and moving
        self.groups[name] = group
        return group

    def throttled(self, name: str) -> int:
        """How many periods the group hit its quota (the cap really bit), from ``cpu.stat``."""
        stat = dict(line.split() for line in (self.groups[name] / "cpu.stat").read_text().splitlines())
        return int(stat.get("nr_throttled", 0))

    def release(self) -> None:
        """Every capped process back to its own group; the groups removed."""
        for group in self.groups.values():
            for line in (group / "cgroup.procs").read_text().split():
                pid = int(line)
                back = self.root / self.origin.get(pid, "/").lstrip("/")
                try:
                    (back / "cgroup.procs").write_text(str(pid))
                except (ProcessLookupError, OSError):
                    # Gone, or its old group went away: the scope's parent then.
                    try:
                        (self.root / "cgroup.procs").write_text(str(pid))
                    except ProcessLookupError:
                        pass
            group.rmdir()
        self.groups.clear()
        scope = self.root / self.scope
        if scope.exists() and not any(p.is_dir() for p in scope.iterdir()):
            scope.rmdir()


@contextmanager
def capped(scope: str, servers: Mapping[str, int], cpus: float) -> Iterator[CpuCaps]:
    """``servers`` (name -> pid) each limited to ``cpus`` CPUs for the block, then released."""
    caps = CpuCaps(scope)
    try:
        for name, pid in servers.items():
            caps.cap(name, pid, cpus)
        yield caps
    finally:
        caps.release()
