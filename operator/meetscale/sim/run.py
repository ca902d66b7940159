"""Run several policies over one trace (the demand of each pool is computed once)."""

from __future__ import annotations

from collections.abc import Sequence

from meetscale.sim.demand import Demand
from meetscale.sim.engine import PolicyResult, ProgressFn
from meetscale.sim.policies import make_policy
from meetscale.sim.policy import Policy
from meetscale.sim.pools import Split, run_pools, split_pools
from meetscale.sim.trace import Trace

__all__ = ["hpa_at_cost", "policies_for", "simulate"]


def policies_for(split: Split, name: str, *, hpa_target: float = 0.7) -> list[Policy]:
    """One fresh policy per pool; those that share state across pools are linked (the
    operator's quotas hold across every pool)."""
    policies = [make_policy(name, hpa_target=hpa_target) for _ in split.parts]
    link = getattr(policies[0], "link_pools", None)
    if link is not None:
        link(policies)
    return policies


def simulate(
    trace: Trace | Demand | Split,
    policies: Sequence[str],
    *,
    hpa_target: float = 0.7,
    progress: ProgressFn | None = None,
    record_series: bool = True,
) -> list[PolicyResult]:
    """One result per policy name, in order (see `meetscale.sim.policies.make_policy`)."""
    split = trace if isinstance(trace, Split) else split_pools(trace)
    return [
        run_pools(
            split,
            policies_for(split, name, hpa_target=hpa_target),
            progress=progress,
            record_series=record_series,
        )
        for name in policies
    ]


def hpa_at_cost(
    trace: Trace | Demand | Split,
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
    split = trace if isinstance(trace, Split) else split_pools(trace)
    steps = round((start - lowest) / step)
    for i in range(steps + 1):
        target = round(start - i * step, 4)
        result = run_pools(split, policies_for(split, f"hpa@{target:g}"), record_series=False)
        if result.bridge_hours >= bridge_hours:
            return result
    return None
