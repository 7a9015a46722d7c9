"""Exercise the platform's writes with real transactions: idempotency keys, read-only mode, health.

Run by ``test_platform_writes.py`` (through ``platform_support.run_probe``)
under ``platform_sqlite_settings``: the aliases named in
``PROBE_SQLITE_ALIASES`` are one SQLite file, the others a PostgreSQL address
nothing listens on. ``PROBE_MODE`` picks the cases:

* ``sqlite``: both aliases work. Migrates and seeds the file, then checks
  Idempotency-Key handling end to end (validation, replay, fingerprints,
  atomicity, concurrency, the after-commit hooks, the purge);
* ``primary_down``: only the replica works (run after ``sqlite``, on its file):
  writes are a quick read-only 503, reads and sign-in still work, healthz is
  "degraded" and answers 503 while draining;
* ``replica_down``: only the primary works: an outage of the replica during a
  write is not mistaken for a read-only primary.

Prints one JSON line.
"""
from __future__ import annotations

import json
import os
import threading
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any, Callable

import django

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import OperationalError, connections  # noqa: E402
from django.test.utils import override_settings  # noqa: E402
from django.utils import timezone  # noqa: E402
from ninja.testing import TestClient  # noqa: E402

from platform_api import events, idempotency, repository  # noqa: E402
from platform_api.api import api  # noqa: E402
from platform_api.models import ExportJob, Follow, IdempotencyKey, OutboxEvent, Story, User, Vote  # noqa: E402

AUTH = {"Authorization": "Bearer unit-test-token"}
HEADERS = ("Idempotent-Replayed", "Retry-After", "X-Read-Only")


def call(client: TestClient, method: str, path: str, key: str | None = None, **kwargs: Any) -> dict[str, Any]:
    """One request: ``{status, body, headers (the interesting ones), seconds}``."""
    headers = {**AUTH, **kwargs.pop("headers", {})}
    if key is not None:
        headers["Idempotency-Key"] = key
    started = time.monotonic()
    try:
        response = getattr(client, method)(path, headers=headers, **kwargs)
    except Exception as exc:  # noqa: BLE001 - an unhandled exception would be Django's 500
        return {"status": 500, "body": f"unhandled {type(exc).__name__}: {exc}", "headers": {}, "seconds": 0}
    seconds = round(time.monotonic() - started, 3)
    try:
        body = json.loads(response.content or b"null")
    except ValueError:
        body = response.content.decode(errors="replace")
    found = {name: response[name] for name in HEADERS if response.has_header(name)}
    return {"status": response.status_code, "body": body, "headers": found, "seconds": seconds}


def ids() -> dict[str, int]:
    """The seeded rows, looked up on whichever alias is up."""
    alias = "default" if "default" in os.environ.get("PROBE_SQLITE_ALIASES", "default") else "replica"
    users = dict(User.objects.using(alias).values_list("username", "id"))
    stories = dict(Story.objects.using(alias).values_list("title", "id"))
    return {"alice": users["alice"], "bob": users["bob"], "story": stories["First"], "story2": stories["Second"]}


# --------------------------------------------------------------------------
# Mode "sqlite": Idempotency-Key end to end
# --------------------------------------------------------------------------
def seed() -> dict[str, int]:
    """Migrate the file and add two users and two stories."""
    call_command("migrate", verbosity=0)
    alice = User.objects.create_user("alice", password="password123")
    bob = User.objects.create_user("bob", password="password123")
    for title in ("First", "Second"):
        Story.objects.create(author=alice, title=title, url="https://example.org/", created_at=timezone.now())
    assert alice.id and bob.id
    return ids()


def story_body(author_id: int, title: str) -> dict[str, Any]:
    """A valid ``POST /stories`` body."""
    return {"author_id": author_id, "title": title, "url": "https://example.org/x", "text": ""}


def count_stories(title: str) -> int:
    """How many stories carry ``title``."""
    return Story.objects.using("default").filter(title=title).count()


def validation_cases(client: TestClient, seeded: dict[str, int]) -> dict[str, Any]:
    """Malformed keys: 400, and nothing is written."""
    body = story_body(seeded["alice"], "Bad key")
    cases = {
        name: call(client, "post", "/stories", key=key, json=body)
        for name, key in {
            "space": "has space",
            "too_long": "k" * 65,
            "empty": "",
            "accent": "cl\u00e9",
            "slash": "a/b",
        }.items()
    }
    cases["stories_written"] = count_stories("Bad key")
    cases["keys_stored"] = IdempotencyKey.objects.using("default").count()
    cases["longest"] = call(client, "post", "/stories", key="k" * 64, json=story_body(seeded["alice"], "Long key"))
    return cases


