"""`operator`: the operator's own decision code, unchanged, driven as the live shell drives it.

Admission. Each Meeting exists from its `createdAt`. An admission pass calls
`meetscale.decide.admit.plan.decide_admission` on the open Meetings (Pending and Queued
ones, and the Admitted/Running ones that hold reservations), with `timed_phase` moving
Admitted -> Running -> Finished by the clock, exactly the inputs the live operator
builds (`statuses.plan_pool`). A pass runs when its answer can change: new Meetings
became visible, a Queued meeting's start came (it is then rejected if still blocked),
or, while some meeting is queued, a reservation ended. The live operator re-runs
every 15 s as well; those extra passes give the same answers, since nothing else
changes between them. Two shortcuts, both exact for the decisions (a test checks it):
reservations that cannot overlap any candidate's window are left out of a pass, and
reservations whose end has passed are dropped (they hold nothing).

Participants of a meeting that is not admitted (pending, queued, rejected) are kept out
and counted as denied.

Scaling. Every 15 s `meetscale.decide.scale.plan.decide_scale` gets the pool's parameters
(as `PoolParams.from_spec` builds them: the placement-aware booked term, the drain timeout),
every bridge Pod (live readiness and drain state) with its metrics from the lagged
Prometheus scrape (stress, endpoints, conferences; Prometheus has no per-meeting
counts), the admitted meetings that are running or start within the lead time, the
scale history (`record`), and `adhoc_rate`. A meeting past its declared end stays in
the list as running (its participants are booked ones, not unbooked load) until its
conference closes, at most `OVERRUN_LIMIT_S`: the live operator sees a conference
close in the bridges' conference list (jitsi-videobridge `GET /debug`, which names each
conference's room; there is no `GET /colibri/conferences`) or from Jicofo; here
`Observation.ended_meetings` tells it. It then
starts `plan.new_bridges`, drains `plan.drain` and puts `plan.cancel_drain` back into service.

`adhoc_rate` (unbooked participants expected per minute) is an input the shell
estimates with the core's `meetscale.decide.scale.adhoc.adhoc_rate`, as the live operator
does: the declared participants of the Meetings created less than the lead time before
their start ("ad hoc") that started within the last `adhoc_window_minutes`, per minute.
"""

from __future__ import annotations

import heapq
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta

from meetscale.decide.admit.plan import (
    AgencyQuotaView,
    MeetingRequest,
    PoolCeiling,
    decide_admission,
)
from meetscale.decide.lifecycle import timed_phase
from meetscale.decide.scale.adhoc import Arrival, adhoc_rate
from meetscale.decide.scale.plan import (
    DECLARATION_MARGIN,
    PLACEMENT_STRESS,
    BookedMeeting,
    PoolParams,
    ScaleHistory,
    decide_scale,
    record,
)
from meetscale.decide.scale.removal import BridgeState
from meetscale.models import PRIORITY_VALUES
from meetscale.sim.demand import MeetingInfo
from meetscale.sim.policy import Actions, BridgeSample, Observation, SimContext
from meetscale.sim.policy import BridgeState as SimBridge

__all__ = ["OperatorOptions", "OperatorPolicy"]

SYNC_SECONDS = 15
OVERRUN_LIMIT_S = 1800.0  # a meeting past its end counts as running for at most this long
_BUCKET = 3600  # seconds per bucket of the reservation index


@dataclass(frozen=True)
class OperatorOptions:
    adhoc_window_minutes: float = 30.0  # 0 disables the ad-hoc estimate
    prune_holders: bool = True  # leave out reservations no candidate can overlap
    resync_every_tick: bool = False  # run a pass every tick while any meeting is open (slow)


