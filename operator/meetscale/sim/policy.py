"""What a policy sees each tick and what it may do: the seam between world and policy.

A policy sees only what the live operator sees: Meeting specs (declared fields) from
their `createdAt` on, the bridge Pods as Kubernetes reports them, and per-bridge
metrics as Prometheus serves them (scraped every 15 s; a decision sees the last scrape,
15 s old, the oldest a live query answers with). The oracle is the one exception: it
is given the actual attendance, by design.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from meetscale.sim.demand import Demand
    from meetscale.sim.trace import Trace

__all__ = [
    "SCRAPE_LAG_SECONDS",
    "SCRAPE_SECONDS",
    "Actions",
    "BridgePod",
    "BridgeSample",
    "Observation",
    "Policy",
    "SimContext",
]

SCRAPE_SECONDS = 15
SCRAPE_LAG_SECONDS = SCRAPE_SECONDS  # the newest scrape a decision sees is this old


@dataclass(frozen=True, slots=True)
class BridgeSample:
    """One bridge's metrics in one Prometheus scrape (only ready bridges are scraped)."""

    name: str
    stress: float  # participants / participantsPerBridge
    participants: int
    conferences: int
    draining: bool


@dataclass(frozen=True, slots=True)
class BridgePod:
    """One bridge Pod as the Kubernetes API shows it (live, not lagged)."""

    name: str
    created_s: float  # seconds from trace start
    ready: bool
    draining: bool
    drain_since_s: float | None
    held: bool = False  # kept out of placement for a booked meeting (drain mode, not removed)
    group: str | None = None  # the release of the spanning group it was started for


@dataclass(frozen=True, slots=True)
class SimContext:
    """Handed to a policy once, before the first tick."""

    trace: Trace
    demand: Demand  # declared fields are public; `actual` is for the oracle only
    start: datetime


@dataclass(slots=True)
class Observation:
    tick: int
    t: float  # seconds from trace start
    now: datetime
    bridges: Sequence[BridgePod]
    metrics: Sequence[BridgeSample]  # lagged scrape; empty before the first one arrives
    metrics_age_s: float | None  # how old the scrape is
    new_meetings: Sequence[int]  # meeting indexes whose spec became visible this tick
    ended_meetings: Sequence[int]  # admitted meetings whose last participant left this tick
    changed: bool  # the pool's bridges changed since the last tick (added, ready, removed)
    # participants on each draining bridge now, as the bridge itself answers (no scrape lag)
    draining_loads: Mapping[str, int] = field(default_factory=dict)
    # each ready bridge's conferences now (meeting index -> participants), as its `GET /debug`
    # answers; asked for lazily (only a policy that reads it pays for it)
    conferences: Callable[[], Mapping[str, Mapping[int, int]]] = lambda: {}


@dataclass(slots=True)
class Actions:
    """A policy's decisions for one tick."""

    admit: list[int] = field(default_factory=list)
    queue: list[int] = field(default_factory=list)
    reject: list[int] = field(default_factory=list)
    add: int = 0  # bridges to start (ready after bridgeStartupSeconds)
    add_groups: list[str] = field(default_factory=list)  # the first ones' spanning groups
    drain: list[str] = field(default_factory=list)  # stop placing; remove when empty/timeout
    remove: list[str] = field(default_factory=list)  # delete now; participants on it are cut
    migrate: list[str] = field(default_factory=list)  # oracle only: remove, moving conferences
    undrain: list[str] = field(default_factory=list)  # put draining bridges back into service
    hold: list[str] = field(default_factory=list)  # keep out of placement, do not remove
    release: list[str] = field(default_factory=list)  # held bridges back into placement
    # every pin now (meeting -> bridge its conference opens on); None: the pins stay as they are
    pins: dict[int, str] | None = None

    def scales(self) -> bool:
        return bool(
            self.add
            or self.drain
            or self.remove
            or self.migrate
            or self.undrain
            or self.hold
            or self.release
        )


class Policy(Protocol):
    """A scaling (and admission) policy under test."""

    name: str
    # True: the world does not remove drained bridges by itself; the policy's
    # ``Actions.remove`` does (the operator removes them as the live operator does)
    removes_drained: bool

    def begin(self, ctx: SimContext) -> None:
        """Called once before the first tick."""

    def step(self, obs: Observation) -> Actions:
        """Called every tick; returns what to do now."""