def replay_cases(client: TestClient, seeded: dict[str, int]) -> dict[str, Any]:
    """The same request twice with one key: one write, the same answer twice."""
    story, story2, alice, bob = seeded["story"], seeded["story2"], seeded["alice"], seeded["bob"]
    cases: dict[str, Any] = {}
    keyed = story_body(alice, "Keyed story")
    cases["story"] = [call(client, "post", "/stories", key="story-1", json=keyed) for _ in range(2)]
    cases["story_rows"] = count_stories("Keyed story")
    unkeyed = story_body(alice, "Unkeyed story")
    cases["story_unkeyed"] = [call(client, "post", "/stories", json=unkeyed) for _ in range(2)]
    cases["story_unkeyed_rows"] = count_stories("Unkeyed story")

    vote = {"user_id": bob}
    cases["vote"] = [call(client, "post", f"/stories/{story}/votes", key="vote-1", json=vote) for _ in range(2)]
    cases["vote_rows"] = Vote.objects.using("default").filter(story_id=story).count()
    cases["story_votes"] = Story.objects.using("default").get(id=story).votes
    cases["vote_unkeyed"] = [call(client, "post", f"/stories/{story2}/votes", json=vote) for _ in range(2)]

    signup = {"username": "carol", "password": "password123"}
    cases["signup"] = [call(client, "post", "/users", key="signup-1", json=signup) for _ in range(2)]
    cases["signup_unkeyed_again"] = call(client, "post", "/users", json=signup)

    path = f"/users/{alice}/following/{bob}"
    cases["follow"] = [call(client, "put", path, key="follow-1") for _ in range(2)]
    cases["unfollow"] = [call(client, "delete", path, key="unfollow-1") for _ in range(2)]
    cases["follow_rows"] = Follow.objects.using("default").filter(follower_id=alice, followee_id=bob).count()
    return cases


def fingerprint_cases(client: TestClient, seeded: dict[str, int]) -> dict[str, Any]:
    """The key of one request sent with another: 422 and nothing written; failures free their key."""
    story, story2, alice, bob = seeded["story"], seeded["story2"], seeded["alice"], seeded["bob"]
    cases: dict[str, Any] = {
        "other_body": call(client, "post", f"/stories/{story}/votes", key="vote-1", json={"user_id": alice}),
        "other_path": call(client, "post", f"/stories/{story2}/votes", key="vote-1", json={"user_id": bob}),
        "other_method": call(client, "put", f"/users/{alice}/following/{bob}", key="vote-1"),
    }
    cases["alice_voted"] = Vote.objects.using("default").filter(story_id=story, user_id=alice).exists()
    cases["still_following"] = Follow.objects.using("default").filter(follower_id=alice, followee_id=bob).exists()
    cases["error_first"] = call(client, "post", "/stories/999999/votes", key="err-1", json={"user_id": bob})
    cases["error_key_stored"] = IdempotencyKey.objects.using("default").filter(key="err-1").exists()
    cases["error_key_reused"] = call(client, "post", f"/stories/{story}/votes", key="err-1", json={"user_id": alice})
    cases["unauthenticated_replay"] = call(
        client, "post", "/stories", key="story-1", json=story_body(alice, "Keyed story"),
        headers={"Authorization": "Bearer wrong"},
    )
    return cases


def atomicity_cases(client: TestClient, seeded: dict[str, int]) -> dict[str, Any]:
    """The key and the write commit together: a failure storing the answer loses both, and the hooks."""
    relayed: list[list[int]] = []
    real_relay = events.relay_events
    events.relay_events = lambda ids: relayed.append(list(ids)) or 0  # type: ignore[assignment,func-returns-value]
    real_store = idempotency._store

    def failing_store(key: str, response: Any) -> None:
        raise OperationalError("could not write to the disk")

    body = story_body(seeded["alice"], "Atomic story")
    try:
        idempotency._store = failing_store  # type: ignore[assignment]
        failed = call(client, "post", "/stories", key="atomic-1", json=body)
        after_failure = {
            "stories": count_stories("Atomic story"),
            "key": IdempotencyKey.objects.using("default").filter(key="atomic-1").exists(),
            "relayed": len(relayed),
        }
        idempotency._store = real_store  # type: ignore[assignment]
        retried = [call(client, "post", "/stories", key="atomic-1", json=body) for _ in range(2)]
    finally:
        idempotency._store = real_store  # type: ignore[assignment]
        events.relay_events = real_relay  # type: ignore[assignment]
    return {
        "failed": failed,
        "after_failure": after_failure,
        "retried": retried,
        "stories": count_stories("Atomic story"),
        "relayed": relayed,
        "outbox_for_story": OutboxEvent.objects.using("default").filter(
            payload__story_id=retried[0]["body"].get("id")
        ).count(),
    }


