"""The benchmark workload: a social-network mix, modelled on DeathStarBench's social network.

Run by Locust in a subprocess that ``scalestack bench`` starts (never imported
by pytest: Locust patches the standard library with gevent on import).

The mix, by request: 60 % home-timeline reads (``/home``), 30 % user-timeline
reads (``/u/<name>``, the profile with the user's stories), 10 % story posts
(``POST /submit``), as in DeathStarBench's ``mixed-workload``. On top of those,
front-page reads, votes and story-link clicks. Which user a timeline read
asks for is drawn with a Zipf-like skew over the users ranked by followers, so
popular users are read far more often, as on a real site.

Members are signed in once by the harness (``BENCH_SESSIONS_FILE``: session
cookies); sessions are signed cookies, so every Locust user may share them
without a password hash per user. The load comes from the load generator's
address (``BENCH_SOURCE``), which the front door's rate limit exempts.
"""
from __future__ import annotations

import json
import os
import random
import re
import uuid
from itertools import accumulate
from typing import Any

from locust import HttpUser, constant, events, task
from locust.env import Environment

from scalestack.source_address import SourceAddressAdapter

TIMEOUT = 15.0
USERS: list[str] = json.loads(open(os.environ["BENCH_USERS_FILE"]).read())
SESSIONS: list[dict[str, str]] = json.loads(open(os.environ["BENCH_SESSIONS_FILE"]).read())
# Zipf with exponent 1 over the users ranked by followers: the k-th most
# followed user is read 1/k as often as the most followed one.
_CUMULATIVE = list(accumulate(1.0 / rank for rank in range(1, len(USERS) + 1)))
_STORY = re.compile(r'href="/s/(\d+)"')
_CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
_IDEMPOTENCY = re.compile(r'name="idempotency_key" value="([^"]+)"')


_MAX_REQUESTS = int(os.environ.get("BENCH_MAX_REQUESTS", "0") or 0)
_sent = 0


@events.request.add_listener
def _bound(context: Any = None, **_: Any) -> None:
    """Stop the run after ``BENCH_MAX_REQUESTS`` requests (Locust's --run-time bounds the time)."""
    global _sent
    _sent += 1
    if _MAX_REQUESTS and _sent == _MAX_REQUESTS and _environment and _environment.runner:
        _environment.runner.quit()


_environment: Environment | None = None


@events.init.add_listener
def _keep(environment: Environment, **_: Any) -> None:
    global _environment
    _environment = environment


def popular_user() -> str:
    """A user name, skewed toward the most followed."""
    return random.choices(USERS, cum_weights=_CUMULATIVE)[0]


class Member(HttpUser):
    """A signed-in member. ``wait_time`` 0: the harness sets the load by the number of users."""

    wait_time = constant(float(os.environ.get("BENCH_WAIT", "0")))

    def on_start(self) -> None:
        self.client.mount("http://", SourceAddressAdapter(os.environ.get("BENCH_SOURCE", "127.0.0.1")))
        self.client.cookies.update(random.choice(SESSIONS))
        self.stories: list[str] = []

    def _read(self, path: str, name: str) -> str:
        with self.client.get(path, name=name, timeout=TIMEOUT, catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"{response.status_code}")
                return ""
            found = _STORY.findall(response.text)
            if found:
                self.stories = found[:30]
            return response.text

    # --- DeathStarBench's mix ------------------------------------------------
    @task(60)
    def home_timeline(self) -> None:
        self._read("/home", "home timeline")

    @task(30)
    def user_timeline(self) -> None:
        self._read(f"/u/{popular_user()}", "user timeline")

    @task(10)
    def post(self) -> None:
        form = self.client.get("/submit", name="post (form)", timeout=TIMEOUT).text
        csrf, key = _CSRF.search(form), _IDEMPOTENCY.search(form)
        if not (csrf and key):
            return
        tag = uuid.uuid4().hex[:10]
        data = {"csrfmiddlewaretoken": csrf.group(1), "idempotency_key": key.group(1),
                "title": f"bench story {tag}", "url": f"https://example.org/bench/{tag}", "text": ""}
        with self.client.post("/submit", data=data, name="post", allow_redirects=False, timeout=TIMEOUT,
                              catch_response=True) as response:
            if response.status_code != 302 or response.headers.get("Location", "").startswith("/login"):
                response.failure(f"{response.status_code} {response.headers.get('Location')}")

    # --- on top: the news site's own reads and writes -------------------------
    @task(10)
    def front_page(self) -> None:
        self._read("/", "front page")

    @task(5)
    def vote(self) -> None:
        if not self.stories:
            return
        story = random.choice(self.stories)
        page = self._read(f"/s/{story}", "story")
        csrf, key = _CSRF.search(page), _IDEMPOTENCY.search(page)
        if not (csrf and key):
            return
        with self.client.post(f"/s/{story}/vote", data={"csrfmiddlewaretoken": csrf.group(1),
                                                         "idempotency_key": key.group(1)},
                              name="vote", allow_redirects=False, timeout=TIMEOUT, catch_response=True) as response:
            if response.status_code != 302:
                response.failure(f"{response.status_code}")

    @task(5)
    def click(self) -> None:
        if not self.stories:
            return
        # Never follow the redirect: it points at the story's own (external) link.
        with self.client.get(f"/r/{random.choice(self.stories)}", name="click", allow_redirects=False,
                             timeout=TIMEOUT, catch_response=True) as response:
            if response.status_code != 302:
                response.failure(f"{response.status_code}")
