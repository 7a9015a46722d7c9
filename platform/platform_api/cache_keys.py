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

KEY_SCHEMA_VERSION = 1

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


STORIES_GENERATION = "stories"  # a new story: newest, top, every home timeline
VOTES_GENERATION = "votes"  # a vote: only the ranking of top can change


def user_stories_generation(user_id: int) -> str:
    """Bumped when the user posts a story."""
    return f"user_stories:{user_id}"


def user_follows_generation(user_id: int) -> str:
    """Bumped when the user follows, unfollows or is (un)followed."""
    return f"user_follows:{user_id}"


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
    """Ids on one page of a user's home timeline (a query until fan-out arrives).

    It depends on whom the user follows and on every new story, so both
    generations are part of the key.
    """
    return (
        f"home:{user_id}:{page}:{gens[user_follows_generation(user_id)]}"
        f":{gens[STORIES_GENERATION]}"
    )
