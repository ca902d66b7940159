"""Shared builders of the admission core's table tests: meetings, quotas, a case."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from meetscale.decide.admit import AgencyQuotaView, MeetingRequest, PoolCeiling

ICT = timezone(timedelta(hours=7))
NOW = datetime(2025, 3, 10, 8, 0, tzinfo=ICT)
BIG_POOL = PoolCeiling(max_bridges=100, participants_per_bridge=100)


def at(minutes: float) -> datetime:
    return NOW + timedelta(minutes=minutes)


def mtg(
    key: str,
    agency: str = "so-y-te",
    start: float = 60,
    minutes: float = 60,
    participants: int = 100,
    priority: int = 0,
    confidential: bool = False,
    created: float = -60,
    phase: str = "Pending",
) -> MeetingRequest:
    """A meeting starting `start` minutes after NOW, created `created` minutes after NOW."""
    return MeetingRequest(
        key=key,
        agency=agency,
        start=at(start),
        end=at(start + minutes),
        participants=participants,
        priority=priority,
        confidential=confidential,
        created_at=at(created),
        phase=phase,
    )


def quota(
    name: str = "so-y-te",
    participants: int = 500,
    meetings: int = 10,
    largest: int = 500,
    **kw: object,
) -> AgencyQuotaView:
    return AgencyQuotaView(name, participants, meetings, largest, **kw)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Case:
    id: str
    meetings: list[MeetingRequest]
    quotas: list[AgencyQuotaView]
    expect: dict[str, tuple[str, str]] = field(default_factory=dict)
    messages: dict[str, str] = field(default_factory=dict)
    fields: dict[str, dict[str, object]] = field(default_factory=dict)
    admitted_per_agency: dict[str, int] = field(default_factory=dict)
    pool: PoolCeiling = BIG_POOL
    now: datetime = NOW


def flood(agency: str, n: int, created: float) -> list[MeetingRequest]:
    return [mtg(f"{agency}/m{i:02d}", agency, participants=10, created=created) for i in range(n)]
