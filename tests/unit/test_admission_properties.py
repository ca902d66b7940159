"""Property tests of the admission core, checked against a brute-force model.

The model below recomputes concurrency by brute force (summing every reservation that
contains an instant, at every instant where some reservation starts) instead of the
core's sweep arrays and segment trees.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from unittest import mock

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meetscale.decide.admit import (
    AdmissionPlan,
    AgencyQuotaView,
    MeetingRequest,
    PoolCeiling,
    Reason,
    decide_admission,
)
from meetscale.decide.admit import tree as admission_tree
from meetscale.decide.admit.tree import MaxAddTree

ICT = timezone(timedelta(hours=7))
NOW = datetime(2025, 3, 10, 8, 0, tzinfo=ICT)
AGENCIES = ("a", "b", "c", "d")
CANDIDATE = ("Pending", "Queued")
HOLDING = ("Admitted", "Running")
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ----------------------------------------------------------------------------- strategies


@st.composite
def quotas_st(draw: st.DrawFn, cohorts: bool = True) -> list[AgencyQuotaView]:
    out = []
    for name in AGENCIES[: draw(st.integers(1, len(AGENCIES)))]:
        cohort = draw(st.sampled_from([None, "k", "k"])) if cohorts else None
        out.append(
            AgencyQuotaView(
                name=name,
                max_concurrent_participants=draw(st.integers(0, 300)),
                max_concurrent_meetings=draw(st.integers(0, 5)),
                max_meeting_participants=draw(st.integers(1, 300)),
                max_meeting_duration=timedelta(minutes=draw(st.sampled_from([60, 120, 300]))),
                max_book_ahead=timedelta(days=draw(st.sampled_from([0, 1, 2]))),
                priority=draw(st.integers(0, 2)),
                weight=draw(st.integers(1, 3)),
                cohort=cohort,
                borrowing_limit=draw(st.none() | st.integers(0, 200)) if cohort else None,
                lending_limit=draw(st.none() | st.integers(0, 200)) if cohort else None,
                max_priority=draw(st.sampled_from([0, 100, 1000, 1000])),
            )
        )
    return out


pools_st = st.builds(
    PoolCeiling,
    max_bridges=st.integers(0, 8),
    participants_per_bridge=st.sampled_from([10, 25, 100]),
    pre_join_margin=st.sampled_from([timedelta(0), timedelta(minutes=10)]),
)


@st.composite
def meetings_st(
    draw: st.DrawFn, phases: Sequence[str] = CANDIDATE, prefix: str = "m", max_size: int = 25
) -> list[MeetingRequest]:
    out = []
    for i in range(draw(st.integers(0, max_size))):
        agency = draw(st.sampled_from((*AGENCIES, "nobody")))
        start = NOW + timedelta(minutes=15 * draw(st.integers(-8, 24)))
        out.append(
            MeetingRequest(
                key=f"{agency}/{prefix}{i}",
                agency=agency,
                start=start,
                end=start + timedelta(minutes=draw(st.sampled_from([15, 30, 60, 120, 300]))),
                participants=draw(st.integers(1, 200)),
                priority=draw(st.sampled_from([-100, 0, 100, 1000])),
                confidential=draw(st.booleans()),
                created_at=NOW - timedelta(minutes=draw(st.integers(0, 1000))),
                phase=draw(st.sampled_from(phases)),
            )
        )
    return out


# ------------------------------------------------------------------------- brute-force model


@dataclass(frozen=True)
class Res:
    agency: str
    lo: datetime
    hi: datetime
    participants: int
    units: int


def res_of(m: MeetingRequest, pool: PoolCeiling, now: datetime) -> Res | None:
    lo = max(m.start - pool.pre_join_margin, now)
    if m.end <= lo:
        return None
    units = m.participants
    if m.confidential:
        ppb = pool.participants_per_bridge
        units = -(-m.participants // ppb) * ppb
    return Res(m.agency, lo, m.end, m.participants, units)


def reservations(
    meetings: Sequence[MeetingRequest], plan: AdmissionPlan, pool: PoolCeiling, now: datetime
) -> list[Res]:
    out = []
    for m in meetings:
        decision = plan.decisions.get(m.key)
        holds = m.phase in HOLDING or (decision is not None and decision.phase == "Admitted")
        r = res_of(m, pool, now)
        if holds and r is not None:
            out.append(r)
    return out


@dataclass
class Load:
    participants: dict[str, int]
    meetings: dict[str, int]
    units: int


def load_at(t: datetime, res: Sequence[Res]) -> Load:
    load = Load({}, {}, 0)
    for r in res:
        if r.lo <= t < r.hi:
            load.participants[r.agency] = load.participants.get(r.agency, 0) + r.participants
            load.meetings[r.agency] = load.meetings.get(r.agency, 0) + 1
            load.units += r.units
    return load


def cohort_use(load: Load, members: Sequence[AgencyQuotaView]) -> int:
    """Use of the cohort's shared capacity: sum of max(0, U - guaranteed)."""
    return sum(max(0, load.participants.get(q.name, 0) - guaranteed(q)) for q in members)


