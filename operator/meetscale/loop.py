"""The admission loop of one pool: gather inputs from the Kopf indexes, call the core,
write what changed. One loop per BridgePool, so decisions for a pool are serialized."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from meetscale import metrics as m
from meetscale.config import Settings
from meetscale.kube.writer import StatusWriter, post_event
from meetscale.models import BridgePoolSpec
from meetscale.records import MeetingRecord, QuotaRecord
from meetscale.statuses import COMPARED, StatusChange, plan_pool

log = logging.getLogger("meetscale.admission")


class Wakers:
    """One asyncio.Event per pool; handlers set it when an input of that pool changes."""

    def __init__(self) -> None:
        self._events: dict[str, asyncio.Event] = {}

    def event(self, pool_key: str) -> asyncio.Event:
        return self._events.setdefault(pool_key, asyncio.Event())

    def wake(self, pool_key: str | None = None) -> None:
        targets = [self._events[pool_key]] if pool_key in self._events else []
        if pool_key is None:
            targets = list(self._events.values())
        for ev in targets:
            ev.set()

    def forget(self, pool_key: str) -> None:
        self._events.pop(pool_key, None)


Inputs = Callable[
    [], tuple[list[MeetingRecord], list[QuotaRecord], Mapping[str, Mapping[str, str]]]
]


def _digest(status: Mapping[str, Any]) -> tuple[Any, ...]:
    return tuple(status.get(k) for k in COMPARED)


async def _apply(writer: StatusWriter, change: StatusChange) -> None:
    rec = change.record
    if not await writer.meeting_status(rec.namespace, rec.name, change.status):
        return
    phase, reason = change.status["phase"], change.status["reason"]
    m.admission_decisions.labels(agency=change.agency or "", phase=phase, reason=reason).inc()
    if change.event:
        ev_reason, message, warning = change.event
        post_event(rec.ref, "Meeting", ev_reason, message, warning)
        log.info("meeting %s %s %s: %s", rec.key, phase, ev_reason, message)
    if rec.phase == "Pending" and phase != "Pending":
        latency = (datetime.now(UTC) - rec.created).total_seconds()
        m.admission_latency_seconds.observe(max(latency, 0.0))


async def run_pool(
    pool_key: str,
    get_spec: Callable[[], BridgePoolSpec | None],
    inputs: Inputs,
    settings: Settings,
    writer: StatusWriter,
    wake: asyncio.Event,
    stopped: Callable[[], bool],
    write_quota_status: bool,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> None:
    """Loop until `stopped()`: a pass, writes, then wait for a wake-up, a time boundary or
    the resync period, whichever comes first."""
    pool_name = pool_key.split("/", 1)[-1]
    quota_written: dict[str, dict[str, Any]] = {}
    # What this loop last wrote per Meeting uid: the index may lag behind our own writes,
    # and a pass must not write (or announce) the same decision twice.
    meeting_written: dict[str, tuple[Any, ...]] = {}
    counted: set[tuple[str, str]] = set()
    while not stopped():
        wake.clear()
        spec = get_spec()
        timeout = settings.admission_resync_seconds
        if spec is not None:
            meetings, quotas, ns_labels = inputs()
            now = clock()
            t0 = time.perf_counter()
            # The pass is CPU work on a snapshot of the indexes: run it off the event loop so
            # that watches, the webhook and /healthz stay responsive meanwhile.
            result = await asyncio.to_thread(
                plan_pool,
                pool_name,
                spec,
                meetings,
                quotas,
                ns_labels,
                settings.pre_join_margin,
                now,
            )
            m.admission_pass_seconds.labels(pool=pool_key).observe(time.perf_counter() - t0)
            for agency, phase in counted - set(result.phase_counts):
                m.meetings.labels(pool=pool_key, agency=agency, phase=phase).set(0)
            for (agency, phase), n in result.phase_counts.items():
                m.meetings.labels(pool=pool_key, agency=agency, phase=phase).set(n)
            counted = set(result.phase_counts)
            fresh = [
                c for c in result.changes if meeting_written.get(c.record.uid) != _digest(c.status)
            ]
            await asyncio.gather(*(_apply(writer, c) for c in fresh))
            for c in fresh:
                meeting_written[c.record.uid] = _digest(c.status)
            live = {r.uid for r in meetings}
            for uid in list(meeting_written):
                if uid not in live:
                    del meeting_written[uid]
            if write_quota_status:
                for name, status in result.quota_status.items():
                    if quota_written.get(name) != status and await writer.quota_status(
                        name, status
                    ):
                        quota_written[name] = status
                    m.quota_participants_in_use.labels(agency=name).set(
                        status.get("participantsInUse", 0)
                    )
                    m.quota_participants_peak_booked.labels(agency=name).set(
                        status.get("peakBookedParticipants", 0)
                    )
                    m.quota_borrowed_participants.labels(agency=name).set(
                        status.get("borrowedParticipants", 0)
                    )
                for q in quotas:
                    if q.spec is not None:
                        m.quota_participants_limit.labels(agency=q.name).set(
                            q.spec.limits.max_concurrent_participants
                        )
            if result.next_wakeup is not None:
                timeout = min(timeout, max((result.next_wakeup - now).total_seconds(), 0.05))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), timeout=timeout)
        if settings.admission_debounce_seconds:
            await asyncio.sleep(settings.admission_debounce_seconds)
