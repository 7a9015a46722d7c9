"""Application caching over memcached: read-through fills, write-through updates.

This module is the post's "Caching" section made concrete:

* **Read-through** ("Application vs. database caching"): look a value up in
  memcached; on a miss, read it from PostgreSQL and store it. Exactly the post's
  ``user.%s`` example, as :func:`read_through`, with dogpile.cache's lock so a
  hot key that expires sends one request to the database, not a stampede.
* **Write-through** ("Cache invalidation"): after a write commits, the new value
  goes into memcached (:func:`write_through_on_commit`), so the next read is a
  hit and is never older than the write the client was told succeeded.
* **In-memory caches**: two memcached nodes behind pymemcache's ``HashClient``,
  which hashes keys over the nodes and steps around a dead one: the post's
  "smart client", used here where it is cheap and well-kept. Its subclass in
  :mod:`platform_api.memcache_client` flushes a node that failed before it is
  used again, so a node back from an outage never serves pre-outage values.
* **Lists** ("modifications to unknown number of elements"): a vote can move a
  story on many pages, so list entries are not written through. Their keys embed
  a *generation* number that each relevant write increments after commit; a
  bump makes every old entry unreachable at once.

The ordering rules that keep reads fresh are hand-written because they are the
point of the demo; the locking, hashing and node failure handling come from
dogpile.cache and pymemcache.

1. A read-through fill only ever ``add``s (never ``set``s) an object. If a write
   committed and wrote its value through while the fill was reading the older
   row, the ``add`` fails and the newer value stays.
2. A write-through compares versions with ``gets``/``cas``: each object carries
   the row's ``version``, which the write incremented in its transaction, and a
   cached value is only replaced by a newer one. Two writers whose write-throughs
   arrive out of order therefore still leave the newest value.
3. Generation counters start at the current time in microseconds, so a counter
   that is lost (eviction, node restart) and re-created can never come back to a
   number that old entries were stored under.
"""
from __future__ import annotations

import contextvars
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence, TypeVar

from django.conf import settings
from django.db import transaction
from dogpile.cache import make_region, register_backend
from dogpile.cache.api import NO_VALUE, CachedValue
from dogpile.cache.backends.memcached import MemcachedLock, PyMemcacheBackend
from dogpile.cache.region import CacheRegion, value_version
from pymemcache import serde

from platform_api import cache_keys
from platform_api.memcache_client import FlushOnReturnHashClient

log = logging.getLogger(__name__)
T = TypeVar("T")

# How long a waiter may block on another process's fill before it gives up and
# reads the database itself. Bounded so that a lock key stranded on a node that
# then died can never hang a request.
LOCK_WAIT_SECONDS = 2.0
# A lock left by a crashed filler expires on its own after this long.
LOCK_TIMEOUT_SECONDS = 5
# Retries of the gets/cas loop before a write-through falls back to a delete.
CAS_ATTEMPTS = 8


# --------------------------------------------------------------------------
# Per-request statistics (reported in the X-Cache response header)
# --------------------------------------------------------------------------
@dataclass
class RequestStats:
    """How this request's cache lookups were answered."""

    hits: int = 0
    misses: int = 0


_stats: contextvars.ContextVar[RequestStats] = contextvars.ContextVar("cache_stats")
# Seconds a read-through fill sleeps between reading PostgreSQL and storing the
# value; only ever non-zero in the test stack, to reproduce the stale-fill race.
_fill_delay: contextvars.ContextVar[float] = contextvars.ContextVar("fill_delay", default=0.0)


def begin_request() -> RequestStats:
    """Start counting cache lookups for a new request and return the counter."""
    stats = RequestStats()
    _stats.set(stats)
    _fill_delay.set(0.0)
    return stats


def set_fill_delay(seconds: float) -> None:
    """Make this request's read-through fills slow (fault injection for tests)."""
    _fill_delay.set(seconds)


def _count(hits: int = 0, misses: int = 0) -> None:
    stats = _stats.get(None)
    if stats is not None:
        stats.hits += hits
        stats.misses += misses


def enabled() -> bool:
    """Whether the data cache is on (``DATA_CACHE_ENABLED``)."""
    return bool(settings.DATA_CACHE_ENABLED)


