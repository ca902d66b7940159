"""What one pool's admission pass takes from the pools: a quota holds across every pool
(the reservations the other pools hold count against it), and a Meeting is decided only
by a pool of its kind (a confidential Meeting by a confidential pool, and no other)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime

from meetscale.decide.admit import MeetingRequest
from meetscale.decide.admit.agency import AgencyResolver
from meetscale.decide.admit.checks import pool_mismatch
from meetscale.decide.lifecycle import timed_phase
from meetscale.models import HOLDING_PHASES, BridgePoolSpec
from meetscale.records import MeetingRecord, meeting_request

__all__ = ["held_elsewhere", "keep_to_the_pool"]


def keep_to_the_pool(
    pool_name: str, pool: BridgePoolSpec, requests: Sequence[MeetingRequest]
) -> tuple[list[MeetingRequest], dict[str, tuple[str, str, str]]]:
    """The requests this pool decides, and those on the wrong kind of pool (confidential
    or shared): they wait, Pending with the reason (key -> phase, reason, message). One
    holding a reservation keeps it."""
    keep, wrong = [], {}
    for req in requests:
        mismatch = pool_mismatch(req.confidential, pool_name, pool.confidential)
        if mismatch is None or req.phase in HOLDING_PHASES:
            keep.append(req)
        else:
            wrong[req.key] = ("Pending", str(mismatch.reason), mismatch.message)
    return keep, wrong


def held_elsewhere(
    records: Sequence[MeetingRecord],
    resolver: AgencyResolver,
    namespace_labels: Mapping[str, Mapping[str, str]],
    agency_priority: Mapping[str, int],
    now: datetime,
) -> list[MeetingRequest]:
    """The reservations other pools hold, as requests that count against their agencies'
    quotas only. A record that cannot be read is its own pool's to report."""
    out = []
    for rec in records:
        if rec.spec is None or rec.spec.cancelled or rec.phase not in HOLDING_PHASES:
            continue
        if rec.spec.end_time <= now:
            continue
        agency = resolver.resolve(rec.namespace, namespace_labels.get(rec.namespace)).agency
        if agency is None:
            continue
        phase = timed_phase(rec.phase, rec.spec.start, rec.spec.end_time, now)
        seen = replace(rec, status={**rec.status, "phase": phase})  # as its own pass sees it
        out.append(meeting_request(seen, agency, agency_priority.get(agency, 0), elsewhere=True))
    return out
