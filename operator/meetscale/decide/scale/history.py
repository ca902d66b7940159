"""The scale history of one pool: past recommendations, booked needs and scale events
(pure data)."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

__all__ = ["BOOKED_HISTORY", "Recommendation", "ScaleEvent", "ScaleHistory"]

#: how long the booked needs are kept (the booked term's stabilization window at most)
BOOKED_HISTORY = timedelta(minutes=5)


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
    """Past recommendations, booked needs and scale events of one scaled object (oldest
    first).

    ``ordered``: the recommendations are known to be by time (``add`` keeps track, as
    long as time goes forward), so a window of them is found by bisection; not part of
    the history's value (a history given without it is searched one by one)."""

    recommendations: tuple[Recommendation, ...] = ()
    events: tuple[ScaleEvent, ...] = ()
    booked: tuple[Recommendation, ...] = ()  # the booked term's need at each pass
    ordered: bool = field(default=False, repr=False, compare=False)

    def since(self, cutoff: datetime) -> Sequence[Recommendation]:
        """The recommendations made after ``cutoff`` (strictly), oldest first."""
        recs = self.recommendations
        if self.ordered or len(recs) <= 1:
            return recs[bisect_right(recs, cutoff, key=_at) :]
        return [r for r in recs if r.at > cutoff]

    def booked_peak(self, cutoff: datetime) -> int:
        """The highest booked need recorded after ``cutoff`` (strictly); 0 if none."""
        return max((r.replicas for r in self.booked if r.at > cutoff), default=0)

    def add(
        self,
        now: datetime,
        recommendation: int | None,
        change: int = 0,
        horizon: timedelta = timedelta(hours=1),
        booked: int | None = None,
    ) -> ScaleHistory:
        """A new history with this round's unstabilized recommendation, scale change and
        booked need.

        ``recommendation`` None (metrics unavailable) records none, as upstream
        records nothing when it cannot compute one; ``change`` 0 records no event;
        ``booked`` None records no booked need. Entries older than ``horizon`` (>= every
        window and period; the CRD caps both at 3600 s) are dropped, booked needs older
        than ``BOOKED_HISTORY``.
        """
        cutoff = now - horizon
        recs = list(self.since(cutoff))
        ordered = self.ordered or len(self.recommendations) <= 1
        if recommendation is not None:
            ordered = ordered and (not recs or recs[-1].at <= now)
            recs.append(Recommendation(now, recommendation))
        events = [e for e in self.events if e.at > cutoff]
        if change:
            events.append(ScaleEvent(now, change))
        kept = [r for r in self.booked if r.at > now - BOOKED_HISTORY]
        if booked is not None:
            kept.append(Recommendation(now, booked))
        return ScaleHistory(tuple(recs), tuple(events), tuple(kept), ordered)


def _at(r: Recommendation) -> datetime:
    return r.at
