"""The outbox relay: one asyncio task per sink delivers the store's durable outbox rows.

Every state change is written back to the store before the next row, so a restart (even after
kill -9) resumes where it stopped: a row is either marked sent, rescheduled, dead, or still due.
A crash between a successful send and `outbox_mark_sent` re-sends the row; receivers dedupe on
its idempotency key. One sink's backoff, rate limit or slow receiver never touches another's task.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import hashlib
import logging
import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from bot.alerts.base import Alert, PermanentError, RetryableError, Sink
from bot.alerts.settings import severity_rank

logger = logging.getLogger("leakwarden.alerts.relay")


class Clock(Protocol):
    """Time as the relay sees it; tests inject a simulated one."""

    def now(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """Wall-clock time and real sleeps."""

    def now(self) -> float:
        """Seconds since the epoch."""
        return time.time()

    async def sleep(self, seconds: float) -> None:
        """Sleep for real."""
        await asyncio.sleep(max(seconds, 0.0))


class OutboxStore(Protocol):
    """The part of `bot.store.Store` the relay uses."""

    async def outbox_due(self, sink_id: str, now: float, limit: int = 100) -> list[Any]: ...
    async def outbox_mark_sent(self, row_id: Any, at: float) -> None: ...
    async def outbox_mark_retry(
        self, row_id: Any, attempts: int, next_attempt_at: float, error: str
    ) -> None: ...
    async def outbox_mark_dead(self, row_id: Any, error: str) -> None: ...
    async def outbox_dead_letter_sink(self, sink_id: str, error: str) -> int: ...
    async def outbox_unsent_by_sink(self) -> dict[str, dict[str, int]]: ...


HEALTH_ATTEMPTS = 6  # tries of one health alert to one sink (1+2+4+8+16 s apart by default)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Capped exponential backoff with jitter; permanent errors dead-letter after a few attempts."""

    base: float = 1.0
    factor: float = 2.0
    cap: float = 300.0
    jitter: float = 0.5  # the delay is drawn from [(1 - jitter) * d, d]
    permanent_attempts: int = 3
    max_retry_after: float = 3600.0
    min_retry_after: float = 0.5  # "Retry-After: 0" from a struggling receiver is not a spin loop

    def delay(self, attempts: int, rng: random.Random) -> float:
        """Seconds before attempt `attempts + 1`."""
        exp = min(self.cap, self.base * self.factor ** max(attempts - 1, 0))
        return exp * (1.0 - self.jitter * rng.random())


class TokenBucket:
    """Per-sink rate limit: `rate` tokens a second, at most `burst` saved up."""

    def __init__(self, per_minute: float, burst: int, now: float):
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self.tokens = float(burst)
        self.updated = now

    def _refill(self, now: float) -> None:
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now

    def available(self, now: float) -> int:
        """Whole tokens available now."""
        self._refill(now)
        return int(self.tokens)

    def wait_time(self, now: float) -> float:
        """Seconds until one token is available (0 when one is)."""
        self._refill(now)
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.rate

    def take(self, now: float) -> None:
        """Spend one token (callers check `wait_time` first)."""
        self._refill(now)
        self.tokens -= 1


@dataclass(slots=True)
class SinkPolicy:
    """Per-sink delivery options, usually from `[[sinks]]` via `policies_from_settings`."""

    timeout: float = 10.0
    rate_per_minute: float | None = None
    burst: int = 1
    digest_below: str | None = None  # severities below this wait for the digest
    next_digest_at: Callable[[float], float] | None = None


def policies_from_settings(sinks: Iterable[Any]) -> dict[str, SinkPolicy]:
    """SinkPolicy per sink id from `[[sinks]]` settings (rate_limit, timeout, digest)."""
    policies = {}
    for s in sinks:
        policy = SinkPolicy(timeout=s.timeout_seconds, digest_below=s.digest_below)
        if s.rate_limit is not None:
            policy.rate_per_minute = s.rate_limit.per_minute
            policy.burst = s.rate_limit.burst
        if s.digest_below is not None:
            from bot.alerts.digest import next_fire_function

            policy.next_digest_at = next_fire_function(s.digest_cron)
        policies[s.id] = policy
    return policies


