"""Run one policy over a trace: the tick loop, admission bookkeeping and the result."""

from __future__ import annotations

import math
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from meetscale.sim.demand import Demand
from meetscale.sim.policy import (
    SCRAPE_LAG_SECONDS,
    SCRAPE_SECONDS,
    Actions,
    BridgeSample,
    Observation,
    Policy,
    SimContext,
)
from meetscale.sim.world import World

__all__ = [
    "AgencyFigures",
    "PolicyResult",
    "ProgressFn",
    "Run",
    "oracle_bridge_hours",
    "run_policy",
]

ProgressFn = Callable[[str, int, int], None]

# meeting status codes
_PENDING, _ADMITTED, _QUEUED, _REJECTED = 0, 1, 2, 3


@dataclass
class AgencyFigures:
    served: float = 0.0
    degraded: float = 0.0
    denied: float = 0.0


@dataclass
class PolicyResult:
    """Everything one policy run measured. `to_json` gives the contract's fields only."""

    policy: str
    bridge_hours: float
    oracle_bridge_hours: float
    served_participant_minutes: float
    degraded_participant_minutes: float
    denied_participant_minutes: float
    cut_participants: int
    meetings_admitted: int
    meetings_queued: int
    meetings_rejected: int
    peak_bridges: int
    scale_events: int
    per_agency: dict[str, AgencyFigures]
    # extras, not in the JSON contract
    degraded_booked_minutes: float = 0.0  # of meetings booked >= lead time ahead
    degraded_by_meeting: list[float] = field(default_factory=list)
    denied_by_meeting: list[float] = field(default_factory=list)
    series_t: list[float] = field(default_factory=list)  # hours from trace start
    series_participants: list[int] = field(default_factory=list)
    series_bridges: list[int] = field(default_factory=list)  # kept without record_series too
    series_ready: list[int] = field(default_factory=list)
    series_degraded: list[int] = field(default_factory=list)
    seconds: float = 0.0  # wall time of the run
    pools: dict[str, PolicyResult] = field(default_factory=dict)  # each pool's own (see pools)

    @property
    def cost_ratio(self) -> float:
        if self.oracle_bridge_hours <= 0:
            return 0.0 if self.bridge_hours <= 0 else math.inf
        return self.bridge_hours / self.oracle_bridge_hours

    @property
    def degraded_share(self) -> float:
        if self.served_participant_minutes <= 0:
            return 0.0
        return self.degraded_participant_minutes / self.served_participant_minutes

    def to_json(self) -> dict[str, object]:
        return {
            "policy": self.policy,
            "bridge_hours": round(self.bridge_hours, 3),
            "oracle_bridge_hours": round(self.oracle_bridge_hours, 3),
            "cost_ratio": round(self.cost_ratio, 4),
            "served_participant_minutes": round(self.served_participant_minutes, 2),
            "degraded_participant_minutes": round(self.degraded_participant_minutes, 2),
            "degraded_share": round(self.degraded_share, 6),
            "denied_participant_minutes": round(self.denied_participant_minutes, 2),
            "cut_participants": self.cut_participants,
            "meetings_admitted": self.meetings_admitted,
            "meetings_queued": self.meetings_queued,
            "meetings_rejected": self.meetings_rejected,
            "peak_bridges": self.peak_bridges,
            "scale_events": self.scale_events,
            "per_agency": {
                name: {
                    "served": round(f.served, 2),
                    "degraded": round(f.degraded, 2),
                    "denied": round(f.denied, 2),
                }
                for name, f in sorted(self.per_agency.items())
            },
            **({"pools": {k: r.to_json() for k, r in self.pools.items()}} if self.pools else {}),
        }


