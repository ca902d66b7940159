"""From decisions to the status the user sees (pure: no I/O).

One admission pass over a pool produces the desired status of every Meeting in it
and of every AgencyQuota; the shell writes only what differs from what is stored.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from meetscale.adapt import AdmissionInputs, admission_inputs, creation_refusals, pool_ceiling
from meetscale.adapt.scaling import attendance, calibrations
from meetscale.admission.pools import held_elsewhere, keep_to_the_pool
from meetscale.admission.quotas import quota_statuses
from meetscale.admission.rooms import record_room, rooms_after_plan, rooms_before_plan
from meetscale.conditions import condition
from meetscale.decide.admit import (
    AdmissionPlan,
    AgencyQuotaView,
    MeetingRequest,
    decide_admission,
)
from meetscale.decide.admit.agency import AgencyResolver
from meetscale.decide.admit.slots import (
    NOTE_HORIZON,
    Reservations,
    next_start_note,
    reservations,
)
from meetscale.decide.door import PoolNow, at_the_door
from meetscale.decide.lifecycle import timed_phase
from meetscale.models import HOLDING_PHASES, TERMINAL_PHASES, BridgePoolSpec, Phase
from meetscale.records import MeetingRecord, QuotaRecord, meeting_request
from meetscale.times import rfc3339

# Fields of status that describe the decision; compared to skip writes that change nothing.
COMPARED = (
    "phase",
    "reason",
    "message",
    "agency",
    "agencyDisplayName",
    "pool",
    "reservedParticipants",
    "reservedBridges",
    "queuePosition",
    "observedGeneration",
    "room",
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
        "PoolNotFound",
        "PoolInvalid",
        "RoomTaken",
        "ConfidentialPoolRequired",
        "PoolIsConfidential",
    }
)
UNCANCELLED = "un-cancelled (spec.cancelled is false again), so decided again"
SPEC_FIXED = "spec edited after it was refused as invalid, so decided again"


@dataclass(frozen=True)
class StatusChange:
    """A status to write and, when the phase or reason changed, the event to post."""

    record: MeetingRecord
    status: dict[str, Any]
    event: tuple[str, str, bool] | None  # (reason, message, warning)
    agency: str | None


@dataclass
class PoolPass:
    full: bool = True  # False: a focused pass (no quota status, no phase counts)
    changes: list[StatusChange] = field(default_factory=list)
    quota_status: dict[str, dict[str, Any]] = field(default_factory=dict)
    plan: AdmissionPlan | None = None
    inputs: AdmissionInputs | None = None  # what the core was given
    next_wakeup: datetime | None = None
    phase_counts: Counter[tuple[str, str]] = field(default_factory=Counter)
    # Meetings this pass could not decide (key -> the error; they got InvalidSpec): the
    # shell logs them, the pass went on for the others.
    isolated: dict[str, str] = field(default_factory=dict)


def compared_fields(
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
    display: str | None = None,
) -> dict[str, Any]:
    """The fields of a Meeting status that say what was decided (COMPARED): cheap to build
    for every Meeting of a pass, so the full status is only built for the changed ones."""
    holds = phase in HOLDING_PHASES
    return {
        "phase": phase,
        "reason": reason,
        "message": message,
        "agency": agency,
        "agencyDisplayName": display,
        "pool": pool,
        "reservedParticipants": reserved if holds else 0,
        "reservedBridges": bridges if holds else 0,
        "queuePosition": queue_position if phase == "Queued" else None,
        "observedGeneration": record.generation,
        "room": record_room(record),
    }


def complete_status(record: MeetingRecord, status: dict[str, Any], now: datetime) -> dict[str, Any]:
    """Add the timestamps and conditions to `compared_fields`' answer."""
    old = record.status
    phase, reason, message = status["phase"], status["reason"], status["message"]
    holds = phase in HOLDING_PHASES
    admitted_ever = holds or phase == "Finished"
    was = old.get("conditions")
    return {
        **status,
        "admittedAt": old.get("admittedAt") or (rfc3339(now) if holds else None),
        "conditions": [
            condition("QuotaReserved", holds, reason, message, now, was),
            condition("Admitted", admitted_ever, reason, message, now, was),
            condition("Finished", phase in TERMINAL_PHASES, reason, message, now, was),
        ],
    }


