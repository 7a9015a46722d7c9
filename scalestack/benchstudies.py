"""``scalestack bench STUDY``: the post's claims, each measured by one command.

Every study runs on the stack that is up (``make up``), changes what it
compares through the stack's own switches, puts the stack back as it found
it, and returns plain figures (saved as JSON and plotted by
``scalestack/benchplots.py``):

- ``latency``: open-loop runs at rising arrival rates, until the stack
  saturates: latency against throughput, without coordinated omission.
- ``cache``: the platform's data cache on, then off (a rolling restart of the
  platform servers): capacity, latency under the same offered load, CPU per
  request, memcached's hit ratio. Reported as on/off ratios.
- ``balance``: web→platform through HAProxy's pool, then through the smart
  client (a rolling restart of the web servers).
- ``fanout``: post-to-visible latency for authors with 10, 1,000 and 10,000
  followers (``scalestack/benchfanout.py``).
- ``scaling``: 1, 2 and 4 servers per tier, each web and platform server held
  to the same CPU share (``scalestack/cpucap.py``); scaling efficiency; then
  one of four servers per tier lost under load.
- ``baseline``: the same pages from a single Django process reading
  PostgreSQL and memcached directly (``bench/baseline``), against the stack.

Capacity is a closed-loop run's throughput with enough users to keep every
server busy; latency under load is an open-loop run's, at a fixed rate.
"""
from __future__ import annotations

import os
import time
from dataclasses import asdict
from typing import Any, Callable

import psutil

from scalestack import bench, stack
from scalestack.topology import Topology

Say = Callable[[str], None]
Figures = dict[str, Any]

# The defaults of a full run on this machine (2 cores); every study takes its own.
WARMUP_SECONDS = 10
CAPACITY_SECONDS = 30
CAPACITY_USERS = 16
SWEEP_SECONDS = 15
SWEEP_RATES = (10, 20, 30, 40, 50, 60, 70, 80)


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a and b else None


def _summary(result: bench.BenchResult) -> Figures:
    """The headline figures of one run, and CPU seconds per request (all processes of the stack)."""
    cpu = sum(result.cpu_seconds.values())
    return {"label": result.label, "loop": result.loop, "offered_rps": result.offered_rps,
            "throughput_rps": result.throughput_rps, "requests": result.requests, "failures": result.failures,
            "p50_ms": result.p50_ms, "p95_ms": result.p95_ms, "p99_ms": result.p99_ms,
            "cache_hit_ratio": result.cache_hit_ratio, "cache_lookups": result.cache_lookups,
            "cache_lookups_per_request": round(result.cache_lookups / result.requests, 2) if result.requests else None,
            "dropped": result.dropped,
            "generator_lag_p99_ms": result.generator_lag_p99_ms,
            "cpu_ms_per_request": round(cpu * 1000 / result.requests, 2) if result.requests else None,
            "cpu_share": result.cpu_share, "failure_reasons": result.failure_reasons}


def saturated(run: Figures) -> bool:
    """An open-loop step past the knee: arrivals dropped, over 1 % errors, or a p99 over 5 s."""
    return run["dropped"] > 0 or run["failures"] > 0.01 * max(1, run["requests"]) or run["p99_ms"] > 5000


def sweep(t: Topology, workload: bench.Workload, rates: tuple[float, ...], seconds: float, label: str,
          say: Say, mix: str = "social") -> list[Figures]:
    """Open-loop runs at rising rates, stopping after the first saturated step."""
    points = []
    for rate in rates:
        result = bench.run(t, seconds, workload=workload, rate=rate, mix=mix, label=f"{label} @{rate}/s")
        say(f"  {label}: offered {rate}/s → {result.throughput_rps} req/s, p50 {result.p50_ms:.0f} ms, "
            f"p99 {result.p99_ms:.0f} ms, failed {result.failures}, dropped {result.dropped}")
        points.append(_summary(result))
        if saturated(points[-1]):
            break
    return points


