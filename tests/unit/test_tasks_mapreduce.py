"""The map-reduce jobs' map and reduce functions against brute force (``mapreduce_core``).

The functions are pure, so each job is checked on small random data sets
against a direct, obviously correct computation, for several partition
counts: the partitioned map followed by the reduce must give exactly the
brute-force answer, ties included. The SQL ground truth is checked against the
same jobs by the integration tests; here only its table-name guard.
"""
from __future__ import annotations

import itertools
import random
from collections import defaultdict

import pytest

from tests.unit.platform_support import ensure_platform_importable

ensure_platform_importable()

from platform_api.tasks import ground_truth  # noqa: E402
from platform_api.tasks import mapreduce_core as core  # noqa: E402


# --------------------------------------------------------------------------
# Brute-force references
# --------------------------------------------------------------------------
def brute_suggested(clicks: list[tuple[int, int]], k: int = core.TOP_K) -> dict[int, list[tuple[int, int]]]:
    """For each story, the k stories clicked by the most of the same users."""
    users_of: dict[int, set[int]] = defaultdict(set)
    for user, story in clicks:
        users_of[story].add(user)
    result = {}
    for a in users_of:
        scores = [(b, len(users_of[a] & users_of[b])) for b in users_of if b != a]
        scores = [(b, n) for b, n in scores if n > 0]
        if scores:
            result[a] = sorted(scores, key=lambda p: (-p[1], p[0]))[:k]
    return result


def brute_fof(follows: list[tuple[int, int]], k: int = core.TOP_K) -> dict[int, list[tuple[int, int]]]:
    """For each user, the k friends of friends followed by the most of their followees."""
    following: dict[int, set[int]] = defaultdict(set)
    for a, b in follows:
        following[a].add(b)
    people = {x for edge in follows for x in edge}
    result = {}
    for u in sorted(following):
        scores = []
        for c in people:
            if c == u or c in following[u]:
                continue
            n = sum(1 for f in following[u] if c in following[f])
            if n:
                scores.append((c, n))
        if scores:
            result[u] = sorted(scores, key=lambda p: (-p[1], p[0]))[:k]
    return result


def random_clicks(seed: int, users: int = 40, stories: int = 30, count: int = 400) -> list[tuple[int, int]]:
    """Skewed random clicks with repeats (a user clicking a story twice)."""
    rng = random.Random(seed)
    weights = [1 / (i + 1) for i in range(stories)]
    return [(rng.randint(1, users), rng.choices(range(1, stories + 1), weights)[0]) for _ in range(count)]


def random_follows(seed: int, users: int = 40, count: int = 300) -> list[tuple[int, int]]:
    """A random follow graph without self-follows or duplicates."""
    rng = random.Random(seed)
    edges: set[tuple[int, int]] = set()
    while len(edges) < count:
        a, b = rng.randint(1, users), rng.randint(1, users)
        if a != b:
            edges.add((a, b))
    return sorted(edges)


def partitioned_suggested(clicks: list[tuple[int, int]], partitions: int) -> dict[int, core.Ranked]:
    """Map each partition of users, then reduce: what the chord computes."""
    outputs = [
        core.map_co_clicks([c for c in clicks if core.partition_of(c[0], partitions) == p])
        for p in range(partitions)
    ]
    return core.reduce_co_clicks(outputs)


def partitioned_fof(follows: list[tuple[int, int]], partitions: int) -> dict[int, core.Ranked]:
    """Each map gets its partition's users and every follow list (both hops)."""
    following: dict[int, list[int]] = defaultdict(list)
    for a, b in follows:
        following[a].append(b)
    outputs = [
        core.map_friends_of_friends(
            sorted(u for u in following if core.partition_of(u, partitions) == p), following
        )
        for p in range(partitions)
    ]
    return core.reduce_friends_of_friends(outputs)


# --------------------------------------------------------------------------
# Suggested stories
# --------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("partitions", [1, 2, 3, 7])
def test_suggested_stories_equal_brute_force_for_any_partitioning(seed: int, partitions: int) -> None:
    clicks = random_clicks(seed)
    assert partitioned_suggested(clicks, partitions) == brute_suggested(clicks)


def test_a_user_counts_once_per_pair_however_often_they_click() -> None:
    output = core.map_co_clicks([(1, 10), (1, 10), (1, 20), (1, 20), (2, 10), (2, 20)])
    assert dict(zip(output["k"], output["n"])) == {core.pair_key(10, 20): 2}


