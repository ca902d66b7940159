"""The booked term: bridges the admitted meetings need within the lead time. Pure."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import NamedTuple

from meetscale.decide.scale.groups import split_groups
from meetscale.decide.scale.holds import reserved
from meetscale.decide.scale.params import PoolParams
from meetscale.decide.scale.replay import Replay, counted_from, need, opens_at, replay
from meetscale.decide.scale.types import BookedDemand, BookedMeeting, BridgeState

__all__ = ["BookedResult", "booked_demand", "booked_term"]

_INSTANT = timedelta(microseconds=1)


class BookedResult(NamedTuple):
    """The booked term with what it was computed from, for the holds of the same pass."""

    demand: BookedDemand
    replay: Replay | None  # None when nothing starts within the lead time
    reserved: int  # bridges held empty for meetings larger than a bridge


class _Presence(NamedTuple):
    since: float  # seconds after now
    until: float
    participants: int


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

    Counted: running meetings, and meetings that end after ``now`` from
    :func:`~meetscale.decide.scale.replay.counted_from` on (``lead_time`` before their
    start, or ``bridge_startup`` before their first participants may come, ``early_join``
    before it, if that is earlier). Participants of a meeting: declared if not running;
    if running, the observed count (max(declared, observed) within ``join_grace`` of its
    start; declared if nothing is observed).

    ``placed``: the placement replay's fewest bridges (see
    :func:`~meetscale.decide.scale.replay.placement_need`), plus the bridges held empty
    for meetings larger than a bridge on top of the occupied ones, and ``booked.spare``
    more while conferences are to open (below ``max_bridges``). ``participants``: at
    the busiest instant (``now`` and every counted start), where a running meeting is
    present while ``t < end`` (at ``now`` also when it overruns its end) and one not yet
    running over ``[opens, end)`` (:func:`~meetscale.decide.scale.replay.opens_at`):
    back-to-back meetings are never added up. The term is ``max(placed, participants /
    participants_per_bridge)`` plus ``headroom`` bridges for ``adhoc_rate`` (unbooked
    participants arriving per minute) times the lead time; ``unbooked_now`` reports the
    participants on the bridges now that belong to no running booked meeting (the live
    term's load).
    """
    return booked_term(pool, booked, bridges, now, adhoc_rate).demand


def booked_term(
    pool: PoolParams,
    booked: Sequence[BookedMeeting],
    bridges: Sequence[BridgeState],
    now: datetime,
    adhoc_rate: float = 0.0,
) -> BookedResult:
    """:func:`booked_demand`, with the replay it searched and the reserved bridges."""
    ppb = pool.participants_per_bridge
    observed: dict[str, int] | None = None
    meetings = 0
    running_present = 0
    present: list[_Presence] = []
    for m in booked:
        if m.running:
            obs = m.observed_participants
            if obs is None:
                if observed is None:
                    observed = _observed_by_meeting(bridges)
                obs = observed.get(m.key)
            if obs is None:
                p = m.size
                running_present += m.size
            else:
                p = running_size(pool, m, obs, now)
                running_present += obs
            since, until = now, m.end
            if until <= now:  # overrunning its end: there now, for how long is unknown
                until = now + _INSTANT
        elif counted_from(pool, m) <= now and m.end > now:
            opens = opens_at(pool, m)
            p = m.size
            since, until = max(opens, now), m.end
        else:
            continue
        meetings += 1
        if p > 0:
            present.append(
                _Presence((since - now).total_seconds(), (until - now).total_seconds(), p)
            )
    participants = _busiest(present)
    on_bridges = sum(b.endpoints for b in bridges if b.endpoints is not None)
    unbooked_live = max(0, on_bridges - running_present)
    expected = max(0.0, adhoc_rate) * pool.booked.lead_time.total_seconds() / 60.0
    if pool.booked.pinned:  # meetings larger than a bridge get groups of their own
        n_reserved, others = split_groups(pool, bridges, booked, now)
        rp = replay(pool, others, bridges, now)
    else:
        n_reserved = reserved(pool, booked, now)
        rp = replay(pool, booked, bridges, now)
    placed = need(pool, rp)
    spare = 0
    if rp is not None and 0 < placed < pool.bounds.max_bridges:
        # conferences are to open: one bridge more than the forecast (``booked.spare``)
        spare = min(pool.booked.spare, pool.bounds.max_bridges - placed)
        placed += spare
    if n_reserved:
        # empty bridges held on top of those the other meetings need or occupy
        occupied = sum(
            1 for b in bridges if not b.draining and not b.held and (b.endpoints or 0) > 0
        )
        placed = max(placed, occupied) + n_reserved
    # the live load is on the bridges' loads already: headroom for expected arrivals only
    cap = pool.bridge_capacity
    headroom = math.ceil(round(expected / cap, 9)) if expected > 0 else 0
    replicas = max(placed, math.ceil(round(participants / ppb, 9))) + headroom
    demand = BookedDemand(
        replicas=replicas,
        meetings=meetings,
        participants=participants,
        placed=placed,
        reserved=n_reserved,
        spare=spare,
        headroom=headroom,
        unbooked_now=unbooked_live,
        unbooked_expected=math.ceil(round(expected, 9)),
    )
    return BookedResult(demand, rp, n_reserved)


def running_size(pool: PoolParams, m: BookedMeeting, observed: int, now: datetime) -> int:
    """What a running meeting with ``observed`` participants on the bridges holds: while
    people still join (its join grace), the expected count or more; afterwards what is
    there plus a growth allowance (an empty room keeps only the floor: it can come back)."""
    if now < m.start + pool.booked.join_grace:
        return max(observed, m.size)
    b = pool.booked
    return observed + max(b.growth_floor, math.ceil(b.growth_share * observed))


def _busiest(present: Sequence[_Presence]) -> int:
    """Participants present at the busiest of now (0) and the arrivals (one sweep)."""
    instants = sorted({0.0} | {x.since for x in present})
    moves = sorted(
        [(x.since, x.participants) for x in present] + [(x.until, -x.participants) for x in present]
    )
    here = i = 0
    busiest = 0
    for t in instants:
        while i < len(moves) and moves[i][0] <= t:
            here += moves[i][1]
            i += 1
        busiest = max(busiest, here)
    return busiest
