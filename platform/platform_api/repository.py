"""Every query the platform runs, and every use of the data cache.

This is where the post's "Caching" section meets the database:

* **Objects** (a user, a story, a username's id) are read through the cache
  (:func:`platform_api.cache.read_through`, or ``read_through_many`` for a page
  at once, Zulip's bulk cached fetch) and written through it after each write
  commits (:func:`platform_api.cache.write_through_on_commit`).
* **Lists** (a page of the front page, a user's followers, ...) are cached as
  ids only, under keys that embed generation counters. A write bumps the
  generations of the lists it affects after commit, instead of hunting for the
  entries ("modifications to unknown number of elements"). The objects on a
  page then come from the object cache, so a vote updates one story object and
  every cached page shows the new count at once.

Reads in write paths use ``.using("default")`` (the primary, through HAProxy's
write pool) so they see the transaction's own changes; every other read goes
through the router to ``replica`` (HAProxy's read pool).

Every write runs in one transaction on ``default``, increments ``version`` on
each row whose cached object changes, re-reads those rows inside the
transaction, and only writes them through once the transaction has committed.
Counters are changed with ``F()`` expressions, never read-modify-write.

Home timelines are the post's "Off-line processing" pattern "do enough in-line,
then tie up the loose ends": they are stored (``timeline_entries``, fan-out on
write). Posting a story writes the author's own entry in-line and publishes a
``story.created`` event through the outbox; the fan-out consumer
(``consumers/fanout.py``) writes every follower's entry off-line.
"""
from __future__ import annotations

import functools
from typing import Any, Callable, Literal, Sequence

from django.contrib.auth.hashers import check_password, make_password
from django.db import IntegrityError, connections, transaction
from django.db.models import F, QuerySet
from django.db.models.expressions import RawSQL
from django.db.models.functions import Lower
from django.utils import timezone

from platform_api import cache, cache_keys, events, messaging, rules
from platform_api.models import Follow, Story, TimelineEntry, User, Vote

UserDict = dict[str, Any]
StoryDict = dict[str, Any]
PageDict = dict[str, Any]

WRITE_DB = "default"

# How many of an author's latest stories a new follower's home timeline gets
# at once; older ones are still on the author's profile.
FOLLOW_BACKFILL_STORIES = 100

# The columns a cached user object is built from; the password hash and the
# admin flags are never cached or sent to the web tier.
USER_FIELDS = (
    "id",
    "username",
    "date_joined",
    "followers_count",
    "following_count",
    "stories_count",
    "karma",
    "avatar",
    "version",
)
STORY_FIELDS = ("id", "author_id", "author__username", "title", "url", "text", "votes", "created_at", "version")


class NotFound(Exception):
    """A row the request names does not exist (HTTP 404)."""


class Conflict(Exception):
    """The request conflicts with existing data, e.g. a taken username (HTTP 409)."""


class InvalidRequest(Exception):
    """The request is well-formed but not allowed, e.g. following oneself (HTTP 400)."""


# --------------------------------------------------------------------------
# Objects: how rows become the dicts that are cached and returned
# --------------------------------------------------------------------------
def user_dict(user: User) -> UserDict:
    """The cached and public form of a user (``User`` in the API doc)."""
    return {field: getattr(user, field) for field in USER_FIELDS}


def story_dict(story: Story) -> StoryDict:
    """The cached and public form of a story (``Story`` in the API doc).

    ``story.author`` must be loaded (``select_related("author")``). The
    author's username is copied in because it never changes, so a page of
    stories needs no user lookups.
    """
    return _story_from_row(
        {
            "id": story.id,
            "author_id": story.author_id,
            "author__username": story.author.username,
            "title": story.title,
            "url": story.url,
            "text": story.text,
            "votes": story.votes,
            "created_at": story.created_at,
            "version": story.version,
        }
    )


