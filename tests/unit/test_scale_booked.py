"""The booked term (production parameters): which meetings count, how many participants
at the busiest instant, how many bridges their placement needs, headroom for unbooked."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import pytest

from meetscale.decide.scale import BookedMeeting, BridgeState, booked_demand
from meetscale.decide.scale.replay import counted_from, counting_window
from tests.unit.scalekit import NOW, POOL, br, meeting


@dataclass(frozen=True)
class DemandCase:
    booked: list[BookedMeeting]
    expected: tuple[int, int, int]  # replicas, placed, headroom: without the spare
    meetings: int
    participants: int
    bridges: list[BridgeState] = field(default_factory=list)
    adhoc_rate: float = 0.0
    spare: int = 0  # booked.spare (1) while conferences are to open within the lead time


DEMAND_CASES = {
    "none": DemandCase([], (0, 0, 0), 0, 0),
    "upcoming-within-lead": DemandCase([meeting("a", 100, 5)], (1, 1, 0), 1, 100, spare=1),
    "upcoming-after-lead": DemandCase([meeting("a", 100, 20)], (0, 0, 0), 0, 0),
    "starts-exactly-at-lead": DemandCase([meeting("a", 100, 10)], (1, 1, 0), 1, 100, spare=1),
    "ended": DemandCase([meeting("a", 100, -90)], (0, 0, 0), 0, 0),
    "due-but-not-running": DemandCase([meeting("a", 100, -5)], (1, 1, 0), 1, 100, spare=1),
    # the confidential one takes an empty bridge; the two 100s open together on the other
    "confidential-gets-own-bridge": DemandCase(
        [meeting("c", 50, 5, confidential=True), meeting("a", 100, 5), meeting("b", 100, 5)],
        (2, 2, 0),
        3,
        250,
        spare=1,
    ),
    "large-confidential-spans": DemandCase(
        [meeting("c", 301, 5, confidential=True)], (2, 2, 0), 1, 301, spare=1
    ),
    # 700 > a bridge: its three bridges are held empty until it may open (10 min early)
    "larger-than-a-bridge-held": DemandCase([meeting("a", 700, 15)], (3, 3, 0), 1, 700),
    # opening together both land on the empty bridge: 260 with their spread does not fit
    "opening-together-need-two": DemandCase(
        [meeting("a", 250, 5), meeting("b", 10, 5)], (2, 2, 0), 2, 260, spare=1
    ),
    "three-opening-together-need-two": DemandCase(
        [meeting("a", 90, 5), meeting("b", 120, 5), meeting("c", 100, 5)],
        (2, 2, 0),
        3,
        310,
        spare=1,
    ),
    "two-halves-share-one": DemandCase(
        [meeting("a", 105, 5), meeting("b", 105, 5)], (1, 1, 0), 2, 210, spare=1
    ),
    # running meetings are on the bridges already: nothing to place, the participants
    # (observed once the join grace is over) floor the bridges
    "no-shows-release-after-grace": DemandCase(
        [
            meeting("a", 200, -30, running=True, observed=20),
            meeting("b", 150, -30, running=True, observed=30),
        ],
        (1, 0, 0),
        2,
        60,  # 20 + 30 seen, each with the growth floor of 5
    ),
    "joining-within-grace-keeps-declared": DemandCase(
        [
            meeting("a", 200, -2, running=True, observed=20),
            meeting("b", 150, -2, running=True, observed=30),
        ],
        (2, 0, 0),
        2,
        350,
    ),
    "overrun-keeps-capacity": DemandCase(
        [meeting("a", 100, -90, running=True, observed=180)], (1, 0, 0), 1, 198
    ),
    "observed-from-bridges": DemandCase(
        [meeting("a", 400, -30, running=True)],
        (1, 0, 0),
        1,
        30,
        bridges=[br("x", 0.1, 15, by_meeting={"a": 15}), br("y", 0.1, 10, by_meeting={"a": 10})],
    ),
    "running-unobserved-uses-declared": DemandCase(
        [meeting("a", 400, -30, running=True)], (2, 0, 0), 1, 400
    ),
    # an empty room in its window can come back: it keeps the floor, and being
    # confidential, that is a bridge of its own
    "confidential-empty-keeps-the-floor": DemandCase(
        [meeting("c", 40, -30, confidential=True, running=True, observed=0)], (1, 0, 0), 1, 5
    ),
    # 21 per minute over the 10 min lead: 210, one bridge at the target stress
    "adhoc-rate-headroom": DemandCase([], (1, 0, 1), 0, 0, adhoc_rate=21.0),
    "adhoc-rate-fraction-rounds-up": DemandCase([], (1, 0, 1), 0, 0, adhoc_rate=0.1),
    # unbooked participants already on the bridges are the live term's: no headroom here
    "unbooked-live-participants-are-live-load": DemandCase(
        [], (0, 0, 0), 0, 0, bridges=[br("x", 0.5, 150), br("y", 0.5, 150)]
    ),
    "booked-participants-not-counted-twice": DemandCase(
        [meeting("a", 200, -30, running=True, observed=200)],
        (1, 0, 0),
        1,
        220,  # the 200 seen and 10% to grow
        bridges=[br("x", 0.5, 150), br("y", 0.5, 150)],  # 300 on bridges, 100 unbooked
    ),
}


@pytest.mark.parametrize("case", list(DEMAND_CASES.values()), ids=list(DEMAND_CASES))
def test_booked_demand(case: DemandCase) -> None:
    demand = booked_demand(POOL, case.booked, case.bridges, NOW, case.adhoc_rate)
    spare = demand.spare
    assert (demand.replicas - spare, demand.placed - spare, demand.headroom) == case.expected
    assert spare == case.spare
    assert (demand.meetings, demand.participants) == (case.meetings, case.participants)


def test_unbooked_participants_are_reported() -> None:
    d = booked_demand(
        POOL,
        [meeting("a", 200, -30, running=True, observed=200)],
        [br("x", 0.5, 150), br("y", 0.5, 150)],
        NOW,
        adhoc_rate=2.0,
    )
    assert d.unbooked_now == 100  # on the bridges beyond the booking: the live term's
    assert (d.unbooked_expected, d.headroom) == (20, 1)  # 2/min x 10 min: one bridge


def test_back_to_back_meetings_are_not_summed() -> None:
    # 84 classes of 45 end at +5, the next 84 start at +10: the peak is one period
    ends = [meeting(f"a{i}", 45, -40, 45, running=True, observed=45) for i in range(84)]
    starts = [meeting(f"b{i}", 45, 10, 45) for i in range(84)]
    pool = POOL.evolve(max_bridges=40)
    one = booked_demand(pool, ends, [], NOW)
    both = booked_demand(pool, ends + starts, [], NOW)
    # the running classes hold what is seen plus the growth floor: 84 x (45 + 5)
    assert one.participants == both.participants == 84 * 50
    assert both.meetings == 168
    assert both.replicas >= one.replicas == 14  # 4200 participants on 300-bridges


def test_overlapping_meetings_are_summed_at_the_peak() -> None:
    a = meeting("a", 200, -30, 60, running=True, observed=200)  # until +30
    b = meeting("b", 200, 5)  # from +5
    d = booked_demand(POOL, [a, b], [], NOW)
    assert (d.participants, d.replicas) == (420, 2)  # 200 seen + 10%, 200 booked


def test_peak_is_the_busiest_instant() -> None:
    # now two 120s (240 people), at +5 one 290 after they ended: the 290 is the peak
    booked = [
        meeting("a", 120, -30, 34, running=True, observed=120),
        meeting("b", 120, -30, 34, running=True, observed=120),
        meeting("c", 290, 5),
    ]
    d = booked_demand(POOL, booked, [], NOW)
    assert (d.participants, d.replicas - d.spare, d.spare) == (290, 1, 1)


def test_overrunning_meeting_counts_now_only() -> None:
    # "late" ended 10 min ago but is still on x: it is present now only, so the peak is
    # 150, not 300; for how long it stays is unknown, so "next" gets a bridge of its own
    late = meeting("late", 150, -70, 60, running=True, observed=150)
    nxt = meeting("next", 150, 5)
    d = booked_demand(POOL, [late, nxt], [br("x", 0.5, 150)], NOW)
    assert (d.participants, d.replicas - d.spare, d.unbooked_now) == (165, 2, 0)  # 150 + 10%


@pytest.mark.parametrize(
    ("participants", "lead_s", "startup_s", "counted_ahead_s"),
    [
        (100, 600, 120, 720),  # early join 600 + start-up 120 is further ahead than the lead
        (100, 0, 120, 720),
        (100, 1800, 120, 1800),  # the lead time is further ahead
        (500, 600, 120, 1200),  # larger than a bridge: the lead time before it may open
        (500, 0, 120, 600),
    ],
    ids=["small", "small-no-lead", "small-long-lead", "large", "large-no-lead"],
)
def test_the_counting_window_covers_every_meeting_counted(
    participants: int, lead_s: int, startup_s: int, counted_ahead_s: int
) -> None:
    """The simulator's operator policy keeps a booked meeting from ``counting_window``
    before its start: never later than the booked term counts it (``counted_from``)."""
    pool = POOL.evolve(
        lead_time=timedelta(seconds=lead_s), bridge_startup=timedelta(seconds=startup_s)
    )
    m = meeting("m", participants, 60)
    counted = counted_from(pool, m)
    assert (m.start - counted).total_seconds() == counted_ahead_s
    assert m.start - counting_window(pool) <= counted