def capacity(t: Topology, workload: bench.Workload, users: int, seconds: float, label: str, say: Say,
             mix: str = "social", warmup: float = WARMUP_SECONDS, **run_options: Any) -> Figures:
    """A closed-loop run with enough users to keep the servers busy (after a warm-up that is not kept).

    ``run_options`` go to :func:`scalestack.bench.run` (e.g. another ``target``).
    """
    if warmup:
        bench.run(t, warmup, users=users, workload=workload, mix=mix, label=f"{label} (warm-up)", **run_options)
    result = bench.run(t, seconds, users=users, workload=workload, mix=mix, label=label, **run_options)
    say(f"  {label}: {result.throughput_rps} req/s with {users} users, p50 {result.p50_ms:.0f} ms, "
        f"p99 {result.p99_ms:.0f} ms, failed {result.failures}")
    return _summary(result)


# --- the studies ---------------------------------------------------------------
def latency_study(t: Topology, say: Say = print, rates: tuple[float, ...] = SWEEP_RATES,
                  seconds: float = SWEEP_SECONDS, warmup: float = WARMUP_SECONDS) -> Figures:
    """Latency against throughput, open loop, on the stack as it is."""
    workload = bench.prepare(t)
    bench.run(t, warmup, users=8, workload=workload, label="warm-up")
    return {"study": "latency", "points": sweep(t, workload, rates, seconds, "stack", say)}


def cache_study(t: Topology, say: Say = print, rates: tuple[float, ...] = SWEEP_RATES,
                seconds: float = SWEEP_SECONDS, capacity_seconds: float = CAPACITY_SECONDS,
                users: int = CAPACITY_USERS, warmup: float = WARMUP_SECONDS) -> Figures:
    """The data cache on vs off: capacity, latency at equal offered load, CPU per request."""
    workload = bench.prepare(t)
    arms: Figures = {}
    original = t.data_cache
    try:
        for on in (True, False):
            name = "cache on" if on else "cache off"
            say(f"{name}: restarting the platform servers")
            t = stack.set_data_cache(t, on, say=lambda m: None)
            arms[name] = {"capacity": capacity(t, workload, users, capacity_seconds, name, say, warmup=warmup),
                          "sweep": sweep(t, workload, rates, seconds, name, say)}
    finally:
        if t.data_cache != original:
            t = stack.set_data_cache(t, original, say=lambda m: None)
    return {"study": "cache", "arms": arms, "ratios": cache_ratios(arms)}


def cache_ratios(arms: Figures) -> dict[str, float | None]:
    """On/off ratios; latency compared at the highest rate both arms sustained."""
    on, off = arms["cache on"], arms["cache off"]
    shared = _shared_rate(on["sweep"], off["sweep"])
    return {
        "capacity (on/off)": _ratio(on["capacity"]["throughput_rps"], off["capacity"]["throughput_rps"]),
        "CPU per request (off/on)": _ratio(off["capacity"]["cpu_ms_per_request"],
                                           on["capacity"]["cpu_ms_per_request"]),
        f"p50 at {shared}/s (off/on)": _ratio(*_at(shared, off["sweep"], on["sweep"], "p50_ms")),
        f"p99 at {shared}/s (off/on)": _ratio(*_at(shared, off["sweep"], on["sweep"], "p99_ms")),
    }


def _shared_rate(a: list[Figures], b: list[Figures]) -> float | None:
    """The highest offered rate both arms sustained unsaturated (where latency is comparable)."""
    ok = lambda points: {p["offered_rps"] for p in points if not saturated(p)}  # noqa: E731
    common = ok(a) & ok(b)
    return max(common) if common else None


def _at(rate: float | None, a: list[Figures], b: list[Figures], key: str) -> tuple[float | None, float | None]:
    pick = lambda points: next((p[key] for p in points if p["offered_rps"] == rate), None)  # noqa: E731
    return pick(a), pick(b)