@dataclass(slots=True)
class SinkHealth:
    """What /readyz and /metrics can show about one sink."""

    sent: int = 0
    retried: int = 0
    dead: int = 0
    superseded: int = 0
    deferred: int = 0
    consecutive_failures: int = 0
    last_error: str | None = None
    blocked_until: float = 0.0
    failing_since: float | None = None  # first retryable failure of the current outage
    outage_reported: bool = False
    dead_error: str | None = None  # the permanent error of the last dead letter, while it lasts
    dead_alerted_at: float | None = None  # the last dead-letter health alert
    dead_unreported: int = 0  # dead letters since that alert
    dead_last: tuple[str, str, str, int] | None = None  # (key, hit, rule, attempts) of the last


class _Outcome(enum.Enum):
    """What one delivery attempt did to its row (and to the sink)."""

    SENT = "sent"
    DEAD = "dead"  # dead letter; the sink goes on with other rows
    BACKOFF = "backoff"  # not delivered, and the whole sink waits


@dataclass(eq=False)
class _Worker:
    sink: Sink
    policy: SinkPolicy
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    health: SinkHealth = field(default_factory=SinkHealth)
    bucket: TokenBucket | None = None
    task: asyncio.Task | None = None
    idle: bool = False  # parked in _wait (tests use it to know the relay is quiescent)
    digest_waiters: list[asyncio.Future] = field(default_factory=list)


def _coalescible(alert: Alert) -> bool:
    """An incident's alert that a newer one of the same incident may carry."""
    return (alert.incident_id is not None and alert.action == "trigger"
            and alert.kind not in ("health", "triage", "digest"))


def coalesce(rows: Sequence[Any]) -> tuple[list[Any], list[Any]]:
    """(rows to send, rows superseded): each run of an incident's alerts as one row carrying
    its newest count.

    A triage row of the incident (acknowledge, resolve, reopen) ends the run: alerts after it
    are never folded into one sent before it. Superseded rows are marked sent only once the row
    that carries them is delivered; until then they stay pending in the store, so a failed send
    loses no update.
    """
    runs: list[list[Any]] = []
    open_runs: dict[str, list[Any]] = {}
    for row in rows:
        a: Alert = row.alert
        if a.incident_id is None:
            continue
        if not _coalescible(a):
            open_runs.pop(a.incident_id, None)
            continue
        if (run := open_runs.get(a.incident_id)) is None:
            run = open_runs[a.incident_id] = []
            runs.append(run)
        run.append(row)
    keep: dict[int, Any] = {}
    superseded: list[Any] = []
    for members in runs:
        if len(members) == 1:
            continue
        firsts = [r for r in members if not r.alert.is_update]
        # The first alert of an incident is never dropped; otherwise the newest update wins.
        keeper = firsts[0] if firsts else max(members, key=lambda r: r.alert.count)
        newest = max(members, key=lambda r: r.alert.count)
        merged = dataclasses.replace(
            keeper.alert,
            count=newest.alert.count,
            last_seen=newest.alert.last_seen or keeper.alert.last_seen,
        )
        others = [r for r in members if r is not keeper]
        keep[id(keeper)] = _RowView(keeper, merged, others)
        superseded += others
    gone = {id(r) for r in superseded}
    out = [keep.get(id(r), r) for r in rows if id(r) not in gone]
    return out, superseded


class _RowView:
    """A store row seen with another alert (the merged one): the row itself is never mutated."""

    __slots__ = ("_row", "alert", "superseded")

    def __init__(self, row: Any, alert: Alert, superseded: list[Any]):
        self._row = row
        self.alert = alert
        self.superseded = superseded

    def __getattr__(self, name: str) -> Any:
        return getattr(self._row, name)


