"""Read-only, unmanaged views of the platform's tables.

Written against the real schema (``platform/platform_api/models.py`` and its
migrations) rather than imported from ``platform_api``, so the baseline shares
no code with the stack: it is the app a user would have written on the same
database. ``managed = False``: Django never creates, alters or migrates these
tables; the platform's migrations own them. Only the columns the pages read
are declared.
"""
from __future__ import annotations

from django.db import models


class User(models.Model):
    """A member (table ``users``, the platform's custom ``AbstractUser``)."""

    username = models.CharField(max_length=150)
    date_joined = models.DateTimeField()
    followers_count = models.PositiveIntegerField()
    following_count = models.PositiveIntegerField()
    stories_count = models.PositiveIntegerField()
    karma = models.IntegerField()

    class Meta:
        managed = False
        db_table = "users"


class Story(models.Model):
    """A submitted link or text post (table ``stories``)."""

    author = models.ForeignKey(User, on_delete=models.DO_NOTHING, related_name="+")
    title = models.CharField(max_length=200)
    url = models.CharField(max_length=500)
    text = models.TextField()
    votes = models.PositiveIntegerField()
    created_at = models.DateTimeField()

    class Meta:
        managed = False
        db_table = "stories"


class Follow(models.Model):
    """``follower`` follows ``followee`` (table ``follows``)."""

    follower = models.ForeignKey(User, on_delete=models.DO_NOTHING, related_name="+")
    followee = models.ForeignKey(User, on_delete=models.DO_NOTHING, related_name="+")
    created_at = models.DateTimeField()

    class Meta:
        managed = False
        db_table = "follows"


class TimelineEntry(models.Model):
    """One story in one member's stored home timeline (table ``timeline_entries``).

    The platform writes these rows (fan-out on write); the baseline reads them
    the way the platform does, so both home pages show the same stories.
    """

    user = models.ForeignKey(User, on_delete=models.DO_NOTHING, related_name="+")
    story = models.ForeignKey(Story, on_delete=models.DO_NOTHING, related_name="+")
    author_id = models.BigIntegerField()
    created_at = models.DateTimeField()

    class Meta:
        managed = False
        db_table = "timeline_entries"


class FollowSuggestion(models.Model):
    """"People you may follow", as the platform's map-reduce job left it (table ``follow_suggestions``)."""

    user = models.ForeignKey(User, on_delete=models.DO_NOTHING, related_name="+")
    suggested = models.ForeignKey(User, on_delete=models.DO_NOTHING, related_name="+")
    rank = models.PositiveSmallIntegerField()

    class Meta:
        managed = False
        db_table = "follow_suggestions"
