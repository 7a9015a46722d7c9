"""What the fault tests look at besides the load's own figures: HAProxy's view and the database.

HAProxy's runtime API (``show stat``) says whether a server is in its pool and
how many requests or connections it has taken (``stot``); PostgreSQL, queried
on the primary as the superuser, says whether every write the site
acknowledged is really there.
"""
from __future__ import annotations

import functools
from typing import Any, Callable, Iterable

from scalestack import stack
from scalestack.topology import Topology
from tests.integration.helpers import sql


# --------------------------------------------------------------------------
# HAProxy
# --------------------------------------------------------------------------
def pool_stats(t: Topology) -> dict[tuple[str, str], dict[str, str]]:
    """``show stat`` as {(pool, server): {column: value}} (servers only, no frontends or backends)."""
    return {key: row for key, row in stack.server_stats(t).items() if key[1] not in ("FRONTEND", "BACKEND")}


def server_status(t: Topology, pool: str, server: str) -> str | None:
    """``UP``, ``DOWN``, ``MAINT``, ``DRAIN``... as HAProxy sees ``server`` in ``pool`` (``None`` if absent)."""
    row = pool_stats(t).get((pool, server))
    return row["status"].split(" ")[0] if row else None


def server_total(t: Topology, pool: str, server: str) -> int:
    """How many sessions (requests, or database connections) HAProxy has sent ``server`` in ``pool``."""
    row = pool_stats(t).get((pool, server))
    return int(row["stot"] or 0) if row else 0


def every_pool_server_up(t: Topology) -> bool:
    """Whether HAProxy sees every web, platform and database server UP in each of its pools."""
    wanted = ({("web_pool", p.name) for p in t.web} | {("platform_pool", p.name) for p in t.platform}
              | {("db_read_pool", db.name) for db in t.databases} | {("db_write_pool", t.postgres.name)})
    stats = pool_stats(t)
    return all(stats.get(key, {}).get("status") == "UP" for key in wanted)


# --------------------------------------------------------------------------
# PostgreSQL
# --------------------------------------------------------------------------
def _literal(value: Any) -> str:
    """A SQL literal for a number or a string (the values come from our own load log)."""
    if isinstance(value, int):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


def _values(rows: Iterable[tuple[Any, ...]]) -> str:
    return ", ".join("(" + ", ".join(_literal(v) for v in row) + ")" for row in rows)


def missing_writes(t: Topology, acks: list[dict[str, Any]],
                   query: Callable[[str], str] | None = None) -> list[str]:
    """Every acknowledged write (sign-up, story, vote, follow) that is not in the database.

    Queried on the primary, which every acknowledged write was committed to:
    over its socket, or with ``query`` (the compose suite's ``docker exec psql``).
    """
    run = query or functools.partial(sql, t)
    missing: list[str] = []
    signups = {(a["user"],) for a in acks if a["ack"] == "signup"}
    stories = {(a["id"], a["title"]) for a in acks if a["ack"] == "story"}
    votes = {(a["user"], a["story"]) for a in acks if a["ack"] == "vote"}
    follows = {(a["user"], a["followee"]) for a in acks if a["ack"] == "follow"}
    if signups:
        found = run(f"SELECT v.name FROM (VALUES {_values(signups)}) v(name) "
                    "LEFT JOIN users u ON u.username = v.name WHERE u.id IS NULL")
        missing += [f"sign-up {name}" for name in found.split()]
    if stories:
        found = run(f"SELECT v.id FROM (VALUES {_values(stories)}) v(id, title) "
                    "LEFT JOIN stories s ON s.id = v.id AND s.title = v.title WHERE s.id IS NULL")
        missing += [f"story {story_id}" for story_id in found.split()]
    if votes:
        found = run(f"SELECT v.name || ' on ' || v.story FROM (VALUES {_values(votes)}) v(name, story) "
                    "LEFT JOIN users u ON u.username = v.name "
                    "LEFT JOIN votes x ON x.user_id = u.id AND x.story_id = v.story WHERE x.id IS NULL")
        missing += [f"vote by {row}" for row in found.splitlines()]
    if follows:
        found = run(f"SELECT v.name || ' -> ' || v.other FROM (VALUES {_values(follows)}) v(name, other) "
                    "LEFT JOIN users a ON a.username = v.name LEFT JOIN users b ON b.username = v.other "
                    "LEFT JOIN follows f ON f.follower_id = a.id AND f.followee_id = b.id WHERE f.id IS NULL")
        missing += [f"follow {row}" for row in found.splitlines()]
    return missing


def user_ids(t: Topology, usernames: Iterable[str]) -> dict[str, int]:
    """Users' ids by name."""
    names = ", ".join(_literal(n) for n in usernames)
    if not names:
        return {}
    rows = sql(t, f"SELECT username, id FROM users WHERE username IN ({names})").splitlines()
    return {name: int(i) for name, i in (row.split("|") for row in rows)}


def outbox_waiting(t: Topology) -> int:
    """Events committed to the outbox and not yet published to RabbitMQ."""
    return int(sql(t, "SELECT count(*) FROM outbox_events WHERE published_at IS NULL"))


def timeline_gaps(t: Topology, story_ids: list[int], followed_before: float) -> tuple[int, int]:
    """(missing, expected) home-timeline entries of ``story_ids``.

    Expected: one entry per story for every follower of its author whose
    follow was made before ``followed_before`` (a Unix time), which the fan-out
    consumer must deliver. Later follows are the follow's backfill's business,
    and could race with a story posted at the same moment, so they are left out.
    """
    if not story_ids:
        return 0, 0
    ids = ", ".join(str(i) for i in story_ids)
    row = sql(t, f"SELECT count(*) FILTER (WHERE te.story_id IS NULL), count(*) FROM stories s "
                 f"JOIN follows f ON f.followee_id = s.author_id AND f.created_at < to_timestamp({followed_before}) "
                 "LEFT JOIN timeline_entries te ON te.user_id = f.follower_id AND te.story_id = s.id "
                 f"WHERE s.id IN ({ids})")
    missing, expected = row.split("|")
    return int(missing), int(expected)


def clicks_since(t: Topology, since: float) -> int:
    """Clicks in the click log made at or after ``since`` (a Unix time)."""
    return int(sql(t, f"SELECT count(*) FROM clicks WHERE clicked_at >= to_timestamp({since})"))
