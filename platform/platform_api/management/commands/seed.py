"""``manage.py seed``: load a deterministic demo site into PostgreSQL, fast.

The rows come from :func:`platform_api.seed_data.generate`; this command only
loads them: ``COPY`` through the raw psycopg connection (tens of thousands of
rows a second, where the ORM would manage hundreds), then the denormalised
counters in one ``UPDATE ... FROM (aggregate)`` per counter, then the
sequences. It writes behind the data cache's back, so it empties the cache
afterwards (post, "Cache invalidation": a write that bypasses the write-through
path must not leave old values to be read).
"""
from __future__ import annotations

import time
from argparse import ArgumentParser
from typing import Any, Iterable, Sequence

from django.contrib.auth.hashers import make_password
from django.core.management.base import BaseCommand, CommandError
from django.core.management.color import no_style
from django.db import connections, transaction
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from platform_api import cache, seed_data
from platform_api.models import Follow, Story, User, Vote

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
            users=options["users"], stories=options["stories"], votes=options["votes"], seed=options["seed"]
        )
        generated = time.monotonic()
        self._load(data)
        loaded = time.monotonic()
        self._empty_cache()
        self._report(data, generated - started, loaded - generated, time.monotonic() - started)

    # ------------------------------------------------------------------
    def _load(self, data: seed_data.SeedData) -> None:
        """Replace every user, story, follow and vote, in one transaction.

        A failed seed leaves the database as it was. The ids start at 1 again,
        so the same seed always gives the same ids.
        """
        with Progress(
            TextColumn("{task.description:<10}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()
        ) as progress, transaction.atomic(using=DB):
            with connections[DB].cursor() as cursor:
                cursor.execute(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE")
                raw = cursor.connection  # the psycopg connection, for COPY
                self._copy(raw, progress, "users", USER_COLUMNS, self._user_rows(data.users))
                self._copy(raw, progress, "stories", STORY_COLUMNS, ((*s, 0, 1) for s in data.stories))
                self._copy(raw, progress, "follows", FOLLOW_COLUMNS, data.follows)
                self._copy(raw, progress, "votes", VOTE_COLUMNS, data.votes)
                task = progress.add_task("counters", total=len(COUNTER_UPDATES) + 1)
                for statement in COUNTER_UPDATES:
                    cursor.execute(statement)
                    progress.advance(task)
                for statement in connections[DB].ops.sequence_reset_sql(no_style(), [User, Story, Follow, Vote]):
                    cursor.execute(statement)
                # Fresh statistics, so the planner uses the indexes at once
                # rather than after autovacuum's next pass.
                cursor.execute(f"ANALYZE {', '.join(TABLES)}")
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
                f"{len(data.votes)} votes in {total_s:.1f}s (generate {generate_s:.1f}s, load {load_s:.1f}s)"
            )
        )
        self.stdout.write(f"every seeded user's password is {DEMO_PASSWORD!r} (e.g. {data.users[0].username!r})")
