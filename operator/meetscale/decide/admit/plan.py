"""One admission pass: :func:`decide_admission` (see the package docstring for the rules)."""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from fractions import Fraction
from typing import Final, NamedTuple

from meetscale.decide.admit.checks import conf_note, static_rejection
from meetscale.decide.admit.tree import FlatSeries, MaxAddTree, series
from meetscale.decide.admit.types import (
    AdmissionPlan,
    AgencyQuotaView,
    AgencyUsage,
    Decision,
    MeetingRequest,
    PoolCeiling,
    Reason,
)
from meetscale.models.meeting import CANDIDATE_PHASES, HOLDING_PHASES, Phase

__all__ = ["decide_admission"]

_US: Final = timedelta(microseconds=1)


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
        q = quota.label
        booked_meetings = ag.count.max(alo, ahi)
        if booked_meetings + 1 > quota.max_concurrent_meetings:
            return _Outcome(
                admit=False,
                reason=Reason.QUOTA_EXCEEDED,
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
                return _Outcome(admit=False, reason=Reason.QUOTA_EXCEEDED, message=head)
            if not allow_borrow:
                return _DEFER
            need = booked + r - nominal
            limit = quota.borrowing_limit
            if limit is not None and need > limit:
                return _Outcome(
                    admit=False,
                    reason=Reason.QUOTA_EXCEEDED,
                    message=f"{head} + borrowingLimit {limit} in cohort {cohort.name}",
                )
            short = self._cohort_shortfall(ag, cohort, it)
            if short is not None:
                at, avail, needed = short
                when = (self.now + timedelta(microseconds=at)).isoformat()
                return _Outcome(
                    admit=False,
                    reason=Reason.QUOTA_EXCEEDED,
                    message=f"{head}; cohort {cohort.name} can lend {avail} more at {when}, "
                    f"{needed} needed",
                )
            borrowed = min(r, need)
        used = self.pool_tree.max(it.plo, it.phi)
        if used + it.units > self.cap:
            return _Outcome(
                admit=False,
                reason=Reason.POOL_FULL,
                message=f"pool full: participants requested {it.units}"
                f"{conf_note(it.req, self.pool)}, booked {used}, limit {self.cap}",
            )
        extra = f", borrowing {borrowed} in cohort {ag.cohort.name}" if ag.cohort else ""
        return _Outcome(
            admit=True,
            reason=Reason.ADMITTED,
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
            phase=Phase.ADMITTED,
            reason=Reason.ADMITTED,
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
                key=req.key, phase=Phase.QUEUED, reason=outcome.reason, message=outcome.message
            )
        else:
            self.decisions[req.key] = Decision(
                key=req.key,
                phase=Phase.REJECTED,
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
                peak_booked_meetings=ag.count.max(0, slots) if slots else 0,
                borrowed_participants=borrowed,
                admitted_meetings=ag.held + ag.admitted,
                pending_meetings=ag.queued,
            )
        return out


class _Sorted(NamedTuple):
    """The pass's meetings sorted out: reservations and candidates per agency."""

    holders: dict[str, list[_Item]]
    items: dict[str, list[_Item]]
    candidates: list[_Item]
    cohort_capacity: dict[str, int]


def _sort_out(
    state: _Pass, reqs: list[MeetingRequest], qmap: dict[str, AgencyQuotaView]
) -> _Sorted:
    """Reservations, candidates, and the candidates rejected at once (into ``state``)."""
    pool, now = state.pool, state.now
    margin = pool.pre_join_margin // _US
    # What each cohort member could borrow at most (for "can never fit").
    cohort_capacity: dict[str, int] = {}
    for view in qmap.values():
        if view.cohort is not None:
            cohort_capacity[view.cohort] = cohort_capacity.get(view.cohort, 0) + view.lendable
    out = _Sorted({}, {}, [], cohort_capacity)
    for req in reqs:
        holding = req.phase in HOLDING_PHASES
        if not holding and (req.elsewhere or req.phase not in CANDIDATE_PHASES):
            continue  # nothing held (another pool decides its own candidates)
        hi = (req.end - now) // _US
        lo = max(0, (req.start - now) // _US - margin)
        units = 0 if req.elsewhere else pool.units_for(req.participants, req.confidential)
        it = _Item(req, lo, hi, units, (req.created_at - now) // _US, (req.start - now) // _US)
        if req.phase in HOLDING_PHASES:
            if hi > lo:
                out.holders.setdefault(req.agency, []).append(it)
                out.items.setdefault(req.agency, []).append(it)
            continue
        quota = qmap.get(req.agency)
        borrowable = 0
        if quota is not None and quota.cohort is not None:
            others = cohort_capacity[quota.cohort] - quota.lendable
            limit = quota.borrowing_limit
            borrowable = others if limit is None else min(limit, others)
        rejection = static_rejection(
            req, quota=quota, pool=pool, now=now, units=units, borrowable=borrowable
        )
        if rejection is not None:
            state.decisions[req.key] = Decision(
                key=req.key,
                phase=Phase.REJECTED,
                reason=rejection.reason,
                message=rejection.message,
            )
            continue
        out.candidates.append(it)
        out.items.setdefault(req.agency, []).append(it)
    return out


def _build_trees(state: _Pass, qmap: dict[str, AgencyQuotaView], s: _Sorted) -> list[int]:
    """Per-agency arrays (every agency with a quota or a reservation), the pool tree and
    the cohort trees; returns the pool's coordinates."""
    for name in sorted(set(qmap) | set(s.items)):
        state.agencies[name] = _build_agency(
            name, qmap.get(name), s.items.get(name, []), s.holders.get(name, [])
        )
    every = [it for name in sorted(s.items) for it in s.items[name]]
    pcoords = sorted({t for it in every for t in (it.lo, it.hi)})
    pindex = {t: i for i, t in enumerate(pcoords)}
    pdiff = [0] * max(1, len(pcoords))
    for it in every:
        it.plo = pindex[it.lo]
        it.phi = pindex[it.hi]
    for name in sorted(s.holders):
        for it in s.holders[name]:
            pdiff[it.plo] += it.units
            pdiff[it.phi] -= it.units
    state.pool_tree = MaxAddTree(_prefix(pdiff, max(0, len(pcoords) - 1)))
    for cname in sorted(s.cohort_capacity):
        _build_cohort(state, cname, s.cohort_capacity[cname])
    return pcoords


def _build_cohort(state: _Pass, cname: str, capacity: int) -> None:
    """The members' use of the cohort's shared capacity, max(0, U - G) per slot."""
    members = [
        ag for ag in state.agencies.values() if ag.quota is not None and ag.quota.cohort == cname
    ]
    cohort = _Cohort(cname, capacity)
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


def decide_admission(
    meetings: Iterable[MeetingRequest],
    quotas: Mapping[str, AgencyQuotaView] | Iterable[AgencyQuotaView],
    pool: PoolCeiling,
    now: datetime,
) -> AdmissionPlan:
    """Admit, queue or reject every Pending/Queued meeting; see the package docstring."""
    if now.tzinfo is None:
        raise ValueError("now needs a time zone")
    qmap = _index_quotas(quotas)
    reqs = sorted(meetings, key=lambda m: m.key)
    for a, b in itertools.pairwise(reqs):
        if a.key == b.key:
            raise ValueError(f"meeting {a.key} listed twice")
    state = _Pass(pool, now)
    sorted_out = _sort_out(state, reqs, qmap)
    pcoords = _build_trees(state, qmap, sorted_out)

    # Tiers: meeting priority, then agency priority, both higher first.
    tiers: dict[tuple[int, int], list[_Item]] = {}
    for it in sorted_out.candidates:
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
