"""The writes of the admission loops, and what the loops of different pools share.

Each pool's loop writes in the background (`Writes`) and reads its own writes back
before the index shows them. A quota holds across every pool, so a pass also counts the
reservations of the other pools (`CrossPool.elsewhere`, their loops' writes overlaid)
and decisions of all pools take turns (`CrossPool.lock`): two pools never admit past one
quota together.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Coroutine, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from meetscale import metrics as m
from meetscale.admission.statuses import COMPARED, StatusChange
from meetscale.clients.kube.writer import StatusWriter
from meetscale.decide.door import PoolNow
from meetscale.records import MeetingRecord

log = logging.getLogger("meetscale.admission")


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


@dataclass
class CrossPool:
    """What the admission loops of all pools share (one per operator)."""

    #: each pool as its scaling pass last saw it (pool key -> PoolNow): admission's door
    door: dict[str, PoolNow] = field(default_factory=dict)
    #: every pool's Meetings as the index has them (pool key -> records)
    index: Mapping[str, Iterable[MeetingRecord]] = field(default_factory=dict)
    #: each running loop's writes: their statuses overlay the index's
    writes: dict[str, Writes] = field(default_factory=dict)
    #: one decision pass at a time across pools
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def elsewhere(self, pool_key: str) -> list[MeetingRecord]:
        """The Meetings of every other pool, with what their loops wrote or are writing."""
        out = []
        for key, records in list(self.index.items()):
            if key == pool_key:
                continue
            mine = self.writes.get(key)
            for rec in records:
                status = mine.meetings.get(rec.uid) if mine is not None else None
                out.append(rec if status is None else replace(rec, status=status))
        return out