def concurrency_cases(client: TestClient, seeded: dict[str, int]) -> dict[str, Any]:
    """Two identical keyed requests at once: the second waits for the first and replays it."""
    real_create = repository.create_story
    first = threading.Event()

    def slow_create(*args: Any, **kwargs: Any) -> Any:
        # Only the first caller is slow: the second must arrive while it is in flight.
        if not first.is_set():
            first.set()
            time.sleep(0.5)
        return real_create(*args, **kwargs)

    repository.create_story = slow_create  # type: ignore[assignment]
    results: list[dict[str, Any]] = []
    lock = threading.Lock()
    body = story_body(seeded["alice"], "Raced story")

    def send() -> None:
        result = call(client, "post", "/stories", key="race-1", json=body)
        result["finished"] = time.monotonic()
        with lock:
            results.append(result)
        connections.close_all()

    threads = [threading.Thread(target=send) for _ in range(2)]
    try:
        threads[0].start()
        first.wait(5)
        threads[1].start()
        for thread in threads:
            thread.join(30)
    finally:
        repository.create_story = real_create  # type: ignore[assignment]
    results.sort(key=lambda r: r["finished"])
    return {"results": results, "stories": count_stories("Raced story")}


def offline_cases(client: TestClient, seeded: dict[str, int]) -> dict[str, Any]:
    """Clicks and exports with a key: one event, one job, hooks once."""
    click = {"story_id": seeded["story"], "user_id": seeded["bob"], "referrer_domain": "example.org"}
    clicks = [call(client, "post", "/clicks", key="click-1", json=click) for _ in range(2)]
    outbox = list(OutboxEvent.objects.using("default").filter(routing_key="click").values_list("payload", flat=True))

    from platform_api.tasks import exports

    published: list[str] = []
    real_publish = exports._publish
    exports._publish = lambda job_id: published.append(str(job_id)) or True  # type: ignore[assignment,func-returns-value]
    try:
        started = [call(client, "post", f"/users/{seeded['bob']}/exports", key="export-1") for _ in range(2)]
    finally:
        exports._publish = real_publish  # type: ignore[assignment]
    return {
        "clicks": clicks,
        "click_event_ids": [payload["event_id"] for payload in outbox],
        "expected_event_id": str(uuid.uuid5(idempotency.EVENT_NAMESPACE, "click-1")),
        "exports": started,
        "export_jobs": ExportJob.objects.using("default").filter(user_id=seeded["bob"]).count(),
        "export_published": published,
    }


def purge_cases() -> dict[str, Any]:
    """The daily purge deletes keys older than a day, and only those."""
    from platform_api.tasks.purge import IDEMPOTENCY_KEYS_KEEP, purge_idempotency_keys_before

    now = timezone.now()
    for key, age in (("old-1", timedelta(hours=25)), ("young-1", timedelta(hours=23))):
        IdempotencyKey.objects.using("default").create(
            key=key, method="POST", path="/x", body_sha256="0" * 64, response_status=200,
            response_body="{}", created_at=now - age,
        )
    deleted = purge_idempotency_keys_before(now - IDEMPOTENCY_KEYS_KEEP)
    left = set(IdempotencyKey.objects.using("default").values_list("key", flat=True))
    return {"deleted": deleted, "old_left": "old-1" in left, "young_left": "young-1" in left, "left": len(left)}


def known_down_cases(client: TestClient, seeded: dict[str, int]) -> dict[str, Any]:
    """The primary probe says the primary is down: writes are refused before any query.

    Run last: the probe's verdict lasts ``PRIMARY_RETRY_SECONDS``.
    """
    from platform_api import primary
    from platform_api.messaging import publisher

    published: list[str] = []
    publisher.publish = lambda routing_key, payload, message_id=None: published.append(routing_key)  # type: ignore[method-assign]
    primary.probe.mark_down("unit test: the primary is down")
    alice, bob, story = seeded["alice"], seeded["bob"], seeded["story"]
    click = {"story_id": story, "user_id": bob, "referrer_domain": ""}
    return {
        "story": call(client, "post", "/stories", json=story_body(alice, "Known down")),
        "story_keyed": call(client, "post", "/stories", key="known-down-1", json=story_body(alice, "Known down")),
        "follow": call(client, "put", f"/users/{bob}/following/{alice}"),
        "unauthenticated": call(client, "post", "/stories", json=story_body(alice, "Known down"),
                                headers={"Authorization": "Bearer wrong"}),
        "click": call(client, "post", "/clicks", json=click),
        "click_keyed": call(client, "post", "/clicks", key="known-down-2", json=click),
        "read": call(client, "get", f"/stories/{story}"),
        "stories": count_stories("Known down"),
        "keys": IdempotencyKey.objects.using("default").filter(key__startswith="known-down").count(),
        "published": published,
    }


