"""The simulator measures the operator that ships: for the same Meetings, AgencyQuotas and
BridgePool spec, the inputs the live operator hands to ``decide_admission`` and
``decide_scale`` equal the simulator's, field by field (generated worlds).

Live side: the Kopf records built from object bodies, ``admission.statuses.plan_pool``
(a full pass) and the scaler's ``live_scale_inputs`` over pods and Prometheus answers.
Simulator side: a trace with the same rows, the operator policy's admission pass and its
``scale_inputs`` over the world's pods and scrape."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from meetscale.adapt import AdmissionInputs, ConferenceFacts, ScaleInputs, pool_params
from meetscale.admission.statuses import plan_pool
from meetscale.clients.prometheus import PromValues
from meetscale.models import Phase
from meetscale.records import MeetingRecord, QuotaRecord
from meetscale.scaling.inputs import Metrics, PodRecord, bridge_states, skipped
from meetscale.scaling.scaler import live_scale_inputs
from meetscale.sim.policies.operator import OperatorOptions, OperatorPolicy
from meetscale.sim.policy import BridgePod, BridgeSample, Observation, SimContext
from meetscale.sim.pools import split_pools
from meetscale.sim.specs import AGENCY_LABEL, trace_specs
from meetscale.sim.trace import parse_trace
from meetscale.times import rfc3339

T0 = datetime(2026, 12, 7, 0, 0, tzinfo=UTC)
POOL_NAME = "default"
PRIORITIES = ["low", "normal", "high", "provincial"]


@dataclass(frozen=True)
class World:
    trace: dict[str, Any]
    bridges: list[dict[str, Any]]
    t_admit: int  # seconds from T0: the admission pass
    t_scale: int  # the scaling pass after it


@st.composite
def worlds(draw: st.DrawFn) -> World:
    lo = draw(st.integers(0, 3))
    pool = {
        "participantsPerBridge": draw(st.sampled_from([100, 200, 300])),
        "minBridges": lo,
        "maxBridges": draw(st.integers(max(lo, 1), 12)),
        "bridgeStartupSeconds": 120,
        "leadTimeSeconds": draw(st.sampled_from([0, 300, 600, 1800])),
        "targetStress": draw(st.sampled_from([0.5, 0.7, 1.0])),
        "preJoinMarginSeconds": draw(st.sampled_from([0, 600, 1200])),
        "drainTimeoutSeconds": draw(st.sampled_from([600, 3600])),
    }
    n_agencies = draw(st.integers(1, 3))
    cohort = draw(st.booleans())
    agencies = []
    for i in range(n_agencies):
        a: dict[str, Any] = {
            "name": f"agency-{i}",
            "priority": draw(st.sampled_from([0, 0, 10, 1000])),
            "weight": draw(st.integers(1, 4)),
            "maxConcurrentParticipants": draw(st.integers(0, 1500)),
            "maxConcurrentMeetings": draw(st.integers(0, 6)),
            "maxMeetingParticipants": draw(st.integers(50, 900)),
            "maxPriorityClass": draw(st.sampled_from(["high", "high", *PRIORITIES])),
        }
        if cohort:
            a["cohort"] = "shared"
            if draw(st.booleans()):
                a["borrowingLimit"] = draw(st.integers(0, 500))
            if draw(st.booleans()):
                a["lendingLimit"] = draw(st.integers(0, 500))
        agencies.append(a)
    t_admit = draw(st.integers(1, 96)) * 900
    meetings = []
    for i in range(draw(st.integers(1, 12))):
        start = t_admit + draw(st.integers(-1800, 4 * 3600))
        created = min(t_admit, start) - draw(st.integers(0, 3 * 3600))
        end = start + draw(st.integers(5, 240)) * 60
        meetings.append(
            {
                "name": f"m-{i}",
                "agency": draw(st.sampled_from([a["name"] for a in agencies])),
                "createdAt": rfc3339(T0 + timedelta(seconds=created)),
                "start": rfc3339(T0 + timedelta(seconds=start)),
                "end": rfc3339(T0 + timedelta(seconds=end)),
                "participants": draw(st.integers(1, 400) | st.integers(301, 700)),
                "confidential": draw(st.integers(0, 5)) == 0,
                "priorityClass": draw(st.sampled_from(["normal", "normal", *PRIORITIES])),
                "actual": {"participants": 0},
            }
        )
    trace = {
        "name": "differential",
        "start": rfc3339(T0),
        "end": rfc3339(T0 + timedelta(days=2)),
        "pool": pool,
        "confidentialPool": {**pool, "minBridges": 0},
        "agencies": agencies,
        "meetings": meetings,
    }
    bridges = []
    for i in range(draw(st.integers(0, 6))):
        ready = draw(st.booleans())
        draining = draw(st.booleans())
        load = draw(st.integers(0, 400))
        bridges.append(
            {
                "name": f"jvb-{i}",
                "created_s": draw(st.integers(-3600, t_admit)),
                "ready": ready,
                "draining": draining,
                "drain_since_s": t_admit - draw(st.integers(0, 3600)) if draining else None,
                "held": not draining and draw(st.integers(0, 4)) == 0,
                "load": load if ready else 0,
                "conferences": draw(st.integers(0, 8)) if ready else 0,
            }
        )
    shared = [i for i, m in enumerate(meetings) if not m["confidential"]]
    for b in bridges:  # the shared pool's; what each ready one's GET /debug lists
        b["conferences_of"] = (
            {
                draw(st.sampled_from(shared)): draw(st.integers(1, 150))
                for _ in range(draw(st.integers(0, 3)))
            }
            if b["ready"] and shared
            else {}
        )
    t_scale = t_admit + draw(st.integers(0, 40)) * 15
    return World(trace, bridges, t_admit, t_scale)


# ----------------------------------------------------------------------------- live side


def live_records(world: World) -> tuple[list[MeetingRecord], list[QuotaRecord]]:
    meetings = []
    for i, m in enumerate(world.trace["meetings"]):
        spec = {k: m[k] for k in ("start", "end", "participants", "confidential", "priorityClass")}
        body = {
            "metadata": {
                "namespace": m["agency"],
                "name": m["name"],
                "uid": f"uid-{i}",
                "generation": 1,
                "creationTimestamp": m["createdAt"],
            },
            "spec": {"title": m["name"], **spec},
        }
        meetings.append(MeetingRecord.from_body(body))
    specs = trace_specs(parse_trace(world.trace))
    quotas = [
        QuotaRecord.from_body(
            {"metadata": {"name": name, "uid": name}, "spec": spec.model_dump(by_alias=True)}
        )
        for name, spec in specs.quotas.items()
    ]
    return meetings, quotas


def live_admission(world: World) -> tuple[list[AdmissionInputs], list[MeetingRecord]]:
    """Each pool's admission pass, the shared pool's first (as the simulator steps them):
    the confidential pool's counts the shared pool's reservations against the quotas."""
    trace = parse_trace(world.trace)
    records, quotas = live_records(world)
    labels = {a["name"]: {AGENCY_LABEL: a["name"]} for a in world.trace["agencies"]}
    now = T0 + timedelta(seconds=world.t_admit)
    inputs = []
    for part in split_pools(trace).parts:
        spec = trace_specs(part.demand.trace).pool
        spec = spec.model_copy(update={"confidential": part.name == "confidential"})
        mine = [records[i] for i in part.indexes]
        others = [r for i, r in enumerate(records) if i not in set(part.indexes)]
        result = plan_pool(
            part.name, spec, mine, quotas, labels, trace_specs(trace).pre_join_margin, now,
            elsewhere=others,
        )  # fmt: skip
        assert result.inputs is not None
        inputs.append(result.inputs)
        decided = {c.record.key: c.status for c in result.changes}
        records = [replace(r, status=decided.get(r.key, r.status)) for r in records]
    return inputs, records


def live_scale(world: World, records: list[MeetingRecord]) -> ScaleInputs:
    """The shared pool's scaling pass (its Meetings: those that are not confidential)."""
    records = [r for r in records if r.spec is not None and not r.spec.confidential]
    specs = trace_specs(parse_trace(world.trace))
    now = T0 + timedelta(seconds=world.t_scale)
    pods = [
        PodRecord(
            namespace="meetscale-system",
            name=b["name"],
            uid=b["name"],
            pool=POOL_NAME,
            created=T0 + timedelta(seconds=b["created_s"]),
            ip="127.1.0.1",
            running=True,
            ready=b["ready"],
            draining=b["draining"],
            drain_started=(
                None if b["drain_since_s"] is None else T0 + timedelta(seconds=b["drain_since_s"])
            ),
            held=b["held"],
        )
        for b in world.bridges
    ]
    ready = [b for b in world.bridges if b["ready"]]
    ppb = specs.pool.participants_per_bridge
    answers = Metrics(
        PromValues({b["name"]: b["load"] / ppb for b in ready}),
        PromValues({b["name"]: float(b["load"]) for b in ready}),
        PromValues({b["name"]: float(b["conferences"]) for b in ready}),
        PromValues({b["name"]: float(b["draining"] or b["held"]) for b in ready}),
    )
    if not ready:  # the live scaler does not ask Prometheus without a ready bridge
        answers = skipped("NoBridges", "no ready bridge to measure")
    params = pool_params(specs.pool, specs.pre_join_margin)
    bridges, _ = bridge_states(pods, answers, [], now)
    meetings = world.trace["meetings"]
    seen = {
        b["name"]: {f"{meetings[m]['agency']}-{meetings[m]['name']}": n for m, n in confs.items()}
        for b in world.bridges
        if b["ready"] and (confs := b["conferences_of"]) is not None
    }
    debug = ConferenceFacts(seen=seen, asked=frozenset(seen))
    return live_scale_inputs(params, bridges, records, now, answers.ok, debug)


