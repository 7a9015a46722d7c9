"""Change avatar: a multipart form whose file goes to the platform, which checks and stores it.

The post's "Introduction to architecting systems for scale" serves user
uploads from a separate static host behind a CDN. This tier neither checks
images nor stores them: it forwards the file (``PUT /v1/users/{id}/avatar``),
and pages show ``MEDIA_URL`` + the user's ``avatar``, a path whose name changes
with the image, so browsers and the CDN never show a stale one.

Post, "Redundancy and failover": the form carries an idempotency key like
every write form, so a double submit uploads once.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from news_web import idempotency, platform_client
from news_web.auth import SessionUser, logged_in_user, login_required
from news_web.forms import AvatarForm

# The platform's limit (docs/platform-api.md); checked here as well, so an
# oversized file never travels on to the platform.
MAX_AVATAR_BYTES = 2 * 1024 * 1024
TOO_LARGE = "The image is larger than 2 MiB. Choose a smaller one."


def _page(request: HttpRequest, me: SessionUser, form: AvatarForm, status: int) -> HttpResponse:
    """The form beside the current avatar."""
    profile = platform_client.get_client().get_user(me.username)
    return render(request, "news_web/avatar.html", {"form": form, "profile": profile}, status=status)


@require_http_methods(["GET", "HEAD", "POST"])
@login_required
def avatar(request: HttpRequest) -> HttpResponse:
    """GET: the form. POST: upload the image, then go to the profile.

    A platform 4xx (too large, not an image, too many pixels) is shown on the
    form with the platform's status; read-only mode and outages get the shared
    pages (``middleware.PlatformErrorMiddleware``), as for every other write.
    """
    me = logged_in_user(request)
    if request.method != "POST":
        return _page(request, me, AvatarForm(), 200)
    key = idempotency.form_key(request)
    form = AvatarForm(request.POST, request.FILES)
    if not form.is_valid():
        return _page(request, me, form, 400)
    upload = form.cleaned_data["file"]
    if upload.size > MAX_AVATAR_BYTES:
        form.add_error("file", TOO_LARGE)
        return _page(request, me, form, 413)
    try:
        user = platform_client.get_client().set_avatar(me.id, upload.read(), idempotency_key=key)
    except platform_client.PlatformError as error:
        if isinstance(error, platform_client.Unauthorized) or not 400 <= error.status < 500:
            raise  # a rejected service token, an outage, read-only mode: the middleware's pages
        form.add_error("file", error.message)
        return _page(request, me, form, error.status)
    messages.success(request, "Avatar changed.")
    return redirect("user", username=user.username)
