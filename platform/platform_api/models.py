"""The news site's data: users, stories, votes and follows.

Every row that is cached as an object carries a ``version`` that each change
increments inside its transaction. The write-through cache compares versions so
that a late write-through (or a slow read-through fill) can never replace a
newer value with an older one.
"""
from __future__ import annotations

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Lower


class User(AbstractUser):
    """A member of the site, with the counters its profile shows.

    The counters are denormalised (kept in step by the write paths in the same
    transaction) so that a profile is one cached object, not four queries.
    """

    followers_count = models.PositiveIntegerField(default=0)
    following_count = models.PositiveIntegerField(default=0)
    stories_count = models.PositiveIntegerField(default=0)
    karma = models.IntegerField(default=0)
    # The current avatar's path under MEDIA_ROOT (``avatars/<id>/<hash>.webp``,
    # see platform_api/avatars.py), or "" for none. ``db_default`` as well, so
    # bulk loads that name their columns (the seed command's COPY) need not
    # know about it.
    avatar = models.CharField(max_length=200, blank=True, default="", db_default="")
    version = models.BigIntegerField(default=1)

    class Meta:
        db_table = "users"
        # Usernames are unique regardless of case: the username -> id cache key
        # is lower-cased (``cache_keys.user_id_by_username_cache_key``), so
        # "Alice" and "alice" must be one account or they would share an entry.
        # Lookups filter on ``Lower("username")`` so this index serves them.
        constraints = [models.UniqueConstraint(Lower("username"), name="users_username_lower_uniq")]


class Story(models.Model):
    """A submitted link (or text post) that members vote on."""

    author = models.ForeignKey(User, on_delete=models.CASCADE, related_name="stories")
    title = models.CharField(max_length=200)
    url = models.CharField(max_length=500, blank=True, default="")
    text = models.TextField(blank=True, default="")
    votes = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(db_index=True)
    version = models.BigIntegerField(default=1)

    class Meta:
        db_table = "stories"
        indexes = [
            models.Index(fields=["author", "-created_at"], name="stories_author_created"),
            models.Index(F("created_at").desc(), name="stories_created_desc"),
        ]


class Vote(models.Model):
    """One member's vote on one story; the unique constraint makes votes idempotent."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    story = models.ForeignKey(Story, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "votes"
        constraints = [models.UniqueConstraint(fields=["story", "user"], name="votes_one_per_user")]


class Follow(models.Model):
    """``follower`` follows ``followee``: the social graph."""

    follower = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    followee = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "follows"
        constraints = [
            models.UniqueConstraint(fields=["follower", "followee"], name="follows_once"),
            models.CheckConstraint(condition=~Q(follower=F("followee")), name="follows_not_self"),
        ]
        indexes = [
            models.Index(fields=["followee", "-created_at"], name="follows_followee_created"),
            # The fan-out consumer walks a followee's followers in id order, a chunk at a time.
            models.Index(fields=["followee", "follower"], name="follows_followee_follower"),
        ]


# ---------------------------------------------------------------------------
# Off-line processing (the post's "Off-line processing" section)
# ---------------------------------------------------------------------------
class OutboxEvent(models.Model):
    """An event to publish to RabbitMQ, written in the transaction that caused it.

    The transactional outbox: an event exists if and only if its cause
    committed. After commit the platform tries to publish it at once (with
    publisher confirms); if RabbitMQ is unreachable the row waits here, durable,
    until the relay task publishes it.
    """

    routing_key = models.CharField(max_length=100)
    payload = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)
    published_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)

    class Meta:
        db_table = "outbox_events"
        indexes = [
            models.Index(fields=["id"], name="outbox_unpublished", condition=Q(published_at__isnull=True)),
        ]


class TimelineEntry(models.Model):
    """One story in one user's home timeline (fan-out on write).

    The unique constraint makes the fan-out consumer's inserts idempotent: a
    redelivered message inserts nothing twice.
    """

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    story = models.ForeignKey(Story, on_delete=models.CASCADE, related_name="+")
    # Copied from the story so an unfollow can remove an author's entries, and
    # the timeline can be read newest-first from one index.
    author_id = models.BigIntegerField()
    created_at = models.DateTimeField()

    class Meta:
        db_table = "timeline_entries"
        constraints = [models.UniqueConstraint(fields=["user", "story"], name="timeline_once")]
        indexes = [
            models.Index(F("user"), F("created_at").desc(), F("story").desc(), name="timeline_user_newest"),
            models.Index(fields=["user", "author_id"], name="timeline_user_author"),
        ]


class Click(models.Model):
    """One click on a story's link, written by the click batch consumer.

    ``event_id`` is made when the click happens; its unique constraint makes a
    redelivered or re-published click count once.
    """

    event_id = models.UUIDField(unique=True)
    story = models.ForeignKey(Story, on_delete=models.CASCADE, related_name="+")
    user_id = models.BigIntegerField(null=True, blank=True)
    referrer_domain = models.CharField(max_length=255, blank=True, default="")
    clicked_at = models.DateTimeField(db_index=True)

    class Meta:
        db_table = "clicks"
        indexes = [models.Index(fields=["user_id", "story"], name="clicks_user_story")]


class DomainVisits(models.Model):
    """Precalculated visits per referring domain for one hour or one day (a rollup)."""

    HOUR = "hour"
    DAY = "day"
    period = models.CharField(max_length=4, choices=[(HOUR, "hour"), (DAY, "day")])
    slot_start = models.DateTimeField()
    domain = models.CharField(max_length=255)
    visits = models.PositiveIntegerField()

    class Meta:
        db_table = "domain_visits"
        constraints = [
            models.UniqueConstraint(fields=["period", "slot_start", "domain"], name="domain_visits_once"),
        ]


class TrendingStory(models.Model):
    """The current trending ranking, replaced as a whole by each run."""

    story = models.OneToOneField(Story, on_delete=models.CASCADE, related_name="+", primary_key=True)
    score = models.FloatField()
    rank = models.PositiveIntegerField()
    slot = models.DateTimeField()

    class Meta:
        db_table = "trending_stories"


class PeriodicRun(models.Model):
    """A periodic task's run for one time slot; the unique constraint makes a double fire a no-op."""

    task = models.CharField(max_length=100)
    slot = models.DateTimeField()
    runner = models.CharField(max_length=100, default="")
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "periodic_runs"
        constraints = [models.UniqueConstraint(fields=["task", "slot"], name="periodic_run_once")]


