"""Which booked meetings the bridges' conference counts say are placed (for the placement
replay, :mod:`meetscale.decide.scale.replay`). Pure."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

from meetscale.decide.scale.params import PoolParams
from meetscale.decide.scale.types import BookedMeeting, BridgeState

__all__ = ["Census", "conference_census"]


class Census(NamedTuple):
    """Which booked meetings the bridges' conference counts say are placed: ``unplaced``
    started but not on a bridge yet; ``early`` joining before their start."""

    unplaced: frozenset[str]
    early: frozenset[str]


def conference_census(
    pool: PoolParams,
    booked: Sequence[BookedMeeting],
    bridges: Sequence[BridgeState],
    now: datetime,
) -> Census:
    """Which booked meetings the bridges' conference counts say are placed, and which not.

    A meeting that started less than ``join_ramp`` ago whose conference the bridges do
    not show yet is *unplaced*: Jicofo will place it at its first join on the
    least-loaded bridge, so the replay places it rather than spreading it over the loads
    (its bridges must not be drained before it lands). Conferences beyond the running
    meetings' are meetings that started joining before their start: the *early* ones
    (the soonest starts within ``join_ramp``) fill the bridges they are on, they are not
    placed again. Count: the conferences on all bridges against the running booked
    meetings (each one conference); the newest starts, and of those the largest, are the
    unplaced ones. Both empty when no bridge reports its conferences, or when
    per-meeting counts are known.
    """
    counts = [b.conferences for b in bridges if b.conferences is not None]
    if not counts or any(m.observed_participants is not None for m in booked):
        return Census(frozenset(), frozenset())
    window = pool.booked.join_ramp
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
        return Census(unplaced, frozenset())
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
    return Census(unplaced, frozenset(m.key for m in soon[:extra]))