# --------------------------------------------------------------------------
# The dogpile backend: pymemcache's HashClient with fills that never overwrite
# --------------------------------------------------------------------------
class BoundedMemcachedLock(MemcachedLock):
    """dogpile's memcached mutex (an ``add``-ed key), with a bounded wait.

    dogpile's own lock retries for as long as the key exists. With
    ``ignore_exc`` on, a node that is down also answers "not added", so an
    unbounded wait would hang every request for that key. After
    :data:`LOCK_WAIT_SECONDS` the waiter proceeds without the lock.
    """

    def __init__(self, client_fn: Callable[[], Any], key: str, timeout: int) -> None:
        super().__init__(client_fn, key, timeout)
        self._owned = False

    def acquire(self, wait: bool = True) -> bool:
        """Take the lock; if ``wait``, block at most :data:`LOCK_WAIT_SECONDS`."""
        client = self.client_fn()
        deadline = time.monotonic() + LOCK_WAIT_SECONDS
        pause = 0.005
        while True:
            if client.add(self.key, 1, self.timeout, noreply=False):
                self._owned = True
                return True
            if not wait or time.monotonic() >= deadline:
                return False
            # With ignore_exc, "not added" also means "node unreachable", and
            # waiting would then cost LOCK_WAIT_SECONDS per key (a minute for a
            # page of 30 stories). Only a lock that can be seen is worth waiting
            # for; if the key is absent, the node is down or the holder has just
            # released it, and either way this request goes on without the lock.
            if client.get(self.key) is None:
                return False
            time.sleep(pause)
            pause = min(pause * 2, 0.1)

    def release(self) -> None:
        """Release the lock only if this process holds it."""
        if self._owned:
            self._owned = False
            self.client_fn().delete(self.key, noreply=False)


class ScalestackMemcachedBackend(PyMemcacheBackend):
    """dogpile's pymemcache backend, tuned for failure and for safe fills.

    * ``ignore_exc``: a node that is down reads as a miss and drops writes, so
      requests fall through to PostgreSQL and still succeed. Dropped writes
      would leave that node stale, which is why the client flushes a node
      that failed before it serves again (:mod:`platform_api.memcache_client`).
    * ``fill_with_add``: read-through fills use memcached ``add``, which never
      replaces a value a write-through stored in the meantime (rule 1 above).
    """

    def __init__(self, arguments: dict[str, Any]) -> None:
        super().__init__(arguments)
        self.fill_with_add: bool = arguments.get("fill_with_add", True)
        self.connect_timeout: float = arguments["connect_timeout"]
        self.timeout: float = arguments["timeout"]

    def _create_client(self) -> FlushOnReturnHashClient:
        return FlushOnReturnHashClient(
            self.url,
            serde=serde.pickle_serde,
            connect_timeout=self.connect_timeout,
            timeout=self.timeout,
            retry_attempts=self.hashclient_retry_attempts,
            retry_timeout=self.hashclient_retry_timeout,
            dead_timeout=self.dead_timeout,
            # Required: a node that is down must read as a miss and drop
            # writes, so the request falls through to PostgreSQL and succeeds;
            # the client's flush-on-return makes the dropped writes harmless.
            ignore_exc=True,
            default_noreply=False,
        )

    def set(self, key: str, value: Any) -> None:
        """Store a read-through fill (``add``: never overwrite a newer value)."""
        if self.fill_with_add:
            self.client.add(key, value, **self.set_arguments)
        else:
            self.client.set(key, value, **self.set_arguments)

    def set_multi(self, mapping: dict[str, Any]) -> None:
        """Store several fills, each with the same rule as :meth:`set`."""
        for key, value in mapping.items():
            self.set(key, value)

    def get_mutex(self, key: str) -> BoundedMemcachedLock | None:
        """The distributed stampede lock for one key."""
        if not self.distributed_lock:
            return None
        return BoundedMemcachedLock(lambda: self.client, key, timeout=self.lock_timeout)


register_backend("scalestack.memcached", "platform_api.cache", "ScalestackMemcachedBackend")


def _mangle(key: str) -> str:
    return cache_keys.mangle(key)


_regions: dict[str, CacheRegion] = {}
_regions_lock = threading.Lock()


