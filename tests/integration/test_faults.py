"""The post's "redundancy": losing a server lowers capacity, and nothing else."""
from __future__ import annotations

import requests

from scalestack import stack
from scalestack.topology import Topology
from tests.integration.helpers import Member, post_form


def test_site_works_with_every_memcached_node_stopped(site: str, running_stack: Topology, member: Member) -> None:
    for node in running_stack.memcached:
        stack.stop(running_stack, node.name)
    try:
        for path in ("/", "/newest", "/s/12", f"/u/{member.username}", "/home"):
            response = member.session.get(f"{site}{path}", timeout=15)
            assert response.status_code == 200, path
            assert response.headers["X-Cache"].startswith("hits=0 ")
        # Writes too: they commit to PostgreSQL; the write-through simply has nowhere to go.
        response = post_form(member.session, f"{site}/submit",
                             {"title": "written while memcached was down", "url": "https://example.org/m", "text": ""})
        assert response.status_code == 200
        assert "written while memcached was down" in response.text
    finally:
        for node in running_stack.memcached:
            stack.start(running_stack, node.name)


def test_logged_in_user_carries_on_through_web_2_when_web_1_stops(
    site: str, running_stack: Topology, member: Member
) -> None:
    # Make sure the session was used on web-1 before it goes.
    served = {member.session.get(f"{site}/home", timeout=10).headers["X-Served-By"] for _ in range(4)}
    assert "web-1" in served
    stack.stop(running_stack, "web-1")
    try:
        for _ in range(12):
            response = member.session.get(f"{site}/home", timeout=10)
            assert response.status_code == 200
            assert response.headers["X-Served-By"] == "web-2"
            assert member.username in response.text, "still logged in"
    finally:
        stack.start(running_stack, "web-1")


def test_pages_keep_working_with_one_platform_server_stopped(site: str, running_stack: Topology) -> None:
    stack.stop(running_stack, "platform-1")
    try:
        for _ in range(12):
            response = requests.get(f"{site}/", timeout=10)
            assert response.status_code == 200
            assert response.headers["X-Platform-Served-By"] == "platform-2"
    finally:
        stack.start(running_stack, "platform-1")
