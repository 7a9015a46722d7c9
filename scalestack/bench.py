"""``scalestack bench``: the social-network workload against the front door, and its figures.

Issue 7's harness, first part: one closed-loop run of ``bench/locustfile.py``
(Locust, headless, bounded in time and in requests, from the load generator's
loopback address), reported from the servers' own accounting
(``scalestack/benchstats.py``): throughput, p50/p95/p99 (Locust's), errors,
the data cache's hit ratio from memcached's counters, and each process type's
share of the CPU. The table goes to the terminal, the JSON to ``results/``.
``--smoke`` is a few seconds of light load, for ``make test``.

Not yet here (the rest of issue 7): open-loop runs, A/B switches, the scaling
curve under fixed CPU shares, the single-process baseline and the plots.
"""
from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import requests

from scalestack import benchstats, stack
from scalestack.source_address import SourceAddressAdapter
from scalestack.topology import LOAD_GENERATOR_SOURCE, REPO, Topology

LOCUSTFILE = REPO / "bench" / "locustfile.py"
RESULTS = REPO / "results"
SEEDED_PASSWORD = "password123"
# Members the harness signs in once; the Locust users share their sessions.
SESSIONS = 8


@dataclass
class BenchResult:
    """One run's figures (see the module docstring)."""

    started: str
    profile: str
    seconds: float
    users: int
    requests: int
    failures: int
    throughput_rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    cache_hit_ratio: float | None
    cpu_share: dict[str, float]
    cpu_seconds: dict[str, float]
    per_request: dict[str, dict[str, float]] = field(default_factory=dict)
    # "closed" (users in a loop) or "open" (a fixed arrival rate, ``offered_rps``).
    loop: str = "closed"
    mix: str = "social"
    offered_rps: float | None = None
    # Open loop: how late the generator started arrivals (its own queueing), and
    # arrivals it dropped because too many were unanswered.
    generator_lag_p99_ms: float | None = None
    dropped: int = 0
    # Once a second: (seconds since start, requests so far, failures so far).
    history: list[tuple[float, int, int]] = field(default_factory=list)
    label: str = ""
    # When ``during``'s action ran, on the history's clock.
    event_at: float | None = None
    # memcached's gets (hits + misses) during the run, all nodes.
    cache_lookups: int = 0
    # Locust's failures: "METHOD name: error" -> occurrences.
    failure_reasons: dict[str, int] = field(default_factory=dict)

    def window_rps(self, start: float, end: float) -> float:
        """Completed requests per second between two moments of the run (from ``history``)."""
        inside = [row for row in self.history if start <= row[0] <= end]
        if len(inside) < 2:
            return 0.0
        (t0, r0, _), (t1, r1, _) = inside[0], inside[-1]
        return (r1 - r0) / (t1 - t0) if t1 > t0 else 0.0


def load_generator_session() -> requests.Session:
    """An HTTP session sending from the load generator's address (exempt from the rate limit)."""
    session = requests.Session()
    session.mount("http://", SourceAddressAdapter(LOAD_GENERATOR_SOURCE))
    return session


def _csrf(html: str) -> str:
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    if not match:
        raise stack.StackError("the login page has no CSRF token")
    return match.group(1)


def _usernames(t: Topology, limit: int = 1000) -> list[str]:
    """Seeded users, most followed first (the workload's skew follows this order)."""
    rows = stack.psql(t, f"SELECT username FROM users ORDER BY followers_count DESC, id LIMIT {int(limit)}",
                      database="scalestack")
    return rows.split()


def _sessions(t: Topology, usernames: list[str]) -> list[dict[str, str]]:
    """Sign in a few seeded members through the site; their session cookies."""
    site = f"http://127.0.0.1:{t.front_port}"
    cookies = []
    for name in usernames[:SESSIONS]:
        client = load_generator_session()
        page = client.get(f"{site}/login", timeout=10)
        response = client.post(f"{site}/login", data={"csrfmiddlewaretoken": _csrf(page.text),
                                                      "username": name, "password": SEEDED_PASSWORD},
                               allow_redirects=False, timeout=10)
        if response.status_code != 302:
            raise stack.StackError(f"could not sign {name} in (HTTP {response.status_code}); is the demo data seeded?")
        cookies.append({c.name: c.value for c in client.cookies if c.name != "csrftoken"})
    return cookies


def _pids_by_role(t: Topology) -> dict[str, list[int]]:
    roles: dict[str, list[int]] = {}
    for row in stack.status(t):
        if row.pid:
            roles.setdefault(row.role, []).append(row.pid)
    return roles


def _locust_totals(stats_csv: Path) -> tuple[dict[str, str], dict[str, dict[str, float]]]:
    """Locust's aggregated row and one row per request name."""
    with stats_csv.open() as handle:
        rows = list(csv.DictReader(handle))
    total = next(r for r in rows if r["Name"] == "Aggregated")
    per = {r["Name"]: {"requests": float(r["Request Count"]), "failures": float(r["Failure Count"]),
                       "p50_ms": float(r["50%"]), "p99_ms": float(r["99%"])}
           for r in rows if r["Name"] != "Aggregated"}
    return total, per


def _locust_history(history_csv: Path) -> tuple[float, list[tuple[float, int, int]]]:
    """Locust's once-a-second aggregated rows: the first one's Unix time, and
    (seconds since it, requests so far, failures so far) for each."""
    if not history_csv.exists():
        return 0.0, []
    with history_csv.open() as handle:
        rows = [r for r in csv.DictReader(handle) if r["Name"] == "Aggregated"]
    if not rows:
        return 0.0, []
    first = int(rows[0]["Timestamp"])
    return float(first), [(float(int(r["Timestamp"]) - first), int(r["Total Request Count"]),
                           int(r["Total Failure Count"])) for r in rows]


