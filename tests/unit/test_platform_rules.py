"""The platform's input limits, paging, ranking and domain rules (``platform_api.rules``).

Pure: no Django settings, no services. The limits are those of
``docs/platform-api.md``; each case states one of them.
"""
from __future__ import annotations

from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from tests.unit.platform_support import ensure_platform_importable

ensure_platform_importable()

from platform_api import rules  # noqa: E402


def _valid(type_: Any, value: Any) -> bool:
    try:
        TypeAdapter(type_).validate_python(value)
    except ValidationError:
        return False
    return True


def _clean(type_: Any, value: Any) -> Any:
    return TypeAdapter(type_).validate_python(value)


# --------------------------------------------------------------------------
# Usernames and passwords
# --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("abc", True),
        ("a" * 30, True),
        ("Mixed_Case-9", True),
        ("ab", False),
        ("a" * 31, False),
        ("has space", False),
        ("dot.name", False),
        ("jösé", False),
        ("", False),
        ("name\n", False),
        ("<script>", False),
    ],
)
def test_username_rule(name: str, ok: bool) -> None:
    assert rules.is_valid_username(name) is ok
    assert _valid(rules.Username, name) is ok


@pytest.mark.parametrize(("length", "ok"), [(7, False), (8, True), (128, True), (129, False)])
def test_password_length_is_8_to_128(length: int, ok: bool) -> None:
    assert _valid(rules.Password, "p" * length) is ok


def test_sign_in_accepts_any_short_enough_credentials_so_wrong_ones_are_a_401() -> None:
    assert _valid(rules.LoginPassword, "short")
    assert _valid(rules.LoginUsername, "x y")
    assert not _valid(rules.LoginPassword, "p" * 129), "the hasher's work stays bounded"
    assert not _valid(rules.LoginPassword, "")


# --------------------------------------------------------------------------
# Titles, urls, texts
# --------------------------------------------------------------------------
def test_title_is_stripped_and_must_not_be_blank() -> None:
    assert _clean(rules.Title, "  Hello  ") == "Hello"
    assert _clean(rules.Title, " " + "t" * 200 + " ") == "t" * 200, "the limit applies after stripping"
    assert not _valid(rules.Title, "   ")
    assert not _valid(rules.Title, "")
    assert not _valid(rules.Title, "t" * 201)


@pytest.mark.parametrize("title", ["line\nbreak", "tab\there", "nul\x00byte", "bell\x07"])
def test_title_refuses_control_characters(title: str) -> None:
    assert not _valid(rules.Title, title)


@pytest.mark.parametrize(
    "url",
    [
        "",
        "http://example.org",
        "https://example.org/a/b?c=d#e",
        "HTTPS://EXAMPLE.ORG/",
        "https://example.org:8443/x",
        "http://[::1]:8000/",
    ],
)
def test_story_url_accepts_http_and_https_or_empty(url: str) -> None:
    assert _clean(rules.StoryUrl, url) == url


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "ftp://example.org/file",
        "data:text/html,hi",
        "//example.org/x",
        "example.org",
        "http://",
        "https://exa mple.org",
        "https://example.org:99999/",
        "http://[::1",
        "https://example.org/\x00",
    ],
)
def test_story_url_refuses_other_schemes_and_malformed_urls(url: str) -> None:
    assert not _valid(rules.StoryUrl, url)


def test_story_url_length_limit_is_500_and_surrounding_spaces_are_dropped() -> None:
    base = "https://example.org/"
    assert _valid(rules.StoryUrl, base + "a" * (500 - len(base)))
    assert not _valid(rules.StoryUrl, base + "a" * (501 - len(base)))
    assert _clean(rules.StoryUrl, "  https://example.org/x  ") == "https://example.org/x"


def test_text_keeps_line_breaks_but_not_nul_and_is_at_most_5000() -> None:
    assert _clean(rules.StoryText, "  para one\n\npara\ttwo  ") == "para one\n\npara\ttwo"
    assert _valid(rules.StoryText, "x" * 5000)
    assert not _valid(rules.StoryText, "x" * 5001)
    assert not _valid(rules.StoryText, "nul\x00")


