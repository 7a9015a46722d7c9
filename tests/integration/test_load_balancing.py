"""The post's "Load balancing": requests spread over every server of each pool."""
from __future__ import annotations

import csv
import io

import requests

from scalestack.topology import Topology


def test_front_door_spreads_pages_over_both_web_and_platform_servers(site: str, running_stack: Topology) -> None:
    web_servers: set[str] = set()
    platform_servers: set[str] = set()
    for _ in range(16):
        response = requests.get(f"{site}/", timeout=10)
        assert response.status_code == 200
        web_servers.add(response.headers["X-Served-By"])
        platform_servers.update(
            s.strip() for s in response.headers["X-Platform-Served-By"].split(",") if s.strip()
        )
    assert web_servers == {p.name for p in running_stack.web}
    assert platform_servers == {p.name for p in running_stack.platform}


def test_footer_shows_the_architecture_at_work(site: str) -> None:
    response = requests.get(f"{site}/", timeout=10)
    served_by = response.headers["X-Served-By"]
    assert f"rendered by {served_by}" in response.text
    assert response.headers["X-Cache"].startswith("hits=")
    hits, misses = (int(part.split("=")[1]) for part in response.headers["X-Cache"].split())
    assert hits + misses >= 1, "the front page reads at least one cached list"


def test_haproxy_stats_csv_lists_every_pool_and_server_up(running_stack: Topology) -> None:
    text = requests.get(f"{running_stack.stats_url};csv", timeout=10).text.lstrip("# ")
    rows = list(csv.DictReader(io.StringIO(text)))
    status = {(r["pxname"], r["svname"]): r["status"] for r in rows}
    for server in running_stack.web:
        assert status[("web_pool", server.name)] == "UP"
    for server in running_stack.platform:
        assert status[("platform_pool", server.name)] == "UP"
    assert status[("db_read_pool", "postgres")] == "UP"
    assert status[("db_write_pool", "postgres")] == "UP"


def test_static_files_come_from_the_static_host_not_the_web_servers(site: str, running_stack: Topology) -> None:
    html = requests.get(f"{site}/", timeout=10).text
    static_prefix = running_stack.static_url
    assert static_prefix in html
    css_path = html.split(static_prefix, 1)[1].split('"', 1)[0]
    asset = requests.get(f"http://127.0.0.1:{running_stack.static_port}/static/{css_path}", timeout=10)
    assert asset.status_code == 200
    assert "immutable" in asset.headers["Cache-Control"]
    # The web tier does not serve static files at all.
    assert requests.get(f"{site}/static/{css_path}", timeout=10).status_code == 404
