"""Two Celery beat processes, one active: redundant scheduling of periodic tasks.

The post's "Scheduling periodic tasks" ends with a question: "Does anyone know
of recognized tools which solve this problem?", that is periodic tasks with
redundancy and no manual recovery. The answer here has two halves:

1. **One active scheduler, a standby ready** (this module). Each beat process
   opens its own PostgreSQL session to the primary (through HAProxy's write
   pool) and tries ``pg_try_advisory_lock``. The holder runs Celery beat; the
   other polls every ``BEAT_LEASE_POLL`` seconds. A session lock lives exactly
   as long as the session, so when the active process dies (or its machine, or
   its network) PostgreSQL ends the session, the lock is free, and the standby
   takes it at its next poll. The holder's watchdog checks its session every
   couple of seconds and exits at once if it is gone, so a scheduler can never
   go on publishing without the lease.
2. **Every run happens once per slot** (:mod:`platform_api.tasks.periodic`).
   A lease has a gap between "the old holder lost it" and "the old holder
   noticed": for that moment two schedulers may publish. Publishing the same
   slot twice changes nothing, so the gap is harmless, and the new holder
   simply re-publishes the latest slot of every schedule on takeover.

Run from ``platform/``: ``python -m platform_api.beat --name beat-1``.
"""
from __future__ import annotations

import argparse
import functools
import logging
import os
import sys
import threading
import time
from typing import Any

LOG = logging.getLogger("platform_api.beat")

#: The advisory lock's key: one 32-bit number, so ``pg_locks`` shows it as
#: ``classid = 0, objid = LOCK_KEY, objsubid = 1``.
LOCK_KEY = 0x5CA1EB
# A process that has just started waits this many poll intervals before its
# first try, so that after the active beat dies, the standby that was already
# waiting gets the lease, not the dead beat's own replacement that supervisord
# restarts a second later (which would win every race, by trying first).
STARTUP_GRACE_POLLS = 1.5
WATCHDOG_INTERVAL = 2.0  # seconds between checks of the lock session
WATCHDOG_DEADLINE = 8.0  # a check that has not succeeded for this long means the lease is lost

HOLDS_LOCK_SQL = """
    SELECT count(*) FROM pg_locks
    WHERE locktype = 'advisory' AND classid = 0 AND objid = %s AND objsubid = 1
      AND granted AND pid = pg_backend_pid()
"""
ACTIVE_BEAT_SQL = """
    SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
    WHERE l.locktype = 'advisory' AND l.classid = 0 AND l.objid = %s AND l.objsubid = 1 AND l.granted
"""


def conninfo(name: str) -> str:
    """A libpq connection string for the primary (HAProxy's write pool), named ``name``.

    ``application_name`` makes the holder visible in ``pg_stat_activity``
    (:func:`active_beat`). Keepalives and ``tcp_user_timeout`` make a dead
    network fail a check within seconds instead of hanging it.
    """
    from django.conf import settings
    from psycopg.conninfo import make_conninfo

    db = settings.DATABASES["default"]
    return make_conninfo(
        host=db["HOST"] or "127.0.0.1",
        port=str(db["PORT"] or 5432),
        dbname=db["NAME"],
        user=db["USER"],
        password=db["PASSWORD"],
        application_name=name,
        connect_timeout=3,
        keepalives=1,
        keepalives_idle=5,
        keepalives_interval=2,
        keepalives_count=2,
        tcp_user_timeout=5000,
        options="-c statement_timeout=5000",
    )


def active_beat() -> str | None:
    """The name of the beat process that holds the lease, or ``None`` (``scalestack status``).

    Asked of the primary, where the lock lives (a replica has no advisory locks).
    """
    from django.db import connections

    with connections["default"].cursor() as cursor:
        cursor.execute(ACTIVE_BEAT_SQL, [LOCK_KEY])
        row = cursor.fetchone()
    return row[0] if row else None


