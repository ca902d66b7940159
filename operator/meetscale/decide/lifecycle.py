"""Phase transitions that follow from time alone (pure).

An admitted meeting starts Running at its start and is Finished at its end; a
Queued meeting whose start has passed without capacity is Rejected by the
admission pass, not here. Cancelled is terminal; so are Finished and Rejected.
"""

from __future__ import annotations

from datetime import datetime

from meetscale.models.meeting import HOLDING_PHASES, TERMINAL_PHASES, Phase


def timed_phase(phase: str, start: datetime, end: datetime, now: datetime) -> str:
    """The phase a meeting in `phase` has at `now` by the clock alone.

    >>> from datetime import datetime, timezone
    >>> t = lambda h: datetime(2020, 4, 6, h, tzinfo=timezone.utc)
    >>> str(timed_phase("Admitted", t(8), t(10), t(9)))
    'Running'
    >>> str(timed_phase("Running", t(8), t(10), t(10)))
    'Finished'
    >>> str(timed_phase("Queued", t(8), t(10), t(9)))
    'Queued'
    """
    if phase in TERMINAL_PHASES:
        return phase
    if phase in HOLDING_PHASES:
        if now >= end:
            return Phase.FINISHED
        if now >= start:
            return Phase.RUNNING
    return phase
