"""Sign up, log in, log out, and signed-cookie sessions that survive a web server change."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest
from django.conf import settings
from django.contrib.sessions.backends.signed_cookies import SessionStore
from django.test import Client, override_settings

if TYPE_CHECKING:
    from tests.unit.conftest import WebFakePlatform


def session_of(client: Client) -> dict[str, Any]:
    """Decode the client's signed session cookie (empty when missing or invalid)."""
    cookie = client.cookies.get(settings.SESSION_COOKIE_NAME)
    return dict(SessionStore(cookie.value).load()) if cookie and cookie.value else {}


def test_login_checks_the_password_with_the_platform_and_starts_a_session(
    web_client: Client, web_platform: WebFakePlatform
) -> None:
    web_platform.ok("POST", "/v1/sessions", web_platform.user("alice", id=7))
    response = web_client.post("/login", {"username": "alice", "password": "s3cret-pass", "next": "/newest"})
    assert response.status_code == 302
    assert response["Location"] == "/newest"
    assert web_platform.calls[0].body == {"username": "alice", "password": "s3cret-pass"}
    assert session_of(web_client) == {"uid": 7, "uname": "alice"}


def test_login_cycles_the_session_key(
    web_client: Client, web_platform: WebFakePlatform, monkeypatch: pytest.MonkeyPatch
) -> None:
    # With signed cookies the cookie changes whenever the data does, so the only
    # observable proof that login cycles the key (against fixation) is the call.
    cycled: list[bool] = []
    real_cycle_key = SessionStore.cycle_key
    monkeypatch.setattr(SessionStore, "cycle_key", lambda self: (cycled.append(True), real_cycle_key(self))[1])
    web_platform.ok("POST", "/v1/sessions", web_platform.user("alice", id=7))
    web_client.post("/login", {"username": "alice", "password": "s3cret-pass"})
    assert cycled == [True]
    assert session_of(web_client) == {"uid": 7, "uname": "alice"}


def test_wrong_password_is_a_400_form_error_and_no_session(web_client: Client, web_platform: WebFakePlatform) -> None:
    web_platform.fail("POST", "/v1/sessions", 401, "Bad credentials.")
    response = web_client.post("/login", {"username": "alice", "password": "wrong-password"})
    assert response.status_code == 400
    assert "Wrong username or password." in response.content.decode()
    assert session_of(web_client) == {}


def test_login_with_empty_fields_is_400_without_a_platform_call(web_client: Client, web_platform: WebFakePlatform) -> None:
    response = web_client.post("/login", {"username": "", "password": ""})
    assert response.status_code == 400
    assert "This field is required." in response.content.decode()
    assert web_platform.calls == []


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "javascript:alert(1)"])
def test_login_never_redirects_off_site(web_client: Client, web_platform: WebFakePlatform, target: str) -> None:
    web_platform.ok("POST", "/v1/sessions", web_platform.user("alice", id=7))
    response = web_client.post("/login", {"username": "alice", "password": "s3cret-pass", "next": target})
    assert response.status_code == 302
    assert response["Location"] == "/"


def test_login_form_carries_next(web_client: Client) -> None:
    page = web_client.get("/login?next=/submit").content.decode()
    assert '<input type="hidden" name="next" value="/submit">' in page
    page = web_client.get("/login?next=https://evil.example/").content.decode()
    assert '<input type="hidden" name="next" value="">' in page


def test_signup_creates_the_user_and_logs_in(web_client: Client, web_platform: WebFakePlatform) -> None:
    web_platform.reply("POST", "/v1/users", web_platform.Reply(201, web_platform.user("new_user-1", id=12)))
    web_platform.ok("GET", "/v1/stories", web_platform.page([]))
    response = web_client.post(
        "/signup", {"username": "new_user-1", "password": "long-enough", "password2": "long-enough"}, follow=True
    )
    assert web_platform.calls_to("POST", "/v1/users")[0].body == {"username": "new_user-1", "password": "long-enough"}
    assert session_of(web_client) == {"uid": 12, "uname": "new_user-1"}
    assert response.redirect_chain[0] == ("/", 302)
    # The flash message rides in the messages cookie to the next page.
    assert "Welcome, new_user-1!" in response.content.decode()


