"""Shared builders of the scaling core's table tests: meetings, bridges, the production
parameters (``PoolParams()`` is what a BridgePool with its defaults runs)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from meetscale.decide.scale import BookedMeeting, BridgeState, PoolParams

NOW = datetime(2020, 4, 6, 8, 0, tzinfo=UTC)
#: production parameters: 300 per bridge at 0.7 -> 210, 1..10 bridges, 10 min lead,
#: declaration margin 0.3, bridges held for meetings larger than a bridge, HPA behavior
POOL = PoolParams()


def meeting(
    key: str,
    participants: int,
    start_min: float,
    duration_min: float = 60,
    *,
    confidential: bool = False,
    running: bool = False,
    observed: int | None = None,
) -> BookedMeeting:
    start = NOW + timedelta(minutes=start_min)
    return BookedMeeting(
        key=key,
        start=start,
        end=start + timedelta(minutes=duration_min),
        participants=participants,
        confidential=confidential,
        running=running,
        observed_participants=observed,
    )


def br(
    name: str,
    stress: float | None,
    endpoints: int | None = None,
    *,
    ready: bool = True,
    draining: bool = False,
    age_min: float = 60,
    by_meeting: Mapping[str, int] | None = None,
    conferences: int | None = None,
    held: bool = False,
    drained_min: float | None = None,
    group: str | None = None,
) -> BridgeState:
    return BridgeState(
        held=held,
        group=group,
        name=name,
        ready=ready,
        draining=draining,
        created_at=NOW - timedelta(minutes=age_min),
        stress=stress,
        endpoints=endpoints,
        conferences=conferences,
        participants_by_meeting=by_meeting,
        drain_started_at=None if drained_min is None else NOW - timedelta(minutes=drained_min),
    )


def upcoming(n: int, participants: int = 200) -> list[BookedMeeting]:
    return [meeting(f"m{i}", participants, 5) for i in range(n)]
