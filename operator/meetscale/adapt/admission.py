"""Specs to the admission core's inputs: quotas, the pool ceiling, meeting requests."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from datetime import datetime, timedelta
from typing import NamedTuple

from meetscale.decide.admit.types import AgencyQuotaView, MeetingRequest, PoolCeiling
from meetscale.decide.admit.validation import refused_at_creation
from meetscale.models import (
    PRIORITY_VALUES,
    AgencyQuotaSpec,
    BridgePoolSpec,
    MeetingSpec,
    Phase,
)

__all__ = [
    "AdmissionInputs",
    "admission_inputs",
    "creation_refusals",
    "involved_quotas",
    "meeting_request",
    "pool_ceiling",
    "quota_view",
]


class AdmissionInputs(NamedTuple):
    """What :func:`~meetscale.decide.admit.decide_admission` is given."""

    requests: list[MeetingRequest]
    quotas: dict[str, AgencyQuotaView]
    pool: PoolCeiling
    now: datetime


def quota_view(name: str, spec: AgencyQuotaSpec) -> AgencyQuotaView:
    """The core's view of one AgencyQuota: every limit, its cohort, lending and borrowing."""
    lim = spec.limits
    return AgencyQuotaView(
        name=name,
        max_concurrent_participants=lim.max_concurrent_participants,
        max_concurrent_meetings=lim.max_concurrent_meetings,
        max_meeting_participants=lim.max_meeting_participants,
        max_meeting_duration=timedelta(minutes=lim.max_meeting_duration_minutes),
        max_book_ahead=timedelta(days=lim.max_book_ahead_days),
        priority=spec.priority,
        weight=spec.weight,
        cohort=spec.cohort,
        borrowing_limit=spec.borrowing_limit,
        lending_limit=spec.lending_limit,
        max_priority=PRIORITY_VALUES[spec.max_priority_class],
        display_name=spec.display_name,
    )


def pool_ceiling(spec: BridgePoolSpec, pre_join_margin: timedelta) -> PoolCeiling:
    """The pool's hard ceiling, with the operator's pre-join margin (quota is held from
    ``start - margin``)."""
    return PoolCeiling(
        max_bridges=spec.max_bridges,
        participants_per_bridge=spec.participants_per_bridge,
        pre_join_margin=pre_join_margin,
        pinned=spec.placement.mode == "Pinned",
    )


def meeting_request(
    key: str,
    spec: MeetingSpec,
    *,
    agency: str,
    agency_priority: int,
    created: datetime,
    phase: str,
    edited: bool = False,
    elsewhere: bool = False,
) -> MeetingRequest:
    """The core's view of a Meeting. An ``edited`` meeting (its spec changed since it was
    decided) that was admitted but has not started, or queued, is decided again as
    Pending: growing it re-checks quota, moving it re-checks how far ahead it is.
    ``elsewhere``: a Meeting of another pool (it counts against its agency's quota only)."""
    if phase in (Phase.ADMITTED, Phase.QUEUED) and edited:
        phase = Phase.PENDING
    return MeetingRequest(
        key=key,
        agency=agency,
        start=spec.start,
        end=spec.end_time,
        participants=spec.participants,
        priority=PRIORITY_VALUES[spec.priority_class],
        confidential=spec.confidential,
        created_at=created,
        phase=phase,
        agency_priority=agency_priority,
        elsewhere=elsewhere,
    )


def involved_quotas(
    views: Mapping[str, AgencyQuotaView], requests: Sequence[MeetingRequest]
) -> dict[str, AgencyQuotaView]:
    """The quotas that can matter to these requests: their agencies' and, for lending,
    every quota of the cohorts those agencies belong to. An agency with no meeting in the
    pass and no cohort in common holds nothing and lends nothing (its usage is zero)."""
    agencies = {r.agency for r in requests}
    cohorts = {views[a].cohort for a in agencies if a in views} - {None}
    return {name: v for name, v in views.items() if name in agencies or v.cohort in cohorts}


def admission_inputs(
    requests: Sequence[MeetingRequest],
    views: Mapping[str, AgencyQuotaView],
    pool: PoolCeiling,
    now: datetime,
) -> AdmissionInputs:
    """The core's inputs for one admission pass: the requests (by key) and the quotas
    involved."""
    reqs = sorted(requests, key=lambda r: r.key)
    return AdmissionInputs(reqs, involved_quotas(views, reqs), pool, now)


def creation_refusals(
    requests: Sequence[MeetingRequest],
    undecided: AbstractSet[str],
    views: Mapping[str, AgencyQuotaView],
    pool: PoolCeiling,
) -> tuple[list[MeetingRequest], dict[str, tuple[str, str]]]:
    """The requests for the core, and the Meetings never decided yet (``undecided``: keys)
    that the validating webhook would have refused when they were created: key ->
    (reason, the webhook's message). Such a Meeting was stored while the webhook could not
    be asked (the operator down); it is Rejected in the webhook's words and, as if it had
    never been stored, holds nothing."""
    kept: list[MeetingRequest] = []
    refused: dict[str, tuple[str, str]] = {}
    for req in requests:
        found = refused_at_creation(req, dict(views), pool) if req.key in undecided else None
        if found is None:
            kept.append(req)
        else:
            refused[req.key] = found
    return kept, refused
