"""The policies: the hpa and threshold baselines driven correctly, the operator wired to the
operator's own decision code, admission shortcuts that change no answer."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import meetscale.decide.admit.plan as core_admission
import meetscale.decide.scale.hpa as core_hpa
import meetscale.decide.scale.plan as core_scaling
from meetscale.decide.scale.adhoc import Arrival, adhoc_rate
from meetscale.sim.demand import build_demand
from meetscale.sim.engine import run_policy
from meetscale.sim.policies import hpa as hpa_mod
from meetscale.sim.policies import make_policy
from meetscale.sim.policies import operator as operator_mod
from meetscale.sim.policies.hpa import HpaPolicy
from meetscale.sim.policies.operator import OperatorOptions, OperatorPolicy
from meetscale.sim.policies.threshold import ThresholdParams, ThresholdPolicy
from meetscale.sim.policy import BridgePod, BridgeSample, Observation, SimContext
from meetscale.sim.tiny import START, agency, meeting, tiny_trace
from meetscale.sim.trace import load_trace

TRACES = Path(__file__).resolve().parents[2] / "traces"


def ctx(min_bridges: int = 1, max_bridges: int = 20) -> SimContext:
    trace = tiny_trace([], pool={"minBridges": min_bridges, "maxBridges": max_bridges})
    return SimContext(trace=trace, demand=build_demand(trace), start=trace.start)


def obs(t: float, stress: dict[str, float | None], unready: tuple[str, ...] = ()) -> Observation:
    """Bridges jvb-0.. created in name order; `stress` None = ready but not scraped yet."""
    bridges = [
        BridgePod(name, float(i), name not in unready, False, None)
        for i, name in enumerate([*stress, *unready])
    ]
    metrics = [
        BridgeSample(n, s, round(s * 100), 1, False) for n, s in stress.items() if s is not None
    ]
    return Observation(
        tick=int(t // 15),
        t=t,
        now=START + timedelta(seconds=t),
        bridges=bridges,
        metrics=metrics,
        metrics_age_s=30.0,
        new_meetings=(),
        ended_meetings=(),
        changed=False,
    )


def names(n: int) -> list[str]:
    return [f"jvb-{i}" for i in range(n)]


# ------------------------------------------------------------------ hpa

HPA_STEPS = [
    # (id, target, stress per bridge, unready bridges, max, expected add, expected removals)
    ("scale-up", 0.7, [0.9, 0.9], (), 20, 1, 0),
    ("within-tolerance", 0.7, [0.75, 0.75], (), 20, 0, 0),
    ("just-outside-tolerance", 0.7, [0.78, 0.78], (), 20, 1, 0),
    ("target-0.5", 0.5, [0.9, 0.9], (), 20, 2, 0),
    ("rate-limit-up", 0.7, [1.0, 1.0], (), 20, 1, 0),
    ("policy-max-of-100pct-or-4", 0.7, [5.0, 5.0], (), 20, 4, 0),
    ("capped-at-max", 0.7, [5.0, 5.0], (), 5, 3, 0),
    ("unready-pods-count-as-zero-up", 0.7, [1.4, 1.4], ("jvb-9",), 20, 1, 0),
    ("missing-metric-counts-as-zero-up", 0.7, [1.4, None], (), 20, 0, 0),
    ("first-scale-down-is-immediate", 0.7, [0.2, 0.2, 0.2, 0.2], (), 20, 0, 2),
    ("missing-metric-holds-down", 0.7, [0.3, 0.3, None], (), 20, 0, 1),
]


@pytest.mark.parametrize(
    ("target", "stress", "unready", "hi", "add", "removed"),
    [s[1:] for s in HPA_STEPS],
    ids=[s[0] for s in HPA_STEPS],
)
def test_hpa_one_sync(
    target: float,
    stress: list[float | None],
    unready: tuple[str, ...],
    hi: int,
    add: int,
    removed: int,
) -> None:
    pol = HpaPolicy(target=target)
    pol.begin(ctx(max_bridges=hi))
    act = pol.step(obs(15, dict(zip(names(len(stress)), stress, strict=True)), unready))
    assert act.add == add
    assert len(act.remove) == removed
    # the same numbers from the core, called directly
    samples = dict(zip(names(len(stress)), stress, strict=True))
    ready = {n: True for n in samples} | {n: False for n in unready}
    calc = core_hpa.hpa_replicas(len(ready), samples, target, 0.1, ready)
    if calc.reason != "NoMetrics":
        beh = core_hpa.apply_behavior(
            len(ready),
            calc.replicas,
            min_replicas=1,
            max_replicas=hi,
            behavior=core_hpa.BehaviorRules(),
            history=core_hpa.ScaleHistory(),
            now=START + timedelta(seconds=15),
        )
        assert beh.replicas - len(ready) == add - removed


# Facts from upstream's replica_calculator_test.go (custom per-pod metrics), in stress units
# (milli-values / 100000), driven through the baseline on its first sync: the baseline
# must turn them into the same replica counts.
UPSTREAM = [
    # (test, current replicas, per-pod levels, target, expected replicas)
    ("TestReplicaCalcScaleUpCM", [0.20, 0.10, 0.30], 0.15, 4),
    ("TestReplicaCalcScaleDownCM", [0.12, 0.12, 0.12, 0.12, 0.12], 0.20, 3),
    ("TestReplicaCalcToleranceCM", [0.20, 0.21, 0.21], 0.20, 3),
]


@pytest.mark.parametrize(
    ("levels", "target", "expected"), [u[1:] for u in UPSTREAM], ids=[u[0] for u in UPSTREAM]
)
def test_hpa_baseline_reproduces_upstream_facts(
    levels: list[float], target: float, expected: int
) -> None:
    pol = HpaPolicy(target=target)
    pol.begin(ctx())
    act = pol.step(obs(15, dict(zip(names(len(levels)), levels, strict=True))))
    assert len(levels) + act.add - len(act.remove) == expected


def test_hpa_scale_down_waits_for_the_stabilization_window() -> None:
    pol = HpaPolicy()
    pol.begin(ctx())
    four = names(4)
    for t in range(15, 301, 15):  # busy: recommends 4
        assert not pol.step(obs(t, dict.fromkeys(four, 0.7))).scales()
    quiet = dict.fromkeys(four, 0.2)  # recommends 2
    first_removal = None
    for t in range(315, 1200, 15):
        act = pol.step(obs(t, quiet))
        if act.remove:
            first_removal = t
            assert len(act.remove) == 2
            break
    # the last "4" was recommended at t=300; at t=600 it is no longer strictly inside the
    # 300 s window (upstream compares with After(cutoff) too)
    assert first_removal == 600


def test_hpa_deletes_unready_then_newest_pods() -> None:
    pol = HpaPolicy()
    pol.begin(ctx())
    act = pol.step(obs(15, dict.fromkeys(names(4), 0.1), unready=("jvb-9",)))
    assert act.remove[0] == "jvb-9"
    assert act.remove[1:] == ["jvb-3", "jvb-2", "jvb-1"][: len(act.remove) - 1]


def test_hpa_without_metrics_does_nothing() -> None:
    pol = HpaPolicy()
    pol.begin(ctx())
    assert not pol.step(obs(15, {"jvb-0": None, "jvb-1": None})).scales()


def test_hpa_baseline_calls_the_operators_hpa_code() -> None:
    assert hpa_mod.hpa_replicas is core_hpa.hpa_replicas
    assert hpa_mod.apply_behavior is core_hpa.apply_behavior


def test_hpa_scale_down_cuts_the_conferences_on_the_deleted_bridge() -> None:
    trace = tiny_trace(
        [
            meeting("a", start=10, minutes=100, participants=60),
            meeting("b", start=10, minutes=20, participants=60),
            meeting("c", start=20, minutes=90, participants=10),
        ],
        pool={"minBridges": 1, "bridgeStartupSeconds": 60},
        hours=3,
    )
    r = run_policy(build_demand(trace), HpaPolicy())
    # a and b overload jvb-0; hpa adds jvb-1, where c goes. b ends: 60 + 10 on two bridges is
    # 0.35 average, the HPA wants 1 and, 300 s later, deletes the newest pod: c's 10 are cut.
    assert r.cut_participants == 10
    assert r.degraded_participant_minutes > 0
    assert r.peak_bridges == 2


# ------------------------------------------------------------------ threshold


def test_threshold_scales_up_after_n_hot_periods_then_waits_the_grace() -> None:
    p = ThresholdParams()
    pol = ThresholdPolicy(p)
    pol.begin(ctx())
    hot = dict.fromkeys(names(2), 0.8)
    adds = []
    for t in range(15, 1200, 15):
        act = pol.step(obs(t, hot))
        if act.add:
            adds.append((t, act.add))
    assert adds[0] == (p.period_seconds * p.up_periods, p.up_quantity)
    assert adds[1][0] - adds[0][0] >= p.grace_seconds


def test_threshold_drains_the_least_loaded_after_m_cold_periods() -> None:
    pol = ThresholdPolicy()
    pol.begin(ctx())
    cold = {"jvb-0": 0.2, "jvb-1": 0.05, "jvb-2": 0.25}
    drains = []
    for t in range(15, 600, 15):
        act = pol.step(obs(t, cold))
        assert not act.remove  # graceful: never deletes
        if act.drain:
            drains.append((t, act.drain))
    assert drains[0] == (240, ["jvb-1"])


def test_threshold_keeps_min_bridges() -> None:
    pol = ThresholdPolicy()
    pol.begin(ctx(min_bridges=2))
    assert pol.step(obs(15, {"jvb-0": 0.0})).add == 1
    for t in range(30, 900, 15):
        assert not pol.step(obs(t, dict.fromkeys(names(2), 0.0))).drain


# ------------------------------------------------------------------ operator


def test_operator_calls_the_operators_own_code() -> None:
    assert operator_mod.decide_admission is core_admission.decide_admission
    assert operator_mod.decide_scale is core_scaling.decide_scale
    assert operator_mod.record is core_scaling.record


def quota_trace() -> object:
    return tiny_trace(
        [
            meeting("first", start=60, minutes=60, participants=60, created=-600),
            meeting("second", start=60, minutes=60, participants=60, created=-300),
            meeting("later", start=150, minutes=30, participants=60, created=-200),
            meeting("adhoc", start=200, minutes=20, participants=30, created=200),
        ],
        agencies=[agency("so-y-te", maxConcurrentParticipants=100, maxConcurrentMeetings=5)],
        pool={"participantsPerBridge": 300, "minBridges": 1},
        hours=4,
    )


def test_operator_admission_queues_then_rejects_what_exceeds_the_quota() -> None:
    trace = quota_trace()
    d = build_demand(trace)  # type: ignore[arg-type]
    r = run_policy(d, OperatorPolicy())
    assert (r.meetings_admitted, r.meetings_queued, r.meetings_rejected) == (3, 1, 1)
    # "second" is kept out for its whole hour: 60 participants x 60 minutes
    assert r.denied_by_meeting == [0, 3600, 0, 0]
    assert r.denied_participant_minutes == 3600
    assert r.served_participant_minutes == 60 * 60 + 60 * 30 + 30 * 20
    assert r.degraded_participant_minutes == 0


def test_baselines_admit_everything() -> None:
    d = build_demand(quota_trace())  # type: ignore[arg-type]
    for name in ("hpa", "threshold", "oracle"):
        r = run_policy(d, make_policy(name))
        assert (r.meetings_admitted, r.meetings_rejected, r.denied_participant_minutes) == (
            4,
            0,
            0,
        ), name


def test_operator_provisions_a_booked_meeting_ahead() -> None:
    trace = tiny_trace(
        [meeting("lon", start=60, minutes=60, participants=250, spread=120)],
        pool={"participantsPerBridge": 100, "minBridges": 1, "bridgeStartupSeconds": 120},
        hours=3,
    )
    r = run_policy(build_demand(trace), OperatorPolicy())
    start = 60 * 4  # tick of the start
    assert r.series_bridges[start] >= 3
    assert r.series_bridges[start - 8] >= 3  # ready two minutes before
    assert r.degraded_participant_minutes == 0
    assert r.series_bridges[-1] == 1  # back to minBridges afterwards


def test_operator_hands_decide_scale_the_live_operators_adhoc_rate(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # "notice" is created 5 minutes before its start (ad hoc: inside the 10 min lead time);
    # it counts from its start, as the live operator counts it, not from when it appeared
    trace = tiny_trace(
        [
            meeting("notice", start=60, minutes=30, participants=90, created=55),
            meeting("booked", start=60, minutes=30, participants=50, created=-600),
        ],
        hours=2,
    )
    seen: dict[datetime, float] = {}
    real = operator_mod.decide_scale

    def spy(*args: Any, **kwargs: Any) -> Any:
        seen[args[4]] = args[5]
        return real(*args, **kwargs)

    monkeypatch.setattr(operator_mod, "decide_scale", spy)
    run_policy(build_demand(trace), OperatorPolicy())
    arrivals = [Arrival(m.created_at, m.start, m.participants) for m in trace.meetings]
    lead = timedelta(seconds=trace.pool.lead_time_seconds)
    assert seen
    for now, rate in seen.items():
        assert rate == adhoc_rate(arrivals, now, lead, timedelta(minutes=30)), now
    minute = timedelta(minutes=1)
    assert seen[START + 57 * minute] == 0.0  # visible, not started
    assert seen[START + 61 * minute] == 3.0  # 90 participants over 30 minutes
    assert seen[START + 95 * minute] == 0.0  # started 35 minutes ago


@pytest.mark.parametrize("name", ["agency-flood", "adhoc-surge", "monday-briefing"])
def test_admission_shortcuts_change_no_decision(name: str) -> None:
    d = build_demand(load_trace(TRACES / f"{name}.yaml"))
    fast = run_policy(d, OperatorPolicy())
    full = run_policy(d, OperatorPolicy(OperatorOptions(prune_holders=False)))
    every = run_policy(d, OperatorPolicy(OperatorOptions(resync_every_tick=True)))
    assert fast.to_json() == full.to_json() == every.to_json()
