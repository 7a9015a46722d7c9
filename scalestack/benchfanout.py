"""The fan-out study of the benchmark (issue 7): from "posted" to "in every follower's timeline".

The post's "Message queues" section: "perform enough work in-line to make it
appear to the user that the task has completed, and tie up hanging ends
afterwards". Posting a story does the in-line part (the story, and the
author's own timeline entry, in one transaction) and acknowledges; the fan-out
consumers (``consumers/fanout.py``) tie up the loose ends off-line, writing one
``timeline_entries`` row per follower in chunks, each chunk's continuation
queued behind everyone else's work. The price of answering at once is that a
follower sees the story a little later, and the more followers the author has,
the later the last of them does. This module measures that price for authors
with 10, 1,000 and 10,000 followers.

What is measured, per post:

* **ack**: how long ``POST /v1/stories`` took through HAProxy's platform pool
  (the real write path: service token, ``Idempotency-Key``, outbox publish).
* **p50, p99, all**: the time, counted from the moment the API acknowledged the
  post, by which 50 %, 99 % and 100 % of the author's followers could see the
  story, i.e. had their ``timeline_entries`` row committed. It is the nearest-
  rank percentile of the followers' individual delays, so p50 with 10
  followers is the time at which the 5th one had it. A poller counts the rows
  on the primary (``SELECT count(*) ... WHERE story_id = %s``, on the
  ``story_id`` foreign-key index, leaving out the author's own entry, which
  is written in-line) every ``poll_interval`` seconds; each figure is the
  elapsed time of the first poll that saw enough rows, taken once the poll's
  answer arrived. That is an upper bound, late by at most one poll
  interval plus one query, which is the study's resolution (reported as
  ``resolution_ms``, the median time between two polls). Rows committed
  before the ack reached the client (the platform publishes the event before
  it answers) count at the first poll.
* **api**: once every row is in, the last follower's home timeline is read
  through the platform API (the real read path: memcached, generation-keyed
  lists, the read pool) until the story is on it: visibility through the
  cache, not only in the table. The last follower, because the consumers walk
  followers in id order, so theirs is the last chunk written.

Posts are sequential: the next one is sent once the previous one is visible
everywhere. Each chunk's continuation is queued only once the chunk has
committed, so the chunks of one post are written one after another, and the
last follower's delay grows with the number of chunks: the figures carry the
topology's chunk size (500; the test profiles use 50, so that tests cross
chunks) and the count of chunks and events. Over the posts each figure is
reported as the median, plus the maximum for "all" and "api"; the ack as its
median.

The followers are synthetic users made with set-based SQL (setup is not what
is measured), shared between authors: ``bench_author_10`` is followed by
``bench_follower_1`` to ``_10``, ``bench_author_1000`` by the first 1,000, and
so on. They keep the site consistent (counters, unusable passwords), and
:func:`cleanup` removes every row the study made and the cache entries that
name them. The study asserts nothing about speed; it reports.
"""
from __future__ import annotations

import logging
import math
import statistics
import time
import uuid
from dataclasses import dataclass, field
from typing import Iterable, NamedTuple, Sequence

import psycopg
import requests
import tenacity
from pymemcache.client.base import Client as MemcacheClient

from platform_api import cache_keys, messaging
from scalestack import bench, stack
from scalestack.topology import Topology

log = logging.getLogger(__name__)

AUTHOR_PREFIX = "bench_author_"
FOLLOWER_PREFIX = "bench_follower_"
# Every idempotency key the study sends starts with this, so cleanup can find its rows.
IDEMPOTENCY_PREFIX = "bench-fanout-"
# The platform's chunk size when the topology does not set one
# (``FANOUT_CHUNK_SIZE`` in platform/platform_api/settings.py; the test
# profiles set ``SCALESTACK_FANOUT_CHUNK`` to 50 so that tests cross chunks).
PLATFORM_DEFAULT_CHUNK = 500
DEFAULT_POLL_INTERVAL = 0.01
DEFAULT_TIMEOUT = 120.0
HTTP_TIMEOUT = 10.0
# RabbitMQ's management API refreshes a queue's message count every
# ``collect_statistics_interval`` (5 s by default, which rabbitmq.conf.j2 keeps);
# a count is only trusted if it was sampled after the last fan-out ended.
QUEUE_STATS_LAG = 6.0
QUEUE_DRAIN_TIMEOUT = 60.0
# The study's usernames (a POSIX regular expression for PostgreSQL's ``~``).
BENCH_NAME_PATTERN = f"^({AUTHOR_PREFIX}|{FOLLOWER_PREFIX})[0-9]+$"



