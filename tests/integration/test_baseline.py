"""The single-process baseline serves the same pages as the stack, from the same data.

The baseline (``bench/baseline``, started by ``scalestack.baseline``) runs
beside the test stack on the stack's PostgreSQL primary and memcached nodes.
These tests compare what it lists with what the stack lists through its front
door, page by page, and check that a session cookie from the stack's login
signs the same member in on the baseline. Without that equality the
benchmark would compare two sites doing different work.
"""
from __future__ import annotations

import re
import socket
import time
import uuid
from collections.abc import Iterator

import pytest
import requests

from scalestack import baseline
from scalestack.bench import SEEDED_PASSWORD
from scalestack.topology import Topology
from tests.integration.helpers import Member, follow_via_api, post_form, sql

STORY_LINK = re.compile(r'href="/s/(\d+)"')
# Both sites cache the front page's ranked ids for up to 30 s (the platform's
# soft TTL, the baseline's CACHE_TTL); after this long, both compute it afresh.
CACHE_TTL = 30


# This module's baseline caches under keys of its own: an earlier run's pages,
# cached less than 30 s ago, would otherwise be compared with the stack's fresh ones.
NAMESPACE = uuid.uuid4().hex[:8]


@pytest.fixture(scope="module")
def baseline_url(running_stack: Topology) -> Iterator[str]:
    """The baseline, running for this module against the test stack's data, always stopped after."""
    with baseline.running(running_stack, cache_namespace=NAMESPACE) as process:
        yield baseline.url(running_stack)
        assert process.poll() is None, "the baseline died during the tests"


def story_ids(html: str) -> list[int]:
    """The stories a page lists, in order (a story linked twice counts once)."""
    return list(dict.fromkeys(int(found) for found in STORY_LINK.findall(html)))


def page(url: str, cookies: dict[str, str] | None = None) -> requests.Response:
    """GET a page, not following redirects; it must answer 200."""
    response = requests.get(url, cookies=cookies, allow_redirects=False, timeout=15)
    assert response.status_code == 200, (url, response.status_code, response.text[:300])
    return response


def seeded_name(t: Topology, where: str) -> str:
    """A seeded user matching ``where``, away from the most followed ones.

    The benchmark smoke test signs the most followed users in and posts as
    them; a user further down is one no other test writes for.
    """
    name = sql(t, f"SELECT username FROM users WHERE {where} AND username !~ '^t[0-9a-f]{{12}}$' "
                  "ORDER BY followers_count DESC, id OFFSET 20 LIMIT 1")
    assert name, f"no seeded user with {where}"
    return name


def test_healthz_answers_and_says_who_serves(baseline_url: str) -> None:
    response = page(f"{baseline_url}/healthz")
    assert response.json() == {"status": "ok", "server": "baseline"}


def test_a_user_page_lists_the_same_stories_as_the_stack(running_stack: Topology, site: str,
                                                         baseline_url: str) -> None:
    name = seeded_name(running_stack, "stories_count > 3")
    on_stack = story_ids(page(f"{site}/u/{name}").text)
    on_baseline = page(f"{baseline_url}/u/{name}")
    assert on_baseline.headers["X-Served-By"] == "baseline"
    assert on_stack and story_ids(on_baseline.text) == on_stack
    # The same counters as the database's, and the names are case-insensitive as on the stack.
    stories_count = sql(running_stack, f"SELECT stories_count FROM users WHERE username = '{name}'")
    assert f"<dt>stories</dt><dd>{stories_count}</dd>" in on_baseline.text
    assert story_ids(page(f"{baseline_url}/u/{name.upper()}").text) == on_stack


def test_an_unknown_or_impossible_user_is_a_404(baseline_url: str) -> None:
    for name in ("nobody-by-this-name", "ab", "x" * 31):
        assert requests.get(f"{baseline_url}/u/{name}", timeout=10).status_code == 404


