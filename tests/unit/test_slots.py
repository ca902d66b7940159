"""`meetscale slots`' search against the admission core itself.

Each table case says, in the province's local time, which starts of a day a Meeting
could take; the search must give exactly those, and exactly what asking
`decide_admission` at every start of the grid (with every reservation and the whole
quota table, nothing filtered) gives. A start inside a window must also be admitted by
a full pass that has every Queued and Pending Meeting of the pool in it.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from meetscale.decide.admit import decide_admission
from meetscale.decide.admit.slots import (
    ASK_KEY,
    Ask,
    Gap,
    Window,
    decide_at,
    earliest_start,
    free_windows,
    reservations,
)
from meetscale.decide.admit.types import AgencyQuotaView, MeetingRequest, PoolCeiling
from meetscale.models.meeting import Phase

ICT = timezone(timedelta(hours=7))
DAY = datetime(2026, 12, 8, tzinfo=ICT)
NOW = datetime(2026, 12, 7, 15, 0, tzinfo=ICT)
MARGIN = timedelta(minutes=10)
STEP = timedelta(minutes=5)


def at(hhmm: str, day: datetime = DAY) -> datetime:
    h, m = hhmm.split(":")
    return day + timedelta(hours=int(h), minutes=int(m))


def held(
    key: str, agency: str, start: str, minutes: int, participants: int, **kw
) -> MeetingRequest:
    s = at(start)
    return MeetingRequest(
        key=key,
        agency=agency,
        start=s,
        end=s + timedelta(minutes=minutes),
        participants=participants,
        priority=kw.pop("priority", 0),
        confidential=kw.pop("confidential", False),
        created_at=kw.pop("created", NOW - timedelta(days=1)),
        phase=kw.pop("phase", Phase.ADMITTED),
    )


def quota(name: str, limit: int, **kw) -> AgencyQuotaView:
    return AgencyQuotaView(
        name=name,
        max_concurrent_participants=limit,
        max_concurrent_meetings=kw.pop("meetings", 10),
        max_meeting_participants=kw.pop("largest", 300),
        **kw,
    )


SO_Y_TE = quota("so-y-te", 500)
GD_DT = quota("so-gd-dt", 2000, largest=60)
POOL = PoolCeiling(max_bridges=3, participants_per_bridge=300, pre_join_margin=MARGIN)


def spans(slots) -> list[str]:
    """`"06:25-09:35 QuotaExceeded"` / `"09:40-23:55"`: what a user reads."""
    out = []
    for s in slots.spans():
        text = f"{s.first:%H:%M}-{s.last:%H:%M}"
        if isinstance(s, Gap):
            text += f" {s.why.reason}"
        out.append(text)
    return out


CASES = [
    pytest.param(
        Ask("so-y-te", 300, timedelta(minutes=90)),
        [],
        {"so-y-te": SO_Y_TE},
        POOL,
        ["00:00-23:55"],
        id="nothing-booked-whole-day",
    ),
    pytest.param(
        # 250 booked 08:00-09:30 holds [07:50, 09:30); 300 more would pass 500.
        Ask("so-y-te", 300, timedelta(minutes=90)),
        [held("so-y-te/giao-ban", "so-y-te", "08:00", 90, 250)],
        {"so-y-te": SO_Y_TE},
        POOL,
        ["00:00-06:20", "06:25-09:35 QuotaExceeded", "09:40-23:55"],
        id="own-quota-around-a-briefing",
    ),
    pytest.param(
        # The pool (900) is taken by another agency from 13:00 to 15:00.
        Ask("so-y-te", 300, timedelta(minutes=60)),
        [held("ubnd/hoi-nghi", "ubnd-tinh", "13:00", 120, 700)],
        {"so-y-te": SO_Y_TE, "ubnd-tinh": quota("ubnd-tinh", 3000, largest=1000)},
        POOL,
        ["00:00-11:50", "11:55-15:05 PoolFull", "15:10-23:55"],
        id="pool-full-by-another-agency",
    ),
    pytest.param(
        # Confidential: 301 participants take two whole bridges (600 of 900); beside 400
        # shared participants that is 1000. Shared, 301 + 400 = 701 would fit.
        Ask("ubnd-tinh", 301, timedelta(minutes=60), priority=100, confidential=True),
        [held("ubnd/hop", "ubnd-tinh", "09:00", 60, 400)],
        {"ubnd-tinh": quota("ubnd-tinh", 3000, largest=1000)},
        POOL,
        ["00:00-07:50", "07:55-10:05 PoolFull", "10:10-23:55"],
        id="confidential-takes-whole-bridges",
    ),
    pytest.param(
        Ask("ubnd-tinh", 301, timedelta(minutes=60), confidential=False),
        [held("ubnd/hop", "ubnd-tinh", "09:00", 60, 400)],
        {"ubnd-tinh": quota("ubnd-tinh", 3000, largest=1000)},
        POOL,
        ["00:00-23:55"],
        id="same-meeting-shared-fits",
    ),
    pytest.param(
        # Cohort: so-y-te's own 200, plus what so-gd-dt lends (300). 350 needs 150 of
        # it; while so-gd-dt books 200 itself (09:00-10:00) only 100 is left to lend.
        Ask("so-y-te", 350, timedelta(minutes=60)),
        [held("gd/lop", "so-gd-dt", "09:00", 60, 200)],
        {
            "so-y-te": quota("so-y-te", 200, largest=400, cohort="tinh"),
            "so-gd-dt": quota("so-gd-dt", 300, largest=300, cohort="tinh"),
        },
        replace(POOL, max_bridges=10),
        ["00:00-07:50", "07:55-10:05 QuotaExceeded", "10:10-23:55"],
        id="cohort-borrowing-limited-by-lender",
    ),
    pytest.param(
        # Same, with borrowingLimit 100: 350 needs 150 and can never borrow that.
        Ask("so-y-te", 350, timedelta(minutes=60)),
        [],
        {
            "so-y-te": quota("so-y-te", 200, largest=400, cohort="tinh", borrowing_limit=100),
            "so-gd-dt": quota("so-gd-dt", 300, cohort="tinh"),
        },
        replace(POOL, max_bridges=10),
        ["00:00-23:55 QuotaExceeded"],
        id="cohort-borrowing-limit",
    ),
    pytest.param(
        Ask("so-gd-dt", 120, timedelta(minutes=45)),
        [],
        {"so-gd-dt": GD_DT},
        POOL,
        ["00:00-23:55 MeetingTooLarge"],
        id="never-fits-says-why",
    ),
    pytest.param(
        # Two meetings at most at once: both classes are held together in [07:20, 07:45).
        Ask("so-gd-dt", 40, timedelta(minutes=45)),
        [
            held("gd/10a1", "so-gd-dt", "07:00", 45, 45),
            held("gd/10a2", "so-gd-dt", "07:30", 45, 42),
        ],
        {"so-gd-dt": quota("so-gd-dt", 2000, largest=60, meetings=2)},
        POOL,
        ["00:00-06:35", "06:40-07:50 QuotaExceeded", "07:55-23:55"],
        id="concurrent-meetings-limit",
    ),
    pytest.param(
        # maxBookAheadDays 1: starts after NOW + 1 day (15:00 tomorrow) are too far ahead.
        Ask("so-y-te", 100, timedelta(minutes=30)),
        [],
        {"so-y-te": quota("so-y-te", 500, max_book_ahead=timedelta(days=1))},
        POOL,
        ["00:00-15:00", "15:05-23:55 TooFarAhead"],
        id="book-ahead-limit",
    ),
    pytest.param(
        Ask("so-y-te", 100, timedelta(minutes=30)),
        [],
        {},
        POOL,
        ["00:00-23:55 NoQuota"],
        id="no-quota",
    ),
]


@pytest.mark.parametrize(("ask", "reserved", "quotas", "pool", "expected"), CASES)
def test_windows_of_a_day(ask, reserved, quotas, pool, expected):
    slots = free_windows(ask, reserved, quotas, pool, NOW, DAY, DAY + timedelta(days=1), STEP)
    assert spans(slots) == expected
    assert spans(slots) == spans_by_asking_every_start(ask, reserved, quotas, pool, NOW)


def spans_by_asking_every_start(ask, reserved, quotas, pool, now, day=DAY) -> list[str]:
    """The reference: the core asked at every start of the grid, with everything."""
    verdicts = []
    for k in range(24 * 12):
        start = day + k * STEP
        if start < now:
            continue
        plan = decide_admission([*reserved, ask.at(start, now)], quotas, pool, now)
        d = plan.decisions[ASK_KEY]
        verdicts.append((start, None if d.phase == Phase.ADMITTED else d.reason))
    runs: list[list] = []  # [first, last, reason]; a gap's reason is the one at its first start
    for start, reason in verdicts:
        if runs and (runs[-1][2] is None) == (reason is None):
            runs[-1][1] = start
        else:
            runs.append([start, start, reason])
    return [_span(*r) for r in runs]


def _span(first, last, reason) -> str:
    return f"{first:%H:%M}-{last:%H:%M}" + (f" {reason}" if reason else "")


def test_now_in_the_day_cuts_the_past_and_the_clipped_margin():
    now = at("10:02")
    reserved = [held("so-y-te/a", "so-y-te", "10:30", 60, 250)]
    slots = free_windows(
        Ask("so-y-te", 300, timedelta(minutes=30)),
        reserved,
        {"so-y-te": SO_Y_TE},
        POOL,
        now,
        DAY,
        DAY + timedelta(days=1),
        STEP,
    )
    # The first start not before now is 10:05; [10:20, 11:30) is held, plus the margin.
    assert spans(slots) == ["10:05-11:35 QuotaExceeded", "11:40-23:55"]


@pytest.mark.parametrize("seed", range(12), ids=lambda s: f"seed-{s}")
def test_search_equals_asking_every_start(seed):
    """Random busy days (shared and confidential meetings, a cohort with limits, a
    small pool): the search finds exactly the starts the core admits, asking it far
    fewer times than there are starts."""
    rng = random.Random(seed)
    names = ["ubnd-tinh", "so-y-te", "so-gd-dt", "ubnd-tp-vinh"]
    quotas = {}
    for name in names:
        cohort = rng.choice([None, "tinh"])
        quotas[name] = quota(
            name,
            rng.choice([200, 400, 800]),
            meetings=rng.choice([2, 3, 5]),
            largest=400,
            cohort=cohort,
            borrowing_limit=rng.choice([None, 100, 300]) if cohort else None,
            lending_limit=rng.choice([None, 0, 150]) if cohort else None,
        )
    pool = PoolCeiling(rng.choice([2, 3, 4]), 300, MARGIN)
    now = rng.choice([NOW, at("09:17"), at("13:40")])
    requests = []
    for i in range(rng.randrange(5, 30)):
        s = at(f"{rng.randrange(6, 20)}:{rng.choice([0, 10, 15, 30, 45])}")
        s += timedelta(minutes=rng.choice([0, 3]))  # some not on the grid
        requests.append(
            MeetingRequest(
                key=f"ns/m{i}",
                agency=rng.choice(names),
                start=s,
                end=s + timedelta(minutes=rng.choice([30, 45, 90, 120])),
                participants=rng.randrange(10, 350),
                priority=rng.choice([0, 0, 100]),
                confidential=rng.random() < 0.2,
                created_at=NOW - timedelta(days=2, minutes=i),
                phase=rng.choice([Phase.ADMITTED, Phase.PENDING, Phase.QUEUED]),
            )
        )
    plan = decide_admission(requests, quotas, pool, now)
    reserved = reservations(requests, plan)
    ask = Ask(
        rng.choice(names),
        rng.randrange(20, 420),
        timedelta(minutes=rng.choice([30, 60, 95])),
        priority=rng.choice([0, 100]),
        confidential=rng.random() < 0.3,
    )
    slots = free_windows(ask, reserved, quotas, pool, now, DAY, DAY + timedelta(days=1), STEP)
    assert spans(slots) == spans_by_asking_every_start(ask, reserved, quotas, pool, now)
    assert slots.asked < 24 * 12 / 2
    # A start inside a window is admitted by a full pass with every Pending and Queued
    # Meeting of the pool in it, not only beside the reservations.
    for w in slots.windows:
        for start in (w.first, w.last):
            full = decide_admission([*requests, ask.at(start, now)], quotas, pool, now)
            assert full.decisions[ASK_KEY].phase == Phase.ADMITTED, start
    first = slots.windows[0].first if slots.windows else None
    day_end = DAY + timedelta(days=1)
    assert earliest_start(ask, reserved, quotas, pool, now, DAY, day_end, STEP) == first


def test_reservations_are_the_held_and_the_newly_admitted():
    a = held("ns/a", "so-y-te", "08:00", 60, 300, phase=Phase.RUNNING)
    b = held("ns/b", "so-y-te", "08:00", 60, 200, phase=Phase.PENDING)
    c = held("ns/c", "so-y-te", "08:00", 60, 100, phase=Phase.PENDING)
    plan = decide_admission([a, b, c], {"so-y-te": SO_Y_TE}, POOL, NOW)
    got = {r.key: r.phase for r in reservations([a, b, c], plan)}
    assert got == {"ns/a": Phase.RUNNING, "ns/b": Phase.ADMITTED}


def test_decide_at_names_the_limit():
    d = decide_at(
        Ask("so-y-te", 300, timedelta(minutes=90)),
        at("08:30"),
        [held("so-y-te/a", "so-y-te", "08:00", 90, 250)],
        {"so-y-te": SO_Y_TE},
        POOL,
        NOW,
    )
    assert (d.phase, d.reason) == (Phase.QUEUED, "QuotaExceeded")
    assert "requested 300, booked 250, limit 500" in d.message


def test_windows_and_gaps_cover_the_day_without_overlap():
    slots = free_windows(
        Ask("so-y-te", 300, timedelta(minutes=90)),
        [held("so-y-te/a", "so-y-te", "08:00", 90, 250)],
        {"so-y-te": SO_Y_TE},
        POOL,
        NOW,
        DAY,
        DAY + timedelta(days=1),
        STEP,
    )
    covered = []
    for s in slots.spans():
        covered.append((s.first, s.last))
    assert covered[0][0] == DAY and covered[-1][1] == DAY + timedelta(hours=23, minutes=55)
    for (_, last), (first, _) in itertools.pairwise(covered):
        assert first == last + STEP
    assert all(isinstance(w, Window) for w in slots.windows)


def test_bad_grid_is_refused():
    with pytest.raises(ValueError, match="step must be positive"):
        free_windows(Ask("a", 1, timedelta(minutes=5)), [], {}, POOL, NOW, DAY, DAY, timedelta(0))