def bench_user(alias: str = "") -> str:
    """The SQL condition that a ``users`` row (``alias.``-qualified if given) is a bench user.

    One of the study's names *and* a password nobody can sign in with
    (Django's unusable ``!...`` hash), so that an account someone signed up
    with such a name is never adopted by :func:`prepare` nor deleted by
    :func:`cleanup`.
    """
    column = f"{alias}." if alias else ""
    return f"{column}username ~ '{BENCH_NAME_PATTERN}' AND starts_with({column}password, '!')"


class FanoutTimeout(stack.StackError):
    """A post was not visible to every follower (or through the API) within the timeout."""


class Sample(NamedTuple):
    """One poll: seconds since the ack, and how many followers' rows were committed."""

    elapsed: float
    count: int


@dataclass(frozen=True)
class PostTiming:
    """One post's figures, in milliseconds from the API's acknowledgement (ack: from the request)."""

    story_id: int
    ack_ms: float
    p50_ms: float
    p99_ms: float
    all_ms: float
    api_ms: float
    polls: int
    resolution_ms: float


@dataclass(frozen=True)
class FanoutResult:
    """One author's figures over ``posts`` posts (see the module docstring).

    ``chunks`` is how many chunks carry followers, ``messages`` how many
    fan-out events the consumers handle per post (a full last chunk is
    followed by an empty continuation that ends the chain).
    """

    followers: int
    posts: int
    chunk_size: int
    chunks: int
    messages: int
    ack_p50_ms: float
    visible_p50_ms: float
    visible_p99_ms: float
    all_visible_ms: float
    all_visible_max_ms: float
    api_visible_ms: float
    api_visible_max_ms: float
    poll_interval_ms: float
    resolution_ms: float
    per_post: list[PostTiming] = field(default_factory=list)


