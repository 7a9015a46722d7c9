"""Writes: submit a story, vote, follow and unfollow.

Post, "Platform layer": each action is one write call to the platform API, which
validates it, stores it and keeps its caches right; the web tier redirects
afterwards (POST/redirect/GET), so a reload never repeats the write.

Post, "Redundancy and failover": each call carries the form's idempotency key
(``news_web.idempotency``), so a double click or a retried call is applied once.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from news_web import idempotency, platform_client
from news_web.auth import logged_in_user, login_required, safe_next
from news_web.forms import StoryForm, attach_platform_errors
from news_web.middleware import error_page


def _back(request: HttpRequest, fallback: str) -> HttpResponseRedirect:
    """Redirect to the form's safe ``next`` (the page the button was on), else ``fallback``."""
    return HttpResponseRedirect(safe_next(request, request.POST.get("next")) or fallback)


@require_http_methods(["GET", "HEAD", "POST"])
@login_required
def submit(request: HttpRequest) -> HttpResponse:
    """Submit a story; bad input is shown on the form with a 400 and nothing is stored."""
    me = logged_in_user(request)
    if request.method != "POST":
        return render(request, "news_web/submit.html", {"form": StoryForm()})
    key = idempotency.form_key(request)
    form = StoryForm(request.POST)
    if form.is_valid():
        try:
            story = platform_client.get_client().create_story(
                me.id,
                form.cleaned_data["title"],
                form.cleaned_data["url"] or "",
                form.cleaned_data["text"] or "",
                idempotency_key=key,
            )
        except platform_client.Invalid as error:
            attach_platform_errors(form, error)
        else:
            messages.success(request, "Story submitted.")
            return redirect("story", story_id=story.id)
    return render(request, "news_web/submit.html", {"form": form}, status=400)


@require_POST
@login_required
def vote(request: HttpRequest, story_id: int) -> HttpResponse:
    """Vote for a story once; a second vote is reported, not counted."""
    me = logged_in_user(request)
    key = idempotency.form_key(request)
    # A 400 becomes the error page.
    result = platform_client.get_client().vote(story_id, me.id, idempotency_key=key)
    if result.counted:
        messages.success(request, "Vote counted.")
    else:
        messages.info(request, "You already voted for this story.")
    return _back(request, reverse("story", args=[story_id]))


def _change_follow(request: HttpRequest, username: str, follow: bool) -> HttpResponse:
    me = logged_in_user(request)
    key = idempotency.form_key(request)
    client = platform_client.get_client()
    other = client.get_user(username)  # NotFound becomes the 404 page
    if other.id == me.id:
        # The platform refuses this too; answering here is clearer and saves a call.
        verb = "follow" if follow else "unfollow"
        return error_page(request, 400, f"Can't {verb} yourself", f"You can't {verb} yourself.")
    # A platform 400 (e.g. a rule the web tier does not know) becomes the 400 page.
    change = client.follow if follow else client.unfollow
    result = change(me.id, other.id, idempotency_key=key)
    name = other.username
    if follow:
        messages.success(request, f"You now follow {name}." if result.changed else f"You already follow {name}.")
    else:
        messages.success(
            request, f"You no longer follow {name}." if result.changed else f"You were not following {name}."
        )
    return _back(request, reverse("user", args=[name]))


@require_POST
@login_required
def follow(request: HttpRequest, username: str) -> HttpResponse:
    """Follow ``username`` (idempotent)."""
    return _change_follow(request, username, follow=True)


@require_POST
@login_required
def unfollow(request: HttpRequest, username: str) -> HttpResponse:
    """Stop following ``username`` (idempotent)."""
    return _change_follow(request, username, follow=False)
