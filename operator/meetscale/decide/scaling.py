"""How many videobridges a pool should run now, and which ones to drain.

:func:`decide_scale` combines two demand terms:

* **live**: the HPA replica calculator (:func:`~meetscale.decide.hpa.hpa_replicas`)
  over the stress of the non-draining bridges against ``target_stress``; it
  reacts to load that is already there.
* **booked**: the bridges the admitted meetings need, running now or starting
  within ``lead_time`` (the peak over that window, not the sum), packed the
  way Jicofo places conferences (see :func:`booked_demand`), plus headroom
  for unbooked (ad-hoc) participants; it provisions ahead of load that is known to come.

The recommendation ``max(live, booked)`` goes through the HPA v2 behavior
(stabilization, rate policies, min/max: :func:`~meetscale.decide.hpa.apply_behavior`),
then the booked term, bounded by min/max, is a floor that bypasses the rate
policies: bookings are known ``lead_time`` ahead, so they are provisioned at
once rather than at +100 %/15 s. Without usable stress metrics the pool never
scales down: desired = max(current, booked), bounded by min/max.

Pure: no clock, no I/O; ``now`` and the scale history are parameters.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal

from meetscale.decide.drain import BridgeState, choose_drain
from meetscale.decide.hpa import (
    BehaviorRules,
    HpaResult,
    ScaleHistory,
    apply_behavior,
    hpa_replicas,
)

if TYPE_CHECKING:
    from meetscale.models.pool import BridgePoolSpec

__all__ = [
    "BookedDemand",
    "BookedMeeting",
    "BridgeState",
    "PoolParams",
    "ScaleHistory",
    "ScalePlan",
    "Winner",
    "booked_demand",
    "decide_scale",
    "first_fit_decreasing",
    "record",
]

Winner = Literal["live", "booked", "min", "max", "hold"]
ConditionTuple = tuple[bool, str, str]

_INSTANT = timedelta(microseconds=1)
_LIMIT_REASONS = frozenset({"AtMaximum", "AtMinimum", "ScaleUpLimited", "ScaleDownLimited"})


@dataclass(frozen=True, slots=True)
class PoolParams:
    """The scaling parameters of one BridgePool (see ``BridgePoolSpec``).

    ``join_grace``: for this long after a running meeting's scheduled start its
    demand is max(declared, observed) participants (people are still joining);
    afterwards the observed count alone (no-shows release capacity, overruns
    keep it).
    """

    participants_per_bridge: int = 300
    min_bridges: int = 1
    max_bridges: int = 10
    target_stress: float = 0.7
    tolerance: float = 0.1
    lead_time: timedelta = timedelta(seconds=600)
    protection: timedelta = timedelta(seconds=300)
    join_grace: timedelta = timedelta(minutes=10)
    behavior: BehaviorRules = field(default_factory=BehaviorRules)

    def __post_init__(self) -> None:
        if self.participants_per_bridge < 1:
            raise ValueError("participants_per_bridge must be >= 1")
        if not 0 <= self.min_bridges <= self.max_bridges:
            raise ValueError(
                f"need 0 <= min_bridges ({self.min_bridges}) <= max_bridges ({self.max_bridges})"
            )
        if not 0 < self.target_stress <= 1:
            raise ValueError(f"target_stress must be in (0, 1], got {self.target_stress}")

    @property
    def bridge_capacity(self) -> int:
        """Participants one bridge takes at ``target_stress``: floor(ppb * target), >= 1."""
        return max(1, math.floor(self.participants_per_bridge * self.target_stress + 1e-9))

    @classmethod
    def from_spec(cls, spec: BridgePoolSpec) -> PoolParams:
        """Parameters of a ``meetscale.models.pool.BridgePoolSpec``."""
        return cls(
            participants_per_bridge=spec.participants_per_bridge,
            min_bridges=spec.min_bridges,
            max_bridges=spec.max_bridges,
            target_stress=spec.target_stress,
            tolerance=spec.tolerance,
            lead_time=timedelta(seconds=spec.lead_time_seconds),
            protection=timedelta(seconds=spec.protection_seconds),
            behavior=BehaviorRules.from_model(spec.behavior),
        )


@dataclass(frozen=True, slots=True)
class BookedMeeting:
    """An admitted meeting of this pool.

    ``participants`` is the declared count; ``observed_participants`` the count
    seen on the bridges when ``running`` (None: unknown, then the bridges'
    ``participants_by_meeting`` are summed if any bridge reports this key).
    """

    key: str
    start: datetime
    end: datetime
    participants: int
    confidential: bool = False
    running: bool = False
    observed_participants: int | None = None


@dataclass(frozen=True, slots=True)
class BookedDemand:
    """The booked term and how it was made up.

    ``replicas = dedicated + shared + headroom``. ``dedicated``: bridges of
    confidential meetings and of meetings larger than one bridge; ``shared``:
    bridges the other meetings pack into; ``headroom``: bridges for
    ``unbooked`` participants (unbooked ones on the bridges now plus those
    expected within the lead time).
    """

    replicas: int
    meetings: int
    participants: int
    dedicated: int
    shared: int
    headroom: int
    unbooked: int


@dataclass(frozen=True, slots=True)
class ScalePlan:
    """The decision for one pool at one instant.

    ``desired``: non-draining bridges wanted. ``current``: non-draining bridges
    now. ``live_replicas``/``booked_replicas``: the two terms (``live_replicas``
    is ``current`` when metrics are unavailable). ``recommendation``: what to
    record in the history (None when metrics are unavailable). ``winner``: which
    term set ``desired`` (``hold``: metrics unavailable, nothing to add).
    ``reason``: one CamelCase word; ``message``: a sentence with the numbers.
    ``conditions``: type -> (status, reason, message) for ``ScalingActive``,
    ``AbleToScale``, ``ScalingLimited`` and ``BookingsCovered``.
    ``drain``: bridges to start draining (may be fewer than
    ``current - desired``: see :func:`~meetscale.decide.drain.choose_drain`).
    ``cancel_drain``: draining bridges to put back into service, preferred to
    starting new ones; new bridges to start: ``desired - current - len(cancel_drain)``.
    """

    desired: int
    current: int
    live_replicas: int
    booked_replicas: int
    recommendation: int | None
    winner: Winner
    reason: str
    message: str
    conditions: dict[str, ConditionTuple]
    drain: list[str]
    cancel_drain: list[str]
    live: HpaResult
    booked: BookedDemand

    @property
    def new_bridges(self) -> int:
        """Bridges to create after cancelling drains."""
        return max(0, self.desired - self.current - len(self.cancel_drain))


def first_fit_decreasing(sizes: Sequence[int], capacity: int) -> int:
    """Bins of ``capacity`` that first-fit decreasing needs for ``sizes``.

    Items larger than ``capacity`` get a bin each. O(n log n): the residual
    capacities live in a max segment tree, so "leftmost bin with room" is one
    descent.
    """
    if capacity < 1:
        raise ValueError("capacity must be >= 1")
    items = sorted((s for s in sizes if s > 0), reverse=True)
    oversize = 0
    while oversize < len(items) and items[oversize] > capacity:
        oversize += 1
    rest = items[oversize:]
    n = len(rest)
    if n == 0:
        return oversize
    size = 1
    while size < n:
        size *= 2
    tree = [capacity] * (2 * size)
    used = 0
    for s in rest:
        i = 1
        while i < size:
            i *= 2
            if tree[i] < s:
                i += 1
        leaf = i - size
        if leaf >= used:
            used = leaf + 1
        tree[i] -= s
        i //= 2
        while i:
            left, right = tree[2 * i], tree[2 * i + 1]
            best = left if left >= right else right
            if tree[i] == best:
                break
            tree[i] = best
            i //= 2
    return oversize + used


def _observed_by_meeting(bridges: Sequence[BridgeState]) -> dict[str, int]:
    seen: dict[str, int] = {}
    for b in bridges:
        if b.participants_by_meeting:
            for key, n in b.participants_by_meeting.items():
                seen[key] = seen.get(key, 0) + n
    return seen


def booked_demand(
    pool: PoolParams,
    booked: Sequence[BookedMeeting],
    bridges: Sequence[BridgeState],
    now: datetime,
    adhoc_rate: float = 0.0,
) -> BookedDemand:
    """Bridges the booked meetings (and unbooked headroom) need within the lead time.

    Counted: running meetings, and meetings with ``start <= now + lead_time``
    and ``end > now``. Participants of a meeting: declared if not running; if
    running, the observed count (max(declared, observed) within ``join_grace`` of
    its start; declared if nothing is observed).

    **Peak, not sum**: the booked bridges are the peak, over the instants of
    ``[now, now + lead_time]`` (``now`` and every counted start), of what the
    meetings present at that instant need. A running meeting is present while
    ``t < end`` (at ``now`` also when it overruns its end), one not yet running
    over ``[start, end)``: back-to-back meetings are never added up.
    ``dedicated``, ``shared`` and ``participants`` are those of the peak
    instant; ``meetings`` counts every meeting considered.

    Placement at one instant, as Jicofo places conferences, with ppb = participants per bridge
    and cap = floor(ppb * target_stress):

    * a confidential meeting takes ceil(p / ppb) bridges of its own;
    * a meeting larger than one bridge (p > ppb) spans ceil(p / ppb) bridges;
    * the others share bridges: first-fit decreasing into bins of cap (a meeting
      with cap < p <= ppb fills a bridge alone).

    Headroom = ceil(unbooked / cap), where unbooked = participants on the
    bridges now that belong to no running booked meeting (all endpoints minus
    the running meetings' observed, else declared, counts; never < 0) plus
    ``adhoc_rate`` (unbooked participants arriving per minute) times the lead
    time in minutes.
    """
    ppb = pool.participants_per_bridge
    cap = pool.bridge_capacity
    horizon = now + pool.lead_time
    observed: dict[str, int] | None = None
    meetings = 0
    running_present = 0
    # (from, until, participants, confidential); from == now for running meetings
    items: list[tuple[datetime, datetime, int, bool]] = []
    for m in booked:
        if m.running:
            obs = m.observed_participants
            if obs is None:
                if observed is None:
                    observed = _observed_by_meeting(bridges)
                obs = observed.get(m.key)
            if obs is None:
                p = m.participants
                running_present += m.participants
            else:
                p = max(obs, m.participants) if now < m.start + pool.join_grace else obs
                running_present += obs
            a, b = now, m.end
            if b <= now:  # overrunning its end: there now, for how long is unknown
                b = now + _INSTANT
        elif m.start <= horizon and m.end > now:
            p = m.participants
            a, b = max(m.start, now), m.end
        else:
            continue
        meetings += 1
        if p > 0:
            items.append((a, b, p, m.confidential))
    best = (0, 0, 0)  # dedicated, shared bins, participants at the peak instant
    for t in sorted({now} | {a for a, _, _, _ in items}):
        dedicated = 0
        shared: list[int] = []
        participants = 0
        for a, b, p, conf in items:
            if not a <= t < b:
                continue
            participants += p
            if conf or p > ppb:
                dedicated += -(-p // ppb)
            else:
                shared.append(p)
        bins = first_fit_decreasing(shared, cap)
        total = dedicated + bins
        if total > best[0] + best[1] or (total == best[0] + best[1] and participants > best[2]):
            best = (dedicated, bins, participants)
    dedicated, shared_bins, participants = best
    on_bridges = sum(b.endpoints for b in bridges if b.endpoints is not None)
    unbooked_live = max(0, on_bridges - running_present)
    expected = max(0.0, adhoc_rate) * pool.lead_time.total_seconds() / 60.0
    unbooked = unbooked_live + expected
    headroom = math.ceil(round(unbooked / cap, 9)) if unbooked > 0 else 0
    return BookedDemand(
        replicas=dedicated + shared_bins + headroom,
        meetings=meetings,
        participants=participants,
        dedicated=dedicated,
        shared=shared_bins,
        headroom=headroom,
        unbooked=math.ceil(round(unbooked, 9)),
    )


def _choose_cancel(draining: Sequence[BridgeState], count: int) -> list[str]:
    """Draining bridges to put back into service: ready ones, most participants first.

    Their participants stay either way; cancelling the busiest drain loses
    nothing, and a ready bridge is cheaper and faster than a new pod. Ties: the
    most recently started drain, then name.
    """
    if count <= 0:
        return []
    candidates = [b for b in draining if b.ready]
    candidates.sort(
        key=lambda b: (
            -(b.endpoints or 0),
            -(b.drain_started_at or b.created_at).timestamp(),
            b.name,
        )
    )
    return [b.name for b in candidates[:count]]


def decide_scale(
    pool: PoolParams,
    bridges: Sequence[BridgeState],
    booked: Sequence[BookedMeeting],
    history: ScaleHistory,
    now: datetime,
    adhoc_rate: float = 0.0,
    *,
    metrics_ok: bool = True,
) -> ScalePlan:
    """Desired bridges for a pool, which to drain and which drains to cancel.

    ``bridges``: every bridge pod of the pool, draining ones included.
    ``booked``: the pool's admitted (not cancelled, not finished) meetings.
    ``history``: past recommendations and scale events (see :func:`record`).
    ``adhoc_rate``: unbooked participants expected per minute.
    ``metrics_ok``: False when the metrics source failed; also treated as False
    when no ready non-draining bridge reports a stress.

    Guarantees: min_bridges <= desired <= max_bridges; desired >=
    min(booked, max_bridges); without metrics desired >= min(current, max_bridges).
    """
    lo, hi = pool.min_bridges, pool.max_bridges
    active = [b for b in bridges if not b.draining]
    draining = [b for b in bridges if b.draining]
    current = len(active)

    live = hpa_replicas(
        current,
        {b.name: b.stress for b in active},
        pool.target_stress,
        pool.tolerance,
        ready={b.name: b.ready for b in active},
    )
    demand = booked_demand(pool, booked, bridges, now, adhoc_rate)
    need = demand.replicas
    floor = min(max(need, lo), hi)
    have_metrics = metrics_ok and live.reason != "NoMetrics"

    recommendation: int | None
    stab_reason: str | None = None
    winner: Winner
    if not have_metrics:
        live_n = current
        recommendation = None
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
    else:
        live_n = live.replicas
        recommendation = max(live_n, need)
        beh = apply_behavior(
            current,
            recommendation,
            min_replicas=lo,
            max_replicas=hi,
            behavior=pool.behavior,
            history=history,
            now=now,
        )
        stab_reason = beh.stabilization_reason
        desired = max(beh.replicas, floor)
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

    drain: list[str] = []
    cancel: list[str] = []
    if desired > current:
        cancel = _choose_cancel(draining, desired - current)
    elif desired < current:
        drain = choose_drain(active, current - desired, now, pool.protection)

    live_text = (
        f"mean stress {live.usage_ratio * pool.target_stress:.2f} vs target "
        f"{pool.target_stress:.2f} over {live.ready_count} ready bridges recommends {live_n}"
        if have_metrics and live.usage_ratio is not None
        else "stress metrics unavailable, not scaling down"
    )
    booked_text = (
        f"{demand.meetings} booked meetings with {demand.participants} participants need "
        f"{demand.dedicated + demand.shared} bridges, plus {demand.headroom} for "
        f"{demand.unbooked} unbooked participants"
    )
    actions = ""
    if drain:
        actions = f"; draining {len(drain)}"
    if cancel:
        actions += f"; cancelling {len(cancel)} drains"
    message = (
        f"{current} bridges ({len(draining)} draining); live: {live_text}; booked: "
        f"{booked_text}; desired {desired} (min {lo}, max {hi}){actions}"
    )

    limited = reason in _LIMIT_REASONS
    conditions: dict[str, ConditionTuple] = {
        "ScalingActive": (
            (True, "ValidMetricFound", f"stress of {live.ready_count} bridges is available")
            if have_metrics
            else (False, "MetricsUnavailable", "no usable stress metrics; holding scale-down")
        ),
        "AbleToScale": (
            True,
            stab_reason or "ReadyForNewScale",
            "recommendation stabilized over recent ones"
            if stab_reason
            else "recommended size matches current size",
        ),
        "ScalingLimited": (
            limited,
            reason if limited else "DesiredWithinRange",
            f"desired {desired} limited ({reason})"
            if limited
            else "the desired count is within the acceptable range",
        ),
        "BookingsCovered": (
            (True, "BookedDemandMet", f"{desired} bridges cover the {need} booked ones")
            if desired >= need
            else (
                False,
                "BookedDemandExceedsMax",
                f"bookings need {need} bridges but maxBridges is {hi}",
            )
        ),
    }
    return ScalePlan(
        desired=desired,
        current=current,
        live_replicas=live_n,
        booked_replicas=need,
        recommendation=recommendation,
        winner=winner,
        reason=reason,
        message=message,
        conditions=conditions,
        drain=drain,
        cancel_drain=cancel,
        live=live,
        booked=demand,
    )


def record(history: ScaleHistory, plan: ScalePlan, now: datetime) -> ScaleHistory:
    """The history after carrying out ``plan`` at ``now``.

    Records the plan's recommendation and the scale event: ``desired - current``
    when growing (cancelled drains included), minus the bridges actually put to
    drain when shrinking.
    """
    change = plan.desired - plan.current if plan.desired > plan.current else -len(plan.drain)
    return history.add(now, plan.recommendation, change)
