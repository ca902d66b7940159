"""The scale history of one pool: past recommendations and scale events (pure data)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

__all__ = ["Recommendation", "ScaleEvent", "ScaleHistory"]


@dataclass(frozen=True, slots=True)
class Recommendation:
    """An unstabilized recommendation made at ``at``."""

    at: datetime
    replicas: int


@dataclass(frozen=True, slots=True)
class ScaleEvent:
    """A scale actually carried out at ``at``: ``change`` > 0 added, < 0 removed replicas."""

    at: datetime
    change: int


@dataclass(frozen=True, slots=True)
class ScaleHistory:
    """Past recommendations and scale events of one scaled object (oldest first)."""

    recommendations: tuple[Recommendation, ...] = ()
    events: tuple[ScaleEvent, ...] = ()

    def add(
        self,
        now: datetime,
        recommendation: int | None,
        change: int = 0,
        horizon: timedelta = timedelta(hours=1),
    ) -> ScaleHistory:
        """A new history with this round's unstabilized recommendation and scale change.

        ``recommendation`` None (metrics unavailable) records none, as upstream
        records nothing when it cannot compute one; ``change`` 0 records no event.
        Entries older than ``horizon`` (>= every window and period; the CRD caps
        both at 3600 s) are dropped.
        """
        cutoff = now - horizon
        recs = [r for r in self.recommendations if r.at > cutoff]
        if recommendation is not None:
            recs.append(Recommendation(now, recommendation))
        events = [e for e in self.events if e.at > cutoff]
        if change:
            events.append(ScaleEvent(now, change))
        return ScaleHistory(tuple(recs), tuple(events))
