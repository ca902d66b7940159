"""Choosing bridges to drain, deciding when a drain is over, and which drained bridges may
be removed now (the removal plan, as the live operator and the simulator carry it out)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import pytest

from meetscale.decide.scale import BridgeState, DrainRules
from meetscale.decide.scale.removal import (
    DrainingBridge,
    RemovalPlan,
    awaiting_confirmation,
    choose_drain,
    choose_replacement,
    drain_complete,
    filling,
    plan_removal,
)
from tests.unit.scalekit import POOL, br, meeting

NOW = datetime(2020, 4, 6, 8, 0, tzinfo=UTC)
PROTECTION = timedelta(minutes=5)


def bridge(
    name: str,
    endpoints: int | None,
    *,
    stress: float | None = 0.3,
    age_min: float = 60,
    ready: bool = True,
    draining: bool = False,
    conferences: int | None = None,
    held: bool = False,
) -> BridgeState:
    return BridgeState(
        held=held,
        name=name,
        ready=ready,
        draining=draining,
        created_at=NOW - timedelta(minutes=age_min),
        stress=stress,
        endpoints=endpoints,
        conferences=conferences,
    )


@pytest.mark.parametrize(
    ("bridges", "count", "expected"),
    [
        ([bridge("a", 50), bridge("b", 10), bridge("c", 30)], 1, ["b"]),
        ([bridge("a", 50), bridge("b", 10), bridge("c", 30)], 2, ["b", "c"]),
        ([bridge("a", 50), bridge("b", 10)], 5, ["b", "a"]),
        ([bridge("a", 50), bridge("b", 10)], 0, []),
        ([bridge("a", 10, stress=0.4), bridge("b", 10, stress=0.2)], 1, ["b"]),
        (
            [bridge("old", 0, stress=0.1, age_min=600), bridge("new", 0, stress=0.1, age_min=30)],
            1,
            ["new"],
        ),
        ([bridge("a", 0, stress=0.1), bridge("b", 0, stress=0.1)], 1, ["a"]),
        ([bridge("busy", 40), bridge("drain", 0, draining=True)], 1, ["busy"]),
        ([bridge("busy", 40), bridge("unready", 0, ready=False)], 1, []),
        ([bridge("busy", 40), bridge("young", 0, age_min=1)], 1, []),
        ([bridge("a", 40), bridge("edge", 0, age_min=5)], 1, ["edge"]),
        ([bridge("a", 40), bridge("unknown", None)], 1, ["a"]),
        ([bridge("a", 40), bridge("booting", None, stress=None, ready=False)], 1, []),
        ([bridge("a", 40), bridge("unscraped", None, stress=None, age_min=1)], 1, []),
        ([bridge("a", 0), bridge("booting", None, stress=None, ready=False)], 1, ["a"]),
        ([bridge("a", 30), bridge("held", 0, held=True)], 1, ["a"]),
        (
            [bridge("a", 1), bridge("b", 2), bridge("young", 2, age_min=1), bridge("c", 5)],
            3,
            ["a", "b"],
        ),
        ([bridge("a", 3, stress=None), bridge("b", 3, stress=0.9)], 1, ["b"]),
    ],
    ids=[
        "fewest-endpoints-first",
        "two-least-loaded",
        "count-larger-than-pool",
        "count-zero",
        "tie-endpoints-lowest-stress",
        "tie-load-newest-first",
        "full-tie-by-name",
        "skips-draining",
        "unready-empty-bridge-is-a-barrier",
        "protected-empty-bridge-is-a-barrier",
        "protection-ends-exactly",
        "unknown-endpoints-never-chosen",
        "booting-bridge-without-metrics-is-a-barrier",
        "new-bridge-not-scraped-yet-is-a-barrier",
        "empty-bridge-still-drained-beside-a-booting-one",
        "held-bridge-is-never-drained",
        "barrier-allows-equal-participants-only",
        "unknown-stress-sorts-last",
    ],
)
def test_choose_drain(bridges: list[BridgeState], count: int, expected: list[str]) -> None:
    assert choose_drain(bridges, count, NOW, PROTECTION) == expected


def test_chosen_never_host_more_than_kept() -> None:
    # b2, b6 and b8 (9, 12 and 6 participants) are still protected.
    pool = [
        bridge(f"b{i}", n, age_min=(1 if i in {2, 6, 8} else 60))
        for i, n in enumerate([7, 3, 9, 0, 4, 4, 12, 1, 6])
    ]
    chosen = set(choose_drain(pool, 6, NOW, PROTECTION))
    # 0, 1, 3, 4, 4 go; the protected 6 stops the walk before b0 (7): 5 of the 6 asked.
    assert chosen == {"b3", "b7", "b1", "b4", "b5"}
    kept = [b.endpoints for b in pool if b.name not in chosen]
    for b in pool:
        if b.name in chosen:
            assert b.endpoints is not None
            assert all(b.endpoints <= k for k in kept if k is not None)


@pytest.mark.parametrize(
    ("state", "started_min_ago", "expected"),
    [
        (bridge("x", 0, conferences=0, draining=True), 1, "Empty"),
        (bridge("x", 0, conferences=None, draining=True), 1, "Empty"),
        (bridge("x", 0, conferences=0, draining=True), 120, "Empty"),
        (bridge("x", 0, conferences=1, draining=True), 1, "Waiting"),
        (bridge("x", 12, draining=True), 30, "Waiting"),
        (bridge("x", 12, draining=True), 60, "TimedOut"),
        (bridge("x", 12, draining=True), 90, "TimedOut"),
        (bridge("x", None, draining=True), 30, "Waiting"),
        (bridge("x", None, draining=True), 61, "TimedOut"),
    ],
    ids=[
        "empty",
        "empty-conferences-unknown",
        "empty-wins-over-timeout",
        "no-endpoints-but-a-conference",
        "busy-waiting",
        "timeout-exactly",
        "timed-out",
        "unknown-waiting",
        "unknown-timed-out",
    ],
)
def test_drain_complete(state: BridgeState, started_min_ago: float, expected: str) -> None:
    started = NOW - timedelta(minutes=started_min_ago)
    assert drain_complete(state, started, NOW, timedelta(minutes=60)) == expected


# --------------------------------------------------------------------------- removal plan

RULES = DrainRules(timeout=timedelta(minutes=60), action="Remove")


def drained(
    name: str,
    endpoints: int | None,
    minutes: float,
    *,
    own: int | None = None,
    in_drain: bool | None = None,
) -> DrainingBridge:
    state = BridgeState(
        name=name,
        ready=True,
        draining=True,
        created_at=NOW - timedelta(hours=3),
        endpoints=endpoints,
        conferences=None if endpoints is None else min(endpoints, 1),
        drain_started_at=NOW - timedelta(minutes=minutes),
    )
    return DrainingBridge(state, own_endpoints=own, in_drain_mode=in_drain)


@dataclass(frozen=True)
class RemovalCase:
    draining: list[DrainingBridge]
    expected: RemovalPlan
    metrics_ok: bool = True
    growing: bool = False


REMOVAL_CASES = {
    "still-hosting-waits": RemovalCase([drained("a", 12, 10)], RemovalPlan()),
    "prometheus-empty-but-unconfirmed-waits": RemovalCase([drained("a", 0, 10)], RemovalPlan()),
    # Prometheus lags a scrape: the bridge itself still has someone
    "bridge-says-not-empty-waits": RemovalCase(
        [drained("a", 0, 10, own=2, in_drain=True)], RemovalPlan()
    ),
    "confirmed-empty-goes": RemovalCase(
        [drained("a", 0, 10, own=0, in_drain=True)], RemovalPlan(remove=["a"])
    ),
    # it forgot its drain mode (restarted): drain it again, do not remove it yet
    "out-of-drain-mode-is-drained-again": RemovalCase(
        [drained("a", 0, 10, own=0, in_drain=False)], RemovalPlan(redrain=["a"])
    ),
    "timed-out-goes-with-its-participants": RemovalCase(
        [drained("a", 7, 61)], RemovalPlan(remove=["a"], timed_out=["a"])
    ),
    "unknown-count-never-empty": RemovalCase([drained("a", None, 10)], RemovalPlan()),
    "only-the-empty-one-of-two": RemovalCase(
        [drained("a", 0, 10, own=0, in_drain=True), drained("b", 4, 10)],
        RemovalPlan(remove=["a"]),
    ),
    "nothing-without-metrics": RemovalCase(
        [drained("a", 0, 10, own=0, in_drain=True)], RemovalPlan(), metrics_ok=False
    ),
    "nothing-while-growing": RemovalCase(
        [drained("a", 0, 10, own=0, in_drain=True)], RemovalPlan(), growing=True
    ),
}


@pytest.mark.parametrize("case", list(REMOVAL_CASES.values()), ids=list(REMOVAL_CASES))
def test_plan_removal(case: RemovalCase) -> None:
    got = plan_removal(RULES, case.draining, NOW, metrics_ok=case.metrics_ok, growing=case.growing)
    assert got == case.expected


def test_only_bridges_prometheus_reports_empty_are_asked() -> None:
    states = [drained(n, e, 10).state for n, e in (("a", 0), ("b", 3), ("c", None))]
    assert awaiting_confirmation(states, NOW, RULES.timeout) == ["a"]


def outdated(name: str, endpoints: int | None, **kw: object) -> BridgeState:
    return replace(bridge(name, endpoints, **kw), outdated=True)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("bridges", "expected"),
    [
        ([bridge("a", 5), bridge("b", 9)], []),
        ([outdated("a", 5), outdated("b", 9), bridge("c", 1)], ["a"]),
        ([outdated("a", 5), outdated("b", 9, draining=True)], []),
        ([outdated("a", 5, ready=False), outdated("b", None)], []),
        ([outdated("a", 5, held=True), outdated("b", 9)], ["b"]),
    ],
    ids=["up-to-date", "least-loaded-first", "one-at-a-time", "needs-a-ready-one", "not-held"],
)
def test_rolling_update_replaces_one_outdated_bridge_at_a_time(
    bridges: list[BridgeState], expected: list[str]
) -> None:
    assert choose_replacement(bridges) == expected


@pytest.mark.parametrize(
    ("booked", "expected"),
    [
        ([meeting("a", 200, -5, running=True, observed=80)], {"x"}),  # still joining
        ([meeting("a", 200, -30, running=True, observed=180)], set()),  # past its grace
        ([meeting("a", 200, 5)], {"x"}),  # early joiners before its start
        ([meeting("b", 200, -5, running=True, observed=80)], set()),  # not on these bridges
    ],
    ids=["joining", "settled", "early-joiners", "elsewhere"],
)
def test_a_bridge_whose_conference_is_still_filling_is_not_drained(booked, expected) -> None:
    bridges = [br("x", 0.3, 80, by_meeting={"a": 80}), br("y", 0.6, 180)]
    now = bridges[0].created_at + timedelta(hours=1)  # scalekit's NOW
    keep = filling(bridges, booked, now, POOL.booked.join_grace, POOL.booked.early_join)
    assert keep == expected
    # draining one of two: x (the least loaded) unless it is filling, then nothing
    chosen = choose_drain(bridges, 1, now, POOL.drain.protection, keep)
    assert chosen == ([] if keep else ["x"])
