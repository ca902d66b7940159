"""Taking bridges away: which to drain, which drains to cancel, and when a drained bridge
may go.

A drained bridge takes no new conferences (Jicofo stops selecting it) but keeps the ones
it hosts until they end. :func:`choose_drain` picks the bridges to drain on a
scale-down, :func:`choose_cancel` the drains to cancel when load comes back,
:func:`rescue` the drains to cancel before their timeout cuts anyone, and
:func:`plan_removal` which drained bridges may be removed now (as CloudNativePG's
``findDeletableInstance`` beside the reconciler that acts; the operator owns the bridge
Pods, so it deletes exactly those). Pure functions: ``now`` is a parameter; the shell
asks the bridges, then carries the plan out.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from meetscale.decide.scale.params import DrainRules
from meetscale.decide.scale.types import BookedMeeting, BridgeState

__all__ = [
    "DrainStatus",
    "DrainingBridge",
    "RemovalPlan",
    "choose_cancel",
    "choose_drain",
    "choose_replacement",
    "drain_complete",
    "drain_order_key",
    "filling",
    "plan_removal",
    "rescue",
]

DrainStatus = Literal["Empty", "TimedOut", "Waiting"]


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


def filling(
    bridges: Iterable[BridgeState],
    booked: Iterable[BookedMeeting],
    now: datetime,
    grace: timedelta,
    early: timedelta,
) -> frozenset[str]:
    """Bridges hosting a booked conference that is still filling (from its first early
    joiners until its join grace is over): its latecomers are counted where it is, and a
    drained bridge takes no newcomer, so they would land elsewhere, uncounted."""
    joining = {m.key for m in booked if m.start - early <= now < m.start + grace}
    if not joining:
        return frozenset()
    return frozenset(
        b.name
        for b in bridges
        if b.participants_by_meeting and not joining.isdisjoint(b.participants_by_meeting)
    )


def choose_drain(
    bridges: Iterable[BridgeState],
    count: int,
    now: datetime,
    protection: timedelta,
    keep: frozenset[str] = frozenset(),
) -> list[str]:
    """Names of at most ``count`` bridges to drain, best first (see :func:`drain_order_key`).

    Eligible: ready, not already draining, with a known endpoint count, past their
    protection time (``now - created_at >= protection``: a new bridge is not drained
    before it had a chance to take load), and not in ``keep`` (see :func:`filling`).

    Invariant: no chosen bridge hosts more participants than a bridge it keeps
    (among non-draining bridges with a known count). A kept bridge that is
    ineligible (protected or unready) with few participants is a barrier: once
    one is met in load order, only eligible bridges with exactly as many
    participants may still be chosen, so fewer than ``count`` may be returned.
    A bridge still booting (not ready) or still protected whose count is not
    known yet is a barrier at 0: it hosts nobody (or hardly anyone) yet, so
    while new bridges come up no loaded bridge is drained in their place (a
    drained bridge keeps its conferences, and its cost, until they end). Other
    bridges with an unknown endpoint count, or a ``stale`` one (the last seen), are
    neither chosen nor barriers.
    """
    if count <= 0:
        return []
    active: list[BridgeState] = []
    barrier = math.inf
    for b in bridges:
        if b.draining or b.held:
            continue
        if b.endpoints is not None and not b.stale:
            active.append(b)
        elif b.endpoints is None and (not b.ready or now - b.created_at < protection):
            barrier = 0
    active.sort(key=drain_order_key)
    chosen: list[str] = []
    for bridge in active:
        assert bridge.endpoints is not None
        eligible = (
            bridge.ready and now - bridge.created_at >= protection and bridge.name not in keep
        )
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
    bridge), else ``Waiting``. An unknown endpoint count, or a ``stale`` one (the last
    seen), is never ``Empty``.
    """
    if bridge.endpoints == 0 and not bridge.conferences and not bridge.stale:
        return "Empty"
    if now - started_at >= timeout:
        return "TimedOut"
    return "Waiting"


