"""The BridgePool's status after a pass: counts, conditions with reasons, the last scale;
and the pool's gauges, with the same words."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from meetscale import metrics
from meetscale.adapt import ConferenceView
from meetscale.conditions import condition
from meetscale.decide.scale import BridgeState, PlanCondition, ScalePlan
from meetscale.scaling.inputs import Metrics
from meetscale.times import rfc3339

__all__ = [
    "LastScale",
    "PassChanges",
    "PassOutcome",
    "drain_note",
    "export",
    "forget",
    "pool_status",
]

_STATES = ("InService", "Ready", "Draining", "Held")


@dataclass(frozen=True, slots=True)
class LastScale:
    at: datetime
    direction: str  # Up or Down
    reason: str


@dataclass(frozen=True, slots=True)
class PassChanges:
    """What this pass did to the bridges, for the status that follows it."""

    started: set[str]  # drains started
    cancelled: set[str]  # drains cancelled
    gone: set[str]  # removed
    held: set[str]  # held after the pass


def _after(b: BridgeState, changes: PassChanges) -> BridgeState:
    if b.name in changes.started:
        return replace(b, draining=True)
    if b.name in changes.cancelled:
        return replace(b, draining=False)
    return b


def _prom_condition(m: Metrics, bridges: Sequence[BridgeState]) -> PlanCondition:
    problem = m.problem
    if problem is None:
        return PlanCondition(False, "PrometheusAvailable", "per-bridge metrics are available")
    if problem.reason == "NoBridges":
        return PlanCondition(False, "NoBridges", problem.message)
    stale = sorted(b.name for b in bridges if b.stale)
    kept = f"; the loads of {', '.join(stale)} are the last seen" if stale else ""
    return PlanCondition(
        True,
        problem.reason,
        f"{problem.message}; not scaling down, booked demand is the floor{kept}",
    )


def _stab(able: PlanCondition, direction: str) -> tuple[str, str]:
    if able.reason == f"Scale{direction}Stabilized":
        return able.reason, able.message
    return "NotStabilized", f"no scale-{direction.lower()} held back by stabilization"


@dataclass(frozen=True, slots=True)
class PassOutcome:
    """What a pass saw, decided and did: the status is made of it."""

    plan: ScalePlan
    bridges: Sequence[BridgeState]
    metrics: Metrics
    changes: PassChanges
    last_scale: LastScale | None
    max_bridges: int
    problem: tuple[str, str] | None = None  # what keeps bridges from being created
    conferences: ConferenceView | None = None
    isolated: PlanCondition | None = None  # a confidential pool's NetworkPolicy
    pinned: PlanCondition | None = None  # a pinned pool's pins (ConferencesPinned)


def drain_note(b: BridgeState) -> str:
    """A draining bridge, and since when (its drain mark, which outlives an operator)."""
    if b.drain_started_at is None:
        return b.name
    return f"{b.name} (since {rfc3339(b.drain_started_at)})"


def _conditions(o: PassOutcome, draining: Sequence[BridgeState]) -> list[tuple[str, PlanCondition]]:
    plan, pc = o.plan, o.plan.conditions
    able = pc["AbleToScale"]
    at_max = plan.desired >= o.max_bridges
    provisioned = (
        PlanCondition(False, *o.problem)
        if o.problem
        else PlanCondition(True, "BridgesCreated", "the pool's bridges can be created")
    )
    isolated = [("Isolated", o.isolated)] if o.isolated is not None else []
    pinned = [("ConferencesPinned", o.pinned)] if o.pinned is not None else []
    return [
        *isolated,
        *pinned,
        ("BridgesProvisioned", provisioned),
        ("ScalingActive", pc["ScalingActive"]),
        ("AbleToScale", able),
        (
            "ScaleUpStabilized",
            PlanCondition(able.reason == "ScaleUpStabilized", *_stab(able, "Up")),
        ),
        (
            "ScaleDownStabilized",
            PlanCondition(able.reason == "ScaleDownStabilized", *_stab(able, "Down")),
        ),
        ("ScaleLimited", pc["ScalingLimited"]),
        (
            "AtMaximum",
            PlanCondition(
                at_max,
                "AtMaximum" if at_max else "BelowMaximum",
                f"desired {plan.desired} of at most {o.max_bridges} bridges (live wants "
                f"{plan.live_replicas}, bookings {plan.booked_replicas})",
            ),
        ),
        ("BookingsCovered", pc["BookingsCovered"]),
        ("PrometheusUnavailable", _prom_condition(o.metrics, o.bridges)),
        (
            "Draining",
            PlanCondition(
                bool(draining),
                "DrainInProgress" if draining else "NoDrain",
                (
                    f"draining: {', '.join(drain_note(b) for b in draining)}"
                    if draining
                    else "no bridge is draining"
                ),
            ),
        ),
    ]


def pool_status(
    o: PassOutcome, old: Mapping[str, Any], now: datetime, generation: int | None
) -> dict[str, Any]:
    """The status after this pass's actions (drains started/cancelled, pods removed)."""
    plan, changes = o.plan, o.changes
    real = [_after(b, changes) for b in o.bridges if b.name not in changes.gone]
    active = [b for b in real if not b.draining]
    ready = [b for b in active if b.ready]
    draining = sorted((b for b in real if b.draining), key=lambda b: b.name)
    stresses = [b.stress for b in ready if b.stress is not None]
    endpoints = [b.endpoints for b in real if b.endpoints is not None]
    was = old.get("conditions")
    status: dict[str, Any] = {
        "desired": plan.desired,
        "current": plan.current,
        "ready": len(ready),
        "draining": len(draining),
        "held": len(changes.held),
        "observedStress": round(sum(stresses) / len(stresses), 3) if stresses else None,
        "observedParticipants": sum(endpoints) if o.metrics.ok else None,
        "bookedParticipants": plan.booked.participants,
        "bookedBridges": plan.booked_replicas,
        "conditions": [
            condition(ctype, c.status, c.reason, c.message, now, was, generation)
            for ctype, c in _conditions(o, draining)
        ],
    }
    if o.conferences is not None and o.conferences.complete:
        status["unbookedConferences"] = len(o.conferences.unbooked)
        status["unbookedParticipants"] = sum(o.conferences.unbooked.values())
    if o.last_scale is not None:
        status["lastScaleTime"] = rfc3339(o.last_scale.at)
        status["lastScaleDirection"] = o.last_scale.direction
        status["lastScaleReason"] = o.last_scale.reason
    if generation is not None:
        status["observedGeneration"] = generation
    return status


def export(pool: str, plan: ScalePlan, status: Mapping[str, Any]) -> None:
    """The pool's gauges: desired bridges, and bridges by state."""
    metrics.pool_desired_bridges.labels(pool=pool).set(plan.desired)
    metrics.pool_bridges.labels(pool=pool, state="InService").set(plan.current)
    metrics.pool_bridges.labels(pool=pool, state="Ready").set(status["ready"])
    metrics.pool_bridges.labels(pool=pool, state="Draining").set(status["draining"])
    metrics.pool_bridges.labels(pool=pool, state="Held").set(status["held"])


def forget(pool: str) -> None:
    """Drop a pool's gauges (the pool is gone)."""
    with contextlib.suppress(KeyError):
        metrics.pool_desired_bridges.remove(pool)
    with contextlib.suppress(KeyError):
        metrics.pool_pins.remove(pool)
    for state in _STATES:
        with contextlib.suppress(KeyError):
            metrics.pool_bridges.remove(pool, state)
