"""The post's "Caching": read-through fills, write-through updates, stampede-free."""
from __future__ import annotations

import requests

from scalestack.topology import Topology
from tests.integration.helpers import Member, memcached_delete, post_form, story_key


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


def test_new_story_appears_at_once_on_newest_and_on_followers_home(
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
    assert title in follower.session.get(f"{site}/home", timeout=10).text
