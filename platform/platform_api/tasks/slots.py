"""Time slots for periodic runs, and the beat scheduler that stamps them on each task.

The post's "Scheduling periodic tasks" asks for periodic tasks with
redundancy. Half of the answer is here (the other half, one active scheduler
out of two, is :mod:`platform_api.beat`): every periodic run is named by its
*time slot*, so a run that fires twice (two schedulers for a moment, a
redelivered message, a standby catching up) is recognised as the same run and
done once (:mod:`platform_api.tasks.periodic`).

The slot must be decided by the scheduler when it publishes, not by the worker
when it runs: a task that waits in the queue for a minute still belongs to the
slot it was scheduled for. So:

* :class:`every` is an interval schedule aligned to the wall clock (every
  60 s means at :00 of each minute; hourly at :05 means 10:05, 11:05, ...),
  which makes "the slot" a well-defined instant rather than "60 s after
  whenever this scheduler started";
* :class:`SlotScheduler` adds ``slot=<ISO datetime>`` (and the scheduler's
  name) to the kwargs of every entry marked with :data:`SLOT_OPTION`.

Only Celery is imported here, not Django, so the slot arithmetic is unit-tested
on its own.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from typing import Any

from celery.beat import ScheduleEntry, Scheduler
from celery.schedules import schedstate, schedule

log = logging.getLogger(__name__)

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

#: Entry option marking a slotted entry. Its value is how many periods back
#: the slot is from the period the run fires in: 0 for "this period" (trending
#: at 10:31 computes slot 10:31), 1 for "the previous one" (the hourly rollup
#: firing at 11:05 rolls up the hour that started at 10:00).
SLOT_OPTION = "slot_periods_back"


def as_utc(when: datetime) -> datetime:
    """``when`` as an aware UTC datetime (a naive one is taken to be UTC already)."""
    if when.tzinfo is None:
        return when.replace(tzinfo=timezone.utc)
    return when.astimezone(timezone.utc)


def floor_time(when: datetime, period: float, offset: float = 0.0) -> datetime:
    """The latest instant ``t <= when`` with ``t - offset`` a whole number of periods since the epoch.

    Periods are counted in UTC from the UNIX epoch, so a day starts at UTC
    midnight and an hour on the hour, whatever the scheduler's start time.
    """
    if period <= 0:
        raise ValueError("period must be positive")
    seconds = (as_utc(when) - EPOCH).total_seconds() - offset
    # Whole microseconds avoid float drift: 1.7e9 s is exact in microseconds.
    micros = round(seconds * 1_000_000)
    step = round(period * 1_000_000)
    return EPOCH + timedelta(microseconds=(micros // step) * step + round(offset * 1_000_000))


def slot_of(fire_time: datetime, period: float, periods_back: int = 0) -> datetime:
    """The slot a run that fired at ``fire_time`` is for.

    The start of the period containing ``fire_time``, moved back
    ``periods_back`` periods: an hourly rollup firing at 11:05 with
    ``periods_back=1`` is for slot 10:00.
    """
    return floor_time(fire_time, period) - timedelta(seconds=period * periods_back)


def format_slot(slot: datetime) -> str:
    """A slot as the ISO string carried in a task's kwargs (JSON-safe, UTC)."""
    return as_utc(slot).isoformat()


def parse_slot(text: str) -> datetime:
    """The inverse of :func:`format_slot`."""
    return as_utc(datetime.fromisoformat(text))