def _region(kind: str) -> CacheRegion:
    """The dogpile region for objects or for lists, configured on first use."""
    region = _regions.get(kind)
    if region is not None:
        return region
    with _regions_lock:
        if kind not in _regions:
            ttl = cache_keys.OBJECT_TTL if kind == "objects" else cache_keys.LIST_TTL
            _regions[kind] = make_region(key_mangler=_mangle).configure(
                "scalestack.memcached",
                arguments={
                    "url": list(settings.MEMCACHED_SERVERS),
                    "distributed_lock": True,
                    "lock_timeout": LOCK_TIMEOUT_SECONDS,
                    "memcached_expire_time": ttl,
                    # Objects are kept fresh by write-through, so fills must not
                    # overwrite; list keys carry a generation, so plain set is safe
                    # and lets dogpile refresh a soft-expired list in place.
                    "fill_with_add": kind == "objects",
                    # The smart client's failure handling, explicit in settings.
                    "connect_timeout": settings.MEMCACHED_CONNECT_TIMEOUT,
                    "timeout": settings.MEMCACHED_TIMEOUT,
                    "hashclient_retry_attempts": settings.MEMCACHED_RETRY_ATTEMPTS,
                    "hashclient_retry_timeout": settings.MEMCACHED_RETRY_TIMEOUT,
                    "hashclient_dead_timeout": settings.MEMCACHED_DEAD_TIMEOUT,
                },
            )
    return _regions[kind]


def _client() -> FlushOnReturnHashClient:
    """This thread's HashClient (the objects region's; both see the same nodes)."""
    return _region("objects").backend.client


def _slow_fill(value: T) -> T:
    delay = _fill_delay.get()
    if delay:
        time.sleep(delay)
    return value


# --------------------------------------------------------------------------
# Read-through
# --------------------------------------------------------------------------
def read_through(key: str, fetch: Callable[[], T | None]) -> T | None:
    """Return the object cached under ``key``, filling it from ``fetch`` on a miss.

    ``fetch`` returns a dict with a ``version`` or ``None`` when the row does not
    exist; ``None`` is cached too (a cached "absent" is a hit, not a miss).
    """
    if not enabled():
        return fetch()
    filled = False

    def creator() -> T | None:
        nonlocal filled
        filled = True
        return _slow_fill(fetch())

    value = _region("objects").get_or_create(key, creator)
    _count(hits=0 if filled else 1, misses=1 if filled else 0)
    return value


def read_through_many(
    keys: Sequence[str], fetch_many: Callable[[Sequence[str]], Sequence[Any]]
) -> list[Any]:
    """Look up many objects at once; ``fetch_many`` fills the missing keys.

    ``fetch_many`` receives the missing keys and returns their values in the same
    order (``None`` for a row that does not exist).
    """
    if not keys:
        return []
    if not enabled():
        return list(fetch_many(keys))
    missing_count = 0

    def creator(*missing: str) -> list[Any]:
        nonlocal missing_count
        missing_count += len(missing)
        return _slow_fill(list(fetch_many(missing)))

    values = _region("objects").get_or_create_multi(list(keys), creator)
    _count(hits=len(keys) - missing_count, misses=missing_count)
    return list(values)


def read_through_list(key: str, fetch: Callable[[], T], soft_ttl: int) -> T:
    """Return a cached list (of ids), refreshed from ``fetch`` after ``soft_ttl`` s.

    ``key`` must embed the generations of everything the list depends on (see
    :mod:`platform_api.cache_keys`), so a write never needs to find and delete
    the entries it affects. After ``soft_ttl`` seconds one request refreshes the
    entry while concurrent ones are still served the previous list (dogpile's
    lock): this bounds time-based drift such as a story's age in its rank.
    """
    if not enabled():
        return fetch()
    filled = False

    def creator() -> T:
        nonlocal filled
        filled = True
        return _slow_fill(fetch())

    value = _region("lists").get_or_create(key, creator, expiration_time=soft_ttl)
    _count(hits=0 if filled else 1, misses=1 if filled else 0)
    return value


# --------------------------------------------------------------------------
# Write-through, after commit
# --------------------------------------------------------------------------
def _version_of(payload: Any) -> int:
    if isinstance(payload, dict):
        return int(payload.get("version", 0))
    return 0  # a cached "absent" is older than any row


