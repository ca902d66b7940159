"""decide_scale (production parameters): live vs booked demand, bounds, behavior, drains,
cancelled drains, the plan's words; and the parameters themselves."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import timedelta

import pytest

from meetscale.adapt import pool_params
from meetscale.decide.scale import (
    BookedMeeting,
    BridgeState,
    PoolParams,
    Recommendation,
    ScaleEvent,
    ScaleHistory,
    decide_scale,
    record,
)
from meetscale.models.pool import BridgePoolSpec
from tests.unit.scalekit import NOW, POOL, br, upcoming

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
        pool=POOL.evolve(target_stress=0.5),
    ),
    # four 200s opening: a bridge each, and the spare (booked.spare) while they are to open
    "booked-wins": PlanCase(
        [br("b0", 0.35), br("b1", 0.35)], (4 + 1, "booked", "BookedDemand"), booked=upcoming(4)
    ),
    "booked-bypasses-rate-limit": PlanCase(
        [br("b0", 0.1)],
        (10 + 1, "booked", "BookedDemand"),
        booked=upcoming(10),
        pool=POOL.evolve(max_bridges=20),
    ),
    "booked-above-max": PlanCase(
        [br("b0", 0.3), br("b1", 0.3)], (10, "max", "AtMaximum"), booked=upcoming(15)
    ),
    "live-above-max": PlanCase([br(f"b{i}", 1.0) for i in range(8)], (10, "max", "AtMaximum")),
    "min-bound": PlanCase(
        [br("b0", 0.05), br("b1", 0.05)], (2, "min", "AtMinimum"), pool=POOL.evolve(min_bridges=2)
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
        (4 + 1, "booked", "BookedDemand"),
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
    # 15 x 200 opening together do not fit on 10 bridges: the term says max + 1
    assert (plan.live_replicas, plan.booked_replicas, plan.desired) == (1, 11, 10)
    assert plan.recommendation == 1  # the live term: the booked floor is not recorded
    assert plan.conditions["ScalingActive"][:2] == (True, "ValidMetricFound")
    assert plan.conditions["ScalingLimited"][:2] == (True, "AtMaximum")
    assert plan.conditions["BookingsCovered"][:2] == (False, "BookedDemandExceedsMax")
    assert (
        "15 booked meetings with 3000 participants need more than 10 bridges as Jicofo "
        "would place them, plus 0 for 0 unbooked participants expected in the next 10 min"
    ) in plan.message
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
        POOL.evolve(max_bridges=50), [br(f"b{i}", 1.4) for i in range(8)], [], history, NOW
    )
    assert (plan.live_replicas, plan.desired, plan.reason) == (16, 8, "ScaleUpLimited")


def test_pool_params_of_a_spec() -> None:
    spec = BridgePoolSpec(
        template={"spec": {"containers": [{"name": "jvb", "image": "jitsi/jvb"}]}},
        participants_per_bridge=200,
        min_bridges=2,
        max_bridges=40,
        target_stress=0.6,
        lead_time_seconds=900,
        protection_seconds=120,
    )
    params = pool_params(spec, timedelta(minutes=10))
    assert params.bridge_capacity == 120
    assert (params.bounds.min_bridges, params.bounds.max_bridges) == (2, 40)
    assert params.booked.lead_time == timedelta(minutes=15)
    assert params.drain.protection == timedelta(minutes=2)
    assert params.live.behavior == PoolParams().live.behavior


@pytest.mark.parametrize(
    ("ppb", "target", "capacity"),
    [(300, 0.7, 210), (100, 0.29, 29), (300, 0.57, 171), (10, 0.05, 1), (1, 1.0, 1)],
    ids=["default", "float-below-29", "float-below-171", "at-least-one", "one-per-bridge"],
)
def test_bridge_capacity(ppb: int, target: float, capacity: int) -> None:
    pool = PoolParams.of(participants_per_bridge=ppb, target_stress=target)
    assert pool.bridge_capacity == capacity


@pytest.mark.parametrize(
    "kwargs",
    [{"min_bridges": 5, "max_bridges": 4}, {"participants_per_bridge": 0}, {"target_stress": 0}],
    ids=["min-above-max", "no-capacity", "zero-target"],
)
def test_pool_params_validation(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        PoolParams.of(**kwargs)


def test_production_defaults_are_what_a_default_pool_runs() -> None:
    spec = BridgePoolSpec.model_validate(
        {"template": {"spec": {"containers": [{"name": "jvb", "image": "jitsi/jvb"}]}}}
    )
    assert pool_params(spec, timedelta(seconds=600)) == PoolParams()


@pytest.mark.parametrize(
    ("changes", "where", "value"),
    [
        ({"max_bridges": 20}, "bounds", 20),
        ({"lead_time": timedelta(minutes=15)}, "booked", timedelta(minutes=15)),
        ({"target_stress": 0.5}, "live", 0.5),
        ({"timeout": timedelta(minutes=5)}, "drain", timedelta(minutes=5)),
    ],
    ids=["bounds", "booked", "live", "drain"],
)
def test_evolve_finds_each_field_in_its_group(
    changes: dict[str, object], where: str, value: object
) -> None:
    params = POOL.evolve(**changes)
    (name,) = changes
    assert getattr(getattr(params, where), name) == value
    assert params.evolve(**{name: getattr(getattr(POOL, where), name)}) == POOL


def test_evolve_names_an_unknown_field() -> None:
    with pytest.raises(TypeError, match="placement_stress"):
        POOL.evolve(placement_stress=0.9)
