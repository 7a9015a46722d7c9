"""A memcached node that returns after an outage must not serve stale values.

Real memcached processes on ephemeral loopback ports; one is SIGSTOPped (hung,
not restarted, so it keeps its data, like a partition) and SIGCONTed. Each
scenario runs against ``FlushOnReturnHashClient`` (fresh value) and against
pymemcache's plain ``HashClient`` (stale value), so the test can fail. No Django
settings: every client parameter is passed here.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pymemcache.client.base import Client
from pymemcache.client.hash import HashClient

from tests.unit.platform_support import ensure_platform_importable

ensure_platform_importable()

from platform_api.memcache_client import FlushOnReturnHashClient, forget_suspects  # noqa: E402

MEMCACHED = "/usr/bin/memcached"
pytestmark = pytest.mark.skipif(not os.path.exists(MEMCACHED), reason="memcached is not installed")

TIMEOUT = 0.2
RETRY_TIMEOUT = 0.3
DEAD_TIMEOUT = 1.0


@dataclass
class Node:
    """One memcached process."""

    port: int
    process: subprocess.Popen

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def direct(self) -> Client:
        """A plain client to this node only (bypasses hashing)."""
        return Client(("127.0.0.1", self.port), connect_timeout=1, timeout=1)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_node() -> Node:
    port = _free_port()
    command = [MEMCACHED, "-l", "127.0.0.1", "-p", str(port), "-U", "0"]
    if os.geteuid() == 0:
        command += ["-u", "memcache"]  # memcached refuses to run as root
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return Node(port, process)
        except OSError:
            time.sleep(0.02)
    process.kill()
    raise RuntimeError("memcached did not start")


@pytest.fixture
def nodes() -> Iterator[list[Node]]:
    started = [_start_node(), _start_node()]
    forget_suspects()
    yield started
    for node in started:
        node.process.send_signal(signal.SIGCONT)
        node.process.kill()
        node.process.wait()
    forget_suspects()


def _client(cls: type[HashClient], nodes: list[Node], retry_attempts: int = 1,
            retry_timeout: float = RETRY_TIMEOUT) -> HashClient:
    return cls(
        [n.address for n in nodes],
        connect_timeout=TIMEOUT,
        timeout=TIMEOUT,
        retry_attempts=retry_attempts,
        retry_timeout=retry_timeout,
        dead_timeout=DEAD_TIMEOUT,
        ignore_exc=True,
        default_noreply=False,
    )


def _hang(node: Node) -> None:
    """SIGSTOP the node and wait until the kernel has stopped it.

    The signal is delivered asynchronously: a request sent right after
    ``send_signal`` could still be answered by a thread that had not stopped yet.
    """
    node.process.send_signal(signal.SIGSTOP)
    threads = Path(f"/proc/{node.process.pid}/task")
    deadline = time.monotonic() + 5
    # Every thread's state (the field after the parenthesised name) is T, stopped.
    while any((task / "stat").read_text().rsplit(")", 1)[1].split()[0] != "T" for task in threads.iterdir()):
        assert time.monotonic() < deadline, "memcached did not stop"
        time.sleep(0.005)


def _key_on(client: HashClient, node: Node) -> str:
    """A key that hashes to ``node`` while every node is up."""
    for i in range(1000):
        key = f"story:{i}"
        if client.hasher.get_node(key) == node.address:
            return key
    raise AssertionError("no key hashes to the node")


def _mark_dead(client: HashClient, key: str) -> None:
    """Send commands until the key's node is dead: out of the ring (pymemcache's
    HashClient) or skipped in place (FlushOnReturnHashClient)."""
    first = client.hasher.get_node(key)
    deadline = time.monotonic() + 10
    while client.hasher.get_node(key) == first and not client._dead_clients:
        assert time.monotonic() < deadline, "the node was never marked dead"
        client.get(key)
        time.sleep(RETRY_TIMEOUT / 3)


def _outage_then_return(cls: type[HashClient], nodes: list[Node]) -> tuple[bytes | None, bytes | None]:
    """The dead-node scenario; returns (value read after the return, value on the stale node)."""
    client = _client(cls, nodes)
    victim = nodes[0]
    key = _key_on(client, victim)
    assert client.set(key, b"old")
    assert victim.direct().get(key) == b"old"

    _hang(victim)
    try:
        _mark_dead(client, key)
        if isinstance(client, FlushOnReturnHashClient):
            # The key stays on its node: uncached while it is down, so no
            # second copy exists on the other node to go stale later.
            assert client.get(key) is None
            client.set(key, b"new")
            assert nodes[1].direct().get(key) is None
        else:
            # pymemcache moves it: the write lands on the other node.
            assert client.set(key, b"new")
            assert nodes[1].direct().get(key) == b"new"
    finally:
        victim.process.send_signal(signal.SIGCONT)
    time.sleep(DEAD_TIMEOUT + 0.2)
    value = client.get(key)
    assert victim.address in client.hasher.nodes, "the node is back in the ring"
    return value, victim.direct().get(key)


def test_a_dead_node_is_flushed_before_it_rejoins(nodes: list[Node]) -> None:
    value, on_node = _outage_then_return(FlushOnReturnHashClient, nodes)
    assert value is None or value == b"new", f"served {value!r} after the node returned"
    assert on_node is None, "the pre-outage value is gone from the returned node"


def test_plain_hashclient_serves_the_pre_outage_value(nodes: list[Node]) -> None:
    """The proof the scenario bites: without the subclass the old value comes back."""
    value, on_node = _outage_then_return(HashClient, nodes)
    assert value == b"old"
    assert on_node == b"old"


def _blip_then_return(cls: type[HashClient], nodes: list[Node]) -> bytes | None:
    """A node fails once (never removed), a write to it is skipped, then it answers again."""
    # A longer retry timeout than the other scenarios: the write must come
    # while the node still counts as failed, however busy the machine is (a
    # write sent after it would be buffered by the kernel and applied when
    # the node resumes, and the control case would not be one).
    retry_timeout = 1.0
    client = _client(cls, nodes, retry_attempts=3, retry_timeout=retry_timeout)
    victim = nodes[0]
    key = _key_on(client, victim)
    assert client.set(key, b"old")
    _hang(victim)
    try:
        assert client.get(key) is None  # times out: the node is now "failed"
        assert victim.address in client.hasher.nodes, "failed, not removed"
        # With ignore_exc, the write (and a fallback delete) are skipped silently.
        client.set(key, b"new")
        client.delete(key)
    finally:
        victim.process.send_signal(signal.SIGCONT)
    time.sleep(retry_timeout + 0.1)
    return client.get(key)


def test_a_failed_node_is_flushed_before_it_is_retried(nodes: list[Node]) -> None:
    assert _blip_then_return(FlushOnReturnHashClient, nodes) is None


def test_plain_hashclient_serves_a_skipped_write_s_old_value(nodes: list[Node]) -> None:
    assert _blip_then_return(HashClient, nodes) == b"old"


def test_other_clients_in_the_process_learn_of_the_failure(nodes: list[Node]) -> None:
    """One thread's client saw the outage; another, idle during it, must not read stale."""
    aware = _client(FlushOnReturnHashClient, nodes)
    idle = _client(FlushOnReturnHashClient, nodes)
    victim = nodes[0]
    key = _key_on(aware, victim)
    assert idle.set(key, b"old")
    _hang(victim)
    try:
        _mark_dead(aware, key)
        aware.set(key, b"new")  # skipped: the key's node is dead
    finally:
        victim.process.send_signal(signal.SIGCONT)
    time.sleep(RETRY_TIMEOUT + 0.1)
    # The idle client never saw a failure, yet does not read the old value.
    assert idle.get(key) in (None, b"new")
    assert victim.direct().get(key) is None


def test_a_node_still_down_stays_out(nodes: list[Node]) -> None:
    """The flush fails while the node is hung, so it is not put back in the ring."""
    client = _client(FlushOnReturnHashClient, nodes)
    victim = nodes[0]
    key = _key_on(client, victim)
    _hang(victim)
    try:
        _mark_dead(client, key)
        time.sleep(DEAD_TIMEOUT + 0.2)
        assert client.get(key) is None
        # Still dead: skipped, not sent to the hung node.
        assert [server[1] for server in client._dead_clients] == [victim.port]
    finally:
        victim.process.send_signal(signal.SIGCONT)
