"""Statuses of the Meetings no pool decides (pure: no I/O).

Meetings are decided by the admission loop of the BridgePool their `spec.pool` names (or
the default pool). A Meeting naming a pool that does not exist, or one whose spec the
operator cannot use, would otherwise never get a status or an event. These get
`Pending` with reason `PoolNotFound` (or `PoolInvalid`) and a message naming `spec.pool`
and the pools that exist; once such a pool appears (or is fixed) its own loop decides
them. A Meeting that ends meanwhile is `Rejected` with the same reason.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import datetime

from meetscale.admission.statuses import (
    WARNING_REASONS,
    StatusChange,
    changed,
    compared_fields,
    complete_status,
    reopened,
)
from meetscale.models import HOLDING_PHASES, TERMINAL_PHASES
from meetscale.records import MeetingRecord

POOL_NOT_FOUND = "PoolNotFound"
#: the end of the message of an admitted Meeting whose pool went away
RELEASED = "its reservation went with the pool: it is decided again once a pool exists"
POOL_INVALID = "PoolInvalid"


def pool_problem(
    pool_key: str,
    pools: Mapping[str, bool],
    default_pool_key: str,
    confidential_pool_key: str | None = None,
) -> tuple[str, str] | None:
    """(reason, message) when Meetings of `pool_key` have no pool to decide them.

    `pools`: every BridgePool by "namespace/name" -> whether the operator can use its spec;
    `confidential_pool_key`: where confidential Meetings without `spec.pool` go.
    """
    if pools.get(pool_key) is True:
        return None
    namespace, name = pool_key.split("/", 1)
    if pool_key in pools:
        return POOL_INVALID, (
            f"BridgePool {pool_key} has a spec the operator cannot use (see the operator's "
            "log); admission of its Meetings waits until it is fixed"
        )
    there = sorted(k.split("/", 1)[1] for k in pools if k.split("/", 1)[0] == namespace)
    existing = ", ".join(there) if there else "none"
    if pool_key == confidential_pool_key:
        return POOL_NOT_FOUND, (
            "spec.confidential is true and spec.pool is unset, and the confidential "
            f'BridgePool "{name}" does not exist in namespace {namespace} (BridgePools '
            f"there: {existing}): a confidential Meeting runs only on bridges of its own, a "
            "BridgePool with spec.confidential: true, never on the shared pool. Ask the IT "
            "centre to create it"
        )
    if pool_key == default_pool_key:
        what = f'spec.pool is unset and the default BridgePool "{name}" does not exist'
    else:
        what = f'spec.pool "{name}" names no BridgePool'
    return POOL_NOT_FOUND, (
        f"{what} in namespace {namespace}; BridgePools there: {existing}. Set spec.pool to "
        "one of them, or ask the IT centre to create the pool"
    )


def orphan_changes(
    pool_key: str,
    records: Iterable[MeetingRecord],
    pools: Mapping[str, bool],
    default_pool_key: str,
    now: datetime,
    confidential_pool_key: str | None = None,
) -> list[StatusChange]:
    """The statuses to write for the Meetings of `pool_key` when it has no usable pool."""
    problem = pool_problem(pool_key, pools, default_pool_key, confidential_pool_key)
    if problem is None:
        return []
    reason, message = problem
    pool_name = pool_key.split("/", 1)[1]
    out = []
    for stored in records:
        rec = stored
        if reopened(stored) is not None:
            rec = replace(stored, status={**stored.status, "phase": "Pending"})
        wanted = _wanted(rec, reason, message, now)
        if wanted is None:
            continue
        phase, why, text = wanted
        new = compared_fields(
            rec,
            phase=phase,
            reason=why,
            message=text,
            agency=rec.status.get("agency"),
            pool=pool_name,
            reserved=None,
            bridges=None,
            queue_position=None,
        )
        if changed(stored.status, new):
            new = complete_status(rec, new, now)
            moved = stored.status.get("phase") != phase or stored.status.get("reason") != why
            event = (why, text, why in WARNING_REASONS) if moved else None
            out.append(StatusChange(stored, new, event, rec.status.get("agency")))
    return out


def _wanted(
    rec: MeetingRecord, reason: str, message: str, now: datetime
) -> tuple[str, str, str] | None:
    if rec.spec is None:
        return "Rejected", "InvalidSpec", rec.spec_error or "invalid spec"
    if rec.spec.cancelled:
        return "Cancelled", "Cancelled", "cancelled by spec.cancelled"
    if rec.phase in TERMINAL_PHASES:
        return None
    end = rec.spec.end_time
    if end <= now:
        return "Rejected", reason, f"{message}; it ended at {end.isoformat()} without a pool"
    if rec.phase in HOLDING_PHASES:  # admitted once: it loses its reservation, and says so
        held = rec.status.get("reservedParticipants")
        before = f"{rec.phase} before ({held} participants reserved)"
        return "Pending", reason, f"{message}; {before}, {RELEASED}"
    stored = str(rec.status.get("message") or "")
    if stored.startswith(message) and stored.endswith(RELEASED):
        return "Pending", reason, stored  # keeps saying it was admitted
    return "Pending", reason, message
