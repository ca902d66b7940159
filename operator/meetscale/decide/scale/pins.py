"""Which bridge each booked conference opens on, in a pool whose conferences are pinned.

Jicofo puts a new conference on the least-loaded bridge as it is when the first participant
joins. At a burst, conferences that open together see the same loads and pile onto one
bridge, which they outgrow minutes later. A pool with ``booked.pinned`` chooses instead:
a booked meeting about to open gets the bridge with the least committed load where its
expected size fits (beside other conferences, with the declaration margin the placement
replay keeps), and Jicofo is told to open its conference there (a pin: see
:mod:`meetscale.clients.jicofo`). A bridge's committed load is what it will carry: the
booked conferences on it at their expected size (or what they hold, if more), the unbooked
participants on it, and the conferences pinned to it that have not opened.

A pin lasts until the conference opens: from then on Jicofo keeps the conference on its
bridge by itself. A pin whose bridge stops taking conferences (drained, gone) or no longer
has room moves to another one; a meeting that fits nowhere goes to the least committed
bridge. The bridges pins point at are held meanwhile (:func:`pin_holds`). Pure: no clock,
no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from meetscale.decide.scale.groups import open_meetings, spans_group
from meetscale.decide.scale.params import PoolParams
from meetscale.decide.scale.types import BookedMeeting, BridgeState

__all__ = ["PinPlan", "choose_pins", "committed_loads", "pin_holds"]


@dataclass(frozen=True, slots=True)
class PinPlan:
    """``pins``: meeting key -> the bridge its conference is to open on; ``crowded``: the
    meetings about to open that fit on no bridge with the declaration margin, pinned to the
    least committed one all the same (Jicofo would choose the least loaded now, which
    counts none of what is still to join)."""

    pins: dict[str, str] = field(default_factory=dict)
    crowded: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Committed:
    """What one bridge will carry: ``load`` participants, of which the booked conferences
    on it draw with variance ``squares`` (sum of (spread x size)^2; see
    :data:`~meetscale.decide.scale.params.DECLARATION_SIGMAS`)."""

    load: int = 0
    squares: float = 0.0
    exclusive: bool = False  # a confidential conference is (to be) on it: nothing else

    def add(self, m: BookedMeeting, size: int) -> None:
        self.load += size
        self.squares += _variance(m, size)
        self.exclusive = self.exclusive or m.confidential

    def fits(self, m: BookedMeeting, pool: PoolParams) -> bool:
        """Alone on its bridge a conference fits up to ``participants_per_bridge``; beside
        others it keeps the declaration margin free, as the placement replay does. A
        confidential conference takes an empty bridge of its own."""
        ppb = pool.participants_per_bridge
        if self.exclusive:
            return False
        if self.load == 0:
            return m.size <= ppb
        if m.confidential:
            return False
        spread = math.sqrt(self.squares + _variance(m, m.size))
        return self.load + m.size <= ppb - pool.booked.declaration_sigmas * spread


def _variance(m: BookedMeeting, size: int) -> float:
    return (m.drawn_spread * size) ** 2


def _committed(
    bridges: Sequence[BridgeState], booked: Sequence[BookedMeeting]
) -> dict[str, _Committed]:
    meetings = {m.key: m for m in booked}
    hosts: dict[str, int] = {}
    for b in bridges:
        for key, n in (b.participants_by_meeting or {}).items():
            if n > 0:
                hosts[key] = hosts.get(key, 0) + 1
    out: dict[str, _Committed] = {}
    for b in bridges:
        by = {k: n for k, n in (b.participants_by_meeting or {}).items() if n > 0}
        c = _Committed(load=max(0, (b.endpoints or 0) - sum(by.values())))
        for key, n in by.items():
            m = meetings.get(key)
            if m is not None and hosts[key] == 1:
                c.add(m, max(n, m.size))
            else:
                c.load += n  # unbooked, or one part of a conference over several bridges
                c.exclusive = c.exclusive or (m is not None and m.confidential)
        out[b.name] = c
    return out


def committed_loads(
    bridges: Sequence[BridgeState], booked: Sequence[BookedMeeting]
) -> dict[str, int]:
    """What each bridge will carry of the conferences open on it: a booked conference hosted
    by one bridge at its expected size (what it holds, if more; a conference over several
    bridges at what each holds), and the unbooked participants on it."""
    return {name: c.load for name, c in _committed(bridges, booked).items()}


def _due(m: BookedMeeting, pool: PoolParams, now: datetime) -> bool:
    first_join = m.start - pool.booked.early_join
    return first_join - pool.booked.pin_ahead <= now < m.end


def choose_pins(
    pool: PoolParams,
    bridges: Sequence[BridgeState],
    booked: Sequence[BookedMeeting],
    pinned: Mapping[str, str],
    now: datetime,
    exclude: Collection[str] = (),
) -> PinPlan:
    """The pins for this pass. ``pinned``: the pins given before (meeting key -> bridge);
    ``exclude``: bridges this pass takes out of placement (drained, replaced). A held
    bridge takes pins: in a pinned pool the holds are the pins' own (:func:`pin_holds`).

    Pins go to booked meetings whose first participants may come within
    ``booked.pin_ahead`` (early joiners included: ``booked.early_join`` before the start)
    and whose conference is not open yet. A pin given before stays while its bridge still
    takes conferences and has room for it; the others go, in order of start and largest
    first, to the bridge with the least committed load where they fit
    (``participants_per_bridge``, less the declaration margin beside others), the oldest
    bridge on ties; where none fits, to the least committed one (``crowded``). A
    confidential meeting takes an empty bridge of its own, and nothing joins it there; with
    no empty bridge it gets no pin.
    """
    if not pool.booked.pinned:
        return PinPlan()
    usable = [
        b
        for b in bridges
        if b.ready and not (b.draining or b.stale or b.outdated) and b.name not in exclude
    ]
    load = _committed(usable, booked)
    opened = open_meetings(bridges)
    due = sorted(
        (
            m
            for m in booked
            if m.key not in opened and _due(m, pool, now) and not spans_group(pool, m)
        ),
        key=lambda m: (m.start, -m.size, m.key),
    )
    plan = PinPlan()
    rest: list[BookedMeeting] = []
    for m in due:
        was = pinned.get(m.key)
        if was is not None and was in load and load[was].fits(m, pool):
            load[was].add(m, m.size)
            plan.pins[m.key] = was
        else:
            rest.append(m)
    age = {b.name: (b.created_at, b.name) for b in usable}
    for m in rest:
        fits = [name for name, c in load.items() if c.fits(m, pool)]
        if not fits:
            shared = [name for name, c in load.items() if not c.exclusive]
            if m.confidential or not shared:
                continue  # Jicofo chooses (a confidential one waits for an empty bridge)
            plan.crowded.append(m.key)
            fits = shared  # the least committed overflows least (Jicofo: least loaded now)
        best = min(fits, key=lambda name: (load[name].load, age[name]))
        load[best].add(m, m.size)
        plan.pins[m.key] = best
    return plan


def pin_holds(
    bridges: Sequence[BridgeState],
    pins: Mapping[str, str],
    exclude: Collection[str] = (),
    groups: Collection[str] = (),
) -> tuple[list[str], list[str]]:
    """The bridges to hold (JVB drain mode) and to release in a pinned pool: a bridge that
    pinned conferences are about to open on is held, so that a conference nobody pinned (an
    unbooked room, a Meeting that opened before its pin) does not take the room they count
    on; Jicofo still opens the pinned ones there (a pin's version names that bridge alone,
    and draining is only a preference among those). Holds end when the pins do. None is
    held unless a bridge without pins is left to take the unpinned ones. ``groups``: the
    bridges of active spanning groups, held as well (:mod:`meetscale.decide.scale.groups`)."""
    targets = set(pins.values()) | set(groups)
    open_ = [b for b in bridges if b.ready and not b.draining and b.name not in exclude]
    free = [b for b in open_ if b.name not in targets and not b.stale]
    keep = targets if free else set()
    hold = [b.name for b in open_ if b.name in keep and not b.held]
    release = [b.name for b in bridges if b.held and not b.draining and b.name not in keep]
    return hold, release
