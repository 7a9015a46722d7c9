"""The compose stack end to end: the same checks a user would make after ``docker compose up``.

Everything goes through the published ports, as a browser would: the front
door (HAProxy), the static host, and HAProxy's password-protected stats page.
The tests run in file order; the last two resize and then break the web tier.
"""
from __future__ import annotations

import re
import time
import uuid
from typing import Callable

import pytest
import requests

from tests.compose.conftest import Compose
from tests.faults.checks import missing_writes
from tests.faults.loadgen import LoadRun
from tests.faults.scenario import AFTER, DURING, assert_no_failures, warm_up
from tests.integration.helpers import png, post_form, upload_avatar, wait_until

pytestmark = pytest.mark.timeout(600)


def _served_by(c: Compose, path: str, requests_count: int) -> tuple[set[str], set[str]]:
    """Which web servers and platform servers answered ``requests_count`` GETs of ``path``."""
    web, platform = set(), set()
    for _ in range(requests_count):
        response = requests.get(f"{c.site}{path}", timeout=10)
        assert response.status_code == 200, response.text[:300]
        web.add(response.headers["X-Served-By"])
        platform.update(s for s in response.headers.get("X-Platform-Served-By", "").split(",") if s)
    return web, platform


def _signup(c: Compose) -> tuple[str, requests.Session]:
    username = f"c{uuid.uuid4().hex[:12]}"
    session = requests.Session()
    password = "correct horse battery"
    response = post_form(session, f"{c.site}/signup",
                         {"username": username, "password": password, "password2": password})
    assert response.status_code == 200, response.text[:500]
    return username, session


def test_every_container_is_healthy_and_the_site_is_seeded(compose_stack: Compose) -> None:
    c = compose_stack
    services = sorted({service for service, _, _ in c.states().values()})
    assert services == sorted(["haproxy", "web", "platform", "static-origin", "cdn-edge", "postgres", "postgres-replica",
                               "pgcheck-postgres", "pgcheck-postgres-replica", "memcached-1", "memcached-2",
                               "rabbitmq", "migrate", "seed", "fanout", "clicks", "worker", "beat"])
    assert c.not_ready() == []
    front = requests.get(c.site + "/", timeout=10)
    assert front.status_code == 200
    # The seed job's stories and users are there.
    assert len(set(re.findall(r'href="/s/(\d+)"', front.text))) >= 10
    assert requests.get(f"{c.site}/u/dana_ahmed", timeout=10).status_code == 200
    # PostgreSQL, memcached, RabbitMQ and the platform are not published.
    published = c.run("port", "haproxy", "8080").strip()
    assert published.endswith(f":{c.t.front_port}")
    for service, port in (("postgres", "5432"), ("rabbitmq", "5672"), ("memcached-1", "11211")):
        assert c.run("port", service, port, check=False).strip() in ("", ":0")


def test_pages_load_hashed_assets_through_the_cdn_edge(compose_stack: Compose) -> None:
    c = compose_stack
    html = requests.get(c.site + "/", timeout=10).text
    assets = re.findall(r'(?:href|src)="(http://localhost:\d+/static/[^"]+)"', html)
    assert assets, "the page links no static asset"
    for url in assets:
        assert url.startswith(f"http://localhost:{c.t.static_port}/static/")
        # ManifestStaticFilesStorage's content hash in the name: cache forever.
        assert re.search(r"\.[0-9a-f]{12}\.\w+$", url), url
        response = requests.get(url.replace("localhost", "127.0.0.1"), timeout=10)
        assert response.status_code == 200
        assert "immutable" in response.headers["Cache-Control"]
        # The CDN edge has it now (the first page load, or this request, fetched it).
        again = requests.get(url.replace("localhost", "127.0.0.1"), timeout=10)
        assert again.headers["X-Cache-Status"] == "HIT"
    # The web servers serve no static files.
    assert requests.get(c.site + "/static/" + assets[0].split("/static/", 1)[1], timeout=10).status_code == 404


def test_an_uploaded_avatar_is_served_by_the_edge_from_the_shared_volume(compose_stack: Compose) -> None:
    c = compose_stack
    username, session = _signup(c)
    response = upload_avatar(session, c.site, "orange.png", png((250, 120, 0), size=80))
    assert response.status_code == 302, response.text[:500]
    page = requests.get(f"{c.site}/u/{username}", timeout=10).text
    url = re.search(r'<img[^>]+src="(http://localhost:\d+/media/[^"]+)"', page).group(1)
    assert url.startswith(f"http://localhost:{c.t.static_port}/media/avatars/")
    # A platform container wrote it to the media volume; the origin serves it
    # read-only; the edge caches it.
    first = requests.get(url.replace("localhost", "127.0.0.1"), timeout=10)
    assert first.status_code == 200 and first.headers["Content-Type"] == "image/webp"
    assert first.headers["X-Cache-Status"] == "MISS"
    assert requests.get(url.replace("localhost", "127.0.0.1"), timeout=10).headers["X-Cache-Status"] == "HIT"


def test_haproxy_balances_over_the_web_and_platform_replicas(compose_stack: Compose) -> None:
    c = compose_stack
    # Two of each, found through Docker's DNS (server-template), no config edit.
    wait_until(lambda: len(c.up_servers("web_pool")) == 2, 30, "two web servers UP")
    wait_until(lambda: len(c.up_servers("platform_pool")) == 2, 30, "two platform servers UP")
    web, platform = _served_by(c, "/", 30)
    assert len(web) == 2, web
    assert len(platform) == 2, platform
    # Both database pools see their servers through pgcheck: the replica reads only.
    stats = c.stats()
    assert stats[("db_write_pool", "postgres")]["status"] == "UP"
    assert stats[("db_write_pool", "postgres-replica")]["status"] == "DOWN"
    assert stats[("db_read_pool", "postgres-replica")]["status"] == "UP"


