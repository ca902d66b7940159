"""At the door: a short-notice Meeting is admitted only if the pool can take it (pure).

A Meeting booked at least the lead time ahead is provisioned for by the booked term: the
pool grows for it in time. One created later (an ad-hoc meeting, or a late booking) lands
on the bridges there are, or can still be started, up to ``maxBridges``: when Jicofo's
placement of it beside everything booked within the lead time would overflow a bridge
even at ``maxBridges``, admitting it would degrade the rooms already booked, so it is
Queued (`PoolFull`) with the earliest time it would fit, and decided again as the pool
frees. Meetings already admitted are never touched. This trades denied minutes of the
late one for degraded minutes of the others, on purpose: the shared system does not
overload.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from meetscale.decide.admit.types import AdmissionPlan, Decision, MeetingRequest, Reason
from meetscale.decide.scale.groups import split_groups
from meetscale.decide.scale.holds import reserved
from meetscale.decide.scale.params import PoolParams
from meetscale.decide.scale.replay import replay
from meetscale.decide.scale.types import BookedMeeting, BridgeState
from meetscale.models.meeting import CANDIDATE_PHASES, Phase

__all__ = ["PoolNow", "at_the_door", "short_notice"]

#: how far ahead the earliest fitting time is searched, and in which steps
SEARCH: timedelta = timedelta(hours=4)
STEP: timedelta = timedelta(minutes=5)  # longer than a bridge's start-up


@dataclass(frozen=True, slots=True)
class PoolNow:
    """The pool as its scaling pass last saw it: its parameters, bridges and the booked
    meetings it provisions for (the scaling core's inputs)."""

    params: PoolParams
    bridges: Sequence[BridgeState]
    booked: Sequence[BookedMeeting]


def short_notice(req: MeetingRequest, lead_time: timedelta) -> bool:
    """Created less than the lead time before its start: the booked term could not
    provision for it."""
    return req.start - req.created_at < lead_time


def _soon(pool: PoolNow, at: datetime, opens: datetime) -> bool:
    """Opening before a bridge started now could take it: only ready bridges count."""
    return opens < at + pool.params.booked.bridge_startup


def _fits_on(
    params: PoolParams,
    bridges: Sequence[BridgeState],
    booked: Sequence[BookedMeeting],
    at: datetime,
    ready_only: bool,
) -> bool:
    """Whether Jicofo's placement of ``booked`` from ``at`` fits: on the ready bridges
    (a conference opening before a new bridge is up lands on one that is), or else up to
    ``maxBridges``; either way once those held empty for the meetings larger than a
    bridge are set aside (in a pinned pool: their groups, whose meetings and bridges are
    left out of the replay)."""
    if params.booked.pinned:  # meetings larger than a bridge get groups of their own
        groups, booked = split_groups(params, bridges, booked, at)
        bridges = [b for b in bridges if b.group is None]
    if ready_only:
        bridges = [b for b in bridges if b.ready]
        n = sum(1 for b in bridges if not b.draining and not b.held)
    elif params.booked.pinned:
        n = params.bounds.max_bridges - groups
    else:
        n = params.bounds.max_bridges
    if not params.booked.pinned:
        held = sum(1 for b in bridges if b.held and not b.draining) if ready_only else 0
        n -= max(0, reserved(params, booked, at) - held)
    rp = replay(params, booked, bridges, at)
    return n >= 0 and (rp is None or (n > 0 and rp.fits(n)))


def _as_booked(req: MeetingRequest, start: datetime) -> BookedMeeting:
    return BookedMeeting(
        key=req.key,
        start=start,
        end=start + (req.end - req.start),
        participants=req.participants,
        confidential=req.confidential,
    )


def earliest_fit(pool: PoolNow, req: MeetingRequest, now: datetime) -> datetime | None:
    """The first time (in ``STEP``s, within ``SEARCH``) the meeting would fit: the pool
    as it is now, the running meetings leaving it as they end, everything booked until
    then arriving, and the pool grown up to ``maxBridges`` meanwhile (a step is longer
    than a bridge's start-up)."""
    lead = pool.params.booked.lead_time
    others = [b for b in pool.booked if b.key != req.key]
    t = max(now, req.start) + STEP
    while t <= now + SEARCH:
        ahead = pool.params.evolve(lead_time=t - now + lead)
        if _fits_on(ahead, pool.bridges, [*others, _as_booked(req, t)], now, ready_only=False):
            return t
        t += STEP
    return None


def _pool_full(
    pool: PoolNow, req: MeetingRequest, now: datetime, opens: datetime, explain: bool
) -> Decision:
    when = earliest_fit(pool, req, now) if explain else None
    later = f"; it would fit from {when.isoformat()}" if when else ""
    limit = (
        "the bridges that are up (a new one takes "
        f"{int(pool.params.booked.bridge_startup.total_seconds())}s to start)"
        if _soon(pool, now, opens)
        else f"its bridges even at maxBridges {pool.params.bounds.max_bridges}"
    )
    return Decision(
        key=req.key,
        phase=Phase.QUEUED,
        reason=Reason.POOL_FULL,
        message=(
            f"the pool is full: {req.participants} more participants opening at "
            f"{opens.isoformat()} would overflow {limit}{later}"
        ),
    )


def at_the_door(
    plan: AdmissionPlan,
    requests: Sequence[MeetingRequest],
    pool: PoolNow | None,
    now: datetime,
    *,
    explain: bool = True,
) -> AdmissionPlan:
    """The plan with every short-notice Meeting it admits checked against the pool as it
    will be; those that would overflow it are Queued with reason `PoolFull`, the message
    saying from when it would fit (``explain``: the simulator, which reads no messages,
    skips that search). Without a view of the pool (no scaling pass yet) nothing
    changes."""
    if pool is None:
        return plan
    lead = pool.params.booked.lead_time
    admitted = [
        r
        for r in sorted(requests, key=lambda r: (r.created_at, r.key))
        if r.phase in CANDIDATE_PHASES  # those already holding are never taken back
        and (d := plan.decisions.get(r.key)) is not None
        and d.phase == Phase.ADMITTED
        and short_notice(r, lead)
        and r.end > now
    ]
    if not admitted:
        return plan
    decisions = dict(plan.decisions)
    deciding = {r.key for r in admitted}
    # a meeting waiting at the door is in the scaling view already (the pool grows for it)
    booked = [b for b in pool.booked if b.key not in deciding]
    for req in admitted:
        opens = max(now, req.start)
        trial = [*booked, _as_booked(req, opens)]
        if _fits_on(pool.params, pool.bridges, trial, now, ready_only=_soon(pool, now, opens)):
            booked = trial
            continue
        decisions[req.key] = _pool_full(pool, req, now, opens, explain)
    return AdmissionPlan(
        decisions=decisions,
        usage=plan.usage,
        pool_units_in_use=plan.pool_units_in_use,
        pool_peak_booked_units=plan.pool_peak_booked_units,
        pool_capacity=plan.pool_capacity,
    )
