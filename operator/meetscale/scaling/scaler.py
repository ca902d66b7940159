"""The scaling loop of one BridgePool: gather inputs, call the pure core, carry out the plan.

One pass (:meth:`PoolScaler.reconcile`):

1. ensure the owned Deployment `<pool>-jvb` (create it, or update its pod template);
2. read the bridges' stress, local endpoints, conferences and drain mode from Prometheus
   (per pod, the pool's PromQL with `$namespace`/`$pool` substituted);
3. through the adapter, :func:`~meetscale.decide.scale.decide_scale` over every bridge pod
   (draining ones included, pods the Deployment still has to create as unready
   placeholders), the pool's admitted and running meetings and the scale history;
4. carry it out: cancel drains (`/colibri/drain/disable`, unlabel) before starting any new
   bridge; raise replicas for new bridges; start drains (label `meetscale.io/draining`,
   pod-deletion-cost, `/colibri/drain/enable`);
5. removals, as :func:`~meetscale.decide.scale.removal.plan_removal` decides: a drained
   bridge that Prometheus *and the bridge itself* (`/colibri/stats`, no scrape lag) report
   empty while in drain mode, or whose drain timed out, is first marked with the lowest
   pod-deletion-cost, then, when the Deployment is settled, no rollout runs and every
   other pod is ready, replicas are lowered by exactly the number of such pods;
6. status, events and metrics, with the same CamelCase reason words.

Without usable Prometheus answers nothing is removed: no drain starts, none completes; the
booked demand is still the floor (the core's rule), and condition `PrometheusUnavailable`
says why. While metrics are unavailable, and when the scaler starts, the current size is
recorded as a recommendation, so a scale-down waits one stabilization window after
Prometheus comes back (no collapse on a partial first scrape).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from meetscale import metrics
from meetscale.adapt import ScaleInputs, arrival, pool_params, scale_inputs
from meetscale.clients.colibri import Colibri
from meetscale.clients.kube.pool import DeploymentView, KubeError, OwnerRef, PoolKube
from meetscale.clients.prometheus import PromClient, PromResult, substitute
from meetscale.decide.scale import (
    BridgeState,
    PoolParams,
    ScaleHistory,
    ScalePlan,
    decide_scale,
    record,
)
from meetscale.decide.scale.removal import RemovalGate, RemovalPlan, plan_removal
from meetscale.models import BridgePoolSpec
from meetscale.records import MeetingRecord
from meetscale.scaling.drains import BridgeActions, EventSink
from meetscale.scaling.inputs import Intents, Metrics, PodRecord, bridge_states, skipped
from meetscale.scaling.status import (
    LastScale,
    PassChanges,
    export,
    forget,
    pool_status,
    status_on_error,
)

__all__ = ["PassResult", "PoolScaler", "StatusSink", "live_scale_inputs"]

log = logging.getLogger("meetscale.scaler")

StatusSink = Callable[[dict[str, Any]], Awaitable[bool]]

REMOVAL_FORGET: Final = timedelta(seconds=120)


@dataclass
class PassResult:
    """What one pass saw, decided and did (for logs, tests and the benchmark)."""

    plan: ScalePlan | None
    replicas_before: int
    replicas_after: int
    metrics_ok: bool
    actions: list[str] = field(default_factory=list)
    status: dict[str, Any] = field(default_factory=dict)
    status_written: bool = False
    seconds: float = 0.0


@dataclass
class _Seen:
    """What a pass gathered."""

    now: datetime
    params: PoolParams
    dep: DeploymentView
    kept: list[PodRecord]
    by_name: dict[str, PodRecord]
    answers: Metrics
    bridges: list[BridgeState]


def live_scale_inputs(
    params: PoolParams,
    bridges: list[BridgeState],
    meetings: Sequence[MeetingRecord],
    now: datetime,
    metrics_ok: bool,
) -> ScaleInputs:
    """The core's inputs of a pass, through the adapter: the pool's Meeting records become
    facts; every Meeting is an arrival the ad-hoc estimate may count."""
    facts = [f for f in (rec.facts() for rec in meetings) if f is not None]
    return scale_inputs(
        params, bridges, facts, (arrival(f) for f in facts), now, metrics_ok=metrics_ok
    )


class PoolScaler:
    """The scaling state of one BridgePool (history, removals in flight, Services known).

    Kept in memory for the life of the pool's daemon; drain marks live on the pods, so a
    restarted operator continues the drains it started."""

    def __init__(
        self,
        namespace: str,
        name: str,
        *,
        kube: PoolKube,
        prom: PromClient,
        colibri: Colibri,
        events: EventSink,
        write_status: StatusSink,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        early_join: timedelta = timedelta(minutes=10),
    ) -> None:
        self.namespace = namespace
        self.name = name
        self.key = f"{namespace}/{name}"
        self.early_join = early_join
        self.kube = kube
        self.prom = prom
        self.events = events
        self.write_status = write_status
        self.clock = clock
        self.history = ScaleHistory()
        self._seeded = False
        self.removing: dict[str, datetime] = {}
        self.intents = Intents()
        self.act = BridgeActions(
            namespace, name, kube=kube, colibri=colibri, events=events, intents=self.intents
        )
        self._last_status: dict[str, Any] | None = None
        self._last_scale: LastScale | None = None
        self._deployment_error: str | None = None

    # ------------------------------------------------------------------ inputs

    async def _query_metrics(self, spec: BridgePoolSpec, have_ready: bool) -> Metrics:
        source = spec.prometheus
        if source is None:
            return skipped("NotConfigured", "spec.prometheus is not set")
        if not have_ready:
            return skipped("NoBridges", "no ready bridge to measure")

        def q(expr: str) -> Awaitable[PromResult]:
            return self.prom.query(
                source.url,
                substitute(expr, self.namespace, self.name),
                timeout_s=source.timeout_seconds,
                pool=self.key,
            )

        stress, endpoints, conferences, drain = await asyncio.gather(
            q(source.stress_query),
            q(source.endpoints_query),
            q(source.conferences_query),
            q(source.drain_query),
        )
        return Metrics(stress, endpoints, conferences, drain)

    async def _gather(
        self, spec: BridgePoolSpec, dep: DeploymentView, pods: Sequence[PodRecord], now: datetime
    ) -> _Seen:
        live = [p for p in pods if not p.deleting and p.uid]
        present = {p.name for p in live}
        for name, since in list(self.removing.items()):
            if name not in present or now - since > REMOVAL_FORGET:
                del self.removing[name]
        if dep.settled and len(live) == dep.replicas:
            # Every removal asked for has happened. A pod still listed as being removed was
            # spared (the ReplicaSet took another pod of the same deletion cost): it is an
            # ordinary drained bridge again, removed in a later pass.
            self.removing.clear()
        self.intents.forget_gone(present)
        kept = [self.intents.overlay(p, now) for p in live if p.name not in self.removing]
        answers = await self._query_metrics(spec, any(p.ready for p in kept))
        bridges = bridge_states(kept, answers, max(0, dep.replicas - len(kept)), now)
        return _Seen(
            now,
            pool_params(spec, self.early_join),
            dep,
            kept,
            {p.name: p for p in kept},
            answers,
            bridges,
        )

    def _decide(self, seen: _Seen, meetings: Sequence[MeetingRecord]) -> ScalePlan:
        if not self._seeded:
            active = sum(1 for b in seen.bridges if not b.draining)
            self.history = self.history.add(seen.now, active)
            self._seeded = True
        i = live_scale_inputs(seen.params, seen.bridges, meetings, seen.now, seen.answers.ok)
        return decide_scale(
            i.params,
            i.bridges,
            i.booked,
            self.history,
            i.now,
            i.adhoc_rate,
            metrics_ok=i.metrics_ok,
        )

    # ------------------------------------------------------------------ the pass

    async def reconcile(
        self,
        spec: BridgePoolSpec,
        owner: OwnerRef,
        pods: Sequence[PodRecord],
        meetings: Sequence[MeetingRecord],
        stored_status: Mapping[str, Any] | None = None,
        generation: int | None = None,
    ) -> PassResult:
        t0 = time.perf_counter()
        now = self.clock()
        try:
            dep = await self.kube.ensure_deployment(
                self.namespace, self.name, spec, owner, initial_replicas=spec.min_bridges
            )
        except KubeError as exc:
            if self._deployment_error != exc.message:
                self.events(exc.reason, exc.message, True)
                log.warning("pool %s: %s", self.key, exc.message)
            self._deployment_error = exc.message
            old = self._last_status if self._last_status is not None else stored_status or {}
            status = status_on_error(exc.reason, exc.message, old, now, generation)
            written = await self._write(status)
            return PassResult(None, 0, 0, False, [], status, written, time.perf_counter() - t0)
        self._deployment_error = None

        seen = await self._gather(spec, dep, pods, now)
        plan = self._decide(seen, meetings)
        result = PassResult(plan, dep.replicas, dep.replicas, seen.answers.ok)
        changes = await self._carry_out(spec, seen, plan, result)
        self._record(plan, seen, changes)
        old = self._last_status if self._last_status is not None else stored_status or {}
        status = pool_status(
            plan,
            seen.bridges,
            seen.answers,
            old,
            now,
            generation,
            changes,
            self._last_scale,
            spec.max_bridges,
        )
        result.status = status
        result.status_written = await self._write(status)
        export(self.key, plan, status)
        result.seconds = time.perf_counter() - t0
        metrics.pool_reconcile_seconds.labels(pool=self.key).observe(result.seconds)
        return result

    async def _carry_out(
        self, spec: BridgePoolSpec, seen: _Seen, plan: ScalePlan, result: PassResult
    ) -> PassChanges:
        """Drains cancelled, holds, new bridges, drains started, removals, drain modes."""
        now, by_name, act = seen.now, seen.by_name, self.act
        # Drains back into service first: a ready bridge beats a new pod.
        cancelled = set()
        for name in plan.cancel_drain:
            pod = by_name.get(name)
            if pod is not None and await act.guard(act.cancel_drain(spec, pod, now)):
                cancelled.add(name)
                result.actions.append(f"DrainCancelled {name}")
        # Bridges held out of Jicofo's selection for a meeting about to open, and released.
        for name, held in [(n, True) for n in plan.hold] + [(n, False) for n in plan.release]:
            pod = by_name.get(name)
            shielded = name in plan.shield
            if pod is not None and await act.guard(act.hold(spec, pod, held, now, shielded)):
                result.actions.append(f"{'BridgeHeld' if held else 'BridgeReleased'} {name}")
        started = set()
        for name in plan.drain:
            pod = by_name.get(name)
            state = next((b for b in seen.bridges if b.name == name), None)
            if pod is None or state is None:
                continue
            if await act.guard(act.start_drain(spec, pod, state, now)):
                started.add(name)
                result.actions.append(f"DrainStarted {name}")
        # Replicas move relative to the Deployment's own count, never to the pods seen (a
        # rollout's surge pod must not become permanent).
        removal = await self._plan_removal(spec, seen, plan, cancelled | started)
        gone = await self._remove(seen, removal, plan.new_bridges, result)
        if seen.answers.ok:
            await act.reconcile_drain_mode(
                spec, seen.kept, seen.answers, cancelled | started, removal.redrain
            )
        if spec.per_bridge_service.enabled:
            await act.guard(act.ensure_services(spec, seen.kept))
        held_now = {b.name for b in seen.bridges if b.held} | set(plan.hold)
        return PassChanges(started, cancelled, gone, held_now - set(plan.release))

    async def _plan_removal(
        self, spec: BridgePoolSpec, seen: _Seen, plan: ScalePlan, skip: set[str]
    ) -> RemovalPlan:
        growing = plan.new_bridges > 0
        if not seen.answers.ok or growing:
            return RemovalPlan()
        draining = await self.act.draining_bridges(spec, seen.bridges, seen.by_name, skip, seen.now)
        dep, kept = seen.dep, seen.kept
        gate = RemovalGate(
            settled=dep.settled and len(kept) == dep.replicas,
            rollout=len({p.template_hash for p in kept}) > 1,
            unready=frozenset(p.name for p in kept if not p.ready),
        )
        return plan_removal(
            seen.params.drain, draining, seen.now, gate, metrics_ok=True, growing=False
        )

    async def _remove(
        self, seen: _Seen, removal: RemovalPlan, new_bridges: int, result: PassResult
    ) -> set[str]:
        """Announce timeouts, mark, and lower replicas by exactly the removable pods."""
        act, by_name, dep = self.act, seen.by_name, seen.dep
        timeout_s = int(seen.params.drain.timeout.total_seconds())
        for name in removal.timed_out:
            state = next(b for b in seen.bridges if b.name == name)
            if act.announce_timeout(by_name[name], state.endpoints, timeout_s):
                result.actions.append(f"DrainTimeout {name}")
        for name in removal.mark:
            if await act.guard(self.kube.mark_removable(self.namespace, name)):
                result.actions.append(f"MarkedForRemoval {name}")
        if removal.waiting:
            log.info("pool %s: drained bridges wait for removal: %s", self.key, removal.waiting)
        removable = [by_name[n] for n in removal.remove]
        target = dep.replicas + new_bridges - len(removable)
        for pod in removable:
            self.removing[pod.name] = seen.now
        if target != dep.replicas:
            try:
                await self.kube.set_replicas(self.namespace, self.name, target)
                result.replicas_after = target
                result.actions.append(f"Replicas {dep.replicas}->{target}")
            except KubeError as exc:
                log.warning("pool %s: %s", self.key, exc.message)
                for pod in removable:
                    self.removing.pop(pod.name, None)
                removable = []
        for pod in removable:
            act.removed(pod)
            result.actions.append(f"BridgeRemoved {pod.name}")
        return {p.name for p in removable}

    def _record(self, plan: ScalePlan, seen: _Seen, changes: PassChanges) -> None:
        """History and the decision's event."""
        now = seen.now
        self.history = record(self.history, plan, now)
        if not seen.answers.ok:
            # Remember the size held during the outage: scale-down restarts its
            # stabilization window when metrics come back.
            self.history = self.history.add(now, plan.desired)
        direction = None
        if plan.desired > plan.current and (changes.cancelled or plan.new_bridges):
            direction = "Up"
        elif changes.started:
            direction = "Down"
        if direction is not None:
            self._last_scale = LastScale(now, direction, plan.reason)
            metrics.scale_decisions.labels(
                pool=self.key, direction=direction, reason=plan.reason
            ).inc()
            self.events(plan.reason, f"scale {direction.lower()}: {plan.message}", False)
            log.info("pool %s: scale %s (%s): %s", self.key, direction, plan.reason, plan.message)

    async def _write(self, status: dict[str, Any]) -> bool:
        if status == self._last_status:
            return False
        ok = await self.write_status(status)
        if ok:
            self._last_status = status
        return ok

    def forget_metrics(self) -> None:
        """Drop this pool's gauges (the pool is gone)."""
        forget(self.key)
