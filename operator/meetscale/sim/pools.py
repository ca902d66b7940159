"""A trace's pools, run side by side: the shared pool and, when the trace gives one
(`confidentialPool`), the confidential pool.

Confidential meetings run on the confidential pool under every policy, and the others on
the shared pool, as the live operator routes them. A trace without a confidential pool
has its confidential meetings refused at apply time, for every policy alike (the
operator's webhook refuses them; the same world for all): their attendance counts as
denied. Each pool is its own world (bridges, conferences) with its own policy instance;
the pools are stepped tick by tick together, so that policies that share state across
pools (the operator's quotas, which hold across every pool) see each other as the live
operator's loops do. The result of a policy is the sum over the pools, with each pool's
own result kept beside it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from meetscale.sim.demand import Demand, build_demand
from meetscale.sim.engine import (
    AgencyFigures,
    PolicyResult,
    ProgressFn,
    Run,
    oracle_bridge_hours,
    oracle_targets,
)
from meetscale.sim.policy import Policy
from meetscale.sim.trace import Trace

__all__ = ["PoolPart", "Split", "merge_results", "oracle_series", "run_pools", "split_pools"]

SHARED, CONFIDENTIAL = "shared", "confidential"


@dataclass(frozen=True)
class PoolPart:
    """One pool of a trace: its demand (its meetings only) and, for each of them, the
    index of the meeting in the trace."""

    name: str
    demand: Demand
    indexes: list[int]


@dataclass(frozen=True)
class Split:
    parts: list[PoolPart]
    refused: Demand | None = None  # confidential meetings without a confidential pool
    refused_indexes: list[int] = field(default_factory=list)
    n_meetings: int = 0

    @property
    def single(self) -> bool:
        """One pool holding every meeting: run as it is."""
        return len(self.parts) == 1 and self.refused is None


def _part(trace: Trace, name: str, keep: Callable[[bool], bool], conf: bool) -> PoolPart | None:
    pool = trace.confidential_pool if conf else trace.pool
    indexes = [i for i, m in enumerate(trace.meetings) if keep(m.confidential)]
    if pool is None:
        return None
    sub = trace.model_copy(
        update={
            "pool": pool,
            "confidential_pool": None,
            "meetings": [trace.meetings[i] for i in indexes],
        }
    )
    return PoolPart(name, build_demand(sub), indexes)


def split_pools(trace: Trace | Demand) -> Split:
    """The trace's pools (a Demand of a trace with one pool is used as it is)."""
    demand = trace if isinstance(trace, Demand) else None
    t = demand.trace if demand is not None else trace
    assert isinstance(t, Trace)
    n = len(t.meetings)
    has_conf = any(m.confidential for m in t.meetings)
    if not has_conf and t.confidential_pool is None:
        whole = demand if demand is not None else build_demand(t)
        return Split([PoolPart(SHARED, whole, list(range(n)))], n_meetings=n)
    shared = _part(t, SHARED, lambda c: not c, conf=False)
    assert shared is not None
    parts = [shared]
    conf = _part(t, CONFIDENTIAL, lambda c: c, conf=True)
    if conf is not None:
        parts.append(conf)
        return Split(parts, n_meetings=n)
    refused_idx = [i for i, m in enumerate(t.meetings) if m.confidential]
    refused = build_demand(t.model_copy(update={"meetings": [t.meetings[i] for i in refused_idx]}))
    return Split(parts, refused, refused_idx, n)


