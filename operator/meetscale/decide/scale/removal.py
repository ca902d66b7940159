"""Which videobridges to drain on a scale-down, and when a drain is over.

A drained bridge takes no new conferences (Jicofo stops selecting it) but keeps
the ones it hosts until they end; the operator deletes the pod once it is empty
or the drain timed out. Pure functions: ``now`` is a parameter.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

__all__ = ["BridgeState", "DrainStatus", "choose_drain", "drain_complete", "drain_order_key"]

DrainStatus = Literal["Empty", "TimedOut", "Waiting"]


@dataclass(frozen=True, slots=True)
class BridgeState:
    """One videobridge pod as the operator last observed it.

    ``stress`` (0..1 is full load), ``endpoints`` (participants hosted) and
    ``conferences`` are None when the bridge did not report them.
    ``participants_by_meeting`` optionally maps a Meeting key to the participants
    of that meeting on this bridge. ``drain_started_at`` is set for a draining
    bridge when known. Datetimes must be timezone-aware.
    """

    name: str
    ready: bool
    draining: bool
    created_at: datetime
    stress: float | None = None
    endpoints: int | None = None
    conferences: int | None = None
    participants_by_meeting: Mapping[str, int] | None = None
    drain_started_at: datetime | None = None
    held: bool = False


def drain_order_key(bridge: BridgeState) -> tuple[float, float, float, float, str]:
    """Sort key, first = best to drain.

    Fewest endpoints (participants disturbed by the drain: they stay until their
    conference ends, but no new ones arrive), then lowest stress, then fewest
    conferences, then the *newest* bridge (latest ``created_at``; as a
    ReplicaSet prefers deleting newer pods and CloudNativePG's scale-down removes
    the highest-serial instance: long-lived bridges are warmed up and proven),
    then name for determinism. Unknown values sort last.
    """
    return (
        math.inf if bridge.endpoints is None else float(bridge.endpoints),
        math.inf if bridge.stress is None else bridge.stress,
        math.inf if bridge.conferences is None else float(bridge.conferences),
        -bridge.created_at.timestamp(),
        bridge.name,
    )


def choose_drain(
    bridges: Iterable[BridgeState],
    count: int,
    now: datetime,
    protection: timedelta,
) -> list[str]:
    """Names of at most ``count`` bridges to drain, best first (see :func:`drain_order_key`).

    Eligible: ready, not already draining, with a known endpoint count, and past
    their protection time (``now - created_at >= protection``: a new bridge is
    not drained before it had a chance to take load).

    Invariant: no chosen bridge hosts more participants than a bridge it keeps
    (among non-draining bridges with a known count). A kept bridge that is
    ineligible (protected or unready) with few participants is a barrier: once
    one is met in load order, only eligible bridges with exactly as many
    participants may still be chosen, so fewer than ``count`` may be returned.
    A bridge still booting (not ready) or still protected whose count is not
    known yet is a barrier at 0: it hosts nobody (or hardly anyone) yet, so
    while new bridges come up no loaded bridge is drained in their place (a
    drained bridge keeps its conferences, and its cost, until they end). Other
    bridges with an unknown endpoint count are neither chosen nor barriers.
    """
    if count <= 0:
        return []
    active: list[BridgeState] = []
    barrier = math.inf
    for b in bridges:
        if b.draining or b.held:
            continue
        if b.endpoints is not None:
            active.append(b)
        elif not b.ready or now - b.created_at < protection:
            barrier = 0
    active.sort(key=drain_order_key)
    chosen: list[str] = []
    for bridge in active:
        assert bridge.endpoints is not None
        eligible = bridge.ready and now - bridge.created_at >= protection
        if not eligible:
            barrier = min(barrier, bridge.endpoints)
            continue
        if bridge.endpoints > barrier:
            break
        chosen.append(bridge.name)
        if len(chosen) == count:
            break
    return chosen


def drain_complete(
    bridge: BridgeState,
    started_at: datetime,
    now: datetime,
    timeout: timedelta,
) -> DrainStatus:
    """Whether a drain begun at ``started_at`` is over.

    ``Empty`` when the bridge reports 0 endpoints (and 0 or unknown conferences):
    safe to delete. Otherwise ``TimedOut`` once ``now - started_at >= timeout``
    (the operator deletes it anyway; remaining participants reconnect to another
    bridge), else ``Waiting``. An unknown endpoint count is never ``Empty``.
    """
    if bridge.endpoints == 0 and not bridge.conferences:
        return "Empty"
    if now - started_at >= timeout:
        return "TimedOut"
    return "Waiting"
