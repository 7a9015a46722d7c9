"""The post's "Off-line processing": message queues, scheduling, map-reduce, and nothing lost.

Each test drives the real RabbitMQ, pika consumers, Celery workers and beats of
the test stack, and checks the outcome in PostgreSQL.
"""
from __future__ import annotations

import json
import os
import signal
import time
import uuid

import pika
import requests

from scalestack import stack
from scalestack.topology import Topology
from tests.integration.helpers import (
    Member, follow_via_api, make_member, pid_of, post_form, sql, wait_until,
)


def _post_story(api: requests.Session, api_url: str, author: Member, title: str) -> int:
    response = api.post(f"{api_url}/v1/stories", timeout=10,
                        json={"author_id": author.id, "title": title, "url": "https://example.org/o", "text": ""})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def _timeline_count(t: Topology, story_ids: list[int]) -> int:
    ids = ",".join(map(str, story_ids))
    return int(sql(t, f"select count(*) from timeline_entries where story_id in ({ids})"))


def test_a_story_reaches_every_followers_timeline_off_line(
    site: str, api: requests.Session, api_url: str, running_stack: Topology, member: Member
) -> None:
    follow_via_api(api, api_url, member.id, range(300, 420))
    story_id = _post_story(api, api_url, member, "fan-out: one story, 120 followers")
    # Inline: the author sees it on their own home timeline at once.
    assert "fan-out: one story" in member.session.get(f"{site}/home", timeout=10).text
    # Off-line: every follower gets it, exactly once (120 followers + the author).
    wait_until(lambda: _timeline_count(running_stack, [story_id]) == 121, 30, "the fan-out")
    follower = api.get(f"{api_url}/v1/users/310/home", timeout=10).json()
    assert story_id in [s["id"] for s in follower["items"]]


def test_a_fanout_consumer_killed_mid_batch_loses_and_duplicates_nothing(
    api: requests.Session, api_url: str, running_stack: Topology, member: Member
) -> None:
    follow_via_api(api, api_url, member.id, range(1, 401))
    story_ids = [_post_story(api, api_url, member, f"fan-out under fire {i}") for i in range(6)]
    # Kill both consumers hard while the chunks are being processed.
    time.sleep(0.3)
    for name in ("fanout-1", "fanout-2"):
        os.kill(pid_of(running_stack, name), signal.SIGKILL)
    # supervisord restarts them; RabbitMQ redelivers what was unacknowledged.
    expected = len(story_ids) * 401
    wait_until(lambda: _timeline_count(running_stack, story_ids) == expected, 90, "the fan-out to finish")
    duplicates = sql(running_stack, "select count(*) from (select user_id, story_id from timeline_entries "
                                    "group by 1, 2 having count(*) > 1) d")
    assert duplicates == "0"
    time.sleep(2)
    assert _timeline_count(running_stack, story_ids) == expected


def _clicks_for(t: Topology, story_id: int) -> int:
    return int(sql(t, f"select count(*) from clicks where story_id = {story_id}"))


def test_clicks_are_redirected_at_once_and_counted_once(
    site: str, api: requests.Session, api_url: str, running_stack: Topology, member: Member
) -> None:
    story_id = _post_story(api, api_url, member, "click me")
    for _ in range(5):
        response = member.session.get(f"{site}/r/{story_id}", allow_redirects=False, timeout=10,
                                      headers={"Referer": "https://news.ycombinator.com/item?id=1"})
        assert response.status_code == 302
        assert response.headers["Location"] == "https://example.org/o"
    wait_until(lambda: _clicks_for(running_stack, story_id) == 5, 20, "the click consumer")
    # The consumer wrote the new count through to the cache after its commit.
    counted = wait_until(lambda: (r := api.get(f"{api_url}/v1/stories/{story_id}/clicks", timeout=10))
                         and r.json()["clicks"] == 5 and r, 10, "the written-through count")
    # Two lookups, both hits: the story (to 404 an unknown one) and its count.
    assert counted.headers["X-Cache"] == "hits=2 misses=0"
    domains = sql(running_stack, f"select distinct referrer_domain from clicks where story_id = {story_id}")
    assert domains == "news.ycombinator.com"


