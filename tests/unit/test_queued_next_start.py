"""What agency staff read on a Meeting: the agency by its display name, and on a Queued
Meeting the first start that would be admitted now (the same answer `meetscale slots`
gives, from the same pass)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from meetscale.admission.statuses import plan_pool
from meetscale.decide.admit.slots import NOTE_HORIZON, Ask, earliest_start, reservations
from meetscale.models import BridgePoolSpec
from meetscale.records import MeetingRecord, QuotaRecord, quota_views

ICT = timezone(timedelta(hours=7))
NOW = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)  # 10:00 in the province
MARGIN = timedelta(minutes=10)
POOL = BridgePoolSpec.model_validate(
    {"template": {"spec": {"containers": [{"name": "jvb", "image": "jitsi/jvb"}]}}, "maxBridges": 3}
)
LABELS = {ns: {"meetscale.io/agency": ns} for ns in ("so-y-te", "ubnd-tinh", "so-gd-dt")}


def quota(name: str, limit: int, display: str | None = None, **spec) -> QuotaRecord:
    body = {
        "namespaceSelector": {"matchLabels": {"meetscale.io/agency": name}},
        "limits": {
            "maxConcurrentParticipants": limit,
            "maxConcurrentMeetings": 5,
            "maxMeetingParticipants": 1000,
            "maxMeetingDurationMinutes": 1440,
        },
        "maxPriorityClass": "provincial",
        **spec,
    }
    if display:
        body["displayName"] = display
    return QuotaRecord.from_body({"metadata": {"name": name, "uid": name, "generation": 1},
                                  "spec": body})  # fmt: skip


QUOTAS = [
    quota("so-y-te", 500, "Sở Y tế"),
    quota("ubnd-tinh", 3000, "UBND tỉnh Nghệ An"),
    quota("so-gd-dt", 2000),
]


def meeting(ns: str, name: str, start: str, minutes: int, participants: int, day=8, **spec):
    return MeetingRecord.from_body(
        {
            "metadata": {
                "name": name,
                "namespace": ns,
                "uid": f"{ns}-{name}",
                "generation": 1,
                "creationTimestamp": "2026-12-01T00:00:00Z",
            },
            "spec": {
                "title": name,
                "start": f"2026-12-{day:02d}T{start}:00+07:00",
                "durationMinutes": minutes,
                "participants": participants,
                **spec,
            },
        }
    )


def statuses(*meetings, quotas=QUOTAS, focus=False):
    # confidential Meetings run on a confidential pool of the same size
    confidential = any(m.spec is not None and m.spec.confidential for m in meetings)
    pool = POOL.model_copy(update={"confidential": True}) if confidential else POOL
    result = plan_pool("default", pool, list(meetings), quotas, LABELS, MARGIN, NOW, focus=focus)
    return {c.record.name: c.status for c in result.changes}, result


CASES = [
    pytest.param(
        [
            meeting("so-y-te", "giao-ban", "08:00", 90, 250),
            meeting("so-y-te", "tap-huan", "08:30", 90, 300),
        ],
        "tap-huan",
        "exceeded quota so-y-te (Sở Y tế): participants requested 300, booked 250, limit 500; "
        "the first start that would be admitted now is 2026-12-08T09:40:00+07:00",
        id="own-quota",
    ),
    pytest.param(
        [
            meeting("ubnd-tinh", "hoi-nghi", "14:00", 120, 800, priorityClass="provincial"),
            meeting("so-gd-dt", "lop-truc-tuyen", "14:30", 45, 200),
        ],
        "lop-truc-tuyen",
        "pool full: participants requested 200, booked 800, limit 900; the first start that "
        "would be admitted now is 2026-12-08T16:10:00+07:00",
        id="pool-full",
    ),
    pytest.param(
        [
            meeting("so-gd-dt", "lop", "14:30", 45, 100, confidential=True),
            meeting("ubnd-tinh", "hop-mat", "14:00", 60, 301, confidential=True),
            meeting("ubnd-tinh", "hop-mat-2", "14:00", 60, 100, confidential=True),
        ],
        "hop-mat-2",
        "pool full: participants requested 300 (confidential: 1 whole bridge), booked 900, "
        "limit 900; the first start that would be admitted now is 2026-12-08T15:10:00+07:00",
        id="confidential-whole-bridges",
    ),
    pytest.param(
        [
            meeting("so-y-te", "a", "08:00", 600, 500),
            meeting("so-y-te", "b", "08:00", 60, 100),
        ],
        "b",
        "exceeded quota so-y-te (Sở Y tế): participants requested 100, booked 500, limit 500; "
        "the first start that would be admitted now is 2026-12-08T18:10:00+07:00",
        id="quota-taken-all-day",
    ),
]


@pytest.mark.parametrize(("meetings", "queued", "message"), CASES)
def test_queued_message_names_the_first_start_that_fits(meetings, queued, message):
    written, result = statuses(*meetings)
    status = written[queued]
    assert status["phase"] == "Queued"
    assert status["message"] == message
    # The same start as `meetscale slots` would list first from the requested one.
    assert result.inputs is not None and result.plan is not None
    req = next(r for r in result.inputs.requests if r.key.endswith("/" + queued))
    ask = Ask(req.agency, req.participants, req.end - req.start, req.priority, req.confidential)
    first = earliest_start(
        ask,
        reservations(result.inputs.requests, result.plan),
        quota_views(QUOTAS),
        result.inputs.pool,
        NOW,
        req.start,
        req.start + NOTE_HORIZON,
    )
    assert first is not None and first.isoformat() in message
    # A focused pass (as on a Meeting event) writes the same message.
    focused, _ = statuses(*meetings, focus=True)
    assert focused[queued]["message"] == message


def test_no_start_within_the_horizon():
    written, _ = statuses(
        meeting("so-y-te", "ca-ngay", "00:00", 1440, 500),
        meeting("so-y-te", "ca-ngay-2", "00:10", 1440, 500, day=9),
        meeting("so-y-te", "muon", "08:00", 60, 100),
    )
    assert written["muon"]["phase"] == "Queued"
    assert written["muon"]["message"].endswith(
        "; no start in the 12 h after it would be admitted now"
    )


def test_the_agency_is_shown_by_its_display_name():
    written, _ = statuses(
        meeting("so-y-te", "giao-ban", "08:00", 90, 250),
        meeting("so-gd-dt", "lop", "08:00", 45, 40),
    )
    assert written["giao-ban"]["agency"] == "so-y-te"
    assert written["giao-ban"]["agencyDisplayName"] == "Sở Y tế"
    assert written["giao-ban"]["message"].startswith("admitted in quota so-y-te (Sở Y tế):")
    # Without a display name the column shows the quota's name.
    assert written["lop"]["agencyDisplayName"] == "so-gd-dt"
    assert written["lop"]["message"].startswith("admitted in quota so-gd-dt:")