def _story_from_row(row: dict[str, Any]) -> StoryDict:
    """Build a story dict from a ``values(*STORY_FIELDS)`` row."""
    return {
        "id": row["id"],
        "author_id": row["author_id"],
        "author_username": row["author__username"],
        "title": row["title"],
        "url": row["url"],
        "domain": rules.domain_of(row["url"]),
        "text": row["text"],
        "votes": row["votes"],
        "created_at": row["created_at"],
        "version": row["version"],
    }


def _on(queryset: QuerySet, using: str | None) -> QuerySet:
    """``queryset`` on ``using`` if given, else wherever the router sends it."""
    return queryset.using(using) if using else queryset


def _fetch_users(ids: Sequence[int], using: str | None = None) -> dict[int, UserDict]:
    """Read users from PostgreSQL by id (no cache)."""
    rows = _on(User.objects.only(*USER_FIELDS), using).filter(id__in=list(ids))
    return {user.id: user_dict(user) for user in rows}


def _fetch_stories(ids: Sequence[int], using: str | None = None) -> dict[int, StoryDict]:
    """Read stories with their author's username from PostgreSQL by id (no cache)."""
    rows = _on(Story.objects.values(*STORY_FIELDS), using).filter(id__in=list(ids))
    return {row["id"]: _story_from_row(row) for row in rows}


def _read_many(
    ids: Sequence[int],
    key_fn: Callable[[int], str],
    fetch: Callable[[Sequence[int]], dict[int, dict[str, Any]]],
) -> list[dict[str, Any]]:
    """Objects for ``ids`` in order, from the cache with one query for the misses.

    Ids whose row does not exist are left out (their "absent" is cached too).
    """
    unique = list(dict.fromkeys(ids))
    id_by_key = {key_fn(i): i for i in unique}

    def fetch_missing(keys: Sequence[str]) -> list[dict[str, Any] | None]:
        found = fetch([id_by_key[key] for key in keys])
        return [found.get(id_by_key[key]) for key in keys]

    values = cache.read_through_many(list(id_by_key), fetch_missing)
    by_id = dict(zip(unique, values))
    return [by_id[i] for i in ids if by_id.get(i) is not None]


def get_user(user_id: int) -> UserDict | None:
    """One user by id, read through the cache; ``None`` if there is no such user."""
    return cache.read_through(cache_keys.user_cache_key(user_id), lambda: _fetch_users([user_id]).get(user_id))


def get_users(ids: Sequence[int]) -> list[UserDict]:
    """Users for ``ids`` in the same order (missing ones left out), one query at most."""
    return _read_many(ids, cache_keys.user_cache_key, _fetch_users)


def get_user_id(username: str) -> int | None:
    """The id of ``username`` (case-insensitive), read through the cache.

    The cached value is ``{"id": ..., "version": 1}`` rather than a bare int so
    that it carries a version: a cached "absent" (version 0) is then replaced
    by the write-through of a sign-up that takes the name.
    """
    if not rules.is_valid_username(username):
        return None  # no such user can exist; don't ask the database

    def fetch() -> dict[str, int] | None:
        user_id = _username_query(username).values_list("id", flat=True).first()
        return None if user_id is None else _username_entry(user_id)

    entry = cache.read_through(cache_keys.user_id_by_username_cache_key(username), fetch)
    return None if entry is None else int(entry["id"])


def get_user_by_username(username: str) -> UserDict | None:
    """One user by name, through two cached lookups (name -> id, id -> user)."""
    user_id = get_user_id(username)
    return None if user_id is None else get_user(user_id)


def get_story(story_id: int) -> StoryDict | None:
    """One story by id, read through the cache; ``None`` if there is no such story."""
    return cache.read_through(cache_keys.story_cache_key(story_id), lambda: _fetch_stories([story_id]).get(story_id))


def get_stories(ids: Sequence[int]) -> list[StoryDict]:
    """Stories for ``ids`` in the same order (missing ones left out), one query at most."""
    return _read_many(ids, cache_keys.story_cache_key, _fetch_stories)


