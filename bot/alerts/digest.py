"""Scheduled digests: low-severity rows wait in the outbox until their sink's cron fires.

The waiting is durable (rows are rescheduled in the store to the next fire time), so a restart
loses nothing; the apscheduler 3.x job only tells the relay "send the digest now".
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from apscheduler.triggers.cron import CronTrigger

_DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def _cron_weekdays(field: str) -> str:
    """A crontab day-of-week field (0 or 7 = Sunday) as apscheduler day names."""
    if any(c.isalpha() for c in field):
        return field  # names mean the same thing to both
    days: set[int] = set()
    for part in field.split(","):
        span, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if span == "*":
            lo, hi = 0, 6
        elif "-" in span:
            lo, hi = (int(x) for x in span.split("-", 1))
        else:
            lo = hi = int(span)
        if not (0 <= lo <= 7 and 0 <= hi <= 7 and lo <= hi and step >= 1):
            raise ValueError(f"bad day-of-week {part!r}")
        days.update(d % 7 for d in range(lo, hi + 1, step))
    return ",".join(_DAY_NAMES[d] for d in sorted(days))


def crontab_trigger(crontab: str) -> CronTrigger:
    """A UTC CronTrigger with standard crontab weekdays.

    apscheduler 3.x's `from_crontab` reads day-of-week 0 as Monday (its issue 286), so
    "0 9 * * 1-5" would run Tuesday to Saturday; the field is translated to day names first.
    """
    fields = crontab.split()
    if len(fields) != 5:
        raise ValueError(f"expected 5 fields, got {len(fields)}")
    minute, hour, day, month, weekday = fields
    return CronTrigger(
        minute=minute,
        hour=hour,
        day=day,
        month=month,
        day_of_week=_cron_weekdays(weekday),
        timezone=UTC,
    )


def valid_crontab(value: str) -> str:
    """`value` when it is a crontab apscheduler can run; ValueError naming it otherwise."""
    try:
        crontab_trigger(value)
    except ValueError as exc:
        raise ValueError(f"invalid crontab {value!r}: {exc}") from None
    return value


def next_fire_function(crontab: str) -> Callable[[float], float]:
    """now -> the next fire time of `crontab` (UTC) strictly after now, as epoch seconds."""
    trigger = crontab_trigger(crontab)

    def next_fire(now: float) -> float:
        # Strictly after now: a row deferred to "now" would be due again at once.
        after = datetime.fromtimestamp(now + 0.001, UTC)
        fire = trigger.get_next_fire_time(None, after)
        return fire.timestamp() if fire else now + 86400.0

    return next_fire


def schedule_digests(scheduler: Any, relay: Any, sinks: Iterable[Any]) -> list[str]:
    """Add one apscheduler job per sink with `digest_below`; returns the job ids."""
    job_ids = []
    for s in sinks:
        if s.digest_below is None:
            continue
        job_id = f"alerts-digest:{s.id}"
        scheduler.add_job(
            relay.flush_digest,
            crontab_trigger(s.digest_cron),
            args=[s.id],
            id=job_id,
            replace_existing=True,
            # A digest missed while the process was down goes out once, at the next chance.
            coalesce=True,
            misfire_grace_time=None,
            max_instances=1,
        )
        job_ids.append(job_id)
    return job_ids
