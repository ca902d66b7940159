"""The admission loop of one pool: gather inputs from the Kopf indexes, call the core,
write what changed. One loop per BridgePool, so decisions for a pool are serialized."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from meetscale import metrics as m
from meetscale.config import Settings
from meetscale.kube.writer import StatusWriter
from meetscale.models import BridgePoolSpec
from meetscale.records import MeetingRecord, QuotaRecord
from meetscale.statuses import COMPARED, StatusChange, plan_pool

log = logging.getLogger("meetscale.admission")


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

    def quota(self, name: str, status: dict[str, Any]) -> None:
        if self.quotas.get(name) != status:
            self.quotas[name] = status
            self._start(f"q/{name}", self._quota(name, status))

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
) -> None:
    """Loop until `stopped()`: a pass, start its writes, then wait for a wake-up or the
    next full pass, whichever comes first.

    A full pass looks at every Meeting and writes quota statuses and phase counts; it runs
    first, every `admission_resync_seconds`, at the next time boundary (a start or an
    end), on a pool, quota or namespace change, and `admission_settle_seconds` after
    focused passes changed something (so quota usage follows). A Meeting event is served
    by a focused pass (`plan_pool(focus=True)`): the open Meetings and the reservations
    overlapping them, which is what keeps a decision quick at 10,000 Meetings.
    """
    pool_name = pool_key.split("/", 1)[-1]
    writes = Writes(writer)
    counted: set[tuple[str, str]] = set()
    full_at = 0.0  # monotonic time of the next full pass
    last_spec: BridgePoolSpec | None = None
    try:
        while not stopped():
            wake.clear()
            spec = get_spec()
            if spec is not None:
                full = wants_full() or time.monotonic() >= full_at or spec != last_spec
                records, quotas, ns_labels = inputs()
                meetings = writes.overlay(records)
                now = clock()
                t0 = time.perf_counter()
                # The pass is CPU work on a snapshot of the indexes: run it off the event
                # loop so that watches, the webhook and /healthz stay responsive meanwhile.
                result = await asyncio.to_thread(
                    plan_pool,
                    pool_name,
                    spec,
                    meetings,
                    quotas,
                    ns_labels,
                    settings.pre_join_margin,
                    now,
                    not full,
                )
                kind = "full" if full else "focused"
                m.admission_pass_seconds.labels(pool=pool_key, kind=kind).observe(
                    time.perf_counter() - t0
                )
                for change in result.changes:
                    writes.meeting(change)
                mono = time.monotonic()
                if full:
                    last_spec = spec
                    full_at = mono + settings.admission_resync_seconds
                    for agency, phase in counted - set(result.phase_counts):
                        m.meetings.labels(pool=pool_key, agency=agency, phase=phase).set(0)
                    for (agency, phase), n in result.phase_counts.items():
                        m.meetings.labels(pool=pool_key, agency=agency, phase=phase).set(n)
                    counted = set(result.phase_counts)
                    if write_quota_status:
                        _quota_metrics(result.quota_status, quotas)
                        for name, status in result.quota_status.items():
                            writes.quota(name, status)
                elif result.changes:
                    full_at = min(full_at, mono + settings.admission_settle_seconds)
                if result.next_wakeup is not None:
                    until = max((result.next_wakeup - now).total_seconds(), 0.05)
                    full_at = min(full_at, mono + until)
                timeout = max(full_at - time.monotonic(), 0.0)
            else:
                timeout = settings.admission_resync_seconds
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout=timeout)
            if settings.admission_debounce_seconds:
                await asyncio.sleep(settings.admission_debounce_seconds)
    finally:
        await writes.drain(10)


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