def _username_query(username: str, using: str | None = None) -> QuerySet:
    """Users whose name equals ``username`` ignoring case (served by the lower() index)."""
    return _on(User.objects.alias(name_lower=Lower("username")), using).filter(name_lower=username.lower())


def _username_entry(user_id: int) -> dict[str, int]:
    """The cached value of a username -> id entry (usernames never change: version 1)."""
    return {"id": user_id, "version": 1}


# --------------------------------------------------------------------------
# Lists: ids cached under generation keys, objects from the object cache
# --------------------------------------------------------------------------
def _cached_ids(
    key_fn: Callable[[dict[str, int]], str],
    depends_on: Sequence[str],
    ids_query: QuerySet,
    page: int,
    soft_ttl: int,
) -> tuple[list[int], bool]:
    """One page of ids from a cached list, and whether there is a next page.

    The cached entry holds one id more than a page so ``has_next`` needs no count.
    """
    offset, limit = rules.page_window(page)

    def fetch() -> list[int]:
        return list(ids_query[offset : offset + limit])

    ids = cache.cached_list(key_fn, list(depends_on), fetch, soft_ttl)
    return rules.split_page(ids)


def _story_page(
    key_fn: Callable[[dict[str, int]], str],
    depends_on: Sequence[str],
    ids_query: QuerySet,
    page: int,
    soft_ttl: int,
) -> PageDict:
    """A ``StoryPage``: cached ids, then the stories from the object cache."""
    ids, has_next = _cached_ids(key_fn, depends_on, ids_query, page, soft_ttl)
    return {"items": get_stories(ids), "page": page, "has_next": has_next}


def _user_page(
    key_fn: Callable[[dict[str, int]], str],
    depends_on: Sequence[str],
    ids_query: QuerySet,
    page: int,
) -> PageDict:
    """A ``UserPage``: cached ids, then ``{id, username}`` from the object cache."""
    ids, has_next = _cached_ids(key_fn, depends_on, ids_query, page, cache_keys.USER_LISTS_SOFT_TTL)
    items = [{"id": user["id"], "username": user["username"]} for user in get_users(ids)]
    return {"items": items, "page": page, "has_next": has_next}


def top_story_ids_query() -> QuerySet:
    """Story ids by Hacker News' gravity score, best first (id desc breaks ties).

    The score depends on the current time, so no index can hold it: PostgreSQL
    scores every story and keeps the best few with a top-N heap sort.
    """
    return (
        Story.objects.annotate(score=RawSQL(rules.TOP_SCORE_SQL, ()))
        .order_by("-score", "-id")
        .values_list("id", flat=True)
    )


def new_story_ids_query() -> QuerySet:
    """Story ids newest first (walks the ``created_at`` index backwards)."""
    return Story.objects.order_by("-created_at", "-id").values_list("id", flat=True)


def story_page(sort: Literal["top", "new"], page: int) -> PageDict:
    """A page of the front page (``top``) or of the newest stories (``new``)."""
    key_fn = functools.partial(cache_keys.story_list_cache_key, sort, page)
    if sort == "top":
        depends_on = [cache_keys.STORIES_GENERATION, cache_keys.VOTES_GENERATION]
        return _story_page(key_fn, depends_on, top_story_ids_query(), page, cache_keys.FRONT_PAGE_SOFT_TTL)
    depends_on = [cache_keys.STORIES_GENERATION]
    return _story_page(key_fn, depends_on, new_story_ids_query(), page, cache_keys.NEWEST_SOFT_TTL)


def user_stories(user_id: int, page: int) -> PageDict:
    """A page of one user's stories, newest first (the author/created_at index)."""
    query = Story.objects.filter(author_id=user_id).order_by("-created_at", "-id").values_list("id", flat=True)
    key_fn = functools.partial(cache_keys.user_stories_cache_key, user_id, page)
    depends_on = [cache_keys.user_stories_generation(user_id)]
    return _story_page(key_fn, depends_on, query, page, cache_keys.USER_LISTS_SOFT_TTL)


