"""The HPA behavior (scale-up and scale-down rates, stabilization windows), against facts
ported from upstream Kubernetes: ``horizontal_test.go`` (TestScalingWithRules,
TestNormalizeDesiredReplicasWithBehavior, TestCalculate*LimitWithScalingRules), restated in
replicas and stress terms. Only the inputs and expected outputs are taken over. The replica
calculator is in test_hpa.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from meetscale.adapt import behavior_rules
from meetscale.decide.scale.hpa import (
    DEFAULT_SCALE_DOWN,
    DEFAULT_SCALE_UP,
    BehaviorRules,
    RatePolicy,
    Recommendation,
    Rules,
    ScaleEvent,
    ScaleHistory,
    apply_behavior,
    rate_limit,
    stabilize,
)
from meetscale.models.pool import Behavior, ScalingPolicy, ScalingRules

NOW = datetime(2020, 4, 6, 8, 0, tzinfo=UTC)


# --------------------------------------------------------------------------- behavior


def rules(
    pods_value: int = 0,
    pods_period: int = 0,
    percent: int = 0,
    percent_period: int = 0,
    window: int = 0,
    select: str = "Max",
) -> Rules:
    """Upstream's generateScalingRules(pods, podsPeriod, percent, percentPeriod, window)."""
    policies: list[RatePolicy] = []
    if pods_value:
        policies.append(RatePolicy("Pods", pods_value, pods_period))
    if percent:
        policies.append(RatePolicy("Percent", percent, percent_period))
    return Rules(window, select, tuple(policies))  # type: ignore[arg-type]


def uniform_events(changes: list[int], period: int, sign: int = 1) -> list[ScaleEvent]:
    """Upstream's generateEventsUniformDistribution: events centred in equal slices of
    the last ``period`` seconds, oldest first (e.g. [1, 5, 9] over 120 s: -100, -60, -20 s)."""
    segment = period / len(changes)
    return [
        ScaleEvent(NOW - timedelta(seconds=int(period - segment * (i + 1) + segment / 2)), sign * c)
        for i, c in enumerate(changes)
    ]


@dataclass(frozen=True)
class RateCase:
    current: int
    desired: int
    min_replicas: int
    max_replicas: int
    expected: int
    reason: str
    up: Rules = DEFAULT_SCALE_UP
    down: Rules = DEFAULT_SCALE_DOWN
    events: list[ScaleEvent] = field(default_factory=list)


