"""Admission of Meetings against agency quotas and the pool ceiling (pure).

`decide_admission(meetings, quotas, pool, now)` takes plain frozen dataclasses (the
shell converts the CRDs) and returns an `AdmissionPlan`: a `Decision` for every
Pending or Queued meeting and the `AgencyUsage` of every agency that has a quota or a
reservation. Nothing here reads a clock: `now` is a parameter, and every time must
carry a time zone. The result does not depend on the order of the inputs.

Semantics
---------
Reservations. A meeting that holds a reservation (phase Admitted or Running, or
admitted earlier in the same pass) holds `participants` of its agency's quota, one of
its agency's concurrent meetings, and `pool units` of the pool ceiling during
`[start - pre_join_margin, end)`. Time before `now` is ignored (windows are clipped
to `[now, ...)`), so a meeting whose end has passed holds nothing. Pending, Queued,
Finished, Cancelled and Rejected meetings hold nothing. Admitted and Running meetings
are never re-decided, never evicted, and get no `Decision` (the plan only lists
Pending and Queued meetings); they are counted in `usage`, even when they exceed a
limit that was lowered after they were admitted.

Limits are checked as the peak, over the candidate's window, of the concurrent sum of
overlapping reservations (participants, meetings, pool units), i.e. a sweep over the
interval endpoints; meetings whose windows do not overlap never compete.

Pool units. A shared meeting takes `participants` units of the pool ceiling
`max_bridges * participants_per_bridge`; a confidential one takes whole bridges of its
own: `ceil(participants / participants_per_bridge) * participants_per_bridge` units.
Agency quotas always count declared participants.

Rejected at once (terminal, whatever else is booked): `NoQuota` (no AgencyQuota for
the agency), `StartInPast` (its end has passed and it was never admitted),
`PriorityNotAllowed` (priority above the quota's `max_priority`), `MeetingTooLarge`
(above `max_meeting_participants`, or more pool units than the whole ceiling),
`MeetingTooLong`, `TooFarAhead` (`start - now > max_book_ahead`), and `QuotaExceeded`
when the meeting could not fit even with nothing else booked (participants above the
nominal quota plus everything it could ever borrow, or `max_concurrent_meetings` 0).

Blocked by other reservations (`QuotaExceeded`, `PoolFull`): `Queued` while
`now < start` (a booking may still be cancelled), otherwise `Rejected`. A meeting that
started but has not ended and fits is admitted (ad-hoc meetings).

Order. Candidates are taken by priority tier: meeting `priority` (higher first), then
the agency's priority, `AgencyQuotaView.priority` (higher first; this is the single
source of truth for it, `MeetingRequest.agency_priority` is informational and not
used). Within a tier the agencies take turns by weighted fair share, as Kueue's fair
sharing: the next meeting comes from the agency whose share is lowest, where an
agency's share for its next meeting is the peak of the pool units it already holds
in that meeting's window divided by its `weight`; ties go to the earlier `created_at`,
then to the smaller key. Inside one agency meetings go first-come first-served by
(`created_at`, key); a blocked meeting does not block the ones behind it. Each tier
runs twice: first only meetings that fit their agency's own nominal quota are decided
(those that would need to borrow wait), then the ones that need to borrow, so in a
tier owners use their own quota before borrowers take it. A meeting is checked
against everything admitted before it, so within a pass admission is greedy and
monotone: a meeting that is blocked could not be added to the final plan either.

Cohorts (borrowing and reclaim). Each agency in a cohort splits its nominal
`max_concurrent_participants` N into a lendable part L = min(lending_limit, N) (all
of N when unset) and a guaranteed part G = N - L. The cohort's shared capacity is
the sum of L over its members; at each instant a member uses max(0, U - G) of it,
where U is its own booked participants. An agency may book beyond N (borrow) when,
at every instant of the window where it would be above N: its borrowing U - N stays
within `borrowing_limit` (unlimited when unset) and the cohort's use of the shared
capacity stays within the total; idle quota that the owner's own reservations need
is therefore never lent. Reclaim: a booking that stays within the agency's own N is
checked against the agency's own reservations only, never against what others
borrowed, so an owner always gets its nominal quota back for new meetings; nothing is
evicted, so the cohort may be over-committed for a while, and the pool ceiling stays
the hard stop. The meeting count limit cannot be borrowed.

Queue position. `queue_position` of a Queued meeting is its 1-based rank among all
meetings of the pool queued in this pass, in the order the pass considered them
(priority tier, fair share, created_at, key); roughly the order in which they get in
when capacity frees up (fair shares may reorder agencies by then).

Usage. `participants_in_use`, `meetings_in_use` and `borrowed_participants` are at
`now` (reservations whose window contains `now`); `borrowed_participants` is
max(0, U - N) for cohort members and 0 otherwise. `peak_booked_participants` is the
peak of booked participants over `[now, inf)`. `admitted_meetings` counts the
reservations still held (Admitted/Running ones whose end is after `now`, plus the
ones admitted by this plan) and `pending_meetings` the meetings this plan queues.
Both include this plan's decisions.

Cost. Building is O(n log n). Per meeting, with A(m) the slots (distinct endpoints)
of its agency inside its window: the agency checks and booking use a plain list (max
of a slice, in C) for agencies with up to 256 slots and a range-add/range-max segment
tree, O(log n), beyond; the pool is a segment tree, O(log n); the fair-share heap is
O(log #agencies). A cohort check is O(log n) unless the cohort is nearly full, then
O(A(m) log n); booking in a cohort is O(log n) for members without a lending limit
and O(A(m) log n) with one. See benchmarks/bench_admission.py.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from fractions import Fraction
from typing import Final, Literal

from meetscale.decide.admit.tree import FlatSeries, MaxAddTree, series

__all__ = [
    "HOLDING_PHASES",
    "PHASES",
    "REASONS",
    "AdmissionPlan",
    "AgencyQuotaView",
    "AgencyUsage",
    "Decision",
    "DecisionPhase",
    "MeetingRequest",
    "PoolCeiling",
    "decide_admission",
]

PENDING: Final = "Pending"
QUEUED: Final = "Queued"
ADMITTED: Final = "Admitted"
RUNNING: Final = "Running"
FINISHED: Final = "Finished"
CANCELLED: Final = "Cancelled"
REJECTED: Final = "Rejected"

PHASES: Final = frozenset({PENDING, QUEUED, ADMITTED, RUNNING, FINISHED, CANCELLED, REJECTED})
HOLDING_PHASES: Final = frozenset({ADMITTED, RUNNING})
CANDIDATE_PHASES: Final = frozenset({PENDING, QUEUED})

R_ADMITTED: Final = "Admitted"
R_QUOTA_EXCEEDED: Final = "QuotaExceeded"
R_POOL_FULL: Final = "PoolFull"
R_TOO_LARGE: Final = "MeetingTooLarge"
R_TOO_LONG: Final = "MeetingTooLong"
R_TOO_FAR_AHEAD: Final = "TooFarAhead"
R_START_IN_PAST: Final = "StartInPast"
R_PRIORITY_NOT_ALLOWED: Final = "PriorityNotAllowed"
R_NO_QUOTA: Final = "NoQuota"

REASONS: Final = frozenset(
    {
        R_ADMITTED,
        R_QUOTA_EXCEEDED,
        R_POOL_FULL,
        R_TOO_LARGE,
        R_TOO_LONG,
        R_TOO_FAR_AHEAD,
        R_START_IN_PAST,
        R_PRIORITY_NOT_ALLOWED,
        R_NO_QUOTA,
    }
)

DecisionPhase = Literal["Admitted", "Queued", "Rejected"]

# Only used to name priorities in messages (the values of models.PRIORITY_VALUES).
_PRIORITY_NAMES: Final = {1000: "provincial", 100: "high", 0: "normal", -100: "low"}
_US: Final = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class MeetingRequest:
    """One Meeting as admission sees it; `key` is "namespace/name"."""

    key: str
    agency: str
    start: datetime
    end: datetime
    participants: int
    priority: int
    confidential: bool
    created_at: datetime
    phase: str
    agency_priority: int = 0  # informational; the quota's priority is used

    def __post_init__(self) -> None:
        if any(t.tzinfo is None for t in (self.start, self.end, self.created_at)):
            raise ValueError(f"meeting {self.key}: start, end and created_at need a time zone")
        if self.end <= self.start:
            raise ValueError(f"meeting {self.key}: end must be after start")
        if self.participants < 1:
            raise ValueError(f"meeting {self.key}: participants must be at least 1")
        if self.phase not in PHASES:
            raise ValueError(f"meeting {self.key}: unknown phase {self.phase!r}")


@dataclass(frozen=True, slots=True)
class AgencyQuotaView:
    """One AgencyQuota; defaults are the CRD's."""

    name: str
    max_concurrent_participants: int
    max_concurrent_meetings: int
    max_meeting_participants: int
    max_meeting_duration: timedelta = timedelta(minutes=240)
    max_book_ahead: timedelta = timedelta(days=90)
    priority: int = 0
    weight: int = 1
    cohort: str | None = None
    borrowing_limit: int | None = None
    lending_limit: int | None = None
    max_priority: int = 100

    def __post_init__(self) -> None:
        if self.weight < 1:
            raise ValueError(f"quota {self.name}: weight must be at least 1")
        for name in ("max_concurrent_participants", "max_concurrent_meetings"):
            if getattr(self, name) < 0:
                raise ValueError(f"quota {self.name}: {name} must not be negative")
        for name in ("borrowing_limit", "lending_limit"):
            value = getattr(self, name)
            if value is not None and (value < 0 or self.cohort is None):
                raise ValueError(f"quota {self.name}: {name} needs a cohort and must be >= 0")

    @property
    def lendable(self) -> int:
        """The part of the nominal quota the cohort may use (L)."""
        n = self.max_concurrent_participants
        return n if self.lending_limit is None else min(self.lending_limit, n)


