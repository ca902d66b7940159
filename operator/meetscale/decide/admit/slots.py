"""When can we meet? The starts at which a Meeting would be admitted now (pure).

The answer is the admission core's own: for each start that matters,
:func:`~meetscale.decide.admit.plan.decide_admission` is asked about the Meeting beside
what is reserved (the Admitted and Running Meetings, and the ones the current pass
admits). A Meeting applied now with a start inside a window is admitted: in a real
pass it is checked against a subset of those reservations (the ones considered before
it), and every check is monotone. Queued Meetings hold nothing, so they do not take a
window; a window may still go to a Meeting booked before this one is applied.

Starts lie on a grid ``lo + k * step``. The core's answer can only change where the
Meeting's window ``[start - margin, start + duration)`` meets an end of a reservation's
window, where it stops being clipped at ``now``, or where the start passes the quota's
``maxBookAheadDays``. Between two such points it is the same, so the core is asked at
each grid start on such a point and at the first grid start after it: exact on the
grid, and a few hundred questions for a busy day instead of one per start. A cheap
sweep (peaks of the agency's participants and meetings and of the pool's units, which
every admitted Meeting must stay under) skips starts the core would refuse anyway.
"""

from __future__ import annotations

import heapq
import itertools
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from meetscale.decide.admit.plan import decide_admission
from meetscale.decide.admit.types import (
    AdmissionPlan,
    AgencyQuotaView,
    Decision,
    MeetingRequest,
    PoolCeiling,
)
from meetscale.models.meeting import HOLDING_PHASES, Phase

__all__ = [
    "ASK_KEY",
    "NOTE_HORIZON",
    "Ask",
    "Gap",
    "Reservations",
    "Slots",
    "Window",
    "decide_at",
    "earliest_start",
    "free_windows",
    "next_start_note",
    "reservations",
]

ASK_KEY = "slots/asked"  # the key of the asked Meeting in the core's answer
OTHERS = "slots/others"  # the agency of other cohorts' reservations (they count in the pool)


@dataclass(frozen=True, slots=True)
class Ask:
    """The Meeting asked about: what `meetscale slots` is told."""

    agency: str
    participants: int
    duration: timedelta
    priority: int = 0
    confidential: bool = False

    def at(self, start: datetime, now: datetime, key: str = ASK_KEY) -> MeetingRequest:
        """This Meeting starting at `start`, created now, not yet decided."""
        return MeetingRequest(
            key=key,
            agency=self.agency,
            start=start,
            end=start + self.duration,
            participants=self.participants,
            priority=self.priority,
            confidential=self.confidential,
            created_at=now,
            phase=Phase.PENDING,
        )


@dataclass(frozen=True, slots=True)
class Window:
    """Starts from `first` to `last` (both on the grid, both admitted)."""

    first: datetime
    last: datetime


@dataclass(frozen=True, slots=True)
class Gap:
    """Starts from `first` to `last` that are refused; `why` is the core's answer at `first`."""

    first: datetime
    last: datetime
    why: Decision


@dataclass(frozen=True, slots=True)
class Slots:
    windows: list[Window]
    gaps: list[Gap]
    asked: int  # how many times the core was asked

    def spans(self) -> list[Window | Gap]:
        """Windows and gaps in time order."""
        return sorted([*self.windows, *self.gaps], key=lambda s: s.first)


def reservations(requests: Iterable[MeetingRequest], plan: AdmissionPlan) -> list[MeetingRequest]:
    """What holds quota once `plan` is written: the held reservations (Admitted, Running)
    and the Meetings the plan admits, all as Admitted."""
    out = []
    for req in requests:
        decision = plan.decisions.get(req.key)
        if decision is not None and decision.phase == Phase.ADMITTED:
            out.append(_admitted(req))
        elif decision is None and req.phase in HOLDING_PHASES:
            out.append(req)
    return out


def _admitted(req: MeetingRequest) -> MeetingRequest:
    return MeetingRequest(
        key=req.key,
        agency=req.agency,
        start=req.start,
        end=req.end,
        participants=req.participants,
        priority=req.priority,
        confidential=req.confidential,
        created_at=req.created_at,
        phase=Phase.ADMITTED,
        agency_priority=req.agency_priority,
    )


