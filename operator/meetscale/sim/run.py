"""Run several policies over one trace (the demand is computed once and shared)."""

from __future__ import annotations

from collections.abc import Sequence

from meetscale.sim.demand import Demand, build_demand
from meetscale.sim.engine import PolicyResult, ProgressFn, oracle_bridge_hours, run_policy
from meetscale.sim.policies import make_policy
from meetscale.sim.trace import Trace

__all__ = ["simulate"]


def simulate(
    trace: Trace | Demand,
    policies: Sequence[str],
    *,
    hpa_target: float = 0.7,
    progress: ProgressFn | None = None,
    record_series: bool = True,
) -> list[PolicyResult]:
    """One result per policy name, in order (see `meetscale.sim.policies.make_policy`)."""
    demand = trace if isinstance(trace, Demand) else build_demand(trace)
    oracle_hours = oracle_bridge_hours(demand)
    return [
        run_policy(
            demand,
            make_policy(name, hpa_target=hpa_target),
            oracle_hours=oracle_hours,
            progress=progress,
            record_series=record_series,
        )
        for name in policies
    ]
