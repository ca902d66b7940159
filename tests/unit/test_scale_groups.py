"""Spanning groups (``placement.mode: Pinned``): a booked meeting larger than a bridge gets
bridges of its own that share a release, started ahead of it, held while it is on, its
conference pinned to them. Production parameters with pinning on: 300 per bridge, a
declaration margin of 3 x 0.1 of the size, first joiners 10 min early, lead time 10 min:
a meeting larger than a bridge is active from 20 min before its start."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from meetscale.decide.scale import BookedMeeting, BridgeState, ScaleHistory, decide_scale
from meetscale.decide.scale.groups import group_bridges, group_release, plan_groups
from tests.unit.scalekit import NOW, POOL, br, meeting

PINNED = POOL.evolve(pinned=True)
G = group_release("brief")


@dataclass(frozen=True)
class GroupCase:
    booked: list[BookedMeeting]
    bridges: list[BridgeState]
    start: list[str] = field(default_factory=list)
    hold: set[str] = field(default_factory=set)
    keep: set[str] = field(default_factory=set)
    pins: dict[str, str] = field(default_factory=dict)


def grp(name: str, *, ready: bool = True, n: int = 0, **kw: object) -> BridgeState:
    by = {"brief": n} if n else None
    return br(name, n / 300, n, ready=ready, group=G, by_meeting=by, **kw)  # type: ignore[arg-type]


CASES = {
    # 800 with the margin (3 x 0.1 x 800 = 240) is 1040: four bridges of 300, started
    # 20 min ahead (10 min of lead before its first joiners may come, 10 min early)
    "started-whole-ahead": GroupCase([meeting("brief", 800, 20)], [br("x", 0.0, 0)], [G] * 4),
    "not-yet-beyond-its-lead": GroupCase([meeting("brief", 800, 21)], [br("x", 0.0, 0)]),
    # two of four are up: two more; the ready one is held and takes the pin, the one still
    # starting is kept from a drain
    "topped-up": GroupCase(
        [meeting("brief", 800, 10)],
        [br("x", 0.0, 0), grp("g1"), grp("g2", ready=False)],
        [G] * 2,
        hold={"g1"},
        keep={"g1", "g2"},
        pins={"brief": "g1"},
    ),
    # a bridge of the group draining does not count: it is replaced
    "draining-member-replaced": GroupCase(
        [meeting("brief", 450, 5)],
        [grp("g1"), grp("g2", draining=True)],
        [G],
        hold={"g1"},
        keep={"g1"},
        pins={"brief": "g1"},
    ),
    # open: no pin (Jicofo keeps it on the group's release), still held and kept
    "open-held-no-pin": GroupCase(
        [meeting("brief", 450, -5, running=True)],
        [grp("g1", n=200), grp("g2", n=150)],
        hold={"g1", "g2"},
        keep={"g1", "g2"},
    ),
    # an overrun holds its group while its conference is open; an ended one frees it
    "overrun-keeps-its-group": GroupCase(
        [meeting("brief", 450, -70, running=True)],
        [grp("g1", n=100), grp("g2", n=90)],
        hold={"g1", "g2"},
        keep={"g1", "g2"},
    ),
    "ended-frees-its-group": GroupCase(
        [meeting("brief", 450, -70, running=True)], [grp("g1"), grp("g2")]
    ),
    # a meeting that fits a bridge gets no group: the pins place it
    "fits-a-bridge": GroupCase([meeting("small", 300, 5)], [br("x", 0.0, 0)]),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_groups(case: GroupCase) -> None:
    plan = plan_groups(PINNED, case.bridges, case.booked, NOW)
    assert plan.start == case.start
    assert plan.hold == case.hold
    assert plan.keep == case.keep
    assert plan.pins == case.pins


def test_no_groups_where_jicofo_places() -> None:
    # Jicofo pools share one release: large meetings span any bridges (held_for instead)
    assert plan_groups(POOL, [br("x", 0.0, 0)], [meeting("brief", 800, 20)], NOW).start == []


@pytest.mark.parametrize(
    ("participants", "bridges"),
    [(301, 2), (450, 2), (500, 3), (800, 4), (1000, 5)],
    ids=["just-over", "450", "500-margin-needs-3", "800", "1000"],
)
def test_group_size_keeps_the_declaration_margin(participants: int, bridges: int) -> None:
    assert group_bridges(PINNED, meeting("m", participants, 5)) == bridges


def test_group_release_is_a_stable_label_value() -> None:
    r = group_release("ns/" + "x" * 300)
    assert r == group_release("ns/" + "x" * 300) != group_release("ns/y")
    assert len(r) <= 63 and r.replace("-", "").isalnum()


def _plan(bridges: list[BridgeState], booked: list[BookedMeeting], **kw: object):  # type: ignore[no-untyped-def]
    return decide_scale(PINNED, bridges, booked, ScaleHistory(), NOW, **kw)  # type: ignore[arg-type]


def test_the_pool_grows_by_the_group_even_with_empty_bridges_of_its_own() -> None:
    # three idle bridges of their own cannot carry an 800 (their releases differ): four more
    # are started for the group, whatever the forecast says of the three
    idle = [br(n, 0.0, 0) for n in ("x", "y", "z")]
    plan = _plan(idle, [meeting("brief", 800, 20)])
    assert plan.new_bridges >= 4
    assert plan.group_starts == [G] * 4
    assert plan.drain == []
    assert "starting 4 for meetings larger than a bridge (spanning groups)" in plan.message


def test_a_group_is_held_kept_and_pinned_beside_pinned_small_meetings() -> None:
    # the group's ready bridges are held (nothing unpinned goes there) and never drained;
    # the small meeting's pin goes to a bridge of its own release, never into the group;
    # w, with 50 unbooked, is left to take what nobody pinned
    bridges = [
        br("x", 0.0, 0, age_min=90),
        br("w", 0.17, 50, age_min=80),
        *(grp(f"g{i}") for i in range(4)),
    ]
    booked = [meeting("brief", 800, 10), meeting("small", 100, -8)]
    plan = _plan(bridges, booked)
    assert plan.pins == {"brief": "g0", "small": "x"}
    assert set(plan.hold) == {"g0", "g1", "g2", "g3", "x"}
    assert not {"g0", "g1", "g2", "g3"} & set(plan.drain)
    assert plan.group_starts == []


def test_the_booked_term_counts_the_group_beside_the_rest() -> None:
    # the group's four bridges on top of what the 250 unbooked on x need: not one of them
    # is counted twice, nor the 800 forecast on bridges it will never use
    bridges = [br("x", 0.83, 250), *(grp(f"g{i}") for i in range(4))]
    plan = _plan(bridges, [meeting("brief", 800, 10)], adhoc_rate=0.0)
    assert plan.booked.reserved == 4
    assert plan.desired == 5
    assert plan.new_bridges == 0


def test_at_max_bridges_idle_bridges_drain_to_make_room_for_a_group() -> None:
    # three bridges, the pool's maximum: x hosts 200 unbooked, y and z are idle; a 450 needs
    # a group of two, which cannot start beside them: y and z drain (x keeps its room),
    # and the pass after, with room again, the group starts
    at_max = PINNED.evolve(max_bridges=3)
    brief = meeting("brief", 450, 10)
    bridges = [br("x", 0.67, 200, age_min=90), br("y", 0.0, 0, age_min=30), br("z", 0.0, 0)]
    plan = decide_scale(at_max, bridges, [brief], ScaleHistory(), NOW)
    assert sorted(plan.drain) == ["y", "z"]
    assert plan.group_starts == []
    plan = decide_scale(at_max, bridges[:1], [brief], ScaleHistory(), NOW)
    assert plan.group_starts == [G, G]
    # a bridge with anyone on it is never drained for a group: it waits for room
    busy = [br("x", 0.67, 200, age_min=90), br("y", 0.1, 30), br("z", 0.1, 30)]
    assert decide_scale(at_max, busy, [brief], ScaleHistory(), NOW).drain == []
