"""The admission loop of one pool: gather inputs from the Kopf indexes, call the core,
write what changed. One loop per BridgePool, so decisions for a pool are serialized."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from meetscale import metrics as m
from meetscale.admission.orphans import orphan_changes
from meetscale.admission.statuses import PoolPass, plan_pool
from meetscale.admission.writes import CrossPool, Writes
from meetscale.clients.kube.writer import StatusWriter
from meetscale.config import Settings
from meetscale.models import BridgePoolSpec
from meetscale.records import MeetingRecord, QuotaRecord

log = logging.getLogger("meetscale.admission")

ORPHANS = "orphans"  # the loop of Meetings whose pool does not exist (a Wakers key too)
UNHEALTHY_AFTER = 5  # passes of one loop failing in a row before /healthz fails
CALIBRATION_STEP = 0.1  # a move of an agency's declaration factor worth an event
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
        self.calibrated: dict[str, float] = {}  # quota -> factor last announced
        self.quota_uids: dict[str, str] = {}
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
        self.quota_uids = {q.name: q.uid for q in quotas}
        if self.write_quota_status:
            _quota_metrics(result.quota_status, quotas)
            for name, status in result.quota_status.items():
                self._announce_calibration(name, status)
                complete &= self.writes.quota(name, status, min_interval)
        return complete

    def _announce_calibration(self, name: str, status: Mapping[str, Any]) -> None:
        """An event on the AgencyQuota when what its history says moves by a tenth or
        more (the first time, and then as it is learnt)."""
        cal = status.get("calibration")
        if not cal:
            return
        last = self.calibrated.get(name)
        if last is None or abs(cal["factor"] - last) >= CALIBRATION_STEP:
            self.calibrated[name] = cal["factor"]
            ref = {"name": name, "uid": self.quota_uids.get(name, "")}
            self.writes.writer.event("AgencyQuota", ref, "Calibrated", cal["summary"], False)
            log.info("quota %s Calibrated: %s", name, cal["summary"])

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
    cross: CrossPool | None = None,
) -> tuple[PoolPass, list[QuotaRecord], datetime]:
    records, quotas, ns_labels = inputs()
    seen = cross.door.get(pool.key) if cross is not None else None
    elsewhere = cross.elsewhere(pool.key) if cross is not None else []
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
            elsewhere=elsewhere,
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
    cross: CrossPool,
) -> None:
    """A full pass in the background for what only a full pass knows (quota usage, phase
    counts, the next start or end of any Meeting); its Meeting statuses are not written:
    decisions stay with the loop, so a long pass never holds a decision up."""
    name = f"{pool.key} (report)"
    try:
        result, quotas, now = await _pass(pool, spec, inputs, settings, clock, True, cross)
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
    cross: CrossPool | None = None,
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
    Other pools: `cross` (see `CrossPool`) gives the door's view of this pool, the other
    pools' reservations (a quota holds across every pool) and the turn to decide.
    """
    health = health if health is not None else LoopHealth()
    cross = cross if cross is not None else CrossPool()
    pool = _Pool(pool_key, writer, write_quota_status, health)
    cross.writes[pool_key] = pool.writes
    try:
        while not stopped():
            wake.clear()
            spec = get_spec()
            timeout = settings.admission_resync_seconds
            if spec is not None:
                try:
                    timeout = await _decide(
                        pool, spec, inputs, settings, clock, wants_full, wake, cross
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
        if cross.writes.get(pool_key) is pool.writes:
            del cross.writes[pool_key]
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
    cross: CrossPool,
) -> float:
    """One decision pass, its writes, maybe a report; the seconds until the next pass."""
    full = wants_full() or spec != pool.last_spec
    at_boundary = time.monotonic() >= pool.boundary_at
    if at_boundary:
        pool.boundary_at = math.inf  # this pass serves it; a report finds the next
    async with cross.lock:  # the pools take turns: their writes are seen by the next pass
        result, quotas, now = await _pass(pool, spec, inputs, settings, clock, full, cross)
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
        pool.report_task = asyncio.create_task(_report(pool, spec, inputs, settings, clock, cross))
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
                    confidential = f"{settings.pool_namespace}/{settings.confidential_pool}"
                    changes = orphan_changes(
                        key, records, pools, default_pool_key, now, confidential
                    )
                    for change in changes:
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
        if status.get("calibration"):
            m.declaration_factor.labels(agency=name).set(status["calibration"]["factor"])
    m.agency_info.clear()  # a renamed agency leaves no stale series
    for q in quotas:
        if q.spec is not None:
            m.quota_participants_limit.labels(agency=q.name).set(
                q.spec.limits.max_concurrent_participants
            )
            m.agency_info.labels(agency=q.name, display_name=q.spec.display_name or q.name).set(1)
