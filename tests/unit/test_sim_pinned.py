"""Pinned placement in the simulator: the world's Jicofo honours pins and spans only bridges of
one release in a pinned pool (a spanning group's), and the operator policy (the shipped core,
through the adapter) pins booked conferences where Jicofo alone would pile them up."""

from __future__ import annotations

import pytest

from meetscale.sim.pools import split_pools
from meetscale.sim.run import simulate
from meetscale.sim.tiny import meeting, tiny_trace
from meetscale.sim.world import World


def world(*, pinned: bool = False, ready: int = 3) -> World:
    w = World(
        n_meetings=4,
        confidential=[False] * 4,
        ppb=100,
        tick_seconds=15,
        startup_ticks=0,
        drain_timeout_ticks=10,
        pinned=pinned,
    )
    w.add_bridges(ready, 0, ready_now=True)
    for m in range(4):
        w.admit(m)
    return w


def hosts(w: World, m: int) -> list[str]:
    return [b.name for b in w.confs[m].bridges]


def test_a_pinned_conference_opens_on_its_pins_bridge() -> None:
    w = world(pinned=True)
    w.set_count(0, 50)  # jvb-0
    w.pins = {1: "jvb-0"}
    w.set_count(1, 10)  # Jicofo alone: jvb-1, the least loaded
    assert hosts(w, 1) == ["jvb-0"]
    w.set_count(2, 10)  # unpinned: the least loaded
    assert hosts(w, 2) == ["jvb-1"]


def test_a_draining_pinned_bridge_still_takes_it() -> None:
    # the version filter comes before Jicofo's preference for bridges not draining
    w = world(pinned=True)
    w.drain("jvb-2", 0)
    w.pins = {0: "jvb-2"}
    w.set_count(0, 10)
    assert hosts(w, 0) == ["jvb-2"]


@pytest.mark.parametrize("gone", ["removed", "not-ready"])
def test_participants_wait_while_the_pinned_bridge_is_not_there(gone: str) -> None:
    w = world(pinned=True)
    if gone == "removed":
        w.remove("jvb-1")
        w.pins = {0: "jvb-1"}
    else:
        w.startup_ticks = 4
        (new,) = w.add_bridges(1, 0)  # starting: Jicofo does not know it yet
        w.pins = {0: new.name}
    w.set_count(0, 10)
    assert w.waiting == {0: 10}
    assert w.account() == 10  # waiting participants are degraded


def test_no_conference_spans_bridges_in_a_pinned_pool() -> None:
    spanning, pinned = world(), world(pinned=True)
    for w in (spanning, pinned):
        w.set_count(0, 250)
    assert len(hosts(spanning, 0)) == 3
    assert hosts(pinned, 0) == ["jvb-0"]
    assert pinned.account() == 250  # all of it on one overloaded bridge


def _pile_up(placement: str) -> tuple[float, float]:
    """Three bridges at maxBridges with 20 and 40 unbooked on two of them; a 60, a 60 and a
    40 booked a day ahead open together, filling over five minutes."""
    meetings = [
        meeting("u1", start=0, minutes=180, participants=20, created=0),
        meeting("u2", start=0, minutes=180, participants=40, created=0),
        meeting("a", start=60, minutes=60, participants=60, spread=300),
        meeting("b", start=60, minutes=60, participants=60, spread=300),
        meeting("c", start=60, minutes=60, participants=40, spread=300),
    ]
    pool = {"minBridges": 3, "maxBridges": 3, "placement": placement}
    (r,) = simulate(split_pools(tiny_trace(meetings, pool=pool)), ["operator"])
    return r.degraded_booked_minutes, r.bridge_hours


def test_pins_keep_booked_conferences_that_open_together_apart() -> None:
    # Jicofo puts the first joiners of all three on the empty bridge, where they grow to
    # 160 of 100; pinned, a gets the empty bridge, b goes beside the 20 and c beside the 40,
    # where each fits with the declaration margin
    jicofo, pinned = _pile_up("Jicofo"), _pile_up("Pinned")
    assert jicofo[0] > 0
    assert pinned[0] == 0
    assert pinned[1] == jicofo[1]


def test_a_conference_spans_only_bridges_of_its_release() -> None:
    # two bridges started for a spanning group share its release: a conference pinned to it
    # grows over both (Octo); one opened on a bridge of its own release stays there
    w = world(pinned=True)
    group = w.add_bridges(2, 0, ready_now=True, releases=["span-x", "span-x"])
    assert [b.release for b in group] == ["span-x", "span-x"]
    for b in group:
        w.hold(b.name, True)  # held: Jicofo still opens a pinned one there
    w.set_pins({0: group[0].name})
    w.set_count(0, 150)
    assert sorted(hosts(w, 0)) == sorted(b.name for b in group)
    w.set_count(1, 150)  # unpinned: the least loaded bridge not held, alone
    assert len(hosts(w, 1)) == 1 and hosts(w, 1)[0] not in {b.name for b in group}
    assert w.account() == 150  # the unpinned one overloads its bridge; the grouped one fits


@pytest.mark.parametrize("placement", ["Jicofo", "Pinned"])
def test_a_meeting_larger_than_a_bridge_is_served_in_either_placement(placement: str) -> None:
    # pinned, a 150 on bridges of 100 gets a group of two bridges of its own (Jicofo: it
    # spans any two); either way nobody is refused nor degraded
    big = meeting("tap-huan", start=60, minutes=60, participants=150)
    trace = tiny_trace([big], pool={"placement": placement})
    (r,) = simulate(split_pools(trace), ["operator"])
    assert r.denied_participant_minutes == 0
    assert r.degraded_participant_minutes == 0
    assert r.served_participant_minutes > 0
