"""How many videobridges a pool should run now, and which ones to drain.

:func:`decide_scale` combines two demand terms:

* **live**: the HPA replica calculator (:func:`~meetscale.decide.scale.hpa.hpa_replicas`)
  over the stress of the non-draining bridges against ``target_stress``; it
  reacts to load that is already there.
* **booked**: the bridges the admitted meetings need, running now or starting
  within ``lead_time`` (the peak over that window, not the sum), packed the
  way Jicofo places conferences (see :func:`booked_demand`), plus headroom
  for unbooked (ad-hoc) participants; it provisions ahead of load that is known to come.

With ``PoolParams.placement_stress`` > 0 (what the operator runs) the booked
term is placement-aware instead (:func:`placement_need`): Jicofo places a
conference at its first join on the least-loaded bridge and never moves it, so
meetings that start together pile onto the emptiest bridges; the term is the
fewest bridges on which that placement keeps every bridge within capacity. It
is then a floor only, not recorded in the HPA history, so the scale-down
stabilization does not hold a burst's bridges once it has landed.

The recommendation ``max(live, booked)`` (legacy) or ``live`` goes through the HPA v2 behavior
(stabilization, rate policies, min/max: :func:`~meetscale.decide.scale.hpa.apply_behavior`),
then the booked term, bounded by min/max, is a floor that bypasses the rate
policies: bookings are known ``lead_time`` ahead, so they are provisioned at
once rather than at +100 %/15 s. Without usable stress metrics the pool never
scales down: desired = max(current, booked), bounded by min/max.

Pure: no clock, no I/O; ``now`` and the scale history are parameters.
"""

from __future__ import annotations

import functools
import heapq
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal, NamedTuple

from meetscale.decide.scale.hpa import (
    BehaviorRules,
    HpaResult,
    ScaleHistory,
    apply_behavior,
    hpa_replicas,
)
from meetscale.decide.scale.removal import BridgeState, choose_drain

if TYPE_CHECKING:
    from meetscale.models.pool import BridgePoolSpec

__all__ = [
    "DECLARATION_MARGIN",
    "PLACEMENT_STRESS",
    "BookedDemand",
    "BookedMeeting",
    "BridgeState",
    "PoolParams",
    "ScaleHistory",
    "ScalePlan",
    "Winner",
    "booked_demand",
    "clear_replay_cache",
    "decide_scale",
    "first_fit_decreasing",
    "placement_fits",
    "placement_need",
    "record",
]

Winner = Literal["live", "booked", "min", "max", "hold"]
ConditionTuple = tuple[bool, str, str]

_INSTANT = timedelta(microseconds=1)

#: turns the placement-aware booked term on (:meth:`PoolParams.from_spec`, the simulator);
#: as a fraction of ``participants_per_bridge`` it is the flat limit of a bridge that
#: conferences share when ``declaration_margin`` is 0 (a tenth kept for meetings that draw
#: more than they declared); the operator runs :data:`DECLARATION_MARGIN` instead. A
#: conference alone on its bridge may fill it
PLACEMENT_STRESS = 0.9
#: the margin the operator runs (:meth:`PoolParams.from_spec`, the simulator) on a bridge
#: that conferences share, per participant of spread: three standard deviations of a
#: declaration error of 10 %. Meetings draw about their declared count, give or take a tenth
#: each, independently: the conferences a bridge shares add up to a total whose spread is
#: 0.1 x sqrt(sum of their squared sizes), so a 200 beside a 45 needs 61 free (a flat tenth
#: of a 300 bridge, 30, lets it overflow when the 200 draws 248), six classes of 45 need 33
DECLARATION_MARGIN = 0.3
_LIMIT_REASONS = frozenset({"AtMaximum", "AtMinimum", "ScaleUpLimited", "ScaleDownLimited"})