# --------------------------------------------------------------------------
# The arithmetic (pure, unit-tested)
# --------------------------------------------------------------------------
def followers_needed(followers: int, percent: int) -> int:
    """How many followers make ``percent`` % of ``followers``, rounded up (nearest rank).

    Integer arithmetic: ``math.ceil(0.99 * n)`` can be off by one in floating point.
    """
    if followers < 1:
        raise ValueError("an author needs at least one follower to be measured")
    if not 0 < percent <= 100:
        raise ValueError("percent must be in (0, 100]")
    return -(-followers * percent // 100)


def time_to_reach(samples: Sequence[Sample], needed: int) -> float | None:
    """Elapsed time of the first poll that counted at least ``needed`` rows; ``None`` if none did."""
    return next((sample.elapsed for sample in samples if sample.count >= needed), None)


def visibility(samples: Sequence[Sample], followers: int) -> tuple[float, float, float]:
    """(p50, p99, all) in seconds after the ack, from one post's polls.

    Raises ``ValueError`` if the polls never saw every follower.
    """
    times = [time_to_reach(samples, followers_needed(followers, p)) for p in (50, 99, 100)]
    if any(t is None for t in times):
        seen = max((s.count for s in samples), default=0)
        raise ValueError(f"the polls saw at most {seen} of {followers} followers")
    p50, p99, every = times
    return p50, p99, every  # type: ignore[return-value]


def resolution(samples: Sequence[Sample]) -> float:
    """The median time between two polls (seconds): how precise the figures are."""
    gaps = [later.elapsed - earlier.elapsed for earlier, later in zip(samples, samples[1:])]
    return statistics.median(gaps) if gaps else 0.0


def chunk_count(followers: int, chunk_size: int) -> int:
    """How many chunks of at most ``chunk_size`` carry an author's ``followers``."""
    if chunk_size < 1:
        raise ValueError("chunk_size must be at least 1")
    return math.ceil(followers / chunk_size)


def message_count(followers: int, chunk_size: int) -> int:
    """Fan-out events per post: one per chunk, plus an empty one after a full last chunk.

    The consumer cannot tell a full chunk from the last one, so it queues a
    continuation after every full chunk (``payloads.next_chunk_after``).
    """
    if chunk_size < 1:
        raise ValueError("chunk_size must be at least 1")
    return followers // chunk_size + 1


def summarise(followers: int, chunk_size: int, poll_interval: float, timings: Sequence[PostTiming]) -> FanoutResult:
    """Medians (and maxima) over the posts of one author."""
    if not timings:
        raise ValueError("no posts to summarise")

    def median(values: Iterable[float]) -> float:
        return round(statistics.median(values), 1)

    return FanoutResult(
        followers=followers,
        posts=len(timings),
        chunk_size=chunk_size,
        chunks=chunk_count(followers, chunk_size),
        messages=message_count(followers, chunk_size),
        ack_p50_ms=median(t.ack_ms for t in timings),
        visible_p50_ms=median(t.p50_ms for t in timings),
        visible_p99_ms=median(t.p99_ms for t in timings),
        all_visible_ms=median(t.all_ms for t in timings),
        all_visible_max_ms=max(t.all_ms for t in timings),
        api_visible_ms=median(t.api_ms for t in timings),
        api_visible_max_ms=max(t.api_ms for t in timings),
        poll_interval_ms=round(poll_interval * 1000, 1),
        resolution_ms=median(t.resolution_ms for t in timings),
        per_post=list(timings),
    )


def mangle(prefix: str, key: str) -> str:
    """The memcached key the platform stores ``key`` under, given its ``CACHE_KEY_PREFIX``.

    ``cache_keys.mangle`` without Django's settings. Every key this module
    touches is short ASCII, so its hashed form never applies.
    """
    return f"{prefix}:{cache_keys.KEY_SCHEMA_VERSION}:{key}"


def fanout_chunk_size(t: Topology) -> int:
    """The fan-out consumers' chunk size on this topology."""
    return int(t.schedule_env().get("SCALESTACK_FANOUT_CHUNK", PLATFORM_DEFAULT_CHUNK))


# --------------------------------------------------------------------------
# Connections
# --------------------------------------------------------------------------
def _connect(t: Topology) -> psycopg.Connection:
    """The application role on the primary itself (not through HAProxy), in autocommit.

    Autocommit, so that every poll is its own snapshot and sees each chunk the
    moment it commits.
    """
    return psycopg.connect(t.database_url(t.postgres.port), autocommit=True, connect_timeout=5)


def _api(t: Topology) -> requests.Session:
    """A platform API client with the service token, sending from the load generator's address."""
    session = bench.load_generator_session()
    session.headers["Authorization"] = f"Bearer {t.secrets()['PLATFORM_TOKEN']}"
    return session


class _Invalidation:
    """Cache entries to drop and list generations to bump, applied on every memcached node.

    Every node, not the one the platform's hash picks: while a node is marked
    dead the platform's client moves its keys to the others, so a key may sit
    on either. ``incr`` on a node that lacks the counter does nothing, and a
    counter that is missing everywhere needs no bump (the next reader starts a
    new, time-based generation).
    """

    def __init__(self, t: Topology) -> None:
        self.t = t
        self.keys: list[str] = []
        self.generations: list[str] = []

    def users(self, rows: Iterable[tuple[int, str]]) -> None:
        """A user's object and its name's id (both cached as objects, by id and by name)."""
        for user_id, username in rows:
            self.keys += [cache_keys.user_cache_key(user_id), cache_keys.user_id_by_username_cache_key(username)]

    def apply(self) -> None:
        """Send everything (noreply, pipelined), then one round trip per node so it has all been applied."""
        if not self.t.data_cache or not (self.keys or self.generations):
            return
        prefix = self.t.platform_env()["CACHE_KEY_PREFIX"]
        keys = [mangle(prefix, key) for key in self.keys]
        counters = [mangle(prefix, cache_keys.generation_cache_key(name)) for name in self.generations]
        for node in self.t.memcached:
            client = MemcacheClient((node.host, node.port), connect_timeout=2, timeout=5)
            try:
                client.delete_many(keys, noreply=True)
                for counter in counters:
                    client.incr(counter, 1, noreply=True)
                # memcached answers a connection's commands in order: this reply
                # means every command before it has been applied.
                client.version()
            finally:
                client.close()


# --------------------------------------------------------------------------
# Prepare
# --------------------------------------------------------------------------
INSERT_USERS_SQL = """
    INSERT INTO users (password, is_superuser, username, first_name, last_name, email, is_staff,
                       is_active, date_joined, followers_count, following_count, stories_count,
                       karma, version, avatar)
    SELECT '!' || md5(random()::text || i), false, %(prefix)s || i, '', '', '', false,
           true, now(), 0, 0, 0, 0, 1, ''
    FROM {source} AS i
    ON CONFLICT DO NOTHING
    RETURNING id, username
"""
INSERT_FOLLOWS_SQL = """
    INSERT INTO follows (follower_id, followee_id, created_at)
    SELECT f.id, %(author)s, now()
    FROM generate_series(1, %(n)s) AS i
    JOIN users f ON f.username = %(prefix)s || i AND starts_with(f.password, '!')
    ON CONFLICT DO NOTHING
"""
# Counters from the follows table itself, for every bench user whose counters
# differ: right whatever an earlier, interrupted run left behind.
RECOUNT_SQL = f"""
    UPDATE users u
       SET followers_count = c.followers, following_count = c.following, version = u.version + 1
      FROM (SELECT b.id,
                   (SELECT count(*) FROM follows WHERE followee_id = b.id) AS followers,
                   (SELECT count(*) FROM follows WHERE follower_id = b.id) AS following
              FROM users b WHERE {bench_user("b")}) c
     WHERE u.id = c.id
       AND (u.followers_count, u.following_count) IS DISTINCT FROM (c.followers, c.following)
    RETURNING u.id, u.username
"""


def prepare(t: Topology, follower_counts: Sequence[int]) -> dict[int, int]:
    """Make ``bench_author_<N>`` with exactly N followers for each N; return ``{N: author id}``.

    Idempotent: existing bench users and follows are kept, missing ones made,
    and counters recounted. Followers are shared (``bench_follower_1`` to
    ``_<N>``) and made with ``generate_series`` in one transaction on the
    primary, with every NOT NULL column filled as Django would and an
    unusable password. Raises :class:`stack.StackError` if an author ends up
    with another number of followers (someone followed it through the site).
    """
    counts = sorted(set(follower_counts))
    if not counts or counts[0] < 1:
        raise ValueError("follower counts must be positive")
    invalidate = _Invalidation(t)
    with _connect(t) as conn, conn.transaction():
        made = conn.execute(
            INSERT_USERS_SQL.format(source="generate_series(1, %(n)s)"),
            {"prefix": FOLLOWER_PREFIX, "n": counts[-1]},
        ).fetchall()
        made += conn.execute(
            INSERT_USERS_SQL.format(source="unnest(%(n)s::int[])"), {"prefix": AUTHOR_PREFIX, "n": counts}
        ).fetchall()
        authors = dict(conn.execute(
            f"SELECT username, id FROM users WHERE username = ANY(%(names)s) AND {bench_user()}",
            {"names": [f"{AUTHOR_PREFIX}{n}" for n in counts]},
        ).fetchall())
        missing = [n for n in counts if f"{AUTHOR_PREFIX}{n}" not in authors]
        if missing:
            raise stack.StackError(f"the names {[AUTHOR_PREFIX + str(n) for n in missing]} belong to real accounts")
        author_ids = {n: authors[f"{AUTHOR_PREFIX}{n}"] for n in counts}
        for n, author_id in author_ids.items():
            conn.execute(INSERT_FOLLOWS_SQL, {"author": author_id, "n": n, "prefix": FOLLOWER_PREFIX})
        recounted = conn.execute(RECOUNT_SQL).fetchall()
        followers_of = dict(conn.execute(
            "SELECT id, followers_count FROM users WHERE id = ANY(%(ids)s)", {"ids": list(author_ids.values())}
        ).fetchall())
        wrong = {n: followers_of[i] for n, i in author_ids.items() if followers_of[i] != n}
        if wrong:
            raise stack.StackError(f"bench authors with another number of followers ({{wanted: got}}: {wrong}); "
                                   "someone followed them through the site: run cleanup first")
    # Committed: the new rows and the recounted ones must not be served from an
    # older cached object (or a cached "absent"), nor from older follower lists.
    invalidate.users(made + recounted)
    invalidate.generations += [cache_keys.user_follows_generation(user_id) for user_id, _ in recounted]
    invalidate.apply()
    return author_ids


# --------------------------------------------------------------------------
# Measure
# --------------------------------------------------------------------------
COUNT_SQL = "SELECT count(*) FROM timeline_entries WHERE story_id = %s AND user_id <> %s"


def _post(api: requests.Session, t: Topology, author_id: int, title: str) -> tuple[int, float, float]:
    """Post a story through the platform pool; (story id, seconds it took, monotonic time of the ack)."""
    started = time.monotonic()
    response = api.post(
        f"{t.platform_url}/v1/stories",
        json={"author_id": author_id, "title": title, "text": "A story posted by the fan-out study."},
        headers={"Idempotency-Key": f"{IDEMPOTENCY_PREFIX}{uuid.uuid4().hex}"},
        timeout=HTTP_TIMEOUT,
    )
    acked = time.monotonic()
    if response.status_code != 201:
        raise stack.StackError(f"posting as user {author_id} failed: HTTP {response.status_code} {response.text[:300]}")
    return int(response.json()["id"]), acked - started, acked


def _poll_until_everyone(conn: psycopg.Connection, story_id: int, author_id: int, followers: int,
                         acked: float, interval: float, timeout: float) -> list[Sample]:
    """Count the story's follower rows every ``interval`` s until all are in; every poll, timed."""
    samples: list[Sample] = []
    while True:
        polled = time.monotonic()
        count = conn.execute(COUNT_SQL, (story_id, author_id)).fetchone()[0]  # type: ignore[index]
        # Timed once the answer is here: rows committed during the query may or
        # may not be in it, so this is the conservative (later) end.
        now = time.monotonic()
        samples.append(Sample(now - acked, count))
        if count >= followers:
            return samples
        if now - acked > timeout:
            raise FanoutTimeout(f"story {story_id}: {count} of {followers} followers had it after {timeout:.0f} s")
        time.sleep(max(0.0, interval - (now - polled)))


def _wait_for_api(api: requests.Session, t: Topology, follower_id: int, story_id: int,
                  acked: float, interval: float, timeout: float) -> float:
    """Read ``follower_id``'s home timeline through the API until the story is on it; seconds since the ack."""

    def on_home() -> bool:
        response = api.get(f"{t.platform_url}/v1/users/{follower_id}/home", timeout=HTTP_TIMEOUT)
        response.raise_for_status()
        return any(item["id"] == story_id for item in response.json()["items"])

    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_result(lambda found: not found),
        wait=tenacity.wait_fixed(interval),
        stop=tenacity.stop_after_delay(max(0.0, timeout - (time.monotonic() - acked))),
    )
    try:
        retrying(on_home)
    except tenacity.RetryError as exc:
        raise FanoutTimeout(f"story {story_id} is in the table but not on user {follower_id}'s home "
                            f"timeline through the API after {timeout:.0f} s") from exc
    return time.monotonic() - acked


