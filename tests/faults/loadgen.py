"""Run Locust against the faults stack's front door and turn its request log into figures.

Locust runs in a subprocess (it monkey-patches the standard library with gevent
when imported, which must not happen inside pytest). ``tests/faults/locustfile.py``
appends one JSON line per request, and one per acknowledged write, to a file;
the test marks wall-clock phase boundaries (before, during and after a fault)
while the load runs, and this module computes per phase: requests, failures,
read-only refusals, p50, p99 and maximum latency.

A request counts as **failed** if it got a 5xx, a 429, a connection error or a
timeout (the issue's definition), with one exception: a write answered 503
by a page that says the site is read-only is a **read-only refusal**, counted
apart (correct only while the primary database is down; the tests assert where
they may happen). A 4xx other than 429, or a write sent to the login page (a
lost session), is a **client error**: not in the issue's definition of a
failure, but it means the load did not do what it meant to, so it is counted
and asserted as well.

Load is bounded in time (Locust's ``--run-time``, and the test stops it as soon
as its phases are done) and in count (``LOADGEN_MAX_REQUESTS``), and goes to
loopback only.
"""
from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from scalestack.topology import LOAD_GENERATOR_SOURCE, REPO, Topology

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
# The load: modest, because two cores are shared with some 25 processes.
MEMBERS = 8
READERS = 4
# Upper bounds only: every test stops its load as soon as its phases are done.
MAX_SECONDS = 120
MAX_REQUESTS = 20_000

OK, FAILURE, READ_ONLY, CLIENT_ERROR = "ok", "failure", "read-only refusal", "client error"


def classify(record: dict[str, Any]) -> str:
    """What one request's outcome counts as (see the module docstring)."""
    status = record["status"]
    if status == 0 or status >= 500 or status == 429:
        if status == 503 and record["kind"] == "write" and record["read_only"]:
            return READ_ONLY
        return FAILURE
    if 400 <= status < 500:
        return CLIENT_ERROR
    if record["kind"] == "write" and (record.get("location") or "").startswith("/login"):
        return CLIENT_ERROR
    return OK


