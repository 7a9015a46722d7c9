"""The smart client (post, "Smart clients") against real HTTP servers on loopback.

Each platform server is a ``ThreadingHTTPServer`` on an ephemeral 127.0.0.1
port, in a thread of this process. Stopping one closes its listening socket,
so a connection to it is refused exactly as when a platform process dies.
The client under test is built the way a web server builds it: from settings,
through ``platform_client.build_client``.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from django.conf import settings
from django.test.utils import override_settings

from news_web import platform_client
from news_web.platform_client import PlatformClient, Unavailable
from news_web.smart_client import SMART_BASE_URL, ServerFile, SmartAdapter, never_sent

# --- Real platform stand-ins ----------------------------------------------------------


class _QuietServer(ThreadingHTTPServer):
    """A server that does not print the broken pipes of requests the client gave up on."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Ignore: a client timing out mid-answer is part of these tests."""


class StubPlatform:
    """One platform server: answers ``/v1/healthz`` and JSON endpoints, stamping ``X-Served-By``."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.port = 0
        self.hits: Counter[tuple[str, str]] = Counter()
        self.healthy = True
        self.delay = 0.0  # seconds before answering anything but the health check
        self.status = 200  # what it answers to anything but the health check
        self.retry_after: str | None = None  # a Retry-After header on those answers
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        """Where the server listens (the same port across restarts)."""
        return f"http://127.0.0.1:{self.port}"

    def count(self, method: str, path: str) -> int:
        """How many requests for ``method path`` reached this server."""
        with self._lock:
            return self.hits[(method, path)]

    def start(self) -> StubPlatform:
        """Listen (again) on this server's port, or an ephemeral one the first time."""
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                path = self.path.split("?", 1)[0]
                with stub._lock:
                    stub.hits[(self.command, path)] += 1
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if path == "/v1/healthz":
                    status, body = (200, {"status": "ok"}) if stub.healthy else (503, {"status": "draining"})
                else:
                    time.sleep(stub.delay)
                    status, body = stub.status, {"items": [], "page": 1, "has_next": False}
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("X-Served-By", stub.name)
                self.send_header("X-Cache", "hits=1 misses=0")
                if stub.retry_after is not None and path != "/v1/healthz":
                    self.send_header("Retry-After", stub.retry_after)
                self.end_headers()
                self.wfile.write(data)

            do_GET = _answer
            do_POST = _answer

            def log_message(self, format: str, *args: Any) -> None:
                """Keep test output quiet."""

        self._server = _QuietServer(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True).start()
        return self

    def stop(self) -> None:
        """Close the listening socket: new connections are refused."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def write_servers(path: Path, stubs: list[StubPlatform]) -> None:
    """Write the servers file the way the launcher does: a new file renamed over the old one."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"servers": [{"name": s.name, "url": s.url} for s in stubs]}))
    tmp.replace(path)


@pytest.fixture
def stubs() -> Iterator[list[StubPlatform]]:
    """Three running platform servers."""
    running = [StubPlatform(f"platform-{i}").start() for i in (1, 2, 3)]
    try:
        yield running
    finally:
        for stub in running:
            stub.stop()


@pytest.fixture
def servers_file(tmp_path: Path) -> Path:
    """Where the launcher would write the platform servers."""
    return tmp_path / "platform-servers.json"


SmartFactory = Callable[..., PlatformClient]


@pytest.fixture
def smart_client(servers_file: Path) -> Iterator[SmartFactory]:
    """Build clients in smart mode from settings, as ``get_client`` does in a web server."""
    built: list[PlatformClient] = []

    def build(cooldown: float = 60.0, timeout: float = 2.0) -> PlatformClient:
        with override_settings(
            PLATFORM_BALANCING="smart",
            PLATFORM_SERVERS_FILE=servers_file,
            PLATFORM_SMART_COOLDOWN=cooldown,
            PLATFORM_TIMEOUT=timeout,
        ):
            client = platform_client.build_client()
        built.append(client)
        return client

    yield build
    for client in built:
        client.session.close()


def adapter_of(client: PlatformClient) -> SmartAdapter:
    """The smart adapter mounted on a client's session."""
    adapter = client.session.get_adapter(f"{SMART_BASE_URL}/v1/stories")
    assert isinstance(adapter, SmartAdapter)
    return adapter


def served_by(client: PlatformClient, method: str = "GET", path: str = "/v1/stories") -> str:
    """Make one call and return the server that answered it."""
    return client._send(method, path, json={} if method != "GET" else None).headers["X-Served-By"]


