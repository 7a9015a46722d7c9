"""A stack of its own for the fault tests, a load generator per test, and the figures.

The ``faults`` profile has its own ports and data directory (``var/faults``), so
this suite can run beside a dev stack and beside the integration suite's stack.
Each test drives Locust (``loadgen.LoadRun``) through the front door while it
breaks and repairs one thing; the figures of every run are printed at the end
of the session (also without ``-s``) and written to ``var/faults/results.json``.

Set ``SCALESTACK_TEST_KEEP=1`` to leave the stack running after the session
(a re-run then reuses it).
"""
from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass, field
from typing import Callable, Iterator

import pytest
import requests

from scalestack import stack
from scalestack.topology import SCALE_FILE, Topology, load
from tests.faults.checks import every_pool_server_up
from tests.faults.loadgen import LoadResult, LoadRun

PROFILE = "faults"
# Every test starts from the default size of each tier.
SERVERS_PER_TIER = 2


@dataclass
class Report:
    """The figures of every load run in this session, in the order they ran."""

    path: str
    results: dict[str, LoadResult] = field(default_factory=dict)

    def add(self, test_id: str, result: LoadResult) -> None:
        """Keep one run's figures and rewrite ``results.json`` (so a partial session still has them)."""
        self.results[test_id] = result
        self.save()

    def save(self) -> None:
        """Write every run's figures, with what the tests found afterwards, to ``results.json``."""
        with open(self.path, "w", encoding="utf-8") as handle:
            json.dump({key: value.as_json() for key, value in self.results.items()}, handle, indent=2)


_REPORT = pytest.StashKey[Report]()


@pytest.fixture(scope="session")
def faults_stack(pytestconfig: pytest.Config) -> Iterator[Topology]:
    """Start the whole faults stack from an empty, freshly seeded data directory.

    A stack left running with ``SCALESTACK_TEST_KEEP`` is reused; the first
    test's clean-up puts it back to two web servers and HAProxy balancing.
    """
    if not stack.supervisord_running(load(PROFILE)):
        shutil.rmtree(load(PROFILE).var, ignore_errors=True)
    topology = load(PROFILE)
    stack.up(topology, say=lambda m: print(f"[faults stack] {m}"))
    pytestconfig.stash[_REPORT] = Report(str(topology.var / "results.json"))
    yield topology
    if not os.environ.get("SCALESTACK_TEST_KEEP"):
        stack.down(load(PROFILE), say=lambda m: print(f"[faults stack] {m}"))


@pytest.fixture(autouse=True)
def _healthy_stack(faults_stack: Topology) -> Iterator[None]:
    """Each test starts with two web servers, HAProxy balancing, every process RUNNING and every pool UP.

    Whatever the previous test broke, scaled or switched is put back first, so
    one failed test does not fail the rest.
    """
    _restore(faults_stack)
    yield


def _restore(t: Topology) -> None:
    # The stack as the last test left it (``scale`` and ``set_balancing`` record it).
    now = load(t.profile)
    if now.web_servers != SERVERS_PER_TIER or now.platform_servers != SERVERS_PER_TIER:
        now = stack.scale(now, web=SERVERS_PER_TIER, platform=SERVERS_PER_TIER, say=lambda m: None)
    if now.platform_balancing != "haproxy":
        now = stack.set_balancing(now, "haproxy", say=lambda m: None)
    (now.var / SCALE_FILE).unlink(missing_ok=True)
    for row in stack.status(now):
        if row.state != "RUNNING":
            stack.start(now, row.name)
    for process in now.web + now.platform:
        # A drained server (a scale test stopped half-way) goes back in too.
        stack.ready(now, process.name)
    # A restarted server needs two passing checks (rise 2) to rejoin its pool.
    stack.wait_for(lambda: every_pool_server_up(now), 60, "HAProxy to see every server UP")


@pytest.fixture
def load_run(faults_stack: Topology, request: pytest.FixtureRequest) -> Callable[[str], LoadRun]:
    """Factory: ``load_run("web-1 stopped, later started")`` gives a ``LoadRun`` to use in a ``with``.

    Its figures go to the session's report when the ``with`` block ends.
    """
    report = request.config.stash[_REPORT]
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)

    def make(fault: str) -> LoadRun:
        return LoadRun(faults_stack, fault, slug, lambda result: report.add(request.node.nodeid, result))

    return make


@pytest.fixture(scope="session")
def api(faults_stack: Topology) -> requests.Session:
    """A platform API client carrying the service token (for setting up and checking state)."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {faults_stack.secrets()['PLATFORM_TOKEN']}"
    return session


@pytest.fixture(scope="session")
def api_url(faults_stack: Topology) -> str:
    """The platform pool's base URL (through HAProxy)."""
    return faults_stack.platform_url


@pytest.fixture(scope="session")
def site(faults_stack: Topology) -> str:
    """The front door's base URL."""
    return f"http://127.0.0.1:{faults_stack.front_port}"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    """Print every load run's figures, so ``make test`` shows them without ``-s``."""
    report = config.stash.get(_REPORT, None)
    if report is None or not report.results:
        return
    terminalreporter.section("fault tests under load: figures")
    for test_id, result in report.results.items():
        terminalreporter.write_line(test_id)
        for line in result.table().splitlines():
            terminalreporter.write_line(f"  {line}")
        terminalreporter.write_line("")
    report.save()
    terminalreporter.write_line(f"(also in {report.path})")