def _involved(quotas: Mapping[str, AgencyQuotaView], agency: str) -> dict[str, AgencyQuotaView]:
    """The asked agency's quota and, for borrowing, its cohort's."""
    own = quotas.get(agency)
    if own is None:
        return {}
    if own.cohort is None:
        return {agency: own}
    return {n: q for n, q in quotas.items() if q.cohort == own.cohort}


def decide_at(
    ask: Ask,
    start: datetime,
    reserved: Sequence[MeetingRequest],
    quotas: Mapping[str, AgencyQuotaView],
    pool: PoolCeiling,
    now: datetime,
) -> Decision:
    """The core's decision on the asked Meeting starting at `start`.

    Only the reservations whose window overlaps the Meeting's and the quotas of its
    agency's cohort are handed over: the core compares overlapping windows only. The
    reservations of agencies outside that cohort count only in the pool's ceiling, so
    they are handed over as one agency's (`OTHERS`): the same pool units at every
    instant, without an agency's books for each of them.
    """
    req = ask.at(start, now)
    lo, hi = start - pool.pre_join_margin, req.end
    involved = _involved(quotas, ask.agency)
    near = [
        r if r.agency in involved or r.agency == ask.agency else replace(r, agency=OTHERS)
        for r in reserved
        if r.start - pool.pre_join_margin < hi and r.end > lo
    ]
    plan = decide_admission([*near, req], involved, pool, now)
    return plan.decisions[ASK_KEY]


_US = timedelta(microseconds=1)
_Span = tuple[int, int, MeetingRequest]  # window [a, b) in microseconds after now


