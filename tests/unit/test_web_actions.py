"""Writes: submit, vote, follow, unfollow; login, method and CSRF guards on each."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest
from django.test import Client

if TYPE_CHECKING:
    from tests.unit.conftest import WebFakePlatform


@pytest.fixture
def web_alice(web_client: Client, web_login: Callable[..., None]) -> Client:
    """The test client, logged in as alice (uid 1)."""
    web_login(web_client, 1, "alice")
    return web_client


# --- Submit ---------------------------------------------------------------------------


def test_submit_requires_login(web_client: Client, web_platform: WebFakePlatform) -> None:
    response = web_client.get("/submit")
    assert response.status_code == 302 and response["Location"] == "/login?next=%2Fsubmit"
    response = web_client.post("/submit", {"title": "t", "url": "https://a.example"})
    assert response.status_code == 302 and response["Location"].startswith("/login")
    assert web_platform.calls == []


def test_submit_creates_the_story_and_redirects_to_it(web_alice: Client, web_platform: WebFakePlatform) -> None:
    web_platform.reply("POST", "/v1/stories", web_platform.Reply(201, web_platform.story("Fresh", id=77)))
    web_platform.ok("GET", "/v1/stories/77", web_platform.story("Fresh", id=77))

    response = web_alice.post("/submit", {"title": "  Fresh  ", "url": "example.com/x", "text": ""}, follow=True)

    assert response.redirect_chain == [("/s/77", 302)]
    assert web_platform.calls_to("POST", "/v1/stories")[0].body == {
        "author_id": 1,
        "title": "Fresh",
        "url": "https://example.com/x",
        "text": "",
    }
    assert "Story submitted." in response.content.decode()


def test_text_only_story_sends_an_empty_url(web_alice: Client, web_platform: WebFakePlatform) -> None:
    web_platform.reply("POST", "/v1/stories", web_platform.Reply(201, web_platform.story(id=78, url=None)))
    response = web_alice.post("/submit", {"title": "Ask", "url": "", "text": "What do you use?"})
    assert response.status_code == 302
    body = web_platform.calls_to("POST", "/v1/stories")[0].body
    assert body["url"] == "" and body["text"] == "What do you use?"


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"title": "", "url": "https://a.example"}, "This field is required."),
        ({"title": "   ", "url": "https://a.example"}, "This field is required."),
        ({"title": "x" * 201, "url": "https://a.example"}, "at most 200 characters"),
        ({"title": "No body", "url": "", "text": ""}, "Give a URL, a text, or both."),
        ({"title": "FTP", "url": "ftp://files.example/x"}, "Enter a valid URL."),
        ({"title": "JS", "url": "javascript:alert(1)"}, "Enter a valid URL."),
        ({"title": "Long", "url": "https://a.example/" + "x" * 490}, "at most 500 characters"),
        ({"title": "Wordy", "text": "x" * 5001}, "at most 5000 characters"),
    ],
)
def test_bad_submissions_are_400_and_change_nothing(
    web_alice: Client, web_platform: WebFakePlatform, data: dict[str, str], error: str
) -> None:
    response = web_alice.post("/submit", data)
    assert response.status_code == 400
    assert error in response.content.decode()
    assert web_platform.calls == []


def test_platform_validation_errors_show_on_the_form(web_alice: Client, web_platform: WebFakePlatform) -> None:
    web_platform.fail("POST", "/v1/stories", 422, [{"loc": ["body", "payload", "url"], "msg": "URL host is not allowed"}])
    response = web_alice.post("/submit", {"title": "t", "url": "https://blocked.example"})
    assert response.status_code == 400
    page = response.content.decode()
    assert "URL host is not allowed" in page
    # It sits on the url field, not only at the top of the form.
    assert 'class="field has-error">\n    <label for="id_url">' in page


def test_platform_400_message_is_shown(web_alice: Client, web_platform: WebFakePlatform) -> None:
    web_platform.fail("POST", "/v1/stories", 400, "You are submitting too fast.")
    response = web_alice.post("/submit", {"title": "t", "url": "https://a.example"})
    assert response.status_code == 400
    assert "You are submitting too fast." in response.content.decode()


def test_submit_when_the_platform_is_down_is_503(web_alice: Client, web_platform: WebFakePlatform) -> None:
    web_platform.fail("POST", "/v1/stories", 503, "no server available")
    response = web_alice.post("/submit", {"title": "t", "url": "https://a.example"})
    assert response.status_code == 503
    assert len(web_platform.calls) == 1  # a write is never re-sent


# --- Vote -------------------------------------------------------------------------------


def test_vote_is_post_only(web_alice: Client, web_platform: WebFakePlatform) -> None:
    assert web_alice.get("/s/5/vote").status_code == 405
    assert web_platform.calls == []


def test_anonymous_vote_goes_to_login_and_back_to_the_page(web_client: Client, web_platform: WebFakePlatform) -> None:
    response = web_client.post("/s/5/vote", {"next": "/newest?page=2"})
    assert response.status_code == 302
    assert response["Location"] == "/login?next=%2Fnewest%3Fpage%3D2"
    assert web_platform.calls == []


@pytest.mark.parametrize(("counted", "message"), [(True, "Vote counted."), (False, "You already voted for this story.")])
def test_vote_counts_once_and_says_so(
    web_alice: Client, web_platform: WebFakePlatform, counted: bool, message: str
) -> None:
    web_platform.ok("POST", "/v1/stories/5/votes", {"counted": counted, "story": web_platform.story(id=5)})
    web_platform.ok("GET", "/v1/stories", web_platform.page([]))
    response = web_alice.post("/s/5/vote", {"next": "/newest"}, follow=True)
    assert response.redirect_chain == [("/newest", 302)]
    assert web_platform.calls_to("POST", "/v1/stories/5/votes")[0].body == {"user_id": 1}
    assert message in response.content.decode()


@pytest.mark.parametrize("next_url", ["", "https://evil.example/", "//evil.example"])
def test_vote_redirects_to_the_story_unless_next_is_local(
    web_alice: Client, web_platform: WebFakePlatform, next_url: str
) -> None:
    web_platform.ok("POST", "/v1/stories/5/votes", {"counted": True, "story": web_platform.story(id=5)})
    response = web_alice.post("/s/5/vote", {"next": next_url})
    assert response["Location"] == "/s/5"


def test_vote_on_a_missing_story_is_404(web_alice: Client, web_platform: WebFakePlatform) -> None:
    web_platform.fail("POST", "/v1/stories/404/votes", 404, "No such story.")
    assert web_alice.post("/s/404/vote").status_code == 404


# --- Follow / unfollow --------------------------------------------------------------------


def _users(fake: WebFakePlatform) -> None:
    fake.ok("GET", "/v1/users/bob", fake.user("bob", id=2))
    fake.ok("GET", "/v1/users/alice", fake.user("alice", id=1))


@pytest.mark.parametrize(
    ("action", "method", "changed", "message"),
    [
        ("follow", "PUT", True, "You now follow bob."),
        ("follow", "PUT", False, "You already follow bob."),
        ("unfollow", "DELETE", True, "You no longer follow bob."),
        ("unfollow", "DELETE", False, "You were not following bob."),
    ],
)
def test_follow_and_unfollow(
    web_alice: Client, web_platform: WebFakePlatform, action: str, method: str, changed: bool, message: str
) -> None:
    _users(web_platform)
    result = {"changed": changed, "user": web_platform.user("alice", id=1), "other": web_platform.user("bob", id=2)}
    web_platform.ok(method, "/v1/users/1/following/2", result)
    response = web_alice.post(f"/u/bob/{action}", {"next": "/u/bob"})
    assert response.status_code == 302 and response["Location"] == "/u/bob"
    assert len(web_platform.calls_to(method, "/v1/users/1/following/2")) == 1
    # The message waits in its cookie until the next rendered page shows it.
    assert message in web_alice.get("/login").content.decode()


def test_following_yourself_is_a_clear_400(web_alice: Client, web_platform: WebFakePlatform) -> None:
    _users(web_platform)
    response = web_alice.post("/u/alice/follow")
    assert response.status_code == 400
    assert "You can&#x27;t follow yourself." in response.content.decode()
    assert not [c for c in web_platform.calls if c.method in ("PUT", "DELETE")]


@pytest.mark.parametrize(("status", "detail"), [(400, "You follow too many people."), (409, "Try again.")])
def test_platform_refusals_of_a_follow_are_shown(
    web_alice: Client, web_platform: WebFakePlatform, status: int, detail: str
) -> None:
    _users(web_platform)
    web_platform.fail("PUT", "/v1/users/1/following/2", status, detail)
    response = web_alice.post("/u/bob/follow")
    assert response.status_code == status
    assert detail in response.content.decode()


def test_platform_refusal_of_a_vote_is_a_400(web_alice: Client, web_platform: WebFakePlatform) -> None:
    web_platform.fail("POST", "/v1/stories/5/votes", 400, "You cannot vote for your own story.")
    response = web_alice.post("/s/5/vote")
    assert response.status_code == 400
    assert "You cannot vote for your own story." in response.content.decode()


def test_follow_is_post_only_and_needs_login(web_client: Client, web_platform: WebFakePlatform) -> None:
    assert web_client.get("/u/bob/follow").status_code == 405
    response = web_client.post("/u/bob/unfollow", {"next": "/u/bob"})
    assert response.status_code == 302 and response["Location"] == "/login?next=%2Fu%2Fbob"
    assert web_platform.calls == []


def test_following_an_unknown_user_is_404(web_alice: Client, web_platform: WebFakePlatform) -> None:
    web_platform.fail("GET", "/v1/users/ghost", 404, "No such user.")
    assert web_alice.post("/u/ghost/follow").status_code == 404
    assert not [c for c in web_platform.calls if c.method == "PUT"]


# --- CSRF -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "data"),
    [
        ("/s/5/vote", {}),
        ("/submit", {"title": "t", "url": "https://a.example"}),
        ("/u/bob/follow", {}),
        ("/login", {"username": "alice", "password": "s3cret-pass"}),
        ("/logout", {}),
    ],
)
def test_posts_without_a_csrf_token_are_refused(
    web_platform: WebFakePlatform, web_static_root: object, web_login: Callable[..., None], path: str, data: dict[str, str]
) -> None:
    browser = Client(enforce_csrf_checks=True)
    web_login(browser, 1, "alice")
    response = browser.post(path, data)
    assert response.status_code == 403
    assert "Form expired" in response.content.decode()
    assert web_platform.calls == []


def test_posts_with_the_pages_csrf_token_are_accepted(
    web_platform: WebFakePlatform, web_static_root: object, web_login: Callable[..., None]
) -> None:
    browser = Client(enforce_csrf_checks=True)
    web_login(browser, 1, "alice")
    web_platform.ok("GET", "/v1/stories/5", web_platform.story(id=5))
    web_platform.ok("POST", "/v1/stories/5/votes", {"counted": True, "story": web_platform.story(id=5)})
    page = browser.get("/s/5")
    token = page.context["csrf_token"]
    response = browser.post("/s/5/vote", {"csrfmiddlewaretoken": str(token)})
    assert response.status_code == 302
    assert len(web_platform.calls_to("POST", "/v1/stories/5/votes")) == 1