def balance_study(t: Topology, say: Say = print, rate: float = 30, seconds: float = CAPACITY_SECONDS,
                  users: int = CAPACITY_USERS, warmup: float = WARMUP_SECONDS) -> Figures:
    """Web→platform through HAProxy vs the smart client: capacity and latency at one offered rate."""
    workload = bench.prepare(t)
    arms: Figures = {}
    original = t.platform_balancing
    try:
        for mode in ("haproxy", "smart"):
            say(f"{mode}: restarting the web servers")
            t = stack.set_balancing(t, mode, say=lambda m: None)
            capacity_run = capacity(t, workload, users, seconds, mode, say, warmup=warmup)
            fixed = bench.run(t, seconds, workload=workload, rate=rate, label=f"{mode} @{rate}/s")
            say(f"  {mode} @{rate}/s: p50 {fixed.p50_ms:.0f} ms, p99 {fixed.p99_ms:.0f} ms")
            arms[mode] = {"capacity": capacity_run, "open": _summary(fixed)}
    finally:
        if t.platform_balancing != original:
            t = stack.set_balancing(t, original, say=lambda m: None)
    h, s = arms["haproxy"], arms["smart"]
    return {"study": "balance", "rate": rate, "arms": arms, "ratios": {
        "capacity (smart/haproxy)": _ratio(s["capacity"]["throughput_rps"], h["capacity"]["throughput_rps"]),
        f"p50 at {rate}/s (haproxy/smart)": _ratio(h["open"]["p50_ms"], s["open"]["p50_ms"]),
        f"p99 at {rate}/s (haproxy/smart)": _ratio(h["open"]["p99_ms"], s["open"]["p99_ms"]),
        "CPU per request (haproxy/smart)": _ratio(h["capacity"]["cpu_ms_per_request"],
                                                  s["capacity"]["cpu_ms_per_request"]),
    }}


def scaling_study(t: Topology, say: Say = print, sizes: tuple[int, ...] = (1, 2, 4), cpus: float = 0.1,
                  seconds: float = CAPACITY_SECONDS, users_per_server: int = 4,
                  loss_seconds: float = 40) -> Figures:
    """Capacity at 1, 2 and 4 servers per tier, each server held to ``cpus`` CPUs; then one of four lost.

    ``users_per_server`` closed loops per server keep each one busy. More only
    queue inside a server whose CPU is capped: its health checks then time out,
    HAProxy marks it DOWN, and the run measures an outage, not capacity.
    """
    from scalestack import cpucap

    workload = bench.prepare(t)
    original = (t.web_servers, t.platform_servers)
    points: list[Figures] = []
    loss: Figures = {}
    scope = f"scalestack-{t.profile}"

    def servers(topology: Topology) -> dict[str, int]:
        names = {p.name for p in topology.web + topology.platform}
        return {row.name: row.pid for row in stack.status(topology) if row.name in names and row.pid}

    try:
        for n in sizes:
            say(f"{n} web and {n} platform servers, {cpus} CPU each")
            t = stack.scale(t, web=n, platform=n, say=lambda m: None)
            with cpucap.capped(scope, servers(t), cpus) as caps:
                point = capacity(t, workload, users_per_server * n, seconds, f"{n} per tier", say, warmup=5)
                point["servers"] = n
                point["throttled_periods"] = {name: caps.throttled(name) for name in caps.groups}
                points.append(point)
        n = max(sizes)
        lost = [t.web[-1].name, t.platform[-1].name]
        say(f"{n} per tier under load; {' and '.join(lost)} stopped {loss_seconds / 2:.0f} s in")
        with cpucap.capped(scope, servers(t), cpus):
            bench.run(t, 5, users=users_per_server * n, workload=workload, label="warm-up")
            result = bench.run(t, loss_seconds, users=users_per_server * n, workload=workload,
                               during=(loss_seconds / 2, lambda: [stack.stop(t, name) for name in lost]),
                               label=f"lose one of {n}")
        lost_at = result.event_at if result.event_at is not None else loss_seconds / 2
        # The seconds around the loss are left out: stopping takes a moment, and
        # HAProxy needs a failed check to notice a server that is gone.
        before, after = result.window_rps(2, lost_at - 1), result.window_rps(lost_at + 3, lost_at + loss_seconds)
        loss = {**_summary(result), "servers": n, "lost": lost, "before_rps": round(before, 1),
                "after_rps": round(after, 1), "remaining": round(after / before, 2) if before else None,
                "history": result.history, "lost_at": lost_at}
        say(f"  before {before:.1f} req/s, after {after:.1f} req/s ({loss['remaining']:.0%} remains), "
            f"failed {result.failures} of {result.requests}")
        for name in lost:
            stack.start(t, name)
    finally:
        t = stack.scale(t, web=original[0], platform=original[1], say=lambda m: None)
    one = points[0]["throughput_rps"]
    for point in points:
        point["efficiency"] = round(point["throughput_rps"] / (point["servers"] * one), 2) if one else None
    return {"study": "scaling", "cpus_per_server": cpus, "points": points, "loss": loss}