def percentile(values: list[float], p: float) -> float:
    """The nearest-rank percentile (``p`` in 0..100) of ``values``; 0 for none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


@dataclass
class Figures:
    """The figures of one phase (or of the whole run)."""

    phase: str
    seconds: float
    requests: int
    failures: int
    read_only_refusals: int
    client_errors: int
    writes: int
    p50_ms: float
    p99_ms: float
    max_ms: float

    @classmethod
    def of(cls, phase: str, seconds: float, records: list[dict[str, Any]]) -> "Figures":
        """Compute the figures of ``records``."""
        outcomes = Counter(classify(r) for r in records)
        latencies = [r["ms"] for r in records]
        return cls(
            phase=phase, seconds=round(seconds, 1), requests=len(records),
            failures=outcomes[FAILURE], read_only_refusals=outcomes[READ_ONLY],
            client_errors=outcomes[CLIENT_ERROR], writes=sum(r["kind"] == "write" for r in records),
            p50_ms=round(percentile(latencies, 50), 1), p99_ms=round(percentile(latencies, 99), 1),
            max_ms=round(max(latencies, default=0.0), 1),
        )


@dataclass
class LoadResult:
    """Everything one load run recorded, split into its phases."""

    fault: str
    phases: list[tuple[str, float, float]]
    records: list[dict[str, Any]]
    acks: list[dict[str, Any]]
    extra: dict[str, Any] = field(default_factory=dict)

    def start_of(self, name: str) -> float:
        """When phase ``name`` began (a Unix time)."""
        return next(start for phase, start, _ in self.phases if phase == name)

    def in_phase(self, name: str) -> list[dict[str, Any]]:
        """The requests that started in phase ``name``."""
        for phase, start, end in self.phases:
            if phase == name:
                return [r for r in self.records if start <= r["t"] < end]
        raise KeyError(name)

    @property
    def figures(self) -> list[Figures]:
        """Per phase, then ``all`` for the whole run."""
        rows = [Figures.of(name, end - start, self.in_phase(name)) for name, start, end in self.phases]
        whole = self.phases[-1][2] - self.phases[0][1] if self.phases else 0.0
        return [*rows, Figures.of("all", whole, self.records)]

    @property
    def total(self) -> Figures:
        """The figures of the whole run."""
        return self.figures[-1]

    def where(self, outcome: str) -> list[dict[str, Any]]:
        """Every request with this outcome (``FAILURE``, ``READ_ONLY``...)."""
        return [r for r in self.records if classify(r) == outcome]

    def acknowledged(self, what: str) -> list[dict[str, Any]]:
        """The acknowledged writes of one kind (``story``, ``vote``, ``follow``, ``click``, ``signup``)."""
        return [a for a in self.acks if a["ack"] == what]

    def describe(self, outcome: str = FAILURE, limit: int = 8) -> str:
        """A few of the requests with ``outcome``, for an assertion message."""
        rows = self.where(outcome)
        shown = [f"  {self.phase_of(r['t'])} {r['method']} {r['name']} -> {r['status']} in {r['ms']:.0f} ms "
                 f"via {r['served_by']} {r['error'] or ''}" for r in rows[:limit]]
        return f"{len(rows)} {outcome}(s):\n" + "\n".join(shown)

    def phase_of(self, t: float) -> str:
        """The phase a wall-clock time falls in."""
        for phase, start, end in self.phases:
            if start <= t < end:
                return phase
        return "?"

    def table(self) -> str:
        """The figures as a fixed-width table (what the test output prints)."""
        head = (f"{'phase':<8}{'seconds':>8}{'requests':>10}{'failed':>8}{'read-only':>11}{'4xx':>6}"
                f"{'writes':>8}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}")
        lines = [f"fault: {self.fault}", head]
        for f in self.figures:
            lines.append(f"{f.phase:<8}{f.seconds:>8.1f}{f.requests:>10}{f.failures:>8}{f.read_only_refusals:>11}"
                         f"{f.client_errors:>6}{f.writes:>8}{f.p50_ms:>9.1f}{f.p99_ms:>9.1f}{f.max_ms:>9.1f}")
        lines += [f"  {key}: {value}" for key, value in self.extra.items()]
        return "\n".join(lines)

    def as_json(self) -> dict[str, Any]:
        """The figures and the test's extra findings, for ``results.json``."""
        return {"fault": self.fault, "phases": [asdict(f) for f in self.figures],
                "acknowledged_writes": dict(Counter(a["ack"] for a in self.acks)), "extra": self.extra}


