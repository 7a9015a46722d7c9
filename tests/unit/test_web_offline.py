"""Off-line processing as the site shows it: click redirect, export job, analytics, trending, suggestions."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import date
from typing import TYPE_CHECKING, Any

import pytest
from django.test import Client

from news_web import analytics, charts
from news_web.clicks import referrer_domain
from news_web.platform_models import DomainCount, HourCount

if TYPE_CHECKING:
    from tests.unit.conftest import WebFakePlatform

JOB = "0b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d"


def html(response: Any) -> str:
    """The response body as text."""
    return response.content.decode()


@pytest.fixture
def web_alice(web_client: Client, web_login: Callable[..., None]) -> Client:
    """The test client, logged in as alice (uid 1)."""
    web_login(web_client, 1, "alice")
    return web_client


# --- /r/<id>: the click redirect -----------------------------------------------------------


def _click_routes(fake: WebFakePlatform, **story: Any) -> dict[str, Any]:
    data = fake.story("Linked", id=11, url="https://www.example.com/a", **story)
    fake.ok("GET", "/v1/stories/11", data)
    fake.reply("POST", "/v1/clicks", fake.Reply(202, {"accepted": True, "queued": "broker"}))
    return data


def test_a_click_is_recorded_then_redirected_to_the_link(web_client: Client, web_platform: WebFakePlatform) -> None:
    _click_routes(web_platform)

    response = web_client.get("/r/11", HTTP_REFERER="https://News.Example.COM:8443/some/page?q=1")

    assert response.status_code == 302
    assert response["Location"] == "https://www.example.com/a"
    [click] = web_platform.calls_to("POST", "/v1/clicks")
    assert click.body == {"story_id": 11, "user_id": None, "referrer_domain": "news.example.com"}
    # Every click must reach the server: no cached redirect.
    assert "no-store" in response["Cache-Control"]


def test_a_logged_in_click_carries_the_user_and_no_referrer_is_direct(
    web_alice: Client, web_platform: WebFakePlatform
) -> None:
    _click_routes(web_platform)
    web_alice.get("/r/11")
    assert web_platform.calls_to("POST", "/v1/clicks")[0].body == {"story_id": 11, "user_id": 1, "referrer_domain": ""}


def test_our_own_host_is_recorded_as_it_is(web_client: Client, web_platform: WebFakePlatform) -> None:
    _click_routes(web_platform)
    web_client.get("/r/11", HTTP_REFERER="http://127.0.0.1:8080/newest")
    assert web_platform.calls_to("POST", "/v1/clicks")[0].body["referrer_domain"] == "127.0.0.1"


def test_a_text_only_story_redirects_to_its_own_page(web_client: Client, web_platform: WebFakePlatform) -> None:
    web_platform.ok("GET", "/v1/stories/12", web_platform.story("Ask", id=12, url="", domain=None, text="hi"))
    web_platform.reply("POST", "/v1/clicks", web_platform.Reply(202, {"accepted": True, "queued": "outbox"}))
    response = web_client.get("/r/12")
    assert (response.status_code, response["Location"]) == (302, "/s/12")
    assert len(web_platform.calls_to("POST", "/v1/clicks")) == 1


@pytest.mark.parametrize(
    "reply",
    [
        {"status": 503, "raw": "<html>503</html>"},
        {"status": 500, "body": {"detail": "internal error"}},
        {"status": 422, "body": {"detail": [{"loc": ["body", "referrer_domain"], "msg": "bad"}]}},
    ],
)
def test_the_redirect_happens_even_when_the_click_cannot_be_recorded(
    web_client: Client, web_platform: WebFakePlatform, reply: dict[str, Any]
) -> None:
    _click_routes(web_platform)
    web_platform.reply("POST", "/v1/clicks", web_platform.Reply(**reply))
    response = web_client.get("/r/11")
    assert (response.status_code, response["Location"]) == (302, "https://www.example.com/a")


def test_a_click_on_an_unknown_story_is_a_404_and_records_nothing(
    web_client: Client, web_platform: WebFakePlatform
) -> None:
    web_platform.fail("GET", "/v1/stories/99", 404, "story 99 not found")
    response = web_client.get("/r/99")
    assert response.status_code == 404
    assert web_platform.calls_to("POST", "/v1/clicks") == []


def test_head_redirects_without_counting_and_post_is_refused(web_client: Client, web_platform: WebFakePlatform) -> None:
    _click_routes(web_platform)
    response = web_client.head("/r/11")
    assert (response.status_code, response["Location"]) == (302, "https://www.example.com/a")
    assert web_client.post("/r/11").status_code == 405
    assert web_platform.calls_to("POST", "/v1/clicks") == []


@pytest.mark.parametrize(
    ("referer", "expected"),
    [
        (None, ""),
        ("", ""),
        ("https://www.Example.org/x", "www.example.org"),
        ("http://example.org.:80/", "example.org"),
        ("http://[::1]:8080/", "::1"),
        ("android-app://com.google.android.gm/", "com.google.android.gm"),
        ("not a url", ""),
        ("http://<script>/", ""),
        ('http://a"onmouseover=x/', ""),
        ("http://[::1/", ""),
        ("http://" + "a" * 300 + ".example/", ""),
    ],
)
def test_referrer_domain_is_the_referer_host_or_nothing(referer: str | None, expected: str) -> None:
    assert referrer_domain(referer) == expected


def test_story_titles_go_through_the_redirect_but_discuss_does_not(
    web_client: Client, web_platform: WebFakePlatform
) -> None:
    web_platform.ok("GET", "/v1/stories", web_platform.page([web_platform.story("T", id=5)]))
    page = html(web_client.get("/"))
    assert '<a class="title" href="/r/5" rel="nofollow">T</a>' in page
    assert '<a href="/s/5">discuss</a>' in page


# --- Export my data ------------------------------------------------------------------------


def _job(state: str = "pending", progress: int = 0, **extra: Any) -> dict[str, Any]:
    finished = "2024-05-06T07:09:00Z" if state in ("done", "failed") else None
    return {"id": JOB, "state": state, "progress": progress, "created_at": "2024-05-06T07:08:09Z",
            "finished_at": finished, **extra}


def test_export_pages_require_login(web_client: Client, web_platform: WebFakePlatform) -> None:
    assert web_client.get("/export")["Location"] == "/login?next=%2Fexport"
    assert web_client.post("/export")["Location"].startswith("/login")
    assert web_client.get(f"/exports/{JOB}")["Location"] == f"/login?next=%2Fexports%2F{JOB}"
    assert web_client.get(f"/exports/{JOB}/download")["Location"].startswith("/login")
    assert web_platform.calls == []


def test_export_page_has_a_csrf_protected_button(web_alice: Client, web_platform: WebFakePlatform) -> None:
    page = html(web_alice.get("/export"))
    assert re.search(r'<form method="post" action="/export">\s*<input type="hidden" name="csrfmiddlewaretoken"', page)
    assert ">Export my data</button>" in page
    assert web_platform.calls == []


def test_exporting_schedules_the_job_and_goes_to_its_page(web_alice: Client, web_platform: WebFakePlatform) -> None:
    web_platform.reply("POST", "/v1/users/1/exports", web_platform.Reply(202, _job()))
    response = web_alice.post("/export")
    assert (response.status_code, response["Location"]) == (302, f"/exports/{JOB}")
    assert len(web_platform.calls_to("POST", "/v1/users/1/exports")) == 1


def test_exporting_without_the_csrf_token_is_refused(
    web_platform: WebFakePlatform, web_static_root: Any, web_login: Callable[..., None]
) -> None:
    client = Client(enforce_csrf_checks=True)
    web_login(client, 1, "alice")
    response = client.post("/export")
    assert response.status_code == 403
    assert web_platform.calls == []


@pytest.mark.parametrize(("state", "progress", "text"), [("pending", 0, "Waiting for a worker"), ("running", 40, "Collecting")])
def test_an_unfinished_job_page_refreshes_itself_and_shows_progress(
    web_alice: Client, web_platform: WebFakePlatform, state: str, progress: int, text: str
) -> None:
    web_platform.ok("GET", f"/v1/users/1/exports/{JOB}", _job(state, progress))
    response = web_alice.get(f"/exports/{JOB}")
    page = html(response)
    assert response.status_code == 200
    assert re.search(r'<head>.*<meta http-equiv="refresh" content="2">.*</head>', page, re.S)
    assert f'<progress class="progress" max="100" value="{progress}"' in page
    assert text in page
    assert "/download" not in page
    assert "no-store" in response["Cache-Control"]


def test_a_finished_job_stops_refreshing_and_links_the_download(
    web_alice: Client, web_platform: WebFakePlatform
) -> None:
    web_platform.ok("GET", f"/v1/users/1/exports/{JOB}", _job("done", 100))
    page = html(web_alice.get(f"/exports/{JOB}"))
    assert 'http-equiv="refresh"' not in page
    assert f'href="/exports/{JOB}/download"' in page
    assert 'value="100"' in page


def test_a_failed_job_stops_refreshing_and_offers_to_try_again(web_alice: Client, web_platform: WebFakePlatform) -> None:
    web_platform.ok("GET", f"/v1/users/1/exports/{JOB}", _job("failed", 30))
    page = html(web_alice.get(f"/exports/{JOB}"))
    assert 'http-equiv="refresh"' not in page and "/download" not in page
    assert "The export failed." in page and ">Try again</button>" in page


def test_another_users_job_is_a_404(web_alice: Client, web_platform: WebFakePlatform) -> None:
    web_platform.fail("GET", f"/v1/users/1/exports/{JOB}", 404, "export not found")
    web_platform.fail("GET", f"/v1/users/1/exports/{JOB}/download", 404, "export not found")
    assert web_alice.get(f"/exports/{JOB}").status_code == 404
    assert web_alice.get(f"/exports/{JOB}/download").status_code == 404


@pytest.mark.parametrize("path", ["/exports/not-a-uuid", "/exports/123", f"/exports/{JOB}x/download"])
def test_malformed_job_ids_are_404_without_a_platform_call(
    web_alice: Client, web_platform: WebFakePlatform, path: str
) -> None:
    assert web_alice.get(path).status_code == 404
    assert web_platform.calls == []


def test_the_download_is_the_platforms_json_as_an_attachment(web_alice: Client, web_platform: WebFakePlatform) -> None:
    document = {"user": {"username": "alice"}, "stories": [{"title": "<b>mine</b>"}], "votes": [], "follows": []}
    web_platform.ok("GET", f"/v1/users/1/exports/{JOB}/download", document)

    response = web_alice.get(f"/exports/{JOB}/download")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="scalestack-export-alice.json"'
    assert "no-store" in response["Cache-Control"]
    assert response.json() == document


def test_downloading_an_unfinished_export_is_a_409(web_alice: Client, web_platform: WebFakePlatform) -> None:
    web_platform.fail("GET", f"/v1/users/1/exports/{JOB}/download", 409, "export is running, not ready to download")
    response = web_alice.get(f"/exports/{JOB}/download")
    assert response.status_code == 409
    assert "not ready to download" in html(response)


# --- /analytics ----------------------------------------------------------------------------

TODAY = date(2024, 5, 6)
EVIL = '"><script>alert(1)</script>'


def _visits(day: str, domains: list[tuple[str, int]], hours: dict[int, int] | None = None) -> dict[str, Any]:
    return {
        "day": day,
        "total": sum(v for _, v in domains),
        "domains": [{"domain": d, "visits": v} for d, v in domains],
        "hours": [{"hour": h, "visits": (hours or {}).get(h, 0)} for h in range(24)],
    }


@pytest.fixture
def fixed_today(monkeypatch: pytest.MonkeyPatch) -> date:
    """Make "today" a known UTC day for the analytics page."""
    monkeypatch.setattr(analytics, "utc_today", lambda: TODAY)
    return TODAY


def _by_day(fake: WebFakePlatform, days: dict[str, dict[str, Any]]) -> Callable[[Any], Any]:
    """A handler answering each ``?day=`` with its own rollup."""
    return lambda call: fake.Reply(200, days[call.query["day"]])


def test_analytics_shows_today_and_yesterday_as_svg_charts_and_tables(
    web_client: Client, web_platform: WebFakePlatform, fixed_today: date
) -> None:
    web_platform.reply(
        "GET",
        "/v1/analytics/domains",
        _by_day(
            web_platform,
            {
                "2024-05-06": _visits("2024-05-06", [("news.example.org", 30), ("", 10)], {7: 25, 8: 15}),
                "2024-05-05": _visits("2024-05-05", [("blog.example", 4)]),
            }
        ),
    )

    response = web_client.get("/analytics")
    page = html(response)

    assert response.status_code == 200
    assert [c.query["day"] for c in web_platform.calls_to("GET", "/v1/analytics/domains")] == ["2024-05-06", "2024-05-05"]
    assert "Today, 2024-05-06" in page and "Yesterday, 2024-05-05" in page
    assert page.count('<svg class="chart domains"') == 2
    assert page.count('<svg class="chart hours"') == 1
    assert "40 visits" in page and "4 visits" in page
    # Direct visits are labelled, in the chart and in the table.
    assert '<td class="domain-name direct">(direct)</td>' in page
    assert ">(direct)</text>" in page
    assert re.search(r"news\.example\.org</td><td class=\"num\">30</td><td class=\"num\">75\.0%</td>", page)
    assert "<title>07:00–08:00 UTC: 25 visits</title>" in page


def test_domain_names_are_escaped_in_charts_and_tables(
    web_client: Client, web_platform: WebFakePlatform, fixed_today: date
) -> None:
    web_platform.reply(
        "GET",
        "/v1/analytics/domains",
        _by_day(web_platform, {d: _visits(d, [(EVIL, 3), ("a&b", 1)]) for d in ("2024-05-06", "2024-05-05")}),
    )
    page = html(web_client.get("/analytics"))
    assert "<script>" not in page
    assert "&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "a&amp;b" in page and "a&b<" not in page


def test_a_day_without_visits_says_so(web_client: Client, web_platform: WebFakePlatform, fixed_today: date) -> None:
    web_platform.reply("GET", "/v1/analytics/domains", lambda call: web_platform.Reply(200, _visits(call.query["day"], [])))
    page = html(web_client.get("/analytics"))
    assert "<svg" not in page
    assert page.count("No visits recorded.") == 2


def test_an_earlier_day_can_be_shown(web_client: Client, web_platform: WebFakePlatform, fixed_today: date) -> None:
    web_platform.reply("GET", "/v1/analytics/domains", lambda call: web_platform.Reply(200, _visits(call.query["day"], [])))
    page = html(web_client.get("/analytics?day=2024-04-30"))
    assert [c.query["day"] for c in web_platform.calls] == ["2024-04-30", "2024-04-29"]
    assert 'href="/analytics?day=2024-04-29" rel="prev"' in page
    assert 'href="/analytics?day=2024-05-01" rel="next"' in page
    assert "(so far)" not in page


@pytest.mark.parametrize("day", ["yesterday", "2024-02-30", "2024-5-6", "1970-01-01", "20240506", "9999-12-31"])
def test_bad_days_are_400_without_a_platform_call(web_client: Client, web_platform: WebFakePlatform, day: str) -> None:
    response = web_client.get(f"/analytics?day={day}")
    assert response.status_code == 400
    assert web_platform.calls == []


def test_analytics_with_the_platform_down_is_a_503(web_client: Client, web_platform: WebFakePlatform) -> None:
    web_platform.reply("GET", "/v1/analytics/domains", web_platform.Reply(503, raw="<html>503</html>"))
    assert web_client.get("/analytics").status_code == 503


def test_domain_bars_are_proportional_and_the_busiest_fills_the_width() -> None:
    svg = str(charts.domain_bars([DomainCount("a.example", 40), DomainCount("b.example", 10)], title="t"))
    widths = [float(w) for w in re.findall(r'<rect class="bar" [^>]*width="([\d.]+)"', svg)]
    assert widths == [216.0, 54.0]  # bar space is 420 - 160 - 44 = 216


def test_long_domain_labels_are_cut_but_kept_whole_in_the_tooltip() -> None:
    name = "very-long-subdomain-name.example-company.co.uk"
    svg = str(charts.domain_bars([DomainCount(name, 1)], title="t"))
    assert f"<title>{name}: 1 visit</title>" in svg
    assert re.search(r">very-long-subdomain-…</text>", svg)


def test_hours_after_now_are_drawn_as_still_to_come() -> None:
    svg = str(charts.hourly_bars([HourCount(h, 1) for h in range(24)], title="t", now_hour=20))
    assert svg.count('class="bar future"') == 3
    assert svg.count('class="bar"') == 21


# --- Trending, suggestions, navigation -----------------------------------------------------


def test_trending_lists_the_ranked_stories_with_paging(web_client: Client, web_platform: WebFakePlatform) -> None:
    web_platform.ok("GET", "/v1/trending", web_platform.page([web_platform.story("Hot", id=3)], page=2, has_next=True))
    page = html(web_client.get("/trending?page=2"))
    assert web_platform.calls_to("GET", "/v1/trending")[0].query == {"page": "2"}
    assert "<h1 class=\"heading\">Trending</h1>" in page
    assert 'class="rank">31.</span>' in page and 'href="/r/3"' in page
    assert 'href="/trending?page=3" rel="next">more</a>' in page


def test_trending_when_nothing_is_ranked_yet(web_client: Client, web_platform: WebFakePlatform) -> None:
    web_platform.ok("GET", "/v1/trending", web_platform.page([]))
    assert "Nothing is trending yet" in html(web_client.get("/trending"))
    assert web_client.get("/trending?page=0").status_code == 404


def test_story_page_shows_what_people_also_clicked(web_client: Client, web_platform: WebFakePlatform) -> None:
    web_platform.ok("GET", "/v1/stories/4", web_platform.story("Hello", id=4))
    others = [web_platform.story(f"Other {n}", id=20 + n) for n in range(5)]
    web_platform.ok("GET", "/v1/stories/4/suggestions", {"items": others})
    page = html(web_client.get("/s/4"))
    assert web_platform.calls_to("GET", "/v1/stories/4/suggestions")[0].query == {"limit": "5"}
    assert "People who clicked this also clicked" in page
    for n in range(5):
        assert f'<a class="title" href="/r/{20 + n}" rel="nofollow">Other {n}</a>' in page
        assert f'<a href="/s/{20 + n}">discuss</a>' in page


def test_story_page_survives_its_suggestions_failing(web_client: Client, web_platform: WebFakePlatform) -> None:
    web_platform.ok("GET", "/v1/stories/4", web_platform.story("Hello", id=4))
    web_platform.reply("GET", "/v1/stories/4/suggestions", web_platform.Reply(503, raw="<html>503</html>"))
    response = web_client.get("/s/4")
    assert response.status_code == 200
    assert ">Hello</a>" in html(response) and "also clicked" not in html(response)


def test_home_suggests_people_to_follow_with_follow_buttons(web_alice: Client, web_platform: WebFakePlatform) -> None:
    web_platform.ok("GET", "/v1/users/1/home", web_platform.page([web_platform.story("From a friend")]))
    web_platform.ok("GET", "/v1/users/1/suggestions", {"items": [{"id": 8, "username": "bob"}, {"id": 9, "username": "carol"}]})

    page = html(web_alice.get("/home"))

    assert web_platform.calls_to("GET", "/v1/users/1/suggestions")[0].query == {"limit": "5"}
    assert "People you may follow" in page
    for name in ("bob", "carol"):
        assert f'<a href="/u/{name}">{name}</a>' in page
        assert re.search(
            rf'<form method="post" action="/u/{name}/follow" class="inline"><input type="hidden" name="csrfmiddlewaretoken"[^>]*>'
            r'<input type="hidden" name="idempotency_key" value="[0-9a-f-]{36}">'
            r'\s*<input type="hidden" name="next" value="/home">',
            page,
        )
    assert ">From a friend</a>" in page


def test_home_asks_for_suggestions_only_on_its_first_page(web_alice: Client, web_platform: WebFakePlatform) -> None:
    web_platform.ok("GET", "/v1/users/1/home", web_platform.page([], page=2))
    page = html(web_alice.get("/home?page=2"))
    assert web_platform.calls_to("GET", "/v1/users/1/suggestions") == []
    assert "People you may follow" not in page


def test_home_survives_its_suggestions_failing(web_alice: Client, web_platform: WebFakePlatform) -> None:
    web_platform.ok("GET", "/v1/users/1/home", web_platform.page([]))
    web_platform.fail("GET", "/v1/users/1/suggestions", 404, "no such endpoint")
    response = web_alice.get("/home")
    assert response.status_code == 200 and "People you may follow" not in html(response)


def test_navigation_links_the_new_pages(web_client: Client, web_platform: WebFakePlatform, web_login: Callable[..., None]) -> None:
    page = html(web_client.get("/login"))
    assert '<a href="/trending">trending</a>' in page and '<a href="/analytics">analytics</a>' in page
    assert '<a href="/export">export</a>' not in page
    web_login(web_client, 1, "alice")
    assert '<a href="/export">export</a>' in html(web_client.get("/export"))


def test_uuid_in_job_urls_round_trips() -> None:
    from django.urls import reverse

    assert reverse("export_job", args=[uuid.UUID(JOB)]) == f"/exports/{JOB}"
    assert reverse("export_download", args=[uuid.UUID(JOB)]) == f"/exports/{JOB}/download"
