"""The fault suite's load: readers and members browsing, voting, posting and following.

Run by Locust in a subprocess (``tests/faults/loadgen.py`` starts it), never
imported by pytest: Locust monkey-patches the standard library with gevent as
soon as it is imported, which would break the test process's own sockets and
threads.

The mix is a small news site's: anonymous readers only read (front page,
newest, story pages, user pages, click-throughs); members, signed up fresh in
``on_start`` before any fault is injected, read the same pages plus their home
timeline and write about one request in four (vote, submit a story, follow).
Overall about 80 % reads and 20 % writes.

Every request is appended as one JSON line to ``$LOADGEN_OUT`` by a ``request``
event listener, and every write the site acknowledged (a 302 to where the
write says it went) adds a line of its own, so the test can compute figures
per phase and check afterwards that no acknowledged write was lost:

``{"t": 1764142165.2, "kind": "read", "method": "GET", "name": "/s/[id]",
"status": 200, "ms": 23.4, "error": null, "read_only": false,
"served_by": "web-1", "platform": "platform-2", "retry_after": null}``

``{"t": ..., "ack": "story", "user": "lg1a2b3c", "id": 10012, "title": "..."}``,
and likewise ``vote`` (``story``), ``follow`` (``followee``), ``click``
(``story``) and ``signup``.

Every connection is made from ``$LOADGEN_SOURCE`` (the load generator's
loopback address, which the front door's rate limit exempts), and every
request has a client timeout, so a hung server shows up as a failed request
instead of a stuck user. ``$LOADGEN_MAX_REQUESTS`` bounds the run in count;
Locust's ``--run-time`` bounds it in time.
"""
from __future__ import annotations

import itertools
import json
import os
import random
import re
import time
import uuid
from html.parser import HTMLParser
from typing import Any, TextIO

import gevent
from locust import HttpUser, between, events, task
from locust.env import Environment

from scalestack.source_address import SourceAddressAdapter

# Where the site says a write was refused because the primary database is
# down (the web tier's 503 page: "The site is read-only for now").
READ_ONLY_MARK = "read-only"
# Long enough for any healthy answer under this load, short enough that a hung
# request is reported as a failure well before the run ends.
CLIENT_TIMEOUT = 15.0
# Names in Locust's own summary: one row per kind of page, not per id.
STORY = "/s/[id]"
USER = "/u/[name]"

_out: TextIO | None = None
_environment: Environment | None = None
_requests_sent = itertools.count(1)
# What the users have seen so far, shared by all of them (one process, greenlets).
_story_ids: list[int] = []
_usernames: list[str] = []
_members: list[str] = []
_KNOWN_LIMIT = 500


def _source_address() -> str:
    """The loopback address the load is sent from (exempt from the front door's rate limit)."""
    if "LOADGEN_SOURCE" in os.environ:
        return os.environ["LOADGEN_SOURCE"]
    from scalestack.topology import LOAD_GENERATOR_SOURCE

    return LOAD_GENERATOR_SOURCE


def _write(record: dict[str, Any]) -> None:
    """Append one JSON line (greenlets never switch inside a plain file write)."""
    if _out is not None:
        _out.write(json.dumps(record) + "\n")


@events.init.add_listener
def _on_init(environment: Environment, **_: Any) -> None:
    """Keep the environment (to quit at the request bound) and open the output file."""
    global _out, _environment
    _environment = environment
    path = os.environ.get("LOADGEN_OUT")
    if path:
        _out = open(path, "a", buffering=1, encoding="utf-8")  # noqa: SIM115 - open for the whole run


@events.quitting.add_listener
def _close_output(environment: Environment, **_: Any) -> None:
    if _out is not None:
        _out.flush()


@events.request.add_listener
def _record_request(request_type: str, name: str, response_time: float, response: Any,
                    context: dict[str, Any], exception: BaseException | None, start_time: float | None = None,
                    **_: Any) -> None:
    """One JSON line per request: what the test's per-phase figures are computed from."""
    status = int(getattr(response, "status_code", 0) or 0)
    headers = getattr(response, "headers", None) or {}
    read_only = False
    if status == 503:
        read_only = READ_ONLY_MARK in (getattr(response, "text", "") or "").lower()
    _write({
        "t": start_time if start_time is not None else time.time() - response_time / 1000,
        "kind": context.get("kind", "read"),
        "method": request_type,
        "name": name,
        "status": status,
        "ms": round(response_time, 2),
        "error": None if exception is None else f"{type(exception).__name__}: {exception}"[:300],
        "read_only": read_only,
        "served_by": headers.get("X-Served-By"),
        "platform": headers.get("X-Platform-Served-By"),
        "retry_after": headers.get("Retry-After"),
        "location": headers.get("Location") if 300 <= status < 400 else None,
    })
    limit = int(os.environ.get("LOADGEN_MAX_REQUESTS", "0") or 0)
    runner = _environment.runner if _environment else None
    if limit and next(_requests_sent) == limit and runner is not None:
        # Quit from a greenlet of its own: quit() kills the users, this one included.
        gevent.spawn(runner.quit)


def _ack(what: str, **fields: Any) -> None:
    """Record a write the site acknowledged, for the no-lost-writes check."""
    _write({"t": time.time(), "ack": what, **fields})


def _remember(target: list, values: list, limit: int = _KNOWN_LIMIT) -> None:
    for value in values:
        if value not in target:
            target.append(value)
    del target[:-limit]


