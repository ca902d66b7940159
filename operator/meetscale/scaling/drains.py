"""Carrying out the plan on the bridges: bridges created (a Pod and its media-port
Service), drains started and cancelled, bridges held and released, drained bridges
confirmed empty and removed (exactly their Pods), drain mode kept in line with the marks.
Every write is idempotent; a failed one is logged and repeated by a later pass."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, Literal

from meetscale import metrics
from meetscale.clients.colibri import Colibri, local_endpoints
from meetscale.clients.kube.pool import KubeError, OwnerRef, PoolKube
from meetscale.clients.kube.render import bridge_name, bridge_pod, bridge_service
from meetscale.decide.scale import BridgeState
from meetscale.decide.scale.removal import DrainingBridge, awaiting_confirmation
from meetscale.models import BridgePoolSpec
from meetscale.scaling.inputs import Intents, Metrics, PodRecord

__all__ = ["BridgeActions", "EventSink"]

log = logging.getLogger("meetscale.scaler")

EventSink = Callable[[str, str, bool], None]  # (reason, message, warning)
#: why a bridge is held: the shield against a pile-up, a meeting larger than a bridge, pins
HoldWhy = Literal["shield", "large", "pins"]


class BridgeActions:
    """The writes of one pool's scaler to its bridge pods and to the bridges themselves."""

    def __init__(
        self,
        namespace: str,
        pool: str,
        *,
        kube: PoolKube,
        colibri: Colibri,
        events: EventSink,
        intents: Intents,
    ) -> None:
        self.namespace = namespace
        self.pool = pool
        self.key = f"{namespace}/{pool}"
        self.kube = kube
        self.colibri = colibri
        self.events = events
        self.intents = intents
        self.announced_timeouts: set[str] = set()  # pod uids
        self._services: dict[str, int] | None = None

    @staticmethod
    def url(spec: BridgePoolSpec, pod: PodRecord) -> str:
        return f"http://{pod.ip}:{spec.colibri_port}"

    async def guard(self, aw: Awaitable[Any]) -> bool:
        """Run one write; a KubeError is logged (and counted by PoolKube), the pass goes on."""
        try:
            await aw
        except KubeError as exc:
            log.warning("pool %s: %s", self.key, exc.message)
            return False
        return True

    async def cancel_drain(self, spec: BridgePoolSpec, pod: PodRecord, now: datetime) -> None:
        if pod.ip:
            await self.colibri.set_drain(self.url(spec, pod), False)
        await self.kube.unmark_draining(self.namespace, pod.name)
        self.intents.drain[pod.name] = (False, now)
        self.announced_timeouts.discard(pod.uid)
        metrics.drains.labels(pool=self.key, outcome="DrainCancelled").inc()
        self.events("DrainCancelled", f"bridge {pod.name} back in service: load rose again", False)

    async def hold(
        self, spec: BridgePoolSpec, pod: PodRecord, held: bool, now: datetime, why: HoldWhy
    ) -> None:
        # Mark first, as for drains: later passes repeat the bridge call if it fails.
        await self.kube.mark_held(self.namespace, pod.name, held)
        self.intents.held[pod.name] = (held, now)
        if pod.ip:
            await self.colibri.set_drain(self.url(spec, pod), held)
        if not held:
            message = (
                f"bridge {pod.name} back in Jicofo's selection: the meeting it was held for "
                "may open now, the meetings it was shielded from have landed, or the "
                "conferences pinned to it have opened"
            )
        elif why == "pins":
            message = (
                f"bridge {pod.name} out of Jicofo's selection (drain mode, its conferences "
                "stay): conferences pinned to it are about to open, and no unpinned one is to "
                "take their room"
            )
        elif why == "shield":
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

    async def start_drain(
        self, spec: BridgePoolSpec, pod: PodRecord, state: BridgeState, now: datetime
    ) -> None:
        # Mark first: the mark is the record of the decision; the bridge call is repeated
        # by later passes if it fails (see reconcile_drain_mode).
        await self.kube.mark_draining(self.namespace, pod.name, now)
        self.intents.drain[pod.name] = (True, now)
        if pod.ip:
            await self.colibri.set_drain(self.url(spec, pod), True)
        metrics.drains.labels(pool=self.key, outcome="DrainStarted").inc()
        self.events(
            "DrainStarted",
            f"draining bridge {pod.name}: {state.endpoints} participants in "
            f"{state.conferences} conferences stay until they leave "
            f"(timeout {spec.drain_timeout_seconds}s)",
            False,
        )

    async def draining_bridges(
        self,
        spec: BridgePoolSpec,
        bridges: Sequence[BridgeState],
        by_name: Mapping[str, PodRecord],
        skip: set[str],
        now: datetime,
    ) -> list[DrainingBridge]:
        """The draining bridges for :func:`~meetscale.decide.scale.removal.plan_removal`;
        those Prometheus reports empty are asked themselves (Prometheus lags a scrape)."""
        draining = [b for b in bridges if b.draining and b.name in by_name and b.name not in skip]
        timeout = timedelta(seconds=spec.drain_timeout_seconds)
        ask = set(awaiting_confirmation(draining, now, timeout))

        async def one(b: BridgeState) -> DrainingBridge:
            pod = by_name[b.name]
            if b.drain_started_at is None:
                b = replace(b, drain_started_at=now)
            if b.name not in ask or not pod.ip:
                return DrainingBridge(b)
            stats = await self.colibri.stats(self.url(spec, pod))
            if stats is None:
                return DrainingBridge(b)
            return DrainingBridge(
                b, own_endpoints=local_endpoints(stats), in_drain_mode=stats.get("drain") is True
            )

        return list(await asyncio.gather(*(one(b) for b in draining)))

    def announce_timeout(self, pod: PodRecord, endpoints: int | None, timeout_s: int) -> bool:
        """A Warning event and the metric, once per pod; True the first time."""
        if pod.uid in self.announced_timeouts:
            return False
        self.announced_timeouts.add(pod.uid)
        metrics.drain_timeouts.labels(pool=self.key).inc()
        metrics.drains.labels(pool=self.key, outcome="DrainTimeout").inc()
        self.events(
            "DrainTimeout",
            f"bridge {pod.name} still hosts {endpoints} participants after the drain "
            f"timeout of {timeout_s}s; removing it (the preStop hook shuts it down "
            "gracefully within terminationGracePeriodSeconds)",
            True,
        )
        return True

    async def remove(self, pod: PodRecord) -> None:
        """Delete a drained bridge's Pod and its media-port Service."""
        await self.kube.delete_pod(self.namespace, pod.name)
        if self._services is not None and self._services.pop(pod.name, None) is not None:
            await self.kube.delete_service(self.namespace, pod.name)
        timed_out = pod.uid in self.announced_timeouts
        self.announced_timeouts.discard(pod.uid)
        metrics.drains.labels(pool=self.key, outcome="BridgeRemoved").inc()
        self.events(
            "BridgeRemoved",
            f"removed drained bridge {pod.name}"
            + (" after the drain timeout" if timed_out else " (no participants left)"),
            False,
        )

    async def reconcile_drain_mode(
        self,
        spec: BridgePoolSpec,
        pods: Sequence[PodRecord],
        answers: Metrics,
        skip: set[str],
        redrain: Sequence[str] = (),
    ) -> None:
        """Bring each bridge's drain mode in line with its pod's mark (retries failed
        calls); ``redrain``: bridges that answered they are not in drain mode."""
        calls = []
        again = set(redrain)
        for p in pods:
            if not p.ip or p.name in skip:
                continue
            wanted = p.draining or p.held
            reported = Metrics.value(answers.drain, p.name)
            if p.name in again or (reported is not None and wanted != (reported >= 0.5)):
                calls.append(self.colibri.set_drain(self.url(spec, p), wanted))
        if calls:
            await asyncio.gather(*calls)

    async def services(self) -> dict[str, int]:
        """Bridge name -> media port of the pool's Services (listed once, then kept)."""
        if self._services is None:
            self._services = await self.kube.list_bridge_services(self.namespace, self.pool)
        return self._services

    async def _port(self, spec: BridgePoolSpec, name: str, owner: OwnerRef) -> int | None:
        """A media port of its own for bridge ``name``: its NodePort Service, the lowest
        free port of the pool's range; None when the range is exhausted."""
        cfg = spec.per_bridge_service
        services = await self.services()
        taken = set(services.values())
        for port in range(cfg.node_port_min, cfg.node_port_max + 1):
            if port in taken:
                continue
            body = bridge_service(self.pool, self.namespace, name, owner.to_wire(), port)
            got = await self.kube.create_service(self.namespace, body)
            if got is not None:
                services[name] = got
                return got
            taken.add(port)  # allocated elsewhere in the cluster
        self.events(
            "NodePortsExhausted",
            f"no free NodePort in {cfg.node_port_min}-{cfg.node_port_max} for a new bridge",
            True,
        )
        return None

    async def create(
        self,
        spec: BridgePoolSpec,
        owner: OwnerRef,
        suffix: str,
        now: datetime,
        group: str | None = None,
    ) -> str | None:
        """Create one bridge (``group``: the spanning group it is for): its media port first
        (the stock image reads it at start), then its Pod. The bridge's name, or None when
        no port is free."""
        name = bridge_name(self.pool, suffix)
        port: int | None = None
        if spec.jitsi is not None or spec.per_bridge_service.enabled:
            port = await self._port(spec, name, owner)
            if port is None:
                return None
        body = bridge_pod(self.pool, self.namespace, name, spec, owner.to_wire(), port, group)
        if group is not None:
            self.intents.groups[name] = group
        try:
            await self.kube.create_pod(self.namespace, body)
        except KubeError as exc:
            if exc.status == 0 or exc.status >= 500:
                # No answer, or the apiserver's own trouble (an etcd that stalled): the Pod
                # may exist all the same. It counts as starting until the apiserver says
                # (see settle_uncertain), so that the next pass does not create another.
                self.intents.uncertain[name] = now
                raise
            if port is not None:
                await self.kube.delete_service(self.namespace, name)
                (await self.services()).pop(name, None)
            raise
        self.intents.created[name] = now
        return name

    async def settle_uncertain(self, present: set[str]) -> None:
        """Pods whose create got no clear answer: shown by the index, or existing, they
        are created; not found, forgotten (the next pass creates one if it needs)."""
        for name in list(self.intents.uncertain):
            found = True if name in present else await self.kube.pod_exists(self.namespace, name)
            if found is None:
                continue  # the apiserver still does not say
            when = self.intents.uncertain.pop(name)
            if found and name not in present:
                self.intents.created[name] = when

    async def sweep_services(self, pods: Sequence[str], starting: Sequence[str]) -> None:
        """Delete the media-port Services whose bridge is gone."""
        if self._services is None:
            return
        live = set(pods) | set(starting)
        for name in [n for n in self._services if n not in live]:
            await self.kube.delete_service(self.namespace, name)
            del self._services[name]