@dataclass(frozen=True, slots=True)
class PoolParams:
    """The scaling parameters of one BridgePool (see ``BridgePoolSpec``).

    ``join_grace``: for this long after a running meeting's scheduled start its
    demand is max(declared, observed) participants (people are still joining);
    afterwards the observed count alone (no-shows release capacity, overruns
    keep it).

    ``placement_stress``: 0 (the default of this class) counts the booked term
    by packing (:func:`booked_demand`'s bins at ``target_stress``) and records
    ``max(live, booked)`` in the HPA history. Above 0 (what
    :meth:`from_spec` and the simulator use) the booked term is
    placement-aware: the fewest bridges for which Jicofo's sticky least-loaded
    placement of the meetings starting within the lead time keeps every bridge
    that conferences share at or below ``participants_per_bridge x
    placement_stress``, and one alone within ``participants_per_bridge`` (see
    :func:`placement_need`); it is a floor applied after the behavior and not
    recorded, so bridges started for a burst of starts are not held by the
    scale-down stabilization once the burst has landed. ``declaration_margin`` > 0
    (:data:`DECLARATION_MARGIN` in :meth:`from_spec` and the simulator) replaces that
    flat margin on shared bridges: a bridge the replay shares between conferences keeps
    ``declaration_margin x sqrt(sum of their squared declared sizes)`` free below
    ``participants_per_bridge`` (see :func:`placement_fits`). ``join_ramp``: how long
    a conference takes to fill in that prediction; ``overrun``: how long after
    its end a running meeting is still assumed on its bridge; ``early_join``: how
    long before its start the first participants of a meeting larger than one
    bridge may join (the operator's pre-join margin): such a conference grows on
    one bridge until it spans, so that bridge must be empty when it opens.

    ``hold_large`` (what :meth:`from_spec` and the simulator use): the bridges of a
    booked meeting larger than a bridge are held empty, out of Jicofo's selection
    (JVB drain mode, not removed), from the lead time before it may open (``start -
    early_join``) until then; without that, small conferences opening just before it
    spread over every empty bridge and it opens beside them (see :func:`_holds`).

    ``drain_timeout``: the pool's drain timeout (None: unknown, or the pool's
    ``drainTimeoutAction`` is Remove). A draining bridge that still hosts
    participants ``drain_rescue`` (at most a quarter of the timeout) before it
    would time out is put back into service (a later scale-down drains it
    again) rather than have its participants cut.
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
    placement_stress: float = 0.0
    declaration_margin: float = 0.0
    join_ramp: timedelta = timedelta(seconds=300)
    overrun: timedelta = timedelta(seconds=600)
    drain_timeout: timedelta | None = None
    drain_rescue: timedelta = timedelta(seconds=120)
    early_join: timedelta = timedelta(seconds=600)
    hold_large: bool = False

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
    def from_spec(
        cls, spec: BridgePoolSpec, early_join: timedelta = timedelta(seconds=600)
    ) -> PoolParams:
        """Parameters of a ``meetscale.models.pool.BridgePoolSpec``; ``early_join`` is
        the operator's pre-join margin."""
        return cls(
            early_join=early_join,
            participants_per_bridge=spec.participants_per_bridge,
            min_bridges=spec.min_bridges,
            max_bridges=spec.max_bridges,
            target_stress=spec.target_stress,
            tolerance=spec.tolerance,
            lead_time=timedelta(seconds=spec.lead_time_seconds),
            protection=timedelta(seconds=spec.protection_seconds),
            behavior=BehaviorRules.from_model(spec.behavior),
            placement_stress=PLACEMENT_STRESS,
            declaration_margin=DECLARATION_MARGIN,
            hold_large=True,
            drain_timeout=(
                timedelta(seconds=spec.drain_timeout_seconds)
                if spec.drain_timeout_action == "ReturnToService"
                else None
            ),
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
    placed: int = 0


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
    ``current - desired``: see :func:`~meetscale.decide.scale.removal.choose_drain`).
    ``cancel_drain``: draining bridges to put back into service, preferred to
    starting new ones; new bridges to start: ``desired - current - len(cancel_drain)``.
    ``hold``/``release``: bridges to take out of Jicofo's selection (JVB drain mode, not
    removed) and to put back; ``shield``: the bridge kept out (newly or still) because
    the starts would pile onto it (see :func:`_shield`); other holds are for booked
    meetings larger than a bridge (see :func:`_holds`).
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
    hold: list[str] = field(default_factory=list)
    release: list[str] = field(default_factory=list)
    shield: list[str] = field(default_factory=list)

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
    and ``end > now`` (under the placement-aware term a meeting larger than a bridge
    from ``early_join`` before its start: it may open that early). Participants of
    a meeting: declared if not running; if running, the observed count
    (max(declared, observed) within ``join_grace`` of its start; declared if nothing
    is observed).

    **Peak, not sum**: the booked bridges are the peak, over the instants of
    ``[now, now + lead_time]`` (``now`` and every counted start), of what the
    meetings present at that instant need. A running meeting is present while
    ``t < end`` (at ``now`` also when it overruns its end), one not yet running
    over ``[start, end)``: back-to-back meetings are never added up.
    ``dedicated``, ``shared`` and ``participants`` are those of the peak
    instant; ``meetings`` counts every meeting considered. Under the
    placement-aware term (``placement_stress`` > 0) the replay counts the bridges,
    and the peak instant is the one with the most participants, packed once.

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
    return _booked_demand(pool, booked, bridges, now, adhoc_rate)[0]


