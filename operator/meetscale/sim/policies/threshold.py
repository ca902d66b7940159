"""`threshold`: a jitsi-autoscaler-style rule on average bridge stress.

Every `period_seconds` the average stress of the ready, non-draining bridges over that
period is recorded. When the last `up_periods` periods were all at or above
`up_threshold`, it starts `up_quantity` bridges; otherwise, when the last `down_periods`
were all below `down_threshold`, it gracefully shuts down `down_quantity` bridges (the
least loaded: they drain, then go). After each action it waits `grace_seconds`, and it
does nothing while launched bridges are still starting (jitsi-autoscaler waits for the
launcher). It admits every meeting.

The defaults are jitsi-autoscaler's example JVB group (scalePeriod 60 s, 2 periods up,
4 down, threshold down 0.3) made a little quicker to react, so the baseline is a fair
one: up at 0.7 (the HPA's target) by 2 bridges, grace 300 s instead of 480 s.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from meetscale.sim.policy import Actions, Observation, SimContext

__all__ = ["ThresholdParams", "ThresholdPolicy"]


@dataclass(frozen=True)
class ThresholdParams:
    up_threshold: float = 0.7
    down_threshold: float = 0.3
    period_seconds: int = 60
    up_periods: int = 2
    down_periods: int = 4
    up_quantity: int = 2
    down_quantity: int = 1
    grace_seconds: int = 300


class ThresholdPolicy:
    name = "threshold"
    removes_drained = False

    def __init__(self, params: ThresholdParams | None = None) -> None:
        self.p = params or ThresholdParams()
        self._n = 0
        self._min = 0
        self._max = 0
        self._periods: deque[float] = deque(maxlen=max(self.p.up_periods, self.p.down_periods))
        self._acc = 0.0
        self._samples = 0
        self._period_end = float(self.p.period_seconds)
        self._grace_until = -1.0

    def begin(self, ctx: SimContext) -> None:
        self._n = len(ctx.demand.meetings)
        self._min = ctx.trace.pool.min_bridges
        self._max = ctx.trace.pool.max_bridges

    def step(self, obs: Observation) -> Actions:
        act = Actions()
        if obs.tick == 0:
            act.admit = list(range(self._n))
        active = [b for b in obs.bridges if not b.draining]
        if len(active) < self._min:
            act.add = self._min - len(active)
            return act
        live = [s for s in obs.metrics if not s.draining]
        if live:
            self._acc += sum(s.stress for s in live) / len(live)
            self._samples += 1
        if obs.t < self._period_end:
            return act
        self._period_end += self.p.period_seconds
        if self._samples:
            self._periods.appendleft(self._acc / self._samples)
        self._acc, self._samples = 0.0, 0
        if obs.t < self._grace_until or any(not b.ready for b in active):
            return act
        recent = list(self._periods)
        up = recent[: self.p.up_periods]
        down = recent[: self.p.down_periods]
        count = len(active)
        if (
            len(up) == self.p.up_periods
            and count < self._max
            and all(v >= self.p.up_threshold for v in up)
        ):
            act.add = min(self.p.up_quantity, self._max - count)
            self._grace_until = obs.t + self.p.grace_seconds
        elif (
            len(down) == self.p.down_periods
            and count > self._min
            and all(v < self.p.down_threshold for v in down)
        ):
            n = min(self.p.down_quantity, count - self._min)
            load = {s.name: s.participants for s in obs.metrics}
            ready = sorted(
                (b for b in active if b.ready), key=lambda b: (load.get(b.name, 0), b.name)
            )
            act.drain = [b.name for b in ready[:n]]
            self._grace_until = obs.t + self.p.grace_seconds
        return act
