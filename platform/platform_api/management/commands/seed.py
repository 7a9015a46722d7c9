"""``manage.py seed``: load a deterministic demo site into PostgreSQL, fast.

The rows come from :func:`platform_api.seed_data.generate`; this command only
loads them: ``COPY`` through the raw psycopg connection (tens of thousands of
rows a second, where the ORM would manage hundreds), then the denormalised
counters in one ``UPDATE ... FROM (aggregate)`` per counter, then the
sequences. It writes behind the data cache's back, so it empties the cache
afterwards (post, "Cache invalidation": a write that bypasses the write-through
path must not leave old values to be read).

Then it does at once what the off-line machinery would otherwise do over the
next hour (post, "Off-line processing"), so every page has data on first
start: every story goes into its author's and its followers' home timelines
(one ``INSERT ... SELECT``, the fan-out the consumers do one story at a time),
and the rollups, the trending list and both map-reduce indexes are computed by
the very functions the Celery tasks run, in this process: the seed runs before
the broker and the workers are up.
"""
from __future__ import annotations

import time
import zlib
from argparse import ArgumentParser
from datetime import timedelta
from typing import Any, Iterable, Sequence

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.core.management.base import BaseCommand, CommandError
from django.core.management.color import no_style
from django.db import connections, transaction
from django.utils import timezone
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from platform_api import cache, seed_data
from platform_api.models import Click, Follow, Story, User, Vote
from platform_api.tasks import mapreduce, rollups, trending
from platform_api.tasks.slots import floor_time

DEMO_PASSWORD = "password123"
DB = "default"
COPY_CHUNK = 2000  # rows between progress-bar updates

USER_COLUMNS = (
    "id", "password", "is_superuser", "username", "first_name", "last_name", "email", "is_staff", "is_active",
    "date_joined", "followers_count", "following_count", "stories_count", "karma", "version",
)
STORY_COLUMNS = ("id", "author_id", "title", "url", "text", "created_at", "votes", "version")
FOLLOW_COLUMNS = ("id", "follower_id", "followee_id", "created_at")
VOTE_COLUMNS = ("id", "story_id", "user_id", "created_at")
CLICK_COLUMNS = ("id", "event_id", "story_id", "user_id", "referrer_domain", "clicked_at")

# Fan-out on write, for the whole seeded site at once: each story in its
# author's own timeline and in every follower's.
TIMELINE_SQL = """
    INSERT INTO timeline_entries (user_id, story_id, author_id, created_at)
    SELECT s.author_id, s.id, s.author_id, s.created_at FROM stories s
    UNION ALL
    SELECT f.follower_id, s.id, s.author_id, s.created_at
    FROM follows f JOIN stories s ON s.author_id = f.followee_id
"""

# Each denormalised counter from its source table, one statement each.
COUNTER_UPDATES = (
    """UPDATE users SET stories_count = agg.n FROM
       (SELECT author_id, count(*) AS n FROM stories GROUP BY author_id) agg WHERE users.id = agg.author_id""",
    """UPDATE users SET followers_count = agg.n FROM
       (SELECT followee_id, count(*) AS n FROM follows GROUP BY followee_id) agg WHERE users.id = agg.followee_id""",
    """UPDATE users SET following_count = agg.n FROM
       (SELECT follower_id, count(*) AS n FROM follows GROUP BY follower_id) agg WHERE users.id = agg.follower_id""",
    """UPDATE stories SET votes = agg.n FROM
       (SELECT story_id, count(*) AS n FROM votes GROUP BY story_id) agg WHERE stories.id = agg.story_id""",
    """UPDATE users SET karma = agg.n FROM
       (SELECT author_id, sum(votes) AS n FROM stories GROUP BY author_id) agg WHERE users.id = agg.author_id""",
)
TABLES = ("votes", "follows", "stories", "users_groups", "users_user_permissions", "users")
# Tables derived from the seeded ones (most would go with CASCADE anyway;
# domain_visits has no foreign key, and old rollups must not outlive their clicks).
DERIVED_TABLES = (
    "clicks", "timeline_entries", "domain_visits", "trending_stories", "suggested_stories",
    "follow_suggestions", "export_jobs",
)