RATE_CASES = {
    "within-range": RateCase(5, 7, 3, 8, 7, "DesiredWithinRange"),
    "below-min": RateCase(3, 1, 2, 8, 2, "AtMinimum"),
    "min-zero-allows-zero": RateCase(1, 0, 0, 10, 0, "DesiredWithinRange"),
    "current-above-max": RateCase(20, 1000, 1, 10, 10, "AtMaximum"),
    "desired-above-max": RateCase(100, 1000, 100, 150, 150, "AtMaximum"),
    "user-percent-policy-limits-up": RateCase(
        3, 1000, 1, 2000, 4, "ScaleUpLimited", up=rules(percent=1, percent_period=60)
    ),
    "default-scale-up-limit": RateCase(10, 50, 1, 1000, 20, "ScaleUpLimited"),
    "up-pods-policy-larger-than-percent": RateCase(
        10, 500, 1, 1000, 110, "ScaleUpLimited", up=rules(100, 60, 100, 60)
    ),
    "up-percent-policy-larger-than-pods": RateCase(
        10, 500, 1, 1000, 20, "ScaleUpLimited", up=rules(2, 60, 100, 60)
    ),
    "up-large-pods-policy-lets-desired-through": RateCase(
        10, 50, 1, 1000, 50, "DesiredWithinRange", up=rules(100, 60)
    ),
    "up-pods-policy-limits": RateCase(10, 50, 1, 1000, 40, "ScaleUpLimited", up=rules(30, 60)),
    "up-percent-policy-limits": RateCase(
        10, 50, 1, 1000, 30, "ScaleUpLimited", up=rules(percent=200, percent_period=60)
    ),
    "down-percent-policy-larger-than-pods": RateCase(
        100, 2, 1, 1000, 80, "ScaleDownLimited", down=rules(20, 60, 1, 60, 300)
    ),
    "down-pods-policy-larger-than-percent": RateCase(
        100, 2, 1, 1000, 98, "ScaleDownLimited", down=rules(2, 60, 1, 60, 300)
    ),
    "down-min-limits-large-percent-policy": RateCase(
        10, 2, 5, 1000, 5, "AtMinimum", down=rules(percent=100, percent_period=60, window=300)
    ),
    "down-pods-policy-limits": RateCase(
        10, 2, 1, 1000, 5, "ScaleDownLimited", down=rules(5, 60, window=300)
    ),
    "down-percent-policy-exactly-enough": RateCase(
        10, 5, 1, 1000, 5, "DesiredWithinRange", down=rules(percent=50, percent_period=60)
    ),
    "up-max-with-events": RateCase(
        100, 500, 1, 200, 200, "AtMaximum", up=rules(300, 60), events=uniform_events([1, 5, 9], 120)
    ),
    "up-recent-events-forbid-more": RateCase(
        100,
        500,
        1,
        1000,
        100,
        "ScaleUpLimited",
        up=rules(5, 120),
        events=uniform_events([1, 5, 9], 120),
    ),
    "up-pods-policy-after-events": RateCase(
        100,
        500,
        1,
        1000,
        235,
        "ScaleUpLimited",
        up=rules(150, 120),
        events=uniform_events([1, 5, 9], 120),
    ),
    "up-percent-policy-after-events": RateCase(
        100,
        500,
        1,
        1000,
        255,
        "ScaleUpLimited",
        up=rules(percent=200, percent_period=120),
        events=uniform_events([1, 5, 9], 120),
    ),
    "up-percent-policy-after-up-and-down-events": RateCase(
        6,
        24,
        1,
        1000,
        16,
        "ScaleUpLimited",
        up=rules(percent=300, percent_period=300),
        events=uniform_events([4], 120) + uniform_events([2], 120, sign=-1),
    ),
    "down-default-policy-ignores-old-events": RateCase(
        10, 5, 1, 1000, 5, "DesiredWithinRange", events=uniform_events([1, 5, 9], 120, -1)
    ),
    "down-recent-events-forbid-more": RateCase(
        100,
        2,
        1,
        1000,
        100,
        "ScaleDownLimited",
        down=rules(5, 120, window=300),
        events=uniform_events([1, 5, 9], 120, -1),
    ),
    "down-percent-policy-after-events": RateCase(
        100,
        0,
        1,
        1000,
        56,
        "ScaleDownLimited",
        down=rules(percent=50, percent_period=120),
        events=uniform_events([2, 4, 6], 120, -1),
    ),
    "down-percent-policy-after-up-and-down-events": RateCase(
        10,
        1,
        1,
        1000,
        6,
        "ScaleDownLimited",
        down=rules(percent=50, percent_period=180),
        events=uniform_events([2], 120) + uniform_events([4], 120, sign=-1),
    ),
    "down-events-keep-current": RateCase(
        100,
        0,
        1,
        1000,
        100,
        "ScaleDownLimited",
        down=rules(percent=10, percent_period=120),
        events=uniform_events([10, 10, 10], 120, -1),
    ),
    "down-huge-percent-still-allows": RateCase(
        10,
        5,
        1,
        1000,
        5,
        "DesiredWithinRange",
        down=rules(percent=1000, percent_period=120),
        events=uniform_events([10, 10, 10], 120, -1),
    ),
    "up-events-outside-short-period": RateCase(
        100,
        200,
        1,
        1000,
        200,
        "DesiredWithinRange",
        up=rules(1000, 30, 100, 60),
        events=uniform_events([8, 12, 9, 11], 120),
    ),
    # TestCalculateScaleUpLimitWithScalingRules: selectPolicy Min of (1 + 2, ceil(1 * 1.5)) = 2
    "up-select-min": RateCase(
        1, 100, 1, 1000, 2, "ScaleUpLimited", up=rules(2, 60, 50, 60, 300, select="Min")
    ),
    # TestCalculateScaleDownLimitWithBehaviors: selectPolicy Min of (5 - 2, int(5 * 0.5)) = 3
    "down-select-min": RateCase(
        5, 0, 0, 1000, 3, "ScaleDownLimited", down=rules(2, 60, 50, 60, 300, select="Min")
    ),
    "up-disabled": RateCase(
        5, 10, 1, 1000, 5, "ScaleUpLimited", up=rules(4, 15, select="Disabled")
    ),
    "down-disabled": RateCase(
        5, 1, 1, 1000, 5, "ScaleDownLimited", down=rules(4, 15, select="Disabled")
    ),
    "no-policies-no-rate-limit": RateCase(2, 40, 1, 1000, 40, "DesiredWithinRange", up=rules()),
}


@pytest.mark.parametrize("case", list(RATE_CASES.values()), ids=list(RATE_CASES))
def test_rate_policies_match_upstream(case: RateCase) -> None:
    # No past recommendations: stabilization leaves the desired count alone, so this is
    # upstream's convertDesiredReplicasWithBehaviorRate (TestScalingWithRules).
    result = apply_behavior(
        case.current,
        case.desired,
        min_replicas=case.min_replicas,
        max_replicas=case.max_replicas,
        behavior=BehaviorRules(case.up, case.down),
        history=ScaleHistory((), tuple(case.events)),
        now=NOW,
    )
    assert (result.replicas, result.reason) == (case.expected, case.reason)