def write_operations() -> dict[str, list[Any]]:
    """Every write operation of the API, and whether it honours Idempotency-Key."""
    api.urls  # noqa: B018 - builds the routes (and mounts the routers)
    found: dict[str, list[Any]] = {}
    for prefix, router in api._routers:
        for path, path_view in router.path_operations.items():
            for operation in path_view.operations:
                for method in operation.methods:
                    if method in ("POST", "PUT", "PATCH", "DELETE"):
                        found[f"{method} {prefix}{path}"] = [idempotency.is_idempotent(operation)]
    return found


def sqlite_mode(client: TestClient) -> dict[str, Any]:
    """Every Idempotency-Key case, on a fresh file."""
    seeded = seed()
    return {
        "validation": validation_cases(client, seeded),
        "replay": replay_cases(client, seeded),
        "fingerprint": fingerprint_cases(client, seeded),
        "atomicity": atomicity_cases(client, seeded),
        "concurrency": concurrency_cases(client, seeded),
        "offline": offline_cases(client, seeded),
        "purge": purge_cases(),
        "write_operations": write_operations(),
        "known_down": known_down_cases(client, seeded),
    }


# --------------------------------------------------------------------------
# Modes "primary_down" and "replica_down"
# --------------------------------------------------------------------------
def writes(client: TestClient, seeded: dict[str, int]) -> dict[str, Any]:
    """One call to every write endpoint (two with a key)."""
    alice, bob, story = seeded["alice"], seeded["bob"], seeded["story"]
    return {
        "story": call(client, "post", "/stories", json=story_body(alice, "While down")),
        "story_keyed": call(client, "post", "/stories", key="down-1", json=story_body(alice, "While down")),
        "vote": call(client, "post", f"/stories/{story}/votes", json={"user_id": bob}),
        "follow": call(client, "put", f"/users/{bob}/following/{alice}"),
        "unfollow": call(client, "delete", f"/users/{bob}/following/{alice}", key="down-2"),
        "signup": call(client, "post", "/users", json={"username": "dave", "password": "password123"}),
        "click": call(client, "post", "/clicks", json={"story_id": story, "user_id": bob, "referrer_domain": ""}),
        "export": call(client, "post", f"/users/{alice}/exports"),
    }


def reads(client: TestClient, seeded: dict[str, int]) -> dict[str, Any]:
    """Reads of the seeded rows, and a sign-in (a read too)."""
    return {
        "story": call(client, "get", f"/stories/{seeded['story']}"),
        "user": call(client, "get", "/users/alice"),
        "sign_in": call(client, "post", "/sessions", json={"username": "alice", "password": "password123"}),
    }


def health_cases(client: TestClient) -> dict[str, Any]:
    """healthz as it is, while draining, and with the drain file gone again."""
    drain = Path(os.environ["PROBE_SQLITE_PATH"]).with_name(f"{os.environ['PROBE_MODE']}.drain")
    cases: dict[str, Any] = {}
    with override_settings(SCALESTACK_DRAIN_FILE=str(drain)):
        cases["plain"] = call(client, "get", "/healthz")
        drain.touch()
        cases["draining"] = call(client, "get", "/healthz")
        drain.unlink()
    with override_settings(SCALESTACK_DRAIN_FILE=""):
        cases["unset"] = call(client, "get", "/healthz")
    return cases


def outage_mode(client: TestClient) -> dict[str, Any]:
    """Writes, reads and health with one alias down."""
    seeded = ids()
    return {"writes": writes(client, seeded), "reads": reads(client, seeded), "health": health_cases(client)}


MODES: dict[str, Callable[[TestClient], dict[str, Any]]] = {
    "sqlite": sqlite_mode,
    "primary_down": outage_mode,
    "replica_down": outage_mode,
}


def main() -> None:
    """Run the cases of ``PROBE_MODE`` and print the report."""
    report = MODES[os.environ["PROBE_MODE"]](TestClient(api))
    print(json.dumps(report, default=str))


if __name__ == "__main__":
    main()
