"""At the door (production parameters): a short-notice Meeting the admission plan admits
is Queued `PoolFull` when Jicofo's placement of it would overflow the pool; everything
else the plan decided stands."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import pytest

from meetscale.decide.admit import AdmissionPlan, Decision, MeetingRequest, Reason
from meetscale.decide.door import PoolNow, at_the_door, earliest_fit
from meetscale.decide.scale import BookedMeeting, BridgeState
from meetscale.models import Phase
from tests.unit.scalekit import NOW, POOL, br, meeting


def req(
    key: str,
    participants: int,
    start_min: float,
    *,
    created_min: float = 0,
    phase: Phase = Phase.PENDING,
    duration_min: float = 60,
) -> MeetingRequest:
    start = NOW + timedelta(minutes=start_min)
    return MeetingRequest(
        key=key,
        agency="a",
        start=start,
        end=start + timedelta(minutes=duration_min),
        participants=participants,
        priority=0,
        confidential=False,
        created_at=NOW + timedelta(minutes=created_min),
        phase=phase,
    )


def admitted(reqs: list[MeetingRequest]) -> AdmissionPlan:
    return AdmissionPlan(
        decisions={r.key: Decision(r.key, Phase.ADMITTED, Reason.ADMITTED, "") for r in reqs},
        usage={},
    )


def full(n: int, endpoints: int = 290) -> list[BridgeState]:
    return [br(f"x{i}", 0.9, endpoints) for i in range(n)]


@dataclass(frozen=True)
class DoorCase:
    requests: list[MeetingRequest]
    bridges: list[BridgeState]
    queued: set[str]  # the keys the door turns away
    booked: list[BookedMeeting] = field(default_factory=list)
    max_bridges: int = 10


DOOR_CASES = {
    "fits-on-a-ready-bridge": DoorCase([req("adhoc", 50, 0)], [br("x", 0.3, 100)], set()),
    # opening now, nothing is up: Jicofo has no bridge for it until one starts
    "no-bridge-up-yet": DoorCase([req("adhoc", 50, 0)], [], {"adhoc"}),
    "a-starting-bridge-does-not-count": DoorCase(
        [req("adhoc", 50, 0)], [br("x", None, 0, ready=False, age_min=0.5)], {"adhoc"}
    ),
    "overflows-the-only-bridge": DoorCase([req("adhoc", 100, 0)], full(1, 280), {"adhoc"}),
    # opening in 5 min (longer than a bridge's start-up): the pool can still grow
    "late-booking-the-pool-can-grow-for": DoorCase([req("late", 200, 5)], full(3), set()),
    "late-booking-beyond-max-bridges": DoorCase([req("late", 200, 5)], full(10), {"late"}),
    "booked-ahead-never-turned-away": DoorCase(
        [req("ahead", 200, 5, created_min=-24 * 60)], full(10), set()
    ),
    "holding-never-taken-back": DoorCase(
        [req("held", 100, -5, created_min=-5, phase=Phase.ADMITTED)], full(1, 280), set()
    ),
    # two ad-hoc meetings, room for one: the first created goes in
    "first-come-first-in": DoorCase(
        [req("second", 80, 0, created_min=-1), req("first", 80, 0, created_min=-2)],
        [br("x", 0.5, 150)],
        {"second"},
    ),
    # the scaling pass already counts a meeting waiting at the door: not twice
    "waiting-not-counted-twice": DoorCase(
        [req("waiting", 80, 0, created_min=-3, phase=Phase.QUEUED)],
        [br("x", 0.5, 150)],
        set(),
        booked=[meeting("waiting", 80, 0)],
    ),
    "room-taken-by-a-booked-meeting-opening": DoorCase(
        [req("adhoc", 80, 0)], [br("x", 0.5, 150)], {"adhoc"}, booked=[meeting("b", 100, 1)]
    ),
}


@pytest.mark.parametrize("case", list(DOOR_CASES.values()), ids=list(DOOR_CASES))
def test_at_the_door(case: DoorCase) -> None:
    pool = PoolNow(POOL.evolve(max_bridges=case.max_bridges), case.bridges, case.booked)
    plan = at_the_door(admitted(case.requests), case.requests, pool, NOW)
    queued = {k for k, d in plan.decisions.items() if d.phase == Phase.QUEUED}
    assert queued == case.queued
    for key in queued:
        assert plan.decisions[key].reason == Reason.POOL_FULL
        assert "the pool is full" in plan.decisions[key].message


def test_no_view_of_the_pool_changes_nothing() -> None:
    reqs = [req("adhoc", 50, 0)]
    plan = admitted(reqs)
    assert at_the_door(plan, reqs, None, NOW) is plan


def test_queued_message_says_which_limit_and_when_it_would_fit() -> None:
    reqs = [req("adhoc", 50, 0)]
    plan = at_the_door(admitted(reqs), reqs, PoolNow(POOL, [], []), NOW)
    message = plan.decisions["adhoc"].message
    assert "would overflow the bridges that are up (a new one takes 120s to start)" in message
    assert f"it would fit from {(NOW + timedelta(minutes=5)).isoformat()}" in message

    reqs = [req("late", 200, 5)]
    plan = at_the_door(admitted(reqs), reqs, PoolNow(POOL, full(10), []), NOW)
    assert "even at maxBridges 10" in plan.decisions["late"].message


def test_earliest_fit_after_the_booked_meetings_end() -> None:
    # ten bridges full with meetings ending at +30: a 200 fits once they are gone
    bridges = [br(f"x{i}", 0.9, 290, by_meeting={f"m{i}": 290}) for i in range(10)]
    booked = [meeting(f"m{i}", 290, -30, 60, running=True, observed=290) for i in range(10)]
    when = earliest_fit(PoolNow(POOL, bridges, booked), req("late", 200, 5), NOW)
    assert when is not None
    assert NOW + timedelta(minutes=30) <= when <= NOW + timedelta(minutes=60)


def test_never_fits_within_the_search() -> None:
    # larger than the whole pool at maxBridges: no time within the search fits
    pool = PoolNow(POOL.evolve(max_bridges=2), [], [])
    assert earliest_fit(pool, req("huge", 5000, 5), NOW) is None


@pytest.mark.parametrize(
    ("pinned", "queued"), [(False, set()), (True, {"late-2"})], ids=["jicofo", "pinned"]
)
def test_a_spanning_group_takes_its_bridges_out_of_the_door(pinned: bool, queued: set[str]) -> None:
    # an 800 opening in 10 min on a pool of at most 5 bridges of 300: pinned, its group takes
    # 4 of them (decide/scale/groups.py), which leaves one for two late 250s; under Jicofo's
    # placement the 800 spans with them over the five (1,300 of 1,500)
    pool = POOL.evolve(max_bridges=5, pinned=pinned)
    reqs = [req("late-1", 250, 5, created_min=-2), req("late-2", 250, 5, created_min=-1)]
    now = PoolNow(pool, [br("x", 0.0, 0)], [meeting("brief", 800, 10)])
    plan = at_the_door(admitted(reqs), reqs, now, NOW)
    assert {k for k, d in plan.decisions.items() if d.phase == Phase.QUEUED} == queued


def test_bridges_already_held_for_a_large_meeting_are_not_set_aside_twice() -> None:
    # a 450 whose first joiners may come in 5 min has its two bridges held empty already
    # (holds.reserved); an ad-hoc 50 opening now fits beside the 100 on x, the one bridge
    # left in selection
    bridges = [br("x", 0.33, 100), br("h1", 0.0, 0, held=True), br("h2", 0.0, 0, held=True)]
    pool = PoolNow(POOL.evolve(max_bridges=3), bridges, [meeting("brief", 450, 15)])
    reqs = [req("adhoc", 50, 0)]
    plan = at_the_door(admitted(reqs), reqs, pool, NOW)
    assert plan.decisions["adhoc"].phase == Phase.ADMITTED
    # not held yet, the two are set aside all the same: x with 280 has no room for 50
    bridges = [br("x", 0.93, 280), br("h1", 0.0, 0), br("h2", 0.0, 0)]
    plan = at_the_door(admitted(reqs), reqs, PoolNow(pool.params, bridges, pool.booked), NOW)
    assert plan.decisions["adhoc"].phase == Phase.QUEUED
