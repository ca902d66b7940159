"""A trace's rows as the operator's own specs: the BridgePool, the AgencyQuotas, the Meetings.

The simulator's operator policy reaches the decision core only through
:mod:`meetscale.adapt`, from these specs, as the live operator does from the objects it
watches. Each agency books from one namespace named after it, so a Meeting's key is
``<agency>/<name>`` as the live operator's ``<namespace>/<name>``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from pydantic import ValidationError

from meetscale.models import (
    AgencyQuotaSpec,
    BridgePoolSpec,
    LabelSelector,
    MeetingSpec,
    QuotaLimits,
)
from meetscale.models.pool import Placement
from meetscale.sim.trace import AgencySpec, MeetingTrace, PoolSpec, Trace, TraceError

__all__ = ["AGENCY_LABEL", "TraceSpecs", "trace_specs"]

#: the namespace label the simulated agencies' quotas select
AGENCY_LABEL = "meetscale.io/agency"
#: the bridge pod template of a simulated pool (never run: the world models the bridges)
BRIDGE_TEMPLATE = {"spec": {"containers": [{"name": "jvb", "image": "jitsi/jvb"}]}}
SIM_JICOFO = "http://jicofo.sim.invalid:8888"


@dataclass(frozen=True, slots=True)
class TraceSpecs:
    """The specs of one trace, with each meeting's key and creation time by index."""

    pool: BridgePoolSpec
    pre_join_margin: timedelta
    quotas: dict[str, AgencyQuotaSpec]
    meetings: list[MeetingSpec]
    keys: list[str]


def pool_spec(pool: PoolSpec) -> BridgePoolSpec:
    return BridgePoolSpec(
        template=BRIDGE_TEMPLATE,
        participants_per_bridge=pool.participants_per_bridge,
        min_bridges=pool.min_bridges,
        max_bridges=pool.max_bridges,
        target_stress=pool.target_stress,
        tolerance=pool.tolerance,
        lead_time_seconds=pool.lead_time_seconds,
        protection_seconds=pool.protection_seconds,
        drain_timeout_seconds=pool.drain_timeout_seconds,
        spare_bridges=pool.spare_bridges,
        placement=Placement(
            mode=pool.placement,
            # the simulated world's Jicofo: pins reach it without HTTP
            jicofo_url=SIM_JICOFO if pool.placement == "Pinned" else None,
        ),
    )


def quota_spec(agency: AgencySpec) -> AgencyQuotaSpec:
    return AgencyQuotaSpec(
        namespace_selector=LabelSelector(match_labels={AGENCY_LABEL: agency.name}),
        limits=QuotaLimits(
            max_concurrent_participants=agency.max_concurrent_participants,
            max_concurrent_meetings=agency.max_concurrent_meetings,
            max_meeting_participants=agency.max_meeting_participants,
            max_meeting_duration_minutes=agency.max_meeting_duration_minutes,
            max_book_ahead_days=agency.max_book_ahead_days,
        ),
        priority=agency.priority,
        weight=agency.weight,
        max_priority_class=agency.max_priority_class,
        cohort=agency.cohort,
        borrowing_limit=agency.borrowing_limit,
        lending_limit=agency.lending_limit,
    )


def meeting_spec(m: MeetingTrace) -> MeetingSpec:
    return MeetingSpec(
        title=m.name[:200],
        start=m.start,
        end=m.end,
        participants=m.participants,
        priority_class=m.priority_class,
        confidential=m.confidential,
    )


def _loc(loc: tuple[int | str, ...]) -> str:
    return "".join(f".{p}" if isinstance(p, str) else f"[{p}]" for p in loc)


def trace_specs(trace: Trace) -> TraceSpecs:
    """The specs of a trace; :class:`TraceError` names each row the operator's own
    validation refuses (a trace the live operator could never be given)."""
    problems: list[str] = []
    pool: BridgePoolSpec | None = None
    try:
        pool = pool_spec(trace.pool)
    except ValidationError as exc:
        problems += [f"pool{_loc(e['loc'])}: {e['msg']}" for e in exc.errors()]
    quotas: dict[str, AgencyQuotaSpec] = {}
    for i, a in enumerate(trace.agencies):
        try:
            quotas[a.name] = quota_spec(a)
        except ValidationError as exc:
            where = f"agencies[{i}] ({a.name})"
            problems += [f"{where}{_loc(e['loc'])}: {e['msg']}" for e in exc.errors()]
    meetings: list[MeetingSpec] = []
    for i, m in enumerate(trace.meetings):
        try:
            meetings.append(meeting_spec(m))
        except ValidationError as exc:
            where = f"meetings[{i}] ({m.name})"
            problems += [f"{where}{_loc(e['loc'])}: {e['msg']}" for e in exc.errors()]
    if problems or pool is None:
        raise TraceError(problems, trace.name)
    return TraceSpecs(
        pool=pool,
        pre_join_margin=timedelta(seconds=trace.pool.pre_join_margin_seconds),
        quotas=quotas,
        meetings=meetings,
        keys=[f"{m.agency}/{m.name}" for m in trace.meetings],
    )
