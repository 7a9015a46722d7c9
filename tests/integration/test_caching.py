"""The post's "Caching": read-through fills, write-through updates, stampede-free."""
from __future__ import annotations

import requests

from scalestack.topology import Topology
from tests.integration.helpers import Member, memcached_delete, post_form, story_key, wait_until


def _cache(response: requests.Response) -> tuple[int, int]:
    hits, misses = (int(part.split("=")[1]) for part in response.headers["X-Cache"].split())
    return hits, misses


def test_read_through_misses_once_then_hits(api: requests.Session, api_url: str, running_stack: Topology) -> None:
    story_id = 4321
    memcached_delete(running_stack, story_key(running_stack, story_id))
    first = api.get(f"{api_url}/v1/stories/{story_id}", timeout=10)
    assert first.status_code == 200
    assert _cache(first) == (0, 1)
    # The fill is shared: every platform server now hits.
    for _ in range(4):
        again = api.get(f"{api_url}/v1/stories/{story_id}", timeout=10)
        assert _cache(again) == (1, 0)
        assert again.json() == first.json()


def test_absent_rows_are_cached_as_absent(api: requests.Session, api_url: str) -> None:
    missing = 987_654_321
    assert api.get(f"{api_url}/v1/stories/{missing}", timeout=10).status_code == 404
    second = api.get(f"{api_url}/v1/stories/{missing}", timeout=10)
    assert second.status_code == 404
    assert _cache(second) == (1, 0), "a cached 'absent' is a hit, not another database read"


def test_write_through_is_visible_at_once_on_every_server(
    site: str, api: requests.Session, api_url: str, member: Member
) -> None:
    story_id = 77
    before = api.get(f"{api_url}/v1/stories/{story_id}", timeout=10).json()["votes"]
    response = post_form(member.session, f"{site}/s/{story_id}/vote", {}, form_url=f"{site}/s/{story_id}")
    assert response.status_code == 200
    servers = set()
    for _ in range(6):
        after = api.get(f"{api_url}/v1/stories/{story_id}", timeout=10)
        servers.add(after.headers["X-Served-By"])
        assert after.json()["votes"] == before + 1
        # A hit: the vote wrote the new value into the cache rather than deleting it.
        assert _cache(after) == (1, 0)
    assert len(servers) == 2
    # And through the web tier, whichever web server renders it.
    for _ in range(4):
        page = member.session.get(f"{site}/s/{story_id}", timeout=10)
        assert f"{before + 1} point" in page.text


def test_new_story_appears_on_newest_at_once_and_on_followers_home_soon(
    site: str, api: requests.Session, api_url: str, member: Member
) -> None:
    from tests.integration.helpers import make_member

    follower = make_member(site, api, api_url)
    post_form(follower.session, f"{site}/u/{member.username}/follow", {}, form_url=f"{site}/u/{member.username}")
    # Warm the caches of both lists first, so the test would see a stale entry.
    follower.session.get(f"{site}/home", timeout=10)
    requests.get(f"{site}/newest", timeout=10)
    title = f"Fresh story {member.username}"
    response = post_form(member.session, f"{site}/submit", {"title": title, "url": "https://example.org/a", "text": ""})
    assert response.status_code == 200
    assert title in requests.get(f"{site}/newest", timeout=10).text
    # The author's own home timeline has it at once (written inline)...
    assert title in member.session.get(f"{site}/home", timeout=10).text
    # ...and the follower's once the fan-out consumer has run (off-line, the
    # post's "do enough inline, tie up the loose ends afterwards").
    wait_until(lambda: title in follower.session.get(f"{site}/home", timeout=10).text, 20,
               "the story on the follower's home timeline")


def test_one_setting_turns_the_data_cache_off(api: requests.Session, api_url: str, running_stack: Topology) -> None:
    """A platform server started with DATA_CACHE_ENABLED=false reads PostgreSQL every time."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from scalestack import stack
    from scalestack.topology import REPO

    port = running_stack.port(8299)
    env = {**os.environ, **running_stack.platform_env(), "DATA_CACHE_ENABLED": "false",
           "SCALESTACK_SERVER_NAME": "platform-nocache"}
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "gunicorn"), "platform_api.wsgi", "--bind", f"127.0.0.1:{port}",
         "--workers", "1", "--chdir", str(REPO / "platform")],
        cwd=REPO / "platform", env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        stack.wait_for(lambda: stack.http_ok("127.0.0.1", port, "/v1/healthz"), 30, "the uncached platform")
        cached = api.get(f"{api_url}/v1/stories?sort=new", timeout=10)
        for _ in range(2):
            uncached = api.get(f"http://127.0.0.1:{port}/v1/stories?sort=new", timeout=10)
            assert uncached.headers["X-Cache"] == "hits=0 misses=0"
            assert uncached.headers["X-Served-By"] == "platform-nocache"
        assert uncached.json() == cached.json()
    finally:
        server.terminate()
        server.wait(timeout=20)


def test_concurrent_misses_on_one_key_read_the_database_once(
    api_url: str, running_stack: Topology
) -> None:
    """dogpile's distributed lock: one request fills a cold key, the others wait for it."""
    import threading

    story_id = 5678
    memcached_delete(running_stack, story_key(running_stack, story_id))
    token = running_stack.secrets()["PLATFORM_TOKEN"]
    answers: list[tuple[int, int]] = []
    lock = threading.Lock()

    def read() -> None:
        response = requests.get(f"{api_url}/v1/stories/{story_id}", timeout=10,
                                headers={"Authorization": f"Bearer {token}", "X-Debug-Fill-Delay": "1"})
        assert response.status_code == 200
        with lock:
            answers.append(_cache(response))

    threads = [threading.Thread(target=read) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(answers) == [(0, 1)] + [(1, 0)] * 7, answers
