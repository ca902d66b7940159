"""One admission pass of the shell, from stored objects to the statuses it would write."""

from datetime import UTC, datetime, timedelta

import pytest

from meetscale.admission.statuses import plan_pool
from meetscale.models import BridgePoolSpec
from meetscale.records import MeetingRecord, QuotaRecord

NOW = datetime(2020, 4, 6, 1, 0, tzinfo=UTC)
POOL = BridgePoolSpec.model_validate(
    {"template": {"spec": {"containers": [{"name": "jvb"}]}}, "maxBridges": 10}
)
LABELS = {"so-y-te": {"meetscale.io/agency": "so-y-te"}, "orphan": {}}
QUOTA = QuotaRecord.from_body(
    {
        "metadata": {"name": "so-y-te", "uid": "q", "generation": 3},
        "spec": {
            "namespaceSelector": {"matchLabels": {"meetscale.io/agency": "so-y-te"}},
            "limits": {
                "maxConcurrentParticipants": 500,
                "maxConcurrentMeetings": 5,
                "maxMeetingParticipants": 400,
            },
        },
    }
)


def meeting(name, *, ns="so-y-te", start_h=1.0, participants=100, status=None, **spec):
    start = NOW + timedelta(hours=start_h)
    return MeetingRecord.from_body(
        {
            "metadata": {
                "name": name,
                "namespace": ns,
                "uid": f"uid-{name}",
                "generation": 1,
                "creationTimestamp": "2020-04-05T00:00:00Z",
            },
            "spec": {
                "title": name,
                "start": start.isoformat(),
                "durationMinutes": 60,
                "participants": participants,
                **spec,
            },
            "status": status or {},
        }
    )


def run(*meetings):
    result = plan_pool("default", POOL, list(meetings), [QUOTA], LABELS, timedelta(0), NOW)
    return {c.record.name: c for c in result.changes}, result


@pytest.mark.parametrize(
    ("record", "phase", "reason"),
    [
        (meeting("ok"), "Admitted", "Admitted"),
        (meeting("orphan", ns="orphan"), "Pending", "NoAgencyQuota"),
        (meeting("cancel", cancelled=True), "Cancelled", "Cancelled"),
        (
            meeting("started", start_h=-0.5, status={"phase": "Admitted", "reason": "Admitted"}),
            "Running",
            "Started",
        ),
        (
            meeting("over", start_h=-2, status={"phase": "Running", "reason": "Started"}),
            "Finished",
            "Finished",
        ),
    ],
    ids=["admitted", "namespace-without-quota", "cancelled", "starts-running", "finishes"],
)
def test_phase_and_reason(record, phase, reason):
    changes, _ = run(record)
    status = changes[record.name].status
    assert (status["phase"], status["reason"]) == (phase, reason)
    assert changes[record.name].event is not None  # every transition is announced


def test_invalid_stored_spec_is_rejected_with_the_field():
    bad = MeetingRecord.from_body(
        {
            "metadata": {"name": "bad", "namespace": "so-y-te", "uid": "u", "generation": 1},
            "spec": {"title": "x", "start": NOW.isoformat(), "participants": 10},
        }
    )
    changes, _ = run(bad)
    assert changes["bad"].status["reason"] == "InvalidSpec"
    assert "exactly one of spec.end and spec.durationMinutes" in changes["bad"].status["message"]


def test_quota_status_sums_admitted_and_nothing_rewritten_when_unchanged():
    a, b = meeting("a", participants=300), meeting("b", participants=300)
    changes, result = run(a, b)
    phases = sorted(c.status["phase"] for c in changes.values())
    assert phases == ["Admitted", "Queued"]
    assert result.quota_status["so-y-te"]["peakBookedParticipants"] == 300
    assert result.quota_status["so-y-te"]["pendingMeetings"] == 1
    # Feed the written statuses back: the next pass writes nothing.
    stored = [MeetingRecord(**{**r.__dict__, "status": changes[r.name].status}) for r in (a, b)]
    again, _ = run(*stored)
    assert again == {}


def test_next_wakeup_is_the_next_start():
    _, result = run(meeting("a", start_h=2))
    assert result.next_wakeup == NOW + timedelta(hours=2)


def test_phase_counts_cover_every_meeting_once():
    a, b = meeting("a", participants=300), meeting("b", participants=300)
    orphan = meeting("o", ns="orphan")
    _, result = run(a, b, orphan)
    assert result.phase_counts == {
        ("so-y-te", "Admitted"): 1,
        ("so-y-te", "Queued"): 1,
        ("", "Pending"): 1,
    }