class Command(BaseCommand):
    """Replace the site's data with ~1,000 users, 10,000 stories, follows and votes."""

    help = (
        "Replace all users, stories, follows and votes with deterministic demo data "
        "(or, with --if-empty, do nothing when there are users), then empty the data cache."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        """``--users``, ``--stories``, ``--votes``, ``--seed`` and ``--if-empty``."""
        parser.add_argument("--users", type=int, default=1000, help="number of users (default 1000)")
        parser.add_argument("--stories", type=int, default=10_000, help="number of stories (default 10000)")
        parser.add_argument("--votes", type=int, default=None, help="number of votes (default 5 per story)")
        parser.add_argument(
            "--clicks", type=int, default=seed_data.CLICKS, help=f"number of clicks (default {seed_data.CLICKS})"
        )
        parser.add_argument("--seed", type=int, default=42, help="random seed: same seed, same site")
        parser.add_argument("--if-empty", action="store_true", help="do nothing if there are users already")

    def handle(self, *args: Any, **options: Any) -> None:
        """Generate, load, count, then empty the cache; print what was done."""
        if options["users"] < 2 or options["stories"] < 0:
            raise CommandError("--users must be at least 2 and --stories at least 0")
        if options["if_empty"] and User.objects.using(DB).exists():
            self.stdout.write("seed: users exist already; nothing to do (--if-empty)")
            return
        started = time.monotonic()
        data = seed_data.generate(
            users=options["users"],
            stories=options["stories"],
            votes=options["votes"],
            seed=options["seed"],
            clicks=options["clicks"],
        )
        generated = time.monotonic()
        self._load(data)
        loaded = time.monotonic()
        self._empty_cache()
        self._report(data, generated - started, loaded - generated, time.monotonic() - started)

    # ------------------------------------------------------------------
    def _load(self, data: seed_data.SeedData) -> None:
        """Replace every user, story, follow, vote and click, and everything derived, in one transaction.

        A failed seed leaves the database as it was. The ids start at 1 again,
        so the same seed always gives the same ids.
        """
        with Progress(
            TextColumn("{task.description:<10}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()
        ) as progress, transaction.atomic(using=DB):
            with connections[DB].cursor() as cursor:
                # Take the periodic jobs' locks before TRUNCATE's table locks, in
                # the order the jobs take them, so a re-seed of a running stack
                # waits for a running trending or map-reduce job instead of
                # deadlocking with it.
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [trending.LOCK_KEY])
                for job in ("suggested", "follows"):
                    cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)",
                                   [mapreduce.JOB_LOCK, zlib.crc32(job.encode()) & 0x7FFFFFFF])
                cursor.execute(f"TRUNCATE {', '.join(TABLES + DERIVED_TABLES)} RESTART IDENTITY CASCADE")
                raw = cursor.connection  # the psycopg connection, for COPY
                self._copy(raw, progress, "users", USER_COLUMNS, self._user_rows(data.users))
                self._copy(raw, progress, "stories", STORY_COLUMNS, ((*s, 0, 1) for s in data.stories))
                self._copy(raw, progress, "follows", FOLLOW_COLUMNS, data.follows)
                self._copy(raw, progress, "votes", VOTE_COLUMNS, data.votes)
                self._copy(raw, progress, "clicks", CLICK_COLUMNS, data.clicks)
                task = progress.add_task("counters", total=len(COUNTER_UPDATES) + 1)
                for statement in COUNTER_UPDATES:
                    cursor.execute(statement)
                    progress.advance(task)
                models = [User, Story, Follow, Vote, Click]
                for statement in connections[DB].ops.sequence_reset_sql(no_style(), models):
                    cursor.execute(statement)
                # Fresh statistics, so the planner uses the indexes at once
                # rather than after autovacuum's next pass.
                cursor.execute(f"ANALYZE {', '.join(TABLES + ('clicks',))}")
                progress.advance(task)
                self._offline(cursor, progress, data)

    def _offline(self, cursor: Any, progress: Progress, data: seed_data.SeedData) -> None:
        """Timelines, rollups, trending and both map-reduce indexes, inside the seed's transaction.

        The same functions as the Celery tasks, called directly; the maps read
        the primary, where this uncommitted transaction is visible.
        """
        task = progress.add_task("offline", total=6)
        cursor.execute(TIMELINE_SQL)
        cursor.execute("ANALYZE timeline_entries")
        progress.advance(task)
        now = timezone.now()
        if data.clicks:
            first = min(click.clicked_at for click in data.clicks)
            for period, seconds in rollups.PERIOD_SECONDS.items():
                rollups.rollup(period, floor_time(first, seconds), floor_time(now, seconds) + timedelta(seconds=seconds))
                progress.advance(task)
        else:
            progress.advance(task, 2)
        interval = int(getattr(settings, "TRENDING_INTERVAL", 60))
        trending.recompute_trending(floor_time(now, interval))
        progress.advance(task)
        for job in ("suggested", "follows"):
            mapreduce.run_inline(job, using=DB)
            progress.advance(task)

    @staticmethod
    def _user_rows(users: Sequence[seed_data.SeedUser]) -> Iterable[tuple[Any, ...]]:
        """User rows in ``USER_COLUMNS`` order, all sharing one password hash.

        The demo password is hashed ONCE and the hash reused for every user:
        PBKDF2 at Django's default cost takes around half a second per hash, so
        hashing it a thousand times would make seeding take minutes. Each hash
        embeds its own salt, so sharing one is only acceptable for demo data.
        """
        password_hash = make_password(DEMO_PASSWORD)
        for user in users:
            yield (
                user.id, password_hash, False, user.username, "", "", "", False, True,
                user.date_joined, 0, 0, 0, 0, 1,
            )

    @staticmethod
    def _copy(raw: Any, progress: Progress, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
        """``COPY table (columns) FROM STDIN``, advancing a progress bar as rows go."""
        rows = list(rows)
        task = progress.add_task(table, total=len(rows))
        with raw.cursor() as cursor, cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for start in range(0, len(rows), COPY_CHUNK):
                chunk = rows[start : start + COPY_CHUNK]
                for row in chunk:
                    copy.write_row(row)
                progress.advance(task, len(chunk))

    def _empty_cache(self) -> None:
        """Flush memcached: the seed changed rows without writing them through."""
        if not cache.enabled():
            return
        try:
            cache.flush_all()
        except Exception as exc:  # a node that is down holds nothing to flush
            self.stderr.write(f"seed: could not flush every memcached node ({exc}); flush it before use")

    def _report(self, data: seed_data.SeedData, generate_s: float, load_s: float, total_s: float) -> None:
        self.stdout.write(
            self.style.SUCCESS(
                f"seeded {len(data.users)} users, {len(data.stories)} stories, {len(data.follows)} follows, "
                f"{len(data.votes)} votes, {len(data.clicks)} clicks in {total_s:.1f}s "
                f"(generate {generate_s:.1f}s, load and precompute {load_s:.1f}s)"
            )
        )
        self.stdout.write(f"every seeded user's password is {DEMO_PASSWORD!r} (e.g. {data.users[0].username!r})")
