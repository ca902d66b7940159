"""One admission pass of the shell, from stored objects to the statuses it would write."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from meetscale.admission.statuses import plan_pool
from meetscale.models import BridgePoolSpec, MeetingSpec, PriorityClass
from meetscale.records import MeetingRecord, QuotaRecord

NOW = datetime(2020, 4, 6, 1, 0, tzinfo=UTC)
POOL = BridgePoolSpec.model_validate(
    {
        "template": {"spec": {"containers": [{"name": "jvb", "image": "jitsi/jvb"}]}},
        "maxBridges": 10,
    }
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


def meeting(
    name, *, ns="so-y-te", start_h=1.0, participants=100, status=None, created=None, **spec
):
    start = NOW + timedelta(hours=start_h)
    return MeetingRecord.from_body(
        {
            "metadata": {
                "name": name,
                "namespace": ns,
                "uid": f"uid-{name}",
                "generation": 1,
                "creationTimestamp": (created or "2020-04-05T00:00:00Z"),
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


# ------------------------------------------------------------------ one bad Meeting, not all


def _raw(name, start, minutes=60, **status):
    """A stored Meeting as the index holds it, bypassing the model (as one stored before
    the model or the CRD bounded dates would be parsed by an older operator)."""
    spec = MeetingSpec.model_construct(
        title=name,
        start=start,
        end=None,
        duration_minutes=minutes,
        participants=10,
        priority_class=PriorityClass.NORMAL,
        confidential=False,
        cancelled=False,
        pool=None,
    )
    return MeetingRecord(
        "so-y-te", name, f"uid-{name}", 1, NOW - timedelta(days=1), spec, None, status
    )


def meeting_body(name, start):
    return MeetingRecord.from_body(
        {
            "metadata": {"name": name, "namespace": "so-y-te", "uid": f"uid-{name}",
                         "generation": 1},
            "spec": {"title": name, "start": start, "durationMinutes": 120, "participants": 5},
        }
    )  # fmt: skip


@pytest.mark.parametrize(
    ("bad", "error"),
    [
        (
            meeting_body("year-1", "0001-01-01T00:05:00+00:00"),
            "spec.start 0001-01-01T00:05:00+00:00 is outside the allowed range",
        ),
        (
            meeting_body("year-9999", "9999-12-31T23:00:00+00:00"),
            "spec.start 9999-12-31T23:00:00+00:00 is outside the allowed range",
        ),
        (_raw("raw-year-1", datetime(1, 1, 1, 0, 5, tzinfo=UTC)), "OverflowError"),
        (_raw("raw-year-9999", datetime(9999, 12, 31, 23, 0, tzinfo=UTC), 120), "OverflowError"),
    ],
    ids=["stored-year-1", "stored-year-9999", "unchecked-year-1", "unchecked-year-9999"],
)
def test_a_meeting_that_cannot_be_decided_is_rejected_and_the_others_are_decided(bad, error):
    good = meeting("good")
    result = plan_pool("default", POOL, [bad, good], [QUOTA], LABELS, timedelta(minutes=10), NOW)
    changes = {c.record.name: c for c in result.changes}
    assert changes["good"].status["phase"] == "Admitted"
    status = changes[bad.name].status
    assert (status["phase"], status["reason"]) == ("Rejected", "InvalidSpec")
    assert error in status["message"]
    assert changes[bad.name].event == ("InvalidSpec", status["message"], True)
    if bad.spec is not None:  # the model let it through: the shell logs what went wrong
        assert "date value out of range" in result.isolated[bad.key]
    # Once rejected it stays so without being computed again, and the good one stays.
    stored = [replace(r, status=changes[r.name].status) for r in (bad, good)]
    again = plan_pool("default", POOL, stored, [QUOTA], LABELS, timedelta(minutes=10), NOW)
    assert again.changes == [] and again.isolated == {}


# ------------------------------------------------------------------ decided again


def test_uncancelled_meeting_is_decided_again_and_says_so():
    """Cancelled, its slot taken by `taker`; spec.cancelled back to false: decided again
    (Queued behind taker, not left Cancelled) and the message says why."""
    taker = meeting("taker", participants=450)
    was = meeting("was-cancelled", participants=100, status={"phase": "Cancelled",
                  "reason": "Cancelled", "observedGeneration": 1})  # fmt: skip
    was = replace(was, generation=2)
    admitted = {"phase": "Admitted", "reason": "Admitted", "observedGeneration": 1}
    changes, _ = run(replace(taker, status=admitted), was)
    status = changes["was-cancelled"].status
    assert (status["phase"], status["reason"]) == ("Queued", "QuotaExceeded")
    assert status["message"].startswith("un-cancelled (spec.cancelled is false again)")
    assert "booked 450, limit 500" in status["message"]
    reason, message, warning = changes["was-cancelled"].event
    assert (reason, warning) == ("QuotaExceeded", True) and "un-cancelled" in message
    # With room, it is admitted again.
    changes, _ = run(was)
    assert changes["was-cancelled"].status["phase"] == "Admitted"
    assert "un-cancelled" in changes["was-cancelled"].status["message"]


def test_still_cancelled_stays_cancelled():
    was = meeting("c", cancelled=True, status={"phase": "Cancelled", "reason": "Cancelled",
                  "message": "cancelled by spec.cancelled", "observedGeneration": 1})  # fmt: skip
    changes, _ = run(was)
    assert "c" not in changes or changes["c"].status["phase"] == "Cancelled"
    assert "c" not in changes or changes["c"].event is None


def test_invalid_spec_fixed_by_an_edit_is_decided_again():
    rejected = {"phase": "Rejected", "reason": "InvalidSpec", "observedGeneration": 1}
    fixed = replace(meeting("fixed", status=rejected), generation=2)
    changes, _ = run(fixed)
    status = changes["fixed"].status
    assert status["phase"] == "Admitted" and status["observedGeneration"] == 2
    assert status["message"].startswith("spec edited after it was refused as invalid")
    # Not edited since: it stays rejected.
    changes, _ = run(meeting("unfixed", status=rejected))
    assert "unfixed" not in changes or changes["unfixed"].status["phase"] == "Rejected"
    assert "unfixed" not in changes or changes["unfixed"].event is None


def test_a_short_notice_meeting_the_pool_cannot_take_waits_at_the_door():
    from meetscale.decide.door import PoolNow
    from meetscale.decide.scale import PoolParams
    from tests.unit.scalekit import br

    adhoc = meeting("adhoc", start_h=0.0, participants=100, created=NOW.isoformat())
    busy = PoolNow(PoolParams(), [br("x", 0.9, 280)], [])
    result = plan_pool("default", POOL, [adhoc], [QUOTA], LABELS, timedelta(0), NOW, pool_now=busy)
    status = result.changes[0].status
    assert (status["phase"], status["reason"]) == ("Queued", "PoolFull")
    assert "100 more participants" in status["message"]
    assert result.changes[0].event is not None

    idle = PoolNow(PoolParams(), [br("x", 0.1, 20)], [])
    result = plan_pool("default", POOL, [adhoc], [QUOTA], LABELS, timedelta(0), NOW, pool_now=idle)
    assert result.changes[0].status["phase"] == "Admitted"


def test_quota_status_says_how_many_of_the_agency_s_declarations_come():
    # three past Meetings of so-y-te drew a third of what they declared
    past = [
        meeting(
            f"past-{i}",
            start_h=-30 - i,
            participants=90,
            status={
                "phase": "Finished",
                "reason": "Finished",
                "agency": "so-y-te",
                "conference": {"peakParticipants": 30, "closedAt": "2020-04-05T00:00:00Z"},
            },
        )
        for i in range(3)
    ]
    _, result = run(*past, meeting("next", participants=90))
    cal = result.quota_status["so-y-te"]["calibration"]
    # median 1/3, shrunk toward 1 with 3 samples: (3 x 1/3 + 5 x 1) / 8 = 0.75
    assert (cal["factor"], cal["samples"]) == (0.75, 3)
    assert cal["summary"] == (
        "so-y-te books 1.3x what joins over 3 past meetings; provisioning 0.75x of its "
        "declarations (spread 0.06)"
    )


CREATED = NOW - timedelta(minutes=40)  # stored while the webhook was down, decided now
AT_CREATION = [
    # (id, hours from NOW to the start, spec changes, the reason the webhook gives)
    ("in-the-past", -1.0, {}, "StartInPast"),
    ("too-large", 1.0, {"participants": 450}, "MeetingTooLarge"),
    ("too-long", 1.0, {"durationMinutes": 300}, "MeetingTooLong"),
    ("too-far-ahead", 24 * 91, {}, "TooFarAhead"),
    ("priority", 1.0, {"priorityClass": "provincial"}, "PriorityNotAllowed"),
]


@pytest.mark.parametrize(
    ("name", "start_h", "changes", "reason"), AT_CREATION, ids=[a[0] for a in AT_CREATION]
)
def test_a_meeting_stored_while_the_webhook_was_down_is_rejected_in_its_words(
    name, start_h, changes, reason
):
    """Never decided, and refused by the webhook had it been asked when the Meeting was
    created: Rejected with exactly the webhook's message, and it holds nothing (the
    meeting beside it is admitted)."""
    import kopf

    from meetscale.admission.webhook import check_meeting
    from meetscale.config import Settings

    stored = meeting(name, start_h=start_h, created=CREATED.isoformat(), **changes)
    beside = meeting("beside", participants=400, created=CREATED.isoformat())
    body = {
        "metadata": {"name": name, "namespace": "so-y-te", "uid": "u",
                     "creationTimestamp": CREATED.isoformat()},
        "spec": stored.spec.model_dump(mode="json", by_alias=True, exclude_none=True),
    }  # fmt: skip
    with pytest.raises(kopf.AdmissionError) as refused:
        check_meeting(
            body=body, old=None, pool_key="meetscale-system/default", meetings=[],
            quotas=[QUOTA], namespace_labels=LABELS,
            pools={"meetscale-system/default": POOL}, settings=Settings(), now=CREATED,
        )  # fmt: skip
    changes_, _ = run(stored, beside)
    status = changes_[name].status
    assert (status["phase"], status["reason"]) == ("Rejected", reason)
    assert status["message"] == str(refused.value)
    assert changes_["beside"].status["phase"] == "Admitted"


def test_a_decided_meeting_is_not_judged_again_as_at_its_creation():
    """A Meeting booked 20 minutes after its start: never decided, it is refused as the
    webhook would have refused it (in the past at creation); once decided (Queued), it is
    judged as it is now (admitted while it runs)."""
    late = dict(start_h=-0.5, created=(NOW - timedelta(minutes=10)).isoformat())
    fresh, _ = run(meeting("m", **late))
    assert fresh["m"].status["reason"] == "StartInPast"
    queued, _ = run(meeting("m", status={"phase": "Queued", "reason": "QuotaExceeded"}, **late))
    assert queued["m"].status["phase"] == "Admitted"


@pytest.mark.parametrize(
    ("participants", "meetings", "reason", "named"),
    [
        (500, 5, "WithinLimits", "peak at 400 participants of maxConcurrentParticipants 500 "
         "and 4 meetings of maxConcurrentMeetings 5"),  # the new one admitted beside them
        (200, 5, "OverCommitted", "peak at 300 participants, above maxConcurrentParticipants "
         "200 (lowered"),
        (500, 2, "OverCommitted", "peak at 3 meetings, above maxConcurrentMeetings 2 (lowered"),
        (200, 1, "OverCommitted", "peak at 300 participants, above maxConcurrentParticipants "
         "200 and 3 meetings, above maxConcurrentMeetings 1"),
    ],
    ids=["within", "participants-lowered", "meetings-lowered", "both-lowered"],
)  # fmt: skip
def test_a_quota_lowered_below_what_is_admitted_says_it_is_over_committed(
    participants: int, meetings: int, reason: str, named: str
) -> None:
    """Three 100-participant Meetings admitted at once, then the quota's limits lowered:
    they keep their reservations, the quota's WithinLimits condition is False
    (OverCommitted) naming each peak above its limit, and a new Meeting in that window
    queues."""
    admitted = {
        "phase": "Admitted",
        "reason": "Admitted",
        "reservedParticipants": 100,
        "observedGeneration": 1,
    }
    held = [meeting(f"m{i}", status=admitted) for i in range(3)]
    body = {
        "metadata": {"name": "so-y-te", "uid": "q", "generation": 4},
        "spec": {
            "namespaceSelector": {"matchLabels": {"meetscale.io/agency": "so-y-te"}},
            "limits": {
                "maxConcurrentParticipants": participants,
                "maxConcurrentMeetings": meetings,
                "maxMeetingParticipants": 400,
            },
        },
    }
    lowered = QuotaRecord.from_body(body)
    result = plan_pool(
        "default", POOL, [*held, meeting("new")], [lowered], LABELS, timedelta(0), NOW
    )
    changes = {c.record.name: c.status for c in result.changes}
    assert changes["new"]["phase"] == ("Admitted" if reason == "WithinLimits" else "Queued")
    for name in ("m0", "m1", "m2"):  # they keep their reservations
        assert changes.get(name, admitted)["phase"] == "Admitted"
    [cond] = result.quota_status["so-y-te"]["conditions"]
    status = "True" if reason == "WithinLimits" else "False"
    assert (cond["type"], cond["status"], cond["reason"]) == ("WithinLimits", status, reason)
    assert named in cond["message"]
