"""The avatar page (/settings/avatar) and avatars on profiles, against the fake platform."""

from __future__ import annotations

import re
from collections.abc import Callable
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default as default_policy
from typing import TYPE_CHECKING

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

if TYPE_CHECKING:
    from tests.unit.conftest import WebFakePlatform, WebPlatformCall

PLATFORM_PATH = "/v1/users/1/avatar"
MEDIA_URL = "http://localhost:8081/media/"
IMAGE = b"\x89PNG\r\n\x1a\n not really a png, but the web tier does not look"
NEW_AVATAR = "avatars/1/0123456789abcdef.webp"
READ_ONLY = "The site is read-only for now: the primary database is unavailable. Try again in a few seconds."


@pytest.fixture
def web_alice(web_client: Client, web_login: Callable[..., None], web_platform: WebFakePlatform) -> Client:
    """The test client, logged in as alice (uid 1), whose profile the platform knows."""
    web_login(web_client, 1, "alice")
    web_platform.ok("GET", "/v1/users/alice", web_platform.user("alice", id=1))
    return web_client


def upload(data: bytes = IMAGE, key: str = "form-key-1") -> dict[str, object]:
    """The form as a browser posts it."""
    return {"file": SimpleUploadedFile("me.png", data, content_type="image/png"), "idempotency_key": key}


def file_part(call: WebPlatformCall) -> EmailMessage:
    """The multipart body the web tier sent, parsed; its only part must be the field ``file``."""
    head = f"Content-Type: {call.headers['Content-Type']}\r\n\r\n".encode()
    message = BytesParser(policy=default_policy).parsebytes(head + call.body)
    parts = list(message.iter_parts())  # type: ignore[attr-defined]
    assert len(parts) == 1
    assert parts[0].get_param("name", header="content-disposition") == "file"
    return parts[0]


# --- The page --------------------------------------------------------------------------


def test_the_page_requires_login(web_client: Client, web_platform: WebFakePlatform) -> None:
    response = web_client.get("/settings/avatar")
    assert response.status_code == 302 and response["Location"] == "/login?next=%2Fsettings%2Favatar"
    response = web_client.post("/settings/avatar", upload())
    assert response.status_code == 302 and response["Location"].startswith("/login")
    assert web_platform.calls == []


def test_the_form_is_multipart_with_csrf_and_an_idempotency_key(web_alice: Client) -> None:
    response = web_alice.get("/settings/avatar")
    page = response.content.decode()
    assert response.status_code == 200
    assert 'enctype="multipart/form-data"' in page
    assert 'name="csrfmiddlewaretoken"' in page
    assert re.search(r'name="idempotency_key" value="[0-9a-f-]{36}"', page)
    assert re.search(r'<input type="file" name="file"[^>]*accept="image/jpeg,image/png,image/gif,image/webp"', page)
    # No avatar yet: the default picture from the static files.
    assert re.search(r'<img class="avatar" src="http://localhost:8081/static/news_web/avatar-default\.[0-9a-f]+\.svg"', page)


def test_the_form_shows_the_current_avatar_from_the_media_host(
    web_client: Client, web_login: Callable[..., None], web_platform: WebFakePlatform
) -> None:
    web_login(web_client, 1, "alice")
    web_platform.ok("GET", "/v1/users/alice", web_platform.user("alice", id=1, avatar=NEW_AVATAR))
    page = web_client.get("/settings/avatar").content.decode()
    assert f'src="{MEDIA_URL}{NEW_AVATAR}" width="96" height="96"' in page
    assert "avatar-default" not in page


# --- Uploading -------------------------------------------------------------------------


def test_an_upload_is_forwarded_with_its_key_and_redirects_to_the_profile(
    web_alice: Client, web_platform: WebFakePlatform
) -> None:
    web_platform.ok("PUT", PLATFORM_PATH, web_platform.user("alice", id=1, avatar=NEW_AVATAR, version=2))

    response = web_alice.post("/settings/avatar", upload(key="form-key-1"))

    assert response.status_code == 302 and response["Location"] == "/u/alice"
    (call,) = web_platform.calls_to("PUT", PLATFORM_PATH)
    assert call.headers["Idempotency-Key"] == "form-key-1"
    assert call.headers["Content-Type"].startswith("multipart/form-data; boundary=")
    assert file_part(call).get_content() == IMAGE


def test_the_same_form_posted_twice_sends_the_same_bytes(web_alice: Client, web_platform: WebFakePlatform) -> None:
    # The platform fingerprints a keyed write by its body: a double submit must
    # be byte for byte the same request to be answered from the first one.
    web_platform.ok("PUT", PLATFORM_PATH, web_platform.user("alice", id=1, avatar=NEW_AVATAR))
    web_alice.post("/settings/avatar", upload(key="same-key"))
    web_alice.post("/settings/avatar", upload(key="same-key"))
    web_alice.post("/settings/avatar", upload(key="other-key"))
    first, again, other = web_platform.calls_to("PUT", PLATFORM_PATH)
    assert (first.body, first.headers["Content-Type"]) == (again.body, again.headers["Content-Type"])
    assert other.headers["Content-Type"] != first.headers["Content-Type"]


