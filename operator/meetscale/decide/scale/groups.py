"""Spanning groups: bridges that share a release, for booked meetings larger than a bridge
in a pool whose conferences are pinned.

In a pinned pool each bridge has a release of its own, and Jicofo keeps a conference on
bridges of one version, so no conference spans bridges there. A booked meeting larger than
a bridge (its expected size above ``participants_per_bridge``) gets a group instead:
bridges started for it with one release, named after the meeting (:func:`group_release`),
enough for its expected size with the declaration margin. Its conference is pinned to that
release, so Jicofo opens it on one of them and spreads it over the others as it grows
(Octo), and nothing else goes there: the group's bridges are held (JVB drain mode) from the
lead time before the meeting may open until its conference closes. Afterwards they are
ordinary bridges, never chosen for another pin (a pin to one would let Jicofo choose among
all of them), and go first when the pool shrinks, being empty.

Pure: no clock, no I/O.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

from meetscale.decide.scale.params import PoolParams
from meetscale.decide.scale.replay import opens_at
from meetscale.decide.scale.types import BookedMeeting, BridgeState

__all__ = [
    "GroupPlan",
    "Grouped",
    "group_bridges",
    "group_release",
    "group_reserved",
    "make_room",
    "open_meetings",
    "plan_groups",
    "spans_group",
    "split_groups",
]

#: a group's release starts with this (a Kubernetes label value: at most 63 characters)
GROUP_PREFIX = "span-"


def group_release(meeting_key: str) -> str:
    """The release of the bridges started for one meeting: stable across passes and
    restarts, a valid label value, and unlike any Pod name the operator gives."""
    digest = hashlib.sha256(meeting_key.encode()).hexdigest()[:16]
    return f"{GROUP_PREFIX}{digest}"


def spans_group(pool: PoolParams, m: BookedMeeting) -> bool:
    """Whether ``m`` gets a spanning group: a pinned pool, and expected larger than a
    bridge (a confidential meeting too: its group is its own, as its bridge would be)."""
    return pool.booked.pinned and m.size > pool.participants_per_bridge


def group_bridges(pool: PoolParams, m: BookedMeeting) -> int:
    """Bridges in ``m``'s group: its expected size with the declaration margin the pins
    keep (``declaration_sigmas`` x its spread x its size) over ``participants_per_bridge``."""
    margin = pool.booked.declaration_sigmas * m.drawn_spread * m.size
    return max(2, math.ceil((m.size + margin) / pool.participants_per_bridge))


@dataclass(frozen=True, slots=True)
class GroupPlan:
    """``start``: the release of each bridge to start this pass for a group (one entry per
    bridge); ``hold``: the groups' bridges to keep out of Jicofo's selection; ``keep``: the
    groups' bridges not to drain; ``pins``: meeting key -> a ready bridge of its group
    (the pin names the group's release); ``members``: every bridge in a group."""

    start: list[str] = field(default_factory=list)
    hold: frozenset[str] = frozenset()
    keep: frozenset[str] = frozenset()
    pins: dict[str, str] = field(default_factory=dict)
    members: frozenset[str] = frozenset()


def _active(pool: PoolParams, m: BookedMeeting, opened: Collection[str], now: datetime) -> bool:
    """From the lead time before ``m`` may open until it ends, or while its conference is
    still open after that."""
    since = opens_at(pool, m) - pool.booked.lead_time
    return since <= now < m.end or (now >= m.end and m.key in opened)


def open_meetings(bridges: Sequence[BridgeState]) -> set[str]:
    """The meetings whose conference has someone on a bridge."""
    return {k for b in bridges for k, n in (b.participants_by_meeting or {}).items() if n > 0}


def group_reserved(
    pool: PoolParams,
    bridges: Sequence[BridgeState],
    booked: Sequence[BookedMeeting],
    now: datetime,
) -> int:
    """Bridges the active groups take (:func:`group_bridges` each), on top of what the
    other meetings need: the placement replay leaves the groups' meetings out."""
    opened = open_meetings(bridges)
    return sum(
        group_bridges(pool, m)
        for m in booked
        if spans_group(pool, m) and _active(pool, m, opened, now)
    )


class Grouped(NamedTuple):
    """``reserved``: the bridges the active groups take; ``others``: the meetings the
    placement replay forecasts (those without a group)."""

    reserved: int
    others: list[BookedMeeting]


def split_groups(
    pool: PoolParams,
    bridges: Sequence[BridgeState],
    booked: Sequence[BookedMeeting],
    now: datetime,
) -> Grouped:
    """In a pinned pool, the meetings larger than a bridge set apart with their groups'
    bridges, as the booked term and the door count them."""
    others = [m for m in booked if not spans_group(pool, m)]
    return Grouped(group_reserved(pool, bridges, booked, now), others)


def plan_groups(
    pool: PoolParams,
    bridges: Sequence[BridgeState],
    booked: Sequence[BookedMeeting],
    now: datetime,
) -> GroupPlan:
    """The groups of this pass: each active large meeting's group topped up to
    :func:`group_bridges` (bridges draining or gone do not count), held and kept while the
    meeting is active, and its conference pinned to the group until it opens. Bridges of
    groups no longer active are returned in ``members`` only."""
    if not pool.booked.pinned:
        return GroupPlan()
    opened = open_meetings(bridges)
    by_release: dict[str, list[BridgeState]] = {}
    for b in bridges:
        if b.group is not None:
            by_release.setdefault(b.group, []).append(b)
    start: list[str] = []
    hold: set[str] = set()
    keep: set[str] = set()
    pins: dict[str, str] = {}
    for m in sorted(booked, key=lambda m: (m.start, m.key)):
        if not spans_group(pool, m) or not _active(pool, m, opened, now):
            continue
        release = group_release(m.key)
        mine = [b for b in by_release.get(release, []) if not b.draining]
        start += [release] * max(0, group_bridges(pool, m) - len(mine))
        keep.update(b.name for b in mine)
        hold.update(b.name for b in mine if b.ready)
        ready = sorted((b for b in mine if b.ready), key=lambda b: (b.created_at, b.name))
        if ready and m.key not in opened and now < m.end:
            pins[m.key] = ready[0].name
    members = frozenset(b.name for group in by_release.values() for b in group)
    return GroupPlan(start, frozenset(hold), frozenset(keep), pins, members)


def make_room(
    pool: PoolParams, active: Sequence[BridgeState], starts: int, avoid: Collection[str]
) -> list[str]:
    """Idle bridges of their own to drain so that ``starts`` group bridges fit under
    ``max_bridges`` (releases are fixed at start: an idle bridge cannot join a group): ready,
    empty, not held, not in a group, not in ``avoid`` (pin targets), newest first. Empty
    when they fit, or when no bridge is idle (the group waits for room)."""
    short = len(active) + starts - pool.bounds.max_bridges
    if short <= 0:
        return []
    idle = [
        b
        for b in active
        if b.ready
        and not (b.held or b.stale or b.draining)
        and b.group is None
        and b.endpoints == 0
        and not b.participants_by_meeting
        and b.name not in avoid
    ]
    idle.sort(key=lambda b: (-b.created_at.timestamp(), b.name))
    return [b.name for b in idle[:short]]