def _booked_demand(
    pool: PoolParams,
    booked: Sequence[BookedMeeting],
    bridges: Sequence[BridgeState],
    now: datetime,
    adhoc_rate: float,
) -> tuple[BookedDemand, _Replay | None, int]:
    """:func:`booked_demand`, with the placement replay it searched (None when nothing
    starts or the term is not placement-aware) and the bridges :func:`_reserved` holds."""
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
        elif (opens := _opens_at(pool, m)) <= horizon and m.end > now:
            p = m.participants
            a, b = max(opens, now), m.end
        else:
            continue
        meetings += 1
        if p > 0:
            items.append((a, b, p, m.confidential))
    placement = pool.placement_stress > 0
    instants = sorted({now} | {a for a, _, _, _ in items})
    if placement:
        # the replay counts the bridges: the peak is the busiest instant (the first of
        # equals), found by one sweep over arrivals and departures, and packed once
        moves = sorted([(a, p) for a, _, p, _ in items] + [(b, -p) for _, b, p, _ in items])
        present = i = 0
        busiest, peak = -1, now
        for t in instants:
            while i < len(moves) and moves[i][0] <= t:
                present += moves[i][1]
                i += 1
            if present > busiest:
                busiest, peak = present, t
        instants = [peak]
    best = (0, 0, 0)  # dedicated, shared bins, participants at the peak instant
    for t in instants:
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
    replicas = dedicated + shared_bins + headroom
    placed = reserved = 0
    replay: _Replay | None = None
    if placement:
        # the live load is on the bridges' loads already: headroom for expected arrivals only
        reserved = _reserved(pool, booked, now)
        replay = _replay(pool, booked, bridges, now, ppb * pool.placement_stress)
        placed = _need(pool, replay)
        if reserved:
            # empty bridges held on top of those the other meetings need or occupy
            occupied = sum(
                1 for b in bridges if not b.draining and not b.held and (b.endpoints or 0) > 0
            )
            placed = max(placed, occupied) + reserved
        headroom = math.ceil(round(expected / cap, 9)) if expected > 0 else 0
        replicas = max(placed, math.ceil(round(participants / ppb, 9))) + headroom
    demand = BookedDemand(
        placed=placed,
        replicas=replicas,
        meetings=meetings,
        participants=participants,
        dedicated=dedicated,
        shared=shared_bins,
        headroom=headroom,
        unbooked=math.ceil(round(unbooked, 9)),
    )
    return demand, replay, reserved


