"""The platform's settings with SQLite files in place of PostgreSQL, for probes that write.

Unit tests need no services, but idempotency keys and read-only mode are about
transactions and about one alias failing while the other works. SQLite gives
real transactions in a file, with no server:

* ``PROBE_SQLITE_PATH``: the database file;
* ``PROBE_SQLITE_ALIASES``: which aliases use it (``default,replica`` by
  default). An alias left out keeps the platform's own setting, which in the
  probes is a PostgreSQL address nothing listens on: that alias is "down".

What SQLite cannot show is PostgreSQL's own locking: here a second writer waits
for the database's write lock at ``BEGIN IMMEDIATE``, where PostgreSQL makes a
conflicting ``INSERT ... ON CONFLICT`` wait on the key's index entry. The
outcome the tests check (one write, one replay) is the same.
"""
from __future__ import annotations

from platform_api.settings import *  # noqa: F401,F403  (the platform's settings, then the overrides)
from platform_api.settings import DATABASES, env

PROBE_SQLITE_PATH: str = env.str("PROBE_SQLITE_PATH")
PROBE_SQLITE_ALIASES: list[str] = env.list("PROBE_SQLITE_ALIASES", default=["default", "replica"])

for _alias in PROBE_SQLITE_ALIASES:
    DATABASES[_alias] = {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": PROBE_SQLITE_PATH,
        "OPTIONS": {
            # A writer takes the write lock when its transaction begins, so two
            # concurrent writes queue instead of failing with "database is locked".
            "transaction_mode": "IMMEDIATE",
            "timeout": 30,
            # Readers (the "replica" alias) are not blocked by a writer.
            "init_command": "PRAGMA journal_mode=WAL;",
        },
    }
