"""The Kubernetes HPA algorithm, as pure functions over plain data.

Two parts, each a port of the *behaviour* of the upstream controller
(``pkg/controller/podautoscaler``), re-expressed for a per-pod utilization-style
metric such as a videobridge's stress (0..1, 1.0 = fully loaded):

* :func:`hpa_replicas` is the replica calculator of a ``Pods``/``Resource``
  metric (``replica_calculator.go``): usage ratio = mean(metric) / target,
  a tolerance band, and the special treatment of unready pods and of pods
  whose metric is missing.
* :func:`apply_behavior` is the ``behavior`` normalisation of
  ``horizontal.go``: stabilization windows, then Pods/Percent rate policies
  with ``selectPolicy`` Max/Min/Disabled, then min/max bounds.

Nothing here reads a clock: ``now`` is always a parameter, and the history of
past recommendations and scale events is passed in (:class:`ScaleHistory`) and
returned updated by :meth:`ScaleHistory.add`, never mutated.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from meetscale.decide.scale.history import Recommendation, ScaleEvent, ScaleHistory

__all__ = [
    "DEFAULT_SCALE_DOWN",
    "DEFAULT_SCALE_UP",
    "BehaviorResult",
    "BehaviorRules",
    "HpaResult",
    "RatePolicy",
    "Recommendation",
    "Rules",
    "ScaleEvent",
    "ScaleHistory",
    "apply_behavior",
    "hpa_replicas",
    "rate_limit",
    "stabilize",
]

# Float noise guard: stress values are floats (0.2 / 0.15 * 3 is 4.000000000000001),
# whereas upstream works in integer milli-units. Products are rounded to this many
# decimals before ceil() and tolerance comparisons, so "exactly 4" stays 4.
_DECIMALS = 9


def _ceil(x: float) -> int:
    return math.ceil(round(x, _DECIMALS))


def _within(ratio: float, tolerance: float) -> bool:
    return round(abs(1.0 - ratio), _DECIMALS) <= tolerance


# --------------------------------------------------------------------------- calculator


@dataclass(frozen=True, slots=True)
class HpaResult:
    """What the replica calculator recommends.

    ``replicas``: the recommendation (before behavior and min/max).
    ``usage_ratio``: mean metric of the ready pods that reported one, divided by
    the target (what upstream reports as current utilization / target); ``None``
    when no ready pod reported a metric.
    ``reason``: ``ScaleUp``, ``ScaleDown``, ``Unchanged`` (the formula gave the
    current count), ``WithinTolerance``, ``DirectionFlip`` (held: counting
    missing/unready pods pessimistically reversed the direction) or
    ``NoMetrics`` (no ready pod reported; ``replicas`` is ``current_replicas``,
    the caller must treat this as "metrics unavailable").
    """

    replicas: int
    usage_ratio: float | None
    reason: str
    ready_count: int = 0
    missing_count: int = 0
    unready_count: int = 0


def hpa_replicas(
    current_replicas: int,
    samples: Mapping[str, float | None],
    target: float,
    tolerance: float = 0.1,
    ready: Mapping[str, bool] | None = None,
    ignored: AbstractSet[str] | None = None,
    *,
    missing_on_scale_down: float | None = None,
) -> HpaResult:
    """Desired replica count for a per-pod average-value metric, as the HPA computes it.

    Pods are the union of the keys of ``samples`` and ``ready``, minus ``ignored``
    (pods being deleted or failed: dropped entirely, as upstream does). A pod is
    *unready* when ``ready[pod]`` is False (checked first, like a Pending pod: its
    sample, if any, is not used); otherwise it is *missing* when its sample is
    ``None`` or absent; otherwise it is *ready* and its sample counts.

    1. ratio = mean(ready samples) / target. No ready sample: ``NoMetrics``.
    2. No unready pods to rebalance (there are none, or ratio <= 1) and no missing
       pods: within ``tolerance`` of 1 keeps ``current_replicas``; otherwise
       ``ceil(ratio * ready_count)``.
    3. Otherwise re-run with pessimistic fill-ins: on a scale-down (ratio < 1)
       missing pods count as ``target`` (100 % of target; pass
       ``missing_on_scale_down=1.0`` for the Resource-metric rule "100 % of the
       request", i.e. a full bridge); on a scale-up (ratio > 1) missing pods and
       unready pods count as 0. If the new ratio is within tolerance, or on the
       other side of 1, or the resulting count moves against the new ratio's
       direction, keep ``current_replicas``; else ``ceil(new_ratio * pods_counted)``.

    ``target`` must be > 0. Deterministic and pure.
    """
    if target <= 0:
        raise ValueError(f"target must be > 0, got {target}")
    if tolerance < 0:
        raise ValueError(f"tolerance must be >= 0, got {tolerance}")
    ready = ready or {}
    ignored = ignored or frozenset()

    pods = [p for p in dict.fromkeys([*samples, *ready]) if p not in ignored]
    values: list[float] = []
    unready = 0
    missing = 0
    for pod in pods:
        if not ready.get(pod, True):
            unready += 1
            continue
        value = samples.get(pod)
        if value is None:
            missing += 1
            continue
        values.append(value)

    if not values:
        return HpaResult(current_replicas, None, "NoMetrics", 0, missing, unready)

    ready_count = len(values)
    total = math.fsum(values)
    ratio = total / ready_count / target

    def result(replicas: int, reason: str | None = None) -> HpaResult:
        if reason is None:
            if replicas > current_replicas:
                reason = "ScaleUp"
            elif replicas < current_replicas:
                reason = "ScaleDown"
            else:
                reason = "Unchanged"
        return HpaResult(replicas, ratio, reason, ready_count, missing, unready)

    rebalance_unready = unready > 0 and ratio > 1.0
    if not rebalance_unready and missing == 0:
        if _within(ratio, tolerance):
            return result(current_replicas, "WithinTolerance")
        return result(_ceil(ratio * ready_count))

    counted = ready_count
    if missing:
        if ratio < 1.0:
            fill = target if missing_on_scale_down is None else missing_on_scale_down
            total += fill * missing
            counted += missing
        elif ratio > 1.0:
            counted += missing  # at 0
    if rebalance_unready:
        counted += unready  # at 0

    new_ratio = total / counted / target
    if _within(new_ratio, tolerance):
        return result(current_replicas, "WithinTolerance")
    if (ratio < 1.0 < new_ratio) or (new_ratio < 1.0 < ratio):
        return result(current_replicas, "DirectionFlip")
    replicas = _ceil(new_ratio * counted)
    if (new_ratio < 1.0 and replicas > current_replicas) or (
        new_ratio > 1.0 and replicas < current_replicas
    ):
        return result(current_replicas, "DirectionFlip")
    return result(replicas)


# --------------------------------------------------------------------------- behavior

PolicyType = Literal["Pods", "Percent"]
SelectPolicy = Literal["Max", "Min", "Disabled"]


@dataclass(frozen=True, slots=True)
class RatePolicy:
    """One HPA scaling policy: at most ``value`` pods (or percent) per ``period_seconds``."""

    type: PolicyType
    value: int
    period_seconds: int


@dataclass(frozen=True, slots=True)
class Rules:
    """HPAScalingRules of one direction. Empty ``policies`` means no rate limit."""

    stabilization_window_seconds: int
    select_policy: SelectPolicy = "Max"
    policies: tuple[RatePolicy, ...] = ()


DEFAULT_SCALE_UP = Rules(
    stabilization_window_seconds=0,
    select_policy="Max",
    policies=(RatePolicy("Percent", 100, 15), RatePolicy("Pods", 4, 15)),
)
"""HPA's default scale-up: no stabilization; the larger of +100 % or +4 pods per 15 s."""

DEFAULT_SCALE_DOWN = Rules(
    stabilization_window_seconds=300,
    select_policy="Max",
    policies=(RatePolicy("Percent", 100, 15),),
)
"""HPA's default scale-down: 300 s stabilization; up to 100 % per 15 s."""


@dataclass(frozen=True, slots=True)
class BehaviorRules:
    """The HPA v2 ``behavior`` field (defaults are the HPA's defaults)."""

    scale_up: Rules = DEFAULT_SCALE_UP
    scale_down: Rules = DEFAULT_SCALE_DOWN


@dataclass(frozen=True, slots=True)
class BehaviorResult:
    """The bounded replica count and which limit shaped it.

    ``reason`` is the last limit that changed the value: ``AtMaximum``,
    ``AtMinimum``, ``ScaleUpLimited``, ``ScaleDownLimited`` (rate policies),
    else ``ScaleUpStabilized``/``ScaleDownStabilized``, else ``DesiredWithinRange``.
    (Upstream's condition reasons are TooManyReplicas, TooFewReplicas,
    ScaleUpLimit and ScaleDownLimit for the first four.)
    """

    replicas: int
    reason: str
    message: str
    stabilized: int
    limited: bool = False
    stabilization_reason: str | None = field(default=None)


def stabilize(
    current_replicas: int,
    desired_replicas: int,
    behavior: BehaviorRules,
    history: ScaleHistory,
    now: datetime,
) -> tuple[int, str | None]:
    """Stabilization windows of the HPA v2 behavior.

    The scale-up bound is the *min* of the desired count and of every
    recommendation newer than the scale-up window; the scale-down bound is the
    *max* of the desired count and of every recommendation newer than the
    scale-down window (strictly newer: a window of 0 uses only the desired count).
    The result is the current count brought within [up bound, down bound].
    Returns ``(replicas, reason)`` where reason is ``ScaleUpStabilized`` /
    ``ScaleDownStabilized`` when the result differs from ``desired_replicas``,
    else None.
    """
    up_cutoff = now - timedelta(seconds=behavior.scale_up.stabilization_window_seconds)
    down_cutoff = now - timedelta(seconds=behavior.scale_down.stabilization_window_seconds)
    up_bound = min((r.replicas for r in history.since(up_cutoff)), default=desired_replicas)
    up_bound = min(up_bound, desired_replicas)
    down_bound = max((r.replicas for r in history.since(down_cutoff)), default=desired_replicas)
    down_bound = max(down_bound, desired_replicas)
    replicas = min(max(current_replicas, up_bound), down_bound)
    if replicas == desired_replicas:
        return replicas, None
    if desired_replicas >= current_replicas:
        return replicas, "ScaleUpStabilized"
    return replicas, "ScaleDownStabilized"


def _changes_within(
    events: Sequence[ScaleEvent], now: datetime, period_seconds: int
) -> tuple[int, int]:
    cutoff = now - timedelta(seconds=period_seconds)
    added = 0
    removed = 0
    for e in events:
        if e.at > cutoff:
            if e.change > 0:
                added += e.change
            else:
                removed -= e.change
    return added, removed


def _scale_up_limit(
    current: int, events: Sequence[ScaleEvent], rules: Rules, now: datetime
) -> int | None:
    """Highest count the scale-up policies allow now; None = unlimited."""
    if rules.select_policy == "Disabled":
        return current
    if not rules.policies:
        return None
    proposals = []
    for policy in rules.policies:
        added, removed = _changes_within(events, now, policy.period_seconds)
        start = current - added + removed
        if policy.type == "Pods":
            proposals.append(start + policy.value)
        else:  # Percent, rounded up so that a small pool can always grow
            proposals.append(-((-start * (100 + policy.value)) // 100))
    return min(proposals) if rules.select_policy == "Min" else max(proposals)


def _scale_down_limit(
    current: int, events: Sequence[ScaleEvent], rules: Rules, now: datetime
) -> int | None:
    """Lowest count the scale-down policies allow now; None = unlimited."""
    if rules.select_policy == "Disabled":
        return current
    if not rules.policies:
        return None
    proposals = []
    for policy in rules.policies:
        added, removed = _changes_within(events, now, policy.period_seconds)
        start = current - added + removed
        if policy.type == "Pods":
            proposals.append(start - policy.value)
        else:  # Percent, truncated (removing >= 100 % allows going to zero)
            proposals.append(max(0, start * (100 - policy.value)) // 100)
    # "Max" selects the biggest change, i.e. the lowest count; "Min" the smallest change.
    return max(proposals) if rules.select_policy == "Min" else min(proposals)


def rate_limit(
    current_replicas: int,
    desired_replicas: int,
    *,
    min_replicas: int,
    max_replicas: int,
    behavior: BehaviorRules,
    history: ScaleHistory,
    now: datetime,
) -> tuple[int, str, str]:
    """Rate policies and min/max bounds (upstream ``convertDesiredReplicasWithBehaviorRate``).

    For each policy the count at the start of its period is ``current - added +
    removed`` over the events newer than the period; ``Pods`` allows that +/-
    value, ``Percent`` that times (1 +/- value/100) (rounded up when growing,
    truncated when shrinking). ``selectPolicy`` Max takes the policy allowing the
    largest change, Min the smallest, Disabled forbids scaling that way. A limit
    that would move against the direction is clamped to the current count.
    Returns ``(replicas, reason, message)``.
    """
    if desired_replicas > current_replicas:
        limit = _scale_up_limit(current_replicas, history.events, behavior.scale_up, now)
        if limit is not None and limit < current_replicas:
            limit = current_replicas
        if limit is not None and limit < max_replicas:
            allowed, reason = limit, "ScaleUpLimited"
            message = (
                f"the desired count {desired_replicas} is increasing faster than the "
                f"scale-up policies allow ({allowed} now)"
            )
        else:
            allowed, reason = max_replicas, "AtMaximum"
            message = f"the desired count {desired_replicas} is above the maximum {max_replicas}"
        if desired_replicas > allowed:
            return allowed, reason, message
    elif desired_replicas < current_replicas:
        limit = _scale_down_limit(current_replicas, history.events, behavior.scale_down, now)
        if limit is not None and limit > current_replicas:
            limit = current_replicas
        if limit is not None and limit > min_replicas:
            allowed, reason = limit, "ScaleDownLimited"
            message = (
                f"the desired count {desired_replicas} is decreasing faster than the "
                f"scale-down policies allow ({allowed} now)"
            )
        else:
            allowed, reason = min_replicas, "AtMinimum"
            message = f"the desired count {desired_replicas} is below the minimum {min_replicas}"
        if desired_replicas < allowed:
            return allowed, reason, message
    return (
        desired_replicas,
        "DesiredWithinRange",
        "the desired count is within the acceptable range",
    )


def apply_behavior(
    current_replicas: int,
    desired_replicas: int,
    *,
    min_replicas: int,
    max_replicas: int,
    behavior: BehaviorRules,
    history: ScaleHistory,
    now: datetime,
) -> BehaviorResult:
    """Bound a raw recommendation as the HPA v2 controller does.

    Order as upstream: if the current count is outside [min, max] the answer is
    that bound (``AtMinimum``/``AtMaximum``, no behavior applied); otherwise
    :func:`stabilize`, then :func:`rate_limit` with the min/max bounds.
    ``history`` is read only: record this round with
    ``history.add(now, desired_replicas, result.replicas - current_replicas)``.
    """
    if min_replicas > max_replicas:
        raise ValueError(f"min_replicas {min_replicas} > max_replicas {max_replicas}")
    desired_replicas = max(desired_replicas, 0)
    if current_replicas > max_replicas:
        return BehaviorResult(
            max_replicas,
            "AtMaximum",
            f"the current count {current_replicas} is above the maximum {max_replicas}",
            max_replicas,
            True,
        )
    if current_replicas < min_replicas:
        return BehaviorResult(
            min_replicas,
            "AtMinimum",
            f"the current count {current_replicas} is below the minimum {min_replicas}",
            min_replicas,
            True,
        )
    stabilized, stab_reason = stabilize(current_replicas, desired_replicas, behavior, history, now)
    replicas, reason, message = rate_limit(
        current_replicas,
        stabilized,
        min_replicas=min_replicas,
        max_replicas=max_replicas,
        behavior=behavior,
        history=history,
        now=now,
    )
    limited = replicas != stabilized
    if not limited and stab_reason is not None:
        reason = stab_reason
        if stab_reason == "ScaleUpStabilized":
            message = (
                f"recent recommendations were lower than {desired_replicas}; applying the "
                f"lowest recent recommendation ({stabilized})"
            )
        else:
            message = (
                f"recent recommendations were higher than {desired_replicas}; applying the "
                f"highest recent recommendation ({stabilized})"
            )
    return BehaviorResult(replicas, reason, message, stabilized, limited, stab_reason)
