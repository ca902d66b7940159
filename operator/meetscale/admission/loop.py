"""The admission loop of one pool: gather inputs from the Kopf indexes, call the core,
write what changed. One loop per BridgePool, so decisions for a pool are serialized."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from meetscale import metrics as m
from meetscale.admission.orphans import orphan_changes
from meetscale.admission.statuses import COMPARED, PoolPass, StatusChange, plan_pool
from meetscale.clients.kube.writer import StatusWriter
from meetscale.config import Settings
from meetscale.decide.door import PoolNow
from meetscale.models import BridgePoolSpec
from meetscale.records import MeetingRecord, QuotaRecord

log = logging.getLogger("meetscale.admission")

ORPHANS = "orphans"  # the loop of Meetings whose pool does not exist (a Wakers key too)
UNHEALTHY_AFTER = 5  # passes of one loop failing in a row before /healthz fails
RETRY_FIRST_SECONDS = 1.0  # after a failed pass; doubles up to admission_resync_seconds


class LoopHealth:
    """Consecutive failures of each admission loop (a pool's decisions, its reports, the
    orphans): a loop that keeps failing makes the liveness probe fail, so that Kubernetes
    restarts the operator and the failure is seen, instead of /healthz staying 200."""

    def __init__(self, limit: int = UNHEALTHY_AFTER) -> None:
        self.limit = limit
        self._failing: dict[str, tuple[int, str]] = {}  # loop -> (in a row, last error)

    def ok(self, loop: str) -> None:
        self._failing.pop(loop, None)

    def failed(self, loop: str, exc: BaseException) -> int:
        """Count a failure; returns how many in a row."""
        count = self._failing.get(loop, (0, ""))[0] + 1
        self._failing[loop] = (count, f"{type(exc).__name__}: {exc}"[:500])
        return count

    def forget(self, loop: str) -> None:
        self._failing.pop(loop, None)

    def problems(self) -> list[str]:
        """One line per loop that failed `limit` times or more in a row."""
        return [
            f"admission loop {loop} failed {count} times in a row (last: {error})"
            for loop, (count, error) in sorted(self._failing.items())
            if count >= self.limit
        ]

    def failing(self) -> dict[str, int]:
        return {loop: count for loop, (count, _) in sorted(self._failing.items())}


def retry_after(failures: int, settings: Settings) -> float:
    return float(min(RETRY_FIRST_SECONDS * 2 ** (failures - 1), settings.admission_resync_seconds))


class Wakers:
    """One asyncio.Event per pool; handlers set it when an input of that pool changes.
    `full` asks for a full pass (a quota or namespace changed: every Meeting's agency or
    limits may have); a Meeting event is served by a focused one."""

    def __init__(self) -> None:
        self._events: dict[str, asyncio.Event] = {}
        self._full: set[str] = set()

    def event(self, pool_key: str) -> asyncio.Event:
        return self._events.setdefault(pool_key, asyncio.Event())

    def wake(self, pool_key: str | None = None, full: bool = False) -> None:
        keys = [pool_key] if pool_key in self._events else []
        if pool_key is None:
            keys = list(self._events)
        for key in keys:
            if full:
                self._full.add(key)
            self._events[key].set()

    def take_full(self, pool_key: str) -> bool:
        """Whether a full pass was asked for since the last call."""
        if pool_key in self._full:
            self._full.discard(pool_key)
            return True
        return False

    def forget(self, pool_key: str) -> None:
        self._events.pop(pool_key, None)
        self._full.discard(pool_key)


Inputs = Callable[
    [], tuple[list[MeetingRecord], list[QuotaRecord], Mapping[str, Mapping[str, str]]]
]


def _digest(status: Mapping[str, Any]) -> tuple[Any, ...]:
    return tuple(status.get(k) for k in COMPARED)


class Writes:
    """The writes of one loop, in the background: a pass does not wait for the apiserver,
    so decisions keep flowing while earlier ones are written.

    Read your own writes: the Kopf index lags behind the loop's own status writes, so the
    status this loop wrote (or is writing) overlays the index's until the index shows it.
    Without that, a later pass would see an admitted meeting as still Pending and could
    decide it again, differently. Writes of the same object are kept in order.
    """

    def __init__(self, writer: StatusWriter) -> None:
        self.writer = writer
        self.meetings: dict[str, dict[str, Any]] = {}  # uid -> status written or in flight
        self.quotas: dict[str, dict[str, Any]] = {}  # name -> status written or in flight
        self._last: dict[str, asyncio.Task[None]] = {}  # object -> its latest write
        self._tasks: set[asyncio.Task[None]] = set()
        self._quota_written_at: dict[str, float] = {}

    def overlay(self, records: list[MeetingRecord]) -> list[MeetingRecord]:
        out = []
        for rec in records:
            mine = self.meetings.get(rec.uid)
            if mine is None:
                out.append(rec)
            elif _digest(rec.status) == _digest(mine) and f"m/{rec.uid}" not in self._last:
                del self.meetings[rec.uid]  # the index shows it: nothing to overlay
                out.append(rec)
            else:
                out.append(replace(rec, status=mine))
        live = {r.uid for r in records}
        for uid in [u for u in self.meetings if u not in live]:
            del self.meetings[uid]
        return out

    def meeting(self, change: StatusChange) -> None:
        self.meetings[change.record.uid] = change.status
        self._start(f"m/{change.record.uid}", self._meeting(change))

    def quota(self, name: str, status: dict[str, Any], min_interval: float = 0.0) -> bool:
        """Write a quota's status if it changed and the last write is `min_interval`
        seconds old (a burst of bookings would otherwise rewrite a thousand quotas on
        every report); False when held back: a later report writes it."""
        if self.quotas.get(name) == status:
            return True
        mono = time.monotonic()
        if mono - self._quota_written_at.get(name, -math.inf) < min_interval:
            return False
        self._quota_written_at[name] = mono
        self.quotas[name] = status
        self._start(f"q/{name}", self._quota(name, status))
        return True

    def _start(self, key: str, write: Coroutine[Any, Any, None]) -> None:
        before = self._last.get(key)
        task = asyncio.get_running_loop().create_task(_after(before, write))
        self._last[key] = task
        self._tasks.add(task)

        def done(t: asyncio.Task[None]) -> None:
            self._tasks.discard(t)
            if self._last.get(key) is t:
                del self._last[key]

        task.add_done_callback(done)

    async def _meeting(self, change: StatusChange) -> None:
        rec = change.record
        if not await self.writer.meeting_status(rec.namespace, rec.name, change.status):
            if self.meetings.get(rec.uid) is change.status:
                del self.meetings[rec.uid]  # decided again by the next pass
            return
        phase, reason = change.status["phase"], change.status["reason"]
        m.admission_decisions.labels(agency=change.agency or "", phase=phase, reason=reason).inc()
        if change.event:
            ev_reason, message, warning = change.event
            self.writer.event("Meeting", rec.ref, ev_reason, message, warning)
            log.info("meeting %s %s %s: %s", rec.key, phase, ev_reason, message)
        if rec.phase == "Pending" and phase != "Pending":
            latency = (datetime.now(UTC) - rec.created).total_seconds()
            m.admission_latency_seconds.observe(max(latency, 0.0))

    async def _quota(self, name: str, status: dict[str, Any]) -> None:
        if not await self.writer.quota_status(name, status) and self.quotas.get(name) is status:
            del self.quotas[name]

    async def drain(self, seconds: float) -> None:
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=seconds)


async def _after(before: asyncio.Task[None] | None, write: Coroutine[Any, Any, None]) -> None:
    if before is not None:
        with contextlib.suppress(Exception):
            await asyncio.shield(before)
    await write


class _Pool:
    """The state of one pool's loop between passes."""

    def __init__(
        self,
        pool_key: str,
        writer: StatusWriter,
        write_quota_status: bool,
        health: LoopHealth,
    ) -> None:
        self.key = pool_key
        self.health = health
        self.logged: set[str] = set()  # isolated Meetings already logged
        self.name = pool_key.split("/", 1)[-1]
        self.writes = Writes(writer)
        self.write_quota_status = write_quota_status
        self.counted: set[tuple[str, str]] = set()
        self.last_spec: BridgePoolSpec | None = None
        self.report_at = 0.0  # monotonic: when the next report is due
        self.boundary_at = math.inf  # monotonic: the next start or end of a Meeting
        self.report_task: asyncio.Task[None] | None = None

    def publish(self, result: PoolPass, quotas: list[QuotaRecord], min_interval: float) -> bool:
        """Phase counts and quota statuses of a full pass; False if a quota status was
        held back by `min_interval`."""
        for agency, phase in self.counted - set(result.phase_counts):
            m.meetings.labels(pool=self.key, agency=agency, phase=phase).set(0)
        for (agency, phase), n in result.phase_counts.items():
            m.meetings.labels(pool=self.key, agency=agency, phase=phase).set(n)
        self.counted = set(result.phase_counts)
        complete = True
        if self.write_quota_status:
            _quota_metrics(result.quota_status, quotas)
            for name, status in result.quota_status.items():
                complete &= self.writes.quota(name, status, min_interval)
        return complete

    def note_boundary(self, result: PoolPass, now: datetime) -> None:
        if result.next_wakeup is not None:
            until = max((result.next_wakeup - now).total_seconds(), 0.05)
            self.boundary_at = min(self.boundary_at, time.monotonic() + until)