class Lease:
    """The advisory lock on a dedicated session: try to take it, and watch it."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._conninfo = conninfo(name)
        self._conn: Any = None

    def try_acquire(self) -> bool:
        """Take the lock if it is free. Connection errors count as "not taken"."""
        import psycopg

        try:
            if self._conn is None or self._conn.closed:
                self._conn = psycopg.connect(self._conninfo, autocommit=True)
            return bool(self._conn.execute("SELECT pg_try_advisory_lock(%s)", [LOCK_KEY]).fetchone()[0])
        except psycopg.Error as exc:
            LOG.warning("%s: PostgreSQL unreachable (%s); staying standby", self.name, str(exc).strip())
            self.close()
            return False

    def holder(self) -> str | None:
        """Who holds the lock now, asked on this session (``None`` if unknown)."""
        if self._conn is None:
            return None
        try:
            row = self._conn.execute(ACTIVE_BEAT_SQL, [LOCK_KEY]).fetchone()
        except Exception:  # noqa: BLE001 - only for a log line
            return None
        return row[0] if row else None

    def still_held(self) -> bool:
        """Whether this session is alive and still holds the lock."""
        return bool(self._conn.execute(HOLDS_LOCK_SQL, [LOCK_KEY]).fetchone()[0])

    def close(self) -> None:
        """Close the session (which releases the lock if held)."""
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:  # noqa: BLE001 - closing a broken connection
                pass
        self._conn = None


def _lose_lease(name: str, reason: str) -> None:
    """Stop scheduling at once. ``os._exit`` skips every cleanup that could block."""
    LOG.critical("%s lost the lease (%s): exiting so it cannot schedule without it", name, reason)
    logging.shutdown()
    os._exit(1)


def start_watchdog(lease: Lease, interval: float = WATCHDOG_INTERVAL, deadline: float = WATCHDOG_DEADLINE) -> None:
    """Check the lease every ``interval`` s in the background; exit the process if it is lost.

    Two daemon threads: one runs the checks, the other exits the process if no
    check has succeeded for ``deadline`` s (a check blocked on a dead network
    cannot report its own failure).
    """
    last_ok = [time.monotonic()]

    def check() -> None:
        while True:
            time.sleep(interval)
            try:
                held = lease.still_held()
            except Exception as exc:  # noqa: BLE001 - any failure means the session is gone
                _lose_lease(lease.name, f"lock session failed: {exc!r}")
            if not held:
                _lose_lease(lease.name, "the lock is no longer held by this session")
            last_ok[0] = time.monotonic()

    def guard() -> None:
        while True:
            time.sleep(interval / 2)
            if time.monotonic() - last_ok[0] > deadline:
                _lose_lease(lease.name, f"no successful check for {deadline:g}s")

    threading.Thread(target=check, name="lease-watchdog", daemon=True).start()
    threading.Thread(target=guard, name="lease-guard", daemon=True).start()


def run_beat(name: str) -> None:
    """Run Celery beat in this process, with the slotted scheduler, until told to stop."""
    from celery import signals
    from celery.apps.beat import Beat

    from platform_api.celery_app import app
    from platform_api.tasks.slots import SlotScheduler

    @signals.beat_init.connect(weak=False)
    def quieter(**_: Any) -> None:
        # Celery logs every publish ("Sending due task"), the outbox relay's
        # included: 43,000 lines a day. SlotScheduler logs the slotted ones.
        logging.getLogger("celery.beat").setLevel(logging.WARNING)

    scheduler = functools.partial(SlotScheduler, beat_name=name)
    Beat(app=app, scheduler=scheduler, loglevel="INFO", quiet=True).run()


def main(argv: list[str] | None = None) -> int:
    """Wait for the lease as a standby, then schedule as the active beat."""
    parser = argparse.ArgumentParser(description="A redundant Celery beat: one active, the others standby.")
    parser.add_argument("--name", required=True, help="this process's name, e.g. beat-1")
    # Accepted for the launcher's sake; the slotted scheduler keeps its state
    # in PostgreSQL (periodic_runs), not in a file.
    parser.add_argument("--schedule", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "platform_api.settings")
    import django

    django.setup()
    from django.conf import settings

    poll = float(getattr(settings, "BEAT_LEASE_POLL", 2.0))
    lease = Lease(args.name)
    LOG.info("%s starting as standby; first try for the lease in %gs", args.name, poll * STARTUP_GRACE_POLLS)
    time.sleep(poll * STARTUP_GRACE_POLLS)
    announced: object = object()  # log once per change of holder, not every poll
    while not lease.try_acquire():
        holder = lease.holder()
        if holder != announced:
            LOG.info("%s is standby (active: %s); polling every %gs", args.name, holder or "none", poll)
            announced = holder
        time.sleep(poll)
    LOG.info("%s is ACTIVE: holds the scheduler lease (advisory lock %#x)", args.name, LOCK_KEY)
    start_watchdog(lease)
    run_beat(args.name)
    LOG.info("%s stopped; releasing the lease", args.name)
    lease.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
