"""`oracle`: the lower bound on cost, with perfect knowledge of actual attendance.

At each tick it runs exactly ``clamp(ceil(P_shared / cap) + sum over confidential
meetings c of ceil(P_c / cap), minBridges, maxBridges)`` bridges: new bridges are ready
at once, and a bridge it gives up is removed with its conferences moved elsewhere
(an idealisation no real system has). It admits every meeting.
"""

from __future__ import annotations

from meetscale.sim.engine import oracle_targets
from meetscale.sim.policy import Actions, Observation, SimContext

__all__ = ["OraclePolicy"]


class OraclePolicy:
    name = "oracle"
    removes_drained = False

    def __init__(self) -> None:
        self._targets: list[int] = []
        self._n = 0

    def begin(self, ctx: SimContext) -> None:
        self._targets = oracle_targets(ctx.demand)
        self._n = len(ctx.demand.meetings)

    def step(self, obs: Observation) -> Actions:
        act = Actions()
        if obs.tick == 0:
            act.admit = list(range(self._n))
        want = self._targets[obs.tick]
        have = len(obs.bridges)
        if want > have:
            act.add = want - have
        elif want < have:
            # give up the emptiest bridges; their conferences move
            load = {s.name: s.participants for s in obs.metrics}
            by_load = sorted(
                obs.bridges, key=lambda b: (b.ready, load.get(b.name, 0), -b.created_s, b.name)
            )
            act.migrate = [b.name for b in by_load[: have - want]]
        return act
