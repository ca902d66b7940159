"""`operator`: the operator's own decision code, fed as the live shell feeds it.

The trace's rows become the operator's specs (:mod:`meetscale.sim.specs`), and every
input of the core is built by :mod:`meetscale.adapt`, the module the live operator uses:
the simulator measures the operator that ships.

Admission. Each Meeting exists from its `createdAt`. An admission pass calls
`decide_admission` on the open Meetings (Pending and Queued ones, and the
Admitted/Running ones that hold reservations), with `timed_phase` moving Admitted ->
Running -> Finished by the clock, and the quotas involved, exactly as the live operator
builds them (`admission.statuses.plan_pool`). A pass runs when its answer can change:
new Meetings became visible, a Queued meeting's start came (it is then rejected if still
blocked), or, while some meeting is queued, a reservation ended. The live operator
re-runs every 15 s as well; those extra passes give the same answers, since nothing else
changes between them. Two shortcuts, both exact for the decisions (a test checks it):
reservations that cannot overlap any candidate's window are left out of a pass, and
reservations whose end has passed are dropped (they hold nothing). Participants of a
meeting that is not admitted (pending, queued, rejected) are kept out and counted as
denied.

Scaling. Every 15 s `decide_scale` gets what the live operator gives it: the pool's
parameters, every bridge Pod with its metrics from the lagged Prometheus scrape, the
admitted meetings the adapter keeps (running, or counted by the booked term; gone at
their end), the scale history, and the ad-hoc rate. The policy then starts
`plan.new_bridges`, drains `plan.drain` and puts `plan.cancel_drain` back into service.
Drained bridges are removed as the live operator removes them
(:func:`~meetscale.decide.scale.removal.plan_removal`): once the lagged scrape and the
bridge itself (its own count, as `GET /colibri/stats` answers) say it is empty, it is
marked, and removed at the next pass.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from meetscale.adapt import (
    AdmissionInputs,
    BridgeFacts,
    ConferenceFacts,
    LastSeen,
    MeetingFacts,
    ScaleInputs,
    admission_inputs,
    arrival,
    bridge_state,
    creation_refusals,
    meeting_request,
    pool_ceiling,
    pool_params,
    quota_view,
    recall,
    scale_inputs,
)
from meetscale.decide.admit import MeetingRequest, Reason, decide_admission
from meetscale.decide.admit.rooms import room_of
from meetscale.decide.door import PoolNow, at_the_door
from meetscale.decide.lifecycle import timed_phase
from meetscale.decide.scale import BridgeState, ScaleHistory, ScalePlan, decide_scale, record
from meetscale.decide.scale.adhoc import Arrival
from meetscale.decide.scale.calibration import Attendance, Calibration, calibrate
from meetscale.decide.scale.removal import DrainingBridge, plan_removal
from meetscale.decide.scale.replay import counting_window
from meetscale.models import Phase
from meetscale.sim.demand import MeetingInfo
from meetscale.sim.policy import Actions, BridgePod, BridgeSample, Observation, SimContext
from meetscale.sim.specs import trace_specs

__all__ = ["OperatorOptions", "OperatorPolicy"]

SYNC_SECONDS = 15
_BUCKET = 3600  # seconds per bucket of the reservation index


@dataclass(frozen=True)
class OperatorOptions:
    prune_holders: bool = True  # leave out reservations no candidate can overlap
    resync_every_tick: bool = False  # run a pass every tick while any meeting is open (slow)


class OperatorPolicy:
    name = "operator"
    removes_drained = True  # drained bridges go when the core's plan_removal says so

    def __init__(self, options: OperatorOptions | None = None) -> None:
        self.opt = options or OperatorOptions()
        self.passes = 0  # admission passes run (for tests and the benchmark)
        self.last_admission: AdmissionInputs | None = None  # what the last pass was given
        self._others: list[OperatorPolicy] = []  # the policies of the trace's other pools
        # meeting index -> (seconds from trace start, phase, reason) at each change of its
        # verdict, to compare with a live replay (benchmarks/bench_working_day.py)
        self.verdicts: dict[int, list[tuple[float, str, str | None]]] = {}
        self._poked = False  # another pool freed quota: decide the queued meetings again

    def link_pools(self, policies: Sequence[object]) -> None:
        """The trace's pools run side by side, each with its own policy: a quota holds
        across every pool, so each pass counts the reservations of the others."""
        linked = [p for p in policies if isinstance(p, OperatorPolicy)]
        for p in linked:
            p._others = [o for o in linked if o is not p]

    # ------------------------------------------------------------------ setup

    def begin(self, ctx: SimContext) -> None:
        trace = ctx.trace
        specs = trace_specs(trace)
        self._t0: datetime = ctx.start
        self._infos: list[MeetingInfo] = ctx.demand.meetings
        self._keys = specs.keys
        self._specs = specs.meetings
        self._params = pool_params(specs.pool, specs.pre_join_margin)
        self._ceiling = pool_ceiling(specs.pool, specs.pre_join_margin)
        self._quotas = {name: quota_view(name, q) for name, q in specs.quotas.items()}
        self._agency_priority = {name: q.priority for name, q in specs.quotas.items()}
        self._lead = self._params.booked.lead_time.total_seconds()
        self._margin_s = specs.pre_join_margin.total_seconds()
        self._agency = [m.agency for m in trace.meetings]
        self._room = [
            room_of(m.agency, m.name, spec.room)
            for m, spec in zip(trace.meetings, specs.meetings, strict=True)
        ]
        self._room_index = {room: m for m, room in enumerate(self._room)}
        self._created = [m.created_at for m in trace.meetings]
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
        self._upcoming: list[tuple[float, int]] = []  # (opens - lead, m) admitted, not near
        self._window: dict[int, MeetingFacts] = {}  # admitted, near or running, not ended
        self._window_end: list[tuple[float, int]] = []  # (end, m) of the window's meetings
        self._overrun: set[int] = set()  # in the window past their end (room still open)
        self._peak: dict[int, int] = {}  # the most seen in each admitted meeting's room
        self._attended: dict[str, list[Attendance]] = {}  # closed conferences by agency
        self._calibrated: dict[str, Calibration] = {}  # calibrations(_attended), kept
        self._pool_now: PoolNow | None = None  # the last scaling pass's view, for the door
        self._full: set[int] = set()  # queued PoolFull: decided again at every pass
        self._adhoc: deque[Arrival] = deque()  # ad-hoc meetings seen, by when they appeared
        self._bridge_cache: dict[str, tuple[BridgePod, BridgeSample | None, BridgeState]] = {}
        self._last_seen: dict[str, LastSeen] = {}  # as the live scaler keeps them
        self._requests: dict[tuple[int, str], MeetingRequest] = {}  # see _request
        self._key_index = {key: m for m, key in enumerate(self._keys)}
        self._pins: dict[str, str] = {}  # the last pass's pins (pinned placement)

    # ------------------------------------------------------------------ helpers

    def _dt(self, seconds: float) -> datetime:
        return self._t0 + timedelta(seconds=seconds)

    def _facts(self, m: int, phase: str) -> MeetingFacts:
        return MeetingFacts(
            self._keys[m], self._specs[m], phase, self._created[m], agency=self._agency[m]
        )

    def _request(self, m: int, phase: str) -> MeetingRequest:
        """Meeting ``m`` in ``phase`` as the core sees it (made once: a spec never changes)."""
        made = self._requests.get((m, phase))
        if made is None:
            agency = self._agency[m]
            made = self._requests[m, phase] = meeting_request(
                self._keys[m],
                self._specs[m],
                agency=agency,
                agency_priority=self._agency_priority.get(agency, 0),
                created=self._created[m],
                phase=phase,
            )
        return made

    def _buckets(self, lo: float, hi: float) -> range:
        return range(int(lo // _BUCKET), int(max(lo, hi - 1e-9) // _BUCKET) + 1)

    def _span(self, m: int) -> tuple[float, float]:
        info = self._infos[m]
        return info.start - self._margin_s, info.end

    # ------------------------------------------------------------------ admission

    def _admission_pass(self, t: float, now: datetime, act: Actions) -> None:
        self.passes += 1
        cands = sorted(self._open)
        reqs = [self._request(m, self._phase[m] or Phase.PENDING) for m in cands]
        spans = [self._span(m) for m in cands]
        reqs += self._held(spans, t, now)
        for other in self._others:  # a quota holds across every pool
            reqs += [replace(r, elsewhere=True) for r in other._held(spans, t, now)]
        fresh = {self._keys[m] for m in cands if self._phase[m] in (None, Phase.PENDING)}
        reqs, refused = creation_refusals(reqs, fresh, self._quotas, self._ceiling)
        inputs = admission_inputs(reqs, self._quotas, self._ceiling, now)
        self.last_admission = inputs
        plan = at_the_door(decide_admission(*inputs), reqs, self._pool_now, now, explain=False)
        self._full.clear()
        for m in cands:
            d = plan.decisions.get(self._keys[m])
            if self._keys[m] in refused:  # the webhook would have refused it
                self._phase[m] = Phase.REJECTED
                self._open.discard(m)
                act.reject.append(m)
                self._verdict(m, t, Phase.REJECTED, refused[self._keys[m]][0])
                continue
            if d is None:
                continue
            self._verdict(m, t, d.phase, d.reason)
            if d.phase == Phase.ADMITTED:
                self._phase[m] = Phase.ADMITTED
                self._open.discard(m)
                self._queued.discard(m)
                act.admit.append(m)
                self._hold(m)
            elif d.phase == Phase.QUEUED:
                if d.reason == Reason.POOL_FULL:
                    self._full.add(m)  # decided again at every pass, as the pool frees
                if m not in self._queued:
                    self._queued.add(m)
                    heapq.heappush(self._starts, (self._infos[m].start, m))
                self._phase[m] = Phase.QUEUED
                act.queue.append(m)
            else:
                self._phase[m] = Phase.REJECTED
                self._open.discard(m)
                self._queued.discard(m)
                act.reject.append(m)

    def _verdict(self, m: int, t: float, phase: str, reason: str | None) -> None:
        seen = self.verdicts.setdefault(m, [])
        if not seen or seen[-1][1:] != (phase, reason):
            seen.append((t, str(phase), None if reason is None else str(reason)))

    def _held(
        self, spans: Sequence[tuple[float, float]], t: float, now: datetime
    ) -> list[MeetingRequest]:
        """This pool's reservations that overlap any of ``spans`` (all with
        ``prune_holders`` off), as requests."""
        holders: set[int] = set()
        if self.opt.prune_holders:
            for lo, hi in spans:
                for b in self._buckets(max(lo, t), hi):
                    hs = self._holders.get(b)
                    if hs:
                        holders |= hs
        else:
            holders = set(self._holding)
        out = []
        for m in sorted(holders):
            if self._infos[m].end <= t:
                continue
            spec = self._specs[m]
            phase = timed_phase(Phase.ADMITTED, spec.start, spec.end_time, now)
            out.append(self._request(m, phase))
        return out

    def _hold(self, m: int) -> None:
        lo, hi = self._span(m)
        for b in self._buckets(lo, hi):
            self._holders.setdefault(b, set()).add(m)
        self._holding.add(m)
        info = self._infos[m]
        heapq.heappush(self._ends, (info.end, m))
        # kept from before the booked term may count it (the adapter drops what is not
        # counted yet)
        ahead = counting_window(self._params).total_seconds()
        heapq.heappush(self._upcoming, (info.start - ahead, m))

    def _release(self, m: int) -> None:
        lo, hi = self._span(m)
        for b in self._buckets(lo, hi):
            hs = self._holders.get(b)
            if hs is not None:
                hs.discard(m)
                if not hs:
                    del self._holders[b]
        self._holding.discard(m)

    # ------------------------------------------------------------------ scaling

    def _bridge_states(self, obs: Observation) -> list[BridgeState]:
        """Every bridge Pod with its lagged scrape; a metric missing from it is the last
        seen one for a while, as the live scaler does (:func:`~meetscale.adapt.recall`).
        A bridge in the scrape is converted once per scrape (cached)."""
        samples = {s.name: s for s in obs.metrics}
        cache, memory = self._bridge_cache, self._last_seen
        metrics_ok = bool(obs.metrics)
        out = []
        for b in obs.bridges:
            s = samples.get(b.name)
            hit = cache.get(b.name)
            if s is not None and hit is not None and hit[0] is b and hit[1] is s:
                out.append(hit[2])
                continue
            facts, seen = recall(
                BridgeFacts(
                    name=b.name,
                    ready=b.ready,
                    draining=b.draining,
                    created=self._dt(b.created_s),
                    drain_started=None if b.drain_since_s is None else self._dt(b.drain_since_s),
                    held=b.held,
                    group=b.group,
                    stress=None if s is None else s.stress,
                    endpoints=None if s is None else s.participants,
                    conferences=None if s is None else s.conferences,
                ),
                memory.get(b.name),
                obs.now,
                metrics_ok=metrics_ok,
            )
            if seen is None:
                memory.pop(b.name, None)
            else:
                memory[b.name] = seen
            st = bridge_state(facts)
            if s is not None:
                cache[b.name] = (b, s, st)
            out.append(st)
        if len(cache) > 2 * len(obs.bridges) + 16 or len(memory) > 2 * len(obs.bridges) + 16:
            live = {b.name for b in obs.bridges}
            for name in [n for n in cache if n not in live]:
                del cache[name]
            for name in [n for n in memory if n not in live]:
                del memory[name]
        return out

    def booked_facts(self, t: float, rooms_open: set[str]) -> list[MeetingFacts]:
        """The admitted meetings near enough to matter (a superset of what the adapter
        keeps: it drops those the booked term does not count yet, and those past their end
        whose conference is closed). A meeting past its end stays while its room is open."""
        while self._upcoming and self._upcoming[0][0] <= t + 1e-9:
            _, m = heapq.heappop(self._upcoming)
            if self._infos[m].end <= t and self._room[m] not in rooms_open:
                continue
            self._window[m] = self._facts(m, Phase.ADMITTED)
            heapq.heappush(self._window_end, (self._infos[m].end, m))
        for room in rooms_open:  # an admitted meeting whose room opened early
            m = self._room_index.get(room, -1)
            if m in self._holding and m not in self._window:
                self._window[m] = self._facts(m, Phase.ADMITTED)
                heapq.heappush(self._window_end, (self._infos[m].end, m))
        while self._window_end and self._window_end[0][0] <= t:
            _, m = heapq.heappop(self._window_end)
            self._overrun.add(m)
        for m in [m for m in self._overrun if self._room[m] not in rooms_open]:
            self._overrun.discard(m)
            self._window.pop(m, None)
            peak = self._peak.pop(m, 0)
            if peak > 0:  # its conference closed: what it drew teaches its agency
                attended = Attendance(self._specs[m].participants, peak)
                agency = self._agency[m]
                self._attended.setdefault(agency, []).append(attended)
                self._calibrated[agency] = calibrate(self._attended[agency])
        return list(self._window.values())

    def _adhoc_arrivals(self, now: datetime) -> deque[Arrival]:
        """The ad-hoc meetings seen so far; those that started before the window are
        dropped (they never count again)."""
        window = self._params.booked.adhoc_window
        while self._adhoc and self._adhoc[0].start < now - window:
            self._adhoc.popleft()
        return self._adhoc

    # ------------------------------------------------------------------ tick

    def step(self, obs: Observation) -> Actions:
        act = Actions()
        t = obs.t
        now = obs.now
        dirty = False
        for m in obs.new_meetings:
            self._phase[m] = Phase.PENDING
            self._open.add(m)
            dirty = True
            info = self._infos[m]
            if info.start - info.created < self._lead:
                self._adhoc.append(arrival(self._facts(m, Phase.PENDING)))
        # reservations ending free capacity for queued meetings
        while self._ends and self._ends[0][0] <= t:
            _, m = heapq.heappop(self._ends)
            self._release(m)
            self._phase[m] = Phase.FINISHED
            if self._queued:
                dirty = True
            for other in self._others:
                other._poked = True
        if self._poked:
            self._poked = False
            dirty = dirty or bool(self._queued)
        # a queued meeting whose start came is decided for good
        while self._starts and self._starts[0][0] <= t:
            _, m = heapq.heappop(self._starts)
            if m in self._queued:
                dirty = True
        resync = self.opt.resync_every_tick or (self._full and t % SYNC_SECONDS == 0)
        if (dirty or resync) and self._open:
            self._admission_pass(t, now, act)
        if t % SYNC_SECONDS == 0:
            self._scale(obs, act)
        return act

    def conference_facts(self, obs: Observation) -> ConferenceFacts:
        """What the ready bridges' `GET /debug` lists: each one's conferences by room."""
        seen = {
            bridge: {self._room[m]: n for m, n in confs.items()}
            for bridge, confs in obs.conferences().items()
        }
        return ConferenceFacts(seen=seen, asked=frozenset(seen))

    def scale_inputs(self, obs: Observation) -> ScaleInputs:
        """The core's inputs of a scaling pass, through the adapter, as the live operator
        builds them (the ad-hoc arrivals are the ad-hoc meetings seen: the same rate)."""
        conferences = self.conference_facts(obs)
        now_open: dict[str, int] = {}
        for confs in conferences.seen.values():
            for r, n in confs.items():
                if n:
                    now_open[r] = now_open.get(r, 0) + n
        for room, n in now_open.items():
            m = self._room_index.get(room)
            if m is not None and n > self._peak.get(m, 0):
                self._peak[m] = n
        rooms_open = set(now_open)
        waiting = [
            MeetingFacts(
                self._keys[m], self._specs[m], Phase.QUEUED, self._created[m],
                agency=self._agency[m], at_the_door=True,
            )
            for m in sorted(self._full)
        ]  # fmt: skip
        return scale_inputs(
            self._params,
            self._bridge_states(obs),
            self.booked_facts(obs.t, rooms_open) + waiting,
            self._adhoc_arrivals(obs.now),
            obs.now,
            metrics_ok=bool(obs.metrics),
            conferences=conferences,
            calibrated=self._calibrated,
        )

    def _scale(self, obs: Observation, act: Actions) -> None:
        i = self.scale_inputs(obs)
        self._pool_now = PoolNow(i.params, i.bridges, i.booked)
        bridges, metrics_ok = i.bridges, i.metrics_ok
        plan = decide_scale(
            i.params,
            i.bridges,
            i.booked,
            self._history,
            i.now,
            i.adhoc_rate,
            metrics_ok=metrics_ok,
            pinned=self._pins,
        )
        if i.params.booked.pinned:
            self._pins = plan.pins
            act.pins = {self._key_index[key]: bridge for key, bridge in plan.pins.items()}
        now = i.now
        self._history = record(self._history, plan, now)
        if plan.new_bridges:
            act.add = plan.new_bridges
            act.add_groups = list(plan.group_starts)
        act.drain = list(plan.drain)
        act.undrain = list(plan.cancel_drain)
        act.hold = list(plan.hold)
        act.release = list(plan.release)
        act.remove = self._removals(obs, bridges, plan, metrics_ok)

    def _removals(
        self, obs: Observation, bridges: list[BridgeState], plan: ScalePlan, metrics_ok: bool
    ) -> list[str]:
        """The drained bridges to remove now, as the live operator's removal step decides
        (the bridge's own count, without scrape lag, is ``obs.draining_loads``)."""
        skip = set(plan.cancel_drain) | set(plan.drain)
        draining = [
            DrainingBridge(b, own_endpoints=obs.draining_loads.get(b.name), in_drain_mode=True)
            for b in bridges
            if b.draining and b.name not in skip
        ]
        removal = plan_removal(
            self._params.drain,
            draining,
            obs.now,
            metrics_ok=metrics_ok,
            growing=plan.new_bridges > 0,
        )
        return list(removal.remove)