class ExportJob(models.Model):
    """A user's "export my data" job: state and progress live here, polled by the page."""

    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    STATES = [(s, s) for s in (PENDING, RUNNING, DONE, FAILED)]

    id = models.UUIDField(primary_key=True)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    state = models.CharField(max_length=10, choices=STATES, default=PENDING)
    progress = models.PositiveSmallIntegerField(default=0)
    result = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "export_jobs"
        indexes = [models.Index(fields=["user", "-created_at"], name="export_jobs_user_recent")]


class SuggestedStory(models.Model):
    """"People who clicked this also clicked these": a pre-generated index (map-reduce output)."""

    story = models.ForeignKey(Story, on_delete=models.CASCADE, related_name="+")
    suggested = models.ForeignKey(Story, on_delete=models.CASCADE, related_name="+")
    score = models.PositiveIntegerField()  # users who clicked both
    rank = models.PositiveSmallIntegerField()

    class Meta:
        db_table = "suggested_stories"
        constraints = [models.UniqueConstraint(fields=["story", "rank"], name="suggested_story_rank")]


class FollowSuggestion(models.Model):
    """"People you may follow": friends of friends (map-reduce output)."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    suggested = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    score = models.PositiveIntegerField()  # followees who follow them
    rank = models.PositiveSmallIntegerField()

    class Meta:
        db_table = "follow_suggestions"
        constraints = [models.UniqueConstraint(fields=["user", "rank"], name="follow_suggestion_rank")]


# ---------------------------------------------------------------------------
# Redundancy (the post's "Redundancy and failover"): retries that are safe
# ---------------------------------------------------------------------------
class IdempotencyKey(models.Model):
    """A write done under a client's ``Idempotency-Key``, and the answer it got.

    Inserted in the same transaction as the write it records
    (:mod:`platform_api.idempotency`), so the row exists exactly when the write
    committed, and a replay of the request is answered from here instead of
    being applied again. Deleted by the daily purge once a day old.
    """

    key = models.CharField(max_length=64, primary_key=True)
    # The request's fingerprint: the same key sent with another request is refused.
    method = models.CharField(max_length=10)
    path = models.TextField()
    body_sha256 = models.CharField(max_length=64)
    # NULL only inside the transaction that claimed the key: it is set before
    # that transaction commits, so no committed row lacks them.
    response_status = models.PositiveSmallIntegerField(null=True)
    # Text, not JSON: jsonb would reorder the keys, and a replay should be the
    # very bytes the first answer carried.
    response_body = models.TextField(null=True)
    created_at = models.DateTimeField(db_index=True)

    class Meta:
        db_table = "idempotency_keys"