def _locust_failures(failures_csv: Path) -> dict[str, int]:
    """Why requests failed, as Locust counted them."""
    if not failures_csv.exists():
        return {}
    with failures_csv.open() as handle:
        return {f"{r['Method']} {r['Name']}: {r['Error']}": int(r["Occurrences"]) for r in csv.DictReader(handle)}


@dataclass
class Workload:
    """Who the load plays: seeded users (most followed first) and signed-in members' cookies."""

    usernames: list[str]
    sessions: list[dict[str, str]]


def prepare(t: Topology) -> Workload:
    """Check the stack answers, and sign the members in once (a run may reuse this)."""
    if not stack.http_ok("127.0.0.1", t.front_port, "/healthz"):
        raise stack.StackError(f"no stack answers on :{t.front_port}; start it with `make up`")
    usernames = _usernames(t)
    return Workload(usernames, _sessions(t, usernames))


def run(t: Topology, seconds: float, users: int = 16, max_requests: int = 200_000, *,
        workload: Workload | None = None, rate: float | None = None, mix: str = "social",
        target: str | None = None, extra_pids: dict[str, list[int]] | None = None,
        during: tuple[float, Callable[[], None]] | None = None, label: str = "") -> BenchResult:
    """One bounded run of the workload; the figures from Locust, memcached and the kernel.

    ``rate`` set: open loop at that many actions a second (``users`` is
    ignored); otherwise ``users`` closed loops. ``target`` is the base URL
    (default: the front door). ``during`` = (seconds, action): the action runs
    that far into the load, e.g. a server lost under load.
    """
    workload = workload or prepare(t)
    target = target or f"http://127.0.0.1:{t.front_port}"
    with tempfile.TemporaryDirectory(prefix="scalestack-bench-") as folder:
        work = Path(folder)
        (work / "users.json").write_text(json.dumps(workload.usernames))
        (work / "sessions.json").write_text(json.dumps(workload.sessions))
        env = {**os.environ, "BENCH_USERS_FILE": str(work / "users.json"),
               "BENCH_SESSIONS_FILE": str(work / "sessions.json"), "BENCH_SOURCE": LOAD_GENERATOR_SOURCE,
               "BENCH_MAX_REQUESTS": str(max_requests), "BENCH_MIX": mix,
               "BENCH_RATE": str(rate or 0), "BENCH_LAG_FILE": str(work / "lag.json")}
        clients = ["Arrivals", "--users", "1", "--spawn-rate", "1"] if rate else \
            ["Member", "--users", str(users), "--spawn-rate", str(users)]
        argv = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", *clients,
                "--run-time", f"{int(seconds)}s", "--stop-timeout", "5", "--host", target,
                "--csv", str(work / "locust"), "--only-summary", "--loglevel", "WARNING",
                "--exit-code-on-error", "0"]
        pids = {**_pids_by_role(t), **(extra_pids or {})}
        nodes = [m.address for m in t.memcached]
        cache_before, cpu_before = benchstats.memcached_counters(nodes), benchstats.cpu_by_role(pids)
        started, clock = datetime.now(timezone.utc), time.monotonic()
        locust = subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True)
        event_at = None
        try:
            if during:
                time.sleep(during[0])
                event_at = time.time()
                during[1]()
            out, err = locust.communicate(timeout=seconds + 60)
        except BaseException:
            locust.kill()
            raise
        elapsed = time.monotonic() - clock
        cache_after, cpu_after = benchstats.memcached_counters(nodes), benchstats.cpu_by_role(pids)
        stats_csv = work / "locust_stats.csv"
        if locust.returncode != 0 or not stats_csv.exists():
            raise stack.StackError(f"Locust failed ({locust.returncode}):\n{out[-2000:]}{err[-2000:]}")
        total, per = _locust_totals(stats_csv)
        history_start, history = _locust_history(work / "locust_stats_history.csv")
        reasons = _locust_failures(work / "locust_failures.csv")
        lag = json.loads((work / "lag.json").read_text()) if rate and (work / "lag.json").exists() else None
    return BenchResult(
        started=started.isoformat(timespec="seconds"), profile=t.profile, seconds=round(elapsed, 1),
        users=0 if rate else users, requests=int(total["Request Count"]), failures=int(total["Failure Count"]),
        throughput_rps=round(float(total["Requests/s"]), 1),
        p50_ms=float(total["50%"]), p95_ms=float(total["95%"]), p99_ms=float(total["99%"]),
        max_ms=round(float(total["Max Response Time"]), 1),
        cache_hit_ratio=benchstats.hit_ratio(cache_before, cache_after),
        cpu_share={k: round(v, 3) for k, v in benchstats.cpu_shares(cpu_before, cpu_after).items()},
        cpu_seconds={k: round(cpu_after[k] - cpu_before.get(k, 0.0), 2) for k in cpu_after},
        per_request=per, loop="open" if rate else "closed", mix=mix, offered_rps=rate,
        generator_lag_p99_ms=benchstats.Latency.of(lag["lags_ms"]).p99 if lag else None,
        dropped=lag["dropped"] if lag else 0, history=history, label=label,
        cache_lookups=benchstats.lookups(cache_before, cache_after), failure_reasons=reasons, event_at=round(event_at - history_start, 1) if event_at and history_start else None,
    )


def save(result: BenchResult, name: str = "bench") -> Path:
    """Write the figures as JSON under ``results/``; return the file."""
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.fromisoformat(result.started).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS / f"{name}-{stamp}.json"
    path.write_text(json.dumps(asdict(result), indent=2))
    return path
