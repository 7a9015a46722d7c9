"""The fan-out study (``scalestack/benchfanout.py``) runs on the test stack and leaves no trace.

Only that it measures something coherent and cleans up after itself, never
how fast: performance is reported by the study, not asserted in tests.
"""
from __future__ import annotations

import requests

from scalestack import benchfanout
from scalestack.topology import Topology
from tests.integration.helpers import sql

BENCH_USERS = f"SELECT count(*) FROM users WHERE username ~ '{benchfanout.BENCH_NAME_PATTERN}'"


def test_the_study_reports_ordered_figures_and_cleans_up(running_stack: Topology, site: str) -> None:
    results = benchfanout.run(running_stack, follower_counts=(10, 300), posts=2)

    assert [r.followers for r in results] == [10, 300]
    chunk = benchfanout.fanout_chunk_size(running_stack)
    for result in results:
        assert result.posts == len(result.per_post) == 2
        assert result.chunk_size == chunk
        assert result.chunks == benchfanout.chunk_count(result.followers, chunk)
        assert result.ack_p50_ms > 0
        assert 0 < result.visible_p50_ms <= result.visible_p99_ms <= result.all_visible_ms
        assert result.all_visible_ms <= result.all_visible_max_ms
        # The API is read once every row is in, so it can only be later.
        assert result.all_visible_ms <= result.api_visible_ms <= result.api_visible_max_ms
        for post in result.per_post:
            assert 0 < post.p50_ms <= post.p99_ms <= post.all_ms <= post.api_ms
            assert post.polls >= 1 and post.resolution_ms >= 0
    story_ids = [post.story_id for result in results for post in result.per_post]
    assert len(set(story_ids)) == 4

    # Cleanup really cleaned: no bench user, story, entry, follow or key is left.
    ids = ",".join(map(str, story_ids))
    assert sql(running_stack, BENCH_USERS) == "0"
    assert sql(running_stack, f"SELECT count(*) FROM stories WHERE id IN ({ids})") == "0"
    assert sql(running_stack, f"SELECT count(*) FROM timeline_entries WHERE story_id IN ({ids})") == "0"
    assert sql(running_stack, f"SELECT count(*) FROM idempotency_keys "
                              f"WHERE starts_with(key, '{benchfanout.IDEMPOTENCY_PREFIX}')") == "0"
    # And the seeded site still works.
    assert requests.get(f"{site}/", timeout=10).status_code == 200


def test_prepare_is_idempotent_and_cleanup_reaches_the_cache(running_stack: Topology, site: str) -> None:
    first = benchfanout.prepare(running_stack, (3, 10))
    try:
        assert benchfanout.prepare(running_stack, (10, 3)) == first
        # Counters agree with the follows table (the profile shows them).
        counts = sql(running_stack, "SELECT username, followers_count, following_count FROM users "
                                    f"WHERE id IN ({first[3]}, {first[10]}) ORDER BY username")
        assert counts.splitlines() == ["bench_author_10|10|0", "bench_author_3|3|0"]
        follower = sql(running_stack, "SELECT following_count FROM users WHERE username = 'bench_follower_1'")
        assert follower == "2"  # the first follower is shared by both authors
        assert sql(running_stack, "SELECT count(*) FROM users WHERE username LIKE 'bench\\_follower\\_%' "
                                  "AND NOT starts_with(password, '!')") == "0"

        result = benchfanout.measure(running_stack, first[3], 3, 1)
        title = "Fan-out study: 3 followers, post 1"
        # The site now caches the story on the newest page and the author's id by name...
        assert title in requests.get(f"{site}/newest", timeout=10).text
        assert requests.get(f"{site}/u/bench_author_3", timeout=10).status_code == 200
    finally:
        # (3 followers: one chunk, not full, so no continuation is left behind.)
        cleaned = benchfanout.cleanup(running_stack)
    assert (cleaned.users, cleaned.stories) == (12, 1)
    assert cleaned.rows["timeline_entries"] == 4  # the author's own entry and 3 followers'
    # ...and cleanup made the cache forget both.
    assert title not in requests.get(f"{site}/newest", timeout=10).text
    assert requests.get(f"{site}/u/bench_author_3", timeout=10).status_code == 404
    assert result.per_post[0].story_id > 0
    assert benchfanout.cleanup(running_stack).users == 0
