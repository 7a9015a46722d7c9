"""Forms for the web tier, mirroring the platform's limits (docs/platform-api.md, "Limits").

Post, "Platform layer": the platform is the authority on what is valid and
rejects bad input itself. Checking the same limits here first saves a round
trip through HAProxy and gives the user errors next to the right field; any
error the platform still finds is attached to the form by ``attach_platform_errors``.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.validators import RegexValidator, URLValidator

from news_web.platform_client import Invalid

USERNAME_VALIDATOR = RegexValidator(
    r"\A[A-Za-z0-9_-]{3,30}\Z",
    "3 to 30 characters: letters, digits, _ and - only.",
)


class SignupForm(forms.Form):
    """Choose a username and password; the platform says whether the name is free."""

    username = forms.CharField(max_length=30, validators=[USERNAME_VALIDATOR])
    password = forms.CharField(min_length=8, max_length=128, strip=False, widget=forms.PasswordInput)
    # Typed twice because a typo here would lock the new account out at once.
    password2 = forms.CharField(label="Password (again)", max_length=128, strip=False, widget=forms.PasswordInput)

    def clean(self) -> dict[str, Any]:
        """Require the two passwords to match."""
        cleaned: dict[str, Any] = super().clean() or {}
        if cleaned.get("password") and cleaned.get("password2") and cleaned["password"] != cleaned["password2"]:
            self.add_error("password2", "The two passwords differ.")
        return cleaned


class LoginForm(forms.Form):
    """Username and password, checked by the platform."""

    username = forms.CharField(max_length=30)
    password = forms.CharField(max_length=128, strip=False, widget=forms.PasswordInput)


class StoryForm(forms.Form):
    """A story: a title plus a link, a text, or both."""

    title = forms.CharField(min_length=1, max_length=200)
    url = forms.URLField(
        max_length=500,
        required=False,
        # Only web links: ftp:// and friends are valid URLs but not stories.
        validators=[URLValidator(schemes=["http", "https"])],
        assume_scheme="https",
    )
    text = forms.CharField(max_length=5000, required=False, widget=forms.Textarea(attrs={"rows": 6}))

    def clean(self) -> dict[str, Any]:
        """Require at least one of url and text."""
        cleaned: dict[str, Any] = super().clean() or {}
        has_url_error = "url" in self.errors
        if not has_url_error and not cleaned.get("url") and not cleaned.get("text"):
            raise forms.ValidationError("Give a URL, a text, or both.")
        return cleaned


class AvatarForm(forms.Form):
    """An image to become the avatar; the platform decides whether it is one."""

    file = forms.FileField(
        label="Image",
        help_text="JPEG, PNG, GIF or WebP, at most 2 MiB and 4096x4096 pixels. It is cropped to a square.",
        widget=forms.FileInput(attrs={"accept": "image/jpeg,image/png,image/gif,image/webp"}),
    )


def attach_platform_errors(form: forms.Form, error: Invalid) -> None:
    """Show the platform's 400/422 messages on the form, by field where the field exists."""
    placed = False
    for name, messages in error.field_errors.items():
        for message in messages:
            form.add_error(name if name in form.fields else None, message)
            placed = True
    if not placed:
        form.add_error(None, error.message)
