"""What the validating webhook refuses at `kubectl apply` time (pure).

Only what can never fit is refused: a meeting blocked merely by other bookings is
accepted and then Queued by the admission pass, because a booking may be cancelled.
An edit of an admitted (not yet running) meeting is refused when the edited meeting
would no longer fit next to everything else that is booked.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from meetscale.decide.admit.plan import decide_admission
from meetscale.decide.admit.types import AgencyQuotaView, MeetingRequest, PoolCeiling, Reason
from meetscale.models.meeting import Phase

# How far in the past a new meeting may start (ad-hoc meetings are created as they begin).
START_GRACE = timedelta(minutes=5)

FIELD_OF_REASON: dict[str, str] = {
    Reason.TOO_LARGE: "spec.participants",
    Reason.QUOTA_EXCEEDED: "spec.participants",
    Reason.POOL_FULL: "spec.participants",
    Reason.TOO_LONG: "spec.durationMinutes",
    Reason.TOO_FAR_AHEAD: "spec.start",
    Reason.START_IN_PAST: "spec.start",
    Reason.PRIORITY_NOT_ALLOWED: "spec.priorityClass",
    Reason.NO_QUOTA: "metadata.namespace",
    Reason.ROOM_TAKEN: "spec.room",
}


def _field(reason: str) -> str:
    return FIELD_OF_REASON.get(reason, "spec")


def validate_meeting(
    new: MeetingRequest,
    old: MeetingRequest | None,
    quotas: dict[str, AgencyQuotaView],
    pool: PoolCeiling,
    others: Sequence[MeetingRequest] | Callable[[], Sequence[MeetingRequest]],
    now: datetime,
) -> str | None:
    """The reason to refuse this create (old is None) or update, or None to accept.

    `others` are the other meetings of the same pool (any phase), or a function giving
    them (called only for an edit that needs them); `old.phase` is the stored phase.
    """
    starts_changed = old is None or old.start != new.start
    if starts_changed and new.end <= now:
        return f"spec.start: meeting {new.start.isoformat()} .. {new.end.isoformat()} is over"
    if old is None and new.start < now - START_GRACE:
        return (
            f"spec.start: {new.start.isoformat()} is in the past (now {now.isoformat()}, "
            f"at most {int(START_GRACE.total_seconds() // 60)} minutes back)"
        )
    # Alone, only the meeting's own quota and its cohort (what it could borrow) matter.
    own = quotas.get(new.agency)
    cohort = own.cohort if own is not None else None
    related = {
        name: q
        for name, q in quotas.items()
        if name == new.agency or (cohort is not None and q.cohort == cohort)
    }
    alone = decide_admission([replace(new, phase=Phase.PENDING)], related, pool, now)
    verdict = alone.decisions.get(new.key)
    if verdict is not None and verdict.phase == Phase.REJECTED:
        return f"{_field(verdict.reason)}: {verdict.message}"
    if old is not None and old.phase == Phase.ADMITTED and _grows(old, new):
        listed = others() if callable(others) else others
        rest = [m for m in listed if m.key != new.key]
        plan = decide_admission([*rest, replace(new, phase=Phase.PENDING)], quotas, pool, now)
        d = plan.decisions.get(new.key)
        if d is not None and d.phase != Phase.ADMITTED:
            return (
                f"{_field(d.reason)}: the edit would break the admitted booking's quota: "
                f"{d.message}; cancel and re-book, or ask for a smaller change"
            )
    return None


def _grows(old: MeetingRequest, new: MeetingRequest) -> bool:
    return (
        new.participants > old.participants
        or new.start < old.start
        or new.end > old.end
        or (new.confidential and not old.confidential)
        or new.priority != old.priority
    )
