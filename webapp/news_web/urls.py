"""URL map of the news site (names are used by templates and tests).

Post, "Platform layer": every route here is a page or an action built on the
platform API; ``healthz`` is for the load balancer (post, "Load balancing").
Post, "Off-line processing": ``click`` publishes a click event, ``export*``
schedule a task and poll it, ``analytics`` and ``trending`` show precalculated results.
"""

from __future__ import annotations

from django.urls import URLPattern, path, register_converter

from news_web import accounts, actions, analytics, avatars, clicks, exports, views


class UsernameConverter:
    """Usernames as the platform allows them, so other paths 404 without a platform call."""

    regex = r"[A-Za-z0-9_-]{1,30}"

    def to_python(self, value: str) -> str:
        """Path text to value."""
        return value

    def to_url(self, value: str) -> str:
        """Value to path text."""
        return value


register_converter(UsernameConverter, "username")

urlpatterns: list[URLPattern] = [
    path("", views.front, name="front"),
    path("newest", views.newest, name="newest"),
    path("trending", views.trending, name="trending"),
    path("home", views.home, name="home"),
    path("submit", actions.submit, name="submit"),
    path("s/<int:story_id>", views.story, name="story"),
    path("s/<int:story_id>/vote", actions.vote, name="vote"),
    path("r/<int:story_id>", clicks.click, name="click"),
    path("u/<username:username>", views.user, name="user"),
    path("u/<username:username>/followers", views.followers, name="followers"),
    path("u/<username:username>/following", views.following, name="following"),
    path("u/<username:username>/follow", actions.follow, name="follow"),
    path("u/<username:username>/unfollow", actions.unfollow, name="unfollow"),
    path("analytics", analytics.analytics, name="analytics"),
    path("export", exports.export, name="export"),
    path("exports/<uuid:job_id>", exports.export_job, name="export_job"),
    path("exports/<uuid:job_id>/download", exports.export_download, name="export_download"),
    path("settings/avatar", avatars.avatar, name="avatar"),
    path("signup", accounts.signup, name="signup"),
    path("login", accounts.login, name="login"),
    path("logout", accounts.logout, name="logout"),
    path("healthz", views.healthz, name="healthz"),
]

# Django looks these up by name in the root URLconf.
handler400 = "news_web.views.bad_request"
handler403 = "news_web.views.permission_denied"
handler404 = "news_web.views.not_found"
handler500 = "news_web.views.server_error"