def read_log(path: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The request records and the acknowledgement records of a run's JSON-lines file."""
    records: list[dict[str, Any]] = []
    acks: list[dict[str, Any]] = []
    if not path.exists():
        return records, acks
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError:  # a line cut short by a killed run
            continue
        (acks if "ack" in item else records).append(item)
    return records, acks


class LoadRun:
    """Locust running against the front door, with phase marks; use as a context manager.

    The run is in phase ``warm-up`` from the start (members sign up);
    ``begin("before")``, ``begin("during")`` and ``begin("after")`` mark the
    steady load, the fault and its repair. Leaving the ``with`` block
    stops Locust, reads its log and hands the result to ``on_result`` (the
    session's report), also when the test failed half-way.
    """

    def __init__(self, t: Topology, fault: str, slug: str, on_result: Callable[[LoadResult], None],
                 spawn_rate: float | None = None) -> None:
        self.t = t
        # Users started per second (default: all at once). Every member signs
        # up as it starts, and a sign-up hashes a password (PBKDF2, about half
        # a second of CPU): a slower start spreads them out on a busy machine.
        self.spawn_rate = spawn_rate or float(MEMBERS + READERS)
        self.fault = fault
        self.on_result = on_result
        folder = t.var / "load"
        folder.mkdir(parents=True, exist_ok=True)
        self.log_path = folder / f"{slug}.jsonl"
        self.output_path = folder / f"{slug}.locust.log"
        self.marks: list[tuple[str, float]] = []
        self.process: subprocess.Popen[bytes] | None = None
        self.result: LoadResult | None = None
        self.extra: dict[str, Any] = {}

    # --- running ------------------------------------------------------------
    def __enter__(self) -> "LoadRun":
        self.log_path.unlink(missing_ok=True)
        users = MEMBERS + READERS
        env = {**os.environ, "LOADGEN_OUT": str(self.log_path), "LOADGEN_SOURCE": LOAD_GENERATOR_SOURCE,
               "LOADGEN_MAX_REQUESTS": str(MAX_REQUESTS), "LOADGEN_MEMBERS": str(MEMBERS),
               "LOADGEN_READERS": str(READERS)}
        argv = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless",
                "--users", str(users), "--spawn-rate", str(self.spawn_rate), "--run-time", f"{MAX_SECONDS}s",
                "--stop-timeout", "5", "--host", f"http://127.0.0.1:{self.t.front_port}",
                "--only-summary", "--loglevel", "WARNING", "--exit-code-on-error", "0"]
        with self.output_path.open("wb") as output:
            self.process = subprocess.Popen(argv, cwd=REPO, env=env, stdout=output, stderr=subprocess.STDOUT)
        self.marks.append(("warm-up", time.time()))
        return self

    def begin(self, phase: str) -> None:
        """Start the next phase now (``before`` after warm-up, ``during`` at the fault, ``after`` at its repair)."""
        self.marks.append((phase, time.time()))

    def wait_until_ready(self, timeout: float = 60) -> None:
        """Wait until every member has signed up and the readers are reading.

        Sign-ups are writes, so they must all be done before a fault is injected.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive()
            records, acks = read_log(self.log_path)
            signed_up = sum(a["ack"] == "signup" for a in acks)
            if signed_up >= MEMBERS and len(records) >= 2 * (MEMBERS + READERS):
                return
            time.sleep(0.2)
        records, acks = read_log(self.log_path)
        failed = [r for r in records if classify(r) != OK][:5]
        raise AssertionError(f"the load did not get going in {timeout:.0f}s: "
                             f"{sum(a['ack'] == 'signup' for a in acks)}/{MEMBERS} sign-ups, "
                             f"{len(records)} requests; not ok: {failed}\n{self._output_tail()}")

    def hold(self, seconds: float) -> None:
        """Let the load run for ``seconds`` (failing early if Locust died)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self._check_alive()
            time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))

    def records_so_far(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The requests and acknowledgements logged up to now."""
        return read_log(self.log_path)

    def __exit__(self, *exc: object) -> None:
        end = time.time()
        self._stop()
        records, acks = read_log(self.log_path)
        phases = [(name, start, self.marks[i + 1][1] if i + 1 < len(self.marks) else end)
                  for i, (name, start) in enumerate(self.marks)]
        # Requests still in flight when the load stopped belong to the last phase.
        if phases:
            name, start, _ = phases[-1]
            phases[-1] = (name, start, max([end, *(r["t"] + 1e-6 for r in records)]))
        self.result = LoadResult(self.fault, phases, records, acks, self.extra)
        self.on_result(self.result)

    # --- internals ----------------------------------------------------------
    def _stop(self) -> None:
        """SIGTERM: Locust lets each user finish its request (``--stop-timeout``) and exits."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def _check_alive(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            raise AssertionError(f"Locust exited early (code {self.process.returncode})\n{self._output_tail()}")

    def _output_tail(self, lines: int = 30) -> str:
        if not self.output_path.exists():
            return ""
        text = self.output_path.read_text(errors="replace").splitlines()[-lines:]
        return f"--- {self.output_path} ---\n" + "\n".join(text)
