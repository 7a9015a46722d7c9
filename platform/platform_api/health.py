"""What ``GET /v1/healthz`` checks, and why it fails on so little.

HAProxy asks every platform server once a second and takes it out of the pool
after two failures (post, "Load balancing"). A health check therefore decides
which outages become total (post, "Redundancy and failover"):

* **draining** (the file named by ``SCALESTACK_DRAIN_FILE`` exists, made by
  ``scalestack drain``): fail, so HAProxy sends no new requests while the
  ones in flight finish;
* **the read pool unreachable**: fail; this server can answer nothing;
* **the primary unreachable**: report it, do not fail. Reads still work, and
  writes answer a clear read-only 503 (:mod:`platform_api.read_only`). Every
  platform server shares the one primary, so failing here would take them
  all out at once and turn a read-only site into a dead one;
* **a memcached node unreachable**: report it ("degraded"); requests fall
  through to PostgreSQL.

Every check has a short timeout of its own, and they run side by side under one
deadline (:data:`CHECK_BUDGET`), so the answer comes well inside HAProxy's one
second even when every dependency hangs.
"""
from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any, Callable

from django.conf import settings
from django.db import connections
from pymemcache.client.base import Client as MemcacheClient

from platform_api import cache

log = logging.getLogger(__name__)

# Seconds a database check waits for a pooled connection (a live pool has an
# idle one at once), and a memcached check for its node.
DATABASE_TIMEOUT = 0.5
MEMCACHED_TIMEOUT = 0.25
# The whole answer's deadline: a check still running then counts as failed.
CHECK_BUDGET = 0.7


def draining() -> bool:
    """Whether this server is being drained: the drain file exists.

    One ``stat`` per health check. An empty ``SCALESTACK_DRAIN_FILE`` (or none
    in settings) means never draining.
    """
    path = str(getattr(settings, "SCALESTACK_DRAIN_FILE", "") or "")
    return bool(path) and os.path.exists(path)


def report() -> dict[str, Any]:
    """``{"status", "server", "database", "primary", "cache"}`` and the HTTP status to answer with."""
    checks: dict[str, Callable[[], bool]] = {
        "database": _database_check("replica"),
        "primary": _database_check("default"),
        "cache": _cache_check(),
    }
    found = _run_side_by_side(checks, CHECK_BUDGET)
    if draining():
        status = "draining"
    elif not found["database"]:
        status = "unavailable"
    elif found["primary"] and found["cache"]:
        status = "ok"
    else:
        status = "degraded"
    return {"status": status, "server": settings.SERVER_NAME, **found}


def http_status(status: str) -> int:
    """200 while the server can serve reads, 503 when it is draining or cannot."""
    return 503 if status in ("draining", "unavailable") else 200


def _run_side_by_side(checks: dict[str, Callable[[], bool]], budget: float) -> dict[str, bool]:
    """Run every check in a thread of its own; a check not done within ``budget`` is ``False``.

    A fresh pool per call, left behind rather than waited for: a check stuck
    on a hung socket must never hold up the answer, nor the next check.
    """
    executor = ThreadPoolExecutor(max_workers=len(checks), thread_name_prefix="healthz")
    try:
        futures = {name: executor.submit(check) for name, check in checks.items()}
        done, _ = wait(futures.values(), timeout=budget)
    finally:
        executor.shutdown(wait=False, cancel_futures=True)
    results: dict[str, bool] = {}
    for name, future in futures.items():
        if future not in done:
            log.warning("health check: %s did not answer within %.1fs", name, budget)
        results[name] = future in done and future.result()
    return results


def _database_check(alias: str) -> Callable[[], bool]:
    """A check that runs ``SELECT 1`` on a connection from ``alias``'s pool.

    The pool is looked up here, in the request's thread; the check itself
    uses the pool directly (it is thread-safe), with a short timeout instead of
    the pool's own, so a database that is down costs :data:`DATABASE_TIMEOUT`.
    """
    pool = getattr(connections[alias], "pool", None)  # PostgreSQL's wrapper has one; others do not

    def check() -> bool:
        try:
            if pool is None:  # pooling turned off: a plain connection
                with connections[alias].cursor() as cursor:
                    cursor.execute("SELECT 1")
                    return cursor.fetchone() == (1,)
            pool.open()  # Django opens it on first use; a no-op once open
            with pool.connection(timeout=DATABASE_TIMEOUT) as connection:
                return connection.execute("SELECT 1").fetchone() == (1,)
        except Exception as exc:  # any failure means "not reachable", never a 500
            log.warning("health check: database %r unreachable: %s", alias, exc)
            return False
        finally:
            if pool is None:
                connections[alias].close()

    return check


def _cache_check() -> Callable[[], bool]:
    """A check that every memcached node answers ``version`` (false when the cache is off)."""
    servers = list(settings.MEMCACHED_SERVERS)
    enabled = cache.enabled()

    def check() -> bool:
        return enabled and all([_memcached_node_ok(server) for server in servers])

    return check


def _memcached_node_ok(server: str) -> bool:
    """Ask one node for its version over a short-lived connection."""
    host, _, port = server.rpartition(":")
    client = MemcacheClient((host, int(port)), connect_timeout=MEMCACHED_TIMEOUT, timeout=MEMCACHED_TIMEOUT)
    try:
        client.version()
        return True
    except Exception as exc:  # a refused connection or a timeout
        log.warning("health check: memcached %s unreachable: %s", server, exc)
        return False
    finally:
        client.close()
