"""The Celery app's wiring, and the once-per-slot wrapper, under the platform's own settings.

These run in a child process (``platform_support.run_probe``): the unit-test
process is configured with the web tier's settings, and the platform's task
modules import its models. No broker and no database are reachable there, so
the probe checks what needs neither: every scheduled task is registered, the
slotted ones accept the slot the scheduler adds, the schedule follows the
settings, Celery's no-loss options are on, and the once-per-slot wrapper runs
its function only when the claim succeeds (the claim itself is PostgreSQL's
unique constraint, exercised by the integration tests).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.unit.platform_support import run_probe

PROBE = r'''
import contextlib, inspect, json, types
import django
django.setup()

from platform_api.celery_app import app
from platform_api.tasks import periodic
from platform_api.tasks.slots import SLOT_OPTION, every

app.loader.import_default_modules()
schedule = app.conf.beat_schedule
report = {
    "entries": {
        name: {
            "task": entry["task"],
            "registered": entry["task"] in app.tasks,
            "period": entry["schedule"].period,
            "offset": entry["schedule"].offset,
            "slotted": SLOT_OPTION in entry.get("options", {}),
            "params": list(inspect.signature(app.tasks[entry["task"]].run).parameters)
            if entry["task"] in app.tasks else [],
        }
        for name, entry in schedule.items()
    },
    "conf": {
        "acks_late": app.conf.task_acks_late,
        "reject_on_worker_lost": app.conf.task_reject_on_worker_lost,
        "prefetch": app.conf.worker_prefetch_multiplier,
        "backend": app.conf.result_backend,
        "scheduler": app.conf.beat_scheduler,
    },
}

# The once-per-slot wrapper, with the database replaced by a recorder.
calls = []
periodic.transaction = types.SimpleNamespace(atomic=lambda using: contextlib.nullcontext())
claims = iter([True, False])
periodic.claim_run = lambda task, slot, runner: calls.append(("claim", task, slot.isoformat(), runner)) or next(claims)
periodic.finish_run = lambda task, slot: calls.append(("finish", task, slot.isoformat()))

def work(slot):
    calls.append(("work", slot.isoformat()))
    return {"done": 1}

task = periodic.periodic_task("probe.work")(work)
first = task.apply(kwargs={"slot": "2026-03-10T13:00:00+00:00", "scheduled_by": "beat-2"}).get()
second = task.apply(kwargs={"slot": "2026-03-10T13:00:00+00:00", "scheduled_by": "beat-1"}).get()
report["wrapper"] = {"first": first, "second": second, "calls": calls}

# A map whose database connection fails twice for a moment: retried, not failed.
from django.db import OperationalError
from platform_api.tasks import mapreduce
attempts = []
def flaky_map(partition, partitions, source, using):
    attempts.append(partition)
    if len(attempts) < 3:
        raise OperationalError("couldn't get a connection after 1.00 sec")
    return {"pairs": 1}
mapreduce.JOBS["probe"] = types.SimpleNamespace(map_partition=flaky_map, default_source="probe")
stored = []
app.backend.store_result = lambda task_id, result, state: stored.append((task_id, result, state))
outcome = mapreduce.map_task.apply(args=("probe", 0, 4))
report["map_retry"] = {"attempts": len(attempts), "state": outcome.state, "stored": [s[1:] for s in stored]}

# The beat's lease session: the primary, through the write pool, named after the process.
from psycopg.conninfo import conninfo_to_dict
from platform_api import beat
report["lease"] = {k: v for k, v in conninfo_to_dict(beat.conninfo("beat-2")).items() if k != "password"}
print(json.dumps(report))
'''


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One child process with the trending interval shortened as the test stack does."""
    probe = Path(tmp_path_factory.mktemp("celery-probe")) / "celery_probe.py"
    probe.write_text(PROBE)
    mp = pytest.MonkeyPatch()
    mp.setenv("SCALESTACK_TRENDING_SECONDS", "5")
    try:
        return run_probe(probe)
    finally:
        mp.undo()


def test_every_scheduled_task_is_registered(report: dict[str, Any]) -> None:
    entries = report["entries"]
    assert {e["task"] for e in entries.values()} >= {
        "outbox.relay", "trending.recompute", "rollups.today", "rollups.hour", "rollups.day",
        "purge.clicks", "mapreduce.suggested.periodic", "mapreduce.follows.periodic",
    }
    assert all(entry["registered"] for entry in entries.values()), entries


def test_slotted_tasks_accept_the_slot_the_scheduler_adds(report: dict[str, Any]) -> None:
    slotted = [e for e in report["entries"].values() if e["slotted"]]
    assert len(slotted) >= 7
    for entry in slotted:
        assert entry["params"][:2] == ["slot", "scheduled_by"], entry


def test_the_schedule_follows_the_settings(report: dict[str, Any]) -> None:
    entries = report["entries"]
    assert entries["trending"]["period"] == 5, "SCALESTACK_TRENDING_SECONDS"
    assert entries["relay-outbox"]["period"] == 2
    assert (entries["rollup-hour"]["period"], entries["rollup-hour"]["offset"]) == (3600, 300)
    assert (entries["rollup-day"]["period"], entries["rollup-day"]["offset"]) == (86400, 600)
    assert not entries["relay-outbox"]["slotted"], "relaying needs no slot (SKIP LOCKED)"


def test_celery_is_configured_to_lose_nothing(report: dict[str, Any]) -> None:
    assert report["conf"] == {
        "acks_late": True,
        "reject_on_worker_lost": True,
        "prefetch": 1,
        "backend": "django-db",
        "scheduler": "platform_api.tasks.slots:SlotScheduler",
    }


def test_a_slot_runs_once_and_a_double_fire_is_skipped(report: dict[str, Any]) -> None:
    wrapper = report["wrapper"]
    slot = "2026-03-10T13:00:00+00:00"
    assert wrapper["first"]["ran"] is True and wrapper["first"]["result"] == {"done": 1}
    assert wrapper["second"] == {"task": "probe.work", "slot": slot, "ran": False, "result": None, "seconds": 0.0}
    calls = wrapper["calls"]
    assert [call[0] for call in calls] == ["claim", "work", "finish", "claim"]
    assert calls[1:3] == [["work", slot], ["finish", "probe.work", slot]]
    # The claim records who scheduled the run and which worker (here: this host) ran it.
    assert calls[0][:3] == calls[3][:3] == ["claim", "probe.work", slot]
    assert calls[0][3].startswith("beat-2 -> ") and calls[3][3].startswith("beat-1 -> ")


def test_the_beat_lease_session_goes_to_the_primary_under_the_beats_name(report: dict[str, Any]) -> None:
    """``scalestack status`` finds the active beat by ``application_name`` on the primary."""
    lease = report["lease"]
    assert (lease["host"], lease["port"], lease["dbname"]) == ("127.0.0.1", "9", "none"), "DATABASE_WRITE_URL"
    assert lease["application_name"] == "beat-2"
    assert int(lease["tcp_user_timeout"]) > 0 and lease["keepalives"] == "1", "a dead network fails fast"


def test_a_map_whose_connection_fails_for_a_moment_is_retried(report: dict[str, Any]) -> None:
    # Two OperationalErrors (a pool timeout), then the partition is mapped and stored once.
    assert report["map_retry"] == {"attempts": 3, "state": "SUCCESS", "stored": [[{"pairs": 1}, "SUCCESS"]]}