async def _pass(
    pool: _Pool,
    spec: BridgePoolSpec,
    inputs: Inputs,
    settings: Settings,
    clock: Callable[[], datetime],
    full: bool,
    pool_now: Callable[[], PoolNow | None] = lambda: None,
) -> tuple[PoolPass, list[QuotaRecord], datetime]:
    records, quotas, ns_labels = inputs()
    seen = pool_now()
    meetings = pool.writes.overlay(records)
    now = clock()
    t0 = time.perf_counter()
    # CPU work on a snapshot of the indexes: off the event loop, so that watches, the
    # webhook and /healthz stay responsive meanwhile.
    result = await asyncio.to_thread(
        functools.partial(
            plan_pool,
            pool.name,
            spec,
            meetings,
            quotas,
            ns_labels,
            settings.pre_join_margin,
            now,
            not full,
            pool_now=seen,
        )
    )
    kind = "full" if full else "focused"
    m.admission_pass_seconds.labels(pool=pool.key, kind=kind).observe(time.perf_counter() - t0)
    for key, error in result.isolated.items():
        if f"{key} {error}" not in pool.logged:
            pool.logged.add(f"{key} {error}")
            log.error("pool %s: Meeting %s cannot be decided, rejected: %s", pool.key, key, error)
    return result, quotas, now


