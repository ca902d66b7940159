"""The world model: Jicofo placement, bridges starting and draining, accounting, the oracle."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from meetscale.sim.demand import build_demand
from meetscale.sim.engine import PolicyResult, oracle_targets, run_policy
from meetscale.sim.policies.oracle import OraclePolicy
from meetscale.sim.policy import Actions, Observation, SimContext
from meetscale.sim.tiny import meeting, tiny_trace
from meetscale.sim.world import World


def world(
    n: int = 10,
    ppb: int = 100,
    confidential: tuple[int, ...] = (),
    startup: int = 0,
    drain_timeout: int = 10,
    ready: int = 0,
) -> World:
    w = World(
        n_meetings=n,
        confidential=[i in confidential for i in range(n)],
        ppb=ppb,
        tick_seconds=15,
        startup_ticks=startup,
        drain_timeout_ticks=drain_timeout,
    )
    if ready:
        w.add_bridges(ready, 0, ready_now=True)
    return w


def admitted(w: World, *ms: int) -> World:
    for m in ms:
        w.admit(m)
    return w


def host(w: World, m: int) -> list[str]:
    return [b.name for b in w.confs[m].bridges]


# ------------------------------------------------------------------ placement


def test_lowest_load_then_sticky() -> None:
    w = admitted(world(ready=3), 0, 1, 2, 3)
    w.set_count(0, 50)  # all empty: the first (oldest) bridge
    w.set_count(1, 10)  # jvb-1 and jvb-2 empty: jvb-1
    w.set_count(2, 5)  # jvb-2
    assert [host(w, m) for m in (0, 1, 2)] == [["jvb-0"], ["jvb-1"], ["jvb-2"]]
    w.set_count(3, 1)  # lowest is jvb-2 (5)
    assert host(w, 3) == ["jvb-2"]
    w.set_count(1, 90)  # grows where it is, even past others
    w.set_count(0, 1)
    assert host(w, 1) == ["jvb-1"] and host(w, 0) == ["jvb-0"]
    assert [b.load for b in w.bridges.values()] == [1, 90, 6]


@pytest.mark.parametrize(
    ("count", "bridges", "shares"),
    [(100, 1, [100]), (101, 2, [51, 50]), (250, 3, [84, 83, 83]), (400, 4, [100] * 4)],
    ids=["fits", "just-over", "two-and-a-half", "exactly-four"],
)
def test_large_conference_spans_ceil_n_over_ppb(
    count: int, bridges: int, shares: list[int]
) -> None:
    w = admitted(world(ready=5), 0)
    w.set_count(0, 1)
    w.set_count(0, count)
    conf = w.confs[0]
    assert len(conf.bridges) == bridges
    assert [b.confs[0] for b in conf.bridges] == shares


def test_confidential_gets_a_bridge_of_its_own() -> None:
    w = admitted(world(ready=2, confidential=(1,)), 0, 1, 2)
    w.set_count(0, 10)  # jvb-0
    w.set_count(1, 5)  # needs an empty bridge: jvb-1
    assert host(w, 1) == ["jvb-1"]
    w.set_count(2, 1)  # jvb-1 is lower but exclusive: jvb-0
    assert host(w, 2) == ["jvb-0"]


def test_confidential_waits_for_an_empty_bridge() -> None:
    w = admitted(world(ready=1, confidential=(1,)), 0, 1)
    w.set_count(0, 10)
    w.set_count(1, 7)
    assert w.waiting == {1: 7}
    w.add_bridges(1, 3, ready_now=True)
    assert host(w, 1) == ["jvb-1"] and not w.waiting


def test_no_ready_bridge_means_waiting_until_one_is_ready() -> None:
    w = admitted(world(startup=4), 0)
    w.add_bridges(1, 0)
    w.set_count(0, 30)
    assert w.waiting == {0: 30}
    for k in range(1, 4):
        w.make_ready(k)
        assert w.waiting == {0: 30}
    w.make_ready(4)
    assert not w.waiting and host(w, 0) == ["jvb-0"]


def test_draining_bridge_takes_no_new_conference_and_goes_when_empty() -> None:
    w = admitted(world(ready=2), 0, 1)
    w.set_count(0, 20)  # jvb-0
    w.drain("jvb-1", 0)
    w.set_count(1, 5)  # jvb-1 is empty but draining
    assert host(w, 1) == ["jvb-0"]
    w.settle_drains(1)
    assert "jvb-1" not in w.bridges
    w.drain("jvb-0", 1)
    w.settle_drains(2)
    assert "jvb-0" in w.bridges  # still hosting
    w.set_count(0, 0)
    w.set_count(1, 0)
    w.settle_drains(3)
    assert not w.bridges and w.cut_total == 0


def test_held_bridge_stays_empty_and_is_kept_until_released() -> None:
    w = admitted(world(ready=2), 0, 1, 2)
    w.set_count(0, 20)  # jvb-0
    w.hold("jvb-1", True)
    w.set_count(1, 5)  # jvb-1 is empty but held: beside the 20 on jvb-0
    assert host(w, 1) == ["jvb-0"]
    w.settle_drains(1)
    assert "jvb-1" in w.bridges  # held, not draining: not removed when empty
    w.hold("jvb-1", False)
    w.set_count(2, 5)  # released: the empty bridge is the least loaded again
    assert host(w, 2) == ["jvb-1"]


def test_drain_timeout_cuts_and_counts() -> None:
    w = admitted(world(ready=2, drain_timeout=8), 0, 1)
    w.set_count(0, 20)
    w.set_count(1, 7)  # jvb-1
    w.drain("jvb-1", 10)
    w.settle_drains(17)
    assert "jvb-1" in w.bridges
    w.settle_drains(18)
    assert "jvb-1" not in w.bridges
    assert w.cut_total == 7 and w.cut[1] == 7
    assert host(w, 1) == ["jvb-0"]  # they rejoined on what is left


def test_remove_without_drain_cuts_every_participant() -> None:
    w = admitted(world(ready=2), 0, 1, 2)
    w.set_count(0, 20)  # jvb-0
    w.set_count(1, 30)  # jvb-1
    w.set_count(2, 5)  # jvb-0 (20 < 30)
    w.remove("jvb-0")
    assert w.cut_total == 25
    assert host(w, 0) == ["jvb-1"] and host(w, 2) == ["jvb-1"]
    assert w.bridges["jvb-1"].load == 55


# ------------------------------------------------------------------ accounting


def test_overloaded_bridge_degrades_everyone_on_it() -> None:
    w = admitted(world(ready=2), 0, 1, 2)
    w.set_count(0, 60)  # jvb-0
    w.set_count(1, 10)  # jvb-1
    w.set_count(2, 30)  # jvb-1 -> 40
    w.set_count(1, 50)  # jvb-1 -> 80, fine
    assert w.account() == 0
    w.set_count(2, 51)  # jvb-1 -> 101 > 100: all 101 suffer
    assert w.account() == 101
    assert w.degraded == [0, 50, 51] + [0] * 7
    w.set_count(2, 50)  # exactly at capacity is fine
    assert w.account() == 0


def test_waiting_participants_are_degraded() -> None:
    w = admitted(world(ready=1, confidential=(1,)), 0, 1)
    w.set_count(0, 10)
    w.set_count(1, 4)
    assert w.account() == 4 and w.degraded[1] == 4


class Scripted:
    """A policy that admits everything and does what `script(obs)` says."""

    name = "scripted"

    def __init__(self, script: Callable[[Observation], Actions] | None = None) -> None:
        self.script = script
        self.seen: list[Observation] = []
        self.n = 0

    def begin(self, ctx: SimContext) -> None:
        self.n = len(ctx.demand.meetings)

    def step(self, obs: Observation) -> Actions:
        self.seen.append(obs)
        act = self.script(obs) if self.script else Actions()
        if obs.tick == 0:
            act.admit = list(range(self.n))
        return act


def run(
    trace_meetings: list[dict[str, object]],
    script: Callable[[Observation], Actions] | None = None,
    **kw: object,
) -> tuple[PolicyResult, Scripted]:
    trace = tiny_trace(trace_meetings, **kw)  # type: ignore[arg-type]
    pol = Scripted(script)
    return run_policy(build_demand(trace), pol), pol


def test_degraded_minutes_on_one_overloaded_bridge() -> None:
    # one bridge (min 1, never scaled); 60 + 50 participants for 10 minutes: 110 > 100
    r, _ = run(
        [
            meeting("a", start=10, minutes=10, participants=60),
            meeting("b", start=10, minutes=10, participants=50, agency="so-gd-dt"),
            meeting("c", start=30, minutes=10, participants=40),
        ],
        agencies=[
            {
                "name": "so-y-te",
                "maxConcurrentParticipants": 1000,
                "maxConcurrentMeetings": 9,
                "maxMeetingParticipants": 500,
            },
            {
                "name": "so-gd-dt",
                "maxConcurrentParticipants": 1000,
                "maxConcurrentMeetings": 9,
                "maxMeetingParticipants": 500,
            },
        ],
        hours=1,
    )
    assert r.served_participant_minutes == 60 * 10 + 50 * 10 + 40 * 10
    assert r.degraded_participant_minutes == 110 * 10
    assert r.per_agency["so-gd-dt"].degraded == 500
    assert r.per_agency["so-y-te"].degraded == 600
    assert r.per_agency["so-y-te"].served == 1000
    assert r.denied_participant_minutes == 0
    assert r.bridge_hours == 1.0 and r.peak_bridges == 1


def test_waiting_for_a_starting_bridge_is_degraded() -> None:
    # minBridges 0: the first conference waits for the bridge started when it appears
    def script(obs: Observation) -> Actions:
        return Actions(add=1) if obs.tick == 40 and not obs.bridges else Actions()

    r, _ = run(
        [meeting("a", start=10, minutes=10, participants=30)],
        script,
        pool={"minBridges": 0, "bridgeStartupSeconds": 120},
        hours=1,
    )
    # joins at tick 40 (10 min); the bridge is ready 8 ticks (2 min) later
    assert r.degraded_participant_minutes == 30 * 2
    assert r.served_participant_minutes == 30 * 10


def test_metrics_are_the_last_scrape_15_s_old() -> None:
    """A decision sees the scrape taken at the end of the tick before (the oldest sample
    a live query answers with, scraping every 15 s): the join shows one tick later."""
    _, pol = run([meeting("a", start=1, minutes=5, participants=30)], hours=0.2)
    join = 4  # 1 minute = tick 4
    by_tick = {o.tick: o for o in pol.seen}
    assert by_tick[join].metrics == () or all(s.participants == 0 for s in by_tick[join].metrics)
    assert [s.participants for s in by_tick[join + 1].metrics] == [30]
    assert by_tick[join + 1].metrics_age_s == 15


def test_bridge_hours_count_starting_and_draining_bridges() -> None:
    def script(obs: Observation) -> Actions:
        if obs.tick == 4:
            return Actions(add=2)
        if obs.tick == 20:
            return Actions(drain=[b.name for b in obs.bridges if b.name != "jvb-0"])
        return Actions()

    r, _ = run([], script, hours=1, pool={"bridgeStartupSeconds": 600})
    # jvb-0 all hour; jvb-1/2 from tick 4 to tick 20 (removed at once: empty) = 16 ticks each
    assert r.bridge_hours == pytest.approx(1 + 2 * 16 * 15 / 3600)
    assert r.peak_bridges == 3
    assert r.scale_events == 2


# ------------------------------------------------------------------ the oracle

ORACLE = [
    # (meetings, ppb, min, max, expected bridges while they run)
    ("one-small", [("a", 50, False)], 100, 1, 20, 1),
    ("two-add-up", [("a", 60, False), ("b", 60, False)], 100, 1, 20, 2),
    ("exactly-full", [("a", 100, False), ("b", 100, False)], 100, 1, 20, 2),
    ("min-bound", [("a", 10, False)], 100, 3, 20, 3),
    ("max-bound", [("a", 900, False)], 100, 1, 5, 5),
    ("confidential-own", [("a", 10, False), ("m", 10, True)], 100, 1, 20, 2),
    ("confidential-large", [("a", 150, False), ("m", 201, True)], 100, 1, 20, 5),
]


@pytest.mark.parametrize(
    ("spec", "ppb", "lo", "hi", "want"), [o[1:] for o in ORACLE], ids=[o[0] for o in ORACLE]
)
def test_oracle_bridge_counts(
    spec: list[tuple[str, int, bool]], ppb: int, lo: int, hi: int, want: int
) -> None:
    trace = tiny_trace(
        [meeting(n, start=30, minutes=60, participants=p, confidential=c) for n, p, c in spec],
        pool={"participantsPerBridge": ppb, "minBridges": lo, "maxBridges": hi},
        hours=2,
    )
    d = build_demand(trace)
    targets = oracle_targets(d)
    during = targets[4 * 30 : 4 * 90]
    assert set(during) == {want}
    assert set(targets[: 4 * 30]) == set(targets[4 * 90 :]) == {lo}
    r = run_policy(d, OraclePolicy())
    assert r.bridge_hours == pytest.approx(r.oracle_bridge_hours)
    assert r.oracle_bridge_hours == pytest.approx((lo * 60 + want * 60) / 60)
    assert r.cost_ratio == pytest.approx(1.0)


def test_oracle_follows_the_actual_ramp_not_the_declaration() -> None:
    trace = tiny_trace(
        [meeting("a", start=10, minutes=30, participants=50, actual=250, spread=300)],
        hours=1,
    )
    d = build_demand(trace)
    t = oracle_targets(d)
    # joins over 5 minutes (20 ticks) from tick 40: 1 bridge, then 2, then 3
    assert t[40] == 1
    assert t[40 + 20] == 3
    assert t[40 + 8] == 1  # 100 participants: exactly one bridge
    assert t[40 + 9] == 2  # 113


def test_who_joins_before_the_meeting_exists_is_denied_under_every_policy() -> None:
    # an ad-hoc meeting booked at its start, whose 60 people join from five minutes before
    from meetscale.sim.run import simulate
    from meetscale.sim.trace import parse_trace

    trace = parse_trace(
        {
            "name": "early",
            "start": "2020-04-06T07:00:00+07:00",
            "end": "2020-04-06T09:00:00+07:00",
            "pool": {
                "participantsPerBridge": 300, "minBridges": 1, "maxBridges": 4,
                "bridgeStartupSeconds": 60,
            },
            "agencies": [
                {"name": "so-y-te", "maxConcurrentParticipants": 500,
                 "maxConcurrentMeetings": 5, "maxMeetingParticipants": 300}
            ],
            "meetings": [
                {
                    "name": "hop-gap", "agency": "so-y-te",
                    "createdAt": "2020-04-06T08:00:00+07:00",
                    "start": "2020-04-06T08:00:00+07:00",
                    "end": "2020-04-06T08:30:00+07:00", "participants": 60,
                    "actual": {"participants": 60, "joinStartOffsetSeconds": -300,
                               "joinSpreadSeconds": 0},
                }
            ],
        }
    )  # fmt: skip
    for r in simulate(trace, ["operator", "hpa", "threshold", "oracle"], record_series=False):
        assert r.denied_participant_minutes >= 60 * 5, r.policy  # the five minutes before
        assert r.served_participant_minutes > 0, r.policy
