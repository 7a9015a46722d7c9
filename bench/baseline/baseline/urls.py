"""The baseline's URL map: the web tier's three read pages at the same paths, and ``/healthz``."""
from __future__ import annotations

from django.urls import URLPattern, path, re_path

from baseline import views

urlpatterns: list[URLPattern] = [
    path("", views.front, name="front"),
    path("home", views.home, name="home"),
    # The web tier's converter: other paths 404 without a query.
    re_path(r"^u/(?P<username>[A-Za-z0-9_-]{1,30})$", views.user, name="user"),
    path("healthz", views.healthz, name="healthz"),
]
