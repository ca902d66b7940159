"""The placement replay and what rests on it (production parameters unless a case says
otherwise): bridges for meetings opening together, the declaration margin, bridges held
for meetings larger than a bridge, the shield against a pile-up, drains rescued before
their timeout."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta

import pytest

from meetscale.adapt import pool_params
from meetscale.decide.scale import (
    DECLARATION_SIGMAS,
    BookedMeeting,
    BridgeState,
    PoolParams,
    ScaleHistory,
    booked_demand,
    decide_scale,
    placement_need,
    record,
)
from meetscale.models.pool import BridgePoolSpec
from tests.unit.scalekit import NOW, POOL, br, meeting, upcoming

# --------------------------------------------------------------------------- placement

# the spare bridge the booked term adds while conferences are to open (``booked.spare``)
# is left out here, so that each case shows the replay's own count; see
# test_a_spare_bridge_while_conferences_are_to_open for it
PLACED = POOL.evolve(max_bridges=20, spare=0)


@dataclass(frozen=True)
class PlacementCase:
    booked: list[BookedMeeting]
    bridges: list[BridgeState]
    expected: int
    pool: PoolParams = PLACED


PLACEMENT_CASES = {
    "nothing-starts": PlacementCase([meeting("a", 200, -30, running=True)], [br("x", 0.7, 200)], 0),
    # three 200s starting together: Jicofo spreads them while they are small, but two
    # on one bridge end at 400
    "simultaneous-starts-one-bridge-each": PlacementCase(upcoming(3), [br("x", 0.0, 0)], 3),
    # the empty bridges stay the least loaded while the new conferences are small: four
    # 100s all land on them, not beside the two 150s
    "pile-up-on-empty-bridges": PlacementCase(
        [meeting(f"m{i}", 100, 5) for i in range(4)],
        [br("x", 0.5, 150), br("y", 0.5, 150)],
        4,
    ),
    # one that starts after the first has filled goes beside it when that is the least load
    "staggered-starts-share": PlacementCase(
        [meeting("a", 100, 1), meeting("b", 100, 8)], [br("x", 0.0, 0)], 1
    ),
    # the confidential one takes the empty bridge, the 100 joins the 150
    "confidential-needs-an-empty-bridge": PlacementCase(
        [meeting("c", 50, 5, confidential=True), meeting("a", 100, 5)],
        [br("x", 0.5, 150)],
        2,
    ),
    "confidential-beside-a-pile-up": PlacementCase(
        [meeting("c", 50, 5, confidential=True), meeting("a", 200, 5), meeting("b", 200, 5)],
        [br("x", 0.5, 150)],
        4,
    ),
    "larger-than-a-bridge-spans": PlacementCase([meeting("a", 500, 5)], [], 2),
    # the running meetings end at +2, but may overrun by `overrun` (10 min): still there at +8
    "overrun-keeps-the-load": PlacementCase(
        [meeting("r", 250, -58, 60, running=True), meeting("a", 200, 8)],
        [br("x", 0.83, 250)],
        2,
    ),
    "ended-releases-the-load": PlacementCase(
        [meeting("r", 250, -58, 60, running=True), meeting("a", 200, 8)],
        [br("x", 0.83, 250)],
        1,
        PLACED.evolve(overrun=timedelta(0)),
    ),
    # "a" started a minute ago but the bridge shows only r's conference: Jicofo has yet
    # to place it (on the least-loaded bridge), so it still needs a bridge of its own
    "started-but-not-on-a-bridge-yet": PlacementCase(
        [meeting("r", 150, -60, 120, running=True), meeting("a", 200, -1, running=True)],
        [br("x", 0.5, 150, conferences=1)],
        2,
    ),
    "started-and-on-a-bridge": PlacementCase(
        [meeting("r", 150, -60, 120, running=True), meeting("a", 200, -1, running=True)],
        [br("x", 0.5, 150, conferences=2)],
        0,
    ),
    "started-conferences-unknown": PlacementCase(
        [meeting("r", 150, -60, 120, running=True), meeting("a", 200, -1, running=True)],
        [br("x", 0.5, 150)],
        0,
    ),
    # a second conference before a's start: a's first participants joined early, on x;
    # the rest of them join there (not placed a second time)
    "early-joiner-not-placed-twice": PlacementCase(
        [meeting("r", 150, -60, 120, running=True), meeting("a", 100, 2)],
        [br("x", 0.6, 180, conferences=2)],
        0,
    ),
    "no-early-joiner-seen": PlacementCase(
        [meeting("r", 150, -60, 120, running=True), meeting("a", 200, 2)],
        [br("x", 0.6, 180, conferences=1)],
        2,
    ),
    # a 500 grows on its first bridge to 300 before it spans two: that bridge must be empty;
    # its other half (250) beside 20 observed keeps 75 free for its spread: not on x or y
    "larger-than-a-bridge-opens-on-an-empty-one": PlacementCase(
        [meeting("big", 500, 5)], [br("x", 0.07, 20), br("y", 0.07, 20)], 4
    ),
    # ... and its first participants may come `early_join` (10 min) before its start (its
    # bridges are held for it then, see the hold cases; here without holds)
    "larger-than-a-bridge-planned-from-its-earliest-join": PlacementCase(
        [meeting("big", 500, 15)], [], 2, PLACED.evolve(hold_large=False)
    ),
    "larger-than-a-bridge-held-not-placed": PlacementCase([meeting("big", 500, 15)], [], 0),
    "larger-than-a-bridge-no-early-join": PlacementCase(
        [meeting("big", 500, 15)], [], 0, PLACED.evolve(early_join=timedelta(0))
    ),
    # a meeting's first participants may come `early_join` (10 min) before its start: it is
    # counted from `bridge_startup` (2 min) before then, when that is earlier than its lead
    # time (a bridge asked for then takes conferences when they come)
    "planned-from-startup-before-its-earliest-join": PlacementCase(
        [meeting("a", 200, 12)], [br("x", 0.83, 250)], 2
    ),
    "not-yet-counted": PlacementCase([meeting("a", 200, 12.5)], [br("x", 0.83, 250)], 0),
    "without-early-join-counted-from-its-lead-time": PlacementCase(
        [meeting("a", 200, 10)], [br("x", 0.83, 250)], 2, PLACED.evolve(early_join=timedelta(0))
    ),
    "without-early-join-not-yet-counted": PlacementCase(
        [meeting("a", 200, 10.5)], [br("x", 0.83, 250)], 0, PLACED.evolve(early_join=timedelta(0))
    ),
    # r (250 booked) opened 2 min ago with 50 on x: its 200 latecomers join x, not y. a,
    # opening at +5, lands on x (Jicofo sees its 50, not who is still to come), which
    # overflows; on y beside s it would not fit the margin either: a bridge of its own, 3
    # (spread over every bridge's load, the latecomers would make 2 look enough)
    "latecomers-join-their-own-bridge": PlacementCase(
        [
            meeting("r", 250, -2, running=True, observed=50),
            meeting("s", 150, -60, 120, running=True, observed=150),
            meeting("a", 150, 5),
        ],
        [br("x", 0.17, 50, by_meeting={"r": 50}), br("y", 0.5, 150, by_meeting={"s": 150})],
        3,
    ),
    # big (500 booked) opened 2 min ago with 14 on x: as it passes 300 Jicofo extends its
    # conference to the least-loaded other bridge (half of it there): y beside s's 40
    # would end at 290, within ppb but not within the margin, so a bridge of its own (3)
    "larger-than-a-bridge-opened-spans-to-another": PlacementCase(
        [
            meeting("big", 500, -2, 120, running=True, observed=14),
            meeting("s", 40, -30, 120, running=True, observed=40),
        ],
        [br("x", 0.05, 14, by_meeting={"big": 14}), br("y", 0.13, 40, by_meeting={"s": 40})],
        3,
    ),
    "larger-than-a-bridge-already-spanning": PlacementCase(
        [meeting("big", 500, -2, 120, running=True, observed=320)],
        [br("x", 0.53, 160, by_meeting={"big": 160}), br("z", 0.53, 160, by_meeting={"big": 160})],
        0,
    ),
    # more confidential meetings than the pool has bridges: the least bad is the maximum
    "cannot-fit-says-so": PlacementCase(
        [meeting(f"c{i}", 50, 5, confidential=True) for i in range(25)], [], 21
    ),
}


@pytest.mark.parametrize("case", list(PLACEMENT_CASES.values()), ids=list(PLACEMENT_CASES))
def test_placement_need(case: PlacementCase) -> None:
    assert placement_need(case.pool, case.booked, case.bridges, NOW) == case.expected


@pytest.mark.parametrize(
    ("bridges", "expected"),
    [([], 1), ([br("x", 0.03, 10)], 2), ([br("x", 0.0, 0)], 1)],
    ids=["no-bridge-one-new", "beside-others-needs-an-empty-one", "an-empty-one-will-do"],
)
def test_margin_applies_to_shared_bridges_only(bridges: list[BridgeState], expected: int) -> None:
    # a 300 (a full bridge) never leaves 0.3 x 300 free, but alone on a bridge it is
    # fine: the margin is for meetings sharing one, not a reason to ask for max + 1
    full = [meeting("full", 300, 5)]
    assert placement_need(PLACED, full, bridges, NOW) == expected


FLAT = PLACED.evolve(declaration_sigmas=0.0)
assert PLACED.booked.declaration_sigmas == DECLARATION_SIGMAS


@pytest.mark.parametrize(
    ("booked", "bridges", "flat", "margined"),
    [
        # 245 declared on one bridge fits 300, but the 200 drawing a quarter more (248)
        # overflows it: 3 x 0.1 x sqrt(200^2 + 45^2) = 61 must stay free below 300
        ([meeting("a", 200, 1), meeting("b", 45, 8)], [br("x", 0.0, 0)], 1, 2),
        # six classes of 45 (270) fit 300; their spread asks for 33 free, 303
        ([meeting(f"c{i}", 45, 5) for i in range(6)], [br("x", 0.0, 0)], 1, 2),
        ([meeting(f"c{i}", 45, 5) for i in range(5)], [br("x", 0.0, 0)], 1, 1),
        # the 240 already on the bridge are observed, not declared: only the 45 has a spread
        # (13.5 free), so 285 still fits
        ([meeting("b", 45, 5)], [br("x", 0.8, 240)], 1, 1),
        # alone on its bridge a conference may still fill it
        ([meeting("full", 300, 5)], [br("x", 0.0, 0)], 1, 1),
    ],
    ids=[
        "large-beside-small-gets-its-own",
        "six-classes-need-two",
        "five-classes-share-one",
        "observed-load-has-no-spread",
        "alone-fills-its-bridge",
    ],
)
def test_declaration_margin_grows_with_the_shared_conferences(
    booked: list[BookedMeeting], bridges: list[BridgeState], flat: int, margined: int
) -> None:
    assert placement_need(FLAT, booked, bridges, NOW) == flat
    assert placement_need(PLACED, booked, bridges, NOW) == margined


HOLDING = PLACED


@dataclass(frozen=True)
class HoldCase:
    booked: list[BookedMeeting]
    bridges: list[BridgeState]
    hold: list[str]
    release: list[str]
    desired: int


HOLD_CASES = {
    # a 500 may open at 8:10 - 10 min = 8:00 + 0: not yet in [now, now + lead) ... at +5:
    # it opens at 8:05, within the 10 min lead: two empty bridges held, the newest first
    "holds-empty-bridges-for-a-large-meeting": HoldCase(
        [meeting("big", 500, 15)],
        [br("old", 0.0, 0, age_min=60), br("new", 0.0, 0, age_min=30), br("busy", 0.5, 150)],
        ["new", "old"],
        [],
        3,
    ),
    # only one empty bridge: it is held, and the floor asks for another
    "too-few-empty-asks-for-more": HoldCase(
        [meeting("big", 500, 15)],
        [br("empty", 0.0, 0), br("busy", 0.5, 150)],
        ["empty"],
        [],
        3,
    ),
    # it may open now (start - 10 min has come): the held bridges go back into selection
    "released-when-it-may-open": HoldCase(
        [meeting("big", 500, 10)],
        [br("h1", 0.0, 0, held=True), br("h2", 0.0, 0, held=True), br("busy", 0.5, 150)],
        [],
        ["h1", "h2"],
        3,
    ),
    "nothing-to-hold-for-a-meeting-within-one-bridge": HoldCase(
        [meeting("small", 200, 15)], [br("e", 0.0, 0), br("busy", 0.5, 150)], [], [], 1
    ),
    # released, and then the empty bridge is the one a scale-down drains, not the busy one
    "cancelled-meeting-releases": HoldCase(
        [], [br("h1", 0.0, 0, held=True), br("busy", 0.5, 150)], [], ["h1"], 1
    ),
}


@pytest.mark.parametrize("case", list(HOLD_CASES.values()), ids=list(HOLD_CASES))
def test_bridges_held_for_a_meeting_larger_than_a_bridge(case: HoldCase) -> None:
    plan = decide_scale(HOLDING, case.bridges, case.booked, ScaleHistory(), NOW)
    assert (plan.hold, plan.release) == (case.hold, case.release)
    assert plan.desired == case.desired
    assert not set(plan.drain) & ({b.name for b in case.bridges if b.held} - set(plan.release))
    assert "busy" not in plan.drain


# two 130s start at +5 beside a 100 and a 105: on an empty bridge they pile up (Jicofo
# sees each one small when the next opens: 260 beside a spread of 55 is above 300), spread
# over the two loaded ones they fit (230 and 235, each with a spread of 39)
WAVE = [
    meeting("r1", 100, -30, 120, running=True),
    meeting("r2", 105, -30, 120, running=True),
    meeting("a", 130, 5),
    meeting("b", 130, 5),
]


def loaded_and(e: BridgeState, stress: float = 0.9) -> list[BridgeState]:
    """x and y carry 100 and 105; at stress 0.9 the live term keeps all three bridges."""
    return [br("x", stress, 100, age_min=90), br("y", stress, 105, age_min=80), e]


@pytest.mark.parametrize(
    ("booked", "bridges", "max_bridges", "expected"),
    [
        # the pool keeps its three bridges: the empty one would take both, it is held
        (WAVE, loaded_and(br("e", 0.0, 0)), 3, (["e"], [], [], ["e"])),
        (WAVE, loaded_and(br("e", 0.0, 0)), 4, (["e"], [], [], ["e"])),
        # a scale-down drains it instead (what placement_need counted on)
        (WAVE, loaded_and(br("e", 0.0, 0), stress=0.3), 3, ([], [], ["e"], [])),
        # held in an earlier pass and still needed: kept
        (WAVE, loaded_and(br("e", 0.0, 0, held=True)), 3, ([], [], [], ["e"])),
        # the starts have landed: released
        (WAVE[:2], loaded_and(br("e", 0.0, 0, held=True)), 3, ([], ["e"], [], [])),
    ],
    ids=[
        "held-at-maximum",
        "held-while-the-live-term-keeps-it",
        "drained-on-a-scale-down",
        "kept-while-needed",
        "released-after",
    ],
)
def test_least_loaded_bridge_shielded_from_a_pile_up(
    booked: list[BookedMeeting],
    bridges: list[BridgeState],
    max_bridges: int,
    expected: tuple[list[str], list[str], list[str], list[str]],  # hold, release, drain, shield
) -> None:
    pool = PLACED.evolve(max_bridges=max_bridges)
    plan = decide_scale(pool, bridges, booked, ScaleHistory(), NOW)
    assert (plan.hold, plan.release, plan.drain, plan.shield) == expected


def test_booked_floor_is_not_held_by_stabilization() -> None:
    bridges = [br(f"b{i}", 0.0, 0, age_min=30) for i in range(3)]
    plan = decide_scale(PLACED, bridges, upcoming(3), ScaleHistory(), NOW)
    assert (plan.desired, plan.winner, plan.booked.placed) == (3, "booked", 3)
    assert plan.recommendation == plan.live_replicas  # the floor is not recorded
    history = record(ScaleHistory(), plan, NOW)
    later = decide_scale(PLACED, bridges, [], history, NOW + timedelta(minutes=1))
    assert later.desired < 3  # the burst has landed: nothing holds the empty bridges


def test_drain_about_to_time_out_with_participants_is_cancelled() -> None:
    pool = POOL.evolve(timeout=timedelta(minutes=60))
    started = NOW - timedelta(minutes=59)
    busy = replace(br("busy", 0.1, 30, draining=True), drain_started_at=started)
    empty = replace(br("empty", 0.0, 0, draining=True), drain_started_at=started)
    young = replace(
        br("young", 0.1, 30, draining=True), drain_started_at=NOW - timedelta(minutes=10)
    )
    kept = [br("k", 0.5, 150)]
    plan = decide_scale(pool, [*kept, busy, empty, young], [], ScaleHistory(), NOW)
    assert plan.cancel_drain == ["busy"]
    assert plan.new_bridges == 0


@pytest.mark.parametrize(
    ("action", "timeout_s", "drained_for_s", "cancelled"),
    [
        ("ReturnToService", 3600, 3470, []),
        ("ReturnToService", 3600, 3490, ["busy"]),
        ("ReturnToService", 120, 80, []),  # short timeouts: a quarter of it, not 120 s
        ("ReturnToService", 120, 95, ["busy"]),
        ("Remove", 3600, 3590, []),  # cut at the timeout, as the pool asks
    ],
    ids=["long-not-yet", "long-due", "short-not-yet", "short-due", "remove"],
)
def test_drain_timeout_action_from_the_pool_spec(
    action: str, timeout_s: int, drained_for_s: int, cancelled: list[str]
) -> None:
    spec = BridgePoolSpec.model_validate(
        {
            "template": {"spec": {"containers": [{"name": "jvb", "image": "jitsi/jvb"}]}},
            "maxBridges": 10,
            "drainTimeoutSeconds": timeout_s,
            "drainTimeoutAction": action,
        }
    )
    pool = pool_params(spec, timedelta(minutes=10))
    busy = replace(
        br("busy", 0.1, 30, draining=True),
        drain_started_at=NOW - timedelta(seconds=drained_for_s),
    )
    plan = decide_scale(pool, [br("k", 0.5, 150), busy], [], ScaleHistory(), NOW)
    assert plan.cancel_drain == cancelled


def test_held_bridges_count_in_the_booked_term() -> None:
    d = booked_demand(POOL, [meeting("big", 500, 15)], [], NOW)
    assert (d.placed, d.reserved, d.replicas) == (2, 2, 2)


@pytest.mark.parametrize(
    ("since_s", "desired"),
    [(15, 3), (45, 3), (60, 1), (90, 1)],
    ids=["next-pass", "within-the-window", "window-over", "long-after"],
)
def test_booked_need_dipping_for_a_pass_drains_nothing(since_s: int, desired: int) -> None:
    """The booked floor is the highest booked need of the last 60 s (``stabilization``):
    a need that dips for a pass (conferences opening move from coming to running) drains
    no bridge the next pass asks for again; once the window is over the pool shrinks to
    ``minBridges`` (1)."""
    bridges = [br(f"b{i}", 0.0, 0, age_min=30) for i in range(3)]
    plan = decide_scale(PLACED, bridges, upcoming(3), ScaleHistory(), NOW)
    assert plan.booked_replicas == 3
    history = record(ScaleHistory(), plan, NOW)
    later = decide_scale(PLACED, bridges, [], history, NOW + timedelta(seconds=since_s))
    assert later.booked_replicas == 0 and later.desired == desired
    assert len(later.drain) == 3 - desired
    held = "held at 3 (the highest booked need in the last 60 s)"
    assert (held in later.message) == (desired == 3), later.message


def test_booked_stabilization_beyond_the_kept_history_is_refused() -> None:
    with pytest.raises(
        ValueError, match="booked stabilization must be within 0 and 300 s, got 301 s"
    ):
        PoolParams.of(stabilization=timedelta(seconds=301))


@pytest.mark.parametrize(
    ("booked", "max_bridges", "expected"),
    [
        (upcoming(3), 20, (3, 1)),
        (upcoming(3), 4, (3, 1)),
        (upcoming(3), 3, (3, 0)),
        ([meeting("r", 200, -30, running=True, observed=200)], 20, (1, 0)),
        ([meeting("big", 500, 15)], 20, (2, 0)),
    ],
    ids=["opening-soon", "up-to-max", "not-above-max", "nothing-to-open", "held-not-placed"],
)
def test_a_spare_bridge_while_conferences_are_to_open(
    booked: list[BookedMeeting], max_bridges: int, expected: tuple[int, int]
) -> None:
    """Production parameters: while booked conferences are to open within the lead time,
    the booked term asks one bridge more than the replay (``booked.spare``): conferences
    that open out of the replay's order take the empty bridges it counted on for others
    (four meetings opening in one quarter-minute onto the one empty bridge on
    monday-briefing seed 2). Never
    above ``maxBridges``; none when nothing is to open (running meetings, or one whose
    bridges are held until it may open)."""
    pool = POOL.evolve(max_bridges=max_bridges)
    plan = decide_scale(pool, [], booked, ScaleHistory(), NOW)
    replay_only = decide_scale(pool.evolve(spare=0), [], booked, ScaleHistory(), NOW)
    assert (replay_only.booked_replicas, plan.booked.spare) == expected
    assert plan.booked_replicas == replay_only.booked_replicas + plan.booked.spare
    assert (f"({plan.booked.spare} spare)" in plan.message) == (plan.booked.spare > 0)


def test_a_negative_spare_is_refused() -> None:
    with pytest.raises(ValueError, match="booked spare must be >= 0, got -1"):
        PoolParams.of(spare=-1)


@pytest.mark.parametrize("spare", [0, 1, 2], ids=["none", "default", "two"])
def test_spare_bridges_from_the_pool_spec(spare: int) -> None:
    """``spec.spareBridges`` is the booked term's spare (a small cluster may give 0)."""
    spec = BridgePoolSpec.model_validate(
        {
            "template": {"spec": {"containers": [{"name": "jvb", "image": "jitsi/jvb"}]}},
            "maxBridges": 20,
            "spareBridges": spare,
        }
    )
    plan = decide_scale(
        pool_params(spec, timedelta(minutes=10)), [], upcoming(3), ScaleHistory(), NOW
    )
    assert (plan.booked.spare, plan.booked_replicas) == (spare, 3 + spare)
