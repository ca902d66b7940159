"""The scaling loop of one BridgePool: gather inputs, call the pure core, carry out the plan.

One pass (:meth:`PoolScaler.reconcile`):

1. check what the pool refers to (the `jitsi` section's Secret);
2. read the bridges' stress, local endpoints, conferences and drain mode from Prometheus
   (per pod, the pool's PromQL with `$namespace`, `$pool` and `$pods` substituted);
3. through the adapter, :func:`~meetscale.decide.scale.decide_scale` over every bridge pod
   (draining ones included, pods created but not yet seen as unready ones), the pool's
   admitted and running meetings and the scale history;
4. carry it out: cancel drains (`/colibri/drain/disable`, unlabel) before starting any new
   bridge; create new bridges (a media-port Service, then the Pod: the operator owns its
   bridge Pods); start drains (label `meetscale.io/draining`, `/colibri/drain/enable`),
   including the outdated bridge a rolling update replaces;
5. removals, as :func:`~meetscale.decide.scale.removal.plan_removal` decides: a drained
   bridge that Prometheus *and the bridge itself* (`/colibri/stats`, no scrape lag) report
   empty while in drain mode, or whose drain timed out, is deleted: exactly that Pod;
6. status, events and metrics, with the same CamelCase reason words.

Without usable Prometheus answers (unavailable, or bad data in them) nothing is removed:
no drain starts, none completes; the booked demand is still the floor (the core's rule),
each bridge's load the last seen of it for a few minutes (never assumed empty:
:mod:`meetscale.adapt.loads`), and condition `PrometheusUnavailable` says why; events
`PrometheusUnavailable` and `PrometheusAvailable` mark when that starts and ends. While
metrics are unavailable, and when the scaler starts, the current size is recorded as a
recommendation, so a scale-down waits one stabilization window after Prometheus comes back
(no collapse on a partial first scrape).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from meetscale import metrics
from meetscale.adapt import (
    ConferenceFacts,
    LastSeen,
    ScaleInputs,
    arrival,
    attendance,
    pool_params,
    scale_inputs,
)
from meetscale.clients.colibri import Colibri
from meetscale.clients.jicofo import Jicofo
from meetscale.clients.kube.pool import KubeError, OwnerRef, PoolKube
from meetscale.clients.kube.render import template_hash
from meetscale.clients.prometheus import PromClient, PromResult, substitute
from meetscale.decide.door import PoolNow
from meetscale.decide.scale import (
    BridgeState,
    PoolParams,
    ScaleHistory,
    ScalePlan,
    decide_scale,
    record,
)
from meetscale.decide.scale.removal import RemovalPlan, plan_removal
from meetscale.models import BridgePoolSpec
from meetscale.records import MeetingRecord
from meetscale.scaling.conferences import ConferenceTracker, MeetingSink, ask_bridges
from meetscale.scaling.drains import BridgeActions, EventSink, HoldWhy
from meetscale.scaling.inputs import Intents, Metrics, PodRecord, bridge_states, skipped
from meetscale.scaling.isolation import Isolation
from meetscale.scaling.pins import Pinner
from meetscale.scaling.status import (
    LastScale,
    PassChanges,
    PassOutcome,
    export,
    forget,
    pool_status,
)
from meetscale.scaling.watch import OUTAGE_GRACE, Watch

__all__ = ["OUTAGE_GRACE", "PassResult", "PoolScaler", "StatusSink", "live_scale_inputs"]

log = logging.getLogger("meetscale.scaler")

StatusSink = Callable[[dict[str, Any]], Awaitable[bool]]

REMOVAL_FORGET: Final = timedelta(seconds=120)


@dataclass
class PassResult:
    """What one pass saw, decided and did (for logs, tests and the benchmark)."""

    plan: ScalePlan | None
    bridges_before: int
    bridges_after: int
    metrics_ok: bool
    actions: list[str] = field(default_factory=list)
    status: dict[str, Any] = field(default_factory=dict)
    status_written: bool = False
    seconds: float = 0.0
    pool_now: PoolNow | None = None  # the pool as this pass saw it, for admission's door


@dataclass
class _Seen:
    """What a pass gathered."""

    now: datetime
    params: PoolParams
    kept: list[PodRecord]
    by_name: dict[str, PodRecord]
    answers: Metrics
    bridges: list[BridgeState]
    conferences: ConferenceFacts


def live_scale_inputs(
    params: PoolParams,
    bridges: list[BridgeState],
    meetings: Sequence[MeetingRecord],
    now: datetime,
    metrics_ok: bool,
    conferences: ConferenceFacts | None = None,
) -> ScaleInputs:
    """The core's inputs of a pass, through the adapter: the pool's Meeting records become
    facts; every Meeting is an arrival the ad-hoc estimate may count; the bridges'
    conferences (``conferences``) say who runs where."""
    facts = [f for f in (rec.facts() for rec in meetings) if f is not None]
    return scale_inputs(
        params,
        bridges,
        facts,
        (arrival(f) for f in facts),
        now,
        metrics_ok=metrics_ok,
        conferences=conferences,
        history=attendance(facts),
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
        write_meeting: MeetingSink | None = None,
        operator_namespace: str | None = None,
        jicofo: Jicofo | None = None,
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
        self._problem: tuple[str, str] | None = None  # what keeps bridges from being created
        self.colibri = colibri
        self.conferences = ConferenceTracker(write_meeting)
        self.pool_now: PoolNow | None = None
        self.last_seen: dict[str, LastSeen] = {}  # the bridges' metrics as last reported
        self.watch = Watch(self.key, events)
        self.isolation = Isolation(namespace, name, kube, events, operator_namespace)
        self.pinner = Pinner(self.key, jicofo or Jicofo(), colibri, events)

    # ------------------------------------------------------------------ inputs

    async def _query_metrics(self, spec: BridgePoolSpec, pods: Sequence[PodRecord]) -> Metrics:
        source = spec.prometheus
        if source is None:
            return skipped("NotConfigured", "spec.prometheus is not set")
        if not any(p.ready for p in pods):
            return skipped("NoBridges", "no ready bridge to measure")
        names = [p.name for p in pods]  # the pool's pods, whatever labels the scrape adds

        def q(expr: str) -> Awaitable[PromResult]:
            return self.prom.query(
                source.url,
                substitute(expr, self.namespace, self.name, names),
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
        self, spec: BridgePoolSpec, pods: Sequence[PodRecord], now: datetime
    ) -> _Seen:
        live = [p for p in pods if not p.deleting and p.uid]
        present = {p.name for p in live}
        for name in self.watch.bridges(pods, self.removing, self.last_seen, now):
            self.last_seen.pop(name, None)  # it hosts nobody it hosted before
        for name, since in list(self.removing.items()):
            if name not in present or now - since > REMOVAL_FORGET:
                del self.removing[name]
        self.intents.forget_gone(present, now)
        kept = [self.intents.overlay(p, now) for p in live if p.name not in self.removing]
        answers, conferences = await asyncio.gather(
            self._query_metrics(spec, kept), ask_bridges(self.colibri, kept, spec.colibri_port)
        )
        await self.act.settle_uncertain(present)
        starting = self.intents.starting()
        bridges, self.last_seen = bridge_states(
            kept, answers, starting, now, template_hash(spec), self.last_seen, self.intents.groups
        )
        return _Seen(
            now,
            pool_params(spec, self.early_join),
            kept,
            {p.name: p for p in kept},
            answers,
            bridges,
            conferences,
        )

    def _decide(self, seen: _Seen, meetings: Sequence[MeetingRecord]) -> ScalePlan:
        if not self._seeded:
            active = sum(1 for b in seen.bridges if not b.draining)
            self.history = self.history.add(seen.now, active)
            self._seeded = True
            self.watch.found(seen.bridges)
        i = live_scale_inputs(
            seen.params, seen.bridges, meetings, seen.now, seen.answers.ok, seen.conferences
        )
        self.pool_now = PoolNow(i.params, i.bridges, i.booked)
        return decide_scale(
            i.params,
            i.bridges,
            i.booked,
            self.history,
            i.now,
            i.adhoc_rate,
            metrics_ok=i.metrics_ok,
            pinned=self.pinner.pins,
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
        seen = await self._gather(spec, pods, now)
        plan = self._decide(seen, meetings)
        before = len(seen.kept) + len(self.intents.starting())
        result = PassResult(plan, before, before, seen.answers.ok, pool_now=self.pool_now)
        await self._check_refs(spec)
        self.watch.prometheus(seen.answers, seen.bridges, seen.now)
        isolated = await self.isolation.keep(spec, owner)
        changes = await self._carry_out(spec, owner, seen, plan, result)
        self.pinner.forget(set(seen.by_name))
        await self.pinner.apply(spec, plan.pins, seen.by_name, meetings, now)
        self._record(plan, seen, changes)
        view = await self.conferences.publish(meetings, seen.conferences, now)
        old = self._last_status if self._last_status is not None else stored_status or {}
        outcome = PassOutcome(
            plan,
            seen.bridges,
            seen.answers,
            changes,
            self._last_scale,
            spec.max_bridges,
            self._problem,
            view,
            isolated,
            self.pinner.condition(spec),
        )
        status = pool_status(outcome, old, now, generation)
        result.status = status
        result.status_written = await self._write(status)
        export(self.key, plan, status)
        result.seconds = time.perf_counter() - t0
        metrics.pool_reconcile_seconds.labels(pool=self.key).observe(result.seconds)
        return result

    async def _check_refs(self, spec: BridgePoolSpec) -> None:
        """The Secret the `jitsi` section names must exist with the JVB account's keys;
        without it no bridge is created (they could not log in), and the status says so."""
        problem: tuple[str, str] | None = None
        if spec.jitsi is not None:
            name = spec.jitsi.auth_secret
            try:
                keys = await self.kube.secret_keys(self.namespace, name)
            except KubeError as exc:
                keys, problem = set(), (exc.reason, exc.message)
            if problem is None and keys is None:
                problem = (
                    "SecretNotFound",
                    f"spec.jitsi.authSecret: Secret {self.namespace}/{name} does not exist "
                    "(it holds the bridges' XMPP account: JVB_AUTH_USER, JVB_AUTH_PASSWORD)",
                )
            elif problem is None and keys is not None:
                missing = {"JVB_AUTH_USER", "JVB_AUTH_PASSWORD"} - keys
                if missing:
                    problem = (
                        "SecretKeyMissing",
                        f"spec.jitsi.authSecret: Secret {self.namespace}/{name} has no "
                        f"{', '.join(sorted(missing))}",
                    )
        self._set_problem(problem)

    def _set_problem(self, problem: tuple[str, str] | None) -> None:
        if problem is not None and problem != self._problem:
            self.events(problem[0], problem[1], True)
            log.warning("pool %s: %s", self.key, problem[1])
        self._problem = problem

    async def _carry_out(
        self,
        spec: BridgePoolSpec,
        owner: OwnerRef,
        seen: _Seen,
        plan: ScalePlan,
        result: PassResult,
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
        pinned = set(plan.pins.values())
        for name, held in [(n, True) for n in plan.hold] + [(n, False) for n in plan.release]:
            pod = by_name.get(name)
            why: HoldWhy = (
                "shield" if name in plan.shield else "pins" if name in pinned else "large"
            )
            if pod is not None and await act.guard(act.hold(spec, pod, held, now, why)):
                result.actions.append(f"{'BridgeHeld' if held else 'BridgeReleased'} {name}")
        await self._create(spec, owner, plan.new_bridges, now, result, plan.group_starts)
        started = set()
        for name in plan.drain + plan.replace:
            pod = by_name.get(name)
            state = next((b for b in seen.bridges if b.name == name), None)
            if pod is None or state is None:
                continue
            if await act.guard(act.start_drain(spec, pod, state, now)):
                started.add(name)
                result.actions.append(f"DrainStarted {name}")
        removal = await self._plan_removal(spec, seen, plan, cancelled | started)
        gone = await self._remove(seen, removal, result)
        if seen.answers.ok:
            await act.reconcile_drain_mode(
                spec, seen.kept, seen.answers, cancelled | started, removal.redrain
            )
        await act.guard(act.sweep_services([p.name for p in seen.kept], self.intents.starting()))
        held_now = {b.name for b in seen.bridges if b.held} | set(plan.hold)
        return PassChanges(started, cancelled, gone, held_now - set(plan.release))

    async def _create(
        self,
        spec: BridgePoolSpec,
        owner: OwnerRef,
        count: int,
        now: datetime,
        result: PassResult,
        groups: Sequence[str] = (),
    ) -> None:
        """Create ``count`` bridges, the first ones for ``groups`` (a spanning group's release
        each), unless what they need is missing (a Secret); what the apiserver refuses (an
        invalid template) is reported as it says it."""
        if count <= 0 or (self._problem is not None and self._problem[0].startswith("Secret")):
            return
        problem: tuple[str, str] | None = None
        for i in range(count):
            group = groups[i] if i < len(groups) else None
            try:
                name = await self.act.create(spec, owner, secrets.token_hex(3), now, group)
            except KubeError as exc:
                problem = (exc.reason, exc.message)
                break
            if name is None:
                problem = ("NodePortsExhausted", "no free media port for a new bridge")
                break
            result.bridges_after += 1
            result.actions.append(f"BridgeCreated {name}")
        self._set_problem(problem)

    async def _plan_removal(
        self, spec: BridgePoolSpec, seen: _Seen, plan: ScalePlan, skip: set[str]
    ) -> RemovalPlan:
        growing = plan.new_bridges > 0
        if not seen.answers.ok or growing:
            return RemovalPlan()
        draining = await self.act.draining_bridges(spec, seen.bridges, seen.by_name, skip, seen.now)
        return plan_removal(seen.params.drain, draining, seen.now, metrics_ok=True, growing=False)

    async def _remove(self, seen: _Seen, removal: RemovalPlan, result: PassResult) -> set[str]:
        """Announce timeouts and delete exactly the drained bridges' Pods."""
        act, by_name = self.act, seen.by_name
        timeout_s = int(seen.params.drain.timeout.total_seconds())
        for name in removal.timed_out:
            state = next(b for b in seen.bridges if b.name == name)
            if act.announce_timeout(by_name[name], state.endpoints, timeout_s):
                result.actions.append(f"DrainTimeout {name}")
        gone = set()
        for name in removal.remove:
            pod = by_name[name]
            if await act.guard(act.remove(pod)):
                self.removing[name] = seen.now
                gone.add(name)
                result.bridges_after -= 1
                result.actions.append(f"BridgeRemoved {name}")
        return gone

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
