"""Pinned placement (``placement.mode: Pinned``): which bridge each booked conference is to
open on, given the bridges as they are and the pins given before. Production parameters
with pinning on: 300 per bridge, first joiners 10 min before the start, pins 2 min before
that."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import pytest

from meetscale.adapt import pool_params
from meetscale.decide.scale import (
    BookedMeeting,
    BridgeState,
    PoolParams,
    ScaleHistory,
    decide_scale,
)
from meetscale.decide.scale.pins import choose_pins, committed_loads, pin_holds
from meetscale.models.pool import BridgePoolSpec
from tests.unit.scalekit import NOW, POOL, br, meeting

PINNED = POOL.evolve(pinned=True)


@dataclass(frozen=True)
class PinCase:
    booked: list[BookedMeeting]
    bridges: list[BridgeState]
    pins: dict[str, str]
    crowded: list[str] = field(default_factory=list)
    before: dict[str, str] = field(default_factory=dict)
    exclude: tuple[str, ...] = ()
    pool: PoolParams = PINNED


CASES = {
    # Jicofo chooses: the operator gives no pin
    "jicofo-placement": PinCase([meeting("a", 100, 5)], [br("x", 0.0, 0)], {}, pool=POOL),
    # two 200s opening together: Jicofo would put both first joiners on one empty bridge
    "together-one-bridge-each": PinCase(
        [meeting("a", 200, 5), meeting("b", 200, 5)],
        [br("x", 0.0, 0), br("y", 0.0, 0, age_min=30)],
        {"a": "x", "b": "y"},
    ),
    # the least committed where it fits: 100 unbooked on x, 150 on y
    "least-committed": PinCase(
        [meeting("a", 100, 5)], [br("x", 0.3, 100), br("y", 0.5, 150)], {"a": "x"}
    ),
    # a booked conference counts at its expected size, not what has joined yet: x holds a
    # 250 with 20 in it, so the 100 goes beside the 100 unbooked on y (Jicofo: x, the
    # least loaded now, where it would end at 350)
    "running-booked-counts-at-size": PinCase(
        [meeting("r", 250, -2, running=True), meeting("a", 100, 5)],
        [br("x", 0.07, 20, by_meeting={"r": 20}), br("y", 0.33, 100)],
        {"a": "y"},
    ),
    # pins that have not opened count where they point: b does not join a on x
    "pinned-not-open-counts": PinCase(
        [meeting("a", 200, 5), meeting("b", 150, 6)],
        [br("x", 0.0, 0), br("y", 0.0, 0, age_min=30)],
        {"a": "x", "b": "y"},
    ),
    # first joiners may come 10 min early; pins go 2 min before that
    "not-due-yet": PinCase([meeting("a", 100, 12.5)], [br("x", 0.0, 0)], {}),
    "due": PinCase([meeting("a", 100, 11.5)], [br("x", 0.0, 0)], {"a": "x"}),
    "ended": PinCase([meeting("a", 100, -70)], [br("x", 0.0, 0)], {}),
    # an open conference stays where it is without a pin
    "open-conference": PinCase(
        [meeting("a", 100, -1, running=True)],
        [br("x", 0.1, 30, by_meeting={"a": 30}), br("y", 0.0, 0)],
        {},
    ),
    # a pin given before stays while its bridge has room, though y is emptier now
    "kept": PinCase(
        [meeting("a", 100, 5)],
        [br("x", 0.5, 150), br("y", 0.0, 0)],
        {"a": "x"},
        before={"a": "x"},
    ),
    # ... and moves when its bridge drains this pass or no longer has room
    "moved-off-draining": PinCase(
        [meeting("a", 100, 5)],
        [br("x", 0.0, 0), br("y", 0.2, 60)],
        {"a": "y"},
        before={"a": "x"},
        exclude=("x",),
    ),
    # a held bridge keeps its pin: in a pinned pool the holds are the pins' own
    "kept-on-held": PinCase(
        [meeting("a", 100, 5)],
        [br("x", 0.0, 0, held=True), br("y", 0.2, 60)],
        {"a": "x"},
        before={"a": "x"},
    ),
    "moved-when-full": PinCase(
        [meeting("a", 100, 5)],
        [br("x", 0.8, 250), br("y", 0.2, 60)],
        {"a": "y"},
        before={"a": "x"},
    ),
    # never on a bridge not ready (Jicofo does not know it yet) or draining
    "not-ready-nor-draining": PinCase(
        [meeting("a", 100, 5)],
        [br("x", None, ready=False), br("z", 0.0, 0, draining=True), br("y", 0.5, 150)],
        {"a": "y"},
    ),
    # no room anywhere: the least committed bridge, where it overflows least (Jicofo would
    # choose y, the least loaded now, where a 250 has only begun to join)
    "fits-nowhere": PinCase(
        [meeting("r", 250, -2, running=True), meeting("a", 200, 5)],
        [br("x", 0.5, 150), br("y", 0.07, 20, by_meeting={"r": 20})],
        {"a": "x"},
        ["a"],
    ),
    "no-bridge": PinCase([meeting("a", 100, 5)], [br("x", None, ready=False)], {}),
    # beside another conference a pin keeps the declaration margin free (3 x the spread of
    # what they draw, a tenth of each when nothing is known): two 140s make 280 of 300,
    # but the margin leaves 240 for both, so b goes beside the 61 unbooked on y
    "margin-beside-others": PinCase(
        [meeting("a", 140, 5), meeting("b", 140, 5)],
        [br("x", 0.0, 0), br("y", 0.2, 61)],
        {"a": "x", "b": "y"},
    ),
    # the larger of two opening at once goes first, to the emptier bridge
    "largest-first": PinCase(
        [meeting("small", 50, 5), meeting("big", 250, 5)],
        [br("x", 0.0, 0), br("y", 0.1, 40)],
        {"big": "x", "small": "y"},
    ),
    # a confidential conference gets an empty bridge of its own, and nothing joins it there
    "confidential-on-an-empty-bridge": PinCase(
        [meeting("c", 100, 5, confidential=True), meeting("d", 20, 6)],
        [br("x", 0.1, 10), br("y", 0.0, 0)],
        {"c": "y", "d": "x"},
    ),
    "confidential-without-an-empty-bridge": PinCase(
        [meeting("c", 30, 5, confidential=True)], [br("x", 0.1, 10)], {}
    ),
    # ... though the 50 there leaves room: d overflows the shared bridge instead (crowded)
    "nothing-beside-a-confidential-one": PinCase(
        [meeting("s", 50, -1, running=True, confidential=True), meeting("d", 20, 5)],
        [br("x", 0.2, 50, by_meeting={"s": 50}), br("y", 0.93, 280)],
        {"d": "y"},
        ["d"],
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_pins(case: PinCase) -> None:
    plan = choose_pins(case.pool, case.bridges, case.booked, case.before, NOW, case.exclude)
    assert plan.pins == case.pins
    assert plan.crowded == case.crowded


def test_committed_load_of_a_conference_over_two_bridges_is_what_each_holds() -> None:
    big = meeting("big", 500, -5, running=True)
    bridges = [
        br("x", 0.8, 250, by_meeting={"big": 240}),
        br("y", 0.8, 260, by_meeting={"big": 250}),
    ]
    assert committed_loads(bridges, [big]) == {"x": 250, "y": 260}


def test_a_bridge_the_plan_drains_gets_no_pin() -> None:
    # two idle old bridges, nothing running: the plan drains one, and the meeting about to
    # open is pinned to the one that stays
    pool = PINNED.evolve(min_bridges=1, spare=0)
    bridges = [br("x", 0.0, 0, age_min=90), br("y", 0.0, 0, age_min=60)]
    plan = decide_scale(pool, bridges, [meeting("a", 50, 5)], ScaleHistory(), NOW)
    assert plan.drain, plan.message
    assert set(plan.pins) == {"a"}
    assert plan.pins["a"] not in plan.drain


def test_the_pool_spec_turns_pinning_on() -> None:
    jicofo = BridgePoolSpec(template={"spec": {"containers": [{"name": "jvb", "image": "j"}]}})
    pinned = jicofo.model_copy(
        update={
            "placement": jicofo.placement.model_copy(
                update={"mode": "Pinned", "jicofo_url": "http://jicofo:8888"}
            )
        }
    )
    assert pool_params(jicofo, timedelta(minutes=10)).booked.pinned is False
    assert pool_params(pinned, timedelta(minutes=10)).booked.pinned is True


def test_pinned_needs_jicofos_url() -> None:
    with pytest.raises(ValueError, match=r"spec\.placement\.jicofoUrl is required"):
        BridgePoolSpec.model_validate(
            {
                "template": {"spec": {"containers": [{"name": "jvb", "image": "j"}]}},
                "placement": {"mode": "Pinned"},
            }
        )


HOLD_CASES = {
    # the bridges pinned conferences are about to open on are held (drain mode), so that a
    # conference nobody pinned goes to the others; holds end with the pins
    "pinned-bridges-held": (
        [br("x", 0.0, 0), br("y", 0.2, 60), br("z", 0.1, 30, held=True)],
        {"a": "x", "b": "y"},
        (["x", "y"], ["z"]),
    ),
    "already-held": ([br("x", 0.0, 0, held=True), br("y", 0.2, 60)], {"a": "x"}, ([], [])),
    # no bridge would be left to the unpinned ones: none held
    "none-left-free": (
        [br("x", 0.0, 0), br("y", 0.2, 60, held=True)],
        {"a": "x", "b": "y"},
        ([], ["y"]),
    ),
    # a bridge not ready is no free bridge
    "free-bridge-not-ready": (
        [br("x", 0.0, 0), br("y", None, ready=False)],
        {"a": "x"},
        ([], []),
    ),
}


@pytest.mark.parametrize("case", HOLD_CASES.values(), ids=HOLD_CASES.keys())
def test_pin_holds(
    case: tuple[list[BridgeState], dict[str, str], tuple[list[str], list[str]]],
) -> None:
    bridges, pins, expected = case
    assert pin_holds(bridges, pins) == expected


def test_a_pinned_plan_holds_the_pinned_bridges() -> None:
    bridges = [br("x", 0.0, 0, age_min=90), br("y", 0.3, 90, age_min=60)]
    pool = PINNED.evolve(spare=0, min_bridges=2)  # nothing drains
    plan = decide_scale(pool, bridges, [meeting("a", 100, 5)], ScaleHistory(), NOW)
    assert plan.pins == {"a": "x"}
    assert plan.hold == ["x"] and plan.release == []
