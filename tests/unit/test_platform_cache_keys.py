"""Cache keys: one function per data set, lists keyed by the right generations.

``cache_keys.mangle`` reads ``settings.CACHE_KEY_PREFIX``; the tests replace the
module's ``settings`` with a plain object rather than configuring Django
(this process already hosts the web tier's settings).
"""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from tests.unit.platform_support import ensure_platform_importable

ensure_platform_importable()

from platform_api import cache_keys as ck  # noqa: E402

GENS = {
    ck.STORIES_GENERATION: 100,
    ck.VOTES_GENERATION: 200,
    ck.user_stories_generation(7): 300,
    ck.user_follows_generation(7): 400,
    ck.user_follows_generation(8): 500,
    ck.user_home_generation(7): 600,
    ck.user_home_generation(8): 700,
}


@pytest.fixture
def prefix(monkeypatch: pytest.MonkeyPatch) -> str:
    """Give ``mangle`` a deployment prefix without Django settings."""
    monkeypatch.setattr(ck, "settings", SimpleNamespace(CACHE_KEY_PREFIX="ss-unit"))
    return "ss-unit"


def _bumped(name: str) -> dict[str, int]:
    return {**GENS, name: GENS[name] + 1}


def test_object_keys_differ_per_data_set_and_id() -> None:
    keys = {ck.user_cache_key(1), ck.user_cache_key(2), ck.story_cache_key(1), ck.user_id_by_username_cache_key("1")}
    assert len(keys) == 4


def test_username_key_ignores_case_like_the_unique_index() -> None:
    assert ck.user_id_by_username_cache_key("Alice") == ck.user_id_by_username_cache_key("alice")


def test_list_keys_never_collide_across_lists() -> None:
    keys = {
        ck.story_list_cache_key("top", 1, GENS),
        ck.story_list_cache_key("new", 1, GENS),
        ck.story_list_cache_key("top", 2, GENS),
        ck.user_stories_cache_key(7, 1, GENS),
        ck.followers_cache_key(7, 1, GENS),
        ck.following_cache_key(7, 1, GENS),
        ck.home_timeline_cache_key(7, 1, GENS),
    }
    assert len(keys) == 7


def test_a_vote_moves_top_but_not_new() -> None:
    bumped = _bumped(ck.VOTES_GENERATION)
    assert ck.story_list_cache_key("top", 1, bumped) != ck.story_list_cache_key("top", 1, GENS)
    assert ck.story_list_cache_key("new", 1, bumped) == ck.story_list_cache_key("new", 1, GENS)


def test_a_new_story_moves_top_and_new_but_no_home_timeline() -> None:
    # Home timelines are fan-out on write: a story reaches a home timeline
    # through the rows written for that user, whose writer bumps the user's
    # home generation. The global stories generation must not touch them, or
    # every new story would empty every cached home timeline again.
    bumped = _bumped(ck.STORIES_GENERATION)
    for key_fn in (
        lambda g: ck.story_list_cache_key("top", 1, g),
        lambda g: ck.story_list_cache_key("new", 1, g),
    ):
        assert key_fn(bumped) != key_fn(GENS)
    assert ck.home_timeline_cache_key(7, 1, bumped) == ck.home_timeline_cache_key(7, 1, GENS)


def test_a_home_generation_moves_only_that_users_home_timeline() -> None:
    bumped = _bumped(ck.user_home_generation(7))
    assert ck.home_timeline_cache_key(7, 1, bumped) != ck.home_timeline_cache_key(7, 1, GENS)
    assert ck.home_timeline_cache_key(7, 2, bumped) != ck.home_timeline_cache_key(7, 2, GENS)
    assert ck.home_timeline_cache_key(8, 1, bumped) == ck.home_timeline_cache_key(8, 1, GENS)
    assert ck.user_stories_cache_key(7, 1, bumped) == ck.user_stories_cache_key(7, 1, GENS)
    assert ck.followers_cache_key(7, 1, bumped) == ck.followers_cache_key(7, 1, GENS)


def test_follows_move_only_that_users_lists() -> None:
    bumped = _bumped(ck.user_follows_generation(7))
    assert ck.followers_cache_key(7, 1, bumped) != ck.followers_cache_key(7, 1, GENS)
    assert ck.following_cache_key(7, 1, bumped) != ck.following_cache_key(7, 1, GENS)
    # Following changes the home timeline's rows, not its key: the follow
    # bumps the home generation as well (see repository._change_follow).
    assert ck.home_timeline_cache_key(7, 1, bumped) == ck.home_timeline_cache_key(7, 1, GENS)
    assert ck.user_stories_cache_key(7, 1, bumped) == ck.user_stories_cache_key(7, 1, GENS)
    other = _bumped(ck.user_follows_generation(8))
    assert ck.followers_cache_key(7, 1, other) == ck.followers_cache_key(7, 1, GENS)


def test_mangle_applies_prefix_and_schema_version(prefix: str) -> None:
    assert ck.mangle("story:5") == f"{prefix}:{ck.KEY_SCHEMA_VERSION}:story:5"


def test_bumping_the_schema_version_changes_every_key(prefix: str, monkeypatch: pytest.MonkeyPatch) -> None:
    before = ck.mangle("story:5")
    monkeypatch.setattr(ck, "KEY_SCHEMA_VERSION", ck.KEY_SCHEMA_VERSION + 1)
    assert ck.mangle("story:5") != before


@pytest.mark.parametrize("key", ["x" * 300, "has space", "tab\tkey", "ctl\x01key", "nul\x00", "jösé", "émoji🙂"])
def test_mangle_hashes_keys_memcached_cannot_take(prefix: str, key: str) -> None:
    mangled = ck.mangle(key)
    assert len(mangled.encode()) <= 250
    assert all("!" <= c <= "~" for c in mangled), mangled
    assert ck.mangle(key) == mangled, "deterministic"
    assert ck.mangle(key + "!") != mangled, "distinct keys stay distinct"