def recs(*pairs: tuple[int, float]) -> ScaleHistory:
    """Recommendations as (replicas, minutes ago)."""
    return ScaleHistory(tuple(Recommendation(NOW - timedelta(minutes=m), r) for r, m in pairs))


@pytest.mark.parametrize(
    ("history", "current", "desired", "up_window", "down_window", "expected", "reason"),
    [
        (recs(), 100, 5, 0, 0, 5, None),
        (recs((4, 2), (5, 1)), 100, 3, 0, 180, 5, "ScaleDownStabilized"),
        (recs((4, 2), (5, 1)), 1, 7, 300, 0, 4, "ScaleUpStabilized"),
        (recs((1, 2), (2, 1)), 100, 3, 300, 0, 3, None),
        (recs((4, 2), (5, 1)), 1, 3, 0, 300, 3, None),
        (recs((10, 10), (9, 9)), 100, 3, 0, 0, 3, None),
        (recs((10, 10), (9, 9)), 1, 100, 0, 0, 100, None),
        (recs((10, 10), (4, 1), (5, 2), (9, 9)), 100, 3, 0, 180, 5, "ScaleDownStabilized"),
        (recs((10, 100), (6, 1), (5, 2), (9, 3)), 1, 100, 300, 0, 5, "ScaleUpStabilized"),
        (recs((2, 100), (3, 3)), 2, 1, 300, 300, 2, "ScaleDownStabilized"),
        (recs((2, 100), (1, 3)), 2, 3, 300, 300, 2, "ScaleUpStabilized"),
    ],
    ids=[
        "empty-recommendations-scale-down",
        "simple-scale-down-stabilization",
        "simple-scale-up-stabilization",
        "no-scale-down-stabilization",
        "no-scale-up-stabilization",
        "old-recommendations-no-scale-down-stabilization",
        "old-recommendations-no-scale-up-stabilization",
        "scale-down-stabilization-among-old-recommendations",
        "scale-up-stabilization-among-old-recommendations",
        "no-scale-up-when-recommendation-goes-down",
        "no-scale-down-when-recommendation-goes-up",
    ],
)
def test_stabilization_matches_upstream(
    history: ScaleHistory,
    current: int,
    desired: int,
    up_window: int,
    down_window: int,
    expected: int,
    reason: str | None,
) -> None:
    # TestNormalizeDesiredReplicasWithBehavior (stabilizeRecommendationWithBehaviors).
    behavior = BehaviorRules(Rules(up_window), Rules(down_window))
    assert stabilize(current, desired, behavior, history, NOW) == (expected, reason)


@pytest.mark.parametrize(
    ("history", "desired", "expected"),
    [
        (recs(), 5, 5),
        (recs((4, 2), (5, 1)), 3, 5),
        (recs((1, 2), (2, 1)), 3, 3),
        (recs((10, 10), (9, 9)), 3, 3),
        (recs((10, 10), (4, 1), (5, 2), (9, 9)), 3, 5),
    ],
    ids=["empty-log", "stabilize", "no-stabilize", "old-recommendations", "mixed-log"],
)
def test_default_five_minute_scale_down_stabilization(
    history: ScaleHistory, desired: int, expected: int
) -> None:
    # TestNormalizeDesiredReplicas: 5-minute downscale stabilization, no user behavior.
    result = apply_behavior(
        10,
        desired,
        min_replicas=1,
        max_replicas=100,
        behavior=BehaviorRules(),
        history=history,
        now=NOW,
    )
    assert result.replicas == expected
    assert result.stabilized == expected


def test_stabilization_window_edge_is_exclusive() -> None:
    # A recommendation exactly window-old is out of the window (upstream uses After(cutoff)).
    history = ScaleHistory((Recommendation(NOW - timedelta(seconds=300), 9),))
    assert stabilize(10, 4, BehaviorRules(), history, NOW) == (4, None)
    history = ScaleHistory((Recommendation(NOW - timedelta(seconds=299), 9),))
    assert stabilize(10, 4, BehaviorRules(), history, NOW) == (9, "ScaleDownStabilized")


def test_scale_up_window_edge_is_exclusive() -> None:
    behavior = BehaviorRules(scale_up=Rules(120))
    history = ScaleHistory((Recommendation(NOW - timedelta(seconds=120), 3),))
    assert stabilize(2, 8, behavior, history, NOW) == (8, None)
    history = ScaleHistory((Recommendation(NOW - timedelta(seconds=119), 3),))
    assert stabilize(2, 8, behavior, history, NOW) == (3, "ScaleUpStabilized")


