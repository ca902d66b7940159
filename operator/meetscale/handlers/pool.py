"""Kopf registration of the pool scaler: a pods index and one scaling loop per BridgePool.

The loop is a daemon of its own, next to the admission daemon of `handlers.py`, so slow
Prometheus answers or bridge calls never delay admission. It reads the pool's bridge pods
from the `bridge_pods` index and its booked meetings from `meetings_by_pool` (both
in-memory), and runs one :meth:`~meetscale.scaling.scaler.PoolScaler.reconcile` every
`spec.syncPeriodSeconds`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Any

import kopf

from meetscale import API_VERSION, GROUP, VERSION
from meetscale import metrics as m
from meetscale.clients.colibri import Colibri
from meetscale.clients.jicofo import Jicofo
from meetscale.clients.kube.pool import OwnerRef, PoolKube
from meetscale.clients.prometheus import PromClient
from meetscale.models.labels import POOL_LABEL
from meetscale.records import MeetingRecord
from meetscale.runtime import Runtime
from meetscale.scaling.inputs import PodRecord
from meetscale.scaling.scaler import PoolScaler

log = logging.getLogger("meetscale.scaling.scaler")

DEFAULT_PERIOD = 15.0


@dataclass
class PoolClients:
    """Process-wide clients of the scaling loops (made at start-up, closed at clean-up)."""

    kube: PoolKube
    prom: PromClient
    colibri: Colibri
    jicofo: Jicofo

    async def close(self) -> None:
        await self.prom.close()
        await self.colibri.close()
        await self.jicofo.close()


@kopf.on.startup()
async def pool_clients_startup(memo: kopf.Memo, **_: Any) -> None:
    memo["pool_clients"] = PoolClients(
        PoolKube(memo["runtime"].api), PromClient(), Colibri(), Jicofo()
    )


@kopf.on.cleanup()
async def pool_clients_cleanup(memo: kopf.Memo, **_: Any) -> None:
    clients: PoolClients | None = memo.get("pool_clients")
    if clients is not None:
        await clients.close()


@kopf.index("", "v1", "pods", labels={POOL_LABEL: kopf.PRESENT})
async def bridge_pods(body: kopf.Body, **_: Any) -> dict[str, PodRecord]:
    record = PodRecord.from_body(body)
    return {record.key: record}


@kopf.daemon(GROUP, VERSION, "bridgepools", cancellation_timeout=10)
async def scaling(
    *,
    namespace: str | None,
    name: str,
    uid: str | None,
    body: kopf.Body,
    spec: kopf.Spec,
    meta: kopf.Meta,
    stopped: kopf.DaemonStopped,
    memo: kopf.Memo,
    **kwargs: Any,
) -> None:
    """The scaling loop of this pool: one reconcile every spec.syncPeriodSeconds; it runs on
    the leader replica only."""
    runtime: Runtime = memo["runtime"]
    if not await runtime.lead(stopped):
        return
    clients: PoolClients = memo["pool_clients"]
    pods_index: kopf.Index[str, PodRecord] = kwargs["bridge_pods"]
    meetings_index: kopf.Index[str, MeetingRecord] = kwargs["meetings_by_pool"]
    ns = namespace or ""
    key = f"{ns}/{name}"
    ref = {"name": name, "namespace": ns, "uid": uid}

    async def write_status(status: dict[str, Any]) -> bool:
        return await runtime.writer.pool_status(ns, name, status)

    scaler = PoolScaler(
        ns,
        name,
        kube=clients.kube,
        prom=clients.prom,
        colibri=clients.colibri,
        jicofo=clients.jicofo,
        events=lambda reason, message, warning: runtime.writer.event(
            "BridgePool", ref, reason, message, warning
        ),
        write_status=write_status,
        early_join=runtime.settings.pre_join_margin,
        write_meeting=runtime.writer.meeting_status,
        operator_namespace=runtime.settings.operator_namespace,
    )
    owner = OwnerRef(API_VERSION, "BridgePool", name, uid or "")
    try:
        while not stopped:
            started = time.monotonic()
            pool_spec = runtime.pool_spec(spec)
            period = float(pool_spec.sync_period_seconds) if pool_spec else DEFAULT_PERIOD
            if pool_spec is not None:
                m.pool_max_bridges.labels(pool=key).set(pool_spec.max_bridges)
                try:
                    result = await scaler.reconcile(
                        pool_spec,
                        owner,
                        list(pods_index.get(key, [])),
                        list(meetings_index.get(key, [])),
                        dict(body.get("status") or {}),
                        meta.get("generation"),
                    )
                    if result.pool_now is not None:
                        runtime.cross.door[key] = result.pool_now
                except asyncio.CancelledError:
                    raise
                except Exception:  # one bad pass must not end the loop
                    log.exception("pool %s: reconcile failed", key)
            await stopped.wait(max(period - (time.monotonic() - started), 0.05))
    finally:
        runtime.cross.door.pop(key, None)
        scaler.forget_metrics()
        with contextlib.suppress(KeyError):
            m.pool_max_bridges.remove(key)
