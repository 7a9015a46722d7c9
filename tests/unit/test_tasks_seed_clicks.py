"""The seeded click log (``seed_data.make_clicks``): valid, deterministic, skewed.

Analytics, trending and "people who clicked this also clicked" are only worth
looking at if the clicks behave like real traffic, so these tests pin the
shape as well as the validity of what the seed loads.
"""
from __future__ import annotations

import uuid
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest

from tests.unit.platform_support import ensure_platform_importable

ensure_platform_importable()

from platform_api import seed_data  # noqa: E402

NOW = datetime(2026, 1, 15, 12, 0, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def data() -> seed_data.SeedData:
    """The default-sized site (about a second to build)."""
    return seed_data.generate(seed=42, now=NOW)


def test_default_size_and_determinism(data: seed_data.SeedData) -> None:
    assert len(data.clicks) == seed_data.CLICKS == 30_000
    again = seed_data.generate(users=50, stories=200, clicks=500, seed=7, now=NOW)
    assert again == seed_data.generate(users=50, stories=200, clicks=500, seed=7, now=NOW)
    assert again.clicks != seed_data.generate(users=50, stories=200, clicks=500, seed=8, now=NOW).clicks


def test_adding_clicks_changed_nothing_else() -> None:
    with_clicks = seed_data.generate(users=60, stories=300, clicks=1000, seed=3, now=NOW)
    without = seed_data.generate(users=60, stories=300, clicks=0, seed=3, now=NOW)
    assert without.clicks == []
    assert (with_clicks.users, with_clicks.stories, with_clicks.follows, with_clicks.votes) == (
        without.users, without.stories, without.follows, without.votes,
    )


def test_clicks_are_valid_rows(data: seed_data.SeedData) -> None:
    stories = {story.id: story for story in data.stories}
    users = {user.id for user in data.users}
    assert [click.id for click in data.clicks] == list(range(1, len(data.clicks) + 1))
    times = [click.clicked_at for click in data.clicks]
    assert times == sorted(times), "ids follow time"
    assert min(times) >= NOW - timedelta(days=seed_data.CLICK_DAYS) and max(times) <= NOW
    for click in data.clicks:
        assert stories[click.story_id].created_at <= click.clicked_at
        assert click.user_id is None or click.user_id in users
        assert uuid.UUID(click.event_id).version == 4
    assert len({click.event_id for click in data.clicks}) == len(data.clicks)


def test_referrers_are_skewed_and_include_direct_visits(data: seed_data.SeedData) -> None:
    referrers = Counter(click.referrer_domain for click in data.clicks)
    assert set(referrers) == {name for name, _ in seed_data.REFERRERS}
    top_two = [name for name, _ in referrers.most_common(2)]
    assert set(top_two) == {"", "news.ycombinator.com"}
    assert referrers["t.co"] < referrers["news.ycombinator.com"] / 5


def test_a_fifth_are_anonymous_and_a_few_readers_click_most(data: seed_data.SeedData) -> None:
    anonymous = sum(1 for click in data.clicks if click.user_id is None)
    assert 0.17 < anonymous / len(data.clicks) < 0.23
    per_user = sorted(Counter(c.user_id for c in data.clicks if c.user_id).values(), reverse=True)
    assert per_user[0] > 5 * per_user[len(per_user) // 2]


def test_popular_and_recent_stories_get_most_clicks(data: seed_data.SeedData) -> None:
    per_story = Counter(click.story_id for click in data.clicks)
    top_one_percent = sum(n for _, n in per_story.most_common(len(data.stories) // 100))
    assert top_one_percent / len(data.clicks) > 0.1
    created = {story.id: story.created_at for story in data.stories}
    last_week = sum(n for story_id, n in per_story.items() if created[story_id] > NOW - timedelta(days=7))
    assert last_week / len(data.clicks) > 0.6


def test_traffic_has_a_daily_rhythm(data: seed_data.SeedData) -> None:
    per_hour = Counter(click.clicked_at.hour for click in data.clicks)
    assert per_hour[15] > 2 * per_hour[3], "afternoon UTC is busier than the small hours"


def test_readers_mostly_click_their_own_interests(data: seed_data.SeedData) -> None:
    """Co-clicks concentrate: a story's best companion shares many readers with it."""
    readers: dict[int, set[int]] = {}
    for click in data.clicks:
        if click.user_id is not None:
            readers.setdefault(click.story_id, set()).add(click.user_id)
    popular = sorted(readers, key=lambda s: len(readers[s]), reverse=True)[:20]
    best = [max(len(readers[a] & readers[b]) for b in popular if b != a) for a in popular]
    assert min(best) >= 3


def test_a_tiny_site_still_gets_valid_clicks() -> None:
    small = seed_data.generate(users=2, stories=3, votes=2, clicks=50, seed=1, now=NOW)
    assert len(small.clicks) == 50
    assert {click.story_id for click in small.clicks} <= {story.id for story in small.stories}
    assert seed_data.generate(users=2, stories=0, clicks=50, seed=1, now=NOW).clicks == []
