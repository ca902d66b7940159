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

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
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
    "Slots",
    "Window",
    "decide_at",
    "earliest_start",
    "free_windows",
    "next_start_note",
    "reservations",
]

ASK_KEY = "slots/asked"  # the key of the asked Meeting in the core's answer


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
    agency's cohort are handed over: the core compares overlapping windows only.
    """
    req = ask.at(start, now)
    lo, hi = start - pool.pre_join_margin, req.end
    near = [r for r in reserved if r.start - pool.pre_join_margin < hi and r.end > lo]
    plan = decide_admission([*near, req], _involved(quotas, ask.agency), pool, now)
    return plan.decisions[ASK_KEY]


class _Sweep:
    """Peaks the core checks first, for a quick "certainly not" before asking it."""

    def __init__(
        self,
        ask: Ask,
        reserved: Sequence[MeetingRequest],
        quota: AgencyQuotaView | None,
        quotas: Mapping[str, AgencyQuotaView],
        pool: PoolCeiling,
        now: datetime,
    ) -> None:
        self.margin = pool.pre_join_margin
        self.now = now
        self.duration = ask.duration
        spans = [(max(now, r.start - self.margin), r.end, r) for r in reserved]
        spans = [s for s in spans if s[1] > s[0]]
        self.coords = sorted({t for lo, hi, _ in spans for t in (lo, hi)})
        n = max(0, len(self.coords) - 1)
        index = {t: i for i, t in enumerate(self.coords)}
        diffs = [[0] * (n + 1) for _ in range(3)]  # pool units, agency participants, meetings
        for lo, hi, r in spans:
            i, j = index[lo], index[hi]
            rows = [(0, pool.units_for(r.participants, r.confidential))]
            if r.agency == ask.agency:
                rows += [(1, r.participants), (2, 1)]
            for row, value in rows:
                diffs[row][i] += value
                diffs[row][j] -= value
        self.series = [_running(d, n) for d in diffs]
        self.limits = [pool.capacity - pool.units_for(ask.participants, ask.confidential)]
        if quota is None:
            self.limits += [0, 0]  # the core says NoQuota; the sweep only skips
        else:
            others = sum(q.lendable for q in quotas.values() if q.cohort == quota.cohort)
            others -= quota.lendable
            borrowable = 0
            if quota.cohort is not None:
                limit = quota.borrowing_limit
                borrowable = others if limit is None else min(limit, others)
            self.limits += [
                quota.max_concurrent_participants + borrowable - ask.participants,
                quota.max_concurrent_meetings - 1,
            ]

    def may_fit(self, start: datetime) -> bool:
        """False only where the core would certainly refuse (a peak above its limit)."""
        lo = max(self.now, start - self.margin)
        hi = start + self.duration
        i = max(0, bisect_right(self.coords, lo) - 1)
        j = bisect_left(self.coords, hi)
        if j <= i:
            return True
        return all(
            max(series[i:j], default=0) <= limit
            for series, limit in zip(self.series, self.limits, strict=True)
        )


def _running(diff: list[int], n: int) -> list[int]:
    out, acc = [], 0
    for k in range(n):
        acc += diff[k]
        out.append(acc)
    return out


def _questions(
    ask: Ask,
    reserved: Sequence[MeetingRequest],
    quota: AgencyQuotaView | None,
    pool: PoolCeiling,
    now: datetime,
    grid: tuple[datetime, timedelta, int, int],
) -> list[int]:
    """The grid indices at which the core's answer may differ from the one before."""
    lo, step, first, count = grid
    margin, duration = pool.pre_join_margin, ask.duration
    points = [now + margin]
    if quota is not None:
        points.append(now + quota.max_book_ahead)
    for r in reserved:
        for edge in (max(now, r.start - margin), r.end):
            points += [edge + margin, edge - duration]
    found = {first}
    for p in points:
        k, rest = divmod(p - lo, step)
        if rest == timedelta(0) and first <= k < count:
            found.add(k)
        if first <= k + 1 < count:
            found.add(k + 1)
    return sorted(found)


class _Search:
    """What every question about one grid needs: the reservations near it, the sweep and
    the starts worth asking about."""

    def __init__(
        self,
        ask: Ask,
        reserved: Sequence[MeetingRequest],
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
        margin = pool.pre_join_margin
        self.near = [
            r for r in reserved if r.start - margin < hi + ask.duration and r.end > lo - margin
        ]
        quota = quotas.get(ask.agency)
        self.sweep = _Sweep(ask, self.near, quota, quotas, pool, now)
        self.ks = (
            _questions(ask, self.near, quota, pool, now, (lo, step, self.first, self.count))
            if self.first < self.count
            else []
        )
        self.asked = 0

    def start(self, k: int) -> datetime:
        return self.lo + k * self.step

    def decide(self, k: int) -> Decision:
        self.asked += 1
        return decide_at(self.ask, self.start(k), self.near, self.quotas, self.pool, self.now)


def free_windows(
    ask: Ask,
    reserved: Sequence[MeetingRequest],
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
        if k != search.first and not search.sweep.may_fit(search.start(k)):
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
    reserved: Sequence[MeetingRequest],
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
        if search.sweep.may_fit(search.start(k)) and search.decide(k).phase == Phase.ADMITTED:
            return search.start(k)
    return None


#: How far after a Queued Meeting's start its message looks for a start that fits.
NOTE_HORIZON = timedelta(hours=24)
NOTE_STEP = timedelta(minutes=5)


def next_start_note(
    req: MeetingRequest,
    reserved: Sequence[MeetingRequest],
    quotas: Mapping[str, AgencyQuotaView],
    pool: PoolCeiling,
    now: datetime,
) -> str:
    """What a Queued Meeting's message adds: the first start from its own on (every
    5 minutes, for a day, in its own offset) at which it would be admitted now."""
    ask = Ask(req.agency, req.participants, req.end - req.start, req.priority, req.confidential)
    lo = req.start
    first = earliest_start(ask, reserved, quotas, pool, now, lo, lo + NOTE_HORIZON, NOTE_STEP)
    if first is None:
        return "; no start in the 24 h after it would be admitted now"
    return f"; the first start that would be admitted now is {first.isoformat()}"
