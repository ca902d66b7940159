"""The scaling loop of one BridgePool: gather inputs, call the pure core, carry out the plan.

One pass (:meth:`PoolScaler.reconcile`):

1. ensure the owned Deployment `<pool>-jvb` (create it, or update its pod template);
2. read the bridges' stress, local endpoints, conferences and drain mode from Prometheus
   (per pod, the pool's PromQL with `$namespace`/`$pool` substituted);
3. :func:`~meetscale.decide.scale.plan.decide_scale` over every bridge pod (draining ones
   included, pods the Deployment still has to create as unready placeholders), the pool's
   admitted and running meetings and the scale history;
4. carry it out: cancel drains (`/colibri/drain/disable`, unlabel) before starting any new
   bridge; raise replicas for new bridges; start drains (label `meetscale.io/draining`,
   pod-deletion-cost, `/colibri/drain/enable`);
5. finish drains: a draining bridge is removed once Prometheus *and the bridge itself*
   (`/colibri/stats`, no scrape lag) report zero local endpoints while in drain mode, or
   once the drain timed out (an event and a metric). It is first given the lowest
   pod-deletion-cost; in a later pass, when every other pod is ready and the Deployment is
   settled (so the ReplicaSet controller ranks by that cost), replicas are lowered by exactly
   the number of such pods, and exactly those go;
6. status, events and metrics, with the same CamelCase reason words.

Without usable Prometheus answers nothing is removed: no drain starts, none completes; the
booked demand is still the floor (the core's rule), and condition `PrometheusUnavailable`
says why. While metrics are unavailable, and when the scaler starts, the current size is
recorded as a recommendation, so a scale-down waits one stabilization window after
Prometheus comes back (no collapse on a partial first scrape).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from meetscale import metrics as m
from meetscale.clients.colibri import Colibri, local_endpoints
from meetscale.clients.kube.pool import (
    COST_DRAINING,
    COST_REMOVE,
    DELETION_COST_ANNOTATION,
    DRAIN_STARTED_ANNOTATION,
    DRAINING_LABEL,
    HELD_LABEL,
    POOL_LABEL,
    KubeError,
    OwnerRef,
    PoolKube,
    media_port,
)
from meetscale.clients.prometheus import (
    PromClient,
    PromResult,
    PromUnavailable,
    PromValues,
    substitute,
)
from meetscale.decide.scale.adhoc import Arrival, adhoc_rate
from meetscale.decide.scale.plan import (
    BookedMeeting,
    PoolParams,
    ScaleHistory,
    ScalePlan,
    decide_scale,
    record,
)
from meetscale.decide.scale.removal import BridgeState, drain_complete
from meetscale.models import BridgePoolSpec
from meetscale.records import MeetingRecord

log = logging.getLogger("meetscale.scaling.scaler")

EventSink = Callable[[str, str, bool], None]  # (reason, message, warning)
StatusSink = Callable[[dict[str, Any]], Awaitable[bool]]

PLACEHOLDER_PREFIX: Final = "(starting-"
REMOVAL_FORGET: Final = timedelta(seconds=120)
INTENT_FORGET: Final = timedelta(seconds=30)
BOOKED_PHASES: Final = frozenset({"Admitted", "Running"})


def _parse_time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def _ts(t: datetime) -> str:
    return t.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class PodRecord:
    """A bridge pod as the pods index keeps it."""

    namespace: str
    name: str
    uid: str
    pool: str
    created: datetime
    ip: str | None = None
    running: bool = False
    ready: bool = False
    deleting: bool = False
    draining: bool = False
    drain_started: datetime | None = None
    deletion_cost: int | None = None
    template_hash: str | None = None
    held: bool = False

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.pool}"

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> PodRecord:
        meta = body.get("metadata") or {}
        labels = meta.get("labels") or {}
        annotations = meta.get("annotations") or {}
        status = body.get("status") or {}
        conditions = status.get("conditions") or []
        ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
        cost: int | None
        try:
            cost = int(annotations[DELETION_COST_ANNOTATION])
        except (KeyError, ValueError, TypeError):
            cost = None
        running = status.get("phase") == "Running"
        ip = status.get("podIP") or None
        return cls(
            namespace=str(meta.get("namespace", "")),
            name=str(meta.get("name", "")),
            uid=str(meta.get("uid", "")),
            pool=str(labels.get(POOL_LABEL, "")),
            created=_parse_time(meta.get("creationTimestamp")) or datetime.now(UTC),
            ip=ip,
            running=running,
            ready=running and ready and ip is not None,
            deleting=meta.get("deletionTimestamp") is not None,
            draining=labels.get(DRAINING_LABEL) == "true",
            drain_started=_parse_time(annotations.get(DRAIN_STARTED_ANNOTATION)),
            deletion_cost=cost,
            template_hash=labels.get("pod-template-hash"),
            held=labels.get(HELD_LABEL) == "true",
        )


def _pending(
    intents: dict[str, tuple[bool, datetime]], name: str, shown: bool, now: datetime
) -> tuple[bool, datetime] | None:
    """The mark this scaler wrote on pod ``name`` (value, when) while the pods index does
    not show it yet; forgotten once it does, or after ``INTENT_FORGET``."""
    intent = intents.get(name)
    if intent is None:
        return None
    if shown == intent[0] or now - intent[1] > INTENT_FORGET:
        del intents[name]
        return None
    return intent


def _after(b: BridgeState, started: set[str], cancelled: set[str]) -> BridgeState:
    if b.name in started:
        return replace(b, draining=True)
    if b.name in cancelled:
        return replace(b, draining=False)
    return b


# Ad-hoc (unbooked) arrivals are averaged over this window for the headroom term.
ADHOC_WINDOW = timedelta(minutes=30)


def booked_meetings(meetings: Sequence[MeetingRecord], now: datetime) -> list[BookedMeeting]:
    """The pool's admitted and running meetings that have not ended, for the core."""
    out = []
    for rec in meetings:
        spec = rec.spec
        if spec is None or spec.cancelled or rec.phase not in BOOKED_PHASES:
            continue
        end = spec.end_time
        if end <= now:
            continue
        out.append(
            BookedMeeting(
                key=rec.key,
                start=spec.start,
                end=end,
                participants=spec.participants,
                confidential=spec.confidential,
                running=rec.phase == "Running" or spec.start <= now,
            )
        )
    return out


