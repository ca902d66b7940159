"""A focused admission pass (the open Meetings and the reservations overlapping them) must
write exactly what a full pass over every Meeting would: the same decisions, the same
statuses. Checked on seeded random provinces with contended quotas and a small pool:
a full pass settles a first batch, then the clock moves on, new Meetings arrive, some are
edited, cancelled or deleted, and both kinds of pass are compared."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from meetscale.admission.statuses import focus_subset, plan_pool
from meetscale.models import BridgePoolSpec
from meetscale.records import MeetingRecord, QuotaRecord

NOW = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
MARGIN = timedelta(minutes=10)
AGENCIES = ["ubnd-tinh", "so-y-te", "so-gd-dt", "ubnd-tp-vinh"]
LABELS = {a: {"meetscale.io/agency": a} for a in AGENCIES}


def quota(name: str, rng: random.Random) -> QuotaRecord:
    cohort = rng.choice([None, "tinh"])
    spec: dict[str, Any] = {
        "namespaceSelector": {"matchLabels": {"meetscale.io/agency": name}},
        "limits": {
            "maxConcurrentParticipants": rng.choice([150, 300, 600]),
            "maxConcurrentMeetings": rng.choice([2, 3, 6]),
            "maxMeetingParticipants": 300,
        },
        "weight": rng.choice([1, 2]),
        "priority": rng.choice([0, 100]),
        "maxPriorityClass": "provincial",
    }
    if cohort:
        spec["cohort"] = cohort
        spec["borrowingLimit"] = rng.choice([0, 100, 300])
    return QuotaRecord.from_body(
        {"metadata": {"name": name, "uid": name, "generation": 1}, "spec": spec}
    )


def body(i: int, rng: random.Random, created: datetime) -> dict[str, Any]:
    ns = rng.choice(AGENCIES)
    start = NOW + timedelta(minutes=15 * rng.randrange(-4, 40))
    return {
        "metadata": {
            "name": f"m{i:03d}",
            "namespace": ns,
            "uid": f"uid-{i}",
            "generation": 1,
            "creationTimestamp": created.isoformat().replace("+00:00", "Z"),
        },
        "spec": {
            "title": f"m{i}",
            "start": start.isoformat(),
            "durationMinutes": rng.choice([30, 60, 120]),
            "participants": rng.randrange(10, 260),
            "priorityClass": rng.choice(["low", "normal", "normal", "high", "provincial"]),
            "confidential": rng.random() < 0.1,
        },
    }


def written(rec: MeetingRecord, status: dict[str, Any]) -> MeetingRecord:
    meta = {
        "name": rec.name,
        "namespace": rec.namespace,
        "uid": rec.uid,
        "generation": rec.generation,
        "creationTimestamp": rec.created.isoformat().replace("+00:00", "Z"),
    }
    assert rec.spec is not None
    spec = rec.spec.model_dump(mode="json", by_alias=True, exclude_none=True)
    return MeetingRecord.from_body({"metadata": meta, "spec": spec, "status": status})


def edited(rec: MeetingRecord, **changes: Any) -> MeetingRecord:
    assert rec.spec is not None
    spec = {**rec.spec.model_dump(mode="json", by_alias=True, exclude_none=True), **changes}
    meta = {
        "name": rec.name,
        "namespace": rec.namespace,
        "uid": rec.uid,
        "generation": rec.generation + 1,
        "creationTimestamp": rec.created.isoformat().replace("+00:00", "Z"),
    }
    return MeetingRecord.from_body({"metadata": meta, "spec": spec, "status": dict(rec.status)})


def province(seed: int) -> tuple[list[MeetingRecord], list[QuotaRecord], BridgePoolSpec, datetime]:
    rng = random.Random(seed)
    quotas = [quota(a, rng) for a in AGENCIES]
    pool = BridgePoolSpec.model_validate(
        {
            "template": {"spec": {"containers": [{"name": "jvb", "image": "jitsi/jvb"}]}},
            "participantsPerBridge": 300,
            "maxBridges": rng.choice([2, 3, 5]),
        }
    )
    created = NOW - timedelta(days=1)
    records = [MeetingRecord.from_body(body(i, rng, created)) for i in range(40)]
    first = plan_pool("default", pool, records, quotas, LABELS, MARGIN, NOW)
    statuses = {c.record.uid: c.status for c in first.changes}
    settled = [written(r, statuses.get(r.uid, dict(r.status))) for r in records]
    # Later: the clock moved (some started, some ended), new Meetings, edits, deletes.
    later = NOW + timedelta(minutes=rng.choice([0, 20, 45, 90]))
    kept = [r for r in settled if rng.random() > 0.1]
    changed = []
    for r in kept:
        roll = rng.random()
        if roll < 0.08:
            changed.append(edited(r, participants=min(300, r.spec.participants + 80)))  # type: ignore[union-attr]
        elif roll < 0.12:
            changed.append(edited(r, cancelled=True))
        else:
            changed.append(r)
    fresh = [MeetingRecord.from_body(body(100 + i, rng, later)) for i in range(rng.randrange(1, 8))]
    return changed + fresh, quotas, pool, later


def summary(result: Any) -> dict[str, tuple[Any, ...]]:
    return {
        c.record.key: (
            c.status["phase"],
            c.status["reason"],
            c.status["message"],
            c.status["reservedParticipants"],
            c.status["reservedBridges"],
            c.status["queuePosition"],
            c.event,
        )
        for c in result.changes
    }


@pytest.mark.parametrize("seed", range(60), ids=[f"seed-{s}" for s in range(60)])
def test_focused_pass_writes_what_a_full_pass_writes(seed: int) -> None:
    meetings, quotas, pool, now = province(seed)
    full = plan_pool("default", pool, meetings, quotas, LABELS, MARGIN, now)
    focused = plan_pool("default", pool, meetings, quotas, LABELS, MARGIN, now, focus=True)
    assert summary(focused) == summary(full)
    assert focused.quota_status == {} and not focused.phase_counts
    assert full.quota_status, "a full pass writes every quota's status"


def test_the_comparison_sees_contention() -> None:
    """The seeds above must exercise what could differ: queued or rejected meetings next
    to admitted ones, and focused passes that leave reservations out."""
    reasons: set[str] = set()
    left_out = 0
    for seed in range(60):
        meetings, quotas, pool, now = province(seed)
        full = plan_pool("default", pool, meetings, quotas, LABELS, MARGIN, now)
        reasons |= {c.status["reason"] for c in full.changes}
        left_out += len(meetings) - len(focus_subset(meetings, MARGIN, now))
    assert {"Admitted", "QuotaExceeded", "PoolFull"} <= reasons
    assert left_out > 100


def test_a_reservation_overlapping_a_new_meeting_is_in_focus() -> None:
    meetings, _, _, now = province(1)
    new = MeetingRecord.from_body(body(999, random.Random(5), now))
    subset = focus_subset([*meetings, new], MARGIN, now)
    assert new in subset
    assert new.spec is not None
    lo, hi = new.spec.start - MARGIN, new.spec.end_time
    for rec in meetings:
        assert rec.spec is not None
        overlaps = rec.spec.start - MARGIN < hi and lo < rec.spec.end_time
        if overlaps and rec.phase in ("Admitted", "Running"):
            assert rec in subset, rec.key