def test_a_file_over_2_mib_is_a_413_without_a_platform_call(web_alice: Client, web_platform: WebFakePlatform) -> None:
    response = web_alice.post("/settings/avatar", upload(b"\0" * (2 * 1024 * 1024 + 1)))
    assert response.status_code == 413
    assert "The image is larger than 2 MiB." in response.content.decode()
    assert web_platform.calls_to("PUT", PLATFORM_PATH) == []


def test_exactly_2_mib_is_forwarded(web_alice: Client, web_platform: WebFakePlatform) -> None:
    web_platform.ok("PUT", PLATFORM_PATH, web_platform.user("alice", id=1, avatar=NEW_AVATAR))
    response = web_alice.post("/settings/avatar", upload(b"\0" * (2 * 1024 * 1024)))
    assert response.status_code == 302
    assert len(web_platform.calls_to("PUT", PLATFORM_PATH)) == 1


def test_no_file_is_a_400_on_the_form(web_alice: Client, web_platform: WebFakePlatform) -> None:
    response = web_alice.post("/settings/avatar", {"idempotency_key": "k"})
    assert response.status_code == 400
    assert "This field is required." in response.content.decode()
    assert web_platform.calls_to("PUT", PLATFORM_PATH) == []


@pytest.mark.parametrize(
    ("status", "detail"),
    [
        (415, "the file is not a JPEG, PNG, GIF or WebP image"),
        (422, "the image is larger than 4096x4096 pixels"),
        (413, "the image is larger than 2 MiB"),
    ],
)
def test_a_platform_refusal_is_shown_on_the_form_with_its_status(
    web_alice: Client, web_platform: WebFakePlatform, status: int, detail: str
) -> None:
    web_platform.fail("PUT", PLATFORM_PATH, status, detail)
    response = web_alice.post("/settings/avatar", upload())
    page = response.content.decode()
    assert response.status_code == status
    assert detail in page
    assert 'enctype="multipart/form-data"' in page  # the form again, to choose another file


def test_read_only_mode_says_the_avatar_was_not_saved(web_alice: Client, web_platform: WebFakePlatform) -> None:
    headers = {"Retry-After": "7", "X-Read-Only": "true"}
    web_platform.reply("PUT", PLATFORM_PATH, web_platform.Reply(503, {"detail": READ_ONLY}, headers=headers))
    response = web_alice.post("/settings/avatar", upload())
    assert response.status_code == 503
    assert response["Retry-After"] == "7"
    assert "Your new avatar was not saved" in response.content.decode()


def test_a_platform_outage_is_the_unavailable_page(web_alice: Client, web_platform: WebFakePlatform) -> None:
    web_platform.reply("PUT", PLATFORM_PATH, web_platform.Reply(502, raw="<html>bad gateway</html>"))
    response = web_alice.post("/settings/avatar", upload())
    assert response.status_code == 503
    assert "Temporarily unavailable" in response.content.decode()


# --- Profiles --------------------------------------------------------------------------


def _profile_routes(fake: WebFakePlatform, **user: object) -> None:
    fake.ok("GET", "/v1/users/bob", fake.user("bob", id=2, **user))
    for listing in ("stories", "followers", "following"):
        fake.ok("GET", f"/v1/users/bob/{listing}", fake.page([]))


def test_a_profile_shows_the_avatar_from_the_media_host(web_client: Client, web_platform: WebFakePlatform) -> None:
    _profile_routes(web_platform, avatar="avatars/2/fedcba9876543210.webp")
    page = web_client.get("/u/bob").content.decode()
    assert (
        f'<img class="avatar" src="{MEDIA_URL}avatars/2/fedcba9876543210.webp" width="96" height="96" '
        "alt=\"bob's avatar\">"
    ) in page
    assert "Change avatar" not in page


def test_a_profile_without_an_avatar_shows_the_default(web_client: Client, web_platform: WebFakePlatform) -> None:
    _profile_routes(web_platform)
    page = web_client.get("/u/bob").content.decode()
    assert re.search(r'src="[^"]*/news_web/avatar-default\.[0-9a-f]+\.svg" width="96" height="96"', page)
    assert MEDIA_URL not in page


def test_only_your_own_profile_links_to_the_avatar_page(
    web_client: Client, web_login: Callable[..., None], web_platform: WebFakePlatform
) -> None:
    _profile_routes(web_platform)
    web_login(web_client, 2, "bob")
    page = web_client.get("/u/bob").content.decode()
    assert '<a href="/settings/avatar">Change avatar</a>' in page
