"""The front door's per-client rate limit and graceful draining (post: "Load balancing").

HAProxy counts each source address's requests in a stick table and answers 429
past the limit; every other client goes on as before. The whole of 127.0.0.0/8
is loopback, so each simulated client below sends from an address of its own.
"""
from __future__ import annotations

import threading

import requests

from scalestack import stack
from scalestack.topology import Topology
from tests.integration.helpers import client_from, wait_until


def test_an_abusive_client_gets_429_and_the_others_are_unaffected(site: str, running_stack: Topology) -> None:
    t = running_stack
    abuser, neighbour = client_from("127.0.0.20"), client_from("127.0.0.21")
    statuses: list[int] = []
    for _ in range(t.rate_limit_requests + 30):
        statuses.append(abuser.get(f"{site}/healthz", timeout=10).status_code)
    assert statuses[: t.rate_limit_requests] == [200] * t.rate_limit_requests, "the limit must not trip early"
    assert statuses[-1] == 429
    refused = abuser.get(f"{site}/", timeout=10)
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) == t.rate_limit_period
    assert "Too many requests" in refused.text
    # The neighbour, and the exempt load generators, are served as usual.
    for _ in range(20):
        assert neighbour.get(f"{site}/", timeout=10).status_code == 200
    assert client_from("127.0.0.130").get(f"{site}/", timeout=10).status_code == 200


def test_a_draining_server_says_so_on_healthz_and_gets_no_new_requests(site: str, running_stack: Topology) -> None:
    t = running_stack
    web1 = t.get("web-1")
    stack.drain(t, "web-1")
    try:
        health = requests.get(f"http://{web1.address}/healthz", timeout=5)
        assert health.status_code == 503 and health.json()["status"] == "draining"
        served = {requests.get(f"{site}/healthz", timeout=10).headers.get("X-Served-By") for _ in range(12)}
        assert served == {"web-2"}
    finally:
        stack.ready(t, "web-1")
    assert requests.get(f"http://{web1.address}/healthz", timeout=5).status_code == 200
    wait_until(lambda: {requests.get(f"{site}/healthz", timeout=10).headers.get("X-Served-By")
                        for _ in range(6)} == {"web-1", "web-2"}, 15, "web-1 back in rotation")


def test_the_web_tier_switches_to_the_smart_client_without_dropping_a_request(
    site: str, running_stack: Topology
) -> None:
    t = running_stack
    failures: list[str] = []
    done = threading.Event()
    count = 0

    def browse() -> None:
        nonlocal count
        session = requests.Session()
        while not done.is_set():
            try:
                response = session.get(f"{site}/newest", timeout=10)
                if response.status_code != 200:
                    failures.append(str(response.status_code))
            except requests.RequestException as exc:
                failures.append(repr(exc))
            count += 1

    reader = threading.Thread(target=browse)
    reader.start()
    try:
        switched = stack.set_balancing(t, "smart", say=lambda m: None)
        assert switched.platform_balancing == "smart"
        # The platform calls now bypass HAProxy's :9000 pool.
        before = _platform_pool_requests(t)
        for _ in range(10):
            assert requests.get(f"{site}/newest", timeout=10).status_code == 200
        assert _platform_pool_requests(t) == before
    finally:
        stack.set_balancing(t, "haproxy", say=lambda m: None)
        done.set()
        reader.join()
    assert failures == [] and count > 20


def _platform_pool_requests(t: Topology) -> int:
    for line in stack.haproxy_command(t, "show stat").splitlines():
        fields = line.split(",")
        if fields[:2] == ["platform_pool", "BACKEND"]:
            return int(fields[7])
    raise AssertionError("no platform_pool backend in HAProxy's stats")