def guaranteed(q: AgencyQuotaView) -> int:
    return q.max_concurrent_participants - q.lendable


def would_violate(
    x: MeetingRequest,
    res: Sequence[Res],
    quotas: dict[str, AgencyQuotaView],
    pool: PoolCeiling,
    now: datetime,
) -> bool:
    """Whether adding x to the reservations breaks a limit at some instant of its window."""
    rx = res_of(x, pool, now)
    assert rx is not None
    q = quotas[x.agency]
    members = [m for m in quotas.values() if q.cohort is not None and m.cohort == q.cohort]
    capacity = sum(m.lendable for m in members)
    points = {rx.lo} | {r.lo for r in res if rx.lo <= r.lo < rx.hi}
    for t in points:
        load = load_at(t, res)
        if load.meetings.get(x.agency, 0) + 1 > q.max_concurrent_meetings:
            return True
        if load.units + rx.units > pool.capacity:
            return True
        u = load.participants.get(x.agency, 0)
        n = q.max_concurrent_participants
        if u + x.participants <= n:
            continue
        if q.cohort is None:
            return True
        if q.borrowing_limit is not None and u + x.participants - n > q.borrowing_limit:
            return True
        g = guaranteed(q)
        delta = max(0, u + x.participants - g) - max(0, u - g)
        if cohort_use(load, members) + delta > capacity:
            return True
    return False


def check_limits(res: Sequence[Res], quotas: dict[str, AgencyQuotaView], pool: PoolCeiling) -> None:
    for t in {r.lo for r in res}:
        load = load_at(t, res)
        assert load.units <= pool.capacity
        for agency, used in load.participants.items():
            q = quotas[agency]
            assert load.meetings[agency] <= q.max_concurrent_meetings
            if q.cohort is None:
                assert used <= q.max_concurrent_participants
            elif q.borrowing_limit is not None:
                assert used - q.max_concurrent_participants <= q.borrowing_limit


def apply(meetings: Sequence[MeetingRequest], plan: AdmissionPlan) -> list[MeetingRequest]:
    return [
        replace(m, phase=plan.decisions[m.key].phase) if m.key in plan.decisions else m
        for m in meetings
    ]


def within(inner: Res, outer: Res) -> bool:
    return outer.lo <= inner.lo and inner.hi <= outer.hi


# ----------------------------------------------------------------------------- properties


@SETTINGS
@given(quotas_st(), pools_st, meetings_st(), meetings_st(prefix="n"))
def test_usage_never_exceeds_a_limit(
    quotas: list[AgencyQuotaView],
    pool: PoolCeiling,
    first: list[MeetingRequest],
    second: list[MeetingRequest],
) -> None:
    qmap = {q.name: q for q in quotas}
    plan = decide_admission(first, quotas, pool, NOW)
    check_limits(reservations(first, plan, pool, NOW), qmap, pool)
    # A second pass with the first one's admissions held and more requests.
    meetings = apply(first, plan) + second
    plan2 = decide_admission(meetings, quotas, pool, NOW)
    check_limits(reservations(meetings, plan2, pool, NOW), qmap, pool)


@SETTINGS
@given(quotas_st(), pools_st, meetings_st(phases=(*CANDIDATE, *CANDIDATE, *HOLDING, "Finished")))
def test_every_blocked_meeting_really_does_not_fit(
    quotas: list[AgencyQuotaView], pool: PoolCeiling, meetings: list[MeetingRequest]
) -> None:
    """Soundness of QuotaExceeded/PoolFull: adding the meeting to the plan breaks a limit."""
    qmap = {q.name: q for q in quotas}
    plan = decide_admission(meetings, quotas, pool, NOW)
    res = reservations(meetings, plan, pool, NOW)
    by_key = {m.key: m for m in meetings}
    for key, d in plan.decisions.items():
        assert d.reason in set(Reason)
        assert (d.queue_position is not None) == (d.phase == "Queued")
        if d.reason in ("QuotaExceeded", "PoolFull"):
            # Queued only while it has not started (a meeting that cannot fit even alone
            # is rejected at once).
            assert d.phase != "Queued" or by_key[key].start > NOW
            assert d.phase in ("Queued", "Rejected")
            assert would_violate(by_key[key], res, qmap, pool, NOW), d.message
        if d.phase == "Admitted":
            assert d.reserved_participants == by_key[key].participants


