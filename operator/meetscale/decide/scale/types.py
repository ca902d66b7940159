"""The scaling core's data: what it is told about bridges and meetings, and what it plans."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, NamedTuple

from meetscale.decide.scale.calibration import DEFAULT_SPREAD
from meetscale.decide.scale.hpa import HpaResult

__all__ = [
    "BookedDemand",
    "BookedMeeting",
    "BridgeState",
    "PlanCondition",
    "ScalePlan",
    "Winner",
]

Winner = Literal["live", "booked", "min", "max", "hold"]


class PlanCondition(NamedTuple):
    """One condition of the plan, as the BridgePool's status shows it."""

    status: bool
    reason: str
    message: str


@dataclass(frozen=True, slots=True)
class BridgeState:
    """One videobridge as the operator last observed it.

    ``stress`` (0..1 is full load), ``endpoints`` (participants hosted) and
    ``conferences`` are None when the bridge did not report them.
    ``participants_by_meeting`` optionally maps a Meeting key to the participants
    of that meeting on this bridge. ``drain_started_at`` is set for a draining
    bridge when known. ``held``: kept out of Jicofo's selection (JVB drain mode) but
    not draining. ``outdated``: made from an older pod template (replaced one at a time).
    ``stale``: its metrics are the last seen, not now's (Prometheus does not show it now):
    it counts with that load, but it is never chosen to drain, to be replaced, nor found
    empty on it. ``group``: the release it shares with the other bridges of a spanning
    group (:mod:`meetscale.decide.scale.groups`); None: a release of its own, or the
    pool's common one. Datetimes must be timezone-aware.
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
    outdated: bool = False
    stale: bool = False
    group: str | None = None


@dataclass(frozen=True, slots=True)
class BookedMeeting:
    """An admitted meeting of this pool.

    ``participants`` is the declared count; ``expected`` what is expected to join (the
    declaration corrected by the agency's history, see
    :mod:`~meetscale.decide.scale.calibration`; the declaration when None), and
    ``spread`` how far a meeting of that agency strays from it (relative; the default
    of the calibration when None).
    ``running``: started, or its conference is open (early joiners); then
    ``observed_participants`` is the count seen on the bridges (None: unknown, then the
    bridges' ``participants_by_meeting`` are summed if any bridge reports this key).
    """

    key: str
    start: datetime
    end: datetime
    participants: int
    confidential: bool = False
    running: bool = False
    observed_participants: int | None = None
    expected: int | None = None
    spread: float | None = None

    @property
    def size(self) -> int:
        """Who is expected to join: the calibrated declaration."""
        return self.participants if self.expected is None else self.expected

    @property
    def drawn_spread(self) -> float:
        """How far what it draws strays from ``size`` (relative): ``spread``, else the
        calibration's default."""
        return DEFAULT_SPREAD if self.spread is None else self.spread


@dataclass(frozen=True, slots=True)
class BookedDemand:
    """The booked term and how it was made up.

    ``replicas = max(placed, participants / participants_per_bridge) + headroom``.
    ``placed``: the fewest bridges on which Jicofo's placement of the meetings starting
    within the lead time keeps every bridge within capacity, plus the bridges held empty
    for meetings larger than a bridge (``reserved``), plus ``spare`` while conferences are
    to open (``booked.spare``, below ``max_bridges``); ``participants``: booked participants
    at the busiest instant of the lead time; ``headroom``: bridges for the
    ``unbooked_expected`` participants of ad-hoc meetings expected within the lead time;
    ``unbooked_now``: participants on the bridges now that belong to no running booked
    meeting (they are load the live term sees, not part of this term).
    """

    replicas: int
    meetings: int
    participants: int
    placed: int
    reserved: int
    headroom: int
    unbooked_now: int
    unbooked_expected: int
    spare: int = 0


@dataclass(frozen=True, slots=True)
class ScalePlan:
    """The decision for one pool at one instant.

    ``desired``: non-draining bridges wanted. ``current``: non-draining bridges
    now. ``live_replicas``/``booked_replicas``: the two terms (``live_replicas``
    is ``current`` when metrics are unavailable). ``recommendation``: what to
    record in the history (None when metrics are unavailable). ``winner``: which
    term set ``desired`` (``hold``: metrics unavailable, nothing to add).
    ``reason``: one CamelCase word; ``message``: a sentence with the numbers.
    ``conditions``: type -> condition for ``ScalingActive``, ``AbleToScale``,
    ``ScalingLimited`` and ``BookingsCovered``.
    ``drain``: bridges to start draining (may be fewer than ``current - desired``:
    see :func:`~meetscale.decide.scale.removal.choose_drain`).
    ``cancel_drain``: draining bridges to put back into service, preferred to
    starting new ones; new bridges to start: ``desired - current - len(cancel_drain)``.
    ``hold``/``release``: bridges to take out of Jicofo's selection (JVB drain mode, not
    removed) and to put back; ``shield``: the bridge kept out (newly or still) because
    the starts would pile onto it; other holds are for booked meetings larger than a
    bridge (see :mod:`meetscale.decide.scale.holds`). ``replace``: an outdated bridge to
    drain, with one new bridge started in its place (a rolling update, one at a time;
    its participants stay until they leave). ``pins``: in a pool with ``booked.pinned``,
    meeting key -> the bridge its conference is to open on (see
    :mod:`meetscale.decide.scale.pins`). ``group_starts``: the release of each of the
    first new bridges, for the spanning groups of meetings larger than a bridge in a
    pinned pool (see :mod:`meetscale.decide.scale.groups`); the others get their own.
    """

    desired: int
    current: int
    live_replicas: int
    booked_replicas: int
    recommendation: int | None
    winner: Winner
    reason: str
    message: str
    conditions: dict[str, PlanCondition]
    drain: list[str]
    cancel_drain: list[str]
    live: HpaResult
    booked: BookedDemand
    hold: list[str] = field(default_factory=list)
    release: list[str] = field(default_factory=list)
    shield: list[str] = field(default_factory=list)
    replace: list[str] = field(default_factory=list)
    pins: dict[str, str] = field(default_factory=dict)
    group_starts: list[str] = field(default_factory=list)

    @property
    def new_bridges(self) -> int:
        """Bridges to create after cancelling drains (and one per replaced bridge)."""
        return max(0, self.desired - self.current - len(self.cancel_drain)) + len(self.replace)