async def _report(
    pool: _Pool,
    spec: BridgePoolSpec,
    inputs: Inputs,
    settings: Settings,
    clock: Callable[[], datetime],
) -> None:
    """A full pass in the background for what only a full pass knows (quota usage, phase
    counts, the next start or end of any Meeting); its Meeting statuses are not written:
    decisions stay with the loop, so a long pass never holds a decision up."""
    name = f"{pool.key} (report)"
    try:
        result, quotas, now = await _pass(pool, spec, inputs, settings, clock, full=True)
        interval = settings.quota_status_min_interval_seconds
        if not pool.publish(result, quotas, interval):
            pool.report_at = min(pool.report_at, time.monotonic() + interval)
        pool.note_boundary(result, now)
        pool.health.ok(name)
    except Exception as exc:  # a failed report is retried at the next resync; decisions go on
        count = pool.health.failed(name, exc)
        log.exception("admission report of pool %s failed (%d in a row)", pool.key, count)
    finally:
        pool.report_task = None


async def run_pool(
    pool_key: str,
    get_spec: Callable[[], BridgePoolSpec | None],
    inputs: Inputs,
    settings: Settings,
    writer: StatusWriter,
    wake: asyncio.Event,
    stopped: Callable[[], bool],
    write_quota_status: bool,
    wants_full: Callable[[], bool] = lambda: False,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    health: LoopHealth | None = None,
    pool_now: Callable[[], PoolNow | None] = lambda: None,
) -> None:
    """Loop until `stopped()`: a pass, start its writes, then wait for a wake-up, the next
    start or end of a Meeting, or the next report, whichever comes first.

    Decisions: a focused pass (`plan_pool(focus=True)`: the open Meetings and the
    reservations overlapping them; the same answers as a full pass, a test compares them)
    serves Meeting events and the clock's starts and ends, which keeps a decision quick
    at 10,000 Meetings. A full pass decides on the first run and when the pool, a quota
    or a namespace changed (every Meeting's agency or limits may have).
    Reports: a full pass in the background, whose quota statuses and phase counts are
    written and whose Meeting statuses are not: `admission_settle_seconds` after
    decisions changed something, and every `admission_resync_seconds`.
    Failures: a pass that fails is logged and retried after 1 s, 2 s, 4 s ... (at most
    `admission_resync_seconds`); `health` counts the failures in a row (/healthz).
    """
    health = health if health is not None else LoopHealth()
    pool = _Pool(pool_key, writer, write_quota_status, health)
    try:
        while not stopped():
            wake.clear()
            spec = get_spec()
            timeout = settings.admission_resync_seconds
            if spec is not None:
                try:
                    timeout = await _decide(
                        pool, spec, inputs, settings, clock, wants_full, wake, pool_now
                    )
                    health.ok(pool.key)
                except Exception as exc:  # the loop goes on; /healthz tells if it keeps failing
                    count = health.failed(pool.key, exc)
                    timeout = retry_after(count, settings)
                    log.exception(
                        "admission pass of pool %s failed (%d in a row); again in %.0f s",
                        pool.key,
                        count,
                        timeout,
                    )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout=timeout)
            if settings.admission_debounce_seconds:
                await asyncio.sleep(settings.admission_debounce_seconds)
    finally:
        if pool.report_task is not None:
            pool.report_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await pool.report_task
        await pool.writes.drain(10)
        health.forget(pool.key)
        health.forget(f"{pool.key} (report)")