def digest_alert(sink_id: str, rows: Sequence[Any]) -> Alert:
    """One alert summarising many low-severity rows; its key is derived from theirs."""
    keys = sorted(r.idempotency_key for r in rows)
    key = "digest:" + sink_id + ":" + hashlib.sha256("\n".join(keys).encode()).hexdigest()[:32]
    worst = max((r.alert for r in rows), key=lambda a: severity_rank(a.severity))
    # One row is one hit. An update's `count` is its incident's running total, so summing the
    # counts would say "15 hits" for an incident's five.
    by_rule: dict[str, int] = {}
    incidents: dict[str, set[str]] = {}
    for r in rows:
        by_rule[r.alert.rule_id] = by_rule.get(r.alert.rule_id, 0) + 1
        incidents.setdefault(r.alert.rule_id, set()).add(r.alert.incident_id or r.alert.hit_id)
    lines = [f"{rule}: {n} hit(s) in {len(incidents[rule])} incident(s)"
             for rule, n in sorted(by_rule.items(), key=lambda kv: -kv[1])]
    return Alert(
        idempotency_key=key,
        hit_id=rows[0].alert.hit_id,
        incident_id=None,
        rule_id="digest",
        kind="digest",
        severity=worst.severity,
        matched=f"{len(rows)} alert(s) across {len(by_rule)} rule(s)",
        excerpt="; ".join(lines),
        count=len(rows),
        detail={"keys": keys[:500], "rules": by_rule},
    )


