"""The map-reduce jobs' answers as ONE plain SQL query each: the ground truth.

The post's "Map-reduce": "For sufficiently small systems you can often get
away with adhoc queries on a SQL database". These are those queries. Tests
check that the map-reduce output equals them, and ``manage.py
mapreduce_bench`` times them against the map-reduce jobs to find where one
beats the other.

Both return ``(owner id, suggested id, score, rank)`` rows ordered by owner and
rank, with the same tie rule as the map-reduce (higher score first, then the
smaller id), so the two results can be compared row for row.
"""
from __future__ import annotations

from typing import Any

# Source tables a job may read: the real ones, and the scaled copies that
# ``mapreduce_bench --scale`` builds. Table names cannot be query parameters,
# so they are only ever taken from these sets.
CLICK_SOURCES = frozenset({"clicks", "mapreduce_bench_clicks"})
FOLLOW_SOURCES = frozenset({"follows", "mapreduce_bench_follows"})
TOP_K = 10

# Each unordered pair is counted once (b > a) and then listed both ways: half
# the join and aggregation work of counting (a, b) and (b, a) separately, as
# the map does too, so neither side is given more work than it needs.
SUGGESTED_STORIES_SQL = """
WITH user_story AS (
    SELECT DISTINCT user_id, story_id FROM {clicks} WHERE user_id IS NOT NULL
), pairs AS (
    SELECT a.story_id AS a, b.story_id AS b, count(*) AS score
    FROM user_story a
    JOIN user_story b ON b.user_id = a.user_id AND b.story_id > a.story_id
    GROUP BY a.story_id, b.story_id
), both_ways AS (
    SELECT a AS story_id, b AS suggested_id, score FROM pairs
    UNION ALL
    SELECT b, a, score FROM pairs
), ranked AS (
    SELECT story_id, suggested_id, score,
           row_number() OVER (PARTITION BY story_id ORDER BY score DESC, suggested_id) AS rank
    FROM both_ways
)
SELECT story_id, suggested_id, score, rank FROM ranked WHERE rank <= %(k)s ORDER BY story_id, rank
"""

FOLLOW_SUGGESTIONS_SQL = """
WITH candidates AS (
    SELECT f1.follower_id AS user_id, f2.followee_id AS suggested_id, count(*) AS score
    FROM {follows} f1
    JOIN {follows} f2 ON f2.follower_id = f1.followee_id
    WHERE f2.followee_id <> f1.follower_id
      AND NOT EXISTS (
          SELECT 1 FROM {follows} f3 WHERE f3.follower_id = f1.follower_id AND f3.followee_id = f2.followee_id
      )
    GROUP BY f1.follower_id, f2.followee_id
), ranked AS (
    SELECT user_id, suggested_id, score,
           row_number() OVER (PARTITION BY user_id ORDER BY score DESC, suggested_id) AS rank
    FROM candidates
)
SELECT user_id, suggested_id, score, rank FROM ranked WHERE rank <= %(k)s ORDER BY user_id, rank
"""


def suggested_stories_sql(source: str = "clicks") -> str:
    """The suggested-stories query over ``source`` (one of :data:`CLICK_SOURCES`)."""
    if source not in CLICK_SOURCES:
        raise ValueError(f"unknown click source {source!r}")
    return SUGGESTED_STORIES_SQL.format(clicks=source)


def follow_suggestions_sql(source: str = "follows") -> str:
    """The people-you-may-follow query over ``source`` (one of :data:`FOLLOW_SOURCES`)."""
    if source not in FOLLOW_SOURCES:
        raise ValueError(f"unknown follow source {source!r}")
    return FOLLOW_SUGGESTIONS_SQL.format(follows=source)


def run(cursor: Any, job: str, source: str | None = None, k: int = TOP_K) -> list[tuple[int, int, int, int]]:
    """Run one job's ground-truth query on a DB-API ``cursor``; ``job`` is "suggested" or "follows"."""
    if job == "suggested":
        sql = suggested_stories_sql(source or "clicks")
    elif job == "follows":
        sql = follow_suggestions_sql(source or "follows")
    else:
        raise ValueError(f"unknown job {job!r}")
    cursor.execute(sql, {"k": k})
    return [tuple(int(v) for v in row) for row in cursor.fetchall()]  # type: ignore[misc]