def choose_cancel(draining: Sequence[BridgeState], count: int) -> list[str]:
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


def rescue(rules: DrainRules, draining: Sequence[BridgeState], now: datetime) -> list[str]:
    """Draining bridges about to reach the drain timeout with participants still on them,
    under ``ReturnToService``: put back into service ``rescue`` (at most a quarter of the
    timeout) before it rather than cut (a later scale-down drains them again)."""
    if rules.action != "ReturnToService":
        return []
    due = rules.timeout - min(rules.rescue, rules.timeout / 4)
    return sorted(
        b.name
        for b in draining
        if b.ready
        and b.drain_started_at is not None
        and now - b.drain_started_at >= due
        and (b.endpoints is None or b.endpoints > 0)
    )


def choose_replacement(bridges: Sequence[BridgeState]) -> list[str]:
    """The outdated bridge to replace now (a rolling update): the least-loaded ready one
    (:func:`drain_order_key`), and only when no outdated bridge is draining already, so
    that bridges are replaced one at a time and nobody is cut."""
    if any(b.outdated and b.draining for b in bridges):
        return []
    outdated = [
        b
        for b in bridges
        if b.outdated
        and not b.draining
        and not b.held
        and b.ready
        and b.endpoints is not None
        and not b.stale
    ]
    if not outdated:
        return []
    return [min(outdated, key=drain_order_key).name]


@dataclass(frozen=True, slots=True)
class DrainingBridge:
    """A draining bridge as the shell saw it this pass.

    ``state``: as Prometheus reports it (one scrape late). ``own_endpoints`` and
    ``in_drain_mode``: what the bridge itself answered (JVB ``GET /colibri/stats``, no
    scrape lag), None when it was not asked or did not answer; it is asked once Prometheus
    reports it empty (:func:`awaiting_confirmation`).
    """

    state: BridgeState
    own_endpoints: int | None = None
    in_drain_mode: bool | None = None


@dataclass(frozen=True, slots=True)
class RemovalPlan:
    """Which drained bridges go now (the operator deletes exactly these Pods).

    ``remove``: drained and empty, or past the drain timeout. ``timed_out``: those of them
    still hosting participants (``Remove``): they go anyway, with a Warning event.
    ``redrain``: bridges that answer they are not in drain mode: enable it again."""

    remove: list[str] = field(default_factory=list)
    timed_out: list[str] = field(default_factory=list)
    redrain: list[str] = field(default_factory=list)


def awaiting_confirmation(
    draining: Iterable[BridgeState], now: datetime, timeout: timedelta
) -> list[str]:
    """Draining bridges that Prometheus reports empty: the shell asks each bridge itself
    (Prometheus lags a scrape) before :func:`plan_removal` lets it go."""
    return [
        b.name
        for b in draining
        if drain_complete(b, b.drain_started_at or now, now, timeout) == "Empty"
    ]


def plan_removal(
    rules: DrainRules,
    draining: Sequence[DrainingBridge],
    now: datetime,
    *,
    metrics_ok: bool,
    growing: bool,
) -> RemovalPlan:
    """Which drained bridges may be removed now.

    Nothing goes without usable metrics or while the pool grows. A drained bridge may go
    once Prometheus reports it empty *and* the bridge itself answers 0 local endpoints
    while in drain mode, or once its drain timed out (``TimedOut``; under
    ``ReturnToService`` :func:`rescue` has put it back before that, if it was ready).
    """
    if not metrics_ok or growing:
        return RemovalPlan()
    out = RemovalPlan()
    for d in draining:
        b = d.state
        started = b.drain_started_at or now
        outcome = drain_complete(b, started, now, rules.timeout)
        if outcome == "Waiting":
            continue
        late = now - started >= rules.timeout
        if outcome == "Empty":
            if d.in_drain_mode is False:
                out.redrain.append(b.name)
            confirmed = d.own_endpoints == 0 and d.in_drain_mode is True
            if not confirmed and not late:
                continue
        if late:
            out.timed_out.append(b.name)
        out.remove.append(b.name)
    return out
