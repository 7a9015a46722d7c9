"""Read-only mode on the web tier: a write refused by the platform's read-only 503 gets a clear page."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest
from django.test import Client

from news_web import platform_client

if TYPE_CHECKING:
    from tests.unit.conftest import WebFakePlatform

READ_ONLY = "The site is read-only for now: the primary database is unavailable. Try again in a few seconds."


@pytest.fixture
def web_alice(web_client: Client, web_login: Callable[..., None]) -> Client:
    """The test client, logged in as alice (uid 1)."""
    web_login(web_client, 1, "alice")
    return web_client


def read_only(fake: WebFakePlatform, method: str, path: str, retry_after: str = "7") -> None:
    """Make ``method path`` answer the platform's read-only 503."""
    headers = {"Retry-After": retry_after, "X-Read-Only": "true"}
    fake.reply(method, path, fake.Reply(503, {"detail": READ_ONLY}, headers=headers))


def test_a_vote_while_read_only_is_a_clear_503_page(web_alice: Client, web_platform: WebFakePlatform) -> None:
    read_only(web_platform, "POST", "/v1/stories/5/votes")
    response = web_alice.post("/s/5/vote", {"next": "/"})
    page = response.content.decode()
    assert response.status_code == 503
    assert response["Retry-After"] == "7"  # the platform's value, passed on
    assert "The site is read-only for now" in page
    assert "Your vote was not saved" in page
    assert "Try again in a few seconds." in page
    assert "Traceback" not in page


@pytest.mark.parametrize(
    ("method", "platform_path", "page_path", "data", "what"),
    [
        ("POST", "/v1/stories", "/submit", {"title": "T", "url": "https://a.example"}, "Your story was not saved"),
        ("PUT", "/v1/users/1/following/2", "/u/bob/follow", {}, "Your follow was not saved"),
        ("DELETE", "/v1/users/1/following/2", "/u/bob/unfollow", {}, "Your unfollow was not saved"),
        ("POST", "/v1/users/1/exports", "/export", {}, "Your export request was not saved"),
    ],
)
def test_every_write_while_read_only_says_what_was_not_saved(
    web_alice: Client,
    web_platform: WebFakePlatform,
    method: str,
    platform_path: str,
    page_path: str,
    data: dict[str, str],
    what: str,
) -> None:
    web_platform.ok("GET", "/v1/users/bob", web_platform.user("bob", id=2))
    read_only(web_platform, method, platform_path)
    response = web_alice.post(page_path, data)
    assert response.status_code == 503
    assert what in response.content.decode()


def test_sign_up_while_read_only_says_the_account_was_not_made(
    web_client: Client, web_platform: WebFakePlatform
) -> None:
    read_only(web_platform, "POST", "/v1/users", retry_after="5")
    form = {"username": "newbie", "password": "password123", "password2": "password123"}
    response = web_client.post("/signup", form)
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert "Your new account was not saved" in response.content.decode()


def test_reads_render_normally_while_read_only(web_client: Client, web_platform: WebFakePlatform) -> None:
    read_only(web_platform, "POST", "/v1/stories/5/votes")
    web_platform.ok("GET", "/v1/stories", web_platform.page([web_platform.story("Still here", id=5)]))
    response = web_client.get("/")
    assert response.status_code == 200
    assert "Still here" in response.content.decode()


def test_a_plain_503_is_still_the_generic_unavailable_page(web_alice: Client, web_platform: WebFakePlatform) -> None:
    web_platform.fail("POST", "/v1/stories/5/votes", 503, "the database is unavailable; try again shortly")
    response = web_alice.post("/s/5/vote")
    assert response.status_code == 503
    assert "Temporarily unavailable" in response.content.decode()
    assert response["Retry-After"] == "5"


def test_the_client_maps_only_a_marked_503_to_read_only(web_platform: WebFakePlatform) -> None:
    read_only(web_platform, "POST", "/v1/stories/5/votes", retry_after="12")
    with pytest.raises(platform_client.ReadOnly) as caught:
        platform_client.get_client().vote(5, 1, idempotency_key="k")
    assert (caught.value.status, caught.value.retry_after, caught.value.message) == (503, 12, READ_ONLY)
    web_platform.fail("POST", "/v1/stories/6/votes", 503, "down")
    with pytest.raises(platform_client.Unavailable) as plain:
        platform_client.get_client().vote(6, 1)
    assert not isinstance(plain.value, platform_client.ReadOnly)
