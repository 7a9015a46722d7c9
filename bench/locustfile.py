"""The benchmark workload: a social-network mix, modelled on DeathStarBench's social network.

Run by Locust in a subprocess that ``scalestack bench`` starts (never imported
by pytest: Locust patches the standard library with gevent on import).

The mix (``BENCH_MIX=social``), by request: 60 % home-timeline reads
(``/home``), 30 % user-timeline reads (``/u/<name>``, the profile with the
user's stories), 10 % story posts (``POST /submit``), as in DeathStarBench's
``mixed-workload``. On top of those, front-page reads, votes and story-link
clicks. ``BENCH_MIX=reads`` keeps only the three page reads (home 60, user 30,
front 10): the pages the single-process baseline (``bench/baseline``) serves
too. Which user a timeline read asks for is drawn with a Zipf-like skew over
the users ranked by followers, so popular users are read far more often, as
on a real site.

Two load models:

- **Closed loop** (``Member``, the default): N users, each sending its next
  request when the last one answered. Throughput is what the stack gives
  back, so this finds capacity; but a slow response also delays the requests
  that would have followed it, so the latency it reports hides queueing
  ("coordinated omission").
- **Open loop** (``Arrivals``, ``BENCH_RATE`` > 0): actions arrive at a fixed
  rate whatever the stack does, each in its own greenlet, as independent
  visitors do. A slow response delays nobody else, so queueing shows in the
  latency. Locust has no open workload model of its own (its users are
  closed loops), so the arrival clock is written here, in a few lines: it is
  the point of the demo. Locust still sends the requests and keeps the
  statistics. The clock also measures how late each arrival actually started
  (``BENCH_LAG_FILE``): if the generator itself falls behind, the harness
  says so rather than report flattering latencies.

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
import time
import uuid
from itertools import accumulate, count
from typing import Any, Callable

import gevent
from locust import HttpUser, User, constant, events, task
from locust.clients import HttpSession
from locust.env import Environment

from scalestack.source_address import SourceAddressAdapter

TIMEOUT = 15.0
USERS: list[str] = json.loads(open(os.environ["BENCH_USERS_FILE"]).read())
SESSIONS: list[dict[str, str]] = json.loads(open(os.environ["BENCH_SESSIONS_FILE"]).read())
SOURCE = os.environ.get("BENCH_SOURCE", "127.0.0.1")
# Zipf with exponent 1 over the users ranked by followers: the k-th most
# followed user is read 1/k as often as the most followed one.
_CUMULATIVE = list(accumulate(1.0 / rank for rank in range(1, len(USERS) + 1)))
_STORY = re.compile(r'href="/s/(\d+)"')
_CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
_IDEMPOTENCY = re.compile(r'name="idempotency_key" value="([^"]+)"')

_MAX_REQUESTS = int(os.environ.get("BENCH_MAX_REQUESTS", "0") or 0)
_sent = 0
_environment: Environment | None = None


@events.init.add_listener
def _keep(environment: Environment, **_: Any) -> None:
    global _environment
    _environment = environment


@events.request.add_listener
def _bound(context: Any = None, **_: Any) -> None:
    """Stop the run after ``BENCH_MAX_REQUESTS`` requests (Locust's --run-time bounds the time)."""
    global _sent
    _sent += 1
    if _MAX_REQUESTS and _sent == _MAX_REQUESTS and _environment and _environment.runner:
        _environment.runner.quit()


def popular_user() -> str:
    """A user name, skewed toward the most followed."""
    return random.choices(USERS, cum_weights=_CUMULATIVE)[0]


# --- the actions: each takes a visitor (anything with .client and .stories) ----
def _read(visitor: Any, path: str, name: str) -> str:
    with visitor.client.get(path, name=name, timeout=TIMEOUT, catch_response=True) as response:
        if response.status_code != 200:
            response.failure(f"{response.status_code}")
            return ""
        found = _STORY.findall(response.text)
        if found:
            visitor.stories = found[:30]
        return response.text


def home_timeline(visitor: Any) -> None:
    _read(visitor, "/home", "home timeline")


def user_timeline(visitor: Any) -> None:
    _read(visitor, f"/u/{popular_user()}", "user timeline")


def front_page(visitor: Any) -> None:
    _read(visitor, "/", "front page")


def post(visitor: Any) -> None:
    form = visitor.client.get("/submit", name="post (form)", timeout=TIMEOUT).text
    csrf, key = _CSRF.search(form), _IDEMPOTENCY.search(form)
    if not (csrf and key):
        return
    tag = uuid.uuid4().hex[:10]
    data = {"csrfmiddlewaretoken": csrf.group(1), "idempotency_key": key.group(1),
            "title": f"bench story {tag}", "url": f"https://example.org/bench/{tag}", "text": ""}
    with visitor.client.post("/submit", data=data, name="post", allow_redirects=False, timeout=TIMEOUT,
                             catch_response=True) as response:
        if response.status_code != 302 or response.headers.get("Location", "").startswith("/login"):
            response.failure(f"{response.status_code} {response.headers.get('Location')}")


def vote(visitor: Any) -> None:
    if not visitor.stories:
        return
    story = random.choice(visitor.stories)
    page = _read(visitor, f"/s/{story}", "story")
    csrf, key = _CSRF.search(page), _IDEMPOTENCY.search(page)
    if not (csrf and key):
        return
    with visitor.client.post(f"/s/{story}/vote", data={"csrfmiddlewaretoken": csrf.group(1),
                                                        "idempotency_key": key.group(1)},
                             name="vote", allow_redirects=False, timeout=TIMEOUT, catch_response=True) as response:
        if response.status_code != 302:
            response.failure(f"{response.status_code}")


def click(visitor: Any) -> None:
    if not visitor.stories:
        return
    # Never follow the redirect: it points at the story's own (external) link.
    with visitor.client.get(f"/r/{random.choice(visitor.stories)}", name="click", allow_redirects=False,
                            timeout=TIMEOUT, catch_response=True) as response:
        if response.status_code != 302:
            response.failure(f"{response.status_code}")


MIXES: dict[str, dict[Callable[[Any], None], int]] = {
    # DeathStarBench's 60/30/10, then the news site's own reads and writes.
    "social": {home_timeline: 60, user_timeline: 30, post: 10, front_page: 10, vote: 5, click: 5},
    "reads": {home_timeline: 60, user_timeline: 30, front_page: 10},
}
MIX = MIXES[os.environ.get("BENCH_MIX", "social")]


class Member(HttpUser):
    """Closed loop: a signed-in member. ``wait_time`` 0: the harness sets the load by the number of users."""

    wait_time = constant(float(os.environ.get("BENCH_WAIT", "0")))
    tasks = MIX

    def on_start(self) -> None:
        self.client.mount("http://", SourceAddressAdapter(SOURCE))
        self.client.cookies.update(random.choice(SESSIONS))
        self.stories: list[str] = []


class _Visitor:
    """One open-loop visitor's connection and what it last saw (reused by later arrivals)."""

    def __init__(self, user: User) -> None:
        self.client = HttpSession(base_url=user.host, request_event=user.environment.events.request, user=user)
        self.client.mount("http://", SourceAddressAdapter(SOURCE))
        self.client.cookies.update(random.choice(SESSIONS))
        self.stories: list[str] = []


class Arrivals(User):
    """Open loop: one action every 1/``BENCH_RATE`` seconds, each in its own greenlet.

    The spacing is constant (as wrk2's), so the offered load is exactly the
    rate. An arrival that finds ``BENCH_MAX_IN_FLIGHT`` actions still
    unanswered is counted as dropped: the stack is far past saturation, and
    the run says so instead of queueing without bound in the generator.
    """

    fixed_count = 1
    wait_time = constant(0)
    rate = float(os.environ.get("BENCH_RATE", "0") or 0)
    max_in_flight = int(os.environ.get("BENCH_MAX_IN_FLIGHT", "256"))

    def on_start(self) -> None:
        self.idle: list[_Visitor] = []
        self.in_flight = 0
        self.lags: list[float] = []
        self.dropped = 0
        self.actions = list(MIX)
        self.weights = list(MIX.values())
        events.quitting.add_listener(self._report)

    def _arrive(self, due: float) -> None:
        # How late this arrival began: the generator's own queueing, reported.
        self.lags.append(time.monotonic() - due)
        visitor = self.idle.pop() if self.idle else _Visitor(self)
        try:
            random.choices(self.actions, weights=self.weights)[0](visitor)
        finally:
            self.idle.append(visitor)
            self.in_flight -= 1

    @task
    def arrive(self) -> None:
        """The arrival clock; runs until Locust stops the run (time or request bound)."""
        if self.rate <= 0:
            raise RuntimeError("Arrivals needs BENCH_RATE > 0")
        start = time.monotonic()
        for n in count():
            due = start + n / self.rate
            delay = due - time.monotonic()
            if delay > 0:
                gevent.sleep(delay)
            if self.in_flight >= self.max_in_flight:
                self.dropped += 1
                continue
            self.in_flight += 1
            gevent.spawn(self._arrive, due)

    def _report(self, environment: Environment, **_: Any) -> None:
        """Write each arrival's start lag (ms) for the harness (``scalestack.bench``) to summarise."""
        path = os.environ.get("BENCH_LAG_FILE")
        if path:
            with open(path, "w") as handle:
                json.dump({"lags_ms": [round(lag * 1000, 3) for lag in self.lags], "dropped": self.dropped}, handle)
