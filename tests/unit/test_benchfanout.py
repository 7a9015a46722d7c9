"""The fan-out study's arithmetic (``scalestack/benchfanout.py``): percentiles from polls, chunks, keys.

No services: the polls are made up, the chunk chain is the consumer's own
function, and the cache keys are compared with the platform's.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import override_settings

from scalestack import benchfanout
from scalestack.benchfanout import PostTiming, Sample
from scalestack.topology import load
from tests.unit.platform_support import PLATFORM_DIR, PROBE_ENV, ensure_platform_importable

ensure_platform_importable()

from consumers import payloads  # noqa: E402
from platform_api import cache_keys  # noqa: E402


@pytest.mark.parametrize(
    ("followers", "percent", "needed"),
    [(10, 50, 5), (10, 99, 10), (10, 100, 10), (1, 50, 1), (300, 99, 297), (1_000, 99, 990),
     (10_000, 99, 9_900), (10_000, 50, 5_000), (101, 50, 51), (7, 50, 4)],
)
def test_followers_needed_is_the_nearest_rank_rounded_up(followers: int, percent: int, needed: int) -> None:
    assert benchfanout.followers_needed(followers, percent) == needed


def test_followers_needed_refuses_nonsense() -> None:
    with pytest.raises(ValueError):
        benchfanout.followers_needed(0, 50)
    with pytest.raises(ValueError):
        benchfanout.followers_needed(10, 0)
    with pytest.raises(ValueError):
        benchfanout.followers_needed(10, 101)


def test_each_figure_is_the_first_poll_that_saw_enough_followers() -> None:
    # 200 followers; the chunks of 50 commit between polls.
    samples = [Sample(0.002, 0), Sample(0.012, 0), Sample(0.022, 50), Sample(0.032, 100),
               Sample(0.042, 150), Sample(0.052, 150), Sample(0.062, 199), Sample(0.072, 200)]
    p50, p99, every = benchfanout.visibility(samples, 200)
    assert p50 == 0.032  # 100 of 200 first seen here
    assert p99 == 0.062  # 198 needed, 199 seen: before the last follower had it
    assert every == 0.072


def test_p99_is_reached_before_everyone_when_a_poll_sees_99_percent() -> None:
    samples = [Sample(0.01, 0), Sample(0.02, 500), Sample(0.03, 990), Sample(0.04, 999), Sample(0.05, 1000)]
    assert benchfanout.visibility(samples, 1000) == (0.02, 0.03, 0.05)


def test_entries_committed_before_the_ack_count_at_the_first_poll() -> None:
    assert benchfanout.visibility([Sample(0.004, 10)], 10) == (0.004, 0.004, 0.004)


def test_polls_that_never_saw_everyone_are_an_error_not_a_figure() -> None:
    with pytest.raises(ValueError, match="at most 9 of 10"):
        benchfanout.visibility([Sample(0.01, 3), Sample(0.02, 9)], 10)
    assert benchfanout.time_to_reach([Sample(0.01, 3)], 4) is None


def test_resolution_is_the_median_gap_between_polls() -> None:
    samples = [Sample(0.0, 0), Sample(0.010, 0), Sample(0.021, 0), Sample(0.050, 0), Sample(0.060, 1)]
    assert benchfanout.resolution(samples) == pytest.approx(0.0105)
    assert benchfanout.resolution([Sample(0.01, 1)]) == 0.0


@pytest.mark.parametrize(
    ("followers", "chunk", "chunks", "messages"),
    [(10, 500, 1, 1), (1_000, 500, 2, 3), (10_000, 500, 20, 21), (300, 50, 6, 7), (301, 50, 7, 7), (49, 50, 1, 1)],
)
def test_chunks_and_messages(followers: int, chunk: int, chunks: int, messages: int) -> None:
    assert benchfanout.chunk_count(followers, chunk) == chunks
    assert benchfanout.message_count(followers, chunk) == messages


@pytest.mark.parametrize(("followers", "chunk"), [(10, 50), (300, 50), (301, 50), (1_000, 500), (0, 50)])
def test_message_count_follows_the_consumers_own_chain(followers: int, chunk: int) -> None:
    """Walk the follower ids the way ``consumers/fanout.py`` does, counting events."""
    ids = list(range(1, followers + 1))
    after, events = 0, 0
    while True:
        events += 1
        batch = [i for i in ids if i > after][:chunk]
        nxt = payloads.next_chunk_after(batch, chunk)
        if nxt is None:
            break
        after = nxt
    assert benchfanout.message_count(followers, chunk) == events


def _timing(story_id: int, ack: float, p50: float, p99: float, every: float, api: float) -> PostTiming:
    return PostTiming(story_id, ack, p50, p99, every, api, polls=10, resolution_ms=10.0)


def test_the_summary_is_the_median_over_posts_and_the_maximum_of_all_and_api() -> None:
    timings = [_timing(1, 20.0, 100.0, 200.0, 210.0, 215.0),
               _timing(2, 30.0, 120.0, 260.0, 400.0, 420.0),
               _timing(3, 10.0, 90.0, 190.0, 205.0, 230.0)]
    result = benchfanout.summarise(1_000, 50, 0.01, timings)
    assert (result.followers, result.posts, result.chunk_size) == (1_000, 3, 50)
    assert (result.chunks, result.messages) == (20, 21)
    assert result.ack_p50_ms == 20.0
    assert (result.visible_p50_ms, result.visible_p99_ms, result.all_visible_ms) == (100.0, 200.0, 210.0)
    assert (result.all_visible_max_ms, result.api_visible_ms, result.api_visible_max_ms) == (400.0, 230.0, 420.0)
    assert (result.poll_interval_ms, result.resolution_ms) == (10.0, 10.0)
    assert [t.story_id for t in result.per_post] == [1, 2, 3]
    with pytest.raises(ValueError):
        benchfanout.summarise(10, 50, 0.01, [])


def test_cache_keys_are_mangled_as_the_platform_mangles_them() -> None:
    for key in (cache_keys.user_cache_key(42), cache_keys.user_id_by_username_cache_key("bench_author_10"),
                cache_keys.story_cache_key(7), cache_keys.generation_cache_key(cache_keys.STORIES_GENERATION)):
        with override_settings(CACHE_KEY_PREFIX="ss-test"):
            assert benchfanout.mangle("ss-test", key) == cache_keys.mangle(key)


def test_the_chunk_size_is_the_topologys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCALESTACK_VAR", str(tmp_path / "var"))
    assert benchfanout.fanout_chunk_size(load("test")) == 50
    assert benchfanout.fanout_chunk_size(load("dev")) == benchfanout.PLATFORM_DEFAULT_CHUNK


def test_the_default_chunk_size_is_the_platforms() -> None:
    """The dev profile sets no chunk size, so the platform's settings default must be ours."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_", "SCALESTACK_"))}
    env.update(PROBE_ENV, PYTHONPATH=str(PLATFORM_DIR))
    code = "import django; django.setup(); from django.conf import settings; print(settings.FANOUT_CHUNK_SIZE)"
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    assert int(result.stdout.strip()) == benchfanout.PLATFORM_DEFAULT_CHUNK


@pytest.mark.parametrize(
    ("name", "bench"),
    [("bench_author_10", True), ("bench_follower_1", True), ("bench_follower_10000", True),
     ("bench_author_", False), ("bench_author_10x", False), ("xbench_author_10", False),
     ("bench_authors_10", False), ("Bench_author_10", False), ("olga91", False)],
)
def test_only_the_studys_names_are_bench_users(name: str, bench: bool) -> None:
    # PostgreSQL's ``~`` searches like Python's re.search for a pattern this plain.
    assert bool(re.search(benchfanout.BENCH_NAME_PATTERN, name)) is bench


def test_the_bench_user_condition_also_requires_an_unusable_password() -> None:
    condition = benchfanout.bench_user("u")
    assert condition == f"u.username ~ '{benchfanout.BENCH_NAME_PATTERN}' AND starts_with(u.password, '!')"
    # No percent sign: the condition goes into queries with and without parameters.
    assert "%" not in condition