class Reservations:
    """Reservations as the core sees them at `now`: windows ``[start - margin, end)`` in
    microseconds after `now`, clipped at 0, sorted, with the pool's units booked between
    any two window ends. A pass builds this once for all its Queued Meetings; each
    search then looks only at the reservations near it (bisection)."""

    def __init__(self, requests: Iterable[MeetingRequest], pool: PoolCeiling, now: datetime):
        self.now, self.pool = now, pool
        m = pool.pre_join_margin // _US
        spans = [(max(0, (r.start - now) // _US - m), (r.end - now) // _US, r) for r in requests]
        self.spans = sorted((x for x in spans if x[1] > x[0]), key=lambda x: x[0])
        self.los = [x[0] for x in self.spans]
        self.longest = max((b - a for a, b, _ in self.spans), default=0)
        self.by_agency: dict[str, list[_Span]] = {}
        for x in self.spans:
            self.by_agency.setdefault(x[2].agency, []).append(x)
        self.coords = sorted({t for a, b, _ in self.spans for t in (a, b)})
        self.units = _series(
            self.coords,
            ((a, b, pool.units_for(r.participants, r.confidential)) for a, b, r in self.spans),
        )

    def overlapping(self, lo: int, hi: int) -> list[_Span]:
        """The windows that meet ``[lo, hi)``."""
        i = bisect_left(self.los, lo - self.longest)  # b > lo needs a > lo - longest
        j = bisect_left(self.los, hi)
        return [x for x in self.spans[i:j] if x[1] > lo]


def _series(coords: Sequence[int], rows: Iterable[tuple[int, int, int]]) -> list[int]:
    """The booked sum between coords[i] and coords[i + 1], for each i."""
    index = {t: i for i, t in enumerate(coords)}
    diff = [0] * (len(coords) + 1)
    for a, b, value in rows:
        diff[index[a]] += value
        diff[index[b]] -= value
    return list(itertools.accumulate(diff[: max(0, len(coords) - 1)]))


def _peak(coords: Sequence[int], series: Sequence[int], lo: int, hi: int) -> int:
    i = max(0, bisect_right(coords, lo) - 1)
    return max(series[i : bisect_left(coords, hi)], default=0)


def _index(
    reserved: Reservations | Sequence[MeetingRequest], pool: PoolCeiling, now: datetime
) -> Reservations:
    if isinstance(reserved, Reservations):
        if (reserved.pool, reserved.now) == (pool, now):
            return reserved
        reserved = [x[2] for x in reserved.spans]
    return Reservations(reserved, pool, now)


class _Sweep:
    """Peaks the core checks first, for a quick "certainly not" before asking it: the
    pool's units and the agency's participants and meetings, each at most its limit."""

    def __init__(
        self,
        ask: Ask,
        index: Reservations,
        quota: AgencyQuotaView | None,
        quotas: Mapping[str, AgencyQuotaView],
    ) -> None:
        pool = index.pool
        self.index = index
        self.margin = pool.pre_join_margin // _US
        self.duration = ask.duration // _US
        own = index.by_agency.get(ask.agency, [])
        self.coords = sorted({t for a, b, _ in own for t in (a, b)})
        self.part = _series(self.coords, ((a, b, r.participants) for a, b, r in own))
        self.count = _series(self.coords, ((a, b, 1) for a, b, _ in own))
        self.room = pool.capacity - pool.units_for(ask.participants, ask.confidential)
        self.limits = (0, 0)  # no quota: the core says NoQuota; the sweep only skips
        if quota is not None:
            others = sum(q.lendable for q in quotas.values() if q.cohort == quota.cohort)
            borrowable = 0
            if quota.cohort is not None:
                limit = quota.borrowing_limit
                others -= quota.lendable
                borrowable = others if limit is None else min(limit, others)
            self.limits = (
                quota.max_concurrent_participants + borrowable - ask.participants,
                quota.max_concurrent_meetings - 1,
            )

    def may_fit(self, start: int) -> bool:
        """False only where the core would certainly refuse (a peak above its limit)."""
        lo, hi = max(0, start - self.margin), start + self.duration
        if _peak(self.index.coords, self.index.units, lo, hi) > self.room:
            return False
        return (
            _peak(self.coords, self.part, lo, hi) <= self.limits[0]
            and _peak(self.coords, self.count, lo, hi) <= self.limits[1]
        )


def _questions(
    sweep: _Sweep, edges: Sequence[int], grid: tuple[int, int, int, int]
) -> Iterator[int]:
    """The grid indices, in order, at which the core's answer may differ from the one
    before: where the asked window meets a reservation's window's end, stops being
    clipped at now, or passes the book-ahead limit (`edges`)."""
    lo, step, first, count = grid
    margin, duration = sweep.margin, sweep.duration
    coords = sweep.index.coords
    sl = coords[
        bisect_left(coords, lo + first * step - margin) : bisect_right(
            coords, lo + count * step + duration
        )
    ]
    points = heapq.merge(sorted(edges), (e + margin for e in sl), (e - duration for e in sl))
    yield first
    last = first
    for p in points:
        k, rest = divmod(p - lo, step)
        for c in (k, k + 1) if rest == 0 else (k + 1,):
            if c > last:
                if c >= count:
                    return
                yield c
                last = c


class _Search:
    """What every question about one grid needs: the reservations, the sweep and the
    starts worth asking about."""

    def __init__(
        self,
        ask: Ask,
        reserved: Reservations | Sequence[MeetingRequest],
        quotas: Mapping[str, AgencyQuotaView],
        pool: PoolCeiling,
        now: datetime,
        grid: tuple[datetime, datetime, timedelta],
    ) -> None:
        lo, hi, step = grid
        if step <= timedelta(0):
            raise ValueError(f"step must be positive, got {step}")
        if any(t.tzinfo is None for t in (now, lo, hi)):
            raise ValueError("now, lo and hi need a time zone")
        self.ask, self.quotas, self.pool, self.now = ask, quotas, pool, now
        self.lo, self.step = lo, step
        self.count = -((lo - hi) // step)  # grid starts before hi
        self.first = max(0, -((lo - now) // step))  # the first grid start not before now
        self.index = _index(reserved, pool, now)
        quota = quotas.get(ask.agency)
        self.sweep = _Sweep(ask, self.index, quota, quotas)
        edges = [pool.pre_join_margin // _US]  # the asked window stops being clipped at now
        if quota is not None:
            edges.append(quota.max_book_ahead // _US)
        grid_us = ((lo - now) // _US, step // _US, self.first, self.count)
        self.ks = _questions(self.sweep, edges, grid_us) if self.first < self.count else iter(())
        self.asked = 0

    def start(self, k: int) -> datetime:
        return self.lo + k * self.step

    def may_fit(self, k: int) -> bool:
        return self.sweep.may_fit((self.start(k) - self.now) // _US)

    def decide(self, k: int) -> Decision:
        self.asked += 1
        start = (self.start(k) - self.now) // _US
        margin, duration = self.sweep.margin, self.sweep.duration
        near = [x[2] for x in self.index.overlapping(max(0, start - margin), start + duration)]
        return decide_at(self.ask, self.start(k), near, self.quotas, self.pool, self.now)


def free_windows(
    ask: Ask,
    reserved: Reservations | Sequence[MeetingRequest],
    quotas: Mapping[str, AgencyQuotaView],
    pool: PoolCeiling,
    now: datetime,
    lo: datetime,
    hi: datetime,
    step: timedelta = timedelta(minutes=5),
) -> Slots:
    """The windows of starts in ``[lo, hi)`` on the grid ``lo + k * step`` (and not
    before `now`) at which the asked Meeting would be admitted now, and the gaps
    between them with the core's reason (its answer at the gap's first start)."""
    search = _Search(ask, reserved, quotas, pool, now, (lo, hi, step))
    runs: list[tuple[int, Decision | None]] = []  # (first index, None when admitted)
    for k in search.ks:
        verdict: Decision | None = None
        if k != search.first and not search.may_fit(k):
            verdict = _REFUSED
        else:
            d = search.decide(k)
            verdict = None if d.phase == Phase.ADMITTED else d
        if runs and (runs[-1][1] is None) == (verdict is None):
            continue  # the run goes on
        runs.append((k, verdict))
    windows: list[Window] = []
    gaps: list[Gap] = []
    ends = [k for k, _ in runs[1:]] + [search.count]
    for (k, verdict), end in zip(runs, ends, strict=True):
        first, last = search.start(k), search.start(end - 1)
        if verdict is None:
            windows.append(Window(first, last))
        else:
            why = search.decide(k) if verdict is _REFUSED else verdict
            gaps.append(Gap(first, last, why))
    return Slots(windows, gaps, search.asked)


# Marks a start the sweep ruled out; the core is asked for the reason at a gap's start.
_REFUSED = Decision(key=ASK_KEY, phase=Phase.REJECTED, reason="", message="")


def earliest_start(
    ask: Ask,
    reserved: Reservations | Sequence[MeetingRequest],
    quotas: Mapping[str, AgencyQuotaView],
    pool: PoolCeiling,
    now: datetime,
    lo: datetime,
    hi: datetime,
    step: timedelta = timedelta(minutes=5),
) -> datetime | None:
    """The first start on the grid ``lo + k * step`` in ``[max(lo, now), hi)`` at which
    the asked Meeting would be admitted now; None when there is none."""
    search = _Search(ask, reserved, quotas, pool, now, (lo, hi, step))
    for k in search.ks:
        if search.may_fit(k) and search.decide(k).phase == Phase.ADMITTED:
            return search.start(k)
    return None


#: How far after a Queued Meeting's start its message looks for a start that fits.
NOTE_HORIZON = timedelta(hours=12)
NOTE_STEP = timedelta(minutes=5)


def next_start_note(
    req: MeetingRequest,
    reserved: Reservations | Sequence[MeetingRequest],
    quotas: Mapping[str, AgencyQuotaView],
    pool: PoolCeiling,
    now: datetime,
) -> str:
    """What a Queued Meeting's message adds: the first start from its own on (every
    5 minutes, up to NOTE_HORIZON later, in its own offset) at which it would be admitted
    now. `meetscale slots` lists every window of a day."""
    ask = Ask(req.agency, req.participants, req.end - req.start, req.priority, req.confidential)
    lo = req.start
    first = earliest_start(ask, reserved, quotas, pool, now, lo, lo + NOTE_HORIZON, NOTE_STEP)
    if first is None:
        hours = int(NOTE_HORIZON / timedelta(hours=1))
        return f"; no start in the {hours} h after it would be admitted now"
    return f"; the first start that would be admitted now is {first.isoformat()}"
