"""A real stack for the integration tests, started once per session.

The ``test`` profile has its own ports (dev + 20000) and data directory
(``var/test``), so a ``make run`` can stay up beside ``make test``. Nothing is
mocked: the tests talk to HAProxy, gunicorn, PostgreSQL and memcached.

Set ``SCALESTACK_TEST_KEEP=1`` to leave the stack running after the session
(a re-run then reuses it, which makes iterating on one test fast).
"""
from __future__ import annotations

import os
import shutil
from typing import Iterator

import pytest
import requests

from scalestack import stack
from scalestack.topology import Topology, load
from tests.integration.helpers import Member, make_member


@pytest.fixture(scope="session")
def topology() -> Topology:
    """The test profile's topology."""
    return load("test")


@pytest.fixture(scope="session")
def running_stack(topology: Topology) -> Iterator[Topology]:
    """Start the whole test stack from an empty data directory, seeded afresh.

    A stack left running with SCALESTACK_TEST_KEEP is reused as it is.
    """
    if not stack.supervisord_running(topology):
        # Every session starts from the same seeded data, whatever an earlier
        # run (or an older version of the seed) left behind.
        shutil.rmtree(topology.var, ignore_errors=True)
    stack.up(topology, say=lambda m: print(f"[stack] {m}"))
    yield topology
    if not os.environ.get("SCALESTACK_TEST_KEEP"):
        stack.down(topology, say=lambda m: print(f"[stack] {m}"))


@pytest.fixture(autouse=True)
def _every_process_running(running_stack: Topology) -> Iterator[None]:
    """Each test starts with every process up, whatever the previous one stopped."""
    for row in stack.status(running_stack):
        if row.state != "RUNNING":
            stack.start(running_stack, row.name)
    # And HAProxy sees every web, platform and database server UP again (a server that a
    # previous test restarted needs two passing health checks to rejoin).
    stack.wait_for(lambda: _all_pool_servers_up(running_stack), 30, "HAProxy to see every server UP")
    yield


def _all_pool_servers_up(t: Topology) -> bool:
    wanted = ({("web_pool", p.name) for p in t.web} | {("platform_pool", p.name) for p in t.platform}
              | {("db_read_pool", db.name) for db in t.databases} | {("db_write_pool", t.postgres.name)})
    up = set()
    for key, row in stack.server_stats(t).items():
        # Past slowstart too: a server that has just come back takes only a
        # small share of the traffic for a few seconds, and a test that counts
        # which servers answered would see only the other one.
        settled = key[0].startswith("db_") or int(row.get("lastchg") or 0) >= t.slowstart_seconds
        if key in wanted and row.get("status") == "UP" and settled:
            up.add(key)
    return up == wanted


@pytest.fixture(scope="session")
def site(running_stack: Topology) -> str:
    """The front door's base URL."""
    return f"http://127.0.0.1:{running_stack.front_port}"


@pytest.fixture(scope="session")
def api_url(running_stack: Topology) -> str:
    """The platform pool's base URL (HAProxy 127.0.0.1:29000 in the test profile)."""
    return running_stack.platform_url


@pytest.fixture(scope="session")
def api(running_stack: Topology) -> requests.Session:
    """A platform API client carrying the service token."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {running_stack.secrets()['PLATFORM_TOKEN']}"
    return session


@pytest.fixture
def member(site: str, api: requests.Session, api_url: str) -> Member:
    """Factory-made: a brand-new user, signed up and logged in through the site."""
    return make_member(site, api, api_url)


