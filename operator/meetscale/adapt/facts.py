"""What both the live operator and the simulator know of the world, in one shape.

The live operator fills these from its Kopf indexes, Prometheus and the bridges; the
simulator from its trace and its world. The adapter turns them into the core's inputs,
so both decide from the same facts in the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from meetscale.models import MeetingSpec

__all__ = ["BridgeFacts", "MeetingFacts"]


@dataclass(frozen=True, slots=True)
class MeetingFacts:
    """One Meeting: its key (``namespace/name``), spec, phase and creation time; its
    agency when known, and the most participants its conference had at once once that
    conference has closed (``peak``: what it drew, for the agency's calibration)."""

    key: str
    spec: MeetingSpec
    phase: str
    created: datetime
    agency: str | None = None
    peak: int | None = None
    at_the_door: bool = False  # Queued PoolFull: the pool grows for it, then admits it


@dataclass(frozen=True, slots=True)
class BridgeFacts:
    """One bridge pod as the API shows it, with its metrics from the last scrape (None:
    not reported); ``stale``: some of them are the last seen, not now's (see
    :mod:`meetscale.adapt.loads`)."""

    name: str
    ready: bool
    draining: bool
    created: datetime
    drain_started: datetime | None = None
    held: bool = False
    stress: float | None = None
    endpoints: float | None = None
    conferences: float | None = None
    outdated: bool = False
    stale: bool = False
    group: str | None = None  # the release of the spanning group it was started for
