"""Kopf registration: each handler gathers inputs or starts a loop, a few lines each.
Decisions are made in meetscale.decide; writes in meetscale.clients.kube.

Index and event handlers are coroutines although they do not await: Kopf runs plain
functions in its thread pool, two thread hops per watch event, which at thousands of
Meetings cost more than the handlers themselves."""

from __future__ import annotations

import asyncio
from typing import Any

import kopf

from meetscale import GROUP, VERSION
from meetscale.admission.loop import run_pool
from meetscale.config import Settings
from meetscale.models import BridgePoolSpec
from meetscale.records import MeetingRecord, QuotaRecord
from meetscale.runtime import Runtime, pool_key_of


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    runtime: Runtime = memo["runtime"]
    runtime.configure_kopf(settings)
    await runtime.start()


@kopf.on.cleanup()
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    runtime: Runtime = memo["runtime"]
    await runtime.stop()


@kopf.index(GROUP, VERSION, "meetings")
async def meetings_by_pool(body: kopf.Body, memo: kopf.Memo, **_: Any) -> dict[str, MeetingRecord]:
    config: Settings = memo["runtime"].settings
    return {pool_key_of(body.get("spec", {}).get("pool"), config): MeetingRecord.from_body(body)}


@kopf.index(GROUP, VERSION, "agencyquotas")
async def quotas_by_name(body: kopf.Body, name: str, **_: Any) -> dict[str, QuotaRecord]:
    return {name: QuotaRecord.from_body(body)}


@kopf.index("", "v1", "namespaces")
async def namespace_labels(name: str, labels: kopf.Labels, **_: Any) -> dict[str, dict[str, str]]:
    return {name: dict(labels)}


@kopf.index(GROUP, VERSION, "bridgepools")
async def pools_by_key(
    *, namespace: str | None, name: str, spec: kopf.Spec, memo: kopf.Memo, **_: Any
) -> dict[str, BridgePoolSpec | None]:
    return {f"{namespace}/{name}": memo["runtime"].pool_spec(spec)}


def _unobserved(body: kopf.Body, event_type: str | None) -> bool:
    """Whether a watch event can change a decision: a new or deleted object, or a spec the
    operator has not yet decided on. The operator's own status writes are not (they would
    otherwise wake the loop that wrote them)."""
    if event_type in (None, "ADDED", "DELETED"):
        return True
    generation = body.get("metadata", {}).get("generation")
    return bool(generation != body.get("status", {}).get("observedGeneration"))


@kopf.on.event(GROUP, VERSION, "meetings")
async def meeting_event(
    *, body: kopf.Body, type: str | None, spec: kopf.Spec, memo: kopf.Memo, **_: Any
) -> None:
    if _unobserved(body, type):
        runtime: Runtime = memo["runtime"]
        runtime.wakers.wake(pool_key_of(spec.get("pool"), runtime.settings))


@kopf.on.event(GROUP, VERSION, "agencyquotas")
async def quota_event(*, body: kopf.Body, type: str | None, memo: kopf.Memo, **_: Any) -> None:
    if _unobserved(body, type):
        memo["runtime"].wakers.wake(full=True)


@kopf.on.event("", "v1", "namespaces")
async def namespace_event(*, memo: kopf.Memo, **_: Any) -> None:
    # Kopf calls event handlers only once every index is filled, and every cluster has
    # namespaces: the first call tells the webhook and /readyz that the indexes are ready.
    memo["runtime"].indexed.set()
    memo["runtime"].wakers.wake(full=True)


@kopf.daemon(GROUP, VERSION, "bridgepools", cancellation_timeout=10)
async def admission(
    *,
    namespace: str | None,
    name: str,
    spec: kopf.Spec,
    stopped: kopf.DaemonStopped,
    memo: kopf.Memo,
    **kwargs: Any,
) -> None:
    """The admission loop of this pool (Kueue-style: one scheduler, decisions serialized);
    it runs on the leader replica only."""
    runtime: Runtime = memo["runtime"]
    if not await runtime.lead(stopped):
        return
    meetings_by_pool: kopf.Index[str, MeetingRecord] = kwargs["meetings_by_pool"]
    quotas_by_name: kopf.Index[str, QuotaRecord] = kwargs["quotas_by_name"]
    namespace_labels: kopf.Index[str, dict[str, str]] = kwargs["namespace_labels"]
    key = f"{namespace}/{name}"

    def inputs() -> tuple[list[MeetingRecord], list[QuotaRecord], dict[str, dict[str, str]]]:
        meetings = list(meetings_by_pool.get(key, []))
        quotas = [q for store in quotas_by_name.values() for q in store]
        labels = {ns: next(iter(store)) for ns, store in namespace_labels.items()}
        return meetings, quotas, labels

    await run_pool(
        key,
        lambda: runtime.pool_spec(spec),
        inputs,
        runtime.settings,
        runtime.writer,
        runtime.wakers.event(key),
        lambda: bool(stopped),
        write_quota_status=key == runtime.default_pool_key,
        wants_full=lambda: runtime.wakers.take_full(key),
    )
    runtime.wakers.forget(key)
    await asyncio.sleep(0)