def _opens_at(pool: PoolParams, m: BookedMeeting) -> datetime:
    """When a booked meeting's first participants may come: its start, or for one larger
    than a bridge under the placement-aware term ``early_join`` before (see
    :func:`placement_need`)."""
    if pool.placement_stress > 0 and m.participants > pool.participants_per_bridge:
        return m.start - pool.early_join
    return m.start


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


def _rescue(pool: PoolParams, draining: Sequence[BridgeState], now: datetime) -> list[str]:
    """Draining bridges about to reach the drain timeout with participants still on
    them: put back into service rather than cut (a later scale-down drains again)."""
    if pool.drain_timeout is None:
        return []
    due = pool.drain_timeout - min(pool.drain_rescue, pool.drain_timeout / 4)
    return sorted(
        b.name
        for b in draining
        if b.ready
        and b.drain_started_at is not None
        and now - b.drain_started_at >= due
        and (b.endpoints is None or b.endpoints > 0)
    )


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
    demand, replay, reserved = _booked_demand(pool, booked, bridges, now, adhoc_rate)
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
        # placement-aware: the booked floor is applied below, not held by stabilization
        recommendation = live_n if pool.placement_stress > 0 else max(live_n, need)
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
    shield: list[str] = []
    if replay is not None and desired == current:
        # nothing drains the least-loaded bridge this pass, which the replay may have left out
        shield = _shield(replay, bridges, reserved)
    hold, release = _holds(active, reserved, shield)
    if desired > current:
        cancel = _choose_cancel(draining, desired - current)
    elif desired < current:
        # as the bridges will be after this pass's holds and releases
        after = [
            replace(b, held=b.name in hold) if b.name in hold or b.name in release else b
            for b in active
        ]
        drain = choose_drain(after, current - desired, now, pool.protection)
    for name in _rescue(pool, draining, now):
        if name not in cancel:
            cancel.append(name)

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
        hold=hold,
        release=release,
        shield=shield,
    )


def _held_for(pool: PoolParams, m: BookedMeeting) -> bool:
    """Whether ``m`` gets its bridges held until it may open (``hold_large``): a booked,
    not yet running, shared meeting larger than a bridge."""
    return (
        pool.hold_large
        and pool.placement_stress > 0
        and not m.running
        and not m.confidential
        and m.participants > pool.participants_per_bridge
    )


