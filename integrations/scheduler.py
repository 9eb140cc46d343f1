"""Timers on APScheduler 3: a job only puts the core's `TimerFired` on the daemon's inbox.

How it works: the core asks for timers with deterministic ids (`ScheduleTimer`, `CancelTimer`);
each becomes a one-shot date job under the timer's id in APScheduler's memory job store,
replacing a job with the same id. When it fires, the job calls `fire(timer)`, which only enqueues;
the consumer decides. Nothing is stored in a job store: on start the core rebuilds the day's timers
from its state (`CoachStarted`), which APScheduler's SQLite store would make slow (2–7 ms per add,
measured) and stale after a config change.

Defaults are set explicitly (APScheduler's own are wrong for nudges): the time zone of the config,
a misfire grace of 15 minutes (the default 1 s skips a job that a busy process delays by a second)
and coalescing, so a job that missed several runs runs once. A daily housekeeping job (retention
purge) is a cron job in the same time zone.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.base import JobLookupError
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger

from coach.event import Timer

log = logging.getLogger(__name__)

#: A timer that comes due this late (a busy or suspended host) still fires.
MISFIRE_GRACE_MIN = 15
#: Local time of the daily housekeeping (retention purge): a quiet hour.
HOUSEKEEPING_AT = (3, 17)


class TimerService:
    """Schedules the core's timers; a firing calls `fire(timer)` on APScheduler's thread."""

    def __init__(
        self,
        tz: ZoneInfo,
        fire: Callable[[Timer], None],
        housekeeping: Callable[[], None] | None = None,
    ) -> None:
        """Create a stopped scheduler in the config's time zone."""
        self._fire = fire
        self._housekeeping = housekeeping
        self._scheduler = BackgroundScheduler(
            jobstores={"default": MemoryJobStore()},
            # One thread: a job only enqueues, so it never waits for anything.
            executors={"default": ThreadPoolExecutor(max_workers=1)},
            job_defaults={
                "misfire_grace_time": MISFIRE_GRACE_MIN * 60,
                "coalesce": True,
                "max_instances": 1,
            },
            timezone=tz,
        )
        self.tz = tz

    def start(self) -> None:
        """Start the scheduler thread and the daily housekeeping job."""
        self._scheduler.start()
        if self._housekeeping is not None:
            hour, minute = HOUSEKEEPING_AT
            self._scheduler.add_job(
                self._housekeeping,
                CronTrigger(hour=hour, minute=minute, timezone=self.tz),
                id="housekeeping",
                replace_existing=True,
            )

    def schedule(self, timer: Timer) -> None:
        """Run `fire(timer)` at `timer.at`; replaces a pending timer with the same id."""
        self._scheduler.add_job(
            self._fire,
            DateTrigger(run_date=timer.at, timezone=self.tz),
            args=[timer],
            id=timer.id,
            name=timer.id,
            replace_existing=True,
        )
        log.debug("timer %s set for %s", timer.id, timer.at.astimezone(self.tz).isoformat())

    def call_at(self, job_id: str, at: datetime, fn: Callable[[], None]) -> None:
        """Call `fn` at `at` (a device profile's wake-up); replaces a job with the same id."""
        self._scheduler.add_job(
            fn,
            DateTrigger(run_date=at, timezone=self.tz),
            id=job_id,
            name=job_id,
            replace_existing=True,
        )

    def cancel(self, timer_id: str) -> None:
        """Forget a pending timer (no error when it already fired or never existed)."""
        try:
            self._scheduler.remove_job(timer_id)
        except JobLookupError:
            return
        log.debug("timer %s cancelled", timer_id)

    def pending(self) -> dict[str, datetime]:
        """Pending timers by id, with their due time (for tests and `--check`)."""
        return {
            job.id: job.next_run_time
            for job in self._scheduler.get_jobs()
            if job.id != "housekeeping" and job.next_run_time is not None
        }

    def stop(self) -> None:
        """Stop without waiting for anything (jobs only enqueue)."""
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)
