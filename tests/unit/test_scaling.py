"""decide_scale: live vs booked demand, bounds, behavior, drains and cancelled drains."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

import pytest

from meetscale.decide.scale.hpa import Recommendation, ScaleEvent, ScaleHistory
from meetscale.decide.scale.plan import (
    DECLARATION_MARGIN,
    PLACEMENT_STRESS,
    BookedMeeting,
    BridgeState,
    PoolParams,
    booked_demand,
    decide_scale,
    first_fit_decreasing,
    placement_need,
    record,
)
from meetscale.models.pool import BridgePoolSpec

NOW = datetime(2020, 4, 6, 8, 0, tzinfo=UTC)
POOL = PoolParams()  # 300 per bridge at 0.7 -> 210, 1..10 bridges, 10 min lead, HPA behavior


def meeting(
    key: str,
    participants: int,
    start_min: float,
    duration_min: float = 60,
    *,
    confidential: bool = False,
    running: bool = False,
    observed: int | None = None,
) -> BookedMeeting:
    start = NOW + timedelta(minutes=start_min)
    return BookedMeeting(
        key=key,
        start=start,
        end=start + timedelta(minutes=duration_min),
        participants=participants,
        confidential=confidential,
        running=running,
        observed_participants=observed,
    )


def br(
    name: str,
    stress: float | None,
    endpoints: int | None = None,
    *,
    ready: bool = True,
    draining: bool = False,
    age_min: float = 60,
    by_meeting: Mapping[str, int] | None = None,
    conferences: int | None = None,
    held: bool = False,
) -> BridgeState:
    return BridgeState(
        held=held,
        name=name,
        ready=ready,
        draining=draining,
        created_at=NOW - timedelta(minutes=age_min),
        stress=stress,
        endpoints=endpoints,
        conferences=conferences,
        participants_by_meeting=by_meeting,
    )


def upcoming(n: int, participants: int = 200) -> list[BookedMeeting]:
    return [meeting(f"m{i}", participants, 5) for i in range(n)]


# --------------------------------------------------------------------------- packing


@pytest.mark.parametrize(
    ("sizes", "capacity", "expected"),
    [
        ([], 210, 0),
        ([0, 0], 210, 0),
        ([120, 100, 90], 210, 2),
        ([105, 105], 210, 1),
        ([211, 10], 210, 2),
        ([70] * 9, 210, 3),
        ([60, 60, 60, 150, 150, 150], 210, 3),
        ([5] * 1000, 210, 24),
    ],
    ids=[
        "empty",
        "zero-sized",
        "first-fit",
        "exact-fill",
        "oversize-alone",
        "thirds",
        "decreasing-order-matters",
        "many-small",
    ],
)
def test_first_fit_decreasing(sizes: list[int], capacity: int, expected: int) -> None:
    assert first_fit_decreasing(sizes, capacity) == expected


@dataclass(frozen=True)
class DemandCase:
    booked: list[BookedMeeting]
    expected: tuple[int, int, int, int]  # replicas, dedicated, shared, headroom
    meetings: int
    participants: int
    bridges: list[BridgeState] = field(default_factory=list)
    adhoc_rate: float = 0.0


DEMAND_CASES = {
    "none": DemandCase([], (0, 0, 0, 0), 0, 0),
    "upcoming-within-lead": DemandCase([meeting("a", 100, 5)], (1, 0, 1, 0), 1, 100),
    "upcoming-after-lead": DemandCase([meeting("a", 100, 20)], (0, 0, 0, 0), 0, 0),
    "starts-exactly-at-lead": DemandCase([meeting("a", 100, 10)], (1, 0, 1, 0), 1, 100),
    "ended": DemandCase([meeting("a", 100, -90)], (0, 0, 0, 0), 0, 0),
    "due-but-not-running": DemandCase([meeting("a", 100, -5)], (1, 0, 1, 0), 1, 100),
    "confidential-gets-own-bridge": DemandCase(
        [meeting("c", 50, 5, confidential=True), meeting("a", 100, 5), meeting("b", 100, 5)],
        (2, 1, 1, 0),
        3,
        250,
    ),
    "large-confidential-spans": DemandCase(
        [meeting("c", 301, 5, confidential=True)], (2, 2, 0, 0), 1, 301
    ),
    "larger-than-a-bridge-spans": DemandCase([meeting("a", 700, 5)], (3, 3, 0, 0), 1, 700),
    "above-target-fills-a-bridge-alone": DemandCase(
        [meeting("a", 250, 5), meeting("b", 10, 5)], (2, 0, 2, 0), 2, 260
    ),
    "packed-first-fit-decreasing": DemandCase(
        [meeting("a", 90, 5), meeting("b", 120, 5), meeting("c", 100, 5)], (2, 0, 2, 0), 3, 310
    ),
    "exact-target-fill": DemandCase(
        [meeting("a", 105, 5), meeting("b", 105, 5)], (1, 0, 1, 0), 2, 210
    ),
    "no-shows-release-after-grace": DemandCase(
        [
            meeting("a", 200, -30, running=True, observed=20),
            meeting("b", 150, -30, running=True, observed=30),
        ],
        (1, 0, 1, 0),
        2,
        50,
    ),
    "joining-within-grace-keeps-declared": DemandCase(
        [
            meeting("a", 200, -2, running=True, observed=20),
            meeting("b", 150, -2, running=True, observed=30),
        ],
        (2, 0, 2, 0),
        2,
        350,
    ),
    "overrun-keeps-capacity": DemandCase(
        [meeting("a", 100, -90, running=True, observed=180)], (1, 0, 1, 0), 1, 180
    ),
    "observed-from-bridges": DemandCase(
        [meeting("a", 400, -30, running=True)],
        (1, 0, 1, 0),
        1,
        25,
        bridges=[br("x", 0.1, 15, by_meeting={"a": 15}), br("y", 0.1, 10, by_meeting={"a": 10})],
    ),
    "running-unobserved-uses-declared": DemandCase(
        [meeting("a", 400, -30, running=True)], (2, 2, 0, 0), 1, 400
    ),
    "confidential-emptied-after-grace": DemandCase(
        [meeting("c", 40, -30, confidential=True, running=True, observed=0)],
        (0, 0, 0, 0),
        1,
        0,
    ),
    "adhoc-rate-headroom": DemandCase([], (1, 0, 0, 1), 0, 0, adhoc_rate=21.0),
    "adhoc-rate-fraction-rounds-up": DemandCase([], (1, 0, 0, 1), 0, 0, adhoc_rate=0.1),
    "unbooked-live-participants": DemandCase(
        [], (2, 0, 0, 2), 0, 0, bridges=[br("x", 0.5, 150), br("y", 0.5, 150)]
    ),
    "booked-participants-not-counted-twice": DemandCase(
        [meeting("a", 200, -30, running=True, observed=200)],
        (2, 0, 1, 1),
        1,
        200,
        bridges=[br("x", 0.5, 150), br("y", 0.5, 150)],  # 300 on bridges, 100 unbooked
    ),
}


@pytest.mark.parametrize("case", list(DEMAND_CASES.values()), ids=list(DEMAND_CASES))
def test_booked_demand(case: DemandCase) -> None:
    demand = booked_demand(POOL, case.booked, case.bridges, NOW, case.adhoc_rate)
    assert (demand.replicas, demand.dedicated, demand.shared, demand.headroom) == case.expected
    assert (demand.meetings, demand.participants) == (case.meetings, case.participants)


def test_back_to_back_meetings_are_not_summed() -> None:
    # 84 classes of 45 end at +5, the next 84 start at +10: the peak is one period
    ends = [meeting(f"a{i}", 45, -40, 45, running=True, observed=45) for i in range(84)]
    starts = [meeting(f"b{i}", 45, 10, 45) for i in range(84)]
    pool = replace(POOL, max_bridges=40)
    one = booked_demand(pool, ends, [], NOW)
    both = booked_demand(pool, ends + starts, [], NOW)
    assert both.replicas == one.replicas == 21  # four 45s to a 210 bin
    assert both.participants == 84 * 45
    assert both.meetings == 168


def test_overlapping_meetings_are_summed_at_the_peak() -> None:
    a = meeting("a", 200, -30, 60, running=True, observed=200)  # until +30
    b = meeting("b", 200, 5)  # from +5
    assert booked_demand(POOL, [a, b], [], NOW).replicas == 2


def test_placement_aware_peak_is_the_busiest_instant() -> None:
    # now two 120s (two 210-bins, 240 people), at +5 one 290 (one bin, 290 people): packing
    # reports the two bins; the placement-aware term counts bridges by its replay and
    # reports the busiest instant, whose 290 people also floor the bridges
    booked = [
        meeting("a", 120, -30, 34, running=True, observed=120),
        meeting("b", 120, -30, 34, running=True, observed=120),
        meeting("c", 290, 5),
    ]
    packed = booked_demand(POOL, booked, [], NOW)
    placed = booked_demand(replace(POOL, placement_stress=PLACEMENT_STRESS), booked, [], NOW)
    assert (packed.participants, packed.shared) == (240, 2)
    assert (placed.participants, placed.shared, placed.replicas) == (290, 1, 1)


def test_overrunning_meeting_counts_now_only() -> None:
    late = meeting("late", 150, -70, 60, running=True, observed=150)  # ended 10 min ago
    nxt = meeting("next", 150, 5)
    d = booked_demand(POOL, [late, nxt], [br("x", 0.5, 150)], NOW)
    assert (d.replicas, d.shared, d.headroom, d.unbooked) == (1, 1, 0, 0)


# --------------------------------------------------------------------------- decide_scale


@dataclass(frozen=True)
class PlanCase:
    bridges: list[BridgeState]
    expected: tuple[int, str, str]  # desired, winner, reason
    booked: list[BookedMeeting] = field(default_factory=list)
    pool: PoolParams = POOL
    history: ScaleHistory = field(default_factory=ScaleHistory)
    metrics_ok: bool = True
    drain: list[str] = field(default_factory=list)
    cancel: list[str] = field(default_factory=list)


SIX = [
    br(f"b{i}", 0.3, n, age_min=age)
    for i, (n, age) in enumerate([(10, 60), (50, 60), (20, 60), (80, 60), (5, 60), (40, 60)])
]
SIX_B4_YOUNG = [
    replace(b, created_at=NOW - timedelta(minutes=1)) if b.name == "b4" else b for b in SIX
]
RECENT_SIX = ScaleHistory((Recommendation(NOW - timedelta(seconds=60), 6),))
OLD_SIX = ScaleHistory((Recommendation(NOW - timedelta(seconds=400), 6),))
DRAINING = [
    br("d1", 0.2, 30, draining=True),
    br("d2", 0.4, 80, draining=True),
    br("d3", None, 0, draining=True, ready=False),
]

PLAN_CASES = {
    "live-scale-up": PlanCase([br(f"b{i}", 0.9) for i in range(4)], (6, "live", "LiveLoad")),
    "live-within-tolerance": PlanCase(
        [br(f"b{i}", 0.72) for i in range(3)], (3, "live", "LiveLoad")
    ),
    "live-rate-limited": PlanCase(
        [br(f"b{i}", 1.4) for i in range(3)],
        (7, "live", "ScaleUpLimited"),  # 3 * 1.4 / 0.5 = 8.4 -> 9; default limit 3 + 4 = 7
        pool=replace(POOL, target_stress=0.5),
    ),
    "booked-wins": PlanCase(
        [br("b0", 0.35), br("b1", 0.35)], (4, "booked", "BookedDemand"), booked=upcoming(4)
    ),
    "booked-bypasses-rate-limit": PlanCase(
        [br("b0", 0.1)],
        (10, "booked", "BookedDemand"),
        booked=upcoming(10),
        pool=replace(POOL, max_bridges=20),
    ),
    "booked-above-max": PlanCase(
        [br("b0", 0.3), br("b1", 0.3)], (10, "max", "AtMaximum"), booked=upcoming(15)
    ),
    "live-above-max": PlanCase([br(f"b{i}", 1.0) for i in range(8)], (10, "max", "AtMaximum")),
    "min-bound": PlanCase(
        [br("b0", 0.05), br("b1", 0.05)], (2, "min", "AtMinimum"), pool=replace(POOL, min_bridges=2)
    ),
    "metrics-down-holds": PlanCase(
        [br(f"b{i}", 0.1, 5) for i in range(5)],
        (5, "hold", "MetricsUnavailable"),
        booked=upcoming(2),
        metrics_ok=False,
    ),
    "no-stress-reported-holds": PlanCase(
        [br(f"b{i}", None) for i in range(5)], (5, "hold", "MetricsUnavailable")
    ),
    "metrics-down-booked-grows": PlanCase(
        [br("b0", 0.9), br("b1", 0.9)],
        (4, "booked", "BookedDemand"),
        booked=upcoming(4),
        metrics_ok=False,
    ),
    "metrics-down-current-above-max": PlanCase(
        [br(f"b{i:02}", None, 0) for i in range(12)],
        (10, "max", "AtMaximum"),
        drain=["b00", "b01"],
    ),
    "no-bridges-goes-to-min": PlanCase([], (1, "min", "AtMinimum")),
    "scale-down-stabilized": PlanCase(SIX, (6, "live", "ScaleDownStabilized"), history=RECENT_SIX),
    "scale-down-drains-least-loaded": PlanCase(
        SIX, (3, "live", "LiveLoad"), history=OLD_SIX, drain=["b4", "b0", "b2"]
    ),
    "protected-bridge-blocks-busier-drains": PlanCase(
        SIX_B4_YOUNG, (3, "live", "LiveLoad"), history=OLD_SIX, drain=[]
    ),
    "cancel-drains-before-new-bridges": PlanCase(
        [br(f"b{i}", 0.95) for i in range(3)] + DRAINING,
        (5, "live", "LiveLoad"),
        cancel=["d2", "d1"],
    ),
    "cancel-only-what-is-needed": PlanCase(
        [br(f"b{i}", 0.8) for i in range(3)] + DRAINING, (4, "live", "LiveLoad"), cancel=["d2"]
    ),
    "draining-bridges-not-in-live-term": PlanCase(
        [br("b0", 0.7), br("b1", 0.7)] + [br(f"d{i}", 0.05, draining=True) for i in range(3)],
        (2, "live", "LiveLoad"),
    ),
}


@pytest.mark.parametrize("case", list(PLAN_CASES.values()), ids=list(PLAN_CASES))
def test_decide_scale(case: PlanCase) -> None:
    plan = decide_scale(
        case.pool, case.bridges, case.booked, case.history, NOW, metrics_ok=case.metrics_ok
    )
    assert (plan.desired, plan.winner, plan.reason) == case.expected
    assert plan.drain == case.drain
    assert plan.cancel_drain == case.cancel


def test_cancelled_drains_replace_new_bridges() -> None:
    plan = decide_scale(
        POOL, [br(f"b{i}", 0.95) for i in range(3)] + DRAINING, [], ScaleHistory(), NOW
    )
    assert plan.current == 3
    assert plan.new_bridges == 0
    more = decide_scale(
        POOL, [br(f"b{i}", 1.2) for i in range(3)] + DRAINING, [], ScaleHistory(), NOW
    )
    assert (more.desired, more.cancel_drain, more.new_bridges) == (6, ["d2", "d1"], 1)


def test_plan_reports_terms_conditions_and_numbers() -> None:
    bridges = [br("b0", 0.35, 20), br("b1", 0.35, 30)]
    plan = decide_scale(POOL, bridges, upcoming(15), ScaleHistory(), NOW)
    assert (plan.live_replicas, plan.booked_replicas, plan.desired) == (1, 16, 10)
    assert plan.recommendation == 16
    assert plan.conditions["ScalingActive"][:2] == (True, "ValidMetricFound")
    assert plan.conditions["ScalingLimited"][:2] == (True, "AtMaximum")
    assert plan.conditions["BookingsCovered"][:2] == (False, "BookedDemandExceedsMax")
    assert "15 booked meetings with 3000 participants need 15 bridges" in plan.message
    assert "plus 1 for 50 unbooked participants" in plan.message
    assert "mean stress 0.35 vs target 0.70 over 2 ready bridges recommends 1" in plan.message
    assert "desired 10 (min 1, max 10)" in plan.message


def test_metrics_unavailable_conditions() -> None:
    plan = decide_scale(POOL, [br("b0", None)], [], ScaleHistory(), NOW)
    assert plan.conditions["ScalingActive"][:2] == (False, "MetricsUnavailable")
    assert plan.recommendation is None
    assert "stress metrics unavailable" in plan.message


def test_stabilization_is_reported() -> None:
    plan = decide_scale(POOL, SIX, [], RECENT_SIX, NOW)
    assert plan.conditions["AbleToScale"][:2] == (True, "ScaleDownStabilized")
    assert plan.conditions["ScalingLimited"][0] is False


def test_record_adds_recommendation_and_event() -> None:
    down = decide_scale(POOL, SIX, [], OLD_SIX, NOW)
    history = record(OLD_SIX, down, NOW)
    assert history.recommendations[-1] == Recommendation(NOW, 3)
    assert history.events == (ScaleEvent(NOW, -3),)
    up = decide_scale(POOL, [br(f"b{i}", 0.9) for i in range(4)], [], ScaleHistory(), NOW)
    assert record(ScaleHistory(), up, NOW).events == (ScaleEvent(NOW, 2),)
    hold = decide_scale(POOL, [br("b0", None)], [], ScaleHistory(), NOW)
    assert record(ScaleHistory(), hold, NOW) == ScaleHistory()


def test_rate_limit_counts_recorded_events() -> None:
    # After +4 a moment ago the default policy (max of +100 % / +4 per 15 s from the
    # count 15 s ago) allows 4 + 4 = 8 now, not 8 + 8.
    history = ScaleHistory((), (ScaleEvent(NOW - timedelta(seconds=5), 4),))
    plan = decide_scale(
        replace(POOL, max_bridges=50), [br(f"b{i}", 1.4) for i in range(8)], [], history, NOW
    )
    assert (plan.live_replicas, plan.desired, plan.reason) == (16, 8, "ScaleUpLimited")


def test_pool_params_from_spec() -> None:
    spec = BridgePoolSpec(
        template={},
        participants_per_bridge=200,
        min_bridges=2,
        max_bridges=40,
        target_stress=0.6,
        lead_time_seconds=900,
        protection_seconds=120,
    )
    params = PoolParams.from_spec(spec)
    assert params.bridge_capacity == 120
    assert (params.min_bridges, params.max_bridges) == (2, 40)
    assert params.lead_time == timedelta(minutes=15)
    assert params.protection == timedelta(minutes=2)
    assert params.behavior == PoolParams().behavior


@pytest.mark.parametrize(
    ("ppb", "target", "capacity"),
    [(300, 0.7, 210), (100, 0.29, 29), (300, 0.57, 171), (10, 0.05, 1), (1, 1.0, 1)],
    ids=["default", "float-below-29", "float-below-171", "at-least-one", "one-per-bridge"],
)
def test_bridge_capacity(ppb: int, target: float, capacity: int) -> None:
    pool = PoolParams(participants_per_bridge=ppb, target_stress=target)
    assert pool.bridge_capacity == capacity


@pytest.mark.parametrize(
    "kwargs",
    [{"min_bridges": 5, "max_bridges": 4}, {"participants_per_bridge": 0}, {"target_stress": 0}],
    ids=["min-above-max", "no-capacity", "zero-target"],
)
def test_pool_params_validation(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        PoolParams(**kwargs)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- placement

PLACED = replace(POOL, placement_stress=1.0, max_bridges=20)


@dataclass(frozen=True)
class PlacementCase:
    booked: list[BookedMeeting]
    bridges: list[BridgeState]
    expected: int
    pool: PoolParams = PLACED


PLACEMENT_CASES = {
    "nothing-starts": PlacementCase([meeting("a", 200, -30, running=True)], [br("x", 0.7, 200)], 0),
    # three 200s starting together: Jicofo spreads them while they are small, but two
    # on one bridge end at 400
    "simultaneous-starts-one-bridge-each": PlacementCase(upcoming(3), [br("x", 0.0, 0)], 3),
    # the empty bridges stay the least loaded while the new conferences are small: four
    # 100s all land on them, not beside the two 150s
    "pile-up-on-empty-bridges": PlacementCase(
        [meeting(f"m{i}", 100, 5) for i in range(4)],
        [br("x", 0.5, 150), br("y", 0.5, 150)],
        4,
    ),
    # one that starts after the first has filled goes beside it when that is the least load
    "staggered-starts-share": PlacementCase(
        [meeting("a", 100, 1), meeting("b", 100, 8)], [br("x", 0.0, 0)], 1
    ),
    # the confidential one takes the empty bridge, the 100 joins the 150
    "confidential-needs-an-empty-bridge": PlacementCase(
        [meeting("c", 50, 5, confidential=True), meeting("a", 100, 5)],
        [br("x", 0.5, 150)],
        2,
    ),
    "confidential-beside-a-pile-up": PlacementCase(
        [meeting("c", 50, 5, confidential=True), meeting("a", 200, 5), meeting("b", 200, 5)],
        [br("x", 0.5, 150)],
        4,
    ),
    "larger-than-a-bridge-spans": PlacementCase([meeting("a", 500, 5)], [], 2),
    # the running meetings end at +2, but may overrun by `overrun` (10 min): still there at +8
    "overrun-keeps-the-load": PlacementCase(
        [meeting("r", 250, -58, 60, running=True), meeting("a", 200, 8)],
        [br("x", 0.83, 250)],
        2,
    ),
    "ended-releases-the-load": PlacementCase(
        [meeting("r", 250, -58, 60, running=True), meeting("a", 200, 8)],
        [br("x", 0.83, 250)],
        1,
        replace(PLACED, overrun=timedelta(0)),
    ),
    # "a" started a minute ago but the bridge shows only r's conference: Jicofo has yet
    # to place it (on the least-loaded bridge), so it still needs a bridge of its own
    "started-but-not-on-a-bridge-yet": PlacementCase(
        [meeting("r", 150, -60, 120, running=True), meeting("a", 200, -1, running=True)],
        [br("x", 0.5, 150, conferences=1)],
        2,
    ),
    "started-and-on-a-bridge": PlacementCase(
        [meeting("r", 150, -60, 120, running=True), meeting("a", 200, -1, running=True)],
        [br("x", 0.5, 150, conferences=2)],
        0,
    ),
    "started-conferences-unknown": PlacementCase(
        [meeting("r", 150, -60, 120, running=True), meeting("a", 200, -1, running=True)],
        [br("x", 0.5, 150)],
        0,
    ),
    # a second conference before a's start: a's first participants joined early, on x;
    # the rest of them join there (not placed a second time)
    "early-joiner-not-placed-twice": PlacementCase(
        [meeting("r", 150, -60, 120, running=True), meeting("a", 100, 2)],
        [br("x", 0.6, 180, conferences=2)],
        0,
    ),
    "no-early-joiner-seen": PlacementCase(
        [meeting("r", 150, -60, 120, running=True), meeting("a", 200, 2)],
        [br("x", 0.6, 180, conferences=1)],
        2,
    ),
    # a 500 grows on its first bridge to 300 before it spans two: that bridge must be empty
    "larger-than-a-bridge-opens-on-an-empty-one": PlacementCase(
        [meeting("big", 500, 5)], [br("x", 0.07, 20), br("y", 0.07, 20)], 3
    ),
    # ... and its first participants may come `early_join` (10 min) before its start
    "larger-than-a-bridge-planned-from-its-earliest-join": PlacementCase(
        [meeting("big", 500, 15)], [], 2
    ),
    "larger-than-a-bridge-no-early-join": PlacementCase(
        [meeting("big", 500, 15)], [], 0, replace(PLACED, early_join=timedelta(0))
    ),
    # more confidential meetings than the pool has bridges: the least bad is the maximum
    "cannot-fit-says-so": PlacementCase(
        [meeting(f"c{i}", 50, 5, confidential=True) for i in range(25)], [], 21
    ),
}


@pytest.mark.parametrize("case", list(PLACEMENT_CASES.values()), ids=list(PLACEMENT_CASES))
def test_placement_need(case: PlacementCase) -> None:
    assert placement_need(case.pool, case.booked, case.bridges, NOW, 300) == case.expected


@pytest.mark.parametrize(
    ("bridges", "expected"),
    [([], 1), ([br("x", 0.03, 10)], 2), ([br("x", 0.0, 0)], 1)],
    ids=["no-bridge-one-new", "beside-others-needs-an-empty-one", "an-empty-one-will-do"],
)
def test_margin_applies_to_shared_bridges_only(bridges: list[BridgeState], expected: int) -> None:
    # a 300 (a full bridge) is never within 0.9 x 300 = 270, but alone on a bridge it is
    # fine: the margin is for meetings sharing one, not a reason to ask for max + 1
    full = [meeting("full", 300, 5)]
    assert placement_need(PLACED, full, bridges, NOW, 270) == expected


MARGINED = replace(PLACED, declaration_margin=DECLARATION_MARGIN)


@pytest.mark.parametrize(
    ("booked", "bridges", "flat", "margined"),
    [
        # 245 declared on one bridge is within 270, but the 200 drawing a quarter more (248)
        # overflows it: 3 x 0.1 x sqrt(200^2 + 45^2) = 61 must stay free below 300
        ([meeting("a", 200, 1), meeting("b", 45, 8)], [br("x", 0.0, 0)], 1, 2),
        # six classes of 45 fill 270 exactly; their spread asks for 33 more than that
        ([meeting(f"c{i}", 45, 5) for i in range(6)], [br("x", 0.0, 0)], 1, 2),
        ([meeting(f"c{i}", 45, 5) for i in range(5)], [br("x", 0.0, 0)], 1, 1),
        # the 240 already on the bridge are observed, not declared: only the 45 has a spread
        ([meeting("b", 45, 5)], [br("x", 0.8, 240)], 2, 1),
        # alone on its bridge a conference may still fill it
        ([meeting("full", 300, 5)], [br("x", 0.0, 0)], 1, 1),
    ],
    ids=[
        "large-beside-small-gets-its-own",
        "six-classes-need-two",
        "five-classes-share-one",
        "observed-load-has-no-spread",
        "alone-fills-its-bridge",
    ],
)
def test_declaration_margin_grows_with_the_shared_conferences(
    booked: list[BookedMeeting], bridges: list[BridgeState], flat: int, margined: int
) -> None:
    assert placement_need(PLACED, booked, bridges, NOW, 270) == flat
    assert placement_need(MARGINED, booked, bridges, NOW, 270) == margined


def test_from_spec_runs_the_declaration_margin() -> None:
    spec = BridgePoolSpec.model_validate(
        {"template": {}, "participantsPerBridge": 300, "minBridges": 1, "maxBridges": 10}
    )
    params = PoolParams.from_spec(spec)
    assert params.declaration_margin == DECLARATION_MARGIN
    assert params.placement_stress == PLACEMENT_STRESS


HOLDING = replace(PLACED, hold_large=True, early_join=timedelta(minutes=10))


@dataclass(frozen=True)
class HoldCase:
    booked: list[BookedMeeting]
    bridges: list[BridgeState]
    hold: list[str]
    release: list[str]
    desired: int


HOLD_CASES = {
    # a 500 may open at 8:10 - 10 min = 8:00 + 0: not yet in [now, now + lead) ... at +5:
    # it opens at 8:05, within the 10 min lead: two empty bridges held, the newest first
    "holds-empty-bridges-for-a-large-meeting": HoldCase(
        [meeting("big", 500, 15)],
        [br("old", 0.0, 0, age_min=60), br("new", 0.0, 0, age_min=30), br("busy", 0.5, 150)],
        ["new", "old"],
        [],
        3,
    ),
    # only one empty bridge: it is held, and the floor asks for another
    "too-few-empty-asks-for-more": HoldCase(
        [meeting("big", 500, 15)],
        [br("empty", 0.0, 0), br("busy", 0.5, 150)],
        ["empty"],
        [],
        3,
    ),
    # it may open now (start - 10 min has come): the held bridges go back into selection
    "released-when-it-may-open": HoldCase(
        [meeting("big", 500, 10)],
        [br("h1", 0.0, 0, held=True), br("h2", 0.0, 0, held=True), br("busy", 0.5, 150)],
        [],
        ["h1", "h2"],
        3,
    ),
    "nothing-to-hold-for-a-meeting-within-one-bridge": HoldCase(
        [meeting("small", 200, 15)], [br("e", 0.0, 0), br("busy", 0.5, 150)], [], [], 1
    ),
    # released, and then the empty bridge is the one a scale-down drains, not the busy one
    "cancelled-meeting-releases": HoldCase(
        [], [br("h1", 0.0, 0, held=True), br("busy", 0.5, 150)], [], ["h1"], 1
    ),
}


@pytest.mark.parametrize("case", list(HOLD_CASES.values()), ids=list(HOLD_CASES))
def test_bridges_held_for_a_meeting_larger_than_a_bridge(case: HoldCase) -> None:
    plan = decide_scale(HOLDING, case.bridges, case.booked, ScaleHistory(), NOW)
    assert (plan.hold, plan.release) == (case.hold, case.release)
    assert plan.desired == case.desired
    assert not set(plan.drain) & ({b.name for b in case.bridges if b.held} - set(plan.release))
    assert "busy" not in plan.drain


# two 160s start at +5 beside a 100 and a 105: on an empty bridge they pile up (320 > 300,
# Jicofo sees each one small when the next opens), spread over the two loaded ones they fit
WAVE = [
    meeting("r1", 100, -30, 120, running=True),
    meeting("r2", 105, -30, 120, running=True),
    meeting("a", 160, 5),
    meeting("b", 160, 5),
]


def loaded_and(e: BridgeState, stress: float = 0.9) -> list[BridgeState]:
    """x and y carry 100 and 105; at stress 0.9 the live term keeps all three bridges."""
    return [br("x", stress, 100, age_min=90), br("y", stress, 105, age_min=80), e]


@pytest.mark.parametrize(
    ("booked", "bridges", "max_bridges", "expected"),
    [
        # the pool keeps its three bridges: the empty one would take both, it is held
        (WAVE, loaded_and(br("e", 0.0, 0)), 3, (["e"], [], [], ["e"])),
        (WAVE, loaded_and(br("e", 0.0, 0)), 4, (["e"], [], [], ["e"])),
        # a scale-down drains it instead (what placement_need counted on)
        (WAVE, loaded_and(br("e", 0.0, 0), stress=0.3), 3, ([], [], ["e"], [])),
        # held in an earlier pass and still needed: kept
        (WAVE, loaded_and(br("e", 0.0, 0, held=True)), 3, ([], [], [], ["e"])),
        # the starts have landed: released
        (WAVE[:2], loaded_and(br("e", 0.0, 0, held=True)), 3, ([], ["e"], [], [])),
    ],
    ids=[
        "held-at-maximum",
        "held-while-the-live-term-keeps-it",
        "drained-on-a-scale-down",
        "kept-while-needed",
        "released-after",
    ],
)
def test_least_loaded_bridge_shielded_from_a_pile_up(
    booked: list[BookedMeeting],
    bridges: list[BridgeState],
    max_bridges: int,
    expected: tuple[list[str], list[str], list[str], list[str]],  # hold, release, drain, shield
) -> None:
    pool = replace(PLACED, max_bridges=max_bridges)
    plan = decide_scale(pool, bridges, booked, ScaleHistory(), NOW)
    assert (plan.hold, plan.release, plan.drain, plan.shield) == expected


def test_placement_aware_booked_floor_is_not_held_by_stabilization() -> None:
    bridges = [br(f"b{i}", 0.0, 0, age_min=30) for i in range(3)]
    plan = decide_scale(PLACED, bridges, upcoming(3), ScaleHistory(), NOW)
    assert (plan.desired, plan.winner, plan.booked.placed) == (3, "booked", 3)
    assert plan.recommendation == plan.live_replicas  # the floor is not recorded
    history = record(ScaleHistory(), plan, NOW)
    later = decide_scale(PLACED, bridges, [], history, NOW + timedelta(minutes=1))
    assert later.desired < 3  # the burst has landed: nothing holds the empty bridges


def test_legacy_booked_floor_is_recorded() -> None:
    bridges = [br(f"b{i}", 0.0, 0, age_min=30) for i in range(3)]
    plan = decide_scale(POOL, bridges, upcoming(3), ScaleHistory(), NOW)
    assert plan.recommendation == max(plan.live_replicas, plan.booked_replicas)


def test_drain_about_to_time_out_with_participants_is_cancelled() -> None:
    pool = replace(POOL, drain_timeout=timedelta(minutes=60))
    started = NOW - timedelta(minutes=59)
    busy = replace(br("busy", 0.1, 30, draining=True), drain_started_at=started)
    empty = replace(br("empty", 0.0, 0, draining=True), drain_started_at=started)
    young = replace(
        br("young", 0.1, 30, draining=True), drain_started_at=NOW - timedelta(minutes=10)
    )
    kept = [br("k", 0.5, 150)]
    plan = decide_scale(pool, [*kept, busy, empty, young], [], ScaleHistory(), NOW)
    assert plan.cancel_drain == ["busy"]
    assert plan.new_bridges == 0


@pytest.mark.parametrize(
    ("action", "timeout_s", "drained_for_s", "cancelled"),
    [
        ("ReturnToService", 3600, 3470, []),
        ("ReturnToService", 3600, 3490, ["busy"]),
        ("ReturnToService", 120, 80, []),  # short timeouts: a quarter of it, not 120 s
        ("ReturnToService", 120, 95, ["busy"]),
        ("Remove", 3600, 3590, []),  # cut at the timeout, as the pool asks
    ],
    ids=["long-not-yet", "long-due", "short-not-yet", "short-due", "remove"],
)
def test_drain_timeout_action_from_the_pool_spec(
    action: str, timeout_s: int, drained_for_s: int, cancelled: list[str]
) -> None:
    spec = BridgePoolSpec.model_validate(
        {
            "template": {},
            "maxBridges": 10,
            "drainTimeoutSeconds": timeout_s,
            "drainTimeoutAction": action,
        }
    )
    pool = PoolParams.from_spec(spec)
    busy = replace(
        br("busy", 0.1, 30, draining=True),
        drain_started_at=NOW - timedelta(seconds=drained_for_s),
    )
    plan = decide_scale(pool, [br("k", 0.5, 150), busy], [], ScaleHistory(), NOW)
    assert plan.cancel_drain == cancelled