@pytest.mark.parametrize(
    ("seconds_ago", "expected"),
    [(15, 16), (14, 8)],
    ids=["event-one-period-old-no-longer-counts", "event-inside-period-counts"],
)
def test_scale_event_period_edge_is_exclusive(seconds_ago: int, expected: int) -> None:
    # Default scale-up: max(+100 %, +4) over the count 15 s ago (8 now, +4 then).
    history = ScaleHistory((), (ScaleEvent(NOW - timedelta(seconds=seconds_ago), 4),))
    result = apply_behavior(
        8,
        100,
        min_replicas=1,
        max_replicas=100,
        behavior=BehaviorRules(),
        history=history,
        now=NOW,
    )
    assert (result.replicas, result.reason) == (expected, "ScaleUpLimited")


def test_stabilized_value_is_then_rate_limited() -> None:
    behavior = BehaviorRules(scale_down=Rules(300, "Max", (RatePolicy("Pods", 1, 60),)))
    history = ScaleHistory((Recommendation(NOW - timedelta(minutes=1), 7),))
    result = apply_behavior(
        10, 2, min_replicas=1, max_replicas=20, behavior=behavior, history=history, now=NOW
    )
    assert (result.stabilized, result.replicas, result.reason) == (7, 9, "ScaleDownLimited")
    assert result.limited
    assert result.stabilization_reason == "ScaleDownStabilized"


def test_current_below_min_goes_to_min_without_behavior() -> None:
    result = apply_behavior(
        0, 0, min_replicas=3, max_replicas=10, behavior=BehaviorRules(), history=recs(), now=NOW
    )
    assert (result.replicas, result.reason) == (3, "AtMinimum")


def test_rate_limit_is_usable_alone() -> None:
    assert rate_limit(
        10,
        50,
        min_replicas=1,
        max_replicas=1000,
        behavior=BehaviorRules(),
        history=recs(),
        now=NOW,
    )[:2] == (20, "ScaleUpLimited")


def test_history_add_records_and_prunes() -> None:
    old = NOW - timedelta(hours=2)
    history = ScaleHistory((Recommendation(old, 3),), (ScaleEvent(old, 2),))
    new = history.add(NOW, 5, -1)
    assert new.recommendations == (Recommendation(NOW, 5),)
    assert new.events == (ScaleEvent(NOW, -1),)
    assert history.recommendations == (Recommendation(old, 3),)  # not mutated
    unchanged = ScaleHistory().add(NOW, None, 0)
    assert unchanged == ScaleHistory()


ORDERS = [
    # (id, seconds before NOW of each pass in the order they are recorded)
    ("forward", [900, 600, 299, 200, 60, 0]),
    ("clock-stepped-back", [900, 200, 600, 299, 60, 0]),
    ("same-instant", [600, 600, 299, 299, 0, 0]),
    ("backward", [0, 60, 200, 299, 600, 900]),
]


@pytest.mark.parametrize("ago", [o[1] for o in ORDERS], ids=[o[0] for o in ORDERS])
def test_stabilization_does_not_depend_on_the_order_recorded(ago: list[int]) -> None:
    """A history recorded pass by pass (found by bisection while time goes forward) gives
    what the same recommendations checked one by one give, whatever the clock did."""
    history = ScaleHistory()
    for i, s in enumerate(ago):
        history = history.add(NOW - timedelta(seconds=s), 3 + i)
    given = ScaleHistory(history.recommendations)  # not known to be ordered
    assert history == given
    behavior = BehaviorRules(scale_up=Rules(250))
    for desired in (1, 5, 20):
        assert stabilize(5, desired, behavior, history, NOW) == stabilize(
            5, desired, behavior, given, NOW
        )
    for cutoff in (NOW - timedelta(seconds=s) for s in (1000, 600, 299, 0)):
        want = [r for r in history.recommendations if r.at > cutoff]
        assert list(history.since(cutoff)) == list(given.since(cutoff)) == want


def test_behavior_from_model_uses_hpa_defaults() -> None:
    assert behavior_rules(Behavior()) == BehaviorRules()


def test_behavior_from_model_converts_user_rules() -> None:
    model = Behavior(
        scale_up=ScalingRules(
            select_policy="Min",
            policies=[ScalingPolicy(type="Pods", value=2, period_seconds=60)],
        ),
        scale_down=ScalingRules(stabilization_window_seconds=None, select_policy="Disabled"),
    )
    converted = behavior_rules(model)
    assert converted.scale_up == Rules(0, "Min", (RatePolicy("Pods", 2, 60),))
    assert converted.scale_down == Rules(300, "Disabled", DEFAULT_SCALE_DOWN.policies)
