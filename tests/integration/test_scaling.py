"""Horizontal scalability, live: add and remove web servers under load, drop nothing.

``scalestack scale`` starts a new server, waits for it to be healthy and
reloads HAProxy hitlessly (master-worker: the old worker finishes its
connections); removing one drains it first through HAProxy's runtime API.
"""
from __future__ import annotations

import threading
import time

import requests

from scalestack import stack
from scalestack.topology import SCALE_FILE, Topology
from scalestack.topology import load as load_topology


class Load:
    """A bounded background load on the front door: four clients, GETs only, stops itself."""

    def __init__(self, site: str, seconds: float = 120) -> None:
        self.site = site
        self.deadline = time.monotonic() + seconds
        self.stop_event = threading.Event()
        self.ok = 0
        self.failures: list[str] = []
        self.served_by: dict[str, int] = {}
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._client, args=(i,)) for i in range(4)]

    def _client(self, i: int) -> None:
        session = requests.Session()
        paths = ["/", f"/s/{40 + i}", "/newest", f"/s/{90 + i}"]
        n = 0
        while not self.stop_event.is_set() and time.monotonic() < self.deadline:
            path = paths[n % len(paths)]
            n += 1
            try:
                response = session.get(f"{self.site}{path}", timeout=10)
                with self.lock:
                    if response.status_code == 200:
                        self.ok += 1
                        server = response.headers.get("X-Served-By", "?")
                        self.served_by[server] = self.served_by.get(server, 0) + 1
                    else:
                        self.failures.append(f"{path}: {response.status_code}")
            except requests.RequestException as exc:
                with self.lock:
                    self.failures.append(f"{path}: {exc!r}")

    def __enter__(self) -> "Load":
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_event.set()
        for thread in self.threads:
            thread.join()


def test_scaling_web_up_and_down_under_load_fails_no_request(site: str, running_stack: Topology) -> None:
    t = running_stack
    try:
        with Load(site) as load:
            time.sleep(2)
            bigger = stack.scale(t, web=3, platform=None, say=print)
            assert [p.name for p in bigger.web] == ["web-1", "web-2", "web-3"]
            # The new server takes its share once HAProxy has reloaded.
            deadline = time.monotonic() + 20
            while load.served_by.get("web-3", 0) < 10 and time.monotonic() < deadline:
                time.sleep(0.2)
            assert load.served_by.get("web-3", 0) >= 10, load.served_by
            # Drained: it gets nothing new.
            stack.drain(bigger, "web-3")
            # A response HAProxy already sent may still be on its way to a client.
            time.sleep(0.5)
            before = load.served_by.get("web-3", 0)
            time.sleep(2)
            assert load.served_by.get("web-3", 0) == before
            stack.ready(bigger, "web-3")
            smaller = stack.scale(bigger, web=2, platform=None, say=print)
            assert [p.name for p in smaller.web] == ["web-1", "web-2"]
            time.sleep(2)
        print(f"\nscale 2 -> 3 -> 2 under load: {load.ok} requests, {len(load.failures)} failed, "
              f"served by {load.served_by}")
        assert load.ok > 100
        assert load.failures == [], load.failures[:5]
    finally:
        # Leave the stack as the other tests expect it: two web servers.
        now = load_topology(t.profile)
        if now.web_servers != 2:
            stack.scale(now, web=2, platform=None, say=print)
        (t.var / SCALE_FILE).unlink(missing_ok=True)
