"""A real browser loads the site: every static asset and avatar comes from the CDN edge.

Debian's chromium, driven by Playwright (its own browser download is not
used). The test also reports how many of the page's bytes the edge served.
"""
from __future__ import annotations

from urllib.parse import urlsplit

import requests
from playwright.sync_api import sync_playwright

from scalestack.topology import Topology
from tests.integration.helpers import make_member, png, upload_avatar

CHROMIUM = "/usr/bin/chromium"
HEADLESS_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


def _load(url: str) -> list[tuple[str, int, int]]:
    """Load ``url`` in a fresh browser; every response as (URL, status, body bytes)."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=HEADLESS_ARGS)
        try:
            page = browser.new_page()
            responses = []
            page.on("response", lambda response: responses.append(response))
            page.goto(url, wait_until="networkidle", timeout=30_000)
            return [(r.url, r.status, len(r.body())) for r in responses]
        finally:
            browser.close()


def _check_page(t: Topology, site: str, path: str) -> list[tuple[str, int, int]]:
    """Load ``path`` twice (the first warms the edge); check where every response came from."""
    _load(site + path)
    responses = _load(site + path)
    assets = [(url, status, size) for url, status, size in responses
              if urlsplit(url).path.startswith(("/static/", "/media/"))]
    assert assets, f"the page loaded no static asset: {responses}"
    for url, status, _ in assets:
        assert urlsplit(url).port == t.static_port, f"{url} is not on the edge"
        assert status == 200, (url, status)
    # The web servers served only the page itself.
    front = [r for r in responses if urlsplit(r[0]).port == t.front_port]
    assert [urlsplit(url).path for url, _, _ in front] == [path]
    edge_bytes = sum(size for _, _, size in assets)
    total = sum(size for _, _, size in responses)
    print(f"\n{path}: {len(responses)} responses, {total} bytes; the edge served "
          f"{len(assets)} of them, {edge_bytes} bytes ({edge_bytes / total:.0%})")
    return assets


def test_the_front_page_loads_every_asset_from_the_edge(running_stack: Topology, site: str) -> None:
    _check_page(running_stack, site, "/")


def test_a_member_page_loads_the_avatar_from_the_edge(running_stack: Topology, site: str,
                                                      api: requests.Session, api_url: str) -> None:
    member = make_member(site, api, api_url)
    assert upload_avatar(member.session, site, "green.png", png((20, 180, 60))).status_code == 302
    assets = _check_page(running_stack, site, f"/u/{member.username}")
    assert any("/media/avatars/" in url for url, _, _ in assets), assets
