"""The AgencyQuotas' statuses an admission pass writes: the namespaces each selects, its
usage, and its conditions (pure: no I/O)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from meetscale.conditions import condition
from meetscale.decide.admit import AdmissionPlan
from meetscale.decide.admit.agency import AgencyResolver
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
            "borrowedParticipants": u.borrowed_participants if u else 0,
            "admittedMeetings": u.admitted_meetings if u else 0,
            "pendingMeetings": u.pending_meetings if u else 0,
            "observedGeneration": q.generation,
        }
        if q.spec is not None:
            peak = u.peak_booked_participants - u.borrowed_participants if u else 0
            limit = q.spec.limits.max_concurrent_participants
            out[q.name]["conditions"] = [
                condition(
                    "WithinLimits",
                    peak <= limit,
                    *_within(peak, limit),
                    now,
                    q.status.get("conditions"),
                    q.generation,
                )
            ]

    return out


def _within(peak: int, limit: int) -> tuple[str, str]:
    """The reason and message of a quota's WithinLimits condition."""
    if peak <= limit:
        return "WithinLimits", (
            f"reservations peak at {peak} participants of maxConcurrentParticipants {limit}"
        )
    return "OverCommitted", (
        f"reservations peak at {peak} participants, above maxConcurrentParticipants {limit} "
        "(lowered after they were admitted): admitted Meetings keep their reservations; new "
        "ones queue until the peak is within the limit"
    )
