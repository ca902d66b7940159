"""How many unbooked participants to expect (pure): the arrival rate of ad-hoc meetings.

A meeting is "ad hoc" when it was created less than the lead time before its start, so
the booked-demand term could not see it coming. The rate is the declared participants
of the ad-hoc meetings that started within the last `window`, per minute; the scaling
core turns it into headroom for the next lead time.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class Arrival:
    created: datetime
    start: datetime
    participants: int


def adhoc_rate(
    arrivals: Iterable[Arrival], now: datetime, lead_time: timedelta, window: timedelta
) -> float:
    """Unbooked participants per minute over [now - window, now].

    >>> from datetime import timezone
    >>> t = datetime(2020, 4, 6, 2, 0, tzinfo=timezone.utc)
    >>> m = timedelta(minutes=1)
    >>> adhoc_rate([Arrival(t - 5 * m, t - 4 * m, 60), Arrival(t - 90 * m, t - 3 * m, 500)],
    ...            t, lead_time=10 * m, window=30 * m)
    2.0
    """
    if window <= timedelta(0):
        return 0.0
    total = sum(
        a.participants
        for a in arrivals
        if now - window <= a.start <= now and a.start - a.created < lead_time
    )
    return total / (window.total_seconds() / 60.0)
