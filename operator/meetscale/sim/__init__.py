"""Capacity simulator: replay a meeting trace against the operator's own decision code and
three baselines (`hpa`, `threshold`, `oracle`) in one model of the world.

Not part of the pure core: it reads files, draws plots and uses seeded randomness. The
`operator` policy calls `meetscale.decide` unchanged. See docs/simulator.md.
"""

from meetscale.sim.demand import Demand, build_demand, participants_at
from meetscale.sim.engine import PolicyResult, oracle_bridge_hours, run_policy
from meetscale.sim.run import simulate
from meetscale.sim.trace import Trace, TraceError, load_trace, parse_trace

__all__ = [
    "Demand",
    "PolicyResult",
    "Trace",
    "TraceError",
    "build_demand",
    "load_trace",
    "oracle_bridge_hours",
    "parse_trace",
    "participants_at",
    "run_policy",
    "simulate",
]