def test_signup_with_a_taken_name_is_400(web_client: Client, web_platform: WebFakePlatform) -> None:
    web_platform.fail("POST", "/v1/users", 409, "username taken")
    response = web_client.post("/signup", {"username": "alice", "password": "long-enough", "password2": "long-enough"})
    assert response.status_code == 400
    assert "That username is taken." in response.content.decode()
    assert session_of(web_client) == {}


@pytest.mark.parametrize(
    ("username", "password", "error"),
    [
        ("ab", "long-enough", "3 to 30 characters"),
        ("bad name!", "long-enough", "3 to 30 characters"),
        ("a" * 31, "long-enough", "at most 30 characters"),
        ("alice", "short", "at least 8 characters"),
        ("alice", "x" * 129, "at most 128 characters"),
    ],
)
def test_signup_validates_before_calling_the_platform(
    web_client: Client, web_platform: WebFakePlatform, username: str, password: str, error: str
) -> None:
    response = web_client.post("/signup", {"username": username, "password": password, "password2": password})
    assert response.status_code == 400
    assert error in response.content.decode()
    assert web_platform.calls == []


def test_signup_needs_the_password_twice(web_client: Client, web_platform: WebFakePlatform) -> None:
    response = web_client.post("/signup", {"username": "alice", "password": "long-enough", "password2": "long-enougH"})
    assert response.status_code == 400
    assert "The two passwords differ." in response.content.decode()
    assert web_platform.calls == []


def test_signup_shows_the_platforms_own_validation_errors(web_client: Client, web_platform: WebFakePlatform) -> None:
    detail = [{"loc": ["body", "payload", "username"], "msg": "That name is reserved"}]
    web_platform.fail("POST", "/v1/users", 422, detail)
    response = web_client.post("/signup", {"username": "admin", "password": "long-enough", "password2": "long-enough"})
    assert response.status_code == 400
    assert "That name is reserved" in response.content.decode()


def test_logout_is_post_only_and_ends_the_session(
    web_client: Client, web_platform: WebFakePlatform, web_login: Callable[..., None]
) -> None:
    web_login(web_client, 7, "alice")
    assert web_client.get("/logout").status_code == 405
    assert session_of(web_client) == {"uid": 7, "uname": "alice"}

    response = web_client.post("/logout")
    assert response.status_code == 302 and response["Location"] == "/"
    assert session_of(web_client) == {}


def test_a_session_made_on_one_web_server_works_on_another(
    web_client: Client, web_platform: WebFakePlatform
) -> None:
    web_platform.ok("POST", "/v1/sessions", web_platform.user("alice", id=7))
    web_platform.ok("GET", "/v1/stories", web_platform.page([]))
    with override_settings(SCALESTACK_SERVER_NAME="web-1"):
        web_client.post("/login", {"username": "alice", "password": "s3cret-pass"})
    cookie = web_client.cookies[settings.SESSION_COOKIE_NAME].value

    # A fresh browser holding only that cookie, answered by another server.
    other = Client()
    other.cookies[settings.SESSION_COOKIE_NAME] = cookie
    with override_settings(SCALESTACK_SERVER_NAME="web-2"):
        response = other.get("/")
    assert response["X-Served-By"] == "web-2"
    assert '<a href="/u/alice">alice</a>' in response.content.decode()


def test_a_tampered_session_cookie_is_logged_out(web_client: Client, web_platform: WebFakePlatform) -> None:
    web_platform.ok("GET", "/v1/stories", web_platform.page([]))
    forged = SessionStore()
    forged["uid"] = 1
    forged["uname"] = "admin"
    forged.save()
    value = forged.session_key
    assert value is not None
    web_client.cookies[settings.SESSION_COOKIE_NAME] = value[:-3] + ("AAA" if not value.endswith("AAA") else "BBB")
    page = web_client.get("/").content.decode()
    assert ">login</a>" in page and "/u/admin" not in page


def test_cookies_are_httponly_and_samesite_lax(web_client: Client, web_platform: WebFakePlatform) -> None:
    web_platform.ok("POST", "/v1/sessions", web_platform.user("alice", id=7))
    web_client.get("/login")  # sets the CSRF cookie
    response = web_client.post("/login", {"username": "alice", "password": "s3cret-pass"})
    for name in (settings.SESSION_COOKIE_NAME, "messages"):
        cookie = response.cookies[name]
        assert cookie["httponly"] is True, name
        assert cookie["samesite"] == "Lax", name
    csrf = web_client.cookies[settings.CSRF_COOKIE_NAME]
    assert csrf["httponly"] is True and csrf["samesite"] == "Lax"