def followers(user_id: int, page: int) -> PageDict:
    """A page of the users who follow ``user_id``, most recent first."""
    query = (
        Follow.objects.filter(followee_id=user_id)
        .order_by("-created_at", "-id")
        .values_list("follower_id", flat=True)
    )
    key_fn = functools.partial(cache_keys.followers_cache_key, user_id, page)
    return _user_page(key_fn, [cache_keys.user_follows_generation(user_id)], query, page)


def following(user_id: int, page: int) -> PageDict:
    """A page of the users ``user_id`` follows, most recent first."""
    query = (
        Follow.objects.filter(follower_id=user_id)
        .order_by("-created_at", "-id")
        .values_list("followee_id", flat=True)
    )
    key_fn = functools.partial(cache_keys.following_cache_key, user_id, page)
    return _user_page(key_fn, [cache_keys.user_follows_generation(user_id)], query, page)


def home_timeline(user_id: int, page: int) -> PageDict:
    """The user's own stories and those of the people they follow, newest first.

    Fan-out on write: the rows were written in advance (the author's own entry
    by :func:`create_story`, followers' entries by the fan-out consumer, an
    author's recent stories by :func:`follow`), so a page is one range scan of
    the ``timeline_user_newest`` index, not a join over everyone followed.
    Every writer bumps the user's home generation after commit.
    """
    query = (
        TimelineEntry.objects.filter(user_id=user_id)
        .order_by("-created_at", "-story_id")
        .values_list("story_id", flat=True)
    )
    key_fn = functools.partial(cache_keys.home_timeline_cache_key, user_id, page)
    depends_on = [cache_keys.user_home_generation(user_id)]
    return _story_page(key_fn, depends_on, query, page, cache_keys.HOME_SOFT_TTL)


def is_following(user_id: int, other_id: int) -> bool:
    """Whether ``user_id`` follows ``other_id`` (an index lookup, not cached)."""
    return Follow.objects.filter(follower_id=user_id, followee_id=other_id).exists()


# --------------------------------------------------------------------------
# Accounts
# --------------------------------------------------------------------------
def create_user(username: str, password: str) -> UserDict:
    """Sign up: store the user and write through its object and its name's id.

    Raises :class:`Conflict` if the name is taken (also when two sign-ups race
    for it: the unique index decides, and the loser's ``IntegrityError`` is
    turned into the same answer).
    """
    if _username_query(username, WRITE_DB).exists():
        raise Conflict(f"the username {username!r} is taken")
    user = User(username=username)
    # Hash before the transaction opens: PBKDF2 takes a good part of a second,
    # and nothing should hold a transaction open while it runs.
    user.set_password(password)
    try:
        with transaction.atomic(using=WRITE_DB):
            user.save(using=WRITE_DB)
            fresh = _fetch_users([user.id], WRITE_DB)[user.id]
            cache.write_through_on_commit(cache_keys.user_cache_key(user.id), fresh)
            cache.write_through_on_commit(
                cache_keys.user_id_by_username_cache_key(username), _username_entry(user.id)
            )
    except IntegrityError as exc:
        raise Conflict(f"the username {username!r} is taken") from exc
    return fresh


def authenticate(username: str, password: str) -> UserDict | None:
    """The user if ``password`` is theirs, else ``None`` (Django's password hashers).

    An unknown name still runs the hasher once, as Django's ``ModelBackend``
    does, so the answer takes about as long as for a wrong password and does
    not reveal which names exist.
    """
    user = _user_with_password(username)
    if user is None:
        make_password(password)
        return None
    if not user.is_active or not check_password(password, user.password):
        return None
    return user_dict(user)


