"""The CDN edge in front of the static origin: the post's "Content distribution networks".

The edge (nginx ``proxy_cache``) is a read-through cache keyed by the URL: a
miss is fetched from the origin and stored, a hit never reaches the origin.
Every URL is versioned by content, so nothing is ever purged.
"""
from __future__ import annotations

import re
import uuid

import requests

from scalestack import stack
from scalestack.topology import Topology
from tests.integration.helpers import make_member, png, upload_avatar, wait_until


def _edge(t: Topology, path: str) -> str:
    return f"http://127.0.0.1:{t.static_port}{path}"


def _stylesheet(site: str, t: Topology) -> str:
    """The path of the front page's stylesheet, as the page links it (through the edge)."""
    html = requests.get(site + "/", timeout=10).text
    match = re.search(rf'href="{re.escape(t.static_url)}([^"]+\.css)"', html)
    assert match, "the front page links no stylesheet on the edge"
    return "/static/" + match.group(1)


def test_an_asset_is_a_miss_then_a_hit_at_the_edge(running_stack: Topology, site: str) -> None:
    t = running_stack
    # A query string the edge has never seen: a new cache key, the same file.
    url = _edge(t, f"{_stylesheet(site, t)}?first-visit={uuid.uuid4().hex}")
    first = requests.get(url, timeout=10)
    assert first.status_code == 200
    assert first.headers["X-Cache-Status"] == "MISS"
    second = requests.get(url, timeout=10)
    assert second.headers["X-Cache-Status"] == "HIT"
    assert second.content == first.content
    # The origin's Cache-Control comes through: cache it for a year, never revalidate.
    assert second.headers["Cache-Control"] == "public, max-age=31536000, immutable"


def test_pages_load_static_files_from_the_edge_and_never_from_the_origin(running_stack: Topology,
                                                                        site: str) -> None:
    t = running_stack
    html = requests.get(site + "/", timeout=10).text
    links = re.findall(r'(?:href|src)="(https?://[^"]+)"', html)
    static_links = [link for link in links if "/static/" in link or "/media/" in link]
    assert static_links
    assert all(link.startswith(f"http://localhost:{t.static_port}/") for link in static_links), static_links
    assert f":{t.static_origin_port}/" not in html


def test_the_edge_serves_what_it_has_while_the_origin_is_down(running_stack: Topology, site: str) -> None:
    t = running_stack
    cached = _edge(t, f"{_stylesheet(site, t)}?origin-down={uuid.uuid4().hex}")
    assert requests.get(cached, timeout=10).headers["X-Cache-Status"] == "MISS"
    stack.stop(t, "static-origin")
    try:
        during = requests.get(cached, timeout=10)
        assert during.status_code == 200 and during.headers["X-Cache-Status"] == "HIT"
        # What the edge never fetched it cannot serve: an honest gateway error.
        missing = requests.get(_edge(t, f"{_stylesheet(site, t)}?never={uuid.uuid4().hex}"), timeout=10)
        assert missing.status_code in (502, 504)
    finally:
        stack.start(t, "static-origin")
        wait_until(lambda: stack.http_ok("127.0.0.1", t.static_origin_port, "/healthz"), 20, "the origin back")


def _avatar_on_user_page(site: str, username: str) -> str | None:
    html = requests.get(f"{site}/u/{username}", timeout=10).text
    match = re.search(r'<img[^>]+src="(http://localhost:\d+/media/[^"]+)"', html)
    return match.group(1) if match else None


def test_a_replaced_avatar_is_never_served_stale(running_stack: Topology, site: str,
                                                api: requests.Session, api_url: str) -> None:
    member = make_member(site, api, api_url)
    assert upload_avatar(member.session, site, "red.png", png((200, 30, 30))).status_code == 302
    first = _avatar_on_user_page(site, member.username)
    assert first and first.startswith(running_stack.media_url)
    first_url = first.replace("localhost", "127.0.0.1")
    fetched = requests.get(first_url, timeout=10)
    assert fetched.status_code == 200 and fetched.headers["Content-Type"] == "image/webp"
    assert fetched.headers["X-Cache-Status"] == "MISS"
    assert requests.get(first_url, timeout=10).headers["X-Cache-Status"] == "HIT"

    # Replace it: the new file has a new name (its content hash), so the edge,
    # which holds the old one for a year, can never serve it in its place.
    assert upload_avatar(member.session, site, "blue.png", png((30, 30, 200))).status_code == 302
    for _ in range(6):  # every web server, every platform server, at once
        second = _avatar_on_user_page(site, member.username)
        assert second and second != first
    replaced = requests.get(second.replace("localhost", "127.0.0.1"), timeout=10)
    assert replaced.status_code == 200 and replaced.content != fetched.content


def test_bad_uploads_get_a_4xx_and_change_nothing(site: str, api: requests.Session, api_url: str) -> None:
    member = make_member(site, api, api_url)
    assert upload_avatar(member.session, site, "ok.png", png((10, 160, 10))).status_code == 302
    before = _avatar_on_user_page(site, member.username)
    not_an_image = upload_avatar(member.session, site, "notes.png", b"just some text, not a picture\n")
    assert not_an_image.status_code == 415
    assert "JPEG, PNG, GIF or WebP" in not_an_image.text
    too_big = upload_avatar(member.session, site, "big.png", b"\x89PNG\r\n\x1a\n" + b"\0" * (3 * 1024 * 1024))
    assert too_big.status_code == 413
    assert _avatar_on_user_page(site, member.username) == before
