"""From decisions to the status the user sees (pure: no I/O).

One admission pass over a pool produces the desired status of every Meeting in it
and of every AgencyQuota; the shell writes only what differs from what is stored.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from meetscale.decide.admission import AdmissionPlan, decide_admission
from meetscale.decide.agency import AgencyResolver
from meetscale.decide.lifecycle import HOLDS_RESERVATION, TERMINAL, timed_phase
from meetscale.models import BridgePoolSpec, LabelSelector
from meetscale.records import (
    MeetingRecord,
    QuotaRecord,
    meeting_request,
    pool_ceiling,
    quota_views,
)

# Fields of status that describe the decision; compared to skip writes that change nothing.
COMPARED = (
    "phase",
    "reason",
    "message",
    "agency",
    "pool",
    "reservedParticipants",
    "reservedBridges",
    "queuePosition",
    "observedGeneration",
)
WARNING_REASONS = frozenset(
    {
        "QuotaExceeded",
        "PoolFull",
        "MeetingTooLarge",
        "MeetingTooLong",
        "TooFarAhead",
        "StartInPast",
        "PriorityNotAllowed",
        "NoAgencyQuota",
        "AmbiguousAgency",
        "InvalidSpec",
    }
)


def _ts(t: datetime) -> str:
    return t.astimezone().isoformat(timespec="seconds") if t.tzinfo else t.isoformat()


@dataclass(frozen=True)
class StatusChange:
    """A status to write and, when the phase or reason changed, the event to post."""

    record: MeetingRecord
    status: dict[str, Any]
    event: tuple[str, str, bool] | None  # (reason, message, warning)
    agency: str | None


@dataclass
class PoolPass:
    changes: list[StatusChange] = field(default_factory=list)
    quota_status: dict[str, dict[str, Any]] = field(default_factory=dict)
    plan: AdmissionPlan | None = None
    next_wakeup: datetime | None = None
    phase_counts: Counter[tuple[str, str]] = field(default_factory=Counter)


def _condition(
    ctype: str, ok: bool, reason: str, message: str, now: datetime, old: Mapping[str, Any]
) -> dict[str, Any]:
    status = "True" if ok else "False"
    prev = {c.get("type"): c for c in old.get("conditions") or []}.get(ctype)
    when = prev["lastTransitionTime"] if prev and prev.get("status") == status else _ts(now)
    return {
        "type": ctype,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": when,
    }


def meeting_status(
    record: MeetingRecord,
    *,
    phase: str,
    reason: str,
    message: str,
    agency: str | None,
    pool: str,
    reserved: int | None,
    bridges: int | None,
    queue_position: int | None,
    now: datetime,
) -> dict[str, Any]:
    old = record.status
    holds = phase in HOLDS_RESERVATION
    admitted_ever = holds or phase == "Finished"
    status: dict[str, Any] = {
        "phase": phase,
        "reason": reason,
        "message": message,
        "agency": agency,
        "pool": pool,
        "reservedParticipants": reserved if holds else 0,
        "reservedBridges": bridges if holds else 0,
        "queuePosition": queue_position if phase == "Queued" else None,
        "observedGeneration": record.generation,
        "admittedAt": old.get("admittedAt") or (_ts(now) if holds else None),
        "conditions": [
            _condition("QuotaReserved", holds, reason, message, now, old),
            _condition("Admitted", admitted_ever, reason, message, now, old),
            _condition("Finished", phase in TERMINAL, reason, message, now, old),
        ],
    }
    return status


def changed(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    return any(old.get(k) != new.get(k) for k in COMPARED)


def plan_pool(
    pool_name: str,
    pool: BridgePoolSpec,
    meetings: list[MeetingRecord],
    quotas: list[QuotaRecord],
    namespace_labels: Mapping[str, Mapping[str, str]],
    margin: timedelta,
    now: datetime,
) -> PoolPass:
    """One admission pass over a pool: desired statuses, quota usage, next time to look."""
    out = PoolPass()
    selectors: dict[str, LabelSelector] = {
        q.name: q.spec.namespace_selector for q in quotas if q.spec is not None
    }
    resolver = AgencyResolver(selectors)
    agency_priority = {q.name: q.spec.priority for q in quotas if q.spec is not None}
    requests = []
    agencies: dict[str, str | None] = {}
    fixed: dict[str, tuple[str, str, str]] = {}  # key -> phase, reason, message
    boundaries: list[datetime] = []
    for rec in meetings:
        if rec.spec is None:
            fixed[rec.key] = ("Rejected", "InvalidSpec", rec.spec_error or "invalid spec")
            continue
        res = resolver.resolve(rec.namespace, namespace_labels.get(rec.namespace))
        agencies[rec.key] = res.agency
        if rec.spec.cancelled:
            fixed[rec.key] = ("Cancelled", "Cancelled", "cancelled by spec.cancelled")
            continue
        if res.agency is None:
            if rec.phase not in TERMINAL:
                fixed[rec.key] = ("Pending", res.reason, res.message)
            continue
        start, end = rec.spec.start, rec.spec.end_time
        phase = timed_phase(rec.phase, start, end, now)
        if phase in TERMINAL:
            same = phase == rec.phase
            fixed[rec.key] = (
                phase,
                str(rec.status.get("reason") or phase) if same else phase,
                str(rec.status.get("message") or "") if same else f"ended at {_ts(end)}",
            )
            continue
        if phase == "Running" and rec.phase != "Running":
            fixed[rec.key] = ("Running", "Started", f"started at {_ts(start)}")
        boundaries += [start - margin, start, end]
        requests.append(meeting_request(rec, res.agency, agency_priority.get(res.agency, 0)))
    plan = decide_admission(requests, quota_views(quotas), pool_ceiling(pool, margin), now)
    out.plan = plan
    by_key = {r.key: r for r in requests}
    for rec in meetings:
        agency = agencies.get(rec.key)
        decision = plan.decisions.get(rec.key)
        req = by_key.get(rec.key)
        reserved = bridges = qpos = None
        if rec.key in fixed:
            phase, reason, message = fixed[rec.key]
            if req is not None and decision is not None:
                reserved, bridges = decision.reserved_participants, decision.reserved_bridges
            elif req is not None:
                reserved = int(rec.status.get("reservedParticipants") or req.participants)
                bridges = int(rec.status.get("reservedBridges") or 0)
        elif decision is not None:
            phase, reason, message = decision.phase, decision.reason, decision.message
            if rec.phase in HOLDS_RESERVATION and phase == "Admitted":
                phase = rec.phase  # confirmation of an existing reservation
                reason = str(rec.status.get("reason") or decision.reason)
                message = str(rec.status.get("message") or decision.message)
            reserved, bridges = decision.reserved_participants, decision.reserved_bridges
            qpos = decision.queue_position
        elif req is not None and rec.phase in HOLDS_RESERVATION:
            phase = rec.phase
            reason = str(rec.status.get("reason") or "Admitted")
            message = str(rec.status.get("message") or "")
            reserved = int(rec.status.get("reservedParticipants") or req.participants)
            bridges = int(rec.status.get("reservedBridges") or 0)
        else:
            out.phase_counts[(agency or "", rec.phase)] += 1
            continue
        out.phase_counts[(agency or "", phase)] += 1
        new = meeting_status(
            rec,
            phase=phase,
            reason=reason,
            message=message,
            agency=agency,
            pool=pool_name,
            reserved=reserved,
            bridges=bridges,
            queue_position=qpos,
            now=now,
        )
        if changed(rec.status, new):
            moved = rec.status.get("phase") != phase or rec.status.get("reason") != reason
            event = (reason, message, reason in WARNING_REASONS) if moved else None
            out.changes.append(StatusChange(rec, new, event, agency))
    namespaces_of: dict[str, list[str]] = {}
    for ns, labels in namespace_labels.items():
        agency = resolver.resolve(ns, labels).agency
        if agency is not None:
            namespaces_of.setdefault(agency, []).append(ns)
    for q in quotas:
        if q.spec is None:
            out.quota_status[q.name] = {
                "conditions": [
                    _condition("Valid", False, "InvalidSpec", q.spec_error or "", now, q.status)
                ],
                "observedGeneration": q.generation,
            }
            continue
        u = plan.usage.get(q.name)
        out.quota_status[q.name] = {
            "namespaces": sorted(namespaces_of.get(q.name, [])),
            "participantsInUse": u.participants_in_use if u else 0,
            "meetingsInUse": u.meetings_in_use if u else 0,
            "peakBookedParticipants": u.peak_booked_participants if u else 0,
            "borrowedParticipants": u.borrowed_participants if u else 0,
            "admittedMeetings": u.admitted_meetings if u else 0,
            "pendingMeetings": u.pending_meetings if u else 0,
            "observedGeneration": q.generation,
        }
    future = [b for b in boundaries if b > now]
    out.next_wakeup = min(future) if future else None
    return out