def test_pair_counts_add_up_across_partitions() -> None:
    left = core.map_co_clicks([(1, 10), (1, 20)])
    right = core.map_co_clicks([(2, 20), (2, 10), (2, 30)])
    assert core.merge_pair_counts([left, right]) == {
        core.pair_key(10, 20): 2,
        core.pair_key(10, 30): 1,
        core.pair_key(20, 30): 1,
    }


def test_ties_go_to_the_smaller_id_and_lists_stop_at_k() -> None:
    clicks = [(user, story) for user in (1, 2) for story in range(1, 15)]  # every pair scores 2
    result = core.reduce_co_clicks([core.map_co_clicks(clicks)])
    assert result[1] == [(story, 2) for story in range(2, 12)]
    assert result[14] == [(story, 2) for story in range(1, 11)]
    assert all(len(ranked) == core.TOP_K for ranked in result.values())


def test_a_story_nobody_else_clicked_has_no_suggestions() -> None:
    assert core.reduce_co_clicks([core.map_co_clicks([(1, 10), (2, 20)])]) == {}


@pytest.mark.parametrize(("a", "b"), [(1, 2), (7, 3), (2**31, 2**32 - 1), (0, 5)])
def test_pair_keys_are_unordered_and_reversible(a: int, b: int) -> None:
    assert core.pair_key(a, b) == core.pair_key(b, a)
    assert core.split_key(core.pair_key(a, b)) == (min(a, b), max(a, b))


# --------------------------------------------------------------------------
# People you may follow
# --------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("partitions", [1, 2, 5])
def test_follow_suggestions_equal_brute_force_for_any_partitioning(seed: int, partitions: int) -> None:
    follows = random_follows(seed)
    assert partitioned_fof(follows, partitions) == brute_fof(follows)


def test_follow_suggestions_leave_out_oneself_and_people_already_followed() -> None:
    # 1 follows 2 and 3; 2 and 3 both follow 4 and 1; 3 also follows 2.
    follows = [(1, 2), (1, 3), (2, 4), (3, 4), (2, 1), (3, 1), (3, 2)]
    result = partitioned_fof(follows, 2)
    assert result[1] == [(4, 2)], "not 1 itself, not 2 (already followed)"
    assert result[2] == [(3, 1)], "2 -> 1 -> 3; 4 is followed by 2 already"


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------
def test_ranked_rows_number_ranks_from_one_in_owner_order() -> None:
    rows = core.ranked_rows({5: [(1, 9), (2, 3)], 2: [(7, 4)]})
    assert rows == [(2, 7, 4, 1), (5, 1, 9, 1), (5, 2, 3, 2)]


def test_the_digest_tells_results_apart() -> None:
    rows = [(1, 2, 3, 1), (1, 4, 2, 2)]
    assert core.rows_digest(rows) == core.rows_digest(list(rows))
    assert core.rows_digest(rows) != core.rows_digest(rows[::-1])
    assert core.rows_digest(rows) != core.rows_digest([(1, 2, 3, 1), (1, 4, 2, 3)])


@pytest.mark.parametrize(("count", "size"), [(0, 3), (1, 3), (9, 3), (10, 3), (10, 1)])
def test_chunked_keeps_order_and_sizes(count: int, size: int) -> None:
    chunks = list(core.chunked(range(count), size))
    assert list(itertools.chain.from_iterable(chunks)) == list(range(count))
    assert all(len(chunk) == size for chunk in chunks[:-1])
    assert all(0 < len(chunk) <= size for chunk in chunks)


def test_chunked_rejects_empty_chunks() -> None:
    with pytest.raises(ValueError):
        list(core.chunked([1], 0))


def test_partitions_cover_every_id_once() -> None:
    assert sorted(core.partition_of(i, 4) for i in range(8)) == [0, 0, 1, 1, 2, 2, 3, 3]


def test_the_ground_truth_only_reads_known_tables() -> None:
    assert "FROM clicks" in ground_truth.suggested_stories_sql()
    assert "mapreduce_bench_follows f1" in ground_truth.follow_suggestions_sql("mapreduce_bench_follows")
    with pytest.raises(ValueError):
        ground_truth.suggested_stories_sql("clicks; DROP TABLE users")
    with pytest.raises(ValueError):
        ground_truth.follow_suggestions_sql("clicks")
