"""The demo data generator (``platform_api.seed_data``): valid, deterministic, skewed.

Every generated row must pass the same rules as the API's input, so that the
demo site never holds something a user could not have submitted, and the
distributions must be skewed the way real social sites are (that is what makes
the cache's hit rate meaningful).
"""
from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest
from pydantic import TypeAdapter

from tests.unit.platform_support import ensure_platform_importable

ensure_platform_importable()

from platform_api import rules, seed_data  # noqa: E402

NOW = datetime(2026, 1, 15, 12, 0, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def full() -> seed_data.SeedData:
    """The default-sized data set (about half a second to build)."""
    return seed_data.generate(seed=42, now=NOW)


def test_same_seed_same_site_and_another_seed_another() -> None:
    first = seed_data.generate(users=60, stories=300, seed=3, now=NOW)
    assert seed_data.generate(users=60, stories=300, seed=3, now=NOW) == first
    assert seed_data.generate(users=60, stories=300, seed=4, now=NOW) != first


def test_default_sizes(full: seed_data.SeedData) -> None:
    assert len(full.users) == 1000
    assert len(full.stories) == 10_000
    assert len(full.votes) == 50_000
    assert 15_000 <= len(full.follows) <= 40_000


def test_usernames_are_valid_and_unique_ignoring_case(full: seed_data.SeedData) -> None:
    names = [user.username for user in full.users]
    assert all(rules.is_valid_username(name) for name in names)
    assert len({name.lower() for name in names}) == len(names)
    assert [user.id for user in full.users] == list(range(1, 1001))


def test_every_story_is_one_the_api_would_accept(full: seed_data.SeedData) -> None:
    title, url, text = TypeAdapter(rules.Title), TypeAdapter(rules.StoryUrl), TypeAdapter(rules.StoryText)
    for story in full.stories:
        assert title.validate_python(story.title) == story.title
        assert url.validate_python(story.url) == story.url
        assert text.validate_python(story.text) == story.text
        rules.require_url_or_text(story.url, story.text)


def test_stories_span_the_last_month_and_ids_follow_time(full: seed_data.SeedData) -> None:
    times = [story.created_at for story in full.stories]
    assert times == sorted(times)
    assert [story.id for story in full.stories] == list(range(1, 10_001))
    assert min(times) >= NOW - timedelta(days=seed_data.STORY_DAYS)
    assert max(times) <= NOW
    assert max(times) >= NOW - timedelta(hours=2), "the newest page looks current"
    joined = {user.id: user.date_joined for user in full.users}
    assert all(joined[story.author_id] < story.created_at for story in full.stories)


def test_stories_link_to_varied_real_looking_sites_and_some_are_ask_posts(full: seed_data.SeedData) -> None:
    domains = Counter(rules.domain_of(story.url) for story in full.stories if story.url)
    for expected in ("github.com", "arxiv.org", "lethain.com", "nytimes.com", "en.wikipedia.org"):
        assert domains[expected] > 0, expected
    asks = [story for story in full.stories if not story.url]
    assert 0.04 * len(full.stories) < len(asks) < 0.15 * len(full.stories)
    assert all(story.text and story.title.startswith("Ask:") for story in asks)
    assert not any(" a a" in story.title.lower() or " a e" in story.title.lower() for story in full.stories)


def test_follows_are_unique_never_of_oneself_and_after_both_joined(full: seed_data.SeedData) -> None:
    pairs = [(f.follower_id, f.followee_id) for f in full.follows]
    assert len(set(pairs)) == len(pairs)
    assert all(a != b for a, b in pairs)
    joined = {user.id: user.date_joined for user in full.users}
    for follow in full.follows:
        assert max(joined[follow.follower_id], joined[follow.followee_id]) <= follow.created_at <= NOW


def test_a_few_users_have_hundreds_of_followers_most_a_handful(full: seed_data.SeedData) -> None:
    counts = Counter(follow.followee_id for follow in full.follows)
    per_user = sorted(counts.get(user.id, 0) for user in full.users)
    assert per_user[-1] >= 300
    assert sum(1 for n in per_user if n >= 100) >= 10
    assert per_user[len(per_user) // 2] <= 25
    assert max(Counter(f.follower_id for f in full.follows).values()) <= seed_data.MAX_FOLLOWING


def test_votes_are_unique_not_self_votes_and_after_the_story(full: seed_data.SeedData) -> None:
    stories = {story.id: story for story in full.stories}
    pairs = [(vote.story_id, vote.user_id) for vote in full.votes]
    assert len(set(pairs)) == len(pairs)
    for vote in full.votes:
        story = stories[vote.story_id]
        assert vote.user_id != story.author_id
        assert story.created_at <= vote.created_at <= NOW


def test_a_few_stories_collect_most_votes(full: seed_data.SeedData) -> None:
    per_story = Counter(vote.story_id for vote in full.votes)
    top_one_percent = sum(count for _, count in per_story.most_common(len(full.stories) // 100))
    assert top_one_percent / len(full.votes) > 0.15
    assert per_story.most_common(1)[0][1] >= 100


def test_small_sites_still_work() -> None:
    data = seed_data.generate(users=2, stories=3, votes=100, seed=1, now=NOW)
    assert len(data.users) == 2
    assert len(data.votes) <= 3, "at most one vote per story: each user but the author"
    with pytest.raises(ValueError):
        seed_data.generate(users=1, stories=1)
