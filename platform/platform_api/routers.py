"""Send reads to HAProxy's read pool and writes to its write pool."""
from __future__ import annotations

from typing import Any

from django.conf import settings

from platform_api import primary


# Apps whose reads must see their own writes at once, so they never read the
# replica: Celery's result backend (django-celery-results) decides whether a
# chord's parts are all done by reading back the results the parts have just
# written; read on a replica that is a few milliseconds behind, the last part
# would see itself unfinished and the chord's callback would never run.
PRIMARY_ONLY_APPS = frozenset({"django_celery_results"})


class ReadWriteRouter:
    """Route ORM reads to the ``replica`` alias and writes to ``default``.

    Reads that must see this request's own writes (inside a write transaction)
    pass ``.using("default")`` explicitly; the router only sets the default.
    """

    def db_for_read(self, model: type, **hints: Any) -> str:
        """Plain reads go to the read pool (localhost:9001 in the post), behind the read fence.

        The fence (:mod:`platform_api.primary`) sends this unit of work's reads
        to the primary instead while the replica has not yet replayed every
        acknowledged write, so replica lag never shows.
        """
        if model._meta.app_label in PRIMARY_ONLY_APPS:
            return "default"
        if settings.READ_FENCE_ENABLED and not primary.replica_is_fresh():
            return "default"
        return "replica"

    def db_for_write(self, model: type, **hints: Any) -> str:
        """Writes go to the write pool (localhost:9002 in the post)."""
        return "default"

    def allow_relation(self, obj1: Any, obj2: Any, **hints: Any) -> bool:
        """Both aliases are the same database, so relations are always allowed."""
        return True

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool:
        """Migrations run only against the primary."""
        return db == "default"
