"""The figures a benchmark reports, from the servers' own accounting (issue 7's groundwork).

Three sources, each read before and after a run and reported as a difference:

- **Latency**: nearest-rank percentiles of the load generator's own timings.
- **Cache hit ratio**: memcached's ``get_hits`` and ``get_misses`` counters
  (its ``stats`` command), summed over the nodes, not anything the application
  says about itself.
- **Where the CPU went**: user plus system CPU seconds of every process of a
  role, its children included (a gunicorn master's workers, a Celery
  worker's pool), read by psutil from the kernel's accounting.

The harness that drives load and prints the tables (``scalestack bench``) is
the rest of issue 7; these functions are what it reports with.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Mapping

import psutil
from pymemcache.client.base import Client


@dataclass(frozen=True)
class Latency:
    """Latency percentiles of one run, in milliseconds."""

    count: int
    p50: float
    p95: float
    p99: float
    max: float

    @classmethod
    def of(cls, timings_ms: Iterable[float]) -> "Latency":
        """Nearest-rank percentiles (every value is one that was measured)."""
        ordered = sorted(timings_ms)
        if not ordered:
            return cls(0, 0.0, 0.0, 0.0, 0.0)

        def rank(p: float) -> float:
            return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]

        return cls(len(ordered), rank(50), rank(95), rank(99), ordered[-1])


def memcached_counters(addresses: Iterable[str]) -> dict[str, dict[str, int]]:
    """``get_hits`` and ``get_misses`` of each node (``host:port``), from memcached itself."""
    counters = {}
    for address in addresses:
        host, port = address.rsplit(":", 1)
        client = Client((host, int(port)), connect_timeout=2, timeout=2)
        try:
            stats = client.stats()
        finally:
            client.close()
        counters[address] = {key: int(stats[key.encode()]) for key in ("get_hits", "get_misses")}
    return counters


def _hits_and_misses(before: Mapping[str, Mapping[str, int]],
                     after: Mapping[str, Mapping[str, int]]) -> tuple[int, int]:
    """Hits and misses between two snapshots, all nodes together.

    A node missing from ``before`` (it was down) counts from zero; one missing
    from ``after`` is left out, since its counters are gone with it.
    """
    hits = misses = 0
    for node, now in after.items():
        then = before.get(node, {"get_hits": 0, "get_misses": 0})
        hits += now["get_hits"] - then["get_hits"]
        misses += now["get_misses"] - then["get_misses"]
    return hits, misses


def lookups(before: Mapping[str, Mapping[str, int]], after: Mapping[str, Mapping[str, int]]) -> int:
    """How many gets all nodes answered between two snapshots (hits and misses)."""
    return sum(_hits_and_misses(before, after))


def hit_ratio(before: Mapping[str, Mapping[str, int]], after: Mapping[str, Mapping[str, int]]) -> float | None:
    """Hits over lookups between two snapshots, all nodes together; ``None`` if there was no lookup."""
    hits, misses = _hits_and_misses(before, after)
    return hits / (hits + misses) if hits + misses else None


def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds of a process and of its living children."""
    try:
        process = psutil.Process(pid)
        total = _cpu(process)
        for child in process.children(recursive=True):
            total += _cpu(child)
        return total
    except psutil.NoSuchProcess:
        return 0.0


def _cpu(process: psutil.Process) -> float:
    """A process's own CPU time, and that of the children it has already reaped
    (a gunicorn worker that was replaced still counts)."""
    try:
        times = process.cpu_times()
    except psutil.NoSuchProcess:
        return 0.0
    return times.user + times.system + times.children_user + times.children_system


def cpu_by_role(pids_by_role: Mapping[str, Iterable[int]]) -> dict[str, float]:
    """CPU seconds so far, summed per role (web, platform, postgres...)."""
    totals = {role: 0.0 for role in pids_by_role}
    for role, pids in pids_by_role.items():
        for pid in pids:
            totals[role] += cpu_seconds(pid)
    return dict(totals)


def cpu_shares(before: Mapping[str, float], after: Mapping[str, float]) -> dict[str, float]:
    """Each role's share of the CPU seconds spent between two readings (they sum to 1)."""
    spent = {role: max(0.0, after[role] - before.get(role, 0.0)) for role in after}
    total = sum(spent.values())
    return {role: (seconds / total if total else 0.0) for role, seconds in spent.items()}
