"""Scheduled digests: low-severity rows wait in the outbox until their sink's cron fires.

The waiting is durable (rows are rescheduled in the store to the next fire time), so a restart
loses nothing; the apscheduler 3.x job only tells the relay "send the digest now".
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from apscheduler.triggers.cron import CronTrigger


def next_fire_function(crontab: str) -> Callable[[float], float]:
    """now -> the next fire time of `crontab` (UTC) strictly after now, as epoch seconds."""
    trigger = CronTrigger.from_crontab(crontab, timezone=UTC)

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
            CronTrigger.from_crontab(s.digest_cron, timezone=UTC),
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
