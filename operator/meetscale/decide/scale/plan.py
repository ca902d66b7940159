"""How many videobridges a pool should run now, and which ones to drain or hold.

:func:`decide_scale` combines two demand terms:

* **live**: the HPA replica calculator (:func:`~meetscale.decide.scale.hpa.hpa_replicas`)
  over the stress of the non-draining bridges against ``target_stress``; it reacts to
  load that is already there. It goes through the HPA v2 behavior (stabilization, rate
  policies, min/max: :func:`~meetscale.decide.scale.hpa.apply_behavior`).
* **booked**: the bridges the admitted meetings running or starting within the lead time
  need as Jicofo would place them, plus headroom for unbooked participants expected
  meanwhile (:func:`~meetscale.decide.scale.booked.booked_demand`). Bookings are known
  ``lead_time`` ahead, so this term, bounded by min/max, is a floor applied after the
  behavior: it bypasses the rate policies and is not one of the live term's
  recommendations, so the 300 s scale-down stabilization does not hold a burst's bridges
  once it has landed; it has a short window of its own (``booked.stabilization``, 60 s)
  so that a need dipping for a pass as conferences open drains nothing.

Without usable stress metrics the pool never scales down: desired = max(current, booked),
bounded by min/max. Pure: no clock, no I/O; ``now`` and the scale history are parameters.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from meetscale.decide.scale.booked import BookedResult, booked_term
from meetscale.decide.scale.groups import GroupPlan, make_room, plan_groups
from meetscale.decide.scale.holds import holds, shield
from meetscale.decide.scale.hpa import HpaResult, ScaleHistory, apply_behavior, hpa_replicas
from meetscale.decide.scale.params import PoolParams
from meetscale.decide.scale.pins import choose_pins, pin_holds
from meetscale.decide.scale.removal import (
    choose_cancel,
    choose_drain,
    choose_replacement,
    filling,
    rescue,
)
from meetscale.decide.scale.types import (
    BookedDemand,
    BookedMeeting,
    BridgeState,
    PlanCondition,
    ScalePlan,
    Winner,
)

__all__ = ["decide_scale", "record"]

_LIMIT_REASONS = frozenset({"AtMaximum", "AtMinimum", "ScaleUpLimited", "ScaleDownLimited"})


@dataclass(frozen=True, slots=True)
class _Size:
    """How many bridges, which term won, and why."""

    desired: int
    live_n: int
    recommendation: int | None
    winner: Winner
    reason: str
    stabilization: str | None  # the behavior's stabilization reason, if any
    have_metrics: bool


def _size(
    pool: PoolParams,
    current: int,
    live: HpaResult,
    need: int,
    history: ScaleHistory,
    now: datetime,
    metrics_ok: bool,
) -> _Size:
    lo, hi = pool.bounds.min_bridges, pool.bounds.max_bridges
    winner: Winner
    if not (metrics_ok and live.reason != "NoMetrics"):
        raw = max(current, need)
        desired = min(max(raw, lo), hi)
        if raw > hi:
            winner, reason = "max", "AtMaximum"
        elif raw < lo:
            winner, reason = "min", "AtMinimum"
        elif need > current:
            winner, reason = "booked", "BookedDemand"
        else:
            winner, reason = "hold", "MetricsUnavailable"
        return _Size(desired, current, None, winner, reason, None, False)
    live_n = live.replicas
    beh = apply_behavior(
        current,
        live_n,
        min_replicas=lo,
        max_replicas=hi,
        behavior=pool.live.behavior,
        history=history,
        now=now,
    )
    desired = max(beh.replicas, min(max(need, lo), hi))
    if desired > beh.replicas:  # the booked floor overrode stabilization/rate limits
        winner, reason = ("max", "AtMaximum") if need > hi else ("booked", "BookedDemand")
    elif beh.reason == "AtMaximum":
        winner, reason = "max", "AtMaximum"
    elif beh.reason == "AtMinimum":
        winner, reason = "min", "AtMinimum"
    else:
        winner = "booked" if need > live_n else "live"
        if beh.reason != "DesiredWithinRange":
            reason = beh.reason
        else:
            reason = "BookedDemand" if winner == "booked" else "LiveLoad"
    return _Size(desired, live_n, live_n, winner, reason, beh.stabilization_reason, True)


@dataclass(frozen=True, slots=True)
class _Actions:
    drain: list[str]
    cancel: list[str]
    hold: list[str]
    release: list[str]
    shield: list[str]
    replace: list[str]


def _actions(
    pool: PoolParams,
    bridges: Sequence[BridgeState],
    desired: int,
    term: BookedResult,
    now: datetime,
    booked: Sequence[BookedMeeting],
    pinned: Mapping[str, str],
    groups: GroupPlan,
) -> _Actions:
    active = [b for b in bridges if not b.draining]
    draining = [b for b in bridges if b.draining]
    current = len(active)
    drain: list[str] = []
    cancel: list[str] = []
    shielded: list[str] = []
    if term.replay is not None and desired == current and not pool.booked.pinned:
        # nothing drains the least-loaded bridge this pass, which the replay may have left out
        # (pinned conferences open where they are pinned: no pile-up to shield against)
        shielded = shield(term.replay, bridges, term.reserved)
    hold, release = holds(active, term.reserved, shielded)
    if desired > current:
        cancel = choose_cancel(draining, desired - current)
    elif desired < current:
        # as the bridges will be after this pass's holds and releases
        after = [
            replace(b, held=b.name in hold) if b.name in hold or b.name in release else b
            for b in active
        ]
        keep = filling(active, booked, now, pool.booked.join_grace, pool.booked.early_join)
        keep |= frozenset(pinned.values())  # conferences are about to open there
        keep |= groups.keep  # the groups of meetings larger than a bridge
        drain = choose_drain(after, current - desired, now, pool.drain.protection, keep)
    if groups.start and not drain:  # at maxBridges: idle bridges make room for a group
        drain = make_room(pool, active, len(groups.start), frozenset(pinned.values()))
    for name in rescue(pool.drain, draining, now):
        if name not in cancel:
            cancel.append(name)
    renew = [] if drain else choose_replacement([b for b in bridges if b.name not in hold])
    return _Actions(drain, cancel, hold, release, shielded, renew)


def decide_scale(
    pool: PoolParams,
    bridges: Sequence[BridgeState],
    booked: Sequence[BookedMeeting],
    history: ScaleHistory,
    now: datetime,
    adhoc_rate: float = 0.0,
    *,
    metrics_ok: bool = True,
    pinned: Mapping[str, str] | None = None,
) -> ScalePlan:
    """Desired bridges for a pool, which to drain and which drains to cancel.

    ``bridges``: every bridge pod of the pool, draining ones included.
    ``booked``: the pool's admitted (not cancelled, not finished) meetings.
    ``history``: past recommendations and scale events (see :func:`record`).
    ``adhoc_rate``: unbooked participants expected per minute.
    ``metrics_ok``: False when the metrics source failed; also treated as False
    when no ready non-draining bridge reports a stress.
    ``pinned``: the pins given before (meeting key -> bridge), in a pinned pool.

    Guarantees: min_bridges <= desired <= max_bridges; desired >=
    min(booked, max_bridges); without metrics desired >= min(current, max_bridges).
    """
    active = [b for b in bridges if not b.draining]
    current = len(active)
    live = hpa_replicas(
        current,
        {b.name: b.stress for b in active},
        pool.live.target_stress,
        pool.live.tolerance,
        ready={b.name: b.ready for b in active},
    )
    term = booked_term(pool, booked, bridges, now, adhoc_rate)
    need = term.demand.replicas
    held = history.booked_peak(now - pool.booked.stabilization)
    size = _size(pool, current, live, max(need, held), history, now, metrics_ok)
    groups = plan_groups(pool, bridges, booked, now)
    if groups.start and size.desired < current + len(groups.start) <= pool.bounds.max_bridges:
        # a group is started whole, even while other bridges are to go (they drain next pass)
        size = replace(size, desired=current + len(groups.start))
    act = _actions(pool, bridges, size.desired, term, now, booked, pinned or {}, groups)
    draining = len(bridges) - current
    out = set(act.drain) | set(act.replace)
    pins = choose_pins(pool, bridges, booked, pinned or {}, now, out | groups.members)
    if pool.booked.pinned:  # the holds are the pins' and the groups' (no shield, nothing reserved)
        hold, release = pin_holds(bridges, pins.pins, out, groups.hold)
        act = replace(act, hold=hold, release=release)
    all_pins = {**pins.pins, **groups.pins}
    grouped = groups.start[: max(0, size.desired - current - len(act.cancel))]
    return ScalePlan(
        desired=size.desired,
        current=current,
        live_replicas=size.live_n,
        booked_replicas=need,
        recommendation=size.recommendation,
        winner=size.winner,
        reason=size.reason,
        message=_message(pool, size, live, term.demand, held, current, draining, act, len(grouped)),
        conditions=_conditions(pool, size, live, need),
        drain=act.drain,
        cancel_drain=act.cancel,
        live=live,
        booked=term.demand,
        hold=act.hold,
        release=act.release,
        shield=act.shield,
        replace=act.replace,
        pins=all_pins,
        group_starts=grouped,
    )


def _message(
    pool: PoolParams,
    size: _Size,
    live: HpaResult,
    demand: BookedDemand,
    held: int,
    current: int,
    draining: int,
    act: _Actions,
    grouped: int = 0,
) -> str:
    """One sentence with each term's numbers: what the event and the status say
    (``grouped``: bridges started this pass for spanning groups)."""
    live_text = (
        f"mean stress {live.usage_ratio * pool.live.target_stress:.2f} vs target "
        f"{pool.live.target_stress:.2f} over {live.ready_count} ready bridges recommends "
        f"{size.live_n}"
        if size.have_metrics and live.usage_ratio is not None
        else "stress metrics unavailable, not scaling down"
    )
    hi = pool.bounds.max_bridges
    need = demand.replicas - demand.headroom
    lead = round(pool.booked.lead_time.total_seconds() / 60)
    booked_text = (
        f"{demand.meetings} booked meetings with {demand.participants} participants need "
        f"{f'more than {hi}' if need > hi else need} bridges as Jicofo would place them"
        f"{f' ({demand.spare} spare)' if demand.spare else ''}, "
        f"plus {demand.headroom} for {demand.unbooked_expected} unbooked participants "
        f"expected in the next {lead} min"
    )
    if held > demand.replicas:
        window = round(pool.booked.stabilization.total_seconds())
        booked_text += f", held at {held} (the highest booked need in the last {window} s)"
    actions = ""
    if act.drain:
        actions = f"; draining {len(act.drain)}"
    if act.cancel:
        actions += f"; cancelling {len(act.cancel)} drains"
    if act.replace:
        actions += f"; replacing outdated {', '.join(act.replace)}"
    if grouped:
        actions += f"; starting {grouped} for meetings larger than a bridge (spanning groups)"
    lo = pool.bounds.min_bridges
    return (
        f"{current} bridges ({draining} draining); live: {live_text}; booked: "
        f"{booked_text}; desired {size.desired} (min {lo}, max {hi}){actions}"
    )


def _conditions(
    pool: PoolParams, size: _Size, live: HpaResult, need: int
) -> dict[str, PlanCondition]:
    hi = pool.bounds.max_bridges
    limited = size.reason in _LIMIT_REASONS
    stab = size.stabilization
    return {
        "ScalingActive": (
            PlanCondition(
                True, "ValidMetricFound", f"stress of {live.ready_count} bridges is available"
            )
            if size.have_metrics
            else PlanCondition(
                False, "MetricsUnavailable", "no usable stress metrics; holding scale-down"
            )
        ),
        "AbleToScale": PlanCondition(
            True,
            stab or "ReadyForNewScale",
            "recommendation stabilized over recent ones"
            if stab
            else "recommended size matches current size",
        ),
        "ScalingLimited": PlanCondition(
            limited,
            size.reason if limited else "DesiredWithinRange",
            f"desired {size.desired} limited ({size.reason})"
            if limited
            else "the desired count is within the acceptable range",
        ),
        "BookingsCovered": (
            PlanCondition(
                True, "BookedDemandMet", f"{size.desired} bridges cover the {need} booked ones"
            )
            if size.desired >= need
            else PlanCondition(
                False,
                "BookedDemandExceedsMax",
                f"bookings need {need} bridges but maxBridges is {hi}",
            )
        ),
    }


def record(history: ScaleHistory, plan: ScalePlan, now: datetime) -> ScaleHistory:
    """The history after carrying out ``plan`` at ``now``.

    Records the plan's recommendation, its booked need (the booked term's floor for
    ``booked.stabilization`` after) and the scale event: ``desired - current`` when
    growing (cancelled drains included), minus the bridges actually put to drain when
    shrinking.
    """
    change = plan.desired - plan.current if plan.desired > plan.current else -len(plan.drain)
    # a booked need of 0 raises no later floor: not recorded
    return history.add(now, plan.recommendation, change, booked=plan.booked_replicas or None)