def _user_with_password(username: str) -> User | None:
    """The user row with its password hash, from the replica or else the primary.

    A name missing from the replica is looked up once more on the primary: a
    user who signed up a moment ago may not have been replicated yet.
    """
    if not rules.is_valid_username(username):
        return None
    fields = (*USER_FIELDS, "password", "is_active")
    for using in ("replica", WRITE_DB):
        user = _username_query(username, using).only(*fields).first()
        if user is not None:
            return user
    return None


def set_avatar(user_id: int, avatar: str) -> UserDict:
    """Point the user at a new avatar file (already stored) and write the user through.

    The same path as a counter change: the update bumps ``version`` in one
    transaction, and the fresh row is written through after commit, so the
    next read of the user is the new avatar, never the old one.
    """
    with transaction.atomic(using=WRITE_DB):
        if not _bump_user(user_id, avatar=avatar):
            raise NotFound(f"user {user_id} not found")
        fresh = _fetch_users([user_id], WRITE_DB)[user_id]
        cache.write_through_on_commit(cache_keys.user_cache_key(user_id), fresh)
    return fresh


# --------------------------------------------------------------------------
# Stories and votes
# --------------------------------------------------------------------------
def create_story(author_id: int, title: str, url: str, text: str) -> StoryDict:
    """Submit a story: insert it, count it on the author, write both through.

    New stories change ``new`` and ``top`` (the stories generation), the
    author's own list and the author's home timeline, which gets its entry in
    the same transaction so the author sees the story at once. Followers' home
    timelines are written off-line: the ``story.created`` event is stored in
    the outbox in this transaction and published once it commits, and the
    fan-out consumer writes their entries.
    """
    with transaction.atomic(using=WRITE_DB):
        if not _bump_user(author_id, stories_count=F("stories_count") + 1):
            raise NotFound(f"user {author_id} not found")
        story = Story.objects.using(WRITE_DB).create(
            author_id=author_id, title=title, url=url, text=text, created_at=timezone.now()
        )
        TimelineEntry.objects.using(WRITE_DB).create(
            user_id=author_id, story_id=story.id, author_id=author_id, created_at=story.created_at
        )
        fresh = _fetch_stories([story.id], WRITE_DB)[story.id]
        _write_through_users([author_id])
        cache.write_through_on_commit(cache_keys.story_cache_key(story.id), fresh)
        cache.bump_generations_on_commit(
            [
                cache_keys.STORIES_GENERATION,
                cache_keys.user_stories_generation(author_id),
                cache_keys.user_home_generation(author_id),
            ]
        )
        # Last, so that its after-commit publish runs after the cache is
        # already fresh for the author: a broker that is slow to answer
        # delays only the fan-out, never what the author sees.
        events.publish_on_commit(
            messaging.STORY_CREATED,
            {"story_id": story.id, "author_id": author_id, "created_at": story.created_at.isoformat()},
        )
    return fresh


def vote(story_id: int, user_id: int) -> tuple[bool, StoryDict]:
    """Count ``user_id``'s vote on ``story_id`` once; return (counted, story).

    The insert is ``ON CONFLICT DO NOTHING``: a second vote, even one racing
    the first in another transaction, inserts nothing and changes nothing.
    """
    with transaction.atomic(using=WRITE_DB):
        author_id = Story.objects.using(WRITE_DB).filter(id=story_id).values_list("author_id", flat=True).first()
        if author_id is None:
            raise NotFound(f"story {story_id} not found")
        if not User.objects.using(WRITE_DB).filter(id=user_id).exists():
            raise NotFound(f"user {user_id} not found")
        counted = _insert_ignoring_conflict(
            Vote._meta.db_table, {"story_id": story_id, "user_id": user_id}, ("story_id", "user_id")
        )
        if counted:
            # Story first, then its author: every write path that locks a story
            # and a user does so in this order, so two votes cannot deadlock.
            Story.objects.using(WRITE_DB).filter(id=story_id).update(
                votes=F("votes") + 1, version=F("version") + 1
            )
            _bump_user(author_id, karma=F("karma") + 1)
        story = _fetch_stories([story_id], WRITE_DB)[story_id]
        if counted:
            cache.write_through_on_commit(cache_keys.story_cache_key(story_id), story)
            _write_through_users([author_id])
            cache.bump_generations_on_commit([cache_keys.VOTES_GENERATION])
    return counted, story