class _Forms(HTMLParser):
    """Every form on a page: its action and its hidden inputs (CSRF token, idempotency key, next)."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: dict[str, dict[str, str]] = {}
        self._current: dict[str, str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "form":
            self._current = self.forms.setdefault(values.get("action", ""), {})
        elif tag == "input" and self._current is not None and values.get("type") == "hidden" and "name" in values:
            self._current[values["name"]] = values.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._current = None


def hidden_fields(html: str, action: str) -> dict[str, str] | None:
    """The hidden inputs of the form that posts to ``action``, or ``None`` if the page has none.

    All of them are sent back, not only the CSRF token: the site adds fields
    (an idempotency key per rendered form) that a write needs.
    """
    parser = _Forms()
    parser.feed(html)
    return parser.forms.get(action)


_STORY_LINK = re.compile(r'href="/s/(\d+)"')
_USER_LINK = re.compile(r'href="/u/([A-Za-z0-9_-]{1,30})"')


class Visitor(HttpUser):
    """Shared behaviour: source address, timeouts, page parsing."""

    abstract = True
    wait_time = between(0.3, 1.0)

    def on_start(self) -> None:
        """Send from the load generator's address; learn some story ids and names."""
        self.client.mount("http://", SourceAddressAdapter(_source_address()))
        self.page("/", "/")

    # --- requests -----------------------------------------------------------
    def page(self, path: str, name: str) -> str:
        """GET a page, learn the stories and users it links to, return its HTML."""
        response = self.client.get(path, name=name, timeout=CLIENT_TIMEOUT, context={"kind": "read"})
        html = response.text if response.status_code == 200 else ""
        _remember(_story_ids, [int(i) for i in _STORY_LINK.findall(html)])
        _remember(_usernames, _USER_LINK.findall(html))
        return html

    def post_form(self, action: str, page_html: str, fields: dict[str, str], name: str) -> Any | None:
        """POST the form with this ``action`` found on ``page_html``, with every hidden field.

        Returns the response, or ``None`` if the page had no such form (e.g.
        the page failed, or the user already follows someone).
        """
        hidden = hidden_fields(page_html, action)
        if hidden is None:
            return None
        return self.client.post(action, data={**hidden, **fields}, name=name, allow_redirects=False,
                                timeout=CLIENT_TIMEOUT, context={"kind": "write"})

    def story_id(self) -> int | None:
        return random.choice(_story_ids) if _story_ids else None

    # --- reads (weights: the front page is the busiest) --------------------
    @task(4)
    def front_page(self) -> None:
        self.page("/", "/")

    @task(2)
    def newest(self) -> None:
        self.page("/newest", "/newest")

    @task(3)
    def story(self) -> None:
        if (story_id := self.story_id()) is not None:
            self.page(f"/s/{story_id}", STORY)

    @task(2)
    def user_page(self) -> None:
        if _usernames:
            self.page(f"/u/{random.choice(_usernames)}", USER)

    @task(1)
    def click(self) -> None:
        """Follow a title through the click redirect, without leaving loopback."""
        if (story_id := self.story_id()) is None:
            return
        # Never follow the redirect: it points at the story's own (external) link.
        response = self.client.get(f"/r/{story_id}", name="/r/[id]", allow_redirects=False,
                                   timeout=CLIENT_TIMEOUT, context={"kind": "read"},
                                   headers={"Referer": f"{self.host}/"})
        if response.status_code == 302:
            _ack("click", story=story_id)


class Reader(Visitor):
    """An anonymous visitor: reads only."""

    weight = 1
    # The test asks for an exact mix (and waits for every member's sign-up).
    fixed_count = int(os.environ.get("LOADGEN_READERS", "0"))


class Member(Visitor):
    """A signed-up member: reads, and about one request in four is a write."""

    weight = 2
    fixed_count = int(os.environ.get("LOADGEN_MEMBERS", "0"))

    def on_start(self) -> None:
        """Sign up a fresh account (before any fault: the test waits for every sign-up)."""
        super().on_start()
        self.username = f"lg{uuid.uuid4().hex[:12]}"
        password = "load generator password"
        form = self.page("/signup", "/signup")
        response = self.post_form("/signup", form, {"username": self.username, "password": password,
                                                    "password2": password}, "/signup")
        if response is not None and response.status_code == 302:
            _ack("signup", user=self.username)
            _remember(_members, [self.username])

    @task(2)
    def home(self) -> None:
        self.page("/home", "/home")

    @task(4)
    def vote(self) -> None:
        if (story_id := self.story_id()) is None:
            return
        html = self.page(f"/s/{story_id}", STORY)
        response = self.post_form(f"/s/{story_id}/vote", html, {}, "/s/[id]/vote")
        if self._acknowledged(response):
            _ack("vote", user=self.username, story=story_id)

    @task(2)
    def submit(self) -> None:
        tag = uuid.uuid4().hex[:10]
        title = f"load {self.username} {tag}"
        html = self.page("/submit", "/submit")
        response = self.post_form("/submit", html, {"title": title, "url": f"https://example.org/load/{tag}",
                                                    "text": ""}, "/submit")
        if self._acknowledged(response):
            match = re.fullmatch(r"/s/(\d+)", response.headers["Location"])
            if match:
                story_id = int(match.group(1))
                _ack("story", user=self.username, id=story_id, title=title)
                _remember(_story_ids, [story_id])

    @task(2)
    def follow(self) -> None:
        candidates = [name for name in _usernames[-50:] + _members if name != self.username]
        if not candidates:
            return
        name = random.choice(candidates)
        html = self.page(f"/u/{name}", USER)
        response = self.post_form(f"/u/{name}/follow", html, {}, "/u/[name]/follow")
        if self._acknowledged(response):
            _ack("follow", user=self.username, followee=name)

    @staticmethod
    def _acknowledged(response: Any | None) -> bool:
        """A write counts as done when the site redirects onwards (not to the login page)."""
        return (response is not None and response.status_code == 302
                and not response.headers.get("Location", "").startswith("/login"))
