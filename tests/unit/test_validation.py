"""What the webhook refuses at apply time: only what can never fit, and breaking edits."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from meetscale.decide.admit import AgencyQuotaView, MeetingRequest, PoolCeiling
from meetscale.decide.admit.validation import validate_meeting

NOW = datetime(2020, 4, 6, 1, 0, tzinfo=UTC)  # 08:00 in Vietnam
QUOTA = AgencyQuotaView(
    name="so-y-te",
    max_concurrent_participants=500,
    max_concurrent_meetings=10,
    max_meeting_participants=300,
    max_meeting_duration=timedelta(minutes=240),
    max_book_ahead=timedelta(days=60),
    max_priority=100,
)
POOL = PoolCeiling(max_bridges=10, participants_per_bridge=300, pre_join_margin=timedelta(0))


def req(key="so-y-te/a", start_h=1.0, hours=1.0, participants=100, phase="Pending", prio=0):
    start = NOW + timedelta(hours=start_h)
    return MeetingRequest(
        key=key,
        agency="so-y-te",
        start=start,
        end=start + timedelta(hours=hours),
        participants=participants,
        priority=prio,
        confidential=False,
        created_at=NOW - timedelta(days=1),
        phase=phase,
    )


@pytest.mark.parametrize(
    ("new", "old", "others", "fragment"),
    [
        (req(), None, [], None),
        (req(participants=301), None, [], "spec.participants: meeting too large"),
        (req(hours=5), None, [], "spec.durationMinutes: meeting too long"),
        (req(start_h=24 * 61), None, [], "spec.start: too far ahead"),
        (req(start_h=-1, hours=0.5), None, [], "spec.start:"),
        (req(start_h=-1, hours=2), None, [], "is in the past"),
        (req(start_h=-0.05), None, [], None),
        (
            req(prio=1000),
            None,
            [],
            "spec.priorityClass: priority provincial (1000) exceeds maxPriorityClass high",
        ),
        # blocked only by other bookings: accepted (it will be Queued)
        (req(participants=300), None, [req("so-y-te/b", participants=300, phase="Admitted")], None),
        # growing an admitted meeting beyond quota is refused
        (
            req(participants=300),
            req(participants=100, phase="Admitted"),
            [req("so-y-te/b", participants=300, phase="Admitted")],
            "the edit would break the admitted booking's quota",
        ),
        # shrinking is always fine
        (
            req(participants=50),
            req(participants=100, phase="Admitted"),
            [req("so-y-te/b", participants=400, phase="Admitted")],
            None,
        ),
        # growing within quota is fine
        (
            req(participants=200),
            req(participants=100, phase="Admitted"),
            [req("so-y-te/b", participants=300, phase="Admitted")],
            None,
        ),
    ],
    ids=[
        "fits",
        "too-large",
        "too-long",
        "too-far-ahead",
        "already-over",
        "start-in-past",
        "ad-hoc-just-started",
        "priority-above-agency-max",
        "blocked-is-queued-not-refused",
        "edit-breaks-quota",
        "shrink-admitted",
        "grow-within-quota",
    ],
)
def test_validate_meeting(new, old, others, fragment):
    verdict = validate_meeting(new, old, {"so-y-te": QUOTA}, POOL, others, NOW)
    if fragment is None:
        assert verdict is None
    else:
        assert verdict is not None and fragment in verdict


def test_refusal_names_value_and_limit():
    verdict = validate_meeting(req(participants=420), None, {"so-y-te": QUOTA}, POOL, [], NOW)
    assert verdict == (
        "spec.participants: meeting too large: participants 420 exceeds "
        "maxMeetingParticipants 300 of quota so-y-te"
    )


def test_unchanged_start_of_running_meeting_is_not_refused():
    running = req(start_h=-2, hours=3, phase="Running")
    assert (
        validate_meeting(
            replace(running, participants=90), running, {"so-y-te": QUOTA}, POOL, [], NOW
        )
        is None
    )


# --- ad-hoc arrival rate (decide/adhoc.py) ---------------------------------------------

from meetscale.decide.scale.adhoc import Arrival, adhoc_rate  # noqa: E402

M = timedelta(minutes=1)


@pytest.mark.parametrize(
    ("arrivals", "expected"),
    [
        ([], 0.0),
        ([Arrival(NOW - 2 * M, NOW - M, 30)], 1.0),  # created 1 min ahead: ad hoc
        ([Arrival(NOW - 60 * M, NOW - M, 30)], 0.0),  # booked an hour ahead: not ad hoc
        ([Arrival(NOW - 50 * M, NOW - 45 * M, 30)], 0.0),  # started before the window
        ([Arrival(NOW, NOW + 5 * M, 30)], 0.0),  # not started yet
        ([Arrival(NOW - 3 * M, NOW - 3 * M, 45), Arrival(NOW - M, NOW - M, 15)], 2.0),
    ],
    ids=["none", "ad-hoc", "booked-ahead", "outside-window", "future", "two"],
)
def test_adhoc_rate(arrivals, expected):
    assert adhoc_rate(arrivals, NOW, lead_time=10 * M, window=30 * M) == expected