def _reserved(pool: PoolParams, booked: Sequence[BookedMeeting], now: datetime) -> int:
    """Bridges to keep out of Jicofo's selection now: those of the meetings larger than a
    bridge that may open within the lead time but have not yet (:func:`_held_for`)."""
    ppb = pool.participants_per_bridge
    return sum(
        -(-m.participants // ppb)
        for m in booked
        if _held_for(pool, m) and now < _opens_at(pool, m) <= now + pool.lead_time
    )


def _holds(
    active: Sequence[BridgeState], want: int, shield: Sequence[str]
) -> tuple[list[str], list[str]]:
    """(bridges to hold, held bridges to release): the ``shield`` (:func:`_shield`) and
    ``want`` others (:func:`_reserved`). New reserved holds are ready, empty bridges
    (newest first); when there are too few, the booked floor has asked for more and a
    later pass holds them. Extra held bridges (the meeting opened, or was cancelled; a
    shield no longer needed) are released."""
    shielded = set(shield)
    hold = [b.name for b in active if b.name in shielded and not b.held]
    held = sorted((b for b in active if b.held and b.name not in shielded), key=lambda b: b.name)
    if len(held) > want:
        return hold, [b.name for b in held[: len(held) - want]]
    spare = sorted(
        (
            b
            for b in active
            if not b.held
            and b.ready
            and b.endpoints == 0
            and not b.conferences
            and b.name not in shielded
        ),
        key=lambda b: (-b.created_at.timestamp(), b.name),
    )
    return hold + [b.name for b in spare[: want - len(held)]], []


def record(history: ScaleHistory, plan: ScalePlan, now: datetime) -> ScaleHistory:
    """The history after carrying out ``plan`` at ``now``.

    Records the plan's recommendation and the scale event: ``desired - current``
    when growing (cancelled drains included), minus the bridges actually put to
    drain when shrinking.
    """
    change = plan.desired - plan.current if plan.desired > plan.current else -len(plan.drain)
    return history.add(now, plan.recommendation, change)


# --------------------------------------------------------------------------- placement

_FIRST_JOIN_S = 15.0  # a conference's load when it is placed: its share of one scrape


def _ramp(p: float, since: float, ramp: float) -> float:
    """Participants of a conference of ``p`` placed ``since`` seconds ago (nominal ramp)."""
    if ramp <= 0:
        return p
    return p * min(1.0, max(since, _FIRST_JOIN_S) / ramp)


def placement_fits(
    loads: Sequence[float],
    releases: Sequence[tuple[float, float]],
    upcoming: Sequence[tuple[float, float, int, bool]],
    limit: float,
    ppb: int,
    ramp: float,
    margin: float = 0.0,
) -> bool:
    """Whether Jicofo's placement of ``upcoming`` on bridges with ``loads`` keeps every
    bridge that takes one of them at or below ``limit`` participants.

    ``loads``: the bridges' participants now, in Jicofo's tie order (oldest first).
    ``releases``: (seconds from now, fraction of every bridge's load gone by then),
    increasing. ``upcoming``: (start, end, participants, confidential) in seconds from
    now, by start. Each is placed at its start on the least-loaded bridge, where the
    conferences placed before it count as far as their nominal ``ramp`` has filled
    them (a conference placed with others at once weighs little: Jicofo's pile-up), then
    counted in full from its start to its end. One larger than ``ppb`` spans
    ceil(p / ppb) bridges; a confidential one takes empty bridges of its own.

    A conference alone on its bridge may fill it to ``ppb``. With ``margin`` > 0 a bridge
    that already has load keeps ``margin x sqrt(sum of q^2)`` free below ``ppb`` instead
    of ending at or below ``limit``, where q are the participants of the conferences this
    replay put on it (the load already there is observed, not declared).
    """
    n = len(loads)
    # per bridge: conferences still filling (from, until, p), filled ones (until, p) and
    # their sum; all placed ones present now sum to ``full``, their squares to ``squares``
    filling: list[list[tuple[float, float, float]]] = [[] for _ in range(n)]
    filled: list[list[tuple[float, float]]] = [[] for _ in range(n)]
    filled_sum = [0.0] * n
    squares = [0.0] * n
    exclusive = [False] * n
    first = _FIRST_JOIN_S / ramp if ramp > 0 else 1.0
    ri = 0
    kept = 1.0
    # (load now, bridge, load when filled) of the bridges open to placement, as a heap: the
    # loads only move with time, so they are recomputed once per distinct start; between
    # two conferences starting at the same instant only the placements change them
    heap: list[tuple[float, int, float]] = []
    at: float | None = None
    for start, end, p, conf in upcoming:
        if start != at:
            at = start
            while ri < len(releases) and releases[ri][0] <= start:
                kept = 1.0 - releases[ri][1]
                ri += 1
            heap = []
            for b in range(n):
                if exclusive[b]:
                    continue
                if filled[b] and any(e <= start for e, _ in filled[b]):
                    squares[b] -= sum(q * q for e, q in filled[b] if e <= start)
                    filled[b] = [(e, q) for e, q in filled[b] if e > start]
                    filled_sum[b] = sum(q for _, q in filled[b])
                now_load = loads[b] * kept + filled_sum[b]
                full = now_load
                if filling[b]:
                    still = []
                    for a, e, q in filling[b]:
                        if e <= start:
                            squares[b] -= q * q
                            continue
                        since = start - a
                        if ramp <= 0 or since >= ramp:
                            filled[b].append((e, q))
                            filled_sum[b] += q
                            now_load += q
                        else:
                            still.append((a, e, q))
                            now_load += q * (since / ramp if since > _FIRST_JOIN_S else first)
                        full += q
                    filling[b] = still
                heap.append((now_load, b, full))
            heapq.heapify(heap)
        if conf:
            k = -(-p // ppb)
            empty = sorted(b for _, b, full in heap if full <= 0)
            if len(empty) < k:
                return False
            taken = set(empty[:k])
            for b in taken:
                exclusive[b] = True
            heap = [h for h in heap if h[1] not in taken]
            heapq.heapify(heap)
            continue
        k = -(-p // ppb) if p > ppb else 1
        if len(heap) < k:
            return False
        chosen = [heapq.heappop(heap) for _ in range(k)]  # least loaded, oldest on ties
        if k > 1 and chosen[0][2] > 1e-9:
            return False  # it fills its first bridge to ppb before it spans: must be empty
        share = p / k
        # placed now, it weighs its first scrape's share until the loads are recomputed
        weight = share * first
        for load, b, full in chosen:
            filling[b].append((start, end, share))
            squares[b] += share * share
            # alone on its bridge a conference is only too large above ppb: the margin
            # below ppb is for meetings that share a bridge
            if full <= 1e-9:
                bound = max(limit, ppb)
            elif margin > 0:
                bound = ppb - margin * math.sqrt(max(0.0, squares[b]))
            else:
                bound = limit
            if full + share > bound + 1e-9:
                return False
            heapq.heappush(heap, (load + weight, b, full + share))
    return True


@functools.lru_cache(maxsize=4096)
def _placement_fits_cached(
    loads: tuple[float, ...],
    releases: tuple[tuple[float, float], ...],
    upcoming: tuple[tuple[float, float, int, bool], ...],
    limit: float,
    ppb: int,
    ramp: float,
    margin: float,
) -> bool:
    return placement_fits(loads, releases, upcoming, limit, ppb, ramp, margin)


def clear_replay_cache() -> None:
    """Forget the memoized placement replays. The live operator's inputs change between
    passes, so a benchmark that repeats one decision clears this to time it as it runs."""
    _placement_fits_cached.cache_clear()


def _conference_census(
    pool: PoolParams,
    booked: Sequence[BookedMeeting],
    bridges: Sequence[BridgeState],
    now: datetime,
) -> tuple[frozenset[str], frozenset[str]]:
    """Which booked meetings the bridges' conference counts say are placed, and which not.

    Returns (``unplaced``, ``early``). A meeting that started less than
    ``join_ramp`` ago whose conference the bridges do not show yet is *unplaced*:
    Jicofo will place it at its first join on the least-loaded bridge, so the
    replay places it rather than spreading it over the loads (its bridges must not
    be drained before it lands). Conferences beyond the running meetings' are
    meetings that started joining before their start: the *early* ones (the
    soonest starts within ``join_ramp``) fill the bridges they are on, they are not
    placed again. Count: the conferences on all bridges against the running booked
    meetings (each one conference); the newest starts, and of those the largest,
    are the unplaced ones. Both empty when no bridge reports its conferences, or
    when per-meeting counts are known.
    """
    counts = [b.conferences for b in bridges if b.conferences is not None]
    if not counts or any(m.observed_participants is not None for m in booked):
        return frozenset(), frozenset()
    window = pool.join_ramp
    recent: list[BookedMeeting] = []
    settled = 0
    for m in booked:
        if not m.running:
            continue
        if now - m.start < window:
            recent.append(m)
        else:
            settled += 1
    surplus = sum(counts) - settled
    placed = min(len(recent), max(0, surplus))
    # which of them are placed is not known: assume the smallest, and the largest not
    recent.sort(key=lambda m: (m.start, m.participants, m.key))
    unplaced = frozenset(m.key for m in recent[placed:])
    extra = max(0, surplus - len(recent))
    if not extra:
        return unplaced, frozenset()
    # one larger than a bridge (it spreads onto the least-loaded others as it grows) or
    # a confidential one (it needs empty bridges) stays in the replay
    soon = sorted(
        (
            m
            for m in booked
            if not m.running
            and m.start - now < window
            and m.end > now
            and not m.confidential
            and m.participants <= pool.participants_per_bridge
        ),
        key=lambda m: (m.start, m.participants, m.key),
    )
    return unplaced, frozenset(m.key for m in soon[:extra])


class _Replay(NamedTuple):
    """The placement replay of the meetings starting within the lead time, set up once."""

    fits: Callable[[int], bool]  # on n bridges: the least-loaded left out, or empty ones added
    start_n: int  # the participants' lower bound
    fits_loads: Callable[[tuple[float, ...]], bool]  # on bridges with exactly these loads
    load_of: Callable[[BridgeState], float]  # a bridge's load as the replay counts it


def placement_need(
    pool: PoolParams,
    booked: Sequence[BookedMeeting],
    bridges: Sequence[BridgeState],
    now: datetime,
    limit: float,
) -> int:
    """Fewest non-draining bridges for which Jicofo's sticky placement of the booked
    meetings starting within the lead time keeps every bridge they land on at or
    below ``limit`` participants (see :func:`placement_fits`); 0 when none starts.

    Fewer bridges than now: the least-loaded ones are left out (they are the ones
    :func:`~meetscale.decide.scale.removal.choose_drain` drains); more: empty ones are added.
    The loads are the bridges' endpoints; a running meeting whose end plus
    ``pool.overrun`` comes before an upcoming start releases its share of every
    bridge's load by then (which bridge hosts which meeting is not known), and those
    still joining (within ``join_ramp`` of their start) add their missing
    participants in proportion to the load. Searched upwards from the participants'
    lower bound (galloping, then bisection); ``max_bridges + 1`` when even
    ``max_bridges`` does not fit, which is tried right after the lower bound misses
    (a saturated pool costs two replays, not a gallop up to it).
    """
    return _need(pool, _replay(pool, booked, bridges, now, limit))


def _need(pool: PoolParams, replay: _Replay | None) -> int:
    """:func:`placement_need`'s search over a replay set up once."""
    if replay is None:
        return 0
    fits = replay.fits
    # galloping, then bisection: the first n that fits (more bridges rarely hurt)
    hi = pool.max_bridges
    if fits(replay.start_n):
        return replay.start_n
    if not fits(hi):  # a saturated pool: no need to gallop up to it
        return hi + 1
    # hi fits: gallop up to it
    bad, step, good = replay.start_n, 1, hi
    while bad + step < hi:
        if fits(bad + step):
            good = bad + step
            break
        bad, step = bad + step, step * 2
    while good - bad > 1:
        mid = (bad + good) // 2
        if fits(mid):
            good = mid
        else:
            bad = mid
    return good


def _shield(replay: _Replay, bridges: Sequence[BridgeState], reserved: int) -> list[str]:
    """The least-loaded bridge to keep out of Jicofo's selection (held, not drained) when
    the pool keeps its size this pass and the meetings starting within the lead time
    would pile onto that bridge and overflow, but fit spread over the others (see
    :func:`placement_fits`): a nearly empty bridge among loaded ones takes every
    conference that opens until it has caught up with them. :func:`placement_need`
    counts on the least-loaded bridges being left out when it asks for fewer than there
    are, which a scale-down does by draining them; at ``max_bridges``, or while the live
    term keeps the bridges, nothing would. Empty list otherwise.

    Held bridges beyond the ``reserved`` ones (:func:`_reserved`) are an earlier pass's
    shield: they are candidates again, so a shield stays while the replay needs it and
    is released once the starts fit without it (or none is left).
    """
    held = sorted((b for b in bridges if b.held and not b.draining), key=lambda b: b.name)
    active = [b for b in bridges if not b.draining and not b.held]
    cand = sorted(active + held[reserved:], key=lambda b: (b.created_at, b.name))
    loads = [replay.load_of(b) for b in cand]
    if len(cand) < 2 or replay.fits_loads(tuple(loads)):
        return []
    least = min(range(len(cand)), key=lambda i: (loads[i], -cand[i].created_at.timestamp()))
    rest = tuple(x for i, x in enumerate(loads) if i != least)
    if not cand[least].ready or not replay.fits_loads(rest):
        return []
    return [cand[least].name]


def _replay(
    pool: PoolParams,
    booked: Sequence[BookedMeeting],
    bridges: Sequence[BridgeState],
    now: datetime,
    limit: float,
) -> _Replay | None:
    """The replay :func:`placement_need` searches with; None when no meeting starts."""
    horizon = now + pool.lead_time
    ramp = pool.join_ramp.total_seconds()
    ppb = pool.participants_per_bridge
    ups: list[tuple[float, float, int, bool]] = []
    run_total = 0.0
    growth = 0.0
    ends: list[tuple[float, float]] = []
    unplaced, early = _conference_census(pool, booked, bridges, now)
    for m in booked:
        if m.running and m.key not in unplaced:
            p = m.participants if m.observed_participants is None else m.observed_participants
            run_total += p
            since = (now - m.start).total_seconds()
            if m.observed_participants is None and since < ramp:
                growth += p - _ramp(p, since, ramp) if since > 0 else p
            if m.end > now:
                ends.append(((m.end - now + pool.overrun).total_seconds(), p))
        elif m.key in early:
            # its first participants are on the bridges already: the rest joins there
            run_total += m.participants
            growth += m.participants - _ramp(m.participants, 0.0, ramp)
            ends.append(((m.end - now + pool.overrun).total_seconds(), m.participants))
        elif m.participants > 0 and m.end > now:
            start = m.start if m.running else _opens_at(pool, m)  # may open early
            if not m.running and start > horizon:
                continue
            if now < start and _held_for(pool, m):
                continue  # its bridges are held for it (see _reserved)
            ups.append(
                (
                    max(0.0, (start - now).total_seconds()),
                    (m.end - now).total_seconds(),
                    m.participants,
                    m.confidential,
                )
            )
    if not ups:
        return None
    ups.sort(key=lambda u: u[0])
    active = sorted(
        (b for b in bridges if not b.draining and not b.held), key=lambda b: (b.created_at, b.name)
    )
    raw = [float(b.endpoints or 0) for b in active]
    total = sum(raw)
    scale = 1.0
    if total > 0 and growth > 0:
        scale = 1.0 + growth / total
        raw = [x * scale for x in raw]
        total += growth
    denom = max(total, run_total)
    releases: list[tuple[float, float]] = []
    if denom > 0 and ends:
        ends.sort()
        gone = 0.0
        for t, q in ends:
            gone += q
            releases.append((t, min(1.0, gone / denom)))
    order = sorted(range(len(active)), key=lambda i: (raw[i], -active[i].created_at.timestamp()))
    last = ups[-1][0]
    kept = 1.0 - max((f for t, f in releases if t <= last), default=0.0)
    need_total = total * kept + sum(u[2] for u in ups)
    start_n = min(max(1, math.ceil(round(need_total / ppb, 9))), pool.max_bridges)

    # times from the first start: the same situation seen 15 s later is the same key
    shift = ups[0][0]
    ups_key = tuple((a - shift, e - shift, p, c) for a, e, p, c in ups)
    rel_key = tuple((t - shift, f) for t, f in releases)

    def loads_for(n: int) -> tuple[float, ...]:
        if n <= len(active):
            dropped = set(order[: len(active) - n])
            return tuple(raw[i] for i in range(len(active)) if i not in dropped)
        return tuple(raw) + (0.0,) * (n - len(active))

    def fits_loads(loads: tuple[float, ...]) -> bool:
        return _placement_fits_cached(
            loads, rel_key, ups_key, limit, ppb, ramp, pool.declaration_margin
        )

    return _Replay(
        fits=lambda n: fits_loads(loads_for(n)),
        start_n=start_n,
        fits_loads=fits_loads,
        load_of=lambda b: float(b.endpoints or 0) * scale,
    )
