"""Checks that reject a meeting whatever else is booked, and the words of the messages."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final, NamedTuple

from meetscale.decide.admit.types import AgencyQuotaView, MeetingRequest, PoolCeiling, Reason
from meetscale.models.meeting import Phase

__all__ = ["Rejection", "conf_note", "pool_mismatch", "static_rejection"]

# Only used to name priorities in messages (the values of models.PRIORITY_VALUES).
_PRIORITY_NAMES: Final = {1000: "provincial", 100: "high", 0: "normal", -100: "low"}


class Rejection(NamedTuple):
    reason: Reason
    message: str


def _name(priority: int) -> str:
    name = _PRIORITY_NAMES.get(priority)
    return f"{name} ({priority})" if name else str(priority)


def _num(value: float) -> str:
    return str(int(value)) if value == int(value) else f"{value:.2f}".rstrip("0").rstrip(".")


def _minutes(td: timedelta) -> str:
    return _num(td / timedelta(minutes=1))


def _days(td: timedelta) -> str:
    return _num(td / timedelta(days=1))


def static_rejection(
    req: MeetingRequest,
    *,
    quota: AgencyQuotaView | None,
    pool: PoolCeiling,
    now: datetime,
    units: int,
    borrowable: int,
) -> Rejection | None:
    """Why a candidate can never be admitted, whatever else is booked; or None."""
    if quota is None:
        return Rejection(Reason.NO_QUOTA, f"no AgencyQuota covers agency {req.agency}")
    if req.end <= now:
        return Rejection(
            Reason.START_IN_PAST,
            f"meeting ended at {req.end.isoformat()} before it could be admitted "
            f"(now {now.isoformat()})",
        )
    q = quota.label
    if req.priority > quota.max_priority:
        return Rejection(
            Reason.PRIORITY_NOT_ALLOWED,
            f"priority {_name(req.priority)} exceeds maxPriorityClass "
            f"{_name(quota.max_priority)} of quota {q}",
        )
    if req.participants > quota.max_meeting_participants:
        return Rejection(
            Reason.TOO_LARGE,
            f"meeting too large: participants {req.participants} exceeds "
            f"maxMeetingParticipants {quota.max_meeting_participants} of quota {q}",
        )
    if units > pool.capacity:
        return Rejection(
            Reason.TOO_LARGE,
            f"meeting too large: participants {req.participants} need {units} of the pool "
            f"ceiling{conf_note(req, pool)}, which is {pool.capacity} "
            f"({pool.max_bridges} bridges x {pool.participants_per_bridge})",
        )
    duration = req.end - req.start
    if duration > quota.max_meeting_duration:
        return Rejection(
            Reason.TOO_LONG,
            f"meeting too long: duration {_minutes(duration)} minutes exceeds "
            f"maxMeetingDurationMinutes {_minutes(quota.max_meeting_duration)} of quota {q}",
        )
    # Only a booking not decided yet: a Queued one was within the limit when it was
    # decided, and its start comes no nearer unless the host clock goes back, which must
    # not reject it for good. A `now` before its creation (the apiserver's stamp) is such a
    # clock: the limit counts from then at the latest.
    ahead = req.start - max(now, req.created_at)
    if req.phase == Phase.PENDING and ahead > quota.max_book_ahead:
        return Rejection(
            Reason.TOO_FAR_AHEAD,
            f"too far ahead: start {req.start.isoformat()} is {_days(ahead)} days ahead, "
            f"beyond maxBookAheadDays {_days(quota.max_book_ahead)} of quota {q}",
        )
    if quota.max_concurrent_meetings < 1:
        return Rejection(
            Reason.QUOTA_EXCEEDED,
            f"exceeded quota {q}: meetings requested 1, limit {quota.max_concurrent_meetings}",
        )
    nominal = quota.max_concurrent_participants
    if req.participants > nominal + borrowable:
        extra = f" + borrowable {borrowable} in cohort {quota.cohort}" if quota.cohort else ""
        return Rejection(
            Reason.QUOTA_EXCEEDED,
            f"exceeded quota {q}: participants requested {req.participants}, limit "
            f"{nominal}{extra}, even with nothing else booked",
        )
    return None


def conf_note(req: MeetingRequest, pool: PoolCeiling) -> str:
    if not req.confidential:
        return ""
    bridges = pool.bridges_for(req.participants)
    return f" (confidential: {bridges} whole bridge{'' if bridges == 1 else 's'})"


def pool_mismatch(confidential: bool, pool: str, pool_confidential: bool) -> Rejection | None:
    """A confidential Meeting runs only on a confidential pool, and a confidential pool
    runs only confidential Meetings (the province keeps them off shared services)."""
    if confidential and not pool_confidential:
        return Rejection(
            Reason.CONFIDENTIAL_POOL_REQUIRED,
            f"spec.confidential: true, but BridgePool {pool} is shared (its spec.confidential "
            "is false): a confidential Meeting runs only on bridges of its own; leave "
            "spec.pool unset for the confidential pool, or name a confidential one",
        )
    if pool_confidential and not confidential:
        return Rejection(
            Reason.POOL_IS_CONFIDENTIAL,
            f"spec.pool: BridgePool {pool} is confidential and runs only confidential "
            "Meetings (spec.confidential: true); leave spec.pool unset for the shared pool",
        )
    return None