@dataclass(frozen=True, slots=True)
class PoolCeiling:
    """The pool's hard ceiling: `max_bridges * participants_per_bridge` participants."""

    max_bridges: int
    participants_per_bridge: int
    pre_join_margin: timedelta = timedelta(0)

    def __post_init__(self) -> None:
        if self.max_bridges < 0 or self.participants_per_bridge < 1:
            raise ValueError("pool: max_bridges >= 0 and participants_per_bridge >= 1 required")
        if self.pre_join_margin < timedelta(0):
            raise ValueError("pool: pre_join_margin must not be negative")

    @property
    def capacity(self) -> int:
        return self.max_bridges * self.participants_per_bridge

    def bridges_for(self, participants: int) -> int:
        """Whole bridges a confidential meeting of `participants` takes."""
        return -(-participants // self.participants_per_bridge)

    def units_for(self, participants: int, confidential: bool) -> int:
        """Pool-ceiling units a meeting takes."""
        if confidential:
            return self.bridges_for(participants) * self.participants_per_bridge
        return participants


@dataclass(frozen=True, slots=True)
class Decision:
    key: str
    phase: DecisionPhase
    reason: str
    message: str
    reserved_participants: int = 0
    reserved_bridges: int = 0  # whole bridges of its own (confidential meetings only)
    queue_position: int | None = None
    borrowed: int = 0  # peak participants above the agency's nominal quota


@dataclass(frozen=True, slots=True)
class AgencyUsage:
    agency: str
    participants_in_use: int
    meetings_in_use: int
    peak_booked_participants: int
    borrowed_participants: int
    admitted_meetings: int
    pending_meetings: int


@dataclass(frozen=True, slots=True)
class AdmissionPlan:
    decisions: dict[str, Decision]
    usage: dict[str, AgencyUsage]
    pool_units_in_use: int = 0
    pool_peak_booked_units: int = 0
    pool_capacity: int = 0


# --------------------------------------------------------------------------- internals


@dataclass(slots=True)
class _Item:
    req: MeetingRequest
    lo: int  # window [lo, hi) in microseconds after now, clipped at 0
    hi: int
    units: int
    created: int
    start: int
    alo: int = 0  # slot range in the agency's arrays
    ahi: int = 0
    plo: int = 0  # slot range in the pool tree
    phi: int = 0


@dataclass(slots=True)
class _Cohort:
    name: str
    capacity: int  # sum of the members' lendable parts
    coords: list[int] = field(default_factory=list)
    tree: MaxAddTree = field(default_factory=lambda: MaxAddTree([]))


@dataclass(slots=True)
class _Agency:
    name: str
    quota: AgencyQuotaView | None
    coords: list[int]
    part: MaxAddTree | FlatSeries  # booked participants per slot
    count: MaxAddTree | FlatSeries  # booked meetings per slot
    units: MaxAddTree | FlatSeries  # booked pool units per slot (for the fair share)
    cohort: _Cohort | None = None
    cslot: list[int] = field(default_factory=list)  # coords index -> cohort coords index
    held: int = 0
    admitted: int = 0
    queued: int = 0


@dataclass(frozen=True, slots=True)
class _Outcome:
    admit: bool
    defer: bool = False
    reason: str = ""
    message: str = ""
    borrowed: int = 0


_DEFER: Final = _Outcome(admit=False, defer=True)


def _name(priority: int) -> str:
    name = _PRIORITY_NAMES.get(priority)
    return f"{name} ({priority})" if name else str(priority)


def _num(value: float) -> str:
    return str(int(value)) if value == int(value) else f"{value:.2f}".rstrip("0").rstrip(".")


def _minutes(td: timedelta) -> str:
    return _num(td / timedelta(minutes=1))


def _days(td: timedelta) -> str:
    return _num(td / timedelta(days=1))


def _index_quotas(
    quotas: Mapping[str, AgencyQuotaView] | Iterable[AgencyQuotaView],
) -> dict[str, AgencyQuotaView]:
    views = list(quotas.values()) if isinstance(quotas, Mapping) else list(quotas)
    out: dict[str, AgencyQuotaView] = {}
    for view in sorted(views, key=lambda v: v.name):
        if view.name in out:
            raise ValueError(f"two quotas named {view.name}")
        out[view.name] = view
    return out


def _static_rejection(
    req: MeetingRequest,
    *,
    quota: AgencyQuotaView | None,
    pool: PoolCeiling,
    now: datetime,
    units: int,
    borrowable: int,
) -> tuple[str, str] | None:
    """Why a candidate can never be admitted, whatever else is booked; or None."""
    if quota is None:
        return R_NO_QUOTA, f"no AgencyQuota covers agency {req.agency}"
    if req.end <= now:
        return (
            R_START_IN_PAST,
            f"meeting ended at {req.end.isoformat()} before it could be admitted "
            f"(now {now.isoformat()})",
        )
    q = quota.name
    if req.priority > quota.max_priority:
        return (
            R_PRIORITY_NOT_ALLOWED,
            f"priority {_name(req.priority)} exceeds maxPriorityClass "
            f"{_name(quota.max_priority)} of quota {q}",
        )
    if req.participants > quota.max_meeting_participants:
        return (
            R_TOO_LARGE,
            f"meeting too large: participants {req.participants} exceeds "
            f"maxMeetingParticipants {quota.max_meeting_participants} of quota {q}",
        )
    if units > pool.capacity:
        return (
            R_TOO_LARGE,
            f"meeting too large: participants {req.participants} need {units} of the pool "
            f"ceiling{_conf(req, pool)}, which is {pool.capacity} "
            f"({pool.max_bridges} bridges x {pool.participants_per_bridge})",
        )
    duration = req.end - req.start
    if duration > quota.max_meeting_duration:
        return (
            R_TOO_LONG,
            f"meeting too long: duration {_minutes(duration)} minutes exceeds "
            f"maxMeetingDurationMinutes {_minutes(quota.max_meeting_duration)} of quota {q}",
        )
    ahead = req.start - now
    if ahead > quota.max_book_ahead:
        return (
            R_TOO_FAR_AHEAD,
            f"too far ahead: start {req.start.isoformat()} is {_days(ahead)} days ahead, "
            f"beyond maxBookAheadDays {_days(quota.max_book_ahead)} of quota {q}",
        )
    if quota.max_concurrent_meetings < 1:
        return (
            R_QUOTA_EXCEEDED,
            f"exceeded quota {q}: meetings requested 1, limit {quota.max_concurrent_meetings}",
        )
    nominal = quota.max_concurrent_participants
    if req.participants > nominal + borrowable:
        extra = f" + borrowable {borrowable} in cohort {quota.cohort}" if quota.cohort else ""
        return (
            R_QUOTA_EXCEEDED,
            f"exceeded quota {q}: participants requested {req.participants}, limit "
            f"{nominal}{extra}, even with nothing else booked",
        )
    return None


def _conf(req: MeetingRequest, pool: PoolCeiling) -> str:
    if not req.confidential:
        return ""
    bridges = pool.bridges_for(req.participants)
    return f" (confidential: {bridges} whole bridge{'' if bridges == 1 else 's'})"


def _build_agency(
    name: str, quota: AgencyQuotaView | None, items: list[_Item], holders: list[_Item]
) -> _Agency:
    coords = sorted({t for it in items for t in (it.lo, it.hi)})
    index = {t: i for i, t in enumerate(coords)}
    slots = max(0, len(coords) - 1)
    dpart = [0] * (slots + 1)
    dcount = [0] * (slots + 1)
    dunits = [0] * (slots + 1)
    for it in items:
        it.alo = index[it.lo]
        it.ahi = index[it.hi]
    for it in holders:
        dpart[it.alo] += it.req.participants
        dpart[it.ahi] -= it.req.participants
        dcount[it.alo] += 1
        dcount[it.ahi] -= 1
        dunits[it.alo] += it.units
        dunits[it.ahi] -= it.units
    return _Agency(
        name=name,
        quota=quota,
        coords=coords,
        part=series(_prefix(dpart, slots)),
        count=series(_prefix(dcount, slots)),
        units=series(_prefix(dunits, slots)),
        held=len(holders),
    )


def _prefix(diff: list[int], slots: int) -> list[int]:
    out = [0] * slots
    acc = 0
    for i in range(slots):
        acc += diff[i]
        out[i] = acc
    return out


class _Pass:
    """The state of one admission pass."""

    def __init__(self, pool: PoolCeiling, now: datetime) -> None:
        self.pool = pool
        self.now = now
        self.cap = pool.capacity
        self.pool_tree = MaxAddTree([])
        self.agencies: dict[str, _Agency] = {}
        self.decisions: dict[str, Decision] = {}
        self.queued: list[str] = []

    # -- checks ---------------------------------------------------------------------

    def evaluate(self, it: _Item, allow_borrow: bool) -> _Outcome:
        ag = self.agencies[it.req.agency]
        quota = ag.quota
        assert quota is not None
        alo, ahi = it.alo, it.ahi
        q = quota.name
        booked_meetings = ag.count.max(alo, ahi)
        if booked_meetings + 1 > quota.max_concurrent_meetings:
            return _Outcome(
                admit=False,
                reason=R_QUOTA_EXCEEDED,
                message=f"exceeded quota {q}: meetings requested 1, booked {booked_meetings}, "
                f"limit {quota.max_concurrent_meetings}",
            )
        r = it.req.participants
        booked = ag.part.max(alo, ahi)
        nominal = quota.max_concurrent_participants
        borrowed = 0
        if booked + r > nominal:
            head = (
                f"exceeded quota {q}: participants requested {r}, booked {booked}, limit {nominal}"
            )
            cohort = ag.cohort
            if cohort is None:
                return _Outcome(admit=False, reason=R_QUOTA_EXCEEDED, message=head)
            if not allow_borrow:
                return _DEFER
            need = booked + r - nominal
            limit = quota.borrowing_limit
            if limit is not None and need > limit:
                return _Outcome(
                    admit=False,
                    reason=R_QUOTA_EXCEEDED,
                    message=f"{head} + borrowingLimit {limit} in cohort {cohort.name}",
                )
            short = self._cohort_shortfall(ag, cohort, it)
            if short is not None:
                at, avail, needed = short
                when = (self.now + timedelta(microseconds=at)).isoformat()
                return _Outcome(
                    admit=False,
                    reason=R_QUOTA_EXCEEDED,
                    message=f"{head}; cohort {cohort.name} can lend {avail} more at {when}, "
                    f"{needed} needed",
                )
            borrowed = min(r, need)
        used = self.pool_tree.max(it.plo, it.phi)
        if used + it.units > self.cap:
            return _Outcome(
                admit=False,
                reason=R_POOL_FULL,
                message=f"pool full: participants requested {it.units}"
                f"{_conf(it.req, self.pool)}, booked {used}, limit {self.cap}",
            )
        extra = f", borrowing {borrowed} in cohort {ag.cohort.name}" if ag.cohort else ""
        return _Outcome(
            admit=True,
            reason=R_ADMITTED,
            message=f"admitted in quota {q}: participants {r}, booked {booked + r} of limit "
            f"{nominal}{extra if borrowed else ''}; pool {used + it.units} of {self.cap}",
            borrowed=borrowed,
        )

    def _cohort_shortfall(
        self, ag: _Agency, cohort: _Cohort, it: _Item
    ) -> tuple[int, int, int] | None:
        """(time, available, needed) where borrowing for `it` overflows its cohort; or None."""
        quota = ag.quota
        assert quota is not None
        r = it.req.participants
        total = cohort.capacity
        tree = cohort.tree
        cslot = ag.cslot
        if tree.max(cslot[it.alo], cslot[it.ahi]) + r <= total:
            return None  # fast path: even the whole request fits everywhere
        nominal = quota.max_concurrent_participants
        guaranteed = nominal - quota.lendable
        for j, u in enumerate(ag.part.slice(it.alo, it.ahi), start=it.alo):
            if u + r <= nominal:
                continue  # not borrowing here: the agency's own quota (reclaim)
            needed = min(r, u + r - guaranteed)
            used = tree.max(cslot[j], cslot[j + 1])
            if used + needed > total:
                return ag.coords[j], max(0, total - used), needed
        return None

    # -- booking --------------------------------------------------------------------

    def book(self, it: _Item) -> None:
        ag = self.agencies[it.req.agency]
        alo, ahi = it.alo, it.ahi
        r = it.req.participants
        cohort = ag.cohort
        if cohort is not None:
            assert ag.quota is not None
            guaranteed = ag.quota.max_concurrent_participants - ag.quota.lendable
            cslot = ag.cslot
            if guaranteed == 0:
                # Nothing guaranteed: every participant uses the cohort's capacity.
                cohort.tree.add(cslot[alo], cslot[ahi], r)
            else:
                run_lo = alo
                run_delta = -1
                for j, u in enumerate(ag.part.slice(alo, ahi), start=alo):
                    delta = max(0, u + r - guaranteed) - max(0, u - guaranteed)
                    if delta != run_delta:
                        if run_delta > 0:
                            cohort.tree.add(cslot[run_lo], cslot[j], run_delta)
                        run_lo = j
                        run_delta = delta
                if run_delta > 0:
                    cohort.tree.add(cslot[run_lo], cslot[ahi], run_delta)
        ag.part.add(alo, ahi, r)
        ag.count.add(alo, ahi, 1)
        ag.units.add(alo, ahi, it.units)
        self.pool_tree.add(it.plo, it.phi, it.units)

    # -- ordering -------------------------------------------------------------------

    def share(self, it: _Item) -> Fraction:
        ag = self.agencies[it.req.agency]
        assert ag.quota is not None
        return Fraction(ag.units.max(it.alo, it.ahi), ag.quota.weight)

    def run_phase(self, items: list[_Item], allow_borrow: bool) -> list[_Item]:
        """Decide `items` (one tier) in fair-share order; return those that wait to borrow."""
        queues: dict[str, list[_Item]] = {}
        for it in items:
            queues.setdefault(it.req.agency, []).append(it)
        heap: list[tuple[Fraction, int, str, str, int]] = []
        for agency, queue in queues.items():
            queue.sort(key=lambda x: (x.created, x.req.key))
            first = queue[0]
            heap.append((self.share(first), first.created, first.req.key, agency, 0))
        heapq.heapify(heap)
        deferred: list[_Item] = []
        while heap:
            _, _, _, agency, index = heapq.heappop(heap)
            queue = queues[agency]
            it = queue[index]
            outcome = self.evaluate(it, allow_borrow)
            if outcome.defer:
                deferred.append(it)
            elif outcome.admit:
                self.book(it)
                self._admit(it, outcome)
            else:
                self._block(it, outcome)
            if index + 1 < len(queue):
                nxt = queue[index + 1]
                heapq.heappush(heap, (self.share(nxt), nxt.created, nxt.req.key, agency, index + 1))
        return deferred

    def _admit(self, it: _Item, outcome: _Outcome) -> None:
        req = it.req
        self.agencies[req.agency].admitted += 1
        self.decisions[req.key] = Decision(
            key=req.key,
            phase="Admitted",
            reason=R_ADMITTED,
            message=outcome.message,
            reserved_participants=req.participants,
            reserved_bridges=self.pool.bridges_for(req.participants) if req.confidential else 0,
            borrowed=outcome.borrowed,
        )

    def _block(self, it: _Item, outcome: _Outcome) -> None:
        req = it.req
        if it.start > 0:
            self.agencies[req.agency].queued += 1
            self.queued.append(req.key)
            self.decisions[req.key] = Decision(
                key=req.key, phase="Queued", reason=outcome.reason, message=outcome.message
            )
        else:
            self.decisions[req.key] = Decision(
                key=req.key,
                phase="Rejected",
                reason=outcome.reason,
                message=f"{outcome.message}; start {req.start.isoformat()} has passed, "
                "so it cannot wait in the queue",
            )

    # -- results --------------------------------------------------------------------

    def usage(self) -> dict[str, AgencyUsage]:
        out: dict[str, AgencyUsage] = {}
        for name in sorted(self.agencies):
            ag = self.agencies[name]
            slots = len(ag.part)
            at_now = slots > 0 and ag.coords[0] == 0
            in_use = ag.part.max(0, 1) if at_now else 0
            borrowed = 0
            if ag.cohort is not None and ag.quota is not None:
                borrowed = max(0, in_use - ag.quota.max_concurrent_participants)
            out[name] = AgencyUsage(
                agency=name,
                participants_in_use=in_use,
                meetings_in_use=ag.count.max(0, 1) if at_now else 0,
                peak_booked_participants=ag.part.max(0, slots) if slots else 0,
                borrowed_participants=borrowed,
                admitted_meetings=ag.held + ag.admitted,
                pending_meetings=ag.queued,
            )
        return out


def decide_admission(
    meetings: Iterable[MeetingRequest],
    quotas: Mapping[str, AgencyQuotaView] | Iterable[AgencyQuotaView],
    pool: PoolCeiling,
    now: datetime,
) -> AdmissionPlan:
    """Admit, queue or reject every Pending/Queued meeting; see the module docstring."""
    if now.tzinfo is None:
        raise ValueError("now needs a time zone")
    qmap = _index_quotas(quotas)
    reqs = sorted(meetings, key=lambda m: m.key)
    for a, b in itertools.pairwise(reqs):
        if a.key == b.key:
            raise ValueError(f"meeting {a.key} listed twice")
    state = _Pass(pool, now)
    margin = pool.pre_join_margin // _US

    # What each cohort member could borrow at most (for "can never fit").
    cohort_capacity: dict[str, int] = {}
    for view in qmap.values():
        if view.cohort is not None:
            cohort_capacity[view.cohort] = cohort_capacity.get(view.cohort, 0) + view.lendable

    holders: dict[str, list[_Item]] = {}
    items: dict[str, list[_Item]] = {}
    candidates: list[_Item] = []
    for req in reqs:
        if req.phase not in HOLDING_PHASES and req.phase not in CANDIDATE_PHASES:
            continue
        hi = (req.end - now) // _US
        lo = max(0, (req.start - now) // _US - margin)
        units = pool.units_for(req.participants, req.confidential)
        it = _Item(req, lo, hi, units, (req.created_at - now) // _US, (req.start - now) // _US)
        if req.phase in HOLDING_PHASES:
            if hi > lo:
                holders.setdefault(req.agency, []).append(it)
                items.setdefault(req.agency, []).append(it)
            continue
        quota = qmap.get(req.agency)
        borrowable = 0
        if quota is not None and quota.cohort is not None:
            others = cohort_capacity[quota.cohort] - quota.lendable
            limit = quota.borrowing_limit
            borrowable = others if limit is None else min(limit, others)
        rejection = _static_rejection(
            req, quota=quota, pool=pool, now=now, units=units, borrowable=borrowable
        )
        if rejection is not None:
            reason, message = rejection
            state.decisions[req.key] = Decision(
                key=req.key, phase="Rejected", reason=reason, message=message
            )
            continue
        candidates.append(it)
        items.setdefault(req.agency, []).append(it)

    # Per-agency arrays (every agency with a quota or a reservation).
    for name in sorted(set(qmap) | set(items)):
        state.agencies[name] = _build_agency(
            name, qmap.get(name), items.get(name, []), holders.get(name, [])
        )

    # Pool tree.
    every = [it for name in sorted(items) for it in items[name]]
    pcoords = sorted({t for it in every for t in (it.lo, it.hi)})
    pindex = {t: i for i, t in enumerate(pcoords)}
    pdiff = [0] * max(1, len(pcoords))
    for it in every:
        it.plo = pindex[it.lo]
        it.phi = pindex[it.hi]
    for name in sorted(holders):
        for it in holders[name]:
            pdiff[it.plo] += it.units
            pdiff[it.phi] -= it.units
    state.pool_tree = MaxAddTree(_prefix(pdiff, max(0, len(pcoords) - 1)))

    # Cohort trees: the members' use of the shared capacity, max(0, U - G) per slot.
    for cname in sorted(cohort_capacity):
        members = [
            ag
            for ag in state.agencies.values()
            if ag.quota is not None and ag.quota.cohort == cname
        ]
        cohort = _Cohort(cname, cohort_capacity[cname])
        cohort.coords = sorted({t for ag in members for t in ag.coords})
        cindex = {t: i for i, t in enumerate(cohort.coords)}
        cdiff = [0] * max(1, len(cohort.coords))
        for ag in members:
            assert ag.quota is not None
            ag.cohort = cohort
            ag.cslot = [cindex[t] for t in ag.coords]
            guaranteed = ag.quota.max_concurrent_participants - ag.quota.lendable
            for j, u in enumerate(ag.part.values()):
                over = u - guaranteed
                if over > 0:
                    cdiff[ag.cslot[j]] += over
                    cdiff[ag.cslot[j + 1]] -= over
        cohort.tree = MaxAddTree(_prefix(cdiff, max(0, len(cohort.coords) - 1)))

    # Tiers: meeting priority, then agency priority, both higher first.
    tiers: dict[tuple[int, int], list[_Item]] = {}
    for it in candidates:
        tier = (-it.req.priority, -qmap[it.req.agency].priority)
        tiers.setdefault(tier, []).append(it)
    for tier in sorted(tiers):
        deferred = state.run_phase(tiers[tier], allow_borrow=False)
        if deferred:
            state.run_phase(deferred, allow_borrow=True)

    for position, key in enumerate(state.queued, start=1):
        d = state.decisions[key]
        state.decisions[key] = Decision(
            key=d.key, phase=d.phase, reason=d.reason, message=d.message, queue_position=position
        )

    pool_values = state.pool_tree.values()
    in_use = pool_values[0] if pcoords and pcoords[0] == 0 and pool_values else 0
    return AdmissionPlan(
        decisions={k: state.decisions[k] for k in sorted(state.decisions)},
        usage=state.usage(),
        pool_units_in_use=in_use,
        pool_peak_booked_units=max(pool_values, default=0),
        pool_capacity=pool.capacity,
    )