def test_the_data_cache_serves_repeated_reads(compose_stack: Compose) -> None:
    c = compose_stack
    story = re.search(r'href="/s/(\d+)"', requests.get(c.site + "/newest", timeout=10).text).group(1)
    requests.get(f"{c.site}/s/{story}", timeout=10)
    again = requests.get(f"{c.site}/s/{story}", timeout=10)
    hits, misses = map(int, re.fullmatch(r"hits=(\d+) misses=(\d+)", again.headers["X-Cache"]).groups())
    assert hits > 0 and misses == 0, again.headers["X-Cache"]
    # memcached's own counters agree: both nodes hold keys and answer hits.
    for node in ("memcached-1", "memcached-2"):
        stats = c.run("exec", "-T", node, "python3", "-c",
                      "import socket; s = socket.create_connection(('127.0.0.1', 11211)); "
                      "s.sendall(b'stats\\r\\n'); print(s.recv(65536).decode())")
        values = dict(line.split()[1:3] for line in stats.splitlines() if line.startswith("STAT "))
        assert int(values["get_hits"]) > 0 and int(values["curr_items"]) > 0, (node, values)


def test_a_story_reaches_a_followers_timeline_through_rabbitmq(compose_stack: Compose) -> None:
    c = compose_stack
    author, author_session = _signup(c)
    follower, follower_session = _signup(c)
    assert post_form(follower_session, f"{c.site}/u/{author}/follow", {}, form_url=f"{c.site}/u/{author}").ok
    title = f"compose fan-out {uuid.uuid4().hex[:8]}"
    response = post_form(author_session, f"{c.site}/submit",
                         {"title": title, "url": "https://example.org/compose", "text": ""})
    assert response.status_code == 200 and title in response.text
    wait_until(lambda: title in follower_session.get(f"{c.site}/home", timeout=10).text, 30,
               "the story in the follower's timeline")


def test_a_click_is_counted_by_the_beat_scheduled_rollup(compose_stack: Compose) -> None:
    c = compose_stack
    story = re.search(r'href="/s/(\d+)"', requests.get(c.site + "/", timeout=10).text).group(1)
    domain = f"c{uuid.uuid4().hex[:8]}.example"
    response = requests.get(f"{c.site}/r/{story}", headers={"Referer": f"https://{domain}/page"},
                            allow_redirects=False, timeout=10)
    assert response.status_code == 302
    # The click goes web -> platform -> outbox -> RabbitMQ -> click consumer;
    # the active beat schedules "today so far" every 5 s and a worker rolls it up.
    wait_until(lambda: domain in requests.get(f"{c.site}/analytics", timeout=10).text, 60,
               "the click on the analytics page")
    # Two schedulers run; exactly one holds the lease.
    holders = c.sql("SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
                    "WHERE l.locktype = 'advisory' AND l.granted AND a.application_name LIKE 'beat-%'")
    assert holders == "1"


def test_scaling_to_three_web_and_three_platform_servers_puts_all_to_work_and_back(compose_stack: Compose) -> None:
    c = compose_stack
    c.run("up", "-d", "--no-recreate", "--scale", "web=3", "--scale", "platform=3", "web", "platform")
    c.wait_ready(180)
    # HAProxy re-resolves the service names every second and fills a third
    # slot in each pool: no config edit, no reload.
    wait_until(lambda: len(c.up_servers("web_pool")) == 3, 30, "HAProxy to see three web servers UP")
    wait_until(lambda: len(c.up_servers("platform_pool")) == 3, 30, "HAProxy to see three platform servers UP")
    web, platform = _served_by(c, "/", 45)
    assert len(web) == 3, web
    assert len(platform) == 3, platform
    # And back: the removed container's slot empties, the pool carries on.
    c.run("up", "-d", "--no-recreate", "--scale", "platform=2", "platform")
    wait_until(lambda: len(c.up_servers("platform_pool")) == 2, 30, "HAProxy to drop the third platform server")
    _, platform = _served_by(c, "/", 10)
    assert len(platform) == 2, platform


def test_stopping_a_web_container_under_load_fails_no_request(
    compose_stack: Compose, load_run: Callable[[str], LoadRun]
) -> None:
    c = compose_stack
    assert len(c.up_servers("web_pool")) == 3
    victim = c.ids("web")[0]
    with load_run("compose: a web container stopped under load") as run:
        warm_up(run)
        run.begin("during")
        # SIGTERM: gunicorn finishes its requests in flight and exits; the
        # container's address leaves Docker's DNS and HAProxy's pool.
        c.docker("stop", "--time", "15", victim)
        wait_until(lambda: len(c.up_servers("web_pool")) == 2, 15, "HAProxy to drop the stopped server")
        run.hold(DURING)
        run.begin("after")
        run.hold(AFTER)
    result = run.result
    assert result is not None
    assert_no_failures(result)
    served = {r["served_by"] for r in result.in_phase("after")}
    assert len(served) == 2, served
    assert result.acknowledged("signup"), "no member signed up"
    missing = missing_writes(c.t, result.acks, query=c.sql)
    result.extra["acknowledged writes lost"] = len(missing)
    assert not missing, missing[:10]