# ----------------------------------------------------------------------------- simulator


def observation(world: World, t: int, new: list[int], own: dict[int, int]) -> Observation:
    """What a pool's policy sees (``own``: trace index -> the pool's meeting index)."""
    ppb = world.trace["pool"]["participantsPerBridge"]
    pods = [
        BridgePod(
            b["name"],
            float(b["created_s"]),
            b["ready"],
            b["draining"],
            b["drain_since_s"],
            b["held"],
        )
        for b in world.bridges
    ]
    scrape = [
        BridgeSample(b["name"], b["load"] / ppb, b["load"], b["conferences"], b["draining"])
        for b in world.bridges
        if b["ready"]
    ]
    confs = {
        b["name"]: {own[m]: n for m, n in b["conferences_of"].items() if m in own}
        for b in world.bridges
        if b["ready"]
    }
    return Observation(
        tick=t // 15,
        t=float(t),
        now=T0 + timedelta(seconds=t),
        bridges=pods,
        metrics=scrape,
        metrics_age_s=30.0 if scrape else None,
        new_meetings=new,
        ended_meetings=(),
        changed=True,
        conferences=lambda: confs,
    )


def simulated(world: World) -> tuple[list[AdmissionInputs | None], ScaleInputs]:
    """The operator policy of each pool, linked as the simulator runs them; the scaling
    inputs of the shared pool (the world's bridges are its)."""
    trace = parse_trace(world.trace)
    split = split_pools(trace)
    policies = [OperatorPolicy(OperatorOptions(prune_holders=False)) for _ in split.parts]
    policies[0].link_pools(policies)
    admissions: list[AdmissionInputs | None] = []
    for part, policy in zip(split.parts, policies, strict=True):
        policy.begin(SimContext(trace=part.demand.trace, demand=part.demand, start=trace.start))
    for part, policy in zip(split.parts, policies, strict=True):
        own = {i: j for j, i in enumerate(part.indexes)}
        policy.step(observation(world, world.t_admit, list(own.values()), own))
        admissions.append(policy.last_admission)
    shared = split.parts[0]
    own = {i: j for j, i in enumerate(shared.indexes)}
    return admissions, policies[0].scale_inputs(observation(world, world.t_scale, [], own))