def baseline_study(t: Topology, say: Say = print, users: int = CAPACITY_USERS, rate: float = 20,
                   seconds: float = CAPACITY_SECONDS, warmup: float = WARMUP_SECONDS) -> Figures:
    """The read pages from the stack, and from one Django process on PostgreSQL and memcached.

    Two baselines: the usual single app, which caches each page's data for
    30 s and never invalidates it (pages up to 30 s stale), and the same app
    uncached, whose pages are as fresh as the stack's.
    """
    from scalestack import baseline

    workload = bench.prepare(t)
    arms: Figures = {}
    arms["stack"] = {"capacity": capacity(t, workload, users, seconds, "stack", say, mix="reads", warmup=warmup)}
    fixed = bench.run(t, seconds, workload=workload, rate=rate, mix="reads", label=f"stack @{rate}/s")
    arms["stack"]["open"] = _summary(fixed)
    for name, ttl in (("baseline (30 s page cache)", 30), ("baseline (no cache)", 0)):
        with baseline.running(t, cache_ttl=ttl) as process:
            target = f"http://127.0.0.1:{baseline.port(t)}"
            pids = {"baseline": [process.pid]}
            closed = capacity(t, workload, users, seconds, name, say, mix="reads", warmup=max(warmup, 1),
                              target=target, extra_pids=pids)
            fixed = bench.run(t, seconds, workload=workload, rate=rate, mix="reads", target=target, extra_pids=pids,
                              label=f"{name} @{rate}/s")
            arms[name] = {"capacity": closed, "open": _summary(fixed)}
    for arm in arms.values():
        say(f"  {arm['open']['label']}: p50 {arm['open']['p50_ms']:.0f} ms, p99 {arm['open']['p99_ms']:.0f} ms")
    return {"study": "baseline", "rate": rate, "arms": arms, "ratios": baseline_ratios(arms, rate)}


def baseline_ratios(arms: Figures, rate: float) -> dict[str, float | None]:
    """The stack against each baseline: above 1 means the stack has more of it."""
    s = arms["stack"]
    ratios: dict[str, float | None] = {}
    for name, b in arms.items():
        if name == "stack":
            continue
        short = name.removeprefix("baseline ")
        ratios[f"capacity, stack/baseline {short}"] = _ratio(s["capacity"]["throughput_rps"],
                                                             b["capacity"]["throughput_rps"])
        ratios[f"p50 at {rate}/s, stack/baseline {short}"] = _ratio(s["open"]["p50_ms"], b["open"]["p50_ms"])
        ratios[f"p99 at {rate}/s, stack/baseline {short}"] = _ratio(s["open"]["p99_ms"], b["open"]["p99_ms"])
        ratios[f"CPU per request, stack/baseline {short}"] = _ratio(s["capacity"]["cpu_ms_per_request"],
                                                                    b["capacity"]["cpu_ms_per_request"])
    return ratios


def fanout_study(t: Topology, say: Say = print, followers: tuple[int, ...] = (10, 1_000, 10_000),
                 posts: int = 5) -> Figures:
    """Post-to-visible latency by the author's follower count."""
    from scalestack import benchfanout

    results = benchfanout.run(t, follower_counts=followers, posts=posts)
    for result in results:
        say(f"  {result.followers:,} followers: visible to half {result.visible_p50_ms:.0f} ms, "
            f"99 % {result.visible_p99_ms:.0f} ms, all {result.all_visible_ms:.0f} ms after the ack")
    return {"study": "fanout", "points": [asdict(r) for r in results]}


