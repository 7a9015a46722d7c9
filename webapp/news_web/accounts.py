"""Sign up, log in and log out.

Post, "Platform layer": the platform owns users and checks passwords
(``POST /v1/users``, ``POST /v1/sessions``); the web tier only keeps the result in
a signed-cookie session (see ``auth.py``), which any web server behind the load
balancer can read.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from news_web import idempotency, platform_client
from news_web.auth import log_in, log_out, safe_next
from news_web.forms import LoginForm, SignupForm, attach_platform_errors

WRONG_CREDENTIALS = "Wrong username or password."


def _next(request: HttpRequest) -> str | None:
    """Where to go after logging in: a safe ``next`` from the form or the query string."""
    return safe_next(request, request.POST.get("next") or request.GET.get("next"))


def _form_page(request: HttpRequest, template: str, form: LoginForm | SignupForm, status: int) -> HttpResponse:
    return render(request, template, {"form": form, "next": _next(request) or ""}, status=status)


@require_http_methods(["GET", "HEAD", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    """Create an account on the platform and log in as it."""
    if request.method != "POST":
        return _form_page(request, "news_web/signup.html", SignupForm(), 200)
    key = idempotency.form_key(request)
    form = SignupForm(request.POST)
    if form.is_valid():
        try:
            # With the form's key, a double click signs up once and logs in
            # both times, instead of answering the second "name taken".
            user = platform_client.get_client().create_user(
                form.cleaned_data["username"], form.cleaned_data["password"], idempotency_key=key
            )
        except platform_client.Conflict:
            form.add_error("username", "That username is taken.")
        except platform_client.Invalid as error:
            attach_platform_errors(form, error)
        else:
            log_in(request, user)
            messages.success(request, f"Welcome, {user.username}!")
            return redirect(_next(request) or "front")
    return _form_page(request, "news_web/signup.html", form, 400)


@require_http_methods(["GET", "HEAD", "POST"])
def login(request: HttpRequest) -> HttpResponse:
    """Check a password with the platform and start a session."""
    if request.method != "POST":
        return _form_page(request, "news_web/login.html", LoginForm(), 200)
    form = LoginForm(request.POST)
    if form.is_valid():
        try:
            user = platform_client.get_client().authenticate(
                form.cleaned_data["username"], form.cleaned_data["password"]
            )
        except (platform_client.Unauthorized, platform_client.Invalid, platform_client.NotFound):
            # One message for every way a login can be wrong, so the page does
            # not reveal which usernames exist.
            form.add_error(None, WRONG_CREDENTIALS)
        else:
            log_in(request, user)
            messages.success(request, f"Logged in as {user.username}.")
            return redirect(_next(request) or "front")
    return _form_page(request, "news_web/login.html", form, 400)


@require_POST
def logout(request: HttpRequest) -> HttpResponse:
    """End the session in this browser (see settings.py on signed-cookie sessions)."""
    log_out(request)
    messages.info(request, "Logged out.")
    return redirect("front")
