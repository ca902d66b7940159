"""The scaling parameters of one BridgePool, grouped by concern.

Each field is documented once, here; the defaults are what the operator runs (a
``BridgePoolSpec`` with its defaults gives exactly ``PoolParams()`` through
:func:`meetscale.adapt.pool_params`, and the simulator goes through the same function).
As Kopf's ``OperatorSettings``, the groups are plain dataclasses: ``bounds`` (how many
bridges and how large), ``live`` (the HPA term), ``booked`` (the bookings term) and
``drain`` (taking bridges away). Pure: no clock, no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace
from datetime import timedelta
from typing import Any

from meetscale.decide.scale.history import BOOKED_HISTORY
from meetscale.decide.scale.hpa import BehaviorRules

__all__ = [
    "DECLARATION_SIGMAS",
    "BookedTerm",
    "Bounds",
    "DrainRules",
    "LiveTerm",
    "PoolParams",
]

#: the margin a bridge that conferences share keeps free, in standard deviations of what
#: they draw. Meetings draw about what is expected of them, give or take their agency's
#: spread each (a tenth when nothing is known), independently: the conferences a bridge
#: shares add up to a total whose standard deviation is sqrt(sum of (spread x size)^2), so
#: with a tenth a 200 beside a 45 needs 61 free (a flat tenth of a 300 bridge, 30, lets it
#: overflow when the 200 draws 248), six classes of 45 need 33
DECLARATION_SIGMAS = 3.0


@dataclass(frozen=True, slots=True)
class Bounds:
    """How many bridges a pool may run, and how many participants one takes."""

    #: participants one bridge carries at full load (stress 1.0)
    participants_per_bridge: int = 300
    #: the fewest non-draining bridges, whatever the load
    min_bridges: int = 1
    #: the most non-draining bridges, whatever the bookings
    max_bridges: int = 10

    def __post_init__(self) -> None:
        if self.participants_per_bridge < 1:
            raise ValueError("participants_per_bridge must be >= 1")
        if not 0 <= self.min_bridges <= self.max_bridges:
            raise ValueError(
                f"need 0 <= min_bridges ({self.min_bridges}) <= max_bridges ({self.max_bridges})"
            )


@dataclass(frozen=True, slots=True)
class LiveTerm:
    """The live term: the HPA replica calculator over the bridges' stress, then the HPA v2
    behavior (stabilization windows and rate policies)."""

    #: the mean stress the live term aims for (0..1)
    target_stress: float = 0.7
    #: no change while mean stress / target is within 1 +- tolerance (the HPA's band)
    tolerance: float = 0.1
    #: the HPA v2 ``behavior``: stabilization windows and rate policies per direction
    behavior: BehaviorRules = field(default_factory=BehaviorRules)

    def __post_init__(self) -> None:
        if not 0 < self.target_stress <= 1:
            raise ValueError(f"target_stress must be in (0, 1], got {self.target_stress}")


@dataclass(frozen=True, slots=True)
class BookedTerm:
    """The booked term: bridges for the admitted meetings that run or start soon, replayed
    as Jicofo would place their conferences (see :mod:`meetscale.decide.scale.replay`)."""

    #: how far ahead of its start a booked meeting is provisioned (the time a bridge needs
    #: to come up, with room to spare); earlier when its first participants may come
    #: sooner than ``bridge_startup`` after that (see ``early_join``)
    lead_time: timedelta = timedelta(seconds=600)
    #: for this long after a running meeting's start its demand is max(expected, observed)
    #: participants (people are still joining); afterwards the observed count plus a growth
    #: allowance (no-shows release capacity, an empty room most of it, overruns keep it)
    join_grace: timedelta = timedelta(minutes=10)
    #: the growth allowance of a running meeting past its join grace: this share of who is
    #: there, and at least ``growth_floor`` participants (latecomers; an empty room can
    #: come back)
    growth_share: float = 0.1
    growth_floor: int = 5
    #: how long a conference takes to fill in the placement replay
    join_ramp: timedelta = timedelta(seconds=300)
    #: how long after its end a running meeting is still assumed on its bridge (the
    #: replay's release of its load)
    overrun: timedelta = timedelta(seconds=600)
    #: how long before its start the first participants of a meeting may join (the
    #: operator's pre-join margin): Jicofo places its conference at that first join and
    #: never moves it, so the booked term counts it from ``bridge_startup`` before then at
    #: the latest; a meeting larger than a bridge grows on one bridge until it spans, so
    #: it is placed, and its bridges held, from then
    early_join: timedelta = timedelta(seconds=600)
    #: a bridge that conferences share keeps ``declaration_sigmas x sqrt(sum of (spread x
    #: size)^2)`` free below ``participants_per_bridge`` (0: fill it), where each size is a
    #: conference's expected one and spread its agency's (see ``calibration``)
    declaration_sigmas: float = DECLARATION_SIGMAS
    #: how long a new bridge takes to take conferences: a short-notice meeting opening
    #: sooner must fit on the bridges there are (see ``meetscale.decide.door``), and a
    #: booked meeting is counted at least this long before its first participants may come
    bridge_startup: timedelta = timedelta(seconds=120)
    #: unbooked (ad-hoc) arrivals are averaged over this window for the headroom term
    adhoc_window: timedelta = timedelta(minutes=30)
    #: the bridges of a booked meeting larger than a bridge are held empty, out of
    #: Jicofo's selection (JVB drain mode, not removed), from the lead time before it may
    #: open until then; without that, small conferences opening just before it spread over
    #: every empty bridge and it opens beside them
    hold_large: bool = True
    #: the booked floor is the highest booked need of the passes within this window (at
    #: most 300 s, what the scale history keeps): a need that dips for a pass as
    #: conferences open (they move from coming to running) drains no bridge that the
    #: next pass asks for again
    stabilization: timedelta = timedelta(seconds=60)
    #: bridges on top of the replay's while booked conferences are to open within the lead
    #: time (below ``max_bridges``): the replay forecasts who opens when and where, and
    #: conferences that open out of its order take the empty bridges it counted on for
    #: others; a spare empty bridge takes such a pile-up
    spare: int = 1
    #: the operator, not Jicofo, chooses the bridge each booked conference opens on (a
    #: Jicofo pin; see ``meetscale.decide.scale.pins``); no conference then spans bridges
    pinned: bool = False
    #: a booked conference is pinned this long before its first participants may come
    pin_ahead: timedelta = timedelta(seconds=120)

    def __post_init__(self) -> None:
        if self.spare < 0:
            raise ValueError(f"booked spare must be >= 0, got {self.spare}")
        if not timedelta(0) <= self.stabilization <= BOOKED_HISTORY:
            raise ValueError(
                f"booked stabilization must be within 0 and {BOOKED_HISTORY.total_seconds():g}"
                f" s, got {self.stabilization.total_seconds():g} s"
            )


@dataclass(frozen=True, slots=True)
class DrainRules:
    """Taking bridges away: which may be drained, and what happens at the drain timeout."""

    #: a bridge younger than this is not drained (it had no chance to take load yet)
    protection: timedelta = timedelta(seconds=300)
    #: how long a drained bridge may keep its participants
    timeout: timedelta = timedelta(seconds=3600)
    #: at the timeout: ``ReturnToService`` puts a bridge that still hosts participants
    #: back into service ``rescue`` (at most a quarter of the timeout) before it (nobody
    #: is cut; a later scale-down drains it again); ``Remove`` removes it, cutting them
    action: str = "ReturnToService"
    #: see ``action``
    rescue: timedelta = timedelta(seconds=120)

    def __post_init__(self) -> None:
        if self.action not in ("ReturnToService", "Remove"):
            raise ValueError(f"drain action must be ReturnToService or Remove, got {self.action}")


_GROUPS = {"bounds": Bounds, "live": LiveTerm, "booked": BookedTerm, "drain": DrainRules}


@dataclass(frozen=True, slots=True)
class PoolParams:
    """Every parameter of one pool's scaling decisions (see the groups)."""

    bounds: Bounds = field(default_factory=Bounds)
    live: LiveTerm = field(default_factory=LiveTerm)
    booked: BookedTerm = field(default_factory=BookedTerm)
    drain: DrainRules = field(default_factory=DrainRules)

    @property
    def participants_per_bridge(self) -> int:
        return self.bounds.participants_per_bridge

    @property
    def bridge_capacity(self) -> int:
        """Participants one bridge takes at the target stress: floor(ppb * target), >= 1."""
        ppb, target = self.bounds.participants_per_bridge, self.live.target_stress
        return max(1, math.floor(ppb * target + 1e-9))

    @classmethod
    def of(cls, **values: Any) -> PoolParams:
        """Parameters from field names of any group, the rest defaults:
        ``PoolParams.of(max_bridges=20, lead_time=timedelta(minutes=15))``."""
        return cls().evolve(**values)

    def evolve(self, **values: Any) -> PoolParams:
        """A copy with the named fields (of any group) changed."""
        changes: dict[str, Any] = {}
        left = dict(values)
        for name, group in _GROUPS.items():
            mine = {f.name: left.pop(f.name) for f in fields(group) if f.name in left}
            if mine:
                changes[name] = replace(getattr(self, name), **mine)
        if left:
            raise TypeError(f"unknown pool parameters: {', '.join(sorted(left))}")
        return replace(self, **changes)
