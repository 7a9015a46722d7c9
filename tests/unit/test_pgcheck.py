"""The PostgreSQL health endpoint's verdicts (scalestack/pgcheck.py), without a server."""
from __future__ import annotations

import pytest

from scalestack.pgcheck import ServerState


def _replica(lag: float) -> ServerState:
    return ServerState("postgres-replica", reachable=True, role="replica", lag_seconds=lag, max_lag_seconds=5)


@pytest.mark.parametrize(
    ("state", "primary", "read", "replica"),
    [
        (ServerState("postgres", reachable=True, role="primary", lag_seconds=0, max_lag_seconds=5), True, True, False),
        (_replica(0.2), False, True, True),
        (_replica(5.0), False, True, True),
        (_replica(5.1), False, False, False),
        (ServerState("postgres", reachable=False, error="connection refused"), False, False, False),
    ],
)
def test_each_endpoint_answers_for_the_right_servers(state: ServerState, primary: bool, read: bool, replica: bool) -> None:
    assert state.answers("/primary") is primary
    assert state.answers("/read") is read
    assert state.answers("/replica") is replica


def test_status_answers_while_reachable_and_unknown_paths_are_unknown() -> None:
    assert _replica(60).answers("/status") is True
    assert ServerState("postgres", reachable=False).answers("/status") is False
    assert _replica(0).answers("/master") is None