def measure(t: Topology, author_id: int, followers: int, posts: int, *,
            poll_interval: float = DEFAULT_POLL_INTERVAL, timeout: float = DEFAULT_TIMEOUT) -> FanoutResult:
    """Post ``posts`` stories as ``author_id`` one after another and time their fan-out to ``followers``.

    See the module docstring for what each figure means. ``timeout`` bounds
    each post (from its ack to the API read that shows it); past it,
    :class:`FanoutTimeout` says how far the fan-out got.
    """
    if posts < 1:
        raise ValueError("posts must be at least 1")
    api = _api(t)
    timings: list[PostTiming] = []
    with _connect(t) as conn:
        row = conn.execute("SELECT count(*), max(follower_id) FROM follows WHERE followee_id = %s",
                           (author_id,)).fetchone()
        if row is None or row[0] != followers:
            raise stack.StackError(f"user {author_id} has {row and row[0]} followers, not {followers}; run prepare")
        last_follower = int(row[1])
        for number in range(1, posts + 1):
            story_id, ack, acked = _post(api, t, author_id, f"Fan-out study: {followers} followers, post {number}")
            samples = _poll_until_everyone(conn, story_id, author_id, followers, acked, poll_interval, timeout)
            api_seconds = _wait_for_api(api, t, last_follower, story_id, acked, poll_interval, timeout)
            p50, p99, every = visibility(samples, followers)
            timings.append(PostTiming(
                story_id=story_id, ack_ms=round(ack * 1000, 1), p50_ms=round(p50 * 1000, 1),
                p99_ms=round(p99 * 1000, 1), all_ms=round(every * 1000, 1), api_ms=round(api_seconds * 1000, 1),
                polls=len(samples), resolution_ms=round(resolution(samples) * 1000, 1),
            ))
    return summarise(followers, fanout_chunk_size(t), poll_interval, timings)