def changed(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    return any(old.get(k) != new.get(k) for k in COMPARED)


@dataclass
class _Prepared:
    """What the first walk over a pool's Meetings found (see `_prepare`)."""

    requests: list[MeetingRequest] = field(default_factory=list)
    agencies: dict[str, str | None] = field(default_factory=dict)
    fixed: dict[str, tuple[str, str, str]] = field(default_factory=dict)  # phase, reason, msg
    reopened: dict[str, str] = field(default_factory=dict)  # key -> why it is decided again
    boundaries: list[datetime] = field(default_factory=list)


def reopened(rec: MeetingRecord) -> str | None:
    """Why a terminal Meeting is decided again, or None: it was un-cancelled, or its spec
    was refused as invalid and has been edited since."""
    if rec.spec is None:
        return None
    if rec.phase == "Cancelled" and not rec.spec.cancelled:
        return UNCANCELLED
    observed = int(rec.status.get("observedGeneration") or 0)
    invalid = rec.phase == "Rejected" and rec.status.get("reason") == "InvalidSpec"
    return SPEC_FIXED if invalid and rec.generation > observed else None


def _prepare(
    meetings: list[MeetingRecord],
    resolver: AgencyResolver,
    namespace_labels: Mapping[str, Mapping[str, str]],
    agency_priority: Mapping[str, int],
    margin: timedelta,
    now: datetime,
    out: PoolPass,
) -> tuple[list[MeetingRecord], _Prepared]:
    """Sort the Meetings into decided-by-themselves (`fixed`) and requests for the core.

    A Meeting that cannot be prepared (an error of any kind) gets Rejected/InvalidSpec
    and the others go on: one stored object must not stop admission for its pool."""
    prep = _Prepared()
    effective = []
    for stored in meetings:
        why = reopened(stored)
        rec = stored
        if why is not None:
            prep.reopened[rec.key] = why
            rec = replace(stored, status={**stored.status, "phase": "Pending"})
        effective.append(rec)
        try:
            _prepare_one(rec, resolver, namespace_labels, agency_priority, margin, now, prep)
        except Exception as exc:  # isolate it: the pass goes on for the others
            prep.fixed[rec.key] = ("Rejected", "InvalidSpec", _undecidable(exc))
            out.isolated[rec.key] = f"{type(exc).__name__}: {exc}"
    return effective, prep


def _undecidable(exc: Exception) -> str:
    return f"spec cannot be decided ({type(exc).__name__}: {exc}); fix or delete the Meeting"


def _prepare_one(
    rec: MeetingRecord,
    resolver: AgencyResolver,
    namespace_labels: Mapping[str, Mapping[str, str]],
    agency_priority: Mapping[str, int],
    margin: timedelta,
    now: datetime,
    prep: _Prepared,
) -> None:
    if rec.spec is None:
        prep.fixed[rec.key] = ("Rejected", "InvalidSpec", rec.spec_error or "invalid spec")
        return
    res = resolver.resolve(rec.namespace, namespace_labels.get(rec.namespace))
    prep.agencies[rec.key] = res.agency
    if rec.spec.cancelled:
        prep.fixed[rec.key] = ("Cancelled", "Cancelled", "cancelled by spec.cancelled")
        return
    if res.agency is None:
        if rec.phase not in TERMINAL_PHASES:
            prep.fixed[rec.key] = ("Pending", res.reason, res.message)
        return
    if rec.phase in TERMINAL_PHASES:  # kept as it is (nothing computed from the spec)
        reason = str(rec.status.get("reason") or rec.phase)
        prep.fixed[rec.key] = (rec.phase, reason, str(rec.status.get("message") or ""))
        return
    start, end = rec.spec.start, rec.spec.end_time
    phase = timed_phase(rec.phase, start, end, now)
    if phase in TERMINAL_PHASES:
        prep.fixed[rec.key] = (phase, phase, f"ended at {rfc3339(end)}")
        return
    request = meeting_request(rec, res.agency, agency_priority.get(res.agency, 0))
    window = [start - margin, start, end]  # computed before anything is recorded
    if phase == "Running" and rec.phase != "Running":
        prep.fixed[rec.key] = ("Running", "Started", f"started at {rfc3339(start)}")
    prep.boundaries += window
    prep.requests.append(request)


def plan_pool(
    pool_name: str,
    pool: BridgePoolSpec,
    meetings: list[MeetingRecord],
    quotas: list[QuotaRecord],
    namespace_labels: Mapping[str, Mapping[str, str]],
    margin: timedelta,
    now: datetime,
    focus: bool = False,
    *,
    pool_now: PoolNow | None = None,
    elsewhere: Sequence[MeetingRecord] = (),
) -> PoolPass:
    """One admission pass over a pool: desired statuses, quota usage, next time to look.

    `focus`: decide only what is open (see `focus_subset`): the statuses it returns are
    the ones a full pass would return for those Meetings, but it returns no quota status
    and no phase counts, and its next wake-up covers only those Meetings. The loop runs
    focused passes on Meeting events and full ones on a timer, at time boundaries and on
    quota, namespace or pool changes.

    A Meeting the pass cannot prepare for the core (whatever the error) is isolated: it
    gets Rejected/InvalidSpec saying why and is listed in `isolated`; the others are
    decided. `pool_now`: the pool as its scaling pass last saw it; a short-notice Meeting
    that would overflow it is Queued `PoolFull` (see `meetscale.decide.door`).
    `elsewhere`: the Meetings of the other pools; those holding a reservation count
    against their agency's quota here too (a quota holds across every pool).
    """
    out = PoolPass(full=not focus)
    if focus:
        meetings = focus_subset(meetings, margin, now)
    views, broken = _quota_views(quotas)
    usable = [q for q in quotas if q.name in views]
    resolver = AgencyResolver({q.name: q.spec.namespace_selector for q in usable if q.spec})
    priority = {q.name: q.spec.priority for q in usable if q.spec is not None}
    meetings, prep = _prepare(meetings, resolver, namespace_labels, priority, margin, now, out)
    undecided = {r.key for r in meetings if not r.status.get("phase")}
    prep.requests, refused = creation_refusals(
        prep.requests, undecided, views, pool_ceiling(pool, margin)
    )
    for key, (reason, message) in refused.items():  # as the webhook would have answered
        prep.fixed[key] = ("Rejected", reason, message)
    prep.requests, wrong = keep_to_the_pool(pool_name, pool, prep.requests)
    prep.fixed.update(wrong)
    prep.requests = rooms_before_plan(meetings, prep.requests, prep.fixed)
    mine = {r.key for r in meetings}  # a Meeting moving between pools is decided here
    held = [
        r
        for r in held_elsewhere(elsewhere, resolver, namespace_labels, priority, now)
        if r.key not in mine
    ]
    inputs = admission_inputs([*prep.requests, *held], views, pool_ceiling(pool, margin), now)
    out.inputs = inputs
    plan = at_the_door(decide_admission(*inputs), prep.requests, pool_now, now)
    rooms_after_plan(meetings, prep.requests, plan, prep.fixed)
    out.plan = plan
    names = {q.name: q.spec.display_name or q.name for q in quotas if q.spec is not None}
    _meeting_statuses(pool_name, meetings, prep, plan, now, out, inputs, names)
    future = [b for b in prep.boundaries if b > now]
    out.next_wakeup = min(future) if future else None
    if focus:
        out.phase_counts.clear()
        return out
    history = attendance(f for rec in [*meetings, *elsewhere] if (f := rec.facts()) is not None)
    out.quota_status.update(quota_statuses(quotas, broken, resolver, namespace_labels, plan, now))
    for name, cal in calibrations(history).items():
        if name in out.quota_status and name not in broken:
            out.quota_status[name]["calibration"] = {
                "factor": round(cal.factor, 3),
                "spread": round(cal.spread, 3),
                "samples": cal.samples,
                "summary": f"{name} {cal.describe()}",
            }
    return out


def _quota_views(quotas: list[QuotaRecord]) -> tuple[dict[str, AgencyQuotaView], dict[str, str]]:
    """The core's view of every valid quota, and the errors of the others."""
    views = {q.name: q.view() for q in quotas if q.spec is not None}
    broken = {q.name: q.spec_error or "invalid spec" for q in quotas if q.spec is None}
    return views, broken


def _meeting_statuses(
    pool_name: str,
    meetings: list[MeetingRecord],
    prep: _Prepared,
    plan: AdmissionPlan,
    now: datetime,
    out: PoolPass,
    inputs: AdmissionInputs,
    names: Mapping[str, str],
) -> None:
    by_key = {r.key: r for r in prep.requests}
    held: Reservations | None = None  # reservations after the pass (Queued: next start)
    for rec in meetings:
        agency = prep.agencies.get(rec.key)
        decision = plan.decisions.get(rec.key)
        req = by_key.get(rec.key)
        reserved = bridges = qpos = None
        if rec.key in prep.fixed:
            phase, reason, message = prep.fixed[rec.key]
            if req is not None and decision is not None:
                reserved, bridges = decision.reserved_participants, decision.reserved_bridges
            elif req is not None:
                reserved = int(rec.status.get("reservedParticipants") or req.participants)
                bridges = int(rec.status.get("reservedBridges") or 0)
        elif decision is not None:
            phase, reason, message = decision.phase, decision.reason, decision.message
            if rec.phase in HOLDING_PHASES and phase == Phase.ADMITTED:
                phase = rec.phase  # confirmation of an existing reservation
                reason = str(rec.status.get("reason") or decision.reason)
                message = str(rec.status.get("message") or decision.message)
            reserved, bridges = decision.reserved_participants, decision.reserved_bridges
            qpos = decision.queue_position
            if phase == Phase.QUEUED and req is not None and qpos is not None:  # (the door's
                # PoolFull has no queue position: its message says when it would fit)
                held = held or Reservations(reservations(inputs.requests, plan), inputs.pool, now)
                message += next_start_note(req, held, inputs.quotas, inputs.pool, now)
        elif req is not None and rec.phase in HOLDING_PHASES:
            phase = rec.phase
            reason = str(rec.status.get("reason") or "Admitted")
            message = str(rec.status.get("message") or "")
            reserved = int(rec.status.get("reservedParticipants") or req.participants)
            bridges = int(rec.status.get("reservedBridges") or 0)
        else:
            out.phase_counts[(agency or "", rec.phase)] += 1
            continue
        if rec.key in prep.reopened:
            message = f"{prep.reopened[rec.key]}: {message}"
        out.phase_counts[(agency or "", phase)] += 1
        new = compared_fields(
            rec,
            phase=phase,
            reason=reason,
            message=message,
            agency=agency,
            pool=pool_name,
            reserved=reserved,
            bridges=bridges,
            queue_position=qpos,
            display=names.get(agency or ""),
        )
        if changed(rec.status, new):
            new = complete_status(rec, new, now)
            moved = rec.status.get("phase") != phase or rec.status.get("reason") != reason
            event = (reason, message, reason in WARNING_REASONS) if moved else None
            out.changes.append(StatusChange(rec, new, event, agency))


def _settled(rec: MeetingRecord, now: datetime) -> bool:
    """Decided, unchanged since, and not due for a transition by the clock: a full pass
    would confirm it as it is."""
    spec = rec.spec
    if spec is None or rec.generation > int(rec.status.get("observedGeneration") or 0):
        return False
    phase = rec.phase
    if spec.cancelled or phase == "Cancelled":
        return spec.cancelled and phase == "Cancelled"
    if phase in TERMINAL_PHASES:
        return True
    due = timed_phase(phase, spec.start, spec.end_time, now)
    return phase in HOLDING_PHASES and due == phase


def focus_subset(
    meetings: list[MeetingRecord], margin: timedelta, now: datetime
) -> list[MeetingRecord]:
    """The Meetings a focused pass looks at: every open one (not yet decided, edited,
    queued, due for a transition), and the settled reservations whose window
    `[start - margin, end)` overlaps an open one's. Admission compares overlapping
    windows only, so the others cannot change a decision (a test compares with full
    passes); at 10,000 Meetings this is what keeps a pass for a few new ones short."""
    open_, held = [], []
    for rec in meetings:
        if not _settled(rec, now):
            open_.append(rec)
        elif rec.phase in HOLDING_PHASES:
            held.append(rec)
    # A Queued one's message names its next start that fits, up to NOTE_HORIZON after its
    # start: the reservations there are in the pass too.
    spans = sorted((r.spec.start - margin, r.spec.end_time + NOTE_HORIZON) for r in open_ if r.spec)
    merged: list[list[datetime]] = []
    for lo, hi in spans:
        if merged and lo <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], hi)
        else:
            merged.append([lo, hi])
    los = [m[0] for m in merged]
    out = list(open_)
    for rec in held:
        assert rec.spec is not None
        lo, hi = rec.spec.start - margin, rec.spec.end_time
        i = bisect_right(los, hi) - 1  # the last open span starting before this one ends
        while i >= 0 and merged[i][1] > lo:
            if merged[i][0] < hi:
                out.append(rec)
                break
            i -= 1
    return out