class OperatorPolicy:
    name = "operator"

    def __init__(self, options: OperatorOptions | None = None) -> None:
        self.opt = options or OperatorOptions()
        self.passes = 0  # admission passes run (for tests and the benchmark)

    # ------------------------------------------------------------------ setup

    def begin(self, ctx: SimContext) -> None:
        trace = ctx.trace
        pool = trace.pool
        self._t0: datetime = ctx.start
        self._infos: list[MeetingInfo] = ctx.demand.meetings
        self._lead = float(pool.lead_time_seconds)
        self._params = PoolParams(
            participants_per_bridge=pool.participants_per_bridge,
            min_bridges=pool.min_bridges,
            max_bridges=pool.max_bridges,
            target_stress=pool.target_stress,
            tolerance=pool.tolerance,
            lead_time=timedelta(seconds=pool.lead_time_seconds),
            protection=timedelta(seconds=pool.protection_seconds),
            placement_stress=PLACEMENT_STRESS,
            declaration_margin=DECLARATION_MARGIN,
            drain_timeout=timedelta(seconds=pool.drain_timeout_seconds),
            early_join=timedelta(seconds=pool.pre_join_margin_seconds),
            hold_large=True,
        )
        self._margin_s = float(pool.pre_join_margin_seconds)
        self._ppb = pool.participants_per_bridge
        self._ceiling = PoolCeiling(
            max_bridges=pool.max_bridges,
            participants_per_bridge=pool.participants_per_bridge,
            pre_join_margin=timedelta(seconds=pool.pre_join_margin_seconds),
        )
        self._quotas = {
            a.name: AgencyQuotaView(
                name=a.name,
                max_concurrent_participants=a.max_concurrent_participants,
                max_concurrent_meetings=a.max_concurrent_meetings,
                max_meeting_participants=a.max_meeting_participants,
                max_meeting_duration=timedelta(minutes=a.max_meeting_duration_minutes),
                max_book_ahead=timedelta(days=a.max_book_ahead_days),
                priority=a.priority,
                weight=a.weight,
                max_priority=PRIORITY_VALUES[a.max_priority_class],
            )
            for a in trace.agencies
        }
        agency_priority = {a.name: a.priority for a in trace.agencies}
        self._spec = trace.meetings
        self._agency_priority = agency_priority
        n = len(self._infos)
        self._phase: list[str | None] = [None] * n
        self._open: set[int] = set()  # Pending or Queued
        self._queued: set[int] = set()
        self._holders: dict[int, set[int]] = {}  # bucket -> admitted meetings overlapping it
        self._holding: set[int] = set()
        self._ends: list[tuple[float, int]] = []  # admitted meetings' declared ends
        self._starts: list[tuple[float, int]] = []  # queued meetings' starts
        # scaling state
        self._history = ScaleHistory()
        self._upcoming: list[tuple[float, int]] = []  # (start - lead, m) admitted, not booked yet
        self._booked: dict[int, BookedMeeting] = {}
        self._running_at: list[tuple[float, int]] = []  # (start, m) booked, not running yet
        self._booked_end: list[tuple[float, int]] = []  # (end, m)
        self._overrun: dict[int, float] = {}  # past their end, conference still open -> until
        self._adhoc: deque[Arrival] = deque()  # ad-hoc meetings seen, by when they appeared
        self._bridge_cache: dict[str, tuple[SimBridge, BridgeSample | None, BridgeState]] = {}

    # ------------------------------------------------------------------ helpers

    def _dt(self, seconds: float) -> datetime:
        return self._t0 + timedelta(seconds=seconds)

    def _request(self, m: int, phase: str) -> MeetingRequest:
        spec = self._spec[m]
        return MeetingRequest(
            key=spec.name,
            agency=spec.agency,
            start=spec.start,
            end=spec.end,
            participants=spec.participants,
            priority=PRIORITY_VALUES[spec.priority_class],
            confidential=spec.confidential,
            created_at=spec.created_at,
            phase=phase,
            agency_priority=self._agency_priority.get(spec.agency, 0),
        )

    def _buckets(self, lo: float, hi: float) -> range:
        return range(int(lo // _BUCKET), int(max(lo, hi - 1e-9) // _BUCKET) + 1)

    def _window(self, m: int) -> tuple[float, float]:
        info = self._infos[m]
        return info.start - self._margin_s, info.end

    # ------------------------------------------------------------------ admission

    def _admission_pass(self, t: float, now: datetime, act: Actions) -> None:
        self.passes += 1
        cands = sorted(self._open)
        reqs = []
        for m in cands:
            reqs.append(self._request(m, self._phase[m] or "Pending"))
        holders: set[int] = set()
        if self.opt.prune_holders:
            for m in cands:
                lo, hi = self._window(m)
                for b in self._buckets(max(lo, t), hi):
                    hs = self._holders.get(b)
                    if hs:
                        holders |= hs
        else:
            holders = set(self._holding)
        for m in sorted(holders):
            info = self._infos[m]
            if info.end <= t:
                continue
            phase = timed_phase("Admitted", self._spec[m].start, self._spec[m].end, now)
            reqs.append(self._request(m, phase))
        plan = decide_admission(reqs, self._quotas, self._ceiling, now)
        for m in cands:
            d = plan.decisions.get(self._spec[m].name)
            if d is None:
                continue
            if d.phase == "Admitted":
                self._phase[m] = "Admitted"
                self._open.discard(m)
                self._queued.discard(m)
                act.admit.append(m)
                self._hold(m, t)
            elif d.phase == "Queued":
                if m not in self._queued:
                    self._queued.add(m)
                    heapq.heappush(self._starts, (self._infos[m].start, m))
                self._phase[m] = "Queued"
                act.queue.append(m)
            else:
                self._phase[m] = "Rejected"
                self._open.discard(m)
                self._queued.discard(m)
                act.reject.append(m)

    def _hold(self, m: int, t: float) -> None:
        lo, hi = self._window(m)
        for b in self._buckets(lo, hi):
            self._holders.setdefault(b, set()).add(m)
        self._holding.add(m)
        info = self._infos[m]
        heapq.heappush(self._ends, (info.end, m))
        # a meeting larger than a bridge is planned for from its earliest first join
        early = self._params.early_join.total_seconds() if info.declared > self._ppb else 0.0
        heapq.heappush(self._upcoming, (info.start - self._lead - early, m))

    def _release(self, m: int) -> None:
        lo, hi = self._window(m)
        for b in self._buckets(lo, hi):
            hs = self._holders.get(b)
            if hs is not None:
                hs.discard(m)
                if not hs:
                    del self._holders[b]
        self._holding.discard(m)

    # ------------------------------------------------------------------ scaling

    def _bridge_states(self, obs: Observation) -> list[BridgeState]:
        samples = {s.name: s for s in obs.metrics}
        cache = self._bridge_cache
        out = []
        for b in obs.bridges:
            s = samples.get(b.name)
            hit = cache.get(b.name)
            if hit is not None and hit[0] is b and hit[1] is s:
                out.append(hit[2])
                continue
            st = BridgeState(
                name=b.name,
                ready=b.ready,
                draining=b.draining,
                created_at=self._dt(b.created_s),
                stress=None if s is None else s.stress,
                endpoints=None if s is None else s.participants,
                conferences=None if s is None else s.conferences,
                drain_started_at=None if b.drain_since_s is None else self._dt(b.drain_since_s),
                held=b.held,
            )
            cache[b.name] = (b, s, st)
            out.append(st)
        if len(cache) > 2 * len(obs.bridges) + 16:
            live = {b.name for b in obs.bridges}
            for name in [n for n in cache if n not in live]:
                del cache[name]
        return out

    def _booked_list(self, t: float) -> list[BookedMeeting]:
        while self._upcoming and self._upcoming[0][0] <= t + 1e-9:
            _, m = heapq.heappop(self._upcoming)
            info = self._infos[m]
            if info.end <= t:
                continue
            self._booked[m] = self._booked_meeting(m, running=info.start <= t)
            heapq.heappush(self._booked_end, (info.end, m))
            if info.start > t:
                heapq.heappush(self._running_at, (info.start, m))
        while self._running_at and self._running_at[0][0] <= t:
            _, m = heapq.heappop(self._running_at)
            if m in self._booked:
                self._booked[m] = self._booked_meeting(m, running=True)
        while self._booked_end and self._booked_end[0][0] <= t:
            _, m = heapq.heappop(self._booked_end)
            if m in self._booked:  # past its end: kept while its conference is still open
                self._overrun[m] = t + OVERRUN_LIMIT_S
        for m in [m for m, until in self._overrun.items() if until <= t]:
            del self._overrun[m]
            self._booked.pop(m, None)
        return list(self._booked.values())

    def _conference_closed(self, m: int) -> None:
        if self._overrun.pop(m, None) is not None:
            self._booked.pop(m, None)

    def _booked_meeting(self, m: int, *, running: bool) -> BookedMeeting:
        spec = self._spec[m]
        return BookedMeeting(
            key=spec.name,
            start=spec.start,
            end=spec.end,
            participants=spec.participants,
            confidential=spec.confidential,
            running=running,
        )

    def _adhoc_rate(self, now: datetime) -> float:
        """The live operator's estimate (`meetscale.decide.scale.adhoc.adhoc_rate`) over the
        ad-hoc meetings seen so far; those that started before the window are dropped
        (they never count again)."""
        window = timedelta(minutes=self.opt.adhoc_window_minutes)
        while self._adhoc and self._adhoc[0].start < now - window:
            self._adhoc.popleft()
        return adhoc_rate(self._adhoc, now, self._params.lead_time, window)

    # ------------------------------------------------------------------ tick

    def step(self, obs: Observation) -> Actions:
        act = Actions()
        t = obs.t
        now = obs.now
        dirty = False
        for m in obs.ended_meetings:
            self._conference_closed(m)
        for m in obs.new_meetings:
            self._phase[m] = "Pending"
            self._open.add(m)
            dirty = True
            info = self._infos[m]
            if info.start - info.created < self._lead:
                self._adhoc.append(
                    Arrival(self._dt(info.created), self._dt(info.start), info.declared)
                )
        # reservations ending free capacity for queued meetings
        while self._ends and self._ends[0][0] <= t:
            _, m = heapq.heappop(self._ends)
            self._release(m)
            self._phase[m] = "Finished"
            if self._queued:
                dirty = True
        # a queued meeting whose start came is decided for good
        while self._starts and self._starts[0][0] <= t:
            _, m = heapq.heappop(self._starts)
            if m in self._queued:
                dirty = True
        if (dirty or self.opt.resync_every_tick) and self._open:
            self._admission_pass(t, now, act)
        if t % SYNC_SECONDS == 0:
            self._scale(obs, act)
        return act

    def _scale(self, obs: Observation, act: Actions) -> None:
        t, now = obs.t, obs.now
        bridges = self._bridge_states(obs)
        booked = self._booked_list(t)
        plan = decide_scale(
            self._params,
            bridges,
            booked,
            self._history,
            now,
            self._adhoc_rate(now),
            metrics_ok=bool(obs.metrics),
        )
        self._history = record(self._history, plan, now)
        if plan.new_bridges:
            act.add = plan.new_bridges
        act.drain = list(plan.drain)
        act.undrain = list(plan.cancel_drain)
        act.hold = list(plan.hold)
        act.release = list(plan.release)