def test_rabbitmq_down_for_30s_loses_no_story_and_no_click(
    site: str, api: requests.Session, api_url: str, running_stack: Topology, member: Member
) -> None:
    follow_via_api(api, api_url, member.id, range(500, 560))
    stack.stop(running_stack, "rabbitmq")
    started = time.monotonic()
    story_ids: list[int] = []
    clicks = 0
    try:
        while time.monotonic() - started < 30:
            response = post_form(member.session, f"{site}/submit",
                                 {"title": f"posted while the broker was down {len(story_ids)}",
                                  "url": "https://example.org/down", "text": ""})
            assert response.status_code == 200
            story_ids.append(int(response.url.rstrip("/").rsplit("/", 1)[1]))
            for _ in range(3):
                click = member.session.get(f"{site}/r/{story_ids[0]}", allow_redirects=False, timeout=10)
                assert click.status_code == 302
                clicks += 1
            time.sleep(2)
        assert int(sql(running_stack, "select count(*) from outbox_events where published_at is null")) > 0
    finally:
        stack.start(running_stack, "rabbitmq")
    expected = len(story_ids) * 61
    wait_until(lambda: _timeline_count(running_stack, story_ids) == expected, 120,
               "every story in every follower's timeline")
    wait_until(lambda: _clicks_for(running_stack, story_ids[0]) == clicks, 120, "every click counted")
    time.sleep(3)
    assert _clicks_for(running_stack, story_ids[0]) == clicks, "counted exactly once"
    assert int(sql(running_stack, "select count(*) from outbox_events where published_at is null")) == 0


def test_a_poison_message_is_dead_lettered(running_stack: Topology) -> None:
    def dead() -> int:
        queue = stack.rabbitmq_api(running_stack, "queues/%2F/clicks.dead") or {}
        return int(queue.get("messages", 0))

    before = dead()
    connection = pika.BlockingConnection(pika.URLParameters(running_stack.rabbitmq_url))
    channel = connection.channel()
    channel.confirm_delivery()
    poison = {"event_id": str(uuid.uuid4()), "story_id": "not-a-number", "clicked_at": "yesterday"}
    channel.basic_publish("scalestack.events", "click", json.dumps(poison).encode(),
                          pika.BasicProperties(delivery_mode=2), mandatory=True)
    connection.close()
    wait_until(lambda: dead() == before + 1, 60, "the poison message in clicks.dead")
    # And the consumer carries on with good messages.
    assert stack.status(running_stack)[[r.name for r in stack.status(running_stack)].index("clicks-1")].state == "RUNNING"


def test_the_standby_beat_takes_over_and_no_slot_runs_twice(running_stack: Topology) -> None:
    active = wait_until(lambda: stack.offline_status(running_stack).active_beat, 30, "an active beat")
    wait_until(lambda: sql(running_stack, "select count(*) from periodic_runs where task like '%trending%'") != "0",
               30, "a trending run")
    os.kill(pid_of(running_stack, active), signal.SIGKILL)
    killed_at = sql(running_stack, "select now()")
    standby = wait_until(
        lambda: (b := stack.offline_status(running_stack).active_beat) and b != active and b, 30,
        "the standby to take the lease")
    # The standby schedules the next slot (trending runs every 5 s in the test stack).
    wait_until(lambda: sql(running_stack, f"select count(*) from periodic_runs where task like '%trending%' "
                                          f"and slot > '{killed_at}'::timestamptz") != "0",
               30, f"{standby} to run the next trending slot")
    runs = sql(running_stack, "select count(*), count(distinct (task, slot)) from periodic_runs")
    total, distinct = runs.split("|")
    assert total == distinct