def oracle_targets(demand: Demand) -> list[int]:
    """Bridges the oracle runs at each tick:
    ``clamp(ceil(P_shared / cap) + sum over confidential c of ceil(P_c / cap), min, max)``."""
    pool = demand.trace.pool
    cap = pool.participants_per_bridge
    conf_bridges = 0
    conf_count: dict[int, int] = {}
    out: list[int] = []
    meetings = demand.meetings
    for k in range(demand.n_ticks):
        for m, c in demand.events.get(k, ()):
            if meetings[m].confidential:
                old = conf_count.get(m, 0)
                conf_bridges += -(-c // cap) - (-(-old // cap))
                conf_count[m] = c
        raw = -(-demand.shared_series[k] // cap) + conf_bridges
        out.append(min(max(raw, pool.min_bridges), pool.max_bridges))
    return out


def oracle_bridge_hours(demand: Demand) -> float:
    return sum(oracle_targets(demand)) * demand.tick / 3600.0


def stderr_progress(label: str, done: int, total: int) -> None:
    """Progress on stderr: a live percentage on a terminal, a line per quarter otherwise."""
    pct = 100.0 * done / total if total else 100.0
    if sys.stderr.isatty():
        end = "\n" if done >= total else ""
        sys.stderr.write(f"\r  {label}: {pct:5.1f}%{end}")
    else:
        step = max(1, total // 4)
        if done % step != 0 and done < total:
            return
        if done >= total or (done // step) * step == done:
            sys.stderr.write(f"  {label}: {pct:5.1f}%\n")
    sys.stderr.flush()


class Run:
    """The state of one policy run: the world, the meetings' admission record and what is
    measured tick by tick."""

    def __init__(self, demand: Demand, policy: Policy, record_series: bool) -> None:
        trace = demand.trace
        pool = trace.pool
        self.demand = demand
        self.policy = policy
        self.meetings = demand.meetings
        n = len(self.meetings)
        tick = demand.tick
        self.world = World(
            n_meetings=n,
            confidential=[m.confidential for m in self.meetings],
            ppb=pool.participants_per_bridge,
            tick_seconds=tick,
            startup_ticks=math.ceil(pool.bridge_startup_seconds / tick),
            drain_timeout_ticks=math.ceil(pool.drain_timeout_seconds / tick),
            pinned=pool.placement == "Pinned",
        )
        # the pool exists before the window opens: minBridges ready bridges
        self.world.add_bridges(pool.min_bridges, 0, ready_now=True)
        policy.begin(SimContext(trace=trace, demand=demand, start=trace.start))
        self.removes_drained = getattr(policy, "removes_drained", False)
        self.status = bytearray(n)  # _PENDING ...
        self.since = [0] * n  # tick of the last status change
        self.served = [0] * n  # participant-ticks
        self.denied = [0] * n
        self.ever_queued = bytearray(n)
        self.ever_admitted = bytearray(n)
        self.ever_rejected = bytearray(n)
        self.scrapes: deque[tuple[float, list[BridgeSample]]] = deque()
        self.bridge_ticks = 0
        self.peak = 0
        self.scale_events = 0
        self.record_series = record_series
        self.series: tuple[list[float], list[int], list[int], list[int], list[int]] = (
            [],
            [],
            [],
            [],
            [],
        )
        self.ended: list[int] = []
        # the tick each meeting appears (its createdAt); never, if after the window
        self.visible_at = [demand.n_ticks] * n
        for tick, ms in demand.visible.items():
            for m in ms:
                self.visible_at[m] = tick
        self.early: set[int] = set()  # admitted by the policy before they appeared

    def step(self, k: int) -> None:
        """One tick: bridges come up, the policy acts on what it sees, the world moves."""
        self.world.make_ready(k)
        for m in self.demand.visible.get(k, ()):
            if m in self.early:  # admitted before it existed: from now on
                self.early.discard(m)
                self._admit(m, k)
        act: Actions = self.policy.step(self.observe(k))
        self.admission(act, k)
        self.scaling(act, k)
        self.move(k)

    def settle(self, m: int, k: int) -> None:
        amount = self.meetings[m].ticks_between(self.since[m], k)
        if self.status[m] == _ADMITTED:
            self.served[m] += amount
        else:
            self.denied[m] += amount
        self.since[m] = k

    def observe(self, k: int) -> Observation:
        """What the policy sees at tick k: the live inventory and the lagged scrape."""
        t = k * self.demand.tick
        scrapes = self.scrapes
        # The newest scrape taken before this tick: the world as it was one scrape
        # interval ago, the oldest a live query can answer with (0 to 15 s live).
        lag = SCRAPE_LAG_SECONDS
        while len(scrapes) >= 2 and scrapes[1][0] <= t - lag:
            scrapes.popleft()
        if scrapes and scrapes[0][0] <= t - lag:
            metrics: Sequence[BridgeSample] = scrapes[0][1]
            age: float | None = t - scrapes[0][0]
        else:
            metrics, age = (), None
        world = self.world
        obs = Observation(
            tick=k,
            t=float(t),
            now=self.demand.trace.start + timedelta(seconds=t),
            bridges=world.inventory(),
            metrics=metrics,
            metrics_age_s=age,
            new_meetings=self.demand.visible.get(k, ()),
            ended_meetings=self.ended,
            changed=world.changed,
            draining_loads={b.name: b.load for b in world.draining},
            conferences=world.conferences,
        )
        world.changed = False
        return obs

    def _admit(self, m: int, k: int) -> None:
        if self.status[m] != _ADMITTED:
            self.settle(m, k)
            self.status[m] = _ADMITTED
            self.ever_admitted[m] = 1
            self.world.admit(m)

    def admission(self, act: Actions, k: int) -> None:
        """The policy's decisions. The same world for every policy: a Meeting exists from
        its `createdAt`, so one admitted before (the baselines admit every meeting at
        once) is admitted when it appears; who joins before that is denied under every
        policy alike (early joiners of a last-minute booking)."""
        status = self.status
        for m in act.admit:
            if k < self.visible_at[m]:
                self.early.add(m)
            else:
                self._admit(m, k)
        for m in act.queue:
            if status[m] == _PENDING or status[m] == _QUEUED:
                self.settle(m, k)
                status[m] = _QUEUED
                self.ever_queued[m] = 1
        for m in act.reject:
            if status[m] != _ADMITTED and status[m] != _REJECTED:
                self.settle(m, k)
                status[m] = _REJECTED
                self.ever_rejected[m] = 1

    def scaling(self, act: Actions, k: int) -> None:
        world = self.world
        if act.pins is not None:
            world.set_pins(act.pins)
        if not act.scales():
            return
        self.scale_events += 1
        if act.add:
            world.add_bridges(act.add, k, releases=act.add_groups)
        for name in act.drain:
            world.drain(name, k)
        for name in act.remove:
            world.remove(name)
        for name in act.migrate:
            world.remove(name, migrate=True)
        for name in act.undrain:
            world.undrain(name)
        for name in act.hold:
            world.hold(name, True)
        for name in act.release:
            world.hold(name, False)

    def move(self, k: int) -> None:
        """The world moves: attendance changes, waiting conferences placed, drains settled
        (unless the policy removes drained bridges itself), and this tick accounted."""
        world = self.world
        self.ended = []
        for m, c in self.demand.events.get(k, ()):
            world.set_count(m, c)
            if c == 0 and self.status[m] == _ADMITTED:
                self.ended.append(m)
        if world.waiting:
            world.place_waiting()
        if not self.removes_drained:
            world.settle_drains(k)
        nb = len(world.bridges)
        self.bridge_ticks += nb
        self.peak = max(self.peak, nb)
        deg = world.account()
        t = k * self.demand.tick
        ser_t, ser_p, ser_b, ser_r, ser_d = self.series
        ser_b.append(nb)  # always: the peak of several pools side by side is their sum's
        if self.record_series:
            ser_t.append(t / 3600.0)
            ser_p.append(world.admitted_participants)
            ser_r.append(sum(1 for b in world.bridges.values() if b.ready))
            ser_d.append(deg)
        if t % SCRAPE_SECONDS == 0:
            self.scrapes.append((float(t), world.samples()))

    def result(self, oracle_hours: float | None, wall0: float) -> PolicyResult:
        demand, world = self.demand, self.world
        tick = demand.tick
        n = len(self.meetings)
        for m in range(n):
            self.settle(m, demand.n_ticks)
        dtm = tick / 60.0
        agencies = demand.trace.agencies
        per_agency: dict[str, AgencyFigures] = {a.name: AgencyFigures() for a in agencies}
        lead = demand.trace.pool.lead_time_seconds
        deg_booked = 0
        for m, info in enumerate(self.meetings):
            f = per_agency[info.agency]
            f.served += self.served[m] * dtm
            f.degraded += world.degraded[m] * dtm
            f.denied += self.denied[m] * dtm
            if info.lead_seconds >= lead:
                deg_booked += world.degraded[m]
        if oracle_hours is None:
            oracle_hours = oracle_bridge_hours(demand)
        admitted, rejected = self.ever_admitted, self.ever_rejected
        ser_t, ser_p, ser_b, ser_r, ser_d = self.series
        return PolicyResult(
            policy=self.policy.name,
            bridge_hours=self.bridge_ticks * tick / 3600.0,
            oracle_bridge_hours=oracle_hours,
            served_participant_minutes=sum(self.served) * dtm,
            degraded_participant_minutes=sum(world.degraded) * dtm,
            denied_participant_minutes=sum(self.denied) * dtm,
            cut_participants=world.cut_total,
            meetings_admitted=sum(admitted),
            meetings_queued=sum(self.ever_queued),
            meetings_rejected=sum(1 for m in range(n) if rejected[m] and not admitted[m]),
            peak_bridges=self.peak,
            scale_events=self.scale_events,
            per_agency=per_agency,
            degraded_booked_minutes=deg_booked * dtm,
            degraded_by_meeting=[d * dtm for d in world.degraded],
            denied_by_meeting=[d * dtm for d in self.denied],
            series_t=ser_t,
            series_participants=ser_p,
            series_bridges=ser_b,
            series_ready=ser_r,
            series_degraded=ser_d,
            seconds=time.perf_counter() - wall0,
        )


def run_policy(
    demand: Demand,
    policy: Policy,
    *,
    oracle_hours: float | None = None,
    progress: ProgressFn | None = None,
    record_series: bool = True,
) -> PolicyResult:
    """Simulate `policy` over the trace behind `demand`."""
    wall0 = time.perf_counter()
    run = Run(demand, policy, record_series)
    n_ticks = demand.n_ticks
    every = max(1, n_ticks // 100)
    for k in range(n_ticks):
        run.step(k)
        if progress is not None and (k % every == 0):
            progress(policy.name, k, n_ticks)
    if progress is not None:
        progress(policy.name, n_ticks, n_ticks)
    return run.result(oracle_hours, wall0)