def spy_attempts(adapter: SmartAdapter, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record the URL of every request the adapter really sends (calls, retries and probes)."""
    attempts: list[str] = []
    real_send = adapter.inner.send

    def send(request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        attempts.append(request.url or "")
        return real_send(request, **kwargs)

    monkeypatch.setattr(adapter.inner, "send", send)
    return attempts


# --- Balancing ------------------------------------------------------------------------


def test_calls_go_round_robin_over_every_server(
    stubs: list[StubPlatform], servers_file: Path, smart_client: SmartFactory
) -> None:
    write_servers(servers_file, stubs)
    client = smart_client()

    answered = [served_by(client) for _ in range(9)]

    assert answered == ["platform-1", "platform-2", "platform-3"] * 3
    assert [s.count("GET", "/v1/stories") for s in stubs] == [3, 3, 3]


def test_threads_share_one_pool_and_the_turns_stay_even(
    stubs: list[StubPlatform], servers_file: Path, smart_client: SmartFactory
) -> None:
    write_servers(servers_file, stubs)
    client = smart_client()
    answered: Counter[str] = Counter()
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(30):
            name = served_by(client)
            with lock:
                answered[name] += 1

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    # One lock-protected turn counter: 240 calls over 3 servers is exactly 80 each.
    assert answered == {"platform-1": 80, "platform-2": 80, "platform-3": 80}


def test_trace_headers_are_recorded_as_in_haproxy_mode(
    stubs: list[StubPlatform], servers_file: Path, smart_client: SmartFactory
) -> None:
    write_servers(servers_file, stubs)
    client = smart_client()
    trace, token = platform_client.begin_trace()
    try:
        for _ in range(4):
            client.stories("top")
    finally:
        platform_client.end_trace(token)
    assert trace.servers == ["platform-1", "platform-2", "platform-3"]
    assert (trace.calls, trace.hits, trace.misses) == (4, 4, 0)


# --- Down hosts, recovered hosts, added hosts -----------------------------------------


def test_a_stopped_server_is_avoided_and_every_call_still_succeeds(
    stubs: list[StubPlatform], servers_file: Path, smart_client: SmartFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_servers(servers_file, stubs)
    client = smart_client(cooldown=60.0)
    adapter = adapter_of(client)
    attempts = spy_attempts(adapter, monkeypatch)
    down = stubs[1]
    down.stop()

    answered = Counter(served_by(client) for _ in range(20))  # raises if any call fails

    assert answered == {"platform-1": 10, "platform-3": 10}
    # Refused once, marked down, then never tried again within the cooldown.
    assert sum(url.startswith(down.url) for url in attempts) == 1
    assert adapter.pool.status() == {"platform-1": True, "platform-2": False, "platform-3": True}


def test_a_post_moves_to_another_server_when_the_connection_is_refused(
    stubs: list[StubPlatform], servers_file: Path, smart_client: SmartFactory
) -> None:
    write_servers(servers_file, stubs[:2])
    client = smart_client()
    stubs[0].stop()

    # platform-1 has the first turn; its refusal means the POST never left.
    assert served_by(client, "POST", "/v1/stories") == "platform-2"
    assert stubs[1].count("POST", "/v1/stories") == 1


def test_every_server_down_is_a_clean_unavailable(
    stubs: list[StubPlatform], servers_file: Path, smart_client: SmartFactory
) -> None:
    write_servers(servers_file, stubs)
    client = smart_client()
    for stub in stubs:
        stub.stop()
    with pytest.raises(Unavailable) as caught:
        client.stories("top")
    assert "unreachable" in caught.value.message
    assert set(adapter_of(client).pool.status().values()) == {False}


def test_a_restarted_server_comes_back_after_the_cooldown(
    stubs: list[StubPlatform], servers_file: Path, smart_client: SmartFactory
) -> None:
    write_servers(servers_file, stubs)
    cooldown = 0.6
    client = smart_client(cooldown=cooldown)
    adapter = adapter_of(client)
    flaky = stubs[1]
    flaky.stop()
    for _ in range(3):
        served_by(client)
    marked_down = time.monotonic()
    assert adapter.pool.status()["platform-2"] is False

    flaky.start()  # same port, healthy again
    # Within the cooldown the pool does not look at it: no probe, no calls.
    early = Counter(served_by(client) for _ in range(6))
    assert time.monotonic() - marked_down < cooldown, "the machine is too slow for this timing"
    assert early["platform-2"] == 0 and flaky.count("GET", "/v1/healthz") == 0

    deadline = time.monotonic() + 5
    while served_by(client) != "platform-2":
        assert time.monotonic() < deadline, "platform-2 never came back"
        time.sleep(0.02)
    assert time.monotonic() - marked_down >= cooldown
    assert flaky.count("GET", "/v1/healthz") >= 1
    assert adapter.pool.status()["platform-2"] is True


def test_an_unhealthy_server_that_accepts_connections_stays_out(
    stubs: list[StubPlatform], servers_file: Path, smart_client: SmartFactory
) -> None:
    write_servers(servers_file, stubs[:2])
    client = smart_client(cooldown=0.1)
    adapter = adapter_of(client)
    stubs[0].stop()
    served_by(client)
    stubs[0].healthy = False  # e.g. draining: listening, but its health check says 503
    stubs[0].start()

    deadline = time.monotonic() + 1.0
    while stubs[0].count("GET", "/v1/healthz") < 2 and time.monotonic() < deadline:
        served_by(client)
        time.sleep(0.05)
    assert stubs[0].count("GET", "/v1/healthz") >= 2, "the down server was not probed again"
    assert stubs[0].count("GET", "/v1/stories") == 0
    assert adapter.pool.status()["platform-1"] is False


def test_a_server_added_to_the_file_is_used_without_a_restart(
    stubs: list[StubPlatform], servers_file: Path, smart_client: SmartFactory
) -> None:
    write_servers(servers_file, stubs[:2])
    client = smart_client()
    first = Counter(served_by(client) for _ in range(4))
    assert first == {"platform-1": 2, "platform-2": 2}

    write_servers(servers_file, stubs)  # the launcher re-renders after `scale platform=3`
    later = Counter(served_by(client) for _ in range(6))

    assert later == {"platform-1": 2, "platform-2": 2, "platform-3": 2}


def test_an_unreadable_file_keeps_the_last_good_list(
    stubs: list[StubPlatform], servers_file: Path, smart_client: SmartFactory
) -> None:
    write_servers(servers_file, stubs[:1])
    client = smart_client()
    assert served_by(client) == "platform-1"
    servers_file.write_text("{not json")
    assert served_by(client) == "platform-1"


# --- What may be sent again -----------------------------------------------------------


def test_a_post_is_not_retried_after_a_read_timeout(
    stubs: list[StubPlatform], servers_file: Path, smart_client: SmartFactory
) -> None:
    slow, fast = stubs[0], stubs[1]
    slow.delay = 1.0
    write_servers(servers_file, [slow, fast])
    client = smart_client(timeout=0.3)

    with pytest.raises(Unavailable):
        client._call("POST", "/v1/stories", json={"title": "once"})

    # The POST reached platform-1, which may have applied it: it must not go anywhere else.
    assert slow.count("POST", "/v1/stories") == 1
    assert fast.count("POST", "/v1/stories") == 0


def test_a_get_is_retried_once_on_another_server_after_a_read_timeout(
    stubs: list[StubPlatform], servers_file: Path, smart_client: SmartFactory
) -> None:
    slow, fast = stubs[0], stubs[1]
    slow.delay = 1.0
    write_servers(servers_file, [slow, fast])
    client = smart_client(timeout=0.3)

    assert served_by(client) == "platform-2"
    assert slow.count("GET", "/v1/stories") == 1 and fast.count("GET", "/v1/stories") == 1


def test_a_503_sends_a_get_to_another_server_but_never_a_post(
    stubs: list[StubPlatform], servers_file: Path, smart_client: SmartFactory
) -> None:
    stubs[0].status = 503
    write_servers(servers_file, stubs[:2])

    assert served_by(smart_client()) == "platform-2"
    with pytest.raises(Unavailable) as caught:
        smart_client()._call("POST", "/v1/stories", json={})
    assert caught.value.status == 503
    assert stubs[1].count("POST", "/v1/stories") == 0


def test_a_keyed_post_is_retried_once_on_another_server_after_a_read_timeout(
    stubs: list[StubPlatform], servers_file: Path, smart_client: SmartFactory
) -> None:
    slow, fast = stubs[0], stubs[1]
    slow.delay = 1.0
    write_servers(servers_file, [slow, fast])
    client = smart_client(timeout=0.3)

    # With an Idempotency-Key the platform answers a copy from the first attempt,
    # so the POST may go elsewhere (post, "Redundancy and failover").
    response = client._send("POST", "/v1/stories", json={"title": "once"}, idempotency_key="k-1")

    assert response.headers["X-Served-By"] == "platform-2"
    assert slow.count("POST", "/v1/stories") == 1 and fast.count("POST", "/v1/stories") == 1


def test_a_503_sends_a_keyed_post_to_another_server(
    stubs: list[StubPlatform], servers_file: Path, smart_client: SmartFactory
) -> None:
    stubs[0].status = 503
    write_servers(servers_file, stubs[:2])
    response = smart_client()._send("POST", "/v1/stories", json={}, idempotency_key="k-2")
    assert response.headers["X-Served-By"] == "platform-2"


def test_a_503_with_retry_after_is_not_sent_elsewhere_even_for_a_get(
    stubs: list[StubPlatform], servers_file: Path, smart_client: SmartFactory
) -> None:
    # The platform saying "read-only, come back in 5 s" is the same on every server.
    stubs[0].status, stubs[0].retry_after = 503, "5"
    write_servers(servers_file, stubs[:2])
    with pytest.raises(Unavailable):
        smart_client()._call("GET", "/v1/stories")
    assert stubs[1].count("GET", "/v1/stories") == 0


def test_only_connect_failures_count_as_never_sent() -> None:
    gone = StubPlatform("gone").start()
    gone.stop()
    with pytest.raises(requests.ConnectionError) as refused:
        requests.get(gone.url, timeout=1)
    assert never_sent(refused.value)
    assert never_sent(requests.ConnectTimeout())
    assert not never_sent(requests.ReadTimeout())
    assert not never_sent(requests.ConnectionError(ConnectionResetError("reset by peer")))


# --- Settings and the switch ----------------------------------------------------------


def test_haproxy_is_the_default_and_sends_everything_to_platform_url() -> None:
    assert settings.PLATFORM_BALANCING == "haproxy"
    client = platform_client.build_client()
    assert client.base_url == settings.PLATFORM_URL
    assert not isinstance(client.session.get_adapter(f"{SMART_BASE_URL}/v1/x"), SmartAdapter)


def test_an_unknown_balancing_mode_stops_start_up() -> None:
    from tests.unit.test_web_settings import REQUIRED, run_python

    result = run_python("import django; django.setup()", {**REQUIRED, "PLATFORM_BALANCING": "random"})
    assert result.returncode != 0 and "PLATFORM_BALANCING" in result.stderr


def test_pages_show_the_platform_server_in_smart_mode(
    web_static_root: Path, stubs: list[StubPlatform], servers_file: Path
) -> None:
    from django.test import Client

    write_servers(servers_file, stubs[2:])
    with override_settings(PLATFORM_BALANCING="smart", PLATFORM_SERVERS_FILE=servers_file):
        platform_client.install_client(None)
        try:
            response = Client().get("/")
        finally:
            platform_client.install_client(None)
    assert response.status_code == 200
    assert response["X-Platform-Served-By"] == "platform-3"
    assert response["X-Cache"] == "hits=1 misses=0"
    assert "platform: platform-3" in response.content.decode()


# --- The launcher's side: the file comes from the topology -----------------------------


def test_the_launcher_writes_the_topology_s_platform_servers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from scalestack.render import render_all
    from scalestack.topology import load

    monkeypatch.setenv("SCALESTACK_VAR", str(tmp_path / "var"))
    monkeypatch.setenv("SCALESTACK_PLATFORM_SERVERS", "3")
    monkeypatch.setenv("SCALESTACK_PLATFORM_BALANCING", "smart")
    topo = load("dev")

    written = render_all(topo)["platform_servers"]

    env = topo.web_env(topo.web[0])
    assert env["PLATFORM_BALANCING"] == "smart"
    assert Path(env["PLATFORM_SERVERS_FILE"]) == written == topo.etc / "platform-servers.json"
    # Read back by the smart client's own reader.
    assert ServerFile(written).changed() == [
        ("platform-1", "http://127.0.0.1:8201"),
        ("platform-2", "http://127.0.0.1:8202"),
        ("platform-3", "http://127.0.0.1:8203"),
    ]


def test_the_web_tier_uses_haproxy_unless_told_otherwise(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from scalestack.topology import load

    monkeypatch.setenv("SCALESTACK_VAR", str(tmp_path / "var"))
    monkeypatch.delenv("SCALESTACK_PLATFORM_BALANCING", raising=False)
    topo = load("dev")
    assert topo.web_env(topo.web[0])["PLATFORM_BALANCING"] == "haproxy"