def run_pools(
    split: Split,
    policies: Sequence[Policy],
    *,
    progress: ProgressFn | None = None,
    record_series: bool = True,
    label: str = "",
) -> PolicyResult:
    """One policy over every pool (``policies``: one instance per part, in order)."""
    wall0 = time.perf_counter()
    runs = [Run(p.demand, pol, record_series) for p, pol in zip(split.parts, policies, strict=True)]
    n_ticks = split.parts[0].demand.n_ticks
    every = max(1, n_ticks // 100)
    name = label or policies[0].name
    for k in range(n_ticks):
        for run in runs:
            run.step(k)
        if progress is not None and k % every == 0:
            progress(name, k, n_ticks)
    if progress is not None:
        progress(name, n_ticks, n_ticks)
    results = [
        run.result(oracle_bridge_hours(p.demand), wall0)
        for run, p in zip(runs, split.parts, strict=True)
    ]
    return merge_results(split, results, time.perf_counter() - wall0)


def _refused_minutes(split: Split) -> tuple[list[float], dict[str, float]]:
    """Per refused meeting, and per agency, the participant-minutes that were denied."""
    demand = split.refused
    if demand is None:
        return [], {}
    dtm = demand.tick / 60.0
    per_meeting = [m.ticks_between(0, demand.n_ticks) * dtm for m in demand.meetings]
    per_agency: dict[str, float] = {}
    for m, minutes in zip(demand.meetings, per_meeting, strict=True):
        per_agency[m.agency] = per_agency.get(m.agency, 0.0) + minutes
    return per_meeting, per_agency


def _summed(series: Sequence[Sequence[int]]) -> list[int]:
    return [sum(v) for v in zip(*series, strict=True)] if series else []


def merge_results(split: Split, results: Sequence[PolicyResult], seconds: float) -> PolicyResult:
    """The policy's result over the whole trace: sums over the pools, the refused
    meetings' attendance as denied, each meeting's figures at its trace index."""
    if split.single:
        return replace(results[0], seconds=seconds)
    refused, refused_agency = _refused_minutes(split)
    per_agency: dict[str, AgencyFigures] = {}
    degraded = [0.0] * split.n_meetings
    denied = [0.0] * split.n_meetings
    for part, r in zip(split.parts, results, strict=True):
        for name, f in r.per_agency.items():
            total = per_agency.setdefault(name, AgencyFigures())
            total.served += f.served
            total.degraded += f.degraded
            total.denied += f.denied
        for j, i in enumerate(part.indexes):
            degraded[i] = r.degraded_by_meeting[j]
            denied[i] = r.denied_by_meeting[j]
    for name, minutes in refused_agency.items():
        per_agency.setdefault(name, AgencyFigures()).denied += minutes
    for j, i in enumerate(split.refused_indexes):
        denied[i] = refused[j]
    bridges = _summed([r.series_bridges for r in results])
    first = results[0]
    return PolicyResult(
        policy=first.policy,
        bridge_hours=sum(r.bridge_hours for r in results),
        oracle_bridge_hours=sum(r.oracle_bridge_hours for r in results),
        served_participant_minutes=sum(r.served_participant_minutes for r in results),
        degraded_participant_minutes=sum(r.degraded_participant_minutes for r in results),
        denied_participant_minutes=sum(r.denied_participant_minutes for r in results)
        + sum(refused),
        cut_participants=sum(r.cut_participants for r in results),
        meetings_admitted=sum(r.meetings_admitted for r in results),
        meetings_queued=sum(r.meetings_queued for r in results),
        meetings_rejected=sum(r.meetings_rejected for r in results) + len(refused),
        peak_bridges=max(bridges, default=0),
        scale_events=sum(r.scale_events for r in results),
        per_agency=per_agency,
        degraded_booked_minutes=sum(r.degraded_booked_minutes for r in results),
        degraded_by_meeting=degraded,
        denied_by_meeting=denied,
        series_t=first.series_t,
        series_participants=_summed([r.series_participants for r in results]),
        series_bridges=bridges,
        series_ready=_summed([r.series_ready for r in results]),
        series_degraded=_summed([r.series_degraded for r in results]),
        seconds=seconds,
        pools={p.name: r for p, r in zip(split.parts, results, strict=True)},
    )


def oracle_series(split: Split) -> list[int]:
    """The oracle's bridges at each tick, summed over the pools."""
    return _summed([oracle_targets(p.demand) for p in split.parts])
