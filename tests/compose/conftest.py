"""A compose project of its own for these tests: built, brought up, checked, torn down.

``make test-compose`` first runs ``scripts/docker-setup.sh`` (Docker, the base
image, the build's extra CA), then this suite. The session fixture builds the
images, runs ``up -d``, waits until every container is healthy and the one-shot
jobs have exited 0, and removes everything (volumes too) at the end.

The project is ``scalestack-test`` and publishes its ports at +2000
(10080, 10081, 10404), so it can run beside ``docker compose up`` and beside
the native stacks. It uses the test profile's schedules (periodic tasks every
few seconds). Its front door exempts every client from the per-client rate
limit: the host's requests reach HAProxy from the Docker bridge's gateway, so
they all look like one client (the rate limit itself is tested natively, in
tests/integration/test_front_door.py).

Set ``SCALESTACK_TEST_KEEP=1`` to leave the project running after the session.
"""
from __future__ import annotations

import base64
import dataclasses
import json
import os
import subprocess
import time
from pathlib import Path
from typing import Callable, Iterator

import pytest
import requests

from scalestack import stack
from scalestack.compose import ComposeTopology, load
from scalestack.topology import REPO
from tests.faults.loadgen import LoadResult, LoadRun

PROJECT = "scalestack-test"
PORT_OFFSET = 2000
# One-shot jobs: done when they have exited 0.
JOBS = ("migrate", "seed")
HEALTHY_TIMEOUT = 600
# Debian's engine and CLI (a machine may carry another docker CLI first on PATH).
DOCKER_PATH = "/usr/bin:/usr/sbin:" + os.environ.get("PATH", "")


def compose_argv() -> list[str]:
    """Compose v2 (``docker compose``) where the CLI has it, else Debian's docker-compose 1.29."""
    env = {**os.environ, "PATH": DOCKER_PATH}
    if subprocess.run(["docker", "compose", "version"], capture_output=True, env=env).returncode == 0:
        return ["docker", "compose"]
    return ["docker-compose"]


@dataclasses.dataclass
class Timings:
    """How long the stage's steps took, for the README (var/compose/results.json)."""

    seconds: dict[str, float] = dataclasses.field(default_factory=dict)
    load: dict[str, dict] = dataclasses.field(default_factory=dict)