# --------------------------------------------------------------------------
# The social graph
# --------------------------------------------------------------------------
def follow(user_id: int, other_id: int) -> tuple[bool, UserDict, UserDict]:
    """``user_id`` follows ``other_id`` (idempotent); return (changed, user, other)."""
    return _change_follow(user_id, other_id, add=True)


def unfollow(user_id: int, other_id: int) -> tuple[bool, UserDict, UserDict]:
    """``user_id`` stops following ``other_id`` (idempotent); return (changed, user, other)."""
    return _change_follow(user_id, other_id, add=False)


def _change_follow(user_id: int, other_id: int, *, add: bool) -> tuple[bool, UserDict, UserDict]:
    """Insert or delete one follow and keep both users' counters in step.

    The follower's stored home timeline changes in the same transaction: a
    follow copies in the followee's latest stories, an unfollow removes every
    entry by the followee. The fan-out consumer only ever adds the stories
    posted after this.
    """
    if user_id == other_id:
        raise InvalidRequest("a user cannot follow themselves")
    with transaction.atomic(using=WRITE_DB):
        _require_users(user_id, other_id)
        if add:
            changed = _insert_ignoring_conflict(
                Follow._meta.db_table,
                {"follower_id": user_id, "followee_id": other_id},
                ("follower_id", "followee_id"),
            )
        else:
            changed = _delete_follow(user_id, other_id)
        if changed:
            _update_follow_counts(user_id, other_id, 1 if add else -1)
            if add:
                _backfill_timeline(user_id, other_id)
            else:
                _remove_from_timeline(user_id, other_id)
        users = _fetch_users([user_id, other_id], WRITE_DB)
        if changed:
            for changed_id, fresh in users.items():
                cache.write_through_on_commit(cache_keys.user_cache_key(changed_id), fresh)
            cache.bump_generations_on_commit(
                [
                    cache_keys.user_follows_generation(user_id),
                    cache_keys.user_follows_generation(other_id),
                    cache_keys.user_home_generation(user_id),
                ]
            )
    return changed, users[user_id], users[other_id]


def _require_users(*ids: int) -> None:
    """Raise :class:`NotFound` for the first id that is not a user (read on the primary)."""
    found = set(User.objects.using(WRITE_DB).filter(id__in=ids).values_list("id", flat=True))
    for user_id in ids:
        if user_id not in found:
            raise NotFound(f"user {user_id} not found")


def _delete_follow(user_id: int, other_id: int) -> bool:
    """Delete one follow; whether a row was there (a racing unfollow finds none)."""
    deleted, _ = Follow.objects.using(WRITE_DB).filter(follower_id=user_id, followee_id=other_id).delete()
    return deleted > 0


def _backfill_timeline(follower_id: int, author_id: int) -> int:
    """Copy the author's latest stories into the follower's home timeline.

    One ``INSERT ... SELECT`` on the author/created_at index; ``ON CONFLICT DO
    NOTHING`` because some entries may already be there (a story the fan-out
    consumer delivered while this follow was being made, or an
    unfollow-refollow). Returns how many entries were added.
    """
    entries = TimelineEntry._meta.db_table
    stories = Story._meta.db_table
    sql = (
        f'INSERT INTO "{entries}" (user_id, story_id, author_id, created_at) '
        f'SELECT %s, s.id, s.author_id, s.created_at FROM "{stories}" s '
        "WHERE s.author_id = %s ORDER BY s.created_at DESC, s.id DESC LIMIT %s "
        "ON CONFLICT (user_id, story_id) DO NOTHING"
    )
    with connections[WRITE_DB].cursor() as cursor:
        cursor.execute(sql, [follower_id, author_id, FOLLOW_BACKFILL_STORIES])
        return cursor.rowcount


