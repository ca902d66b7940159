"""The AgencyQuotas' statuses an admission pass writes: the namespaces each selects, its
usage, and its conditions (pure: no I/O)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, NamedTuple

from meetscale.conditions import condition
from meetscale.decide.admit import AdmissionPlan
from meetscale.decide.admit.agency import AgencyResolver
from meetscale.models import QuotaLimits
from meetscale.records import QuotaRecord

__all__ = ["quota_statuses"]


def quota_statuses(
    quotas: list[QuotaRecord],
    broken: Mapping[str, str],
    resolver: AgencyResolver,
    namespace_labels: Mapping[str, Mapping[str, str]],
    plan: AdmissionPlan,
    now: datetime,
) -> dict[str, dict[str, Any]]:
    """Each quota's status after a full pass: its namespaces, usage, and conditions
    (`Valid` False for a spec the operator cannot use; `WithinLimits`)."""
    out: dict[str, dict[str, Any]] = {}
    namespaces_of: dict[str, list[str]] = {}
    for ns, labels in namespace_labels.items():
        agency = resolver.resolve(ns, labels).agency
        if agency is not None:
            namespaces_of.setdefault(agency, []).append(ns)
    for q in quotas:
        if q.name in broken:
            out[q.name] = {
                "conditions": [
                    condition(
                        "Valid",
                        False,
                        "InvalidSpec",
                        broken[q.name],
                        now,
                        q.status.get("conditions"),
                    )
                ],
                "observedGeneration": q.generation,
            }
            continue
        u = plan.usage.get(q.name)
        out[q.name] = {
            "namespaces": sorted(namespaces_of.get(q.name, [])),
            "participantsInUse": u.participants_in_use if u else 0,
            "meetingsInUse": u.meetings_in_use if u else 0,
            "peakBookedParticipants": u.peak_booked_participants if u else 0,
            "peakBookedMeetings": u.peak_booked_meetings if u else 0,
            "borrowedParticipants": u.borrowed_participants if u else 0,
            "admittedMeetings": u.admitted_meetings if u else 0,
            "pendingMeetings": u.pending_meetings if u else 0,
            "observedGeneration": q.generation,
        }
        if q.spec is not None:
            peak = Peaks(
                participants=u.peak_booked_participants - u.borrowed_participants if u else 0,
                meetings=u.peak_booked_meetings if u else 0,
            )
            reason, message = _within(peak, q.spec.limits)
            out[q.name]["conditions"] = [
                condition(
                    "WithinLimits",
                    reason == "WithinLimits",
                    reason,
                    message,
                    now,
                    q.status.get("conditions"),
                    q.generation,
                )
            ]

    return out


class Peaks(NamedTuple):
    """What an agency's reservations add up to at their highest (participants beyond what it
    borrows from its cohort)."""

    participants: int
    meetings: int


def _within(peak: Peaks, limits: QuotaLimits) -> tuple[str, str]:
    """The reason and message of a quota's WithinLimits condition: every limit an admitted
    peak exceeds (lowered after they were admitted) is named with the peak."""
    over = [
        f"{value} {what}, above {field} {limit}"
        for what, value, field, limit in (
            ("participants", peak.participants, "maxConcurrentParticipants",
             limits.max_concurrent_participants),
            ("meetings", peak.meetings, "maxConcurrentMeetings",
             limits.max_concurrent_meetings),
        )
        if value > limit
    ]  # fmt: skip
    if not over:
        return "WithinLimits", (
            f"reservations peak at {peak.participants} participants of "
            f"maxConcurrentParticipants {limits.max_concurrent_participants} and "
            f"{peak.meetings} meetings of maxConcurrentMeetings "
            f"{limits.max_concurrent_meetings}"
        )
    return "OverCommitted", (
        f"reservations peak at {' and '.join(over)} (lowered after they were admitted): "
        "admitted Meetings keep their reservations; new ones queue until the peak is within "
        "the limit"
    )