async def _decide(
    pool: _Pool,
    spec: BridgePoolSpec,
    inputs: Inputs,
    settings: Settings,
    clock: Callable[[], datetime],
    wants_full: Callable[[], bool],
    wake: asyncio.Event,
    pool_now: Callable[[], PoolNow | None] = lambda: None,
) -> float:
    """One decision pass, its writes, maybe a report; the seconds until the next pass."""
    full = wants_full() or spec != pool.last_spec
    at_boundary = time.monotonic() >= pool.boundary_at
    if at_boundary:
        pool.boundary_at = math.inf  # this pass serves it; a report finds the next
    result, quotas, now = await _pass(pool, spec, inputs, settings, clock, full, pool_now)
    for change in result.changes:
        pool.writes.meeting(change)
    pool.note_boundary(result, now)
    mono = time.monotonic()
    if full:
        pool.last_spec = spec
        pool.publish(result, quotas, 0.0)
        pool.report_at = mono + settings.admission_resync_seconds
    elif at_boundary:
        pool.report_at = mono
    elif result.changes:
        pool.report_at = min(pool.report_at, mono + settings.admission_settle_seconds)
    if mono >= pool.report_at and pool.report_task is None:
        pool.report_at = mono + settings.admission_resync_seconds
        pool.report_task = asyncio.create_task(_report(pool, spec, inputs, settings, clock))
        # A report may find an earlier boundary or let a due report start.
        pool.report_task.add_done_callback(lambda _: wake.set())
    due = [pool.boundary_at]
    if pool.report_task is None:
        due.append(pool.report_at)
    return min(max(min(due) - time.monotonic(), 0.0), settings.admission_resync_seconds)


OrphanInputs = Callable[[], tuple[Mapping[str, list[MeetingRecord]], Mapping[str, bool]]]


async def run_orphans(
    inputs: OrphanInputs,
    default_pool_key: str,
    settings: Settings,
    writer: StatusWriter,
    wake: asyncio.Event,
    stopped: Callable[[], bool],
    health: LoopHealth,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> None:
    """Until `stopped()`: give the Meetings of pools that do not exist (or cannot be used)
    their status (admission.orphans), on a wake-up and every `admission_resync_seconds`.

    `inputs()`: the Meetings by pool key, and every pool key -> whether its spec is usable.
    """
    writes = Writes(writer)
    try:
        while not stopped():
            wake.clear()
            timeout = settings.admission_resync_seconds
            try:
                by_pool, pools = inputs()
                keyed = [
                    (key, rec)
                    for key, records in by_pool.items()
                    if pools.get(key) is not True
                    for rec in records
                ]
                shown = writes.overlay([rec for _, rec in keyed])
                grouped: dict[str, list[MeetingRecord]] = {}
                for (key, _), rec in zip(keyed, shown, strict=True):
                    grouped.setdefault(key, []).append(rec)
                now = clock()
                for key, records in grouped.items():
                    for change in orphan_changes(key, records, pools, default_pool_key, now):
                        writes.meeting(change)
                health.ok(ORPHANS)
            except Exception as exc:
                count = health.failed(ORPHANS, exc)
                timeout = retry_after(count, settings)
                log.exception("orphan Meetings pass failed (%d in a row)", count)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout=timeout)
            if settings.admission_debounce_seconds:
                await asyncio.sleep(settings.admission_debounce_seconds)
    finally:
        await writes.drain(10)
        health.forget(ORPHANS)


def _quota_metrics(statuses: Mapping[str, Mapping[str, Any]], quotas: list[QuotaRecord]) -> None:
    for name, status in statuses.items():
        m.quota_participants_in_use.labels(agency=name).set(status.get("participantsInUse", 0))
        m.quota_participants_peak_booked.labels(agency=name).set(
            status.get("peakBookedParticipants", 0)
        )
        m.quota_borrowed_participants.labels(agency=name).set(status.get("borrowedParticipants", 0))
    for q in quotas:
        if q.spec is not None:
            m.quota_participants_limit.labels(agency=q.name).set(
                q.spec.limits.max_concurrent_participants
            )