@dataclass(frozen=True, slots=True)
class Metrics:
    """The Prometheus answers of one pass."""

    stress: PromResult
    endpoints: PromResult
    conferences: PromResult
    drain: PromResult

    @property
    def ok(self) -> bool:
        return isinstance(self.stress, PromValues) and isinstance(self.endpoints, PromValues)

    @property
    def problem(self) -> PromUnavailable | None:
        for r in (self.stress, self.endpoints):
            if isinstance(r, PromUnavailable):
                return r
        return None

    @staticmethod
    def value(result: PromResult, pod: str) -> float | None:
        return result.values.get(pod) if isinstance(result, PromValues) else None


def _skipped(reason: str, message: str) -> Metrics:
    r = PromUnavailable(reason, message)
    return Metrics(r, r, r, r)


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
        self.early_join = early_join
        self.name = name
        self.key = f"{namespace}/{name}"
        self.kube = kube
        self.prom = prom
        self.colibri = colibri
        self.events = events
        self.write_status = write_status
        self.clock = clock
        self.history = ScaleHistory()
        self._seeded = False
        self.removing: dict[str, datetime] = {}
        self._announced_timeouts: set[str] = set()
        self._services: dict[str, int] | None = None
        self._taken_ports: set[int] = set()
        self._last_status: dict[str, Any] | None = None
        self._last_scale: tuple[datetime, str, str] | None = None
        self._deployment_error: str | None = None
        # Drain marks written by this scaler that the pods index may not show yet:
        # pod name -> (draining, when).
        self._intent: dict[str, tuple[bool, datetime]] = {}
        # pod name -> (held, when): the hold marks written, for the same reason
        self._held_intent: dict[str, tuple[bool, datetime]] = {}

    # ------------------------------------------------------------------ inputs

    async def _query_metrics(self, spec: BridgePoolSpec, have_ready: bool) -> Metrics:
        source = spec.prometheus
        if source is None:
            return _skipped("NotConfigured", "spec.prometheus is not set")
        if not have_ready:
            return _skipped("NoBridges", "no ready bridge to measure")

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

    def _url(self, spec: BridgePoolSpec, pod: PodRecord) -> str:
        return f"http://{pod.ip}:{spec.colibri_port}"

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
        params = PoolParams.from_spec(spec, early_join=self.early_join)
        try:
            dep = await self.kube.ensure_deployment(
                self.namespace, self.name, spec, owner, initial_replicas=spec.min_bridges
            )
        except KubeError as exc:
            if self._deployment_error != exc.message:
                self.events(exc.reason, exc.message, True)
                log.warning("pool %s: %s", self.key, exc.message)
            self._deployment_error = exc.message
            status = self._status_on_error(exc, stored_status or {}, now, generation)
            written = await self._write(status)
            return PassResult(None, 0, 0, False, [], status, written, time.perf_counter() - t0)
        self._deployment_error = None

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
        for intents in (self._intent, self._held_intent):
            for name in [n for n in intents if n not in present]:
                del intents[name]
        kept = [self._overlay(p, now) for p in live if p.name not in self.removing]
        by_name = {p.name: p for p in kept}

        metrics = await self._query_metrics(spec, any(p.ready for p in kept))
        bridges = self._bridge_states(kept, metrics)
        for i in range(dep.replicas - len(kept)):  # pods the ReplicaSet has yet to create
            bridges.append(
                BridgeState(
                    name=f"{PLACEHOLDER_PREFIX}{i})", ready=False, draining=False, created_at=now
                )
            )
        current_active = sum(1 for b in bridges if not b.draining)
        if not self._seeded:
            self.history = self.history.add(now, current_active)
            self._seeded = True

        booked = booked_meetings(meetings, now)
        rate = adhoc_rate(
            (
                Arrival(rec.created, rec.spec.start, rec.spec.participants)
                for rec in meetings
                if rec.spec is not None
            ),
            now,
            lead_time=params.lead_time,
            window=ADHOC_WINDOW,
        )
        plan = decide_scale(params, bridges, booked, self.history, now, rate, metrics_ok=metrics.ok)
        result = PassResult(plan, dep.replicas, dep.replicas, metrics.ok)
        # Replicas move relative to the Deployment's own count, never to the pods seen (a
        # rollout's surge pod must not become permanent).
        base = dep.replicas

        # Drains back into service first: a ready bridge beats a new pod.
        cancelled = set()
        for name in plan.cancel_drain:
            pod = by_name.get(name)
            if pod is None:
                continue
            if await self._guard(self._cancel_drain(spec, pod)):
                cancelled.add(name)
                result.actions.append(f"DrainCancelled {name}")

        # Bridges held out of Jicofo's selection for a meeting about to open, and released.
        for name, held in [(n, True) for n in plan.hold] + [(n, False) for n in plan.release]:
            pod = by_name.get(name)
            shielded = name in plan.shield
            if pod is not None and await self._guard(self._hold(spec, pod, held, now, shielded)):
                result.actions.append(f"{'BridgeHeld' if held else 'BridgeReleased'} {name}")

        # New bridges.
        target = base + plan.new_bridges
        # Drains to start.
        started = set()
        for name in plan.drain:
            pod = by_name.get(name)
            if pod is None:
                continue
            state = next(b for b in bridges if b.name == name)
            if await self._guard(self._start_drain(spec, pod, state, now)):
                started.add(name)
                result.actions.append(f"DrainStarted {name}")

        # Drains to finish (never without metrics, never while growing).
        removable: list[PodRecord] = []
        if metrics.ok and plan.new_bridges == 0:
            removable = await self._finish_drains(
                spec, bridges, by_name, cancelled | started, now, result
            )
        if removable:
            others = [p for p in kept if p not in removable]
            hashes = {p.template_hash for p in kept}
            why_not = None
            if not dep.settled or len(kept) != dep.replicas:
                why_not = f"Deployment not settled ({len(kept)} pods, {dep.replicas} replicas)"
            elif len(hashes) > 1:
                why_not = "a rollout is in progress"
            elif not all(p.ready for p in others):
                why_not = "other bridges are not ready yet"
            if why_not is None:
                target -= len(removable)
                for pod in removable:
                    self.removing[pod.name] = now
            else:
                log.info(
                    "pool %s: %d drained bridges wait for removal: %s",
                    self.key,
                    len(removable),
                    why_not,
                )
                removable = []

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
            timed_out = pod.uid in self._announced_timeouts
            self._announced_timeouts.discard(pod.uid)
            m.drains.labels(pool=self.key, outcome="BridgeRemoved").inc()
            self.events(
                "BridgeRemoved",
                f"removed drained bridge {pod.name}"
                + (" after the drain timeout" if timed_out else " (no participants left)"),
                False,
            )
            result.actions.append(f"BridgeRemoved {pod.name}")

        if metrics.ok:
            await self._reconcile_drain_mode(spec, kept, metrics, cancelled | started)
        if spec.per_bridge_service.enabled:
            await self._guard(self._ensure_services(spec, kept))

        # History and the decision's event.
        self.history = record(self.history, plan, now)
        if not metrics.ok:
            # Remember the size held during the outage: scale-down restarts its
            # stabilization window when metrics come back.
            self.history = self.history.add(now, plan.desired)
        direction = None
        if plan.desired > plan.current and (cancelled or plan.new_bridges):
            direction = "Up"
        elif started:
            direction = "Down"
        if direction is not None:
            self._last_scale = (now, direction, plan.reason)
            m.scale_decisions.labels(pool=self.key, direction=direction, reason=plan.reason).inc()
            self.events(plan.reason, f"scale {direction.lower()}: {plan.message}", False)
            log.info("pool %s: scale %s (%s): %s", self.key, direction, plan.reason, plan.message)

        status = self._status(
            spec,
            plan,
            bridges,
            metrics,
            stored_status or {},
            now,
            generation,
            {p.name for p in removable},
            (started, cancelled),
        )
        # held (for a booked meeting larger than a bridge, or shielded), after this pass
        held_now = ({b.name for b in bridges if b.held} | set(plan.hold)) - set(plan.release)
        status["held"] = len(held_now)
        result.status = status
        result.status_written = await self._write(status)
        self._export(plan, status)
        result.seconds = time.perf_counter() - t0
        m.pool_reconcile_seconds.labels(pool=self.key).observe(result.seconds)
        return result

    # ------------------------------------------------------------------ pieces

    def _overlay(self, pod: PodRecord, now: datetime) -> PodRecord:
        """The pod with the drain and hold marks this scaler wrote, if the index lags."""
        held = _pending(self._held_intent, pod.name, pod.held, now)
        if held is not None:
            pod = replace(pod, held=held[0])
        intent = _pending(self._intent, pod.name, pod.draining, now)
        if intent is None:
            return pod
        draining, when = intent
        if draining:
            return replace(pod, draining=True, drain_started=when, deletion_cost=COST_DRAINING)
        return replace(pod, draining=False, drain_started=None, deletion_cost=None)

    def _bridge_states(self, pods: Sequence[PodRecord], metrics: Metrics) -> list[BridgeState]:
        out = []
        for p in pods:
            stress = Metrics.value(metrics.stress, p.name)
            endpoints = Metrics.value(metrics.endpoints, p.name)
            conferences = Metrics.value(metrics.conferences, p.name)
            out.append(
                BridgeState(
                    name=p.name,
                    ready=p.ready,
                    draining=p.draining,
                    created_at=p.created,
                    stress=stress,
                    endpoints=None if endpoints is None else round(endpoints),
                    conferences=None if conferences is None else round(conferences),
                    drain_started_at=p.drain_started,
                    held=p.held,
                )
            )
        return out

    async def _guard(self, aw: Awaitable[Any]) -> bool:
        """Run one write; a KubeError is logged (and counted by PoolKube), the pass goes on."""
        try:
            await aw
        except KubeError as exc:
            log.warning("pool %s: %s", self.key, exc.message)
            return False
        return True

    async def _cancel_drain(self, spec: BridgePoolSpec, pod: PodRecord) -> None:
        if pod.ip:
            await self.colibri.set_drain(self._url(spec, pod), False)
        await self.kube.unmark_draining(self.namespace, pod.name)
        self._intent[pod.name] = (False, self.clock())
        self._announced_timeouts.discard(pod.uid)
        m.drains.labels(pool=self.key, outcome="DrainCancelled").inc()
        self.events("DrainCancelled", f"bridge {pod.name} back in service: load rose again", False)

    async def _hold(
        self, spec: BridgePoolSpec, pod: PodRecord, held: bool, now: datetime, shield: bool
    ) -> None:
        # Mark first, as for drains: later passes repeat the bridge call if it fails.
        await self.kube.mark_held(self.namespace, pod.name, held)
        self._held_intent[pod.name] = (held, now)
        if pod.ip:
            await self.colibri.set_drain(self._url(spec, pod), held)
        if not held:
            message = (
                f"bridge {pod.name} back in Jicofo's selection: the meeting it was held for "
                "may open now, or the meetings it was shielded from have landed"
            )
        elif shield:
            message = (
                f"bridge {pod.name} out of Jicofo's selection (drain mode, its conferences "
                "stay): the meetings about to start would pile onto it, the least-loaded bridge"
            )
        else:
            message = (
                f"bridge {pod.name} kept empty (drain mode) for a booked meeting larger than a "
                "bridge that may open soon"
            )
        self.events("BridgeHeld" if held else "BridgeReleased", message, False)

    async def _start_drain(
        self, spec: BridgePoolSpec, pod: PodRecord, state: BridgeState, now: datetime
    ) -> None:
        # Mark first: the mark is the record of the decision; the bridge call is repeated
        # by later passes if it fails (see _reconcile_drain_mode).
        await self.kube.mark_draining(self.namespace, pod.name, now)
        self._intent[pod.name] = (True, now)
        if pod.ip:
            await self.colibri.set_drain(self._url(spec, pod), True)
        m.drains.labels(pool=self.key, outcome="DrainStarted").inc()
        self.events(
            "DrainStarted",
            f"draining bridge {pod.name}: {state.endpoints} participants in "
            f"{state.conferences} conferences stay until they leave "
            f"(timeout {spec.drain_timeout_seconds}s)",
            False,
        )

    async def _finish_drains(
        self,
        spec: BridgePoolSpec,
        bridges: Sequence[BridgeState],
        by_name: Mapping[str, PodRecord],
        skip: set[str],
        now: datetime,
        result: PassResult,
    ) -> list[PodRecord]:
        """Draining pods that may go now (marked with the lowest deletion cost earlier)."""
        timeout = timedelta(seconds=spec.drain_timeout_seconds)
        removable = []
        for b in bridges:
            pod = by_name.get(b.name)
            if pod is None or not b.draining or b.name in skip:
                continue
            started = pod.drain_started or now
            outcome = drain_complete(b, started, now, timeout)
            if outcome == "Waiting":
                continue
            if outcome == "Empty":
                # Prometheus lags a scrape: ask the bridge itself before it goes.
                stats = await self.colibri.stats(self._url(spec, pod)) if pod.ip else None
                left = local_endpoints(stats) if stats is not None else None
                in_drain = stats is not None and stats.get("drain") is True
                if stats is not None and not in_drain and pod.ip:
                    await self.colibri.set_drain(self._url(spec, pod), True)
                if (left != 0 or not in_drain) and now - started < timeout:
                    continue
            if now - started >= timeout and pod.uid not in self._announced_timeouts:
                self._announced_timeouts.add(pod.uid)
                m.drain_timeouts.labels(pool=self.key).inc()
                m.drains.labels(pool=self.key, outcome="DrainTimeout").inc()
                self.events(
                    "DrainTimeout",
                    f"bridge {pod.name} still hosts {b.endpoints} participants after the drain "
                    f"timeout of {spec.drain_timeout_seconds}s; removing it (the preStop hook "
                    "shuts it down gracefully within terminationGracePeriodSeconds)",
                    True,
                )
                result.actions.append(f"DrainTimeout {pod.name}")
            if pod.deletion_cost != COST_REMOVE:
                if await self._guard(self.kube.mark_removable(self.namespace, pod.name)):
                    result.actions.append(f"MarkedForRemoval {pod.name}")
                continue  # removed in a later pass, once the mark is visible
            removable.append(pod)
        return removable

    async def _reconcile_drain_mode(
        self,
        spec: BridgePoolSpec,
        pods: Sequence[PodRecord],
        metrics: Metrics,
        skip: set[str],
    ) -> None:
        """Bring each bridge's drain mode in line with its pod's mark (retries failed calls)."""
        calls = []
        for p in pods:
            if not p.ip or p.name in skip:
                continue
            reported = Metrics.value(metrics.drain, p.name)
            if reported is None:
                continue
            wanted = p.draining or p.held
            if wanted != (reported >= 0.5):
                calls.append(self.colibri.set_drain(self._url(spec, p), wanted))
        if calls:
            await asyncio.gather(*calls)

    async def _ensure_services(self, spec: BridgePoolSpec, pods: Sequence[PodRecord]) -> None:
        cfg = spec.per_bridge_service
        if self._services is not None and all(p.name in self._services for p in pods):
            return
        self._services = await self.kube.list_bridge_services(self.namespace, self.name)
        self._taken_ports = set(self._services.values())
        target_port = media_port(spec)
        for p in pods:
            if p.name in self._services:
                continue
            port = await self.kube.ensure_bridge_service(
                self.namespace,
                self.name,
                p.name,
                p.uid,
                (cfg.node_port_min, cfg.node_port_max),
                self._taken_ports,
                target_port,
            )
            if port is None:
                self.events(
                    "NodePortsExhausted",
                    f"no free NodePort in {cfg.node_port_min}-{cfg.node_port_max} for bridge "
                    f"{p.name}",
                    True,
                )
                continue
            self._services[p.name] = port

    # ------------------------------------------------------------------ status

    @staticmethod
    def _condition(
        ctype: str,
        ok: bool,
        reason: str,
        message: str,
        now: datetime,
        old: Mapping[str, Any],
        generation: int | None,
    ) -> dict[str, Any]:
        status = "True" if ok else "False"
        prev = {c.get("type"): c for c in old.get("conditions") or []}.get(ctype)
        when = prev["lastTransitionTime"] if prev and prev.get("status") == status else _ts(now)
        out: dict[str, Any] = {
            "type": ctype,
            "status": status,
            "reason": reason,
            "message": message,
            "lastTransitionTime": when,
        }
        if generation is not None:
            out["observedGeneration"] = generation
        return out

    def _old(self, stored: Mapping[str, Any]) -> Mapping[str, Any]:
        return self._last_status if self._last_status is not None else stored

    def _status_on_error(
        self, exc: KubeError, stored: Mapping[str, Any], now: datetime, generation: int | None
    ) -> dict[str, Any]:
        old = self._old(stored)
        conds = [c for c in old.get("conditions") or [] if c.get("type") != "DeploymentReady"]
        conds.append(
            self._condition("DeploymentReady", False, exc.reason, exc.message, now, old, generation)
        )
        return {**old, "conditions": conds}

    def _status(
        self,
        spec: BridgePoolSpec,
        plan: ScalePlan,
        bridges: Sequence[BridgeState],
        metrics: Metrics,
        stored: Mapping[str, Any],
        now: datetime,
        generation: int | None,
        gone: set[str],
        changes: tuple[set[str], set[str]],
    ) -> dict[str, Any]:
        """The status after this pass's actions (drains started/cancelled, pods removed)."""
        old = self._old(stored)
        started, cancelled = changes
        real = [_after(b, started, cancelled) for b in bridges if b.name not in gone]
        real = [b for b in real if not b.name.startswith(PLACEHOLDER_PREFIX)]
        active = [b for b in real if not b.draining]
        ready = [b for b in active if b.ready]
        draining = sorted(b.name for b in real if b.draining)
        stresses = [b.stress for b in ready if b.stress is not None]
        endpoints = [b.endpoints for b in real if b.endpoints is not None]

        def cond(ctype: str, ok: bool, reason: str, message: str) -> dict[str, Any]:
            return self._condition(ctype, ok, reason, message, now, old, generation)

        pc = plan.conditions
        able = pc["AbleToScale"]
        hi = spec.max_bridges
        conditions = [
            cond("DeploymentReady", True, "DeploymentOwned", "the bridge Deployment is up to date"),
            cond("ScalingActive", *pc["ScalingActive"]),
            cond("AbleToScale", *able),
            cond("ScaleUpStabilized", able[1] == "ScaleUpStabilized", *self._stab(able, "Up")),
            cond(
                "ScaleDownStabilized", able[1] == "ScaleDownStabilized", *self._stab(able, "Down")
            ),
            cond("ScaleLimited", *pc["ScalingLimited"]),
            cond(
                "AtMaximum",
                plan.desired >= hi,
                "AtMaximum" if plan.desired >= hi else "BelowMaximum",
                f"desired {plan.desired} of at most {hi} bridges (live wants "
                f"{plan.live_replicas}, bookings {plan.booked_replicas})",
            ),
            cond("BookingsCovered", *pc["BookingsCovered"]),
            cond("PrometheusUnavailable", *self._prom_condition(metrics)),
            cond(
                "Draining",
                bool(draining),
                "DrainInProgress" if draining else "NoDrain",
                f"draining: {', '.join(draining)}" if draining else "no bridge is draining",
            ),
        ]
        status: dict[str, Any] = {
            "desired": plan.desired,
            "current": plan.current,
            "ready": len(ready),
            "draining": len(draining),
            "observedStress": round(sum(stresses) / len(stresses), 3) if stresses else None,
            "observedParticipants": sum(endpoints) if metrics.ok else None,
            "bookedParticipants": plan.booked.participants,
            "bookedBridges": plan.booked_replicas,
            "conditions": conditions,
        }
        if self._last_scale is not None:
            when, direction, reason = self._last_scale
            status["lastScaleTime"] = _ts(when)
            status["lastScaleDirection"] = direction
            status["lastScaleReason"] = reason
        if generation is not None:
            status["observedGeneration"] = generation
        return status

    @staticmethod
    def _prom_condition(metrics: Metrics) -> tuple[bool, str, str]:
        problem = metrics.problem
        if problem is None:
            return False, "QueriesSucceeded", "per-bridge metrics are available"
        if problem.reason == "NoBridges":
            return False, "NoBridges", problem.message
        return (
            True,
            problem.reason,
            f"{problem.message}; not scaling down, booked demand is the floor",
        )

    @staticmethod
    def _stab(able: tuple[bool, str, str], direction: str) -> tuple[str, str]:
        if able[1] == f"Scale{direction}Stabilized":
            return able[1], able[2]
        return "NotStabilized", f"no scale-{direction.lower()} held back by stabilization"

    async def _write(self, status: dict[str, Any]) -> bool:
        if status == self._last_status:
            return False
        ok = await self.write_status(status)
        if ok:
            self._last_status = status
        return ok

    def _export(self, plan: ScalePlan, status: Mapping[str, Any]) -> None:
        m.pool_desired_bridges.labels(pool=self.key).set(plan.desired)
        m.pool_bridges.labels(pool=self.key, state="InService").set(plan.current)
        m.pool_bridges.labels(pool=self.key, state="Ready").set(status["ready"])
        m.pool_bridges.labels(pool=self.key, state="Draining").set(status["draining"])
        m.pool_bridges.labels(pool=self.key, state="Held").set(status["held"])

    def forget_metrics(self) -> None:
        """Drop this pool's gauges (the pool is gone)."""
        for gauge, labels in (
            (m.pool_desired_bridges, {"pool": self.key}),
            *(
                (m.pool_bridges, {"pool": self.key, "state": s})
                for s in ("InService", "Ready", "Draining", "Held")
            ),
        ):
            with contextlib.suppress(KeyError):
                gauge.remove(*labels.values())
