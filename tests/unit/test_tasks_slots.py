"""Time slots and the slotted beat scheduler (``platform_api.tasks.slots``).

The redundancy of periodic tasks rests on two schedulers agreeing on what a
run's slot is: these tests pin the arithmetic (epoch-aligned periods,
offsets, "the previous hour"), the aligned schedule's due times, the catch-up
a scheduler does when it becomes active, and that the slot is stamped on the
published copy only. No broker: the scheduler's ``send_task`` is recorded.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from celery import Celery
from celery.beat import ScheduleEntry

from tests.unit.platform_support import ensure_platform_importable

ensure_platform_importable()

from platform_api.tasks import slots  # noqa: E402
from platform_api.tasks.slots import SLOT_OPTION, SlotScheduler, every  # noqa: E402

UTC = timezone.utc


def at(text: str) -> datetime:
    """A UTC datetime from ``YYYY-MM-DD HH:MM:SS(.ffffff)``."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


class Clock:
    """A settable "now" for schedules and the Celery app."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(at("2026-03-10 14:31:00.004"))


@pytest.fixture
def app(clock: Clock) -> Celery:
    """A Celery app with no broker use and a fake clock."""
    celery = Celery("slots-test", set_as_current=False)
    celery.now = clock  # type: ignore[method-assign]
    return celery


# --------------------------------------------------------------------------
# Arithmetic
# --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("when", "period", "offset", "expected"),
    [
        ("2026-03-10 14:31:07", 60, 0, "2026-03-10 14:31:00"),
        ("2026-03-10 14:31:00", 60, 0, "2026-03-10 14:31:00"),
        ("2026-03-10 14:31:07", 5, 0, "2026-03-10 14:31:05"),
        ("2026-03-10 14:31:07", 3600, 0, "2026-03-10 14:00:00"),
        ("2026-03-10 14:31:07", 86400, 0, "2026-03-10 00:00:00"),
        ("2026-03-10 14:04:59", 3600, 300, "2026-03-10 13:05:00"),
        ("2026-03-10 14:05:00", 3600, 300, "2026-03-10 14:05:00"),
        ("2026-03-10 00:09:00", 86400, 600, "2026-03-09 00:10:00"),
    ],
)
def test_floor_time_aligns_to_the_epoch_plus_offset(when: str, period: int, offset: int, expected: str) -> None:
    assert slots.floor_time(at(when), period, offset) == at(expected)


def test_floor_time_works_in_utc_whatever_the_input_zone() -> None:
    paris = timezone(timedelta(hours=1))
    when = datetime(2026, 3, 10, 0, 30, tzinfo=paris)  # 23:30 UTC the day before
    assert slots.floor_time(when, 86400) == at("2026-03-09 00:00:00")
    assert slots.floor_time(datetime(2026, 3, 10, 0, 30), 86400) == at("2026-03-10 00:00:00"), "naive is UTC"


def test_floor_time_rejects_a_non_positive_period() -> None:
    with pytest.raises(ValueError):
        slots.floor_time(at("2026-03-10 00:00:00"), 0)


@pytest.mark.parametrize(
    ("fire", "period", "back", "expected"),
    [
        ("2026-03-10 14:31:00", 60, 0, "2026-03-10 14:31:00"),  # trending: this minute
        ("2026-03-10 14:05:00", 3600, 1, "2026-03-10 13:00:00"),  # hourly rollup: the hour before
        ("2026-03-10 00:10:00", 86400, 1, "2026-03-09 00:00:00"),  # daily rollup: yesterday
        ("2026-03-10 00:20:00", 86400, 0, "2026-03-10 00:00:00"),  # purge: today
    ],
)
def test_slot_of_a_firing(fire: str, period: int, back: int, expected: str) -> None:
    assert slots.slot_of(at(fire), period, back) == at(expected)


def test_slots_round_trip_through_their_iso_form() -> None:
    slot = at("2026-03-10 13:00:00")
    text = slots.format_slot(slot)
    assert text == "2026-03-10T13:00:00+00:00"
    assert slots.parse_slot(text) == slot


# --------------------------------------------------------------------------
# The aligned schedule
# --------------------------------------------------------------------------
def test_every_is_due_at_wall_clock_boundaries(app: Celery, clock: Clock) -> None:
    schedule = every(60, app=app)
    schedule.nowfun = clock
    clock.now = at("2026-03-10 14:31:00.004")
    due, wait = schedule.is_due(at("2026-03-10 14:30:00.010"))
    assert due and wait == pytest.approx(59.996)
    due, wait = schedule.is_due(at("2026-03-10 14:31:00.002"))
    assert not due and wait == pytest.approx(59.996)


def test_two_schedulers_started_apart_fire_at_the_same_instants(app: Celery, clock: Clock) -> None:
    """Celery's plain interval counts from each scheduler's start; this one does not."""
    schedule = every(60, app=app)
    schedule.nowfun = clock
    started_a, started_b = at("2026-03-10 14:30:12"), at("2026-03-10 14:30:47")
    assert schedule.next_fire(started_a) == schedule.next_fire(started_b) == at("2026-03-10 14:31:00")
    clock.now = at("2026-03-10 14:31:00.001")
    assert schedule.is_due(started_a).is_due and schedule.is_due(started_b).is_due


def test_every_with_an_offset_fires_past_the_hour(app: Celery, clock: Clock) -> None:
    schedule = every(3600, offset=300, app=app)
    schedule.nowfun = clock
    clock.now = at("2026-03-10 14:04:59")
    assert not schedule.is_due(at("2026-03-10 13:05:00.5")).is_due
    clock.now = at("2026-03-10 14:05:00.2")
    assert schedule.is_due(at("2026-03-10 13:05:00.5")).is_due
    assert schedule.remaining_estimate(at("2026-03-10 14:05:00.2")) == timedelta(minutes=59, seconds=59.8)


def test_every_rejects_an_offset_outside_the_period() -> None:
    with pytest.raises(ValueError):
        every(60, offset=60)


def test_every_compares_and_pickles_by_period_and_offset() -> None:
    import pickle

    assert every(60) == every(60) and every(60) != every(60, offset=1)
    assert pickle.loads(pickle.dumps(every(3600, offset=300))) == every(3600, offset=300)


# --------------------------------------------------------------------------
# Stamping slots, catching up
# --------------------------------------------------------------------------
def _entry(app: Celery, schedule: every, back: int | None, **options: Any) -> ScheduleEntry:
    if back is not None:
        options[SLOT_OPTION] = back
    return ScheduleEntry(name="e", task="t", schedule=schedule, kwargs={"x": 1}, options=options, app=app)


def test_slotted_call_stamps_the_slot_and_drops_the_marker(app: Celery) -> None:
    entry = _entry(app, every(3600, offset=300, app=app), 1, expires=60)
    kwargs, options = slots.slotted_call(entry, at("2026-03-10 14:05:00.01"), "beat-2")
    assert kwargs == {"x": 1, "slot": "2026-03-10T13:00:00+00:00", "scheduled_by": "beat-2"}
    assert options == {"expires": 60}
    assert entry.kwargs == {"x": 1} and SLOT_OPTION in entry.options, "the stored entry is untouched"


def test_a_late_publish_keeps_the_slot_of_the_firing_it_is_for(app: Celery) -> None:
    entry = _entry(app, every(3600, offset=300, app=app), 1)
    kwargs, _ = slots.slotted_call(entry, at("2026-03-10 14:59:00"), "beat-1")
    assert kwargs["slot"] == "2026-03-10T13:00:00+00:00"


def test_entries_without_the_marker_are_not_slotted(app: Celery) -> None:
    assert slots.slotted_call(_entry(app, every(2, app=app), None), at("2026-03-10 14:05:00"), "b") is None


def test_catch_up_makes_the_latest_firing_due_at_once(app: Celery, clock: Clock) -> None:
    """A scheduler taking over at 14:02 re-publishes the 13:05 run (slot 12:00), not a partial 13:00."""
    schedule = every(3600, offset=300, app=app)
    schedule.nowfun = clock
    clock.now = at("2026-03-10 14:02:00")
    entry = _entry(app, schedule, 1)
    entry.last_run_at = slots.catch_up_time(entry, clock.now)
    assert entry.is_due().is_due
    kwargs, _ = slots.slotted_call(entry, clock.now, "beat-2")
    assert kwargs["slot"] == "2026-03-10T12:00:00+00:00"


class RecordingScheduler(SlotScheduler):
    """The real scheduler with its publish step recorded instead of sent."""

    sent: list[tuple[str, dict[str, Any], dict[str, Any]]]

    def send_task(self, name: str, args: Any, kwargs: dict[str, Any], producer: Any = None, **options: Any) -> None:
        self.sent.append((name, kwargs, options))


def test_the_scheduler_publishes_slotted_copies_and_keeps_its_entries(app: Celery, clock: Clock) -> None:
    app.conf.beat_schedule = {
        "trending": {"task": "trending.recompute", "schedule": every(60), "options": {SLOT_OPTION: 0, "expires": 300}},
        "relay": {"task": "outbox.relay", "schedule": every(2), "options": {"expires": 10}},
    }
    app.conf.result_expires = None  # no backend-cleanup entry
    scheduler = RecordingScheduler(app, beat_name="beat-1")
    scheduler.sent = []
    entry = scheduler.schedule["trending"]
    assert entry.is_due().is_due, "due at once after start: the catch-up"
    scheduler.apply_async(entry)
    scheduler.apply_async(scheduler.schedule["relay"])
    (trending_call, relay_call) = scheduler.sent
    assert trending_call == (
        "trending.recompute",
        {"slot": "2026-03-10T14:31:00+00:00", "scheduled_by": "beat-1"},
        {"expires": 300},
    )
    assert relay_call == ("outbox.relay", {}, {"expires": 10})
    stored = scheduler.schedule["trending"]
    assert stored.kwargs == {} and stored.options[SLOT_OPTION] == 0
    assert stored.last_run_at == clock.now, "advanced: not due again until the next minute"
    assert not stored.is_due().is_due
