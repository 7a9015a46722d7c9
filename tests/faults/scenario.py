"""The shape every fault test shares: warm up, break something, repair it, check the figures.

Each load run has four phases, marked on the wall clock while Locust runs:
``warm-up`` (the users start and the members sign up), ``before`` (the load
alone, ``BEFORE`` seconds), ``during`` (from the fault to its repair, about ``DURING`` seconds) and
``after`` (from the repair on, at least ``AFTER`` seconds). A whole test takes
20-30 s of load.
"""
from __future__ import annotations

from scalestack.topology import Topology
from tests.faults.checks import missing_writes
from tests.faults.loadgen import CLIENT_ERROR, FAILURE, READ_ONLY, LoadResult, LoadRun

BEFORE = 5.0
DURING = 8.0
AFTER = 8.0


def warm_up(run: LoadRun) -> None:
    """Wait for every member's sign-up, then let the load run alone for ``BEFORE`` seconds."""
    run.wait_until_ready()
    run.begin("before")
    run.hold(BEFORE)


def assert_no_failures(result: LoadResult) -> None:
    """No failed request, no read-only refusal and no client error, in any phase."""
    total = result.total
    assert total.requests > 0, "the load sent nothing"
    assert total.failures == 0, result.describe(FAILURE)
    assert total.read_only_refusals == 0, result.describe(READ_ONLY)
    assert total.client_errors == 0, result.describe(CLIENT_ERROR)


def assert_no_write_lost(t: Topology, result: LoadResult) -> None:
    """Every write the site acknowledged during the run is in the database."""
    assert result.acknowledged("signup"), "no member signed up"
    missing = missing_writes(t, result.acks)
    result.extra["acknowledged writes lost"] = len(missing)
    assert not missing, f"{len(missing)} acknowledged writes are missing: {missing[:10]}"
