"""Every data-cache key, its time to live, and the versioned prefix, in one place.

One ``<noun>_cache_key`` function per data set, never one function shared by two
different queries (Zulip's ``zerver/lib/cache.py`` rule). Bump
:data:`KEY_SCHEMA_VERSION` whenever the shape of a cached value changes: every
old entry becomes unreachable at once, and memcached's LRU reclaims it.
"""
from __future__ import annotations

import hashlib
from typing import Literal

from django.conf import settings

# 2: user objects carry ``avatar``.
KEY_SCHEMA_VERSION = 2

# Objects are kept fresh by write-through, so they may live long; the TTL only
# bounds how long an unused object occupies memory.
OBJECT_TTL = 24 * 3600
# List entries are keyed by generation; an unreachable old generation simply
# ages out after this long.
LIST_TTL = 10 * 60
# Generation counters outlive the lists that embed them.
GENERATION_TTL = 7 * 24 * 3600

# Soft TTLs (seconds) after which one request refreshes a list in the
# background of the others: ranking depends on age, so it drifts with time.
FRONT_PAGE_SOFT_TTL = 30
NEWEST_SOFT_TTL = 300
USER_LISTS_SOFT_TTL = 300
HOME_SOFT_TTL = 300


def mangle(key: str) -> str:
    """Apply the deployment prefix and schema version; hash keys memcached can't take."""
    full = f"{settings.CACHE_KEY_PREFIX}:{KEY_SCHEMA_VERSION}:{key}"
    # memcached keys are at most 250 bytes of printable ASCII. Checking only
    # ``isspace`` let through non-ASCII letters, for which pymemcache raises
    # MemcacheIllegalInputError (an exception, not a miss), and control
    # characters, which memcached's text protocol does not allow.
    if len(full) > 200 or not all("!" <= c <= "~" for c in full):
        full = f"{settings.CACHE_KEY_PREFIX}:{KEY_SCHEMA_VERSION}:h:" + hashlib.sha256(key.encode()).hexdigest()
    return full


# --- objects (read-through, write-through) -------------------------------
def user_cache_key(user_id: int) -> str:
    """A user's profile object (``platform_api.repository.user_dict``)."""
    return f"user:{user_id}"


def user_id_by_username_cache_key(username: str) -> str:
    """The id for a username (usernames never change once taken)."""
    return f"user_id_by_name:{username.lower()}"


def story_cache_key(story_id: int) -> str:
    """A story object, vote count included (``platform_api.repository.story_dict``)."""
    return f"story:{story_id}"


# --- generations (bumped after commit by the writes that affect a list) ----
def generation_cache_key(name: str) -> str:
    """The counter for one generation name."""
    return f"gen:{name}"


STORIES_GENERATION = "stories"  # a new story: newest and top
VOTES_GENERATION = "votes"  # a vote: only the ranking of top can change


def user_stories_generation(user_id: int) -> str:
    """Bumped when the user posts a story."""
    return f"user_stories:{user_id}"


def user_follows_generation(user_id: int) -> str:
    """Bumped when the user follows, unfollows or is (un)followed."""
    return f"user_follows:{user_id}"


def user_home_generation(user_id: int) -> str:
    """Bumped when the user's stored home timeline (``timeline_entries``) changes.

    After commit by whoever changed the rows: ``create_story`` for the author's
    own entry, follow/unfollow for the backfill or removal, and the fan-out
    consumer for every follower a chunk reached. Home timelines no longer
    depend on the global stories generation, so a new story invalidates only
    the timelines it was actually written to.
    """
    return f"user_home:{user_id}"


# --- lists (read-through, keyed by generation) ----------------------------
def story_list_cache_key(sort: Literal["top", "new"], page: int, gens: dict[str, int]) -> str:
    """Ids on one page of the front page (``top``) or of ``new``.

    ``new`` depends only on new stories; ``top`` also on votes.
    """
    if sort == "top":
        return f"stories:top:{page}:{gens[STORIES_GENERATION]}:{gens[VOTES_GENERATION]}"
    return f"stories:new:{page}:{gens[STORIES_GENERATION]}"


def user_stories_cache_key(user_id: int, page: int, gens: dict[str, int]) -> str:
    """Ids on one page of a user's own stories."""
    return f"user_stories:{user_id}:{page}:{gens[user_stories_generation(user_id)]}"


def followers_cache_key(user_id: int, page: int, gens: dict[str, int]) -> str:
    """Ids on one page of a user's followers."""
    return f"followers:{user_id}:{page}:{gens[user_follows_generation(user_id)]}"


def following_cache_key(user_id: int, page: int, gens: dict[str, int]) -> str:
    """Ids on one page of the users a user follows."""
    return f"following:{user_id}:{page}:{gens[user_follows_generation(user_id)]}"


def home_timeline_cache_key(user_id: int, page: int, gens: dict[str, int]) -> str:
    """Ids on one page of a user's home timeline (fan-out on write, ``timeline_entries``).

    The entries are written for the user (by ``create_story``, follow/unfollow
    and the fan-out consumer), and each writer bumps the user's home generation
    after commit, so that one generation is the whole key.
    """
    return f"home:{user_id}:{page}:{gens[user_home_generation(user_id)]}"


# --- off-line results (the post's "Off-line processing": precalculated) ---
# These lists are written by Celery tasks, not by requests. A task bumps the
# generation after its run commits, so readers see a new run at once; the soft
# TTLs only bound staleness if a bump is ever lost (e.g. a memcached restart).
TRENDING_GENERATION = "trending"  # bumped by the trending task after each run
SUGGESTIONS_GENERATION = "suggestions"  # bumped by both map-reduce jobs after they store results
DOMAIN_VISITS_GENERATION = "domain_visits"  # bumped by the rollup tasks (optional: 60 s soft TTL)

TRENDING_SOFT_TTL = 60
SUGGESTIONS_SOFT_TTL = 300
DOMAIN_VISITS_SOFT_TTL = 60


def trending_cache_key(page: int, gens: dict[str, int]) -> str:
    """Ids on one page of the trending list (``trending_stories`` by rank)."""
    return f"trending:{page}:{gens[TRENDING_GENERATION]}"


def suggested_stories_cache_key(story_id: int, gens: dict[str, int]) -> str:
    """Ids of the stories suggested beside one story ("people who clicked this also clicked")."""
    return f"suggested_stories:{story_id}:{gens[SUGGESTIONS_GENERATION]}"


def follow_suggestions_cache_key(user_id: int, gens: dict[str, int]) -> str:
    """Ids of the people suggested to one user, minus those they already follow.

    It depends on the user's own follows too, so following a suggested person
    removes them from the list at once.
    """
    return (
        f"follow_suggestions:{user_id}:{gens[SUGGESTIONS_GENERATION]}"
        f":{gens[user_follows_generation(user_id)]}"
    )


def domain_visits_cache_key(day: str, gens: dict[str, int]) -> str:
    """One UTC day's visits per referring domain and per hour (``day`` is ``YYYY-MM-DD``)."""
    return f"domain_visits:{day}:{gens[DOMAIN_VISITS_GENERATION]}"


# --- the click log ---------------------------------------------------------
def story_clicks_cache_key(story_id: int) -> str:
    """A story's click count, if cached (read-through with a short TTL).

    The daily purge deletes old clicks by primary key and deletes this key for
    every story whose clicks it removes (the post's invalidation-safe bulk
    delete, ``platform_api.tasks.purge``).
    """
    return f"story_clicks:{story_id}"