# --------------------------------------------------------------------------
# Cleanup
# --------------------------------------------------------------------------
def _fanout_queue_depth(t: Topology) -> int | None:
    """Messages (ready and unacknowledged) in the fan-out queue, per the management API."""
    queue = stack.rabbitmq_api(t, f"queues/%2F/{messaging.QUEUES['fanout'].name}")
    return int(queue.get("messages", 0)) if isinstance(queue, dict) else None


def wait_for_fanout_to_settle(t: Topology, since: float, timeout: float = QUEUE_DRAIN_TIMEOUT) -> bool:
    """Wait until the fan-out queue is empty in a count sampled after ``since`` (monotonic).

    A full last chunk leaves one empty continuation behind it: once its story
    is deleted the consumers would refuse it into ``fanout.dead``. Returns
    whether the queue settled; after ``timeout`` (other traffic keeps it busy)
    it gives up and says so rather than block cleanup.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if time.monotonic() >= since + QUEUE_STATS_LAG and _fanout_queue_depth(t) == 0:
            return True
        time.sleep(0.5)
    return False


# What to remove: our users, their stories, and the other users whose
# counters or cached lists change because a follow with ours disappears.
SELECT_SQL = [
    f"CREATE TEMP TABLE bench_users ON COMMIT DROP AS SELECT id, username FROM users WHERE {bench_user()}",
    "CREATE TEMP TABLE bench_stories ON COMMIT DROP AS "
    "SELECT s.id FROM stories s JOIN bench_users b ON s.author_id = b.id",
    "CREATE TEMP TABLE touched_users ON COMMIT DROP AS "
    "SELECT follower_id AS id FROM follows WHERE followee_id IN (SELECT id FROM bench_users) "
    "UNION SELECT followee_id FROM follows WHERE follower_id IN (SELECT id FROM bench_users) "
    "UNION SELECT user_id FROM timeline_entries WHERE story_id IN (SELECT id FROM bench_stories) "
    "EXCEPT SELECT id FROM bench_users",
    # Thousands of rows in tables the planner knows nothing about yet.
    "ANALYZE bench_users, bench_stories, touched_users",
]
BENCH_STORY = "IN (SELECT id FROM bench_stories)"
BENCH_USER_ID = "IN (SELECT id FROM bench_users)"
# Children before parents: Django's on_delete=CASCADE lives in Python, not in
# the database, where every foreign key is a plain NO ACTION constraint.
DELETES: list[tuple[str, str]] = [
    ("timeline_entries", f"story_id {BENCH_STORY} OR user_id {BENCH_USER_ID}"),
    ("votes", f"story_id {BENCH_STORY} OR user_id {BENCH_USER_ID}"),
    ("clicks", f"story_id {BENCH_STORY}"),
    ("trending_stories", f"story_id {BENCH_STORY}"),
    ("suggested_stories", f"story_id {BENCH_STORY} OR suggested_id {BENCH_STORY}"),
    ("follow_suggestions", f"user_id {BENCH_USER_ID} OR suggested_id {BENCH_USER_ID}"),
    ("export_jobs", f"user_id {BENCH_USER_ID}"),
    ("follows", f"follower_id {BENCH_USER_ID} OR followee_id {BENCH_USER_ID}"),
    ("stories", f"id {BENCH_STORY}"),
    # Rows without a foreign key that still name the study's writes: the
    # stories' events (an unpublished one would be relayed for a story that
    # is gone) and the posts' idempotency keys.
    ("outbox_events", f"routing_key = '{messaging.STORY_CREATED}' "
                      f"AND (payload->>'author_id')::bigint {BENCH_USER_ID}"),
    ("idempotency_keys", f"starts_with(key, '{IDEMPOTENCY_PREFIX}')"),
    ("users_groups", f"user_id {BENCH_USER_ID}"),
    ("users_user_permissions", f"user_id {BENCH_USER_ID}"),
    ("users", f"id {BENCH_USER_ID}"),
]
# Anyone else who followed or was followed by a bench user: recount from the table.
RECOUNT_TOUCHED_SQL = """
    UPDATE users u
       SET followers_count = (SELECT count(*) FROM follows WHERE followee_id = u.id),
           following_count = (SELECT count(*) FROM follows WHERE follower_id = u.id),
           version = u.version + 1
     WHERE u.id IN (SELECT id FROM touched_users)
