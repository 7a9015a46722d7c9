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
        indexes = [models.Index(fields=["followee", "-created_at"], name="follows_followee_created")]