# ----------------------------------------------------------------------------- the test


def assert_same_admission(live: AdmissionInputs, sim: AdmissionInputs) -> None:
    assert [r.key for r in live.requests] == [r.key for r in sim.requests]
    for a, b in zip(live.requests, sim.requests, strict=True):
        assert a == b, a.key
    assert live.quotas == sim.quotas
    assert (live.pool, live.now) == (sim.pool, sim.now)


def assert_same_scaling(live: ScaleInputs, sim: ScaleInputs) -> None:
    assert live.params == sim.params
    assert live.bridges == sim.bridges
    assert live.booked == sim.booked
    assert live.now == sim.now
    assert live.adhoc_rate == pytest.approx(sim.adhoc_rate)
    assert live.metrics_ok == sim.metrics_ok


def _short_lead_world() -> World:
    """A lead time (0 s) shorter than a bridge's start-up (120 s): the booked term counts a
    meeting from its first join minus the start-up, before the lead time (a case the
    simulator's window once entered too late)."""
    pool = {
        "participantsPerBridge": 100, "minBridges": 0, "maxBridges": 1,
        "bridgeStartupSeconds": 120, "leadTimeSeconds": 0, "targetStress": 0.5,
        "preJoinMarginSeconds": 1200, "drainTimeoutSeconds": 600,
    }  # fmt: skip
    agency = {
        "name": "agency-1", "priority": 0, "weight": 1, "maxConcurrentParticipants": 1,
        "maxConcurrentMeetings": 1, "maxMeetingParticipants": 50, "maxPriorityClass": "high",
        "cohort": "shared",
    }  # fmt: skip
    meeting = {
        "name": "m-0", "agency": "agency-1", "createdAt": "2026-12-07T00:15:00Z",
        "start": "2026-12-07T00:35:01Z", "end": "2026-12-07T00:40:01Z", "participants": 1,
        "confidential": False, "priorityClass": "normal", "actual": {"participants": 0},
    }  # fmt: skip
    trace = {
        "name": "differential", "start": "2026-12-07T00:00:00Z", "end": "2026-12-09T00:00:00Z",
        "pool": pool, "confidentialPool": dict(pool), "agencies": [agency], "meetings": [meeting],
    }  # fmt: skip
    return World(trace=trace, bridges=[], t_admit=900, t_scale=900)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(worlds())
@example(_short_lead_world())
def test_live_operator_and_simulator_hand_the_core_the_same_inputs(world: World) -> None:
    live_admit, records = live_admission(world)
    sim_admit, sim_scale = simulated(world)
    assert len(live_admit) == len(sim_admit) == 2
    for live, sim in zip(live_admit, sim_admit, strict=True):
        if sim is None:  # a pool without Meetings: the simulator has nothing to decide
            assert all(r.elsewhere for r in live.requests)
            continue
        assert_same_admission(live, sim)
    phases = {r.key: r.phase for r in records}
    assert set(phases.values()) <= {Phase.ADMITTED, Phase.QUEUED, Phase.REJECTED, "Pending"}
    assert_same_scaling(live_scale(world, records), sim_scale)
