"""Bridges kept out of Jicofo's selection (JVB drain mode) without being drained.

Two reasons: the bridges of a booked meeting larger than a bridge are held empty until
it may open (:func:`reserved`), and the least-loaded bridge is shielded when the
meetings about to start would pile onto it (:func:`shield`). A held bridge keeps its
conferences and is never removed for being empty. Pure.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

from meetscale.decide.scale.params import PoolParams
from meetscale.decide.scale.replay import Replay, held_for, opens_at
from meetscale.decide.scale.types import BookedMeeting, BridgeState

__all__ = ["HoldChanges", "holds", "reserved", "shield"]


class HoldChanges(NamedTuple):
    hold: list[str]
    release: list[str]


def reserved(pool: PoolParams, booked: Sequence[BookedMeeting], now: datetime) -> int:
    """Bridges to keep out of Jicofo's selection now: those of the meetings larger than a
    bridge that may open within the lead time but have not yet (:func:`held_for`)."""
    ppb = pool.participants_per_bridge
    horizon = now + pool.booked.lead_time
    return sum(
        -(-m.size // ppb)
        for m in booked
        if held_for(pool, m) and now < opens_at(pool, m) <= horizon
    )


def holds(active: Sequence[BridgeState], want: int, shielded: Sequence[str]) -> HoldChanges:
    """The ``shielded`` bridges and ``want`` others to hold. New reserved holds are ready,
    empty bridges (newest first); when there are too few, the booked floor has asked for
    more and a later pass holds them. Extra held bridges (the meeting opened, or was
    cancelled; a shield no longer needed) are released."""
    keep = set(shielded)
    hold = [b.name for b in active if b.name in keep and not b.held]
    held = sorted((b for b in active if b.held and b.name not in keep), key=lambda b: b.name)
    if len(held) > want:
        return HoldChanges(hold, [b.name for b in held[: len(held) - want]])
    spare = sorted(
        (
            b
            for b in active
            if not b.held
            and b.ready
            and b.endpoints == 0
            and not b.conferences
            and b.name not in keep
        ),
        key=lambda b: (-b.created_at.timestamp(), b.name),
    )
    return HoldChanges(hold + [b.name for b in spare[: want - len(held)]], [])


def shield(rp: Replay, bridges: Sequence[BridgeState], n_reserved: int) -> list[str]:
    """The least-loaded bridge to keep out of Jicofo's selection (held, not drained) when
    the pool keeps its size this pass and the meetings starting within the lead time
    would pile onto that bridge and overflow, but fit spread over the others: a nearly
    empty bridge among loaded ones takes every conference that opens until it has caught
    up with them. The replay counts on the least-loaded bridges being left out when it
    asks for fewer than there are, which a scale-down does by draining them; at
    ``max_bridges``, or while the live term keeps the bridges, nothing would. Empty list
    otherwise.

    Held bridges beyond the ``n_reserved`` ones (:func:`reserved`) are an earlier pass's
    shield: they are candidates again, so a shield stays while the replay needs it and
    is released once the starts fit without it (or none is left).
    """
    held = sorted((b for b in bridges if b.held and not b.draining), key=lambda b: b.name)
    active = [b for b in bridges if not b.draining and not b.held]
    cand = sorted(active + held[n_reserved:], key=lambda b: (b.created_at, b.name))
    loads = [rp.load_of(b) for b in cand]
    coming = [rp.coming_of(b) for b in cand]
    if len(cand) < 2 or rp.fits_loads(tuple(loads), tuple(coming)):
        return []
    least = min(range(len(cand)), key=lambda i: (loads[i], -cand[i].created_at.timestamp()))
    rest = tuple(x for i, x in enumerate(loads) if i != least)
    rest_coming = tuple(x for i, x in enumerate(coming) if i != least)
    if not cand[least].ready or not rp.fits_loads(rest, rest_coming):
        return []
    return [cand[least].name]