def test_a_seeded_member_signed_in_on_the_stack_sees_the_same_home_page_on_both(
        running_stack: Topology, site: str, baseline_url: str) -> None:
    name = seeded_name(running_stack, "following_count > 3")
    browser = requests.Session()
    signed_in = post_form(browser, f"{site}/login", {"username": name, "password": SEEDED_PASSWORD})
    assert signed_in.status_code == 200 and f"/u/{name}" in signed_in.text
    cookie = {"sessionid": browser.cookies["sessionid"]}
    on_stack = story_ids(page(f"{site}/home", cookie).text)
    on_baseline = page(f"{baseline_url}/home", cookie)
    assert len(on_stack) == 30 and story_ids(on_baseline.text) == on_stack
    assert f'href="/u/{name}"' in on_baseline.text
    # Read-only: the baseline never re-issues or changes the stack's session.
    assert "Set-Cookie" not in on_baseline.headers
    # The second page continues the first, as on the stack.
    second = story_ids(page(f"{baseline_url}/home?page=2", cookie).text)
    assert second == story_ids(page(f"{site}/home?page=2", cookie).text)
    assert second and not set(second) & set(on_stack)


def test_a_new_member_sees_the_stored_timeline_a_follow_wrote(
        running_stack: Topology, site: str, baseline_url: str, member: Member, api: requests.Session,
        api_url: str) -> None:
    # The follow copies the author's latest stories into timeline_entries in
    # its own transaction; the baseline reads that table, as the platform does.
    author = seeded_name(running_stack, "stories_count > 3")
    author_id = int(sql(running_stack, f"SELECT id FROM users WHERE username = '{author}'"))
    follow_via_api(api, api_url, author_id, range(member.id, member.id + 1))
    cookie = {"sessionid": member.session.cookies["sessionid"]}
    on_stack = story_ids(page(f"{site}/home", cookie).text)
    assert on_stack == story_ids(page(f"{site}/u/{author}").text)
    assert story_ids(page(f"{baseline_url}/home", cookie).text) == on_stack


def test_home_without_a_valid_session_goes_to_the_login_page(running_stack: Topology, site: str,
                                                            baseline_url: str) -> None:
    for cookies in (None, {"sessionid": "forged.session.cookie"}):
        mine = requests.get(f"{baseline_url}/home", cookies=cookies, allow_redirects=False, timeout=10)
        theirs = requests.get(f"{site}/home", cookies=cookies, allow_redirects=False, timeout=10)
        assert mine.status_code == theirs.status_code == 302
        assert mine.headers["Location"] == theirs.headers["Location"] == "/login?next=%2Fhome"


def test_the_front_page_lists_the_same_stories_as_the_stack(site: str, baseline_url: str) -> None:
    # The score depends on now(), and each site may serve ids it ranked up to
    # CACHE_TTL seconds ago, at a different moment from the other. Within a
    # page the order of two near-equal scores can therefore differ, and, at
    # the page's edge, which of two stories is 30th; so the first page is
    # compared as a set, and once more after both caches have expired if it
    # differs (a story crossing the edge just then would not cross back).
    def both() -> tuple[set[int], set[int]]:
        return set(story_ids(page(f"{site}/").text)), set(story_ids(page(f"{baseline_url}/").text))

    on_stack, on_baseline = both()
    if on_stack != on_baseline:
        time.sleep(CACHE_TTL + 1)
        on_stack, on_baseline = both()
    assert len(on_stack) == 30 and on_baseline == on_stack


def _memcached_ttl(t: Topology, key: str) -> int | None:
    """The seconds ``key`` has left on whichever node holds it (meta get), or None if none does."""
    for node in t.memcached:
        with socket.create_connection((node.host, node.port), timeout=2) as conn:
            conn.sendall(f"mg {key} t\r\n".encode())
            reply = conn.recv(200).decode()
        if reply.startswith("HD"):
            return int(reply.split()[1].removeprefix("t"))
    return None


def test_page_data_is_read_through_memcached_for_thirty_seconds(running_stack: Topology,
                                                                  baseline_url: str) -> None:
    # Django's key: <KEY_PREFIX>:<VERSION>:<key>, with baseline.pages.user_page_cache_key's key.
    prefix = f"{baseline.cache_key_prefix(running_stack, NAMESPACE)}:1:user:"
    # Not the user of the user-page test, whose page this module has already cached.
    name = seeded_name(running_stack, "stories_count BETWEEN 1 AND 3")
    assert _memcached_ttl(running_stack, prefix + name.lower()) is None
    page(f"{baseline_url}/u/{name}")
    ttl = _memcached_ttl(running_stack, prefix + name.lower())
    assert ttl is not None and 0 < ttl <= CACHE_TTL
    # A name that does not exist is cached too, as an answer, not retried every time.
    page_missing = requests.get(f"{baseline_url}/u/no-such-member", timeout=10)
    assert page_missing.status_code == 404
    assert _memcached_ttl(running_stack, prefix + "no-such-member") is not None
