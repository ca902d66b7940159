"""`hpa`: a HorizontalPodAutoscaler on per-bridge stress, as jitsi-helm users run it.

Every 15 s (the HPA's sync period) it runs the operator's own port of the HPA
replica calculator (`meetscale.decide.scale.hpa.hpa_replicas`: 0.1 tolerance, unready
and missing pods treated as upstream does) on the lagged stress of every bridge
pod, then the default `behavior` (`apply_behavior`: 300 s scale-down
stabilization, +100 %/+4 pods per 15 s up, -100 % per 15 s down), between
minBridges and maxBridges. It admits every meeting.

A scale-down deletes pods the way a ReplicaSet picks them (not-ready pods first,
then the most recently started): no drain, so the conferences on a deleted bridge
are cut (counted) and their participants rejoin elsewhere.
"""

from __future__ import annotations

from datetime import timedelta

from meetscale.decide.scale.hpa import BehaviorRules, ScaleHistory, apply_behavior, hpa_replicas
from meetscale.sim.policy import SCRAPE_SECONDS, Actions, Observation, SimContext

__all__ = ["HpaPolicy"]

SYNC_SECONDS = 15


class HpaPolicy:
    removes_drained = False

    def __init__(self, target: float = 0.7, tolerance: float = 0.1) -> None:
        if not 0 < target <= 1:
            raise ValueError(f"HPA target stress must be in (0, 1], got {target}")
        self.target = target
        self.tolerance = tolerance
        self.name = "hpa" if target == 0.7 else f"hpa@{target:g}"
        self.behavior = BehaviorRules()
        # keep only what the windows and periods can read (300 s, 15 s): faster, same answer
        self._horizon = timedelta(
            seconds=max(
                self.behavior.scale_down.stabilization_window_seconds,
                self.behavior.scale_up.stabilization_window_seconds,
                *(p.period_seconds for p in self.behavior.scale_up.policies),
                *(p.period_seconds for p in self.behavior.scale_down.policies),
            )
            + SCRAPE_SECONDS
        )
        self.history = ScaleHistory()
        self._n = 0
        self._min = 0
        self._max = 0

    def begin(self, ctx: SimContext) -> None:
        self._n = len(ctx.demand.meetings)
        self._min = ctx.trace.pool.min_bridges
        self._max = ctx.trace.pool.max_bridges
        self.history = ScaleHistory()

    def step(self, obs: Observation) -> Actions:
        act = Actions()
        if obs.tick == 0:
            act.admit = list(range(self._n))
        if obs.t % SYNC_SECONDS != 0:
            return act
        pods = obs.bridges
        current = len(pods)
        stress = {s.name: s.stress for s in obs.metrics}
        samples = {b.name: stress.get(b.name) for b in pods}
        ready = {b.name: b.ready for b in pods}
        calc = hpa_replicas(current, samples, self.target, self.tolerance, ready)
        if calc.reason == "NoMetrics" and self._min <= current <= self._max:
            # upstream: no metrics, no recommendation and no scaling
            return act
        desired = calc.replicas if calc.reason != "NoMetrics" else current
        beh = apply_behavior(
            current,
            desired,
            min_replicas=self._min,
            max_replicas=self._max,
            behavior=self.behavior,
            history=self.history,
            now=obs.now,
        )
        change = beh.replicas - current
        self.history = self.history.add(
            obs.now,
            None if calc.reason == "NoMetrics" else desired,
            change,
            horizon=self._horizon,
        )
        if change > 0:
            act.add = change
        elif change < 0:
            # ReplicaSet deletion order: not ready before ready, then newest first
            order = sorted(pods, key=lambda b: (b.ready, -b.created_s, b.name))
            act.remove = [b.name for b in order[:-change]]
        return act
