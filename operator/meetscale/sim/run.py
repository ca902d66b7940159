"""Run several policies over one trace (the demand is computed once and shared)."""

from __future__ import annotations

from collections.abc import Sequence

from meetscale.sim.demand import Demand, build_demand
from meetscale.sim.engine import PolicyResult, ProgressFn, oracle_bridge_hours, run_policy
from meetscale.sim.policies import make_policy
from meetscale.sim.trace import Trace

__all__ = ["hpa_at_cost", "simulate"]


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


def hpa_at_cost(
    trace: Trace | Demand,
    bridge_hours: float,
    *,
    start: float = 0.7,
    step: float = 0.05,
    lowest: float = 0.1,
) -> PolicyResult | None:
    """The HPA baseline as an IT centre would tune it to spend at least `bridge_hours`:
    the highest target stress (`start`, `start - step`, ... down to `lowest`) whose
    bridge-hours reach `bridge_hours`, so that another policy can be compared with it at
    equal or lower cost. None when even `lowest` spends less."""
    demand = trace if isinstance(trace, Demand) else build_demand(trace)
    oracle_hours = oracle_bridge_hours(demand)
    steps = round((start - lowest) / step)
    for i in range(steps + 1):
        target = round(start - i * step, 4)
        result = run_policy(
            demand,
            make_policy(f"hpa@{target:g}"),
            oracle_hours=oracle_hours,
            record_series=False,
        )
        if result.bridge_hours >= bridge_hours:
            return result
    return None
