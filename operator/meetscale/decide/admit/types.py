"""The admission core's data: meetings, quotas, the pool ceiling, and the plan.

The shell (and the simulator) build these through :mod:`meetscale.adapt`. Every time
must carry a time zone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Literal

from meetscale.models.meeting import Phase

__all__ = [
    "AdmissionPlan",
    "AgencyQuotaView",
    "AgencyUsage",
    "Decision",
    "DecisionPhase",
    "MeetingRequest",
    "PoolCeiling",
    "Reason",
]


class Reason(StrEnum):
    """Why a meeting got its phase: the status's, the event's and the metric's word."""

    ADMITTED = "Admitted"
    QUOTA_EXCEEDED = "QuotaExceeded"
    POOL_FULL = "PoolFull"
    TOO_LARGE = "MeetingTooLarge"
    TOO_LONG = "MeetingTooLong"
    TOO_FAR_AHEAD = "TooFarAhead"
    START_IN_PAST = "StartInPast"
    PRIORITY_NOT_ALLOWED = "PriorityNotAllowed"
    NO_QUOTA = "NoQuota"
    ROOM_TAKEN = "RoomTaken"  # the room is booked by another Meeting at that time (rooms.py)
    #: a confidential Meeting names a shared pool (checks.pool_mismatch)
    CONFIDENTIAL_POOL_REQUIRED = "ConfidentialPoolRequired"
    #: a Meeting that is not confidential names a confidential pool
    POOL_IS_CONFIDENTIAL = "PoolIsConfidential"


DecisionPhase = Literal[Phase.ADMITTED, Phase.QUEUED, Phase.REJECTED]


@dataclass(frozen=True, slots=True)
class MeetingRequest:
    """One Meeting as admission sees it; `key` is "namespace/name"."""

    key: str
    agency: str
    start: datetime
    end: datetime
    participants: int
    priority: int
    confidential: bool
    created_at: datetime
    phase: str
    agency_priority: int = 0  # informational; the quota's priority is used
    #: held in another pool: counts against its agency's quota (a quota holds across every
    #: pool), not against this pool's capacity; never decided by this pass
    elsewhere: bool = False

    def __post_init__(self) -> None:
        if any(t.tzinfo is None for t in (self.start, self.end, self.created_at)):
            raise ValueError(f"meeting {self.key}: start, end and created_at need a time zone")
        if self.end <= self.start:
            raise ValueError(f"meeting {self.key}: end must be after start")
        if self.participants < 1:
            raise ValueError(f"meeting {self.key}: participants must be at least 1")
        if self.phase not in Phase.__members__.values():
            raise ValueError(f"meeting {self.key}: unknown phase {self.phase!r}")


@dataclass(frozen=True, slots=True)
class AgencyQuotaView:
    """One AgencyQuota; defaults are the CRD's."""

    name: str
    max_concurrent_participants: int
    max_concurrent_meetings: int
    max_meeting_participants: int
    max_meeting_duration: timedelta = timedelta(minutes=240)
    max_book_ahead: timedelta = timedelta(days=90)
    priority: int = 0
    weight: int = 1
    cohort: str | None = None
    borrowing_limit: int | None = None
    lending_limit: int | None = None
    max_priority: int = 100
    display_name: str | None = None  # e.g. "Sở Y tế"; messages name the quota with it

    def __post_init__(self) -> None:
        if self.weight < 1:
            raise ValueError(f"quota {self.name}: weight must be at least 1")
        for name in ("max_concurrent_participants", "max_concurrent_meetings"):
            if getattr(self, name) < 0:
                raise ValueError(f"quota {self.name}: {name} must not be negative")
        for name in ("borrowing_limit", "lending_limit"):
            value = getattr(self, name)
            if value is not None and (value < 0 or self.cohort is None):
                raise ValueError(f"quota {self.name}: {name} needs a cohort and must be >= 0")

    @property
    def label(self) -> str:
        """How messages name the quota: ``so-y-te (Sở Y tế)``, or its name alone."""
        return f"{self.name} ({self.display_name})" if self.display_name else self.name

    @property
    def lendable(self) -> int:
        """The part of the nominal quota the cohort may use (L)."""
        n = self.max_concurrent_participants
        return n if self.lending_limit is None else min(self.lending_limit, n)


@dataclass(frozen=True, slots=True)
class PoolCeiling:
    """The pool's hard ceiling: `max_bridges * participants_per_bridge` participants."""

    max_bridges: int
    participants_per_bridge: int
    pre_join_margin: timedelta = timedelta(0)
    #: True where conferences are pinned: a meeting larger than a bridge gets a group of
    #: whole bridges of its own (see :mod:`meetscale.decide.scale.groups`)
    pinned: bool = False

    def __post_init__(self) -> None:
        if self.max_bridges < 0 or self.participants_per_bridge < 1:
            raise ValueError("pool: max_bridges >= 0 and participants_per_bridge >= 1 required")
        if self.pre_join_margin < timedelta(0):
            raise ValueError("pool: pre_join_margin must not be negative")

    @property
    def capacity(self) -> int:
        return self.max_bridges * self.participants_per_bridge

    def bridges_for(self, participants: int) -> int:
        """Whole bridges a confidential meeting of `participants` takes."""
        return -(-participants // self.participants_per_bridge)

    def units_for(self, participants: int, confidential: bool) -> int:
        """Pool-ceiling units a meeting takes: whole bridges for a confidential one, and for
        one larger than a bridge where conferences are pinned; else its participants."""
        if confidential or (self.pinned and participants > self.participants_per_bridge):
            return self.bridges_for(participants) * self.participants_per_bridge
        return participants


@dataclass(frozen=True, slots=True)
class Decision:
    key: str
    phase: DecisionPhase
    reason: str
    message: str
    reserved_participants: int = 0
    reserved_bridges: int = 0  # whole bridges of its own (confidential meetings only)
    queue_position: int | None = None
    borrowed: int = 0  # peak participants above the agency's nominal quota


@dataclass(frozen=True, slots=True)
class AgencyUsage:
    agency: str
    participants_in_use: int
    meetings_in_use: int
    peak_booked_participants: int
    peak_booked_meetings: int
    borrowed_participants: int
    admitted_meetings: int
    pending_meetings: int


@dataclass(frozen=True, slots=True)
class AdmissionPlan:
    decisions: dict[str, Decision]
    usage: dict[str, AgencyUsage]
    pool_units_in_use: int = 0
    pool_peak_booked_units: int = 0
    pool_capacity: int = 0
