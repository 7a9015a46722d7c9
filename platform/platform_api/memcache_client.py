"""The memcached smart client: pymemcache's HashClient, made safe when a node returns.

The post's "In-memory caches" section spreads keys over several memcached nodes
with consistent hashing in the client. pymemcache's ``HashClient`` does that and
steps around a node that stops answering: after ``retry_attempts`` failures
(``retry_timeout`` apart) it takes the node out of the ring, its keys hash to the
other nodes, and after ``dead_timeout`` it puts the node back. This subclass
keeps a dead node's keys where they are instead, uncached until it returns
(:meth:`FlushOnReturnHashClient.remove_server` says why).

That last step is the post's "Cache invalidation" problem in disguise. While a
node was out, writes for its keys (write-throughs, generation bumps) landed on
another node. A node that was *unreachable but not restarted* (a partition, a
SIGSTOP, a long GC-like stall) still holds the values from before the outage, and
once it is back in the ring its keys hash to it again: stale reads, for up to a
day (``OBJECT_TTL``). pymemcache keeps no replicas and no versions, so this module
flushes a node before anything is read from it again:

* **A dead node** (removed from the ring) is ``flush_all``-ed before it is added
  back; if the flush fails the node stays out for another ``dead_timeout``.
* **A failed node** (it failed, but fewer than ``retry_attempts`` times, so it was
  never removed) is flushed before it is retried. Its keys never moved, but with
  ``ignore_exc`` every command sent while it was failing was silently skipped,
  write-throughs and their fallback deletes included, so it can be just as stale.
* **The rest of the process learns of it.** Each thread has its own HashClient
  (dogpile keeps one per thread), and a thread that sent nothing to the node
  during the outage would read it as if nothing had happened. A failure seen by
  any client is recorded process-wide, and every client in the process then
  treats that node as failed until one of them has flushed it.

Flushing is done independently by every process, and the flushes are harmless:
a node that another process has already flushed and begun to re-fill loses only
values that can be read again from PostgreSQL, so the cost is misses, never a
wrong answer. Generation counters are lost too; ``cache.generations`` re-creates
them from the clock (its rule 3), so a re-created counter can never land on a
number under which an old list entry was stored.

What this cannot close: a process that sent nothing at all to the node during
its outage learns of it only when a process that did flushes it (at most
``retry_timeout`` or ``dead_timeout`` after that process's next request). Under
load every process touches every node within milliseconds; short TTLs, or a
cluster-wide node epoch, would bound the rest.

This module imports no Django settings, so its unit tests can build it with
explicit parameters.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Any

from pymemcache.client.hash import HashClient

log = logging.getLogger(__name__)

# Nodes that some client in this process has seen fail and nobody has flushed
# since: node key ("host:port") -> when the failure was first seen.
_suspects: dict[str, float] = {}
_suspects_lock = threading.Lock()


def _suspect(node: str) -> float | None:
    with _suspects_lock:
        return _suspects.get(node)


def _clear_suspect(node: str, flushed_at: float) -> None:
    """Forget a suspicion that a flush started at ``flushed_at`` has answered."""
    with _suspects_lock:
        since = _suspects.get(node)
        if since is not None and since <= flushed_at:
            del _suspects[node]


def forget_suspects() -> None:
    """Clear the process-wide record of failed nodes (tests start from scratch)."""
    with _suspects_lock:
        _suspects.clear()


class FlushOnReturnHashClient(HashClient):
    """A ``HashClient`` that empties a node before using it again after a failure.

    Construct it with ``ignore_exc=True``: a node that is down must read as a
    miss (the request falls through to PostgreSQL), not raise.
    """

    def _flush(self, server: Any) -> bool:
        """``flush_all`` one node over a fresh connection; whether it answered OK."""
        node = self._make_client_key(server)
        started = time.time()
        client = self.client_class(server, **self.default_kwargs)
        try:
            ok = bool(client.flush_all(noreply=False))
        except Exception as exc:  # the node is still unreachable: keep it out
            log.info("memcached %s still unreachable (%s); keeping it out", node, exc)
            return False
        finally:
            client.close()
        if ok:
            log.warning("memcached %s is back; flushed it before use", node)
            _clear_suspect(node, started)
        return ok

    def _mark_failed_server(self, server: Any) -> None:
        super()._mark_failed_server(server)
        with _suspects_lock:
            _suspects.setdefault(self._make_client_key(server), time.time())

    def remove_server(self, server: Any, port: Any = None) -> None:
        """Mark a node dead *without* moving its keys onto the other nodes.

        pymemcache takes a dead node out of the ring, so its keys hash to the
        others while it is away. But each thread's client, in each process,
        decides on its own when a node is dead and when it is back, so for a
        while after the outage some clients write a key to the returned node
        and others still read and write the copy on the fallback node: a
        stale read (the fault suite saw it). Keeping the node in the ring and
        skipping it instead (:meth:`_get_client`) means its keys are simply
        not cached while it is down (they read as misses, and PostgreSQL
        answers), so no second copy exists anywhere to go stale.
        """
        if port is not None:
            server = (server, port)
        self._failed_clients.pop(server, None)
        self._dead_clients[server] = time.time()

    def _get_client(self, key: str) -> Any:
        """The key's node, or ``None`` (a miss, a skipped write) while that node is dead."""
        client = super()._get_client(key)
        if client is not None and client.server in self._dead_clients:
            return None
        return client

    def _retry_dead(self) -> None:
        """pymemcache's re-add of dead nodes, but only after a successful flush."""
        now = time.time()
        if now - self._last_dead_check_time <= self.dead_timeout:
            return
        self._last_dead_check_time = now
        for server, dead_time in list(self._dead_clients.items()):
            if now - dead_time <= self.dead_timeout:
                continue
            if self._flush(server):
                # Still in the ring (see remove_server): only stop skipping it.
                del self._dead_clients[server]
                self._failed_clients.pop(server, None)
            else:
                self._dead_clients[server] = now  # another dead_timeout out

    def _usable(self, client: Any) -> bool:
        """Whether a command may be sent to this in-ring node now.

        Replaces the first half of pymemcache's ``_safely_run_func``: it adds the
        process-wide suspicion and the flush before a retry, and it does not
        send the command to a node it has just marked dead (pymemcache does,
        and that node may answer with a stale value).
        """
        server = client.server
        meta = self._failed_clients.get(server)
        if meta is None:
            since = _suspect(self._make_client_key(server))
            if since is None:
                return True
            # Another client in this process saw it fail: adopt that failure.
            meta = self._failed_clients[server] = {"failed_time": since, "attempts": 0}
        if meta["attempts"] >= self.retry_attempts:
            self.remove_server(server)
            return False
        if time.time() - meta["failed_time"] <= self.retry_timeout:
            return False
        if self._flush(server):
            self._failed_clients.pop(server, None)
            return True
        self._mark_failed_server(server)
        return False

    def _safely_run_func(self, client: Any, func: Any, default_val: Any, *args: Any, **kwargs: Any) -> Any:
        if not self._usable(client):
            return default_val
        return super()._safely_run_func(client, func, default_val, *args, **kwargs)

    def _safely_run_set_many(self, client: Any, values: dict, *args: Any, **kwargs: Any) -> Any:
        if not self._usable(client):
            return list(values)
        return super()._safely_run_set_many(client, values, *args, **kwargs)