class Relay:
    """Deliver outbox rows to sinks: one task per sink, retries and dead letters in the store."""

    def __init__(
        self,
        store: OutboxStore,
        sinks: Mapping[str, Sink],
        *,
        policies: Mapping[str, SinkPolicy] | None = None,
        retry: RetryPolicy | None = None,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        poll_interval: float = 1.0,
        batch_size: int = 100,
        health_sinks: Sequence[str] = (),
        outage_alert_after: float = 300.0,
        dead_alert_every: float = 3600.0,
    ):
        self.store = store
        self.retry = retry or RetryPolicy()
        self.clock = clock or SystemClock()
        self.rng = rng or random.Random()
        self.poll_interval = poll_interval
        self.batch_size = batch_size
        self.health_sinks = list(health_sinks)
        self.outage_alert_after = outage_alert_after
        self.dead_alert_every = dead_alert_every  # one dead-letter health alert per sink per ...
        self._stopping = False
        self._side_tasks: set[asyncio.Task] = set()
        policies = policies or {}
        self._workers = {
            sink_id: _Worker(sink, policies.get(sink_id, SinkPolicy()))
            for sink_id, sink in sinks.items()
        }
        for w in self._workers.values():
            if w.policy.rate_per_minute:
                w.bucket = TokenBucket(w.policy.rate_per_minute, w.policy.burst, self.clock.now())

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self, *, report_stranded: bool = True) -> None:
        """Start one task per sink; rows left from a previous run are due and go out first.

        Rows queued for a sink this relay does not run are reported (`check_stranded`), unless
        the caller does that itself once its health sinks can post."""
        self._stopping = False
        for sink_id, w in self._workers.items():
            if w.task is None or w.task.done():
                w.task = asyncio.create_task(self._run(sink_id, w), name=f"relay:{sink_id}")
        if report_stranded:
            await self.check_stranded()

    async def check_stranded(self) -> dict[str, dict[str, int]]:
        """{sink_id: {"pending": n, "dead": n}} of rows for sinks not configured here (renamed
        or removed): nothing would ever deliver them, so each such sink is logged and raises
        one health alert saying how to move its rows. Called at start and on config reload."""
        try:
            unsent = await self.store.outbox_unsent_by_sink()
        except Exception:  # a store hiccup must not stop the relay from starting
            logger.exception("could not count the outbox rows of unconfigured sinks")
            return {}
        stranded = {s: c for s, c in unsent.items() if s not in self._workers}
        now = int(self.clock.now())
        for sink_id, counts in sorted(stranded.items()):
            pending, dead = counts.get("pending", 0), counts.get("dead", 0)
            text = (f"{pending} pending and {dead} dead alert(s) are queued for sink {sink_id}, "
                    f"which is not configured: nothing delivers them. Add the sink back or move "
                    f"them: `leakwarden alerts requeue --sink {sink_id} --to SINK`")
            logger.warning("stranded alerts: %s", text)
            self.send_health(Alert(
                idempotency_key=f"health:stranded:{sink_id}:{now}", hit_id=f"health-{sink_id}",
                incident_id=None, rule_id="leakwarden.sink-stranded", kind="health",
                severity="high", matched=sink_id, excerpt=text,
                detail={"sink": sink_id, "pending": pending, "dead": dead}))
        return stranded

    async def stop(self) -> None:
        """Cancel the tasks; an interrupted send is re-sent after restart (keys dedupe it)."""
        self._stopping = True
        for w in self._workers.values():
            for fut in w.digest_waiters:  # the digest stays durable in the outbox
                if not fut.done():
                    fut.set_result(None)
            w.digest_waiters.clear()
        tasks = [w.task for w in self._workers.values() if w.task] + list(self._side_tasks)
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        for w in self._workers.values():
            w.task = None

    def notify(self, sink_ids: Iterable[str] | None = None) -> None:
        """New rows were committed: wake these sinks' tasks now instead of at the next poll."""
        for sink_id in self._workers if sink_ids is None else sink_ids:
            if w := self._workers.get(sink_id):
                w.wake.set()

    def health(self) -> dict[str, SinkHealth]:
        """A snapshot per sink."""
        return {sink_id: dataclasses.replace(w.health) for sink_id, w in self._workers.items()}

    def idle(self) -> bool:
        """True when every sink task is parked waiting for time or work."""
        return all(w.idle for w in self._workers.values())

    async def flush_digest(self, sink_id: str) -> None:
        """Send this sink's pending digest now (the scheduled job calls it); returns when done."""
        w = self._workers[sink_id]
        if w.task is None or w.task.done():
            logger.warning("digest for sink %s skipped: the relay is not running", sink_id)
            return
        fut = asyncio.get_running_loop().create_future()
        w.digest_waiters.append(fut)
        w.wake.set()
        await fut

    # -- the per-sink task -----------------------------------------------------------------

    async def _run(self, sink_id: str, w: _Worker) -> None:
        while not self._stopping:
            try:
                await self._cycle(sink_id, w)
            except asyncio.CancelledError:
                raise
            except Exception:
                # A store hiccup must not kill the sink's task: log, pause, try again.
                logger.exception("relay task for sink %s failed; retrying", sink_id)
                await self._wait(w, self.poll_interval, wakeable=False)

    async def _cycle(self, sink_id: str, w: _Worker) -> None:
        now = self.clock.now()
        if w.health.blocked_until > now:
            await self._wait(w, w.health.blocked_until - now, wakeable=False)
            return
        if w.bucket is not None and (pause := w.bucket.wait_time(now)) > 0:
            await self._wait(w, pause, wakeable=False)
            return
        if w.digest_waiters:
            await self._flush_digest(sink_id, w)
            self._report_dead(sink_id, w)
            return
        w.wake.clear()  # cleared before reading, so a notify during the read is not lost
        # A whole batch even when the rate limit allows one send: an incident's updates due
        # now are folded into that one send, not spread over one send per token.
        rows = await self.store.outbox_due(sink_id, now, limit=self.batch_size)
        if not rows:
            await self._wait(w, self.poll_interval, wakeable=True)
            return
        await self._deliver(sink_id, w, rows)
        self._report_dead(sink_id, w)

    async def _wait(self, w: _Worker, seconds: float, *, wakeable: bool) -> None:
        w.idle = True
        try:
            if not wakeable:
                await self.clock.sleep(seconds)
                return
            sleeper = asyncio.ensure_future(self.clock.sleep(seconds))
            waker = asyncio.ensure_future(w.wake.wait())
            try:
                await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for t in (sleeper, waker):
                    t.cancel()
        finally:
            w.idle = False

    async def _deliver(self, sink_id: str, w: _Worker, rows: list[Any]) -> None:
        rows, _ = coalesce(rows)
        # Incidents whose earlier row did not go out in this batch: their later rows wait
        # too (the store holds them back the same way once the earlier row is rescheduled).
        held: set[str] = set()
        digest_due = False
        for row in rows:
            if self._stopping:
                return
            incident = row.alert.incident_id
            if incident is not None and incident in held:
                continue
            if self._waits_for_digest(w, row.alert):
                if incident is not None:
                    held.add(incident)
                # The digest this row belongs to: the first fire time at or after it was due.
                # A row whose fire time has passed (this poll ran before the scheduled job) or
                # whose digest failed to send goes in a digest now, not in the next period's.
                fire = w.policy.next_digest_at(row.next_attempt_at - 0.002)  # type: ignore[misc]
                if row.attempts > 0 or fire <= self.clock.now():
                    digest_due = True
                    continue
                await self.store.outbox_mark_retry(
                    row.row_id, row.attempts, fire, "waiting for digest"
                )
                w.health.deferred += 1
                continue
            if w.bucket is not None:
                if w.bucket.wait_time(self.clock.now()) > 0:
                    return  # the rest stays due; the next cycle waits for a token
                w.bucket.take(self.clock.now())
            if await self._attempt(sink_id, w, row, row.alert) is _Outcome.BACKOFF:
                return  # the sink is backing off: leave the rest of the batch due
        if digest_due:
            await self._send_digests(sink_id, w)

    def _waits_for_digest(self, w: _Worker, alert: Alert) -> bool:
        below = w.policy.digest_below
        return (
            below is not None
            and w.policy.next_digest_at is not None
            and alert.action == "trigger"
            and alert.kind not in ("health", "digest", "triage")
            and severity_rank(alert.severity) < severity_rank(below)
        )

    async def _attempt(self, sink_id: str, w: _Worker, row: Any, alert: Alert) -> _Outcome:
        """Send one row and record the outcome."""
        attempts = row.attempts + 1
        try:
            await asyncio.wait_for(w.sink.send(alert), w.policy.timeout)
        except asyncio.CancelledError:
            raise
        except (RetryableError, TimeoutError) as exc:
            error = str(exc) or "timed out (outcome unknown)"
            retry_after = getattr(exc, "retry_after", None)
            if retry_after is not None:
                # The receiver knows when it can take more; within sane bounds, believe it.
                delay = min(
                    max(retry_after, self.retry.min_retry_after), self.retry.max_retry_after
                )
            else:
                # Back off as a sink, not per row: a fresh row must not reset the outage's backoff.
                level = max(attempts, w.health.consecutive_failures + 1)
                delay = self.retry.delay(level, self.rng)
            next_at = self.clock.now() + delay
            await self._mark_retry(row, attempts, next_at, error)
            w.health.retried += 1
            w.health.consecutive_failures += 1
            w.health.last_error = error
            w.health.blocked_until = next_at
            logger.warning("sink %s: %s; retry %d in %.1fs", sink_id, error, attempts, delay)
            self._check_outage(sink_id, w, error)
            return _Outcome.BACKOFF
        except Exception as exc:
            # PermanentError, or a bug in the sink: it will not fix itself by waiting long.
            error = str(exc) if isinstance(exc, PermanentError) else f"sink error: {exc!r}"
            return await self._permanent(sink_id, w, row, attempts, error)
        for part in _parts(row):
            await self.store.outbox_mark_sent(part.row_id, self.clock.now())
        # Rows folded into this one (older updates of its incident) are delivered with it.
        for part in getattr(row, "superseded", ()):
            await self.store.outbox_mark_sent(part.row_id, self.clock.now())
            w.health.superseded += 1
        w.health.sent += 1
        w.health.consecutive_failures = 0
        if w.health.outage_reported:
            logger.warning("sink %s recovered; its backlog is being delivered", sink_id)
        if w.health.dead_error is not None:
            logger.warning("sink %s delivers again; what it dead-lettered stays there until "
                           "`leakwarden alerts requeue --sink %s`", sink_id, sink_id)
        w.health.failing_since, w.health.outage_reported = None, False
        w.health.dead_error = None
        return _Outcome.SENT

    async def _permanent(self, sink_id: str, w: _Worker, row: Any, attempts: int,
                         error: str) -> _Outcome:
        """A permanent failure: the sink waits between attempts (rows queued behind are not
        tried meanwhile) and the row is dead after a few. A second alert failing exactly the
        way the last dead one did means the sink itself is gone (a deleted webhook, a revoked
        token): that row and every other pending row of the sink go to the dead letter at once,
        and the sink is probed with new rows at a backoff that grows to the cap."""
        h = w.health
        now = self.clock.now()
        h.last_error = error
        h.consecutive_failures += 1
        sink_gone = h.dead_error == error
        if attempts < self.retry.permanent_attempts and not sink_gone:
            delay = self.retry.delay(attempts, self.rng)
            # The row keeps its place at the head of the queue: when the sink's wait is over,
            # the next attempt is this row's again, not a first attempt of the next row.
            await self._mark_retry(row, attempts, getattr(row, "next_attempt_at", now), error)
            h.retried += 1
            h.blocked_until = now + delay
            logger.warning("sink %s: %s; attempt %d of %d in %.1fs", sink_id, error,
                           attempts + 1, self.retry.permanent_attempts, delay)
            return _Outcome.BACKOFF
        for part in _parts(row):
            await self.store.outbox_mark_dead(part.row_id, error)
        h.dead += 1
        h.dead_error = error
        logger.error("dead letter: sink %s, key %s, after %d attempt(s): %s", sink_id,
                     row.idempotency_key, attempts, error)
        swept = 0
        if sink_gone:
            swept = await self.store.outbox_dead_letter_sink(
                sink_id, f"not sent: sink {sink_id} fails every alert the same way: {error}")
            h.dead += swept
            if swept:
                logger.error("dead letter: sink %s fails every alert the same way; its %d "
                             "other pending alert(s) moved to the dead letter", sink_id, swept)
            h.blocked_until = now + self.retry.delay(h.consecutive_failures, self.rng)
        h.dead_unreported += 1 + swept
        h.dead_last = (row.idempotency_key, row.alert.hit_id, row.alert.rule_id, attempts)
        return _Outcome.BACKOFF if sink_gone else _Outcome.DEAD

    async def _mark_retry(self, row: Any, attempts: int, next_at: float, error: str) -> None:
        for part in _parts(row):
            await self.store.outbox_mark_retry(part.row_id, attempts, next_at, error)

    # -- digests and health ----------------------------------------------------------------

    async def _flush_digest(self, sink_id: str, w: _Worker) -> None:
        waiters, w.digest_waiters = w.digest_waiters, []
        try:
            await self._send_digests(sink_id, w)
        finally:
            for fut in waiters:
                if not fut.done():
                    fut.set_result(None)

    async def _send_digests(self, sink_id: str, w: _Worker) -> None:
        """Every due row waiting for the digest, in digests of up to 1000 rows."""
        while True:
            now = self.clock.now()
            due = await self.store.outbox_due(sink_id, now, limit=1000)
            rows = [r for r in due if self._waits_for_digest(w, r.alert)]
            if not rows:
                return
            digest = _DigestRow(rows, digest_alert(sink_id, rows))
            outcome = await self._attempt(sink_id, w, digest, digest.alert)
            if outcome is not _Outcome.SENT or len(due) < 1000:
                return

    def _check_outage(self, sink_id: str, w: _Worker, error: str) -> None:
        """One health alert when a sink has been unreachable for `outage_alert_after` seconds."""
        now = self.clock.now()
        if w.health.failing_since is None:
            w.health.failing_since = now
        down_for = now - w.health.failing_since
        if w.health.outage_reported or down_for < self.outage_alert_after:
            return
        w.health.outage_reported = True
        since = int(w.health.failing_since)
        alert = Alert(
            idempotency_key=f"health:outage:{sink_id}:{since}",
            hit_id=f"health-{sink_id}-{since}",
            incident_id=None,
            rule_id="leakwarden.sink-unreachable",
            kind="health",
            severity="high",
            matched=sink_id,
            excerpt=(
                f"sink {sink_id} unreachable for {down_for:.0f}s; alerts are kept in the "
                f"outbox and will be delivered on recovery. Last error: {error}"
            ),
        )
        logger.error("sink %s unreachable for %.0fs: %s", sink_id, down_for, error)
        self.send_health(alert, exclude=sink_id)

    def _report_dead(self, sink_id: str, w: _Worker) -> None:
        """One health alert per sink per `dead_alert_every` for the dead letters since the
        last (the log has each): health alerts bypass the outbox, a storm would reach people.

        Called after a batch, so the alert counts what the batch's sweep moved too."""
        h = w.health
        now = self.clock.now()
        if not h.dead_unreported or h.dead_last is None or (
                h.dead_alerted_at is not None and now - h.dead_alerted_at < self.dead_alert_every):
            return
        count, h.dead_unreported, h.dead_alerted_at = h.dead_unreported, 0, now
        key, hit_id, rule_id, attempts = h.dead_last
        what = f"alert {key}" if count == 1 else f"{count} alerts (the last {key})"
        alert = Alert(
            idempotency_key=f"health:dead:{sink_id}:{int(now)}",
            hit_id=hit_id,
            incident_id=None,
            rule_id="leakwarden.dead-letter",
            kind="health",
            severity="high",
            matched=sink_id,
            excerpt=(
                f"{what} for sink {sink_id} went to the dead letter after {attempts} "
                f"attempt(s); more failing the same way follow without a health alert for "
                f"{self.dead_alert_every / 3600:g}h. List: `leakwarden alerts dead --sink "
                f"{sink_id}`; resend: `leakwarden alerts requeue --sink {sink_id}`. "
                f"Error: {h.dead_error}"
            ),
            detail={"sink": sink_id, "dead": count, "error": h.dead_error,
                    "original_rule": rule_id},
        )
        self.send_health(alert, exclude=sink_id)

    def send_health(self, alert: Alert, *, exclude: str | None = None) -> list[str]:
        """Send a health alert now to every health sink but `exclude`; returns their ids.

        Not stored (a health alert belongs to no hit): a sink that is down is retried a
        bounded number of times (HEALTH_ATTEMPTS); callers log the alert too.
        """
        targets = [t for t in self.health_sinks if t != exclude and t in self._workers]
        for target in targets:
            task = asyncio.create_task(self._send_health(target, alert))
            self._side_tasks.add(task)
            task.add_done_callback(self._side_tasks.discard)
        return targets

    async def _send_health(self, target: str, alert: Alert) -> None:
        # Not stored (it belongs to no hit), so a sink that is briefly down must not lose it:
        # retryable failures are tried again with the relay's backoff, a bounded number of
        # times (HEALTH_ATTEMPTS, about a minute with the default policy); then it is logged.
        w = self._workers[target]
        for attempt in range(1, HEALTH_ATTEMPTS + 1):
            try:
                await asyncio.wait_for(w.sink.send(alert), w.policy.timeout)
                return
            except (RetryableError, TimeoutError) as exc:
                if attempt == HEALTH_ATTEMPTS:
                    logger.error("health alert via sink %s failed %d times, giving up: %s",
                                 target, attempt, exc)
                    return
                told = getattr(exc, "retry_after", None)
                delay = self.retry.delay(attempt, self.rng) if told is None else min(
                    max(told, self.retry.min_retry_after), self.retry.max_retry_after)
                logger.warning("health alert via sink %s failed (%s); retrying in %.0f s",
                               target, exc, delay)
                await self.clock.sleep(delay)
            except Exception as exc:  # permanent, or a bug in the sink: waiting will not help
                logger.error("health alert via sink %s failed: %s", target, exc)
                return


class _DigestRow:
    """Stands for the many rows one digest carries: their fate is recorded on each of them."""

    def __init__(self, rows: Sequence[Any], alert: Alert):
        self.rows = list(rows)
        self.attempts = max(r.attempts for r in rows)
        self.idempotency_key = alert.idempotency_key
        self.alert = alert


def _parts(row: Any) -> list[Any]:
    return row.rows if isinstance(row, _DigestRow) else [row]