class Compose:
    """The test project: ``compose`` commands, container state, HAProxy's stats."""

    def __init__(self) -> None:
        # The containers' own view (paths inside them), and the host's view:
        # the published ports, and a folder for the load generator's logs.
        self.inner: ComposeTopology = load()
        self.t: ComposeTopology = dataclasses.replace(self.inner, offset=PORT_OFFSET, var=REPO / "var" / "compose")
        self.t.var.mkdir(parents=True, exist_ok=True)
        self.argv = [*compose_argv(), "-p", PROJECT, "-f", str(REPO / "docker-compose.yml")]
        self.env = {
            **os.environ,
            "PATH": DOCKER_PATH,
            "SCALESTACK_PROFILE": "test",
            "SCALESTACK_FRONT_PORT": str(self.t.front_port),
            "SCALESTACK_STATIC_PORT": str(self.t.static_port),
            "SCALESTACK_STATS_PORT": str(self.t.stats_port),
            "SCALESTACK_RATE_LIMIT_EXEMPT": "0.0.0.0/0",
            "SCALESTACK_REPLICA_MAX_LAG": "5",
        }
        self.site = f"http://127.0.0.1:{self.t.front_port}"
        self.timings = Timings()
        self.load_results: list[LoadResult] = []

    def run(self, *args: str, timeout: float = 900, check: bool = True) -> str:
        result = subprocess.run([*self.argv, *args], env=self.env, capture_output=True, text=True,
                                timeout=timeout, cwd=REPO)
        if check and result.returncode != 0:
            raise AssertionError(f"compose {' '.join(args)} failed ({result.returncode}):\n"
                                 f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
        return result.stdout

    def docker(self, *args: str, timeout: float = 120) -> str:
        result = subprocess.run(["docker", *args], env=self.env, capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)} failed: {result.stderr[-2000:]}")
        return result.stdout

    def ids(self, service: str | None = None) -> list[str]:
        """Container ids of one service (or of the project), stopped ones included."""
        return self.run("ps", "-a", "-q", *([service] if service else [])).split()

    def states(self) -> dict[str, tuple[str, str, int]]:
        """Every container: (service, health or state, exit code)."""
        ids = self.ids()
        if not ids:
            return {}
        states = {}
        for info in json.loads(self.docker("inspect", *ids)):
            state = info["State"]
            health = (state.get("Health") or {}).get("Status")
            service = info["Config"]["Labels"]["com.docker.compose.service"]
            states[info["Id"]] = (service, health or state["Status"], int(state["ExitCode"]))
        return states

    def not_ready(self) -> list[str]:
        """Containers that are neither healthy nor a job that exited 0."""
        waiting = []
        for cid, (service, state, code) in self.states().items():
            if service in JOBS:
                if state != "exited" or code != 0:
                    waiting.append(f"{service}:{state}:{code}")
            elif state != "healthy":
                waiting.append(f"{service}:{state}")
        return waiting

    def wait_ready(self, timeout: float = HEALTHY_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            waiting = self.not_ready()
            failed = [w for w in waiting if w.startswith(JOBS) and w.split(":")[1] == "exited"]
            if failed:
                raise AssertionError(f"a job failed: {failed}\n{self.run('logs', '--tail', '40', *JOBS)}")
            if not waiting:
                return
            time.sleep(2)
        raise AssertionError(f"not healthy after {timeout:.0f}s: {self.not_ready()}\n"
                             f"{self.run('logs', '--tail', '20', check=False)[-6000:]}")

    def stats(self) -> dict[tuple[str, str], dict[str, str]]:
        """HAProxy's stats CSV, one row per (proxy, server), through the password-protected page."""
        auth = base64.b64encode(f"admin:{self.t.stats_password}".encode()).decode()
        response = requests.get(f"http://127.0.0.1:{self.t.stats_port}/stats;csv",
                                headers={"Authorization": f"Basic {auth}"}, timeout=5)
        response.raise_for_status()
        return stack.parse_stats_csv(response.text)

    def up_servers(self, pool: str) -> list[str]:
        """The server slots of ``pool`` that HAProxy has filled from DNS and marked UP."""
        return sorted(sv for (px, sv), row in self.stats().items()
                      if px == pool and sv != "BACKEND" and row["status"] == "UP")

    def sql(self, query: str) -> str:
        """A query as PostgreSQL's superuser, over the primary container's socket."""
        return self.run("exec", "-T", "postgres", "psql", "-X", "-q", "-At", "-h", str(self.inner.pg_socket_dir),
                        "-U", "postgres", "-d", "scalestack", "-c", query).strip()


@pytest.fixture(scope="session")
def compose_stack() -> Iterator[Compose]:
    c = Compose()
    keep = os.environ.get("SCALESTACK_TEST_KEEP") == "1"
    if not keep:
        # Whatever an interrupted run left behind, volumes included.
        c.run("down", "-v", "--remove-orphans", "--timeout", "10", check=False)
    try:
        started = time.monotonic()
        c.run("build", timeout=1800)
        c.timings.seconds["build"] = round(time.monotonic() - started, 1)
        started = time.monotonic()
        c.run("up", "-d", timeout=900)
        c.wait_ready()
        c.timings.seconds["up until every container is healthy"] = round(time.monotonic() - started, 1)
        yield c
    finally:
        if not keep:
            started = time.monotonic()
            c.run("down", "-v", "--remove-orphans", "--timeout", "20", check=False)
            c.timings.seconds["down -v"] = round(time.monotonic() - started, 1)
        c.timings.load = {r.fault: {"figures": [dataclasses.asdict(f) for f in r.figures], **r.extra}
                          for r in c.load_results}
        (c.t.var / "results.json").write_text(json.dumps(dataclasses.asdict(c.timings), indent=2))


@pytest.fixture
def load_run(compose_stack: Compose) -> Callable[[str], LoadRun]:
    """Locust against the project's front door; its figures go into results.json."""

    def keep(result: LoadResult) -> None:
        # Kept as it is: the test adds its own figures to ``extra`` afterwards.
        compose_stack.load_results.append(result)

    def make(fault: str) -> LoadRun:
        slug = fault.replace(" ", "-")
        # Two users a second: some twenty containers share the two cores here.
        return LoadRun(compose_stack.t, fault, slug, keep, spawn_rate=2)

    return make


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:  # noqa: ARG001
    path = REPO / "var" / "compose" / "results.json"
    if path.exists() and path.stat().st_mtime > time.time() - 3600:
        terminalreporter.write_sep("-", "compose stage")
        terminalreporter.write_line(path.read_text())
