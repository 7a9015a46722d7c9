"""The read fence and the primary probe (post: "Redundancy and failover").

Reads go to HAProxy's read pool (the post's localhost:9001), which balances
over the primary and a streaming replica. Replication is asynchronous, so the
replica can be behind: a story posted a moment ago may not be there yet. The
project's rule is stricter than "eventually": once a write is acknowledged, no
read may return an older value, whichever platform server took the write.

The fence enforces it once per unit of work (an HTTP request, a Celery task):

1. Ask the primary for its current WAL position (``pg_current_wal_lsn()``).
   Every write acknowledged so far was committed, so its commit record lies at
   or before that position.
2. On the read-pool connection, check ``pg_last_wal_replay_lsn()`` against it.
   A server not in recovery (the pool sent us to the primary) always passes.
3. If the replica has replayed that far, this unit of work reads from the
   replica; if not, it reads from the primary (the write pool) instead.

The cost is two one-row queries per request that reads the database at all;
cache hits pay nothing. The heavy work (ranking, joins) still runs where the
read pool sends it. GitLab's database load balancer does the same with a WAL
position kept per session; this fence is global, because any user must see any
acknowledged write, not only their own.

When the primary does not answer, the probe remembers that for
``PRIMARY_RETRY_SECONDS``: reads then use the replica if it has applied every
WAL record it received (a primary that shuts down cleanly sends it all first),
and writes fail at once with :class:`PrimaryUnavailable` (a 503, "read-only for
now") instead of each waiting for a connection timeout.

This is hand-written rather than taken from a library because it is the point
of the demo; it is a few queries and a timestamp.
"""
from __future__ import annotations

import contextvars
import logging
import threading
import time

import psycopg
from django.conf import settings
from django.core.signals import request_started
from django.db import DatabaseError, connections

log = logging.getLogger(__name__)

# The replica has replayed past the primary's position read in step 1.
CAUGHT_UP_SQL = "SELECT NOT pg_is_in_recovery() OR pg_last_wal_replay_lsn() >= %s::pg_lsn"
# With the primary gone, nothing new can be acknowledged: the replica is fresh
# if it has applied everything it received.
APPLIED_ALL_RECEIVED_SQL = (
    "SELECT NOT pg_is_in_recovery()"
    " OR pg_last_wal_replay_lsn() >= COALESCE(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())"
)


# After a failure, writes ask the primary first for this long, so that during
# an outage each is refused at once instead of waiting for a pool timeout.
RECENT_FAILURE_SECONDS = 60.0


class PrimaryUnavailable(Exception):
    """The write pool (the primary) cannot take writes right now: the site is read-only."""


class PrimaryProbe:
    """Asks the primary, through the write pool, how far it has written.

    One autocommit connection per thread (gunicorn's gthread workers run a
    request per thread), outside Django's pool: a probe must fail in
    milliseconds when the primary is gone, not wait for a pooled connection.
    """

    def __init__(self, retry_seconds: float) -> None:
        self.retry_seconds = retry_seconds
        self._local = threading.local()
        self._down_until = 0.0
        self._last_failure = 0.0

    def failed_recently(self) -> bool:
        """True within ``RECENT_FAILURE_SECONDS`` of the last failure: an outage may be going on.

        Only with PostgreSQL behind the write pool: the probe speaks its protocol
        (the unit tests' SQLite settings have no primary to ask).
        """
        if not settings.DATABASES["default"]["ENGINE"].endswith("postgresql"):
            return False
        return self._last_failure > 0 and time.monotonic() - self._last_failure < RECENT_FAILURE_SECONDS

    def reset(self) -> None:
        """Forget every failure (for tests that simulate an outage, then its end)."""
        self._down_until = self._last_failure = 0.0

    def is_down(self) -> bool:
        """True while a recent failure says the primary is unreachable."""
        return time.monotonic() < self._down_until

    def mark_down(self, reason: object) -> None:
        """Remember that the primary failed; it is asked again after ``retry_seconds``."""
        if not self.is_down():
            log.warning("primary unavailable, read-only for %.1fs: %s", self.retry_seconds, reason)
        self._last_failure = time.monotonic()
        self._down_until = self._last_failure + self.retry_seconds
        self._discard()

    def wal_lsn(self) -> str | None:
        """The primary's current WAL position, or ``None`` if it does not answer."""
        if self.is_down():
            return None
        # Two attempts: this thread's connection may be older than a restart of
        # the primary (dead, though the primary is back); only a fresh
        # connection that fails too means the primary is down.
        for attempt in (1, 2):
            try:
                row = self._connection().execute("SELECT pg_current_wal_lsn()::text").fetchone()
                return row[0] if row else None
            except psycopg.Error as exc:
                self._discard()
                # "recovery is in progress": a server in recovery is no primary.
                if attempt == 2 or not isinstance(exc, psycopg.OperationalError):
                    self.mark_down(exc)
        return None

    def _connection(self) -> psycopg.Connection:
        conn: psycopg.Connection | None = getattr(self._local, "conn", None)
        if conn is None or conn.closed:
            db = settings.DATABASES["default"]
            conn = psycopg.connect(
                host=db["HOST"], port=db["PORT"], dbname=db["NAME"], user=db["USER"],
                password=db["PASSWORD"], connect_timeout=2, autocommit=True,
                application_name=f"{settings.SERVER_NAME}-fence",
            )
            self._local.conn = conn
        return conn

    def _discard(self) -> None:
        conn: psycopg.Connection | None = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            try:
                conn.close()
            except psycopg.Error:
                pass


# getattr: consumers' unit tests import this module under other settings.
probe = PrimaryProbe(getattr(settings, "PRIMARY_RETRY_SECONDS", 1.0))

# Whether this unit of work may read the replica; None until its first read.
_replica_fresh: contextvars.ContextVar[bool | None] = contextvars.ContextVar("replica_fresh", default=None)


def new_unit_of_work(**_: object) -> None:
    """Forget the fence decision: the next read checks the replica again.

    Connected to ``request_started`` below and to Celery's ``task_prerun`` in
    :mod:`platform_api.celery_app`; long-running loops call it per batch.
    """
    _replica_fresh.set(None)


request_started.connect(new_unit_of_work, dispatch_uid="platform_api.primary.new_unit_of_work")


def replica_is_fresh() -> bool:
    """True if this unit of work may read through the read pool (decided once per unit)."""
    decided = _replica_fresh.get()
    if decided is None:
        decided = _check_replica()
        _replica_fresh.set(decided)
    return decided


def _check_replica() -> bool:
    lsn = probe.wal_lsn()
    try:
        with connections["replica"].cursor() as cursor:
            if lsn is None:
                cursor.execute(APPLIED_ALL_RECEIVED_SQL)
            else:
                cursor.execute(CAUGHT_UP_SQL, [lsn])
            row = cursor.fetchone()
    except DatabaseError as exc:
        # The read pool has no server for us: read the primary if it is up.
        log.warning("read pool unavailable for the fence check: %s", exc)
        return False
    return bool(row and row[0])


def ensure_writable() -> None:
    """Raise :class:`PrimaryUnavailable` at once while the primary is down.

    In normal times this costs nothing: the write goes ahead, and if the
    primary fails under it the read-only handler marks the probe down. For a
    minute after any failure, each write first asks the primary (one cheap
    query, failing in milliseconds through an empty write pool), so during an
    outage no write waits for a pooled connection to time out.
    """
    if probe.is_down():
        raise PrimaryUnavailable("the primary database is unavailable")
    if probe.failed_recently() and probe.wal_lsn() is None:
        raise PrimaryUnavailable("the primary database is unavailable")