def _ground_truth_module():
    """``platform_api/tasks/ground_truth.py``, loaded on its own (it needs no Django)."""
    import importlib.util

    from scalestack.topology import REPO

    path = REPO / "platform" / "platform_api" / "tasks" / "ground_truth.py"
    spec = importlib.util.spec_from_file_location("ground_truth", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def test_map_reduce_suggestions_equal_the_sql_ground_truth(running_stack: Topology) -> None:
    """Both jobs run as Celery chords across the workers; their tables equal one SQL query each."""
    truth = _ground_truth_module()
    jobs = {
        "suggested": ("suggested_stories", "story_id", truth.suggested_stories_sql()),
        "follows": ("follow_suggestions", "user_id", truth.follow_suggestions_sql()),
    }
    for job, (table, owner, query) in jobs.items():
        sql(running_stack, f"TRUNCATE {table}")
        stack.manage(running_stack, "platform", "mapreduce", job, "--wait", quiet=True)
        produced = int(sql(running_stack, f"select count(*) from {table}"))
        assert produced > 100, f"{job}: the job produced only {produced} rows"
        query = query.replace("%(k)s", str(truth.TOP_K))
        mine = f"SELECT {owner}, suggested_id, score, rank FROM {table}"
        differing = sql(running_stack, f"SELECT count(*) FROM ((({query}) EXCEPT ({mine})) "
                                       f"UNION ALL (({mine}) EXCEPT ({query}))) d")
        assert differing == "0", f"{job}: {differing} rows differ from the SQL ground truth"


def test_export_my_data_is_a_job_the_page_polls(
    site: str, api: requests.Session, api_url: str, member: Member
) -> None:
    post_form(member.session, f"{site}/submit", {"title": "in my export", "url": "https://example.org/e", "text": ""})
    response = post_form(member.session, f"{site}/export", {})
    assert response.status_code == 200 and "/exports/" in response.url
    job_url = response.url
    assert 'http-equiv="refresh"' in response.text or "Download" in response.text
    page = wait_until(lambda: (p := member.session.get(job_url, timeout=10)) and "Download" in p.text and p,
                      60, "the export to finish")
    assert 'http-equiv="refresh"' not in page.text
    download = member.session.get(f"{job_url}/download", timeout=10)
    assert download.status_code == 200
    assert "attachment" in download.headers["Content-Disposition"]
    data = download.json()
    assert "in my export" in json.dumps(data)
    # Someone else's job is not theirs to see.
    other = make_member(site, api, api_url)
    assert other.session.get(job_url, timeout=10).status_code == 404


def test_analytics_page_draws_visits_per_domain(site: str) -> None:
    page = requests.get(f"{site}/analytics", timeout=10)
    assert page.status_code == 200
    assert "<svg" in page.text
    assert "Today" in page.text and "Yesterday" in page.text


def test_purge_deletes_old_clicks_by_key_and_invalidates_their_cached_counts(
    api: requests.Session, api_url: str, running_stack: Topology, member: Member
) -> None:
    """The post's bulk-delete pattern: select the ids, invalidate their cache entries, delete by key."""
    story_id = _post_story(api, api_url, member, "old and new clicks")
    sql(running_stack, f"""
        INSERT INTO clicks (event_id, story_id, user_id, referrer_domain, clicked_at)
        SELECT gen_random_uuid(), {story_id}, NULL, 'old.example', now() - interval '40 days'
        FROM generate_series(1, 7);
        INSERT INTO clicks (event_id, story_id, user_id, referrer_domain, clicked_at)
        SELECT gen_random_uuid(), {story_id}, NULL, 'new.example', now() - interval '1 day'
        FROM generate_series(1, 2);
    """)
    # Cache the count of 9 (the rows were written behind the cache's back, before any read).
    assert api.get(f"{api_url}/v1/stories/{story_id}/clicks", timeout=10).json()["clicks"] == 9
    # Two lookups per call: the story, then its count.
    assert api.get(f"{api_url}/v1/stories/{story_id}/clicks", timeout=10).headers["X-Cache"] == "hits=2 misses=0"
    output = stack.manage_output(running_stack, "platform", "shell", "-c", (
        "from datetime import UTC, datetime, timedelta\n"
        "from django.db import transaction\n"
        "from platform_api.tasks.purge import purge_clicks_before\n"
        "with transaction.atomic(using='default'):\n"
        "    print('deleted', purge_clicks_before(datetime.now(UTC) - timedelta(days=30)))\n"
    ))
    assert "deleted" in output
    assert sql(running_stack, f"select count(*) from clicks where story_id = {story_id}") == "2"
    # The cached count was invalidated, so the next read is a miss that sees the purge.
    after = api.get(f"{api_url}/v1/stories/{story_id}/clicks", timeout=10)
    assert after.json()["clicks"] == 2
    assert after.headers["X-Cache"] == "hits=1 misses=1"
