"""The pure parts of the working-day replay (testbed/dayreplay.py): a trace compressed in
time, sliced, given its live creation times, and live verdicts and bridge counts compared
with the simulator's. The replay itself runs in tests/integration/test_working_day.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from meetscale.sim.tiny import meeting, tiny_trace
from testbed import dayreplay

NOW = datetime(2026, 12, 7, 15, 0, tzinfo=UTC)


def day():
    return tiny_trace(
        [
            meeting("giao-ban", start=60, minutes=45, participants=120, spread=300),
            meeting("hop-gap", start=120, minutes=1, participants=5, created=120),
        ],
        hours=4,
        pool={"leadTimeSeconds": 600, "drainTimeoutSeconds": 3600},
    )


def test_compressed_day_keeps_its_shape_in_fewer_seconds() -> None:
    fast = dayreplay.compress(day(), 60, NOW)
    m, adhoc = fast.meetings
    assert (fast.start, fast.duration_seconds, fast.tick_seconds) == (NOW, 240, 1)
    assert m.start == NOW + timedelta(seconds=60) and m.end == m.start + timedelta(seconds=45)
    assert m.created_at == NOW + timedelta(seconds=60 - 24 * 60)  # booked a day ahead
    assert m.actual.join_spread_seconds == 5 and m.participants == 120
    assert adhoc.created_at == adhoc.start and adhoc.end - adhoc.start == timedelta(seconds=1)
    pool = fast.pool
    assert (pool.lead_time_seconds, pool.drain_timeout_seconds, pool.bridge_startup_seconds) == (
        10,
        60,
        1,
    )
    assert pool.participants_per_bridge == 100


def test_a_speed_that_is_not_positive_is_refused() -> None:
    with pytest.raises(ValueError, match="speed: 0 must be positive"):
        dayreplay.compress(day(), 0, NOW)


def test_a_slice_holds_the_meetings_over_within_it() -> None:
    fast = dayreplay.compress(day(), 60, NOW)
    assert [m.name for m in dayreplay.cut(fast, 110).meetings] == ["giao-ban"]
    assert dayreplay.cut(fast, 110).duration_seconds == 110


def test_replayed_trace_has_the_live_creation_times_and_opens_with_the_first() -> None:
    fast = dayreplay.compress(day(), 60, NOW)
    made = NOW - timedelta(seconds=30, microseconds=400)
    replayed = dayreplay.as_replayed(fast, {"so-y-te/giao-ban": made}, made)
    assert replayed.meetings[0].created_at == made
    assert replayed.meetings[1].created_at == fast.meetings[1].created_at
    assert replayed.start == made.replace(microsecond=0)


@pytest.mark.parametrize(
    ("sim", "live", "refused", "differs"),
    [
        ([(0, "Admitted", "Admitted")], [(0.4, "Admitted", "Admitted")], {}, False),
        (
            [(0, "Queued", "PoolFull"), (30, "Admitted", "Admitted")],
            [(0.5, "Queued", "PoolFull"), (31, "Admitted", "Admitted")],
            {},
            False,
        ),
        ([(0, "Queued", "PoolFull")], [(0.5, "Admitted", "Admitted")], {}, True),
        ([(0, "Rejected", "MeetingTooLarge")], [], {"a/m": "too large"}, False),
        ([(0, "Admitted", "Admitted")], [], {"a/m": "too large"}, True),
    ],
    ids=["same", "same-sequence", "other-verdict", "refused-both", "refused-live-only"],
)
def test_verdicts_compared_one_by_one(sim, live, refused, differs) -> None:
    diffs, _ = dayreplay.compare_verdicts({"a/m": sim}, {"a/m": live}, refused, ["a/m"])
    assert bool(diffs) is differs


def test_live_rows_become_verdicts_with_the_clock_phases_as_admitted() -> None:
    t0 = NOW.timestamp()
    rows = [
        [t0 + 1, "a/m", "Pending", None, None],
        [t0 + 2, "a/m", "Admitted", "Admitted", None],
        [t0 + 9, "a/m", "Running", "Started", None],
    ]
    assert dayreplay.live_verdicts(rows, NOW) == {"a/m": [(2.0, "Admitted", "Admitted")]}


def test_bridges_agree_within_one_pass_and_each_run_that_does_not_is_listed() -> None:
    sim = [2] * 20 + [6] * 40 + [2] * 40
    live = [(t, 2 if t < 30 else 6 if t < 62 else 2) for t in range(100)]
    assert dayreplay.compare_series(sim, live, 15)["agree_share"] == 1.0
    late = [(t, 6 if 80 <= t < 90 else n) for t, n in live]  # a scale-up the sim had not
    got = dayreplay.compare_series(sim, late, 15)
    assert got["differences"] == [{"from_s": 80, "to_s": 89, "live": [6], "sim": [2]}]


def test_the_simulator_records_each_meetings_verdicts_with_their_reason() -> None:
    trace = tiny_trace(
        [
            meeting("giao-ban", start=60, minutes=45, participants=120),
            meeting("dai-hoi", start=90, minutes=60, participants=800),
        ],
        agencies=[
            {"name": "so-y-te", "maxConcurrentParticipants": 1000, "maxConcurrentMeetings": 5,
             "maxMeetingParticipants": 500},
        ],
    )  # fmt: skip
    _, verdicts = dayreplay.simulate(trace)
    assert verdicts["so-y-te/giao-ban"] == [(0.0, "Admitted", "Admitted")]
    assert [v[1:] for v in verdicts["so-y-te/dai-hoi"]] == [("Rejected", "MeetingTooLarge")]
