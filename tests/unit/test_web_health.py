"""The web tier's /healthz: 503 while draining, and a platform report that never fails it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from django.test import Client
from django.test.utils import override_settings

from news_web import health, platform_client

if TYPE_CHECKING:
    from tests.unit.conftest import WebFakePlatform


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def synchronous_watch(fetch: Callable[[], dict[str, Any]], clock: Clock) -> health.PlatformWatch:
    """A watch whose refreshes run at once, in the caller's thread, so tests see their result."""
    return health.PlatformWatch(fetch, 5.0, clock=clock, spawn=lambda work: work())


@pytest.fixture
def no_refresh(monkeypatch: pytest.MonkeyPatch) -> None:
    """A watch that never refreshes: the check's own behaviour, without the platform."""
    monkeypatch.setattr(health, "watch", health.PlatformWatch(lambda: {}, 5.0, spawn=lambda work: None))


def test_healthz_is_503_draining_while_the_drain_file_exists(
    web_client: Client, tmp_path: Path, no_refresh: None
) -> None:
    drain = tmp_path / "web-1"
    with override_settings(SCALESTACK_DRAIN_FILE=str(drain)):
        assert web_client.get("/healthz").status_code == 200
        drain.touch()
        response = web_client.get("/healthz")
        assert response.status_code == 503
        assert response.json()["status"] == "draining"
        assert response.json()["server"] == "web-test"
        drain.unlink()
        assert web_client.get("/healthz").json()["status"] == "ok"


def test_an_empty_drain_setting_never_drains(web_client: Client, no_refresh: None) -> None:
    with override_settings(SCALESTACK_DRAIN_FILE=""):
        assert web_client.get("/healthz").status_code == 200


def test_an_unreachable_platform_is_reported_but_never_fails_the_check(
    web_client: Client, web_platform: WebFakePlatform, monkeypatch: pytest.MonkeyPatch
) -> None:
    web_platform.reply("GET", "/v1/healthz", web_platform.Reply(503, raw="<html>No server is available</html>"))
    monkeypatch.setattr(health, "watch", synchronous_watch(health.fetch_platform_health, Clock()))

    web_client.get("/healthz")  # the first check starts the first refresh
    response = web_client.get("/healthz")

    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    assert response.json()["platform"] == {"reachable": False, "error": "platform answered 503", "age_seconds": 0.0}


def test_a_reachable_platform_is_reported_with_its_own_status(
    web_client: Client, web_platform: WebFakePlatform, monkeypatch: pytest.MonkeyPatch
) -> None:
    web_platform.ok("GET", "/v1/healthz", {"status": "degraded", "server": "platform-2", "database": True,
                                           "primary": False, "cache": True})
    monkeypatch.setattr(health, "watch", synchronous_watch(health.fetch_platform_health, Clock()))
    web_client.get("/healthz")
    report = web_client.get("/healthz").json()["platform"]
    assert report == {"reachable": True, "status": "degraded", "server": "platform-2", "age_seconds": 0.0}


def test_the_report_is_refreshed_once_per_period_and_never_waited_for() -> None:
    clock = Clock()
    fetched: list[float] = []
    started: list[Callable[[], None]] = []

    def fetch() -> dict[str, Any]:
        fetched.append(clock.now)
        return {"reachable": True, "status": "ok"}

    watch = health.PlatformWatch(fetch, 5.0, clock=clock, spawn=started.append)

    # Stale and never checked: the first report starts one refresh and does not wait for it.
    assert watch.report() == {"reachable": None, "status": "unknown", "age_seconds": None}
    assert watch.report()["status"] == "unknown"
    assert len(started) == 1  # a refresh in flight is not started twice
    started.pop()()
    clock.now += 3
    assert watch.report() == {"reachable": True, "status": "ok", "age_seconds": 3.0}
    assert started == []  # still fresh
    clock.now += 2
    watch.report()
    assert len(started) == 1 and fetched == [100.0]


def test_a_failing_fetch_becomes_an_unreachable_report() -> None:
    def fetch() -> dict[str, Any]:
        raise platform_client.Unavailable("platform unreachable: ConnectTimeout")

    watch = synchronous_watch(fetch, Clock())
    watch.report()
    assert watch.report() == {"reachable": False, "error": "Unavailable", "age_seconds": 0.0}