@pytest.mark.parametrize(
    ("url", "text", "ok"),
    [("https://e.org", "", True), ("", "body", True), ("https://e.org", "b", True), ("", "", False)],
)
def test_a_story_needs_a_url_or_a_text(url: str, text: str, ok: bool) -> None:
    if ok:
        rules.require_url_or_text(url, text)
    else:
        with pytest.raises(ValueError, match="url or a text"):
            rules.require_url_or_text(url, text)


@pytest.mark.parametrize(("value", "ok"), [(0, False), (1, True), (rules.MAX_ID, True), (rules.MAX_ID + 1, False)])
def test_ids_fit_a_postgres_bigint(value: int, ok: bool) -> None:
    assert _valid(rules.RowId, value) is ok


@pytest.mark.parametrize(("value", "ok"), [(0, False), (1, True), (1000, True), (1001, False)])
def test_page_numbers_are_1_to_1000(value: int, ok: bool) -> None:
    assert _valid(rules.PageNumber, value) is ok


# --------------------------------------------------------------------------
# Paging
# --------------------------------------------------------------------------
def test_page_window_fetches_one_id_more_than_a_page() -> None:
    assert rules.page_window(1) == (0, 31)
    assert rules.page_window(2) == (30, 31)
    assert rules.page_window(1000) == (29_970, 31)
    for bad in (0, 1001):
        with pytest.raises(ValueError):
            rules.page_window(bad)


def test_split_page_uses_the_extra_id_only_to_tell_there_is_a_next_page() -> None:
    assert rules.split_page(list(range(31))) == (list(range(30)), True)
    assert rules.split_page(list(range(30))) == (list(range(30)), False)
    assert rules.split_page([]) == ([], False)


# --------------------------------------------------------------------------
# Ranking
# --------------------------------------------------------------------------
def test_hot_score_favours_fresh_stories_over_old_popular_ones() -> None:
    fresh = rules.hot_score(votes=10, age_hours=1)
    day_old = rules.hot_score(votes=50, age_hours=24)
    assert fresh > day_old
    assert rules.hot_score(10, 5) > rules.hot_score(9, 5), "more votes, higher score"
    assert rules.hot_score(10, 5) > rules.hot_score(10, 6), "older, lower score"
    assert rules.hot_score(0, 1) == 0


def test_hot_score_matches_the_gravity_formula() -> None:
    assert rules.hot_score(12, 10) == pytest.approx(12 / (10 + 2) ** 1.8)


def test_top_score_sql_uses_the_same_constants_in_double_precision() -> None:
    sql = rules.TOP_SCORE_SQL
    assert f"+ {rules.AGE_OFFSET_HOURS}, {rules.GRAVITY})" in sql
    # Numeric power() made the front page query 20x slower; keep the cast.
    assert "::float8" in sql
    assert "now() - created_at" in sql


# --------------------------------------------------------------------------
# Domains and the fault-injection header
# --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("url", "domain"),
    [
        ("https://www.nytimes.com/2024/05/02/tech/x.html", "nytimes.com"),
        ("http://GitHub.com/a/b", "github.com"),
        ("https://blog.cloudflare.com/x/", "blog.cloudflare.com"),
        ("https://example.org:8443/", "example.org"),
        ("https://www.example.org./", "example.org"),
        ("", None),
        ("http://[::1", None),
    ],
)
def test_domain_of(url: str, domain: str | None) -> None:
    assert rules.domain_of(url) == domain


@pytest.mark.parametrize(("raw", "seconds"), [("0", 0.0), ("2.5", 2.5), ("5", 5.0)])
def test_fill_delay_header_accepts_0_to_5_seconds(raw: str, seconds: float) -> None:
    assert rules.parse_fill_delay(raw) == seconds


@pytest.mark.parametrize("raw", ["5.01", "-1", "nan", "inf", "abc", ""])
def test_fill_delay_header_refuses_anything_else(raw: str) -> None:
    with pytest.raises(ValueError, match="X-Debug-Fill-Delay"):
        rules.parse_fill_delay(raw)