# ``--quick``: each study in a few seconds per step, for the integration suite (it
# checks the harness works, never how fast anything is).
QUICK: dict[str, dict[str, Any]] = {
    "latency": {"rates": (5, 10), "seconds": 4, "warmup": 2},
    "cache": {"rates": (5,), "seconds": 4, "capacity_seconds": 4, "users": 4, "warmup": 2},
    "balance": {"rate": 5, "seconds": 4, "users": 4, "warmup": 2},
    "fanout": {"followers": (10, 100), "posts": 1},
    "scaling": {"sizes": (1, 2), "cpus": 0.25, "seconds": 5, "users_per_server": 3, "loss_seconds": 16},
    "baseline": {"users": 4, "rate": 5, "seconds": 4, "warmup": 2},
}

STUDIES: dict[str, Callable[..., Figures]] = {
    "latency": latency_study, "cache": cache_study, "balance": balance_study, "fanout": fanout_study,
    "scaling": scaling_study, "baseline": baseline_study,
}


def run_study(t: Topology, name: str, say: Say = print, **options: Any) -> Figures:
    """One study, stamped with when and where it ran."""
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    clock = time.monotonic()
    figures = STUDIES[name](t, say=say, **options)
    figures.update(started=started, minutes=round((time.monotonic() - clock) / 60, 1), profile=t.profile,
                   machine={"cpus": os.cpu_count(), "memory_gb": round(psutil.virtual_memory().total / 2**30)})
    return figures


# --- the terminal's tables ------------------------------------------------------
Rows = list[list[str]]


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _run_rows(runs: dict[str, Figures]) -> Rows:
    rows = [["run", "req/s", "p50 ms", "p99 ms", "failed", "cache hits", "CPU ms/req"]]
    for name, run in runs.items():
        hits = "-" if run["cache_hit_ratio"] is None else f"{run['cache_hit_ratio']:.0%}"
        rows.append([name, f"{run['throughput_rps']:,.1f}", _ms(run["p50_ms"]), _ms(run["p99_ms"]),
                     f"{run['failures']:,}", hits, _ms(run["cpu_ms_per_request"])])
    return rows


def _ratio_rows(ratios: dict[str, float | None]) -> Rows:
    return [["ratio", "value"], *([name, "-" if v is None else f"{v:.2f}×"] for name, v in ratios.items())]


def tables(figures: Figures) -> list[tuple[str, Rows]]:
    """What the terminal shows for a study's figures: (title, rows with a header row first)."""
    study = figures["study"]
    if study == "latency":
        return [("latency against throughput (open loop)", _run_rows({p["label"]: p for p in figures["points"]}))]
    if study in ("cache", "balance", "baseline"):
        runs = {}
        for name, arm in figures["arms"].items():
            runs.update({f"{name}: capacity": arm["capacity"]})
            if "open" in arm:
                runs[arm["open"]["label"]] = arm["open"]
            runs.update({p["label"]: p for p in arm.get("sweep", [])})
        return [(f"{study}: runs", _run_rows(runs)), (f"{study}: ratios", _ratio_rows(figures["ratios"]))]
    if study == "scaling":
        rows = [["servers per tier", "req/s", "efficiency", "p50 ms", "p99 ms", "failed"]]
        for p in figures["points"]:
            rows.append([str(p["servers"]), f"{p['throughput_rps']:,.1f}", f"{p['efficiency']:.0%}",
                         _ms(p["p50_ms"]), _ms(p["p99_ms"]), f"{p['failures']:,}"])
        result = [(f"scaling ({figures['cpus_per_server']} CPU per server)", rows)]
        loss = figures["loss"]
        if loss:
            result.append((f"one of {max(p['servers'] for p in figures['points'])} lost under load", [
                ["before req/s", "after req/s", "remaining", "requests", "failed"],
                [f"{loss['before_rps']:,.1f}", f"{loss['after_rps']:,.1f}", f"{loss['remaining']:.0%}",
                 f"{loss['requests']:,}", f"{loss['failures']:,}"]]))
        return result
    if study == "fanout":
        rows = [["followers", "ack p50 ms", "half see it", "99 % see it", "all see it", "read via API"]]
        for p in figures["points"]:
            rows.append([f"{p['followers']:,}", _ms(p["ack_p50_ms"]), _ms(p["visible_p50_ms"]),
                         _ms(p["visible_p99_ms"]), _ms(p["all_visible_ms"]), _ms(p["api_visible_ms"])])
        return [("fan-out: ms after the acknowledgement", rows)]
    raise ValueError(f"unknown study {study!r}")