def write_through(key: str, value: dict[str, Any]) -> bool:
    """Store ``value`` under ``key`` unless the cache already holds a newer version.

    Call this only after the write has committed. Returns whether the cache now
    holds a value at least as new as ``value``; when it cannot tell (memcached
    unreachable, endless contention) it deletes the key so the next read fills
    from PostgreSQL.
    """
    if not enabled():
        return True
    client = _client()
    mkey = _mangle(key)
    new = CachedValue(value, {"ct": time.time(), "v": value_version})
    for _ in range(CAS_ATTEMPTS):
        current, token = client.gets(mkey) or (None, None)
        if current is None:
            # ``add`` fails if someone stored a value in between: look again.
            if client.add(mkey, new, cache_keys.OBJECT_TTL, noreply=False):
                return True
            continue
        if _version_of(current.payload) >= _version_of(value):
            return True
        if client.cas(mkey, new, token, cache_keys.OBJECT_TTL, noreply=False):
            return True
    log.warning("write-through of %s gave up; deleting the key", key)
    client.delete(mkey, noreply=False)
    return False


def write_through_on_commit(key: str, value: dict[str, Any], using: str = "default") -> None:
    """Write ``value`` through to the cache once the current transaction commits."""
    transaction.on_commit(lambda: write_through(key, value), using=using)


# --------------------------------------------------------------------------
# Generations for lists
# --------------------------------------------------------------------------
def _new_generation() -> int:
    return time.time_ns() // 1000


def generations(names: Iterable[str]) -> dict[str, int] | None:
    """The current generation of each name, creating missing ones.

    Returns ``None`` when a counter cannot be read (its node is down): the
    caller then reads PostgreSQL directly rather than risk an old list.
    """
    names = list(names)
    client = _client()
    mkeys = {name: _mangle(cache_keys.generation_cache_key(name)) for name in names}
    found = client.get_many(list(mkeys.values())) or {}
    result: dict[str, int] = {}
    for name, mkey in mkeys.items():
        value = found.get(mkey)
        if value is None:
            client.add(mkey, _new_generation(), cache_keys.GENERATION_TTL, noreply=False)
            value = client.get(mkey)
        if value is None:
            return None
        result[name] = int(value)
    return result


def bump_generations(names: Iterable[str]) -> None:
    """Make every list entry stored under the current generations unreachable."""
    client = _client()
    for name in names:
        mkey = _mangle(cache_keys.generation_cache_key(name))
        if client.incr(mkey, 1, noreply=False) is None:
            # Missing counter: start a new one (time-based, so it can't collide);
            # if even that fails the node is down and will come back empty.
            if not client.add(mkey, _new_generation(), cache_keys.GENERATION_TTL, noreply=False):
                client.incr(mkey, 1, noreply=False)


def bump_generations_on_commit(names: Iterable[str], using: str = "default") -> None:
    """Bump the given list generations once the current transaction commits."""
    names = list(names)
    if enabled():
        transaction.on_commit(lambda: bump_generations(names), using=using)


def cached_list(
    name_for_key: Callable[[dict[str, int]], str],
    depends_on: Sequence[str],
    fetch: Callable[[], T],
    soft_ttl: int,
) -> T:
    """Read-through for a list that depends on the given generations.

    ``name_for_key`` builds the cache key from the current generations (a
    function from :mod:`platform_api.cache_keys`).
    """
    if not enabled():
        return fetch()
    gens = generations(depends_on)
    if gens is None:
        _count(misses=1)
        return fetch()
    return read_through_list(name_for_key(gens), fetch, soft_ttl)


def flush_all() -> None:
    """Empty every memcached node (benchmarks and tests use this for a cold start)."""
    client = _client()
    for node in client.clients.values():
        node.flush_all(noreply=False)


def delete(keys: Iterable[str]) -> None:
    """Delete objects from the cache (used by bulk deletes: select ids, invalidate, delete)."""
    client = _client()
    for key in keys:
        client.delete(_mangle(key), noreply=False)


__all__ = [
    "NO_VALUE",
    "RequestStats",
    "begin_request",
    "bump_generations_on_commit",
    "cached_list",
    "delete",
    "enabled",
    "flush_all",
    "generations",
    "read_through",
    "read_through_many",
    "set_fill_delay",
    "write_through",
    "write_through_on_commit",
]