def backfill_home_timelines() -> int:
    """Build every stored home timeline from the follow graph; return the entries added.

    For data loaded in bulk (the seed command, or a database from before
    fan-out on write): each user's own stories, and the latest
    :data:`FOLLOW_BACKFILL_STORIES` of each author they follow, exactly what
    :func:`create_story` and :func:`follow` would have written. One
    set-based statement; idempotent (``ON CONFLICT DO NOTHING``). It bumps no
    cache generations: call it before the data is served, or empty the cache.
    """
    entries = TimelineEntry._meta.db_table
    sql = (
        f'INSERT INTO "{entries}" (user_id, story_id, author_id, created_at) '
        "SELECT f.follower_id, s.id, s.author_id, s.created_at "
        f'FROM "{Follow._meta.db_table}" f CROSS JOIN LATERAL ('
        f'  SELECT id, author_id, created_at FROM "{Story._meta.db_table}" '
        "  WHERE author_id = f.followee_id ORDER BY created_at DESC, id DESC LIMIT %s"
        ") s "
        f'UNION ALL SELECT author_id, id, author_id, created_at FROM "{Story._meta.db_table}" '
        "ON CONFLICT (user_id, story_id) DO NOTHING"
    )
    with transaction.atomic(using=WRITE_DB), connections[WRITE_DB].cursor() as cursor:
        cursor.execute(sql, [FOLLOW_BACKFILL_STORIES])
        return cursor.rowcount


def _remove_from_timeline(follower_id: int, author_id: int) -> int:
    """Delete every entry by ``author_id`` from the follower's home timeline (one index range)."""
    deleted, _ = TimelineEntry.objects.using(WRITE_DB).filter(user_id=follower_id, author_id=author_id).delete()
    return deleted


def _update_follow_counts(follower_id: int, followee_id: int, delta: int) -> None:
    """Move both users' counters by ``delta``, locking the rows in id order.

    Locking in a fixed order means A following B while B follows A cannot
    deadlock.
    """
    for user_id in sorted((follower_id, followee_id)):
        if user_id == follower_id:
            _bump_user(user_id, following_count=F("following_count") + delta)
        else:
            _bump_user(user_id, followers_count=F("followers_count") + delta)


# --------------------------------------------------------------------------
# Write helpers
# --------------------------------------------------------------------------
def _bump_user(user_id: int, **changes: Any) -> bool:
    """Apply ``F()`` changes to one user and increment its version; whether it exists."""
    return bool(User.objects.using(WRITE_DB).filter(id=user_id).update(version=F("version") + 1, **changes))


def _write_through_users(ids: Sequence[int]) -> None:
    """Re-read users inside the transaction and write them through after commit."""
    for user_id, fresh in _fetch_users(ids, WRITE_DB).items():
        cache.write_through_on_commit(cache_keys.user_cache_key(user_id), fresh)


def _insert_ignoring_conflict(table: str, values: dict[str, int], conflict_on: Sequence[str]) -> bool:
    """``INSERT ... ON CONFLICT DO NOTHING RETURNING id``; whether a row was inserted.

    The database, not a check in Python, decides whether the row is new, so two
    concurrent identical requests count once.
    """
    columns = [*values, "created_at"]
    sql = (
        f'INSERT INTO "{table}" ({", ".join(columns)}) '
        f'VALUES ({", ".join(["%s"] * len(columns))}) '
        f'ON CONFLICT ({", ".join(conflict_on)}) DO NOTHING RETURNING id'
    )
    with connections[WRITE_DB].cursor() as cursor:
        cursor.execute(sql, [*values.values(), timezone.now()])
        return cursor.fetchone() is not None
