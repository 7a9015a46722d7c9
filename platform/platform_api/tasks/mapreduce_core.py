"""The map and reduce functions of the two map-reduce jobs, over plain data.

The post's "Map-reduce" section: "calculating suggested users in a social
graph" and analytics over large data. :mod:`platform_api.tasks.mapreduce` runs
these functions as Celery tasks (one map per partition, a chord into one
reduce); here they are pure functions of lists and dicts, so they are
unit-tested against brute force without a database.

**Suggested stories** ("people who clicked this also clicked these"): the
score of (a, b) is the number of distinct users who clicked both. Partitioned
by user (``user_id % N``), a map sees each of its users' whole click set, so it
can count that user's pairs completely; pairs from different partitions add
up, which is the reduce.

**People you may follow** (friends of friends): for user u, the candidates are
the users followed by the users u follows, minus u and whom u already follows;
the score is how many of u's followees follow the candidate. Partitioned by u,
a map has everything about its users, so it finishes their top lists itself
and the reduce only gathers them.

Intermediate data is kept compact because it travels through the result
backend: a pair of story ids is one integer (``a << 32 | b``, ``a < b``), and a
map's output is two parallel lists of keys and counts.
"""
from __future__ import annotations

import hashlib
import heapq
import itertools
from collections import Counter, defaultdict
from typing import Iterable, Iterator, Mapping, Sequence, TypedDict, TypeVar

T = TypeVar("T")

TOP_K = 10
_SHIFT = 32
_MASK = (1 << _SHIFT) - 1

Ranked = list[tuple[int, int]]  # [(suggested id, score), ...], best first
RowTuple = tuple[int, int, int, int]  # (owner, suggested, score, rank), as stored


class PairCounts(TypedDict):
    """One map's output for suggested stories: pair keys and their counts."""

    k: list[int]
    n: list[int]


class FollowRows(TypedDict):
    """One map's output for people you may follow: flat, parallel lists."""

    user: list[int]
    suggested: list[int]
    score: list[int]


def partition_of(key: int, partitions: int) -> int:
    """The partition an id belongs to (the same rule as the SQL ``% N`` the maps filter on)."""
    return key % partitions


def chunked(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Consecutive lists of at most ``size`` items (the last may be shorter)."""
    if size < 1:
        raise ValueError("size must be at least 1")
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


def pair_key(a: int, b: int) -> int:
    """One integer for the unordered pair {a, b} (ids must fit in 32 bits)."""
    low, high = (a, b) if a < b else (b, a)
    return (low << _SHIFT) | high


def split_key(key: int) -> tuple[int, int]:
    """The pair (a, b), ``a < b``, that :func:`pair_key` packed."""
    return key >> _SHIFT, key & _MASK


def top_k(scores: Mapping[int, int], k: int = TOP_K) -> Ranked:
    """The ``k`` best (id, score): highest score first, ties by the smaller id."""
    return heapq.nsmallest(k, ((item, score) for item, score in scores.items()), key=lambda p: (-p[1], p[0]))


# --------------------------------------------------------------------------
# Suggested stories
# --------------------------------------------------------------------------
def map_co_clicks(clicks: Iterable[tuple[int, int]]) -> PairCounts:
    """Count, for one partition of users, how many of them clicked each pair of stories.

    ``clicks`` are (user id, story id) rows, repeats allowed (a user who
    clicked a story twice still counts once). Each unordered pair is counted
    once per user, under :func:`pair_key`.
    """
    stories_by_user: dict[int, set[int]] = defaultdict(set)
    for user_id, story_id in clicks:
        stories_by_user[user_id].add(story_id)
    counts: Counter[int] = Counter()
    for stories in stories_by_user.values():
        ordered = sorted(stories)
        # combinations() of a sorted list yields (a, b) with a < b, so the key
        # is a << 32 | b without a comparison per pair; Counter.update over an
        # iterable counts in C.
        counts.update((a << _SHIFT) | b for a, b in itertools.combinations(ordered, 2))
    return {"k": list(counts.keys()), "n": list(counts.values())}


def merge_pair_counts(partials: Iterable[PairCounts]) -> Counter[int]:
    """The reduce's first half: add the partitions' counts of each pair."""
    total: Counter[int] = Counter()
    for partial in partials:
        for key, count in zip(partial["k"], partial["n"]):
            total[key] += count
    return total


def rank_co_clicks(totals: Mapping[int, int], k: int = TOP_K) -> dict[int, Ranked]:
    """The reduce's second half: for every story, its ``k`` most co-clicked stories."""
    neighbours: dict[int, dict[int, int]] = defaultdict(dict)
    for key, count in totals.items():
        a, b = key >> _SHIFT, key & _MASK
        neighbours[a][b] = count
        neighbours[b][a] = count
    return {story: top_k(scores, k) for story, scores in neighbours.items()}


def reduce_co_clicks(partials: Iterable[PairCounts], k: int = TOP_K) -> dict[int, Ranked]:
    """Suggested stories from every partition's pair counts."""
    return rank_co_clicks(merge_pair_counts(partials), k)


# --------------------------------------------------------------------------
# People you may follow
# --------------------------------------------------------------------------
def map_friends_of_friends(
    users: Iterable[int], following: Mapping[int, Sequence[int] | set[int]], k: int = TOP_K
) -> FollowRows:
    """Friends-of-friends suggestions for ``users`` (one partition).

    ``following`` maps a user to the users they follow; it must cover every
    user in ``users`` and every user they follow (their lists are the second
    hop).
    """
    out: FollowRows = {"user": [], "suggested": [], "score": []}
    for user in users:
        followees = following.get(user, ())
        excluded = set(followees)
        excluded.add(user)
        scores: Counter[int] = Counter()
        for followee in followees:
            scores.update(c for c in following.get(followee, ()) if c not in excluded)
        for suggested, score in top_k(scores, k):
            out["user"].append(user)
            out["suggested"].append(suggested)
            out["score"].append(score)
    return out


def reduce_friends_of_friends(partials: Iterable[FollowRows]) -> dict[int, Ranked]:
    """Gather the partitions' lists (each user is in exactly one partition)."""
    result: dict[int, Ranked] = defaultdict(list)
    for partial in partials:
        for user, suggested, score in zip(partial["user"], partial["suggested"], partial["score"]):
            result[user].append((suggested, score))
    return dict(result)


def ranked_rows(result: Mapping[int, Ranked]) -> list[RowTuple]:
    """(owner, suggested, score, rank) rows, rank from 1, ordered by owner and rank."""
    return [
        (owner, suggested, score, rank)
        for owner in sorted(result)
        for rank, (suggested, score) in enumerate(result[owner], start=1)
    ]


def rows_digest(rows: Iterable[RowTuple]) -> str:
    """A short fingerprint of result rows, to compare two computations without shipping them."""
    digest = hashlib.sha256()
    for row in rows:
        digest.update(("%d,%d,%d,%d;" % row).encode())
    return digest.hexdigest()[:16]
