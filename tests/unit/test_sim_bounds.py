"""The bounds beside the oracle: a bin-packing bound per tick and a clairvoyant sticky plan."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meetscale.sim.bounds import (
    bin_packing_bound,
    clairvoyant_packing,
    packing_bound_bridge_hours,
    packing_targets,
)
from meetscale.sim.demand import build_demand
from meetscale.sim.engine import oracle_bridge_hours, oracle_targets
from meetscale.sim.tiny import meeting, tiny_trace
from meetscale.sim.trace import load_trace

TRACES = Path(__file__).resolve().parents[2] / "traces"


@pytest.mark.parametrize(
    ("sizes", "cap", "fluid", "bins"),
    [
        ([], 300, 0, 0),
        ([], 300, 301, 2),
        ([160, 160, 160], 300, 0, 3),  # the volume bound says 2
        ([150, 150, 150, 150], 300, 0, 2),
        ([200, 200, 100, 100], 300, 0, 2),
        ([290, 290, 20], 300, 0, 3),  # the 20 fits beside neither 290; volume says 2
        ([290, 290], 300, 20, 2),  # split volume fills the room the 290s leave
        ([250, 100, 100], 300, 0, 2),
        ([100] * 7, 300, 0, 3),
    ],
    ids=[
        "nothing",
        "split volume only",
        "three over half a bridge need three",
        "halves pair up",
        "small ones fill the room big ones leave",
        "a small one fits beside no nearly full one",
        "split volume fits anywhere",
        "two small ones share",
        "small ones by volume",
    ],
)
def test_bin_packing_bound(sizes: list[int], cap: int, fluid: int, bins: int) -> None:
    assert bin_packing_bound(sizes, cap, fluid) == bins


def _fewest_bins(sizes: list[int], cap: int) -> int:
    """Exhaustive: try every assignment of items to at most len(sizes) bins."""
    n = len(sizes)
    if n == 0:
        return 0
    for bins in range(1, n + 1):
        for assign in itertools.product(range(bins), repeat=n):
            loads = [0] * bins
            for size, b in zip(sizes, assign, strict=True):
                loads[b] += size
            if max(loads) <= cap:
                return bins
    return n


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=20), min_size=0, max_size=6))
def test_bin_packing_bound_is_never_above_the_fewest_bins(sizes: list[int]) -> None:
    cap = 20
    bound = bin_packing_bound(sizes, cap)
    assert -(-sum(sizes) // cap) <= bound <= _fewest_bins(sizes, cap)


def test_packing_targets_count_whole_conferences_and_confidential_ones_alone() -> None:
    trace = tiny_trace(
        [
            meeting("a", start=0, minutes=60, participants=60),
            meeting("b", start=0, minutes=60, participants=60),
            meeting("c", start=0, minutes=60, participants=60),
            meeting("secret", start=90, minutes=30, participants=10, confidential=True),
            meeting("d", start=90, minutes=30, participants=50),
        ],
        pool={"participantsPerBridge": 100, "minBridges": 1},
    )
    demand = build_demand(trace)
    per_minute = 60 // demand.tick
    pack, oracle = packing_targets(demand), oracle_targets(demand)
    # three conferences of 60 on bridges of 100: the oracle pours them onto 2, they need 3
    assert (oracle[30 * per_minute], pack[30 * per_minute]) == (2, 3)
    # the confidential 10 holds a bridge of its own beside the 50: both count it
    assert (oracle[100 * per_minute], pack[100 * per_minute]) == (2, 2)
    assert all(p >= o for p, o in zip(pack, oracle, strict=True))


def _loads(demand, plan) -> dict[tuple[int, int], int]:  # type: ignore[no-untyped-def]
    """Participants on each (bridge, tick), from the real curves, as the plan places them."""
    share: dict[int, dict[int, int]] = {}
    for bridge, m, size, _, _ in plan.placements:
        share.setdefault(m, {})[bridge] = size
    out: dict[tuple[int, int], int] = {}
    for info in demand.meetings:
        parts = share.get(info.index, {})
        if info.actual > 0 and info.last_tick > info.first_tick:
            assert sum(parts.values()) == info.actual, info.name
        for k in range(info.first_tick, info.last_tick):
            count = info.count(k)
            for bridge, size in parts.items():
                # each bridge carries its share of the count (never more than planned)
                out[bridge, k] = out.get((bridge, k), 0) + -(-count * size // info.actual)
    return out


@pytest.mark.parametrize(
    ("meetings", "bridge_minutes", "peak"),
    [
        (
            [meeting(n, start=0, minutes=60, participants=60) for n in "abc"],
            180,
            3,
        ),
        (
            [
                meeting("long", start=0, minutes=120, participants=50),
                meeting("short", start=0, minutes=60, participants=50),
                meeting("late", start=0, minutes=120, participants=50),
            ],
            120 + 60,
            2,
        ),
        (
            [
                meeting("big", start=0, minutes=60, participants=150),
                meeting("small", start=0, minutes=60, participants=25),
            ],
            120,
            2,
        ),
        (
            [
                meeting("secret", start=0, minutes=60, participants=10, confidential=True),
                meeting("open", start=0, minutes=60, participants=10),
            ],
            120,
            2,
        ),
    ],
    ids=[
        "whole conferences: three of 60 need three bridges",
        "the two that end together share, the short one goes alone",
        "one larger than a bridge is split, a small one fits beside a half",
        "a confidential conference gets a bridge of its own",
    ],
)
def test_clairvoyant_packing(
    meetings: list[dict[str, object]], bridge_minutes: int, peak: int
) -> None:
    trace = tiny_trace(meetings, hours=3, pool={"participantsPerBridge": 100, "minBridges": 0})
    demand = build_demand(trace)
    plan = clairvoyant_packing(demand)
    assert plan.peak_bridges == peak
    assert plan.bridge_hours == pytest.approx(bridge_minutes / 60)
    assert all(load <= 100 for load in _loads(demand, plan).values())


@pytest.mark.parametrize("name", ["monday-briefing", "adhoc-surge"])
def test_clairvoyant_plan_keeps_every_bridge_within_capacity_on_a_sample_trace(name: str) -> None:
    demand = build_demand(load_trace(TRACES / f"{name}.yaml"))
    cap = demand.trace.pool.participants_per_bridge
    plan = clairvoyant_packing(demand)
    loads = _loads(demand, plan)
    assert max(loads.values()) <= cap
    alone = {m.index for m in demand.meetings if m.confidential}
    for bridge, m, *_ in plan.placements:
        if m in alone:  # nothing else on a confidential conference's bridge
            assert {mm for b, mm, *_ in plan.placements if b == bridge} == {m}
    oracle = oracle_bridge_hours(demand)
    assert oracle <= packing_bound_bridge_hours(demand) <= plan.bridge_hours
