"""The consumers of the post's "Message queues": processes that do the slow part off-line.

The platform publishes an event and returns; these processes, a separate
machine pool in the post's sense, consume the events from RabbitMQ and tie up
the loose ends:

* ``fanout`` (:mod:`consumers.fanout`) writes a new story into every
  follower's home timeline, in chunks so one author with thousands of
  followers never holds up everyone else;
* ``clicks`` (:mod:`consumers.clicks`) writes the click log in batches, so the
  ``/r/<id>`` redirect never waits on PostgreSQL.

The shape is Zulip's (``zerver/worker/base.py``): one module per queue, one
class with ``consume_batch``, a registry (:mod:`consumers.registry`) and one
command that runs one queue or all (``python -m consumers fanout|clicks|all``).
The machinery every consumer shares (acks after commit, bounded prefetch,
retries, reconnects, graceful stop) is in :mod:`consumers.base`.
"""
