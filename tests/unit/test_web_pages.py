"""Read-only pages: story lists, story, profile, follower lists, home, health, error pages."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest
from django.test import Client

if TYPE_CHECKING:
    from tests.unit.conftest import WebFakePlatform


def html(response: Any) -> str:
    """The response body as text."""
    return response.content.decode()


def test_front_page_lists_top_stories_with_rank_vote_domain_and_author(
    web_client: Client, web_platform: WebFakePlatform
) -> None:
    stories = [
        web_platform.story("First", id=11, votes=5, author_username="carol"),
        web_platform.story("Ask: text only", id=12, url=None, domain=None, text="hi", votes=1),
    ]
    web_platform.ok("GET", "/v1/stories", web_platform.page(stories))

    response = web_client.get("/")

    assert response.status_code == 200
    assert web_platform.calls[0].query == {"sort": "top", "page": "1"}
    page = html(response)
    assert re.search(r'class="rank">1\.</span>.*?First', page, re.S)
    assert re.search(r'class="rank">2\.</span>.*?Ask: text only', page, re.S)
    assert 'action="/s/11/vote"' in page and 'action="/s/12/vote"' in page
    assert page.count('name="csrfmiddlewaretoken"') == 2  # one per vote form (logged out: no logout form)
    # Titles go through the click redirect (which counts the click off-line);
    # the domain beside the title still says where a link leads.
    assert '<a class="title" href="/r/11" rel="nofollow">First</a>' in page
    assert '<span class="domain">(example.com)</span>' in page
    # A text-only story goes through the redirect too (to its own page), and shows no domain.
    assert '<a class="title" href="/r/12" rel="nofollow">Ask: text only</a>' in page
    assert "https://www.example.com/a" not in page
    assert "5 points by" in page and "1 point by" in page
    assert '<a href="/u/carol">carol</a>' in page
    assert page.count(">discuss</a>") == 2


def test_pagination_numbers_continue_and_more_link_only_when_there_is_more(
    web_client: Client, web_platform: WebFakePlatform
) -> None:
    web_platform.ok("GET", "/v1/stories", web_platform.page([web_platform.story("On page two")], page=2, has_next=True))
    page = html(web_client.get("/?page=2"))
    assert web_platform.calls[0].query["page"] == "2"
    assert 'class="rank">31.</span>' in page
    assert 'href="/?page=3" rel="next">more</a>' in page
    assert 'href="/?page=1" rel="prev"' in page

    web_platform.ok("GET", "/v1/stories", web_platform.page([web_platform.story()], page=1, has_next=False))
    assert ">more</a>" not in html(web_client.get("/"))


@pytest.mark.parametrize("page", ["0", "abc", "-1", "1001"])
def test_bad_page_numbers_are_404_without_a_platform_call(
    web_client: Client, web_platform: WebFakePlatform, page: str
) -> None:
    response = web_client.get(f"/?page={page}")
    assert response.status_code == 404
    assert web_platform.calls == []
    assert "There is nothing here." in html(response)


def test_newest_asks_for_sort_new(web_client: Client, web_platform: WebFakePlatform) -> None:
    web_platform.ok("GET", "/v1/stories", web_platform.page([]))
    response = web_client.get("/newest")
    assert response.status_code == 200
    assert web_platform.calls[0].query["sort"] == "new"
    assert "No stories yet." in html(response)


def test_titles_and_text_are_escaped(web_client: Client, web_platform: WebFakePlatform) -> None:
    evil = "<script>alert(1)</script>"
    web_platform.ok(
        "GET",
        "/v1/stories/9",
        web_platform.story(evil, id=9, text=f'{evil}\n<img src=x onerror="alert(2)">', author_username="mallory"),
    )
    page = html(web_client.get("/s/9"))
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<img src=x" not in page
    assert "&lt;img src=x onerror=&quot;alert(2)&quot;&gt;" in page


def test_story_page_shows_story_text_and_vote_button(web_client: Client, web_platform: WebFakePlatform) -> None:
    web_platform.ok("GET", "/v1/stories/4", web_platform.story("Hello", id=4, text="line one\nline two"))
    response = web_client.get("/s/4")
    page = html(response)
    assert response.status_code == 200
    assert 'action="/s/4/vote"' in page
    assert "<p>line one<br>line two</p>" in page
    assert "story-clicks" in page and "3 clicks" in page, "the count from GET /v1/stories/4/clicks"


def test_story_page_leaves_out_the_click_count_when_the_platform_cannot_say(
    web_client: Client, web_platform: WebFakePlatform
) -> None:
    web_platform.ok("GET", "/v1/stories/4", web_platform.story("Hello", id=4))
    web_platform.fail("GET", "/v1/stories/4/clicks", 503, "down")
    response = web_client.get("/s/4")
    assert response.status_code == 200
    assert "story-clicks" not in html(response)


def test_platform_404_is_a_404_page(web_client: Client, web_platform: WebFakePlatform) -> None:
    web_platform.fail("GET", "/v1/stories/404", 404, "No such story.")
    response = web_client.get("/s/404")
    assert response.status_code == 404
    assert "There is nothing here." in html(response)


def test_unknown_url_is_the_site_404_page(web_client: Client) -> None:
    response = web_client.get("/no/such/page")
    assert response.status_code == 404
    assert "scalestack news" in html(response)


def test_platform_unavailable_is_a_friendly_503(web_client: Client, web_platform: WebFakePlatform) -> None:
    web_platform.reply("GET", "/v1/stories", web_platform.Reply(503, raw="<html>503 Service Unavailable</html>", served_by=""))
    response = web_client.get("/")
    page = html(response)
    assert response.status_code == 503
    assert "Temporarily unavailable" in page
    assert "Traceback" not in page
    assert response["Retry-After"] == "5"
    assert response["X-Served-By"] == "web-test"


def test_rejected_service_token_is_a_503_not_a_login_prompt(web_client: Client, web_platform: WebFakePlatform) -> None:
    web_platform.fail("GET", "/v1/stories", 401, "bad token")
    response = web_client.get("/")
    assert response.status_code == 503


def test_every_response_says_how_it_was_served(web_client: Client, web_platform: WebFakePlatform) -> None:
    web_platform.ok("GET", "/v1/users/alice", web_platform.user("alice", id=1), served_by="platform-2", cache="hits=1 misses=0")
    web_platform.ok("GET", "/v1/users/alice/stories", web_platform.page([]), served_by="platform-1", cache="hits=0 misses=1")
    web_platform.ok("GET", "/v1/users/alice/followers", web_platform.page([]), served_by="platform-2", cache="hits=1 misses=0")
    web_platform.ok("GET", "/v1/users/alice/following", web_platform.page([]), served_by="platform-2", cache="hits=1 misses=0")

    response = web_client.get("/u/alice")

    assert response["X-Served-By"] == "web-test"
    assert response["X-Platform-Served-By"] == "platform-2, platform-1"
    assert response["X-Cache"] == "hits=3 misses=1"
    page = html(response)
    assert re.search(
        r"rendered by web-test\s*· platform: platform-2, platform-1\s*"
        r"· data cache: hits=3 misses=1\s*· \d+ ms",
        page,
    )


def test_pages_without_platform_calls_report_zero(web_client: Client, web_platform: WebFakePlatform) -> None:
    response = web_client.get("/login")
    assert response.status_code == 200
    assert response["X-Served-By"] == "web-test"
    assert response["X-Platform-Served-By"] == ""
    assert response["X-Cache"] == "hits=0 misses=0"
    assert "platform: none" in html(response)


def test_healthz_answers_without_the_platform(
    web_client: Client, web_platform: WebFakePlatform, monkeypatch: pytest.MonkeyPatch
) -> None:
    from news_web import health

    # The platform report is refreshed in the background; here the refresh never runs.
    watch = health.PlatformWatch(health.fetch_platform_health, 5.0, spawn=lambda work: None)
    monkeypatch.setattr(health, "watch", watch)
    response = web_client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "server": "web-test",
        "platform": {"reachable": None, "status": "unknown", "age_seconds": None},
    }
    assert web_platform.calls == []


def test_pages_link_the_hashed_stylesheet_on_the_static_host(web_client: Client, web_platform: WebFakePlatform) -> None:
    page = html(web_client.get("/login"))
    assert re.search(r'href="http://localhost:8081/static/news_web/site\.[0-9a-f]{12}\.css"', page)


def _profile_routes(fake: WebFakePlatform, user: dict[str, Any]) -> None:
    name = user["username"]
    fake.ok("GET", f"/v1/users/{name}", user)
    fake.ok("GET", f"/v1/users/{name}/stories", fake.page([fake.story("Mine", author_username=name)]))
    fake.ok("GET", f"/v1/users/{name}/followers", fake.page([{"id": 50, "username": "fan"}], has_next=True))
    fake.ok("GET", f"/v1/users/{name}/following", fake.page([{"id": 51, "username": "idol"}]))


def test_profile_shows_counts_stories_and_people(web_client: Client, web_platform: WebFakePlatform) -> None:
    _profile_routes(
        web_platform,
        web_platform.user("bob", id=2, followers_count=31, following_count=1, stories_count=1, karma=42),
    )
    page = html(web_client.get("/u/bob"))
    for label, figure in [("karma", 42), ("stories", 1), ("followers", 31), ("following", 1)]:
        assert re.search(rf"{label}(</a>)?</dt><dd>{figure}</dd>", page), label
    assert "2 Jan 2024" in page
    assert ">Mine</a>" in page
    assert '<a href="/u/fan">fan</a>' in page and '<a href="/u/idol">idol</a>' in page
    assert 'href="/u/bob/followers?page=2">more</a>' in page
    # Logged out: no follow button, and no "is following" call.
    assert "Follow</button>" not in page
    assert not [c for c in web_platform.calls if "/following/" in c.path]


def test_profile_offers_follow_or_unfollow_to_others(
    web_client: Client, web_platform: WebFakePlatform, web_login: Callable[..., None]
) -> None:
    _profile_routes(web_platform, web_platform.user("bob", id=2))
    web_login(web_client, 1, "alice")

    web_platform.ok("GET", "/v1/users/1/following/2", {"following": False})
    page = html(web_client.get("/u/bob"))
    assert 'action="/u/bob/follow"' in page and ">Follow</button>" in page

    web_platform.ok("GET", "/v1/users/1/following/2", {"following": True})
    page = html(web_client.get("/u/bob"))
    assert 'action="/u/bob/unfollow"' in page and ">Unfollow</button>" in page


def test_own_profile_has_no_follow_button(
    web_client: Client, web_platform: WebFakePlatform, web_login: Callable[..., None]
) -> None:
    _profile_routes(web_platform, web_platform.user("alice", id=1))
    web_login(web_client, 1, "alice")
    page = html(web_client.get("/u/alice"))
    assert "Follow</button>" not in page and "This is you." in page
    assert not [c for c in web_platform.calls if "/following/" in c.path]


def test_unknown_user_is_404(web_client: Client, web_platform: WebFakePlatform) -> None:
    web_platform.fail("GET", "/v1/users/ghost", 404, "No such user.")
    assert web_client.get("/u/ghost").status_code == 404
    # Names the platform could never hold are refused by the URL pattern itself.
    assert web_client.get("/u/a.b").status_code == 404
    assert len(web_platform.calls) == 1


@pytest.mark.parametrize(("which", "heading"), [("followers", "People following bob"), ("following", "People bob follows")])
def test_follower_lists_paginate(web_client: Client, web_platform: WebFakePlatform, which: str, heading: str) -> None:
    web_platform.ok("GET", "/v1/users/bob", web_platform.user("bob", id=2))
    web_platform.ok("GET", f"/v1/users/bob/{which}", web_platform.page([{"id": 9, "username": "zed"}], page=2, has_next=True))
    page = html(web_client.get(f"/u/bob/{which}?page=2"))
    assert heading in page
    assert web_platform.calls_to("GET", f"/v1/users/bob/{which}")[0].query == {"page": "2"}
    assert '<a href="/u/zed">zed</a>' in page
    assert f'href="/u/bob/{which}?page=3" rel="next">more</a>' in page


def test_home_requires_login(web_client: Client, web_platform: WebFakePlatform) -> None:
    response = web_client.get("/home?page=2")
    assert response.status_code == 302
    assert response["Location"] == "/login?next=%2Fhome%3Fpage%3D2"
    assert web_platform.calls == []


def test_home_shows_the_followed_timeline(
    web_client: Client, web_platform: WebFakePlatform, web_login: Callable[..., None]
) -> None:
    web_login(web_client, 7, "alice")
    web_platform.ok("GET", "/v1/users/7/home", web_platform.page([web_platform.story("From a friend")]))
    page = html(web_client.get("/home"))
    assert ">From a friend</a>" in page
    assert web_platform.calls_to("GET", "/v1/users/7/home")[0].query == {"page": "1"}

    web_platform.ok("GET", "/v1/users/7/home", web_platform.page([]))
    assert "follow some people" in html(web_client.get("/home"))


def test_read_pages_refuse_post(web_client: Client, web_platform: WebFakePlatform) -> None:
    assert web_client.post("/").status_code == 405
    assert web_client.post("/healthz").status_code == 405
    assert web_platform.calls == []