@SETTINGS
@given(quotas_st(), pools_st, meetings_st(phases=(*CANDIDATE, *HOLDING)))
def test_higher_priority_never_blocked_while_a_lower_one_that_is_no_easier_gets_in(
    quotas: list[AgencyQuotaView], pool: PoolCeiling, meetings: list[MeetingRequest]
) -> None:
    """H outranks L, H's window lies inside L's and H asks no more: H blocked => L blocked.

    Same agency: any blocking reason. Different agencies: when H was stopped by the pool.
    """
    qmap = {q.name: q for q in quotas}
    plan = decide_admission(meetings, quotas, pool, NOW)
    blocked = ("QuotaExceeded", "PoolFull")
    items = []
    for m in meetings:
        d = plan.decisions.get(m.key)
        r = res_of(m, pool, NOW)
        if d is not None and r is not None and m.agency in qmap:
            items.append((m, d, r))
    for hm, hd, hr in items:
        if hd.reason not in blocked:
            continue
        for lm, ld, lr in items:
            if ld.phase != "Admitted" or not within(hr, lr):
                continue
            if hm.participants > lm.participants or hr.units > lr.units:
                continue
            h_tier = (hm.priority, qmap[hm.agency].priority)
            l_tier = (lm.priority, qmap[lm.agency].priority)
            if hm.agency == lm.agency:
                outranks = hm.priority > lm.priority or (
                    hm.priority == lm.priority and (hm.created_at, hm.key) < (lm.created_at, lm.key)
                )
            else:
                outranks = h_tier > l_tier and hd.reason == "PoolFull"
            assert not outranks, (hm.key, hd.message, lm.key, ld.message)


@SETTINGS
@given(
    quotas_st(),
    pools_st,
    meetings_st(phases=(*CANDIDATE, *HOLDING, "Finished", "Cancelled", "Rejected")),
    st.randoms(use_true_random=False),
)
def test_result_does_not_depend_on_input_order(
    quotas: list[AgencyQuotaView],
    pool: PoolCeiling,
    meetings: list[MeetingRequest],
    rnd: random.Random,
) -> None:
    plan = decide_admission(meetings, quotas, pool, NOW)
    shuffled_meetings = list(meetings)
    shuffled_quotas = list(quotas)
    rnd.shuffle(shuffled_meetings)
    rnd.shuffle(shuffled_quotas)
    assert decide_admission(shuffled_meetings, shuffled_quotas, pool, NOW) == plan


@SETTINGS
@given(quotas_st(), pools_st, meetings_st(phases=(*CANDIDATE, *HOLDING)), st.integers(0, 90))
def test_admitted_stay_admitted_and_reevaluation_is_stable(
    quotas: list[AgencyQuotaView],
    pool: PoolCeiling,
    meetings: list[MeetingRequest],
    later_minutes: int,
) -> None:
    plan = decide_admission(meetings, quotas, pool, NOW)
    applied = apply(meetings, plan)
    again = decide_admission(applied, quotas, pool, NOW)
    # Admitted ones are held (never re-decided), nothing new gets in, the queue stays.
    assert set(again.decisions) == {k for k, d in plan.decisions.items() if d.phase == "Queued"}
    assert all(d.phase == "Queued" for d in again.decisions.values())
    assert again.usage == plan.usage
    # Later, nothing that was admitted is re-decided either.
    later = decide_admission(applied, quotas, pool, NOW + timedelta(minutes=later_minutes))
    admitted = {k for k, d in plan.decisions.items() if d.phase == "Admitted"}
    assert admitted.isdisjoint(later.decisions)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.integers(-5, 50), min_size=1, max_size=40),
    st.lists(
        st.tuples(st.booleans(), st.integers(0, 39), st.integers(0, 40), st.integers(0, 20)),
        max_size=60,
    ),
)
def test_max_add_tree_matches_a_list(
    initial: list[int], ops: list[tuple[bool, int, int, int]]
) -> None:
    tree = MaxAddTree(initial)
    model = list(initial)
    n = len(model)
    for is_add, a, b, value in ops:
        lo, hi = sorted((a % n, b % (n + 1)))
        if is_add:
            tree.add(lo, hi, value)
            for i in range(lo, hi):
                model[i] += value
        elif lo < hi:
            assert tree.max(lo, hi) == max(model[lo:hi])
            assert tree.slice(lo, hi) == model[lo:hi]
    assert tree.values() == model


@settings(max_examples=100, deadline=None)
@given(quotas_st(), pools_st, meetings_st(phases=(*CANDIDATE, *HOLDING)))
def test_tree_and_list_series_give_the_same_plan(
    quotas: list[AgencyQuotaView], pool: PoolCeiling, meetings: list[MeetingRequest]
) -> None:
    """Large agencies use segment trees, small ones lists: both must decide alike."""
    plan = decide_admission(meetings, quotas, pool, NOW)
    with mock.patch.object(admission_tree, "FLAT_MAX_SLOTS", 0):
        assert decide_admission(meetings, quotas, pool, NOW) == plan