class every(schedule):  # noqa: N801 - lower case like Celery's own ``crontab``
    """Run every ``period`` seconds at wall-clock multiples, plus ``offset`` seconds.

    ``every(60)`` fires at each minute's :00; ``every(3600, offset=300)`` at
    five past each hour; ``every(86400, offset=600)`` at 00:10 UTC. Unlike
    Celery's plain interval schedule (which counts from the scheduler's start),
    two schedulers with this schedule agree on when each run is due, so the
    runs they publish carry the same slot.
    """

    def __init__(self, period: float, offset: float = 0.0, app: Any = None) -> None:
        if not 0 <= offset < period:
            raise ValueError("offset must be in [0, period)")
        super().__init__(run_every=timedelta(seconds=period), app=app)
        self.period = float(period)
        self.offset = float(offset)

    def latest_fire(self, now: datetime) -> datetime:
        """The most recent time this schedule fired at or before ``now``."""
        return floor_time(now, self.period, self.offset)

    def next_fire(self, after: datetime) -> datetime:
        """The first time this schedule fires strictly after ``after``."""
        return self.latest_fire(after) + self.run_every

    def remaining_estimate(self, last_run_at: datetime) -> timedelta:
        """Time left until the first firing after ``last_run_at``."""
        return self.next_fire(last_run_at) - as_utc(self.now())

    def is_due(self, last_run_at: datetime) -> schedstate:
        """Due once a firing time has passed since ``last_run_at``.

        The second value is how long the scheduler may sleep: until the next
        firing time after now.
        """
        now = as_utc(self.now())
        if now >= self.next_fire(last_run_at):
            return schedstate(True, (self.next_fire(now) - now).total_seconds())
        return schedstate(False, (self.next_fire(last_run_at) - now).total_seconds())

    def __repr__(self) -> str:
        return f"<every {self.period:g}s +{self.offset:g}s>"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, every):
            return (self.period, self.offset) == (other.period, other.offset)
        return NotImplemented

    def __ne__(self, other: object) -> bool:
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    def __hash__(self) -> int:
        return hash((self.period, self.offset))

    def __reduce__(self) -> tuple[Any, ...]:
        return self.__class__, (self.period, self.offset)


def slotted_call(entry: ScheduleEntry, now: datetime, beat_name: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The kwargs and options to publish ``entry`` with, or ``None`` if it is not slotted.

    The slot comes from the schedule's latest firing time at or before
    ``now`` (the publish time): in normal operation that is the firing time
    that made the entry due, and after a takeover it is the latest firing the
    new scheduler has to make sure of. The marker option is removed so it never
    reaches ``apply_async``.
    """
    periods_back = entry.options.get(SLOT_OPTION)
    if periods_back is None or not isinstance(entry.schedule, every):
        return None
    fire = entry.schedule.latest_fire(now)
    slot = slot_of(fire, entry.schedule.period, int(periods_back))
    kwargs = {**entry.kwargs, "slot": format_slot(slot), "scheduled_by": beat_name}
    options = {key: value for key, value in entry.options.items() if key != SLOT_OPTION}
    return kwargs, options


def catch_up_time(entry: ScheduleEntry, now: datetime) -> datetime | None:
    """The ``last_run_at`` that makes ``entry`` due at once for its latest firing.

    A scheduler that has just become active does not know whether the one
    before it published the latest firing (it may have died a second before).
    Publishing it again is safe, because a slot runs at most once, and it is
    the only way not to lose that slot. ``None`` for schedules this does not
    apply to (Celery's own entries).
    """
    if not isinstance(entry.schedule, every):
        return None
    return entry.schedule.latest_fire(now) - timedelta(microseconds=1)


class SlotScheduler(Scheduler):
    """Celery's in-memory beat scheduler, plus slots and a catch-up on start.

    In-memory rather than ``PersistentScheduler``'s shelve file: the durable
    record of which slots ran is ``periodic_runs`` in PostgreSQL, shared by
    both schedulers; a per-process file would be a second, private record that
    the standby never has anyway.
    """

    def __init__(self, *args: Any, beat_name: str = "beat", **kwargs: Any) -> None:
        self.beat_name = beat_name
        super().__init__(*args, **kwargs)

    def setup_schedule(self) -> None:
        """Load the schedule, then make every aligned entry due for its latest firing."""
        super().setup_schedule()
        now = as_utc(self.app.now())
        for entry in self.schedule.values():
            last = catch_up_time(entry, now)
            if last is not None:
                entry.last_run_at = last

    def apply_async(self, entry: ScheduleEntry, producer: Any = None, advance: bool = True, **kwargs: Any) -> Any:
        """Publish ``entry``; a slotted entry gets its slot added to its kwargs.

        The stored entry keeps its original kwargs and options (only the copy
        that is published carries the slot), so the next firing computes its
        own slot.
        """
        call = slotted_call(entry, as_utc(self.app.now()), self.beat_name)
        if call is None:
            log.debug("%s: %s", self.beat_name, entry.name)
            return super().apply_async(entry, producer=producer, advance=advance, **kwargs)
        if advance:
            entry = self.reserve(entry)
        call_kwargs, options = call
        log.info("%s: published %s for slot %s", self.beat_name, entry.name, call_kwargs["slot"])
        sent = self.Entry(**dict(entry, kwargs=call_kwargs, options=options))
        return super().apply_async(sent, producer=producer, advance=False, **kwargs)

    @property
    def info(self) -> str:
        """Shown in beat's start-up banner."""
        return f"slotted, in memory ({self.beat_name})"
