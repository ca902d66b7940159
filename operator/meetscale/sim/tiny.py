"""Small traces built in code (tests, notebooks): times are minutes after the window opens.

>>> t = tiny_trace([meeting("m1", start=60, minutes=30, participants=100)])
>>> t.name, len(t.meetings), t.meetings[0].start.isoformat()
('tiny', 1, '2020-04-06T07:00:00+07:00')
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from meetscale.sim.trace import Trace, parse_trace

__all__ = ["START", "agency", "meeting", "tiny_trace"]

START = datetime(2020, 4, 6, 6, 0, tzinfo=timezone(timedelta(hours=7)))


def _at(minutes: float) -> str:
    return (START + timedelta(minutes=minutes)).isoformat()


def agency(name: str = "so-y-te", **kw: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": name,
        "priority": 0,
        "weight": 1,
        "maxConcurrentParticipants": 100_000,
        "maxConcurrentMeetings": 1000,
        "maxMeetingParticipants": 5000,
    }
    out.update(kw)
    return out


def meeting(
    name: str,
    *,
    start: float,
    minutes: float,
    participants: int,
    agency: str = "so-y-te",
    created: float | None = None,
    actual: int | None = None,
    join_start: int = 0,
    spread: int = 0,
    end_offset: int = 0,
    confidential: bool = False,
    **kw: Any,
) -> dict[str, Any]:
    """A meeting starting `start` minutes after the window opens (booked a day before unless
    `created` says otherwise); everybody joins at once unless `spread` is given."""
    out: dict[str, Any] = {
        "name": name,
        "agency": agency,
        "createdAt": _at(start - 24 * 60 if created is None else created),
        "start": _at(start),
        "end": _at(start + minutes),
        "participants": participants,
        "confidential": confidential,
        "actual": {
            "participants": participants if actual is None else actual,
            "joinStartOffsetSeconds": join_start,
            "joinSpreadSeconds": spread,
            "endOffsetSeconds": end_offset,
        },
    }
    out.update(kw)
    return out


def tiny_trace(
    meetings: Sequence[Mapping[str, Any]],
    *,
    hours: float = 4,
    pool: Mapping[str, Any] | None = None,
    agencies: Sequence[Mapping[str, Any]] | None = None,
    tick: int = 15,
    name: str = "tiny",
) -> Trace:
    p: dict[str, Any] = {
        "participantsPerBridge": 100,
        "minBridges": 1,
        "maxBridges": 20,
        "bridgeStartupSeconds": 60,
    }
    p.update(pool or {})
    data = {
        "name": name,
        "start": START.isoformat(),
        "end": _at(hours * 60),
        "tickSeconds": tick,
        "pool": p,
        "agencies": list(agencies) if agencies is not None else [agency()],
        "meetings": list(meetings),
    }
    return parse_trace(data)
