"""The HPA replica calculator, against facts ported from upstream Kubernetes.

Cases come from ``pkg/controller/podautoscaler/replica_calculator_test.go``
(TestReplicaCalc*), restated in stress terms: a CPU level of N milli-cores per 1-core
request is stress N/1000, a target utilization of U % is target stress U/100, a custom
metric of N milli-units is N/1000 (qps targets likewise). Only the inputs and expected
outputs are taken over. The behavior (rates, stabilization) is in test_hpa_behavior.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from meetscale.decide.scale.hpa import hpa_replicas


def pods(*values: float | None) -> dict[str, float | None]:
    return {f"pod-{i}": v for i, v in enumerate(values)}


def readiness(*flags: bool) -> dict[str, bool]:
    return {f"pod-{i}": f for i, f in enumerate(flags)}


@dataclass(frozen=True)
class CalcCase:
    current: int
    samples: dict[str, float | None]
    target: float
    expected: int
    expected_mean: float | None  # upstream's expectedUtilization, in stress (None: not checked)
    ready: dict[str, bool] | None = None
    ignored: frozenset[str] = frozenset()
    missing_on_scale_down: float | None = None
    reason: str | None = None


CALC_CASES = {
    # TestReplicaCalcScaleUp: 3 pods at 30/50/70 %, target 30 % -> 5
    "scale-up": CalcCase(3, pods(0.3, 0.5, 0.7), 0.3, 5, 0.5, reason="ScaleUp"),
    # TestReplicaCalcScaleUpUnreadyLessScale: the unready pod counts as 0 on a scale-up -> 4
    "scale-up-unready-less-scale": CalcCase(
        3, pods(0.3, 0.5, 0.7), 0.3, 4, 0.6, ready=readiness(False, True, True)
    ),
    # TestReplicaCalcScaleUpUnreadyNoScale: counting unready pods as 0 flips the direction -> hold
    "scale-up-unready-no-scale": CalcCase(
        3,
        pods(0.4, 0.5, 0.7),
        0.3,
        3,
        0.4,
        ready=readiness(True, False, False),
        reason="DirectionFlip",
    ),
    # TestReplicaCalcScaleUpIgnoresFailedPods: 2 failed pods are dropped entirely -> 4
    "scale-up-ignores-failed-pods": CalcCase(
        2,
        pods(0.5, 0.7),
        0.3,
        4,
        0.6,
        ready=readiness(True, True, False, False),
        ignored=frozenset({"pod-2", "pod-3"}),
    ),
    # TestReplicaCalcScaleUpCM: qps 20/10/30 per pod, target 15 -> 4 (float noise must not make 5)
    "scale-up-pods-metric": CalcCase(3, pods(0.20, 0.10, 0.30), 0.15, 4, 0.20),
    # TestReplicaCalcScaleUpCMUnreadyHotCpuNoLessScale: readiness is not applied to a custom
    # metric, so all three samples count -> 6
    "scale-up-pods-metric-readiness-not-applied": CalcCase(
        3, pods(0.50, 0.10, 0.30), 0.15, 6, 0.30
    ),
    # TestReplicaCalcScaleUpCMUnreadyHotCpuScaleWouldScaleDown -> 7
    "scale-up-pods-metric-would-scale-down": CalcCase(3, pods(0.50, 0.15, 0.30), 0.15, 7, 0.3167),
    # TestReplicaCalcScaleDown: mean 28 % vs target 50 % -> 3
    "scale-down": CalcCase(5, pods(0.1, 0.3, 0.5, 0.25, 0.25), 0.5, 3, 0.28, reason="ScaleDown"),
    # TestReplicaCalcScaleDownCM: qps 12 x 5, target 20 -> 3
    "scale-down-pods-metric": CalcCase(5, pods(0.12, 0.12, 0.12, 0.12, 0.12), 0.20, 3, 0.12),
    # TestReplicaCalcScaleDownIncludeUnreadyPods: unready pods are left out of a scale-down -> 2
    "scale-down-unready-left-out": CalcCase(
        5,
        pods(0.1, 0.3, 0.5, 0.25, 0.25),
        0.5,
        2,
        0.30,
        ready=readiness(True, True, True, False, False),
    ),
    # TestReplicaCalcScaleDownExcludeUnscheduledPods: 4 pending pods without metrics -> 1
    "scale-down-exclude-unscheduled": CalcCase(
        5,
        pods(0.1, None, None, None, None),
        0.5,
        1,
        0.10,
        ready=readiness(True, False, False, False, False),
    ),
    # TestReplicaCalcScaleDownIgnoresFailedPods -> 3
    "scale-down-ignores-failed-pods": CalcCase(
        5,
        pods(0.1, 0.3, 0.5, 0.25, 0.25, None, None),
        0.5,
        3,
        0.28,
        ignored=frozenset({"pod-5", "pod-6"}),
    ),
    # TestReplicaCalcTolerance: mean 102 % vs 100 % is within 10 % -> hold
    "tolerance": CalcCase(3, pods(1.01, 1.03, 1.02), 1.0, 3, 1.02, reason="WithinTolerance"),
    # TestReplicaCalcToleranceCM: qps 20/21/21, target 20 -> hold
    "tolerance-pods-metric": CalcCase(3, pods(0.20, 0.21, 0.21), 0.20, 3, 0.2067),
    # TestReplicaCalcMissingMetrics: 2 pods without metrics count at target on a scale-down -> 3
    "missing-metrics-scale-down": CalcCase(4, pods(0.4, 0.095, None, None), 1.0, 3, 0.2475),
    # TestReplicaCalcMissingMetricsNoChangeEq: exactly at target, one pod missing -> hold
    "missing-metrics-no-change-eq": CalcCase(2, pods(1.0, None), 1.0, 2, 1.0),
    # TestReplicaCalcMissingMetricsNoChangeGt: 190 % + missing at 0 is within tolerance -> hold
    "missing-metrics-no-change-gt": CalcCase(
        2, pods(1.9, None), 1.0, 2, 1.9, reason="WithinTolerance"
    ),
    # TestReplicaCalcMissingMetricsNoChangeLt: 60 % + missing at 100 % -> ceil(0.8 * 2) = 2
    "missing-metrics-no-change-lt": CalcCase(2, pods(0.6, None), 1.0, 2, 0.6),
    # TestReplicaCalcMissingMetricsUnreadyChange -> hold
    "missing-metrics-unready-change": CalcCase(
        3, pods(0.1, 0.45, None), 0.5, 3, 0.45, ready=readiness(False, True, True)
    ),
    # TestReplicaCalcMissingMetricsUnreadyScaleUp: missing and unready both at 0 -> 4
    "missing-metrics-unready-scale-up": CalcCase(
        3, pods(0.1, 2.0, None), 0.5, 4, 2.0, ready=readiness(False, True, True)
    ),
    # TestReplicaCalcMissingMetricsUnreadyScaleDown: the Resource rule counts a missing pod
    # at 100 % of its request (stress 1.0) on a scale-down -> 3
    "missing-metrics-unready-scale-down-resource-rule": CalcCase(
        4,
        pods(0.1, 0.1, 0.1, None),
        0.5,
        3,
        0.10,
        ready=readiness(False, True, True, True),
        missing_on_scale_down=1.0,
    ),
    # TestReplicaCalcComputedToleranceAlgImplementation, first half: 50 % vs 56 % -> 9 of 10
    "computed-tolerance-scales": CalcCase(10, pods(*[0.5] * 10), 0.56, 9, 0.5),
    # ... second half: 50 % vs 55 % is inside the tolerance -> hold at 10
    "computed-tolerance-holds": CalcCase(
        10, pods(*[0.5] * 10), 0.55, 10, 0.5, reason="WithinTolerance"
    ),
    # Not upstream: 0.56 / 0.7 * 5 is 4.000000000000001 in floats; exactly 4 bridges are needed.
    "float-noise-does-not-add-a-bridge": CalcCase(
        5, pods(*[0.56] * 5), 0.7, 4, 0.56, reason="ScaleDown"
    ),
}


@pytest.mark.parametrize("case", list(CALC_CASES.values()), ids=list(CALC_CASES))
def test_replica_calculator_matches_upstream(case: CalcCase) -> None:
    result = hpa_replicas(
        case.current,
        case.samples,
        case.target,
        0.1,
        case.ready,
        case.ignored,
        missing_on_scale_down=case.missing_on_scale_down,
    )
    assert result.replicas == case.expected
    if case.expected_mean is not None:
        assert result.usage_ratio is not None
        assert result.usage_ratio * case.target == pytest.approx(case.expected_mean, abs=1e-3)
    if case.reason is not None:
        assert result.reason == case.reason


def test_missing_pod_counts_at_target_by_default_on_scale_down() -> None:
    # The same data as the Resource-rule case above, under the Pods-metric rule
    # (missing pod at target): (0.1 + 0.1 + 0.5) / 3 / 0.5 = 0.467 -> ceil(1.4) = 2.
    result = hpa_replicas(4, pods(0.1, 0.1, 0.1, None), 0.5, 0.1, readiness(False, True, True))
    assert result.replicas == 2
    assert result.missing_count == 1
    assert result.unready_count == 1


@pytest.mark.parametrize(
    ("samples", "ready"),
    [
        (pods(), None),
        (pods(None, None), None),
        (pods(0.9, 0.9), readiness(False, False)),
    ],
    ids=["no-pods", "all-missing", "all-unready"],
)
def test_no_ready_metrics_holds_and_says_so(
    samples: dict[str, float | None], ready: dict[str, bool] | None
) -> None:
    # Upstream: "did not receive metrics for any ready pods" (an error; the HPA holds).
    result = hpa_replicas(4, samples, 0.7, 0.1, ready)
    assert (result.replicas, result.reason, result.usage_ratio) == (4, "NoMetrics", None)


def test_rejects_non_positive_target() -> None:
    with pytest.raises(ValueError, match="target"):
        hpa_replicas(1, pods(0.5), 0.0)