"""


@dataclass(frozen=True)
class Cleaned:
    """What :func:`cleanup` removed: bench users and stories, and rows deleted per table."""

    users: int
    stories: int
    touched_users: int
    rows: dict[str, int]


def cleanup(t: Topology) -> Cleaned:
    """Remove everything the study made, in one transaction on the primary, then its cache entries.

    Rows go children first (the database has no cascades): timeline entries,
    votes, clicks, trending and suggestion rows naming bench stories or users,
    export jobs, follows, the stories, their ``story.created`` outbox events,
    the posts' idempotency keys, then the bench users (those with a bench name
    *and* an unusable password, so a real account is never touched). A user
    outside the study who followed or was followed by a bench user has its
    counters recounted. Then the cache forgets the deleted users (by id and by
    name), the stories, and the touched users, and the ``new``/``top`` lists
    (trending and suggestions too, if rows went) move to a new generation, so
    no cached page lists a deleted story. Idempotent: a second call finds
    nothing. Run it when no fan-out of a bench story is still queued
    (:func:`wait_for_fanout_to_settle`), or the consumers will dead-letter it.
    """
    with _connect(t) as conn, conn.transaction():
        cursor = conn.cursor()
        for statement in SELECT_SQL:
            cursor.execute(statement)
        users = cursor.execute("SELECT id, username FROM bench_users").fetchall()
        stories = [story_id for (story_id,) in cursor.execute("SELECT id FROM bench_stories")]
        touched = [user_id for (user_id,) in cursor.execute("SELECT id FROM touched_users")]
        rows = {}
        for table, condition in DELETES:
            rows[table] = cursor.execute(f"DELETE FROM {table} WHERE {condition}").rowcount
        cursor.execute(RECOUNT_TOUCHED_SQL)
    invalidate = _Invalidation(t)
    invalidate.users(users)
    invalidate.keys += [key for story_id in stories
                        for key in (cache_keys.story_cache_key(story_id), cache_keys.story_clicks_cache_key(story_id))]
    invalidate.keys += [cache_keys.user_cache_key(user_id) for user_id in touched]
    invalidate.generations += [name for user_id in touched for name in (
        cache_keys.user_follows_generation(user_id), cache_keys.user_home_generation(user_id))]
    if stories:
        invalidate.generations.append(cache_keys.STORIES_GENERATION)
    if rows["trending_stories"]:
        invalidate.generations.append(cache_keys.TRENDING_GENERATION)
    if rows["suggested_stories"] or rows["follow_suggestions"]:
        invalidate.generations.append(cache_keys.SUGGESTIONS_GENERATION)
    invalidate.apply()
    return Cleaned(users=len(users), stories=len(stories), touched_users=len(touched), rows=rows)


# --------------------------------------------------------------------------
# The study
# --------------------------------------------------------------------------
def run(t: Topology, follower_counts: Sequence[int] = (10, 1_000, 10_000), posts: int = 5, *,
        poll_interval: float = DEFAULT_POLL_INTERVAL, timeout: float = DEFAULT_TIMEOUT) -> list[FanoutResult]:
    """Prepare the authors, measure each (smallest first), and always clean up."""
    if not stack.http_ok("127.0.0.1", t.platform_pool_port, "/v1/healthz"):
        raise stack.StackError(f"no platform answers on :{t.platform_pool_port}; start the stack first")
    results: list[FanoutResult] = []
    try:
        authors = prepare(t, follower_counts)
        for followers in sorted(authors):
            results.append(measure(t, authors[followers], followers, posts,
                                   poll_interval=poll_interval, timeout=timeout))
    finally:
        # Let the last empty continuation go through before its story goes.
        if not wait_for_fanout_to_settle(t, since=time.monotonic()):
            log.warning("the fan-out queue is still busy; cleaning up anyway (a bench event may be dead-lettered)")
        cleanup(t)
    return results
