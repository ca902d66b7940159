"""Kopf registration: each handler gathers inputs or starts a loop, a few lines each.
Decisions are made in meetscale.decide; writes in meetscale.clients.kube.

Index and event handlers are coroutines although they do not await: Kopf runs plain
functions in its thread pool, two thread hops per watch event, which at thousands of
Meetings cost more than the handlers themselves."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import kopf

from meetscale import GROUP, VERSION
from meetscale.admission.loop import ORPHANS, LoopHealth, run_orphans, run_pool
from meetscale.config import Settings
from meetscale.models import BridgePoolSpec
from meetscale.records import MeetingRecord, QuotaRecord
from meetscale.runtime import Runtime, pool_key_of


@dataclass
class AdmissionState:
    """Shared by every handler. Kopf hands each object's handlers a shallow copy of the
    operator's memo, so what one handler sets in its memo no other handler sees: state
    lives in this object, put into the operator's memo at start-up (before any copy)."""

    health: LoopHealth = field(default_factory=LoopHealth)
    orphans: asyncio.Task[None] | None = None


def state_of(memo: kopf.Memo) -> AdmissionState | None:
    """None before the start-up handler ran."""
    state: AdmissionState | None = memo.get("admission")
    return state


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    memo["admission"] = AdmissionState()
    runtime: Runtime = memo["runtime"]
    runtime.configure_kopf(settings)
    await runtime.start()


@kopf.on.cleanup()
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    runtime: Runtime = memo["runtime"]
    state = state_of(memo)
    if state is not None and state.orphans is not None:
        state.orphans.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await state.orphans
    await runtime.stop()


@kopf.on.probe(id="admission", errors=kopf.ErrorsMode.PERMANENT)
async def admission_health(memo: kopf.Memo, **_: Any) -> dict[str, int]:
    """Part of /healthz (`meetscale run --liveness`): fails while an admission loop has
    failed LoopHealth.limit passes in a row, so the liveness probe restarts the operator
    instead of reporting it healthy while no Meeting gets decided."""
    state = state_of(memo)
    if state is None:  # still starting
        return {}
    problems = state.health.problems()
    if problems:
        raise kopf.PermanentError("; ".join(problems))
    return state.health.failing()


def _usable_pools(pools_by_key: kopf.Index[str, BridgePoolSpec | None]) -> dict[str, bool]:
    return {key: next(iter(store), None) is not None for key, store in pools_by_key.items()}


def _ensure_orphans(memo: kopf.Memo, indices: Mapping[str, Any]) -> None:
    """Note that the indexes are filled (Runtime.indexed: the webhook and /readyz wait for
    it) and start the loop of Meetings without a usable pool, once; the loop writes only
    on the leader replica. Only from resource handlers: Kopf calls those after every index
    is filled, so a pool is never taken for missing because its watch was not listed yet."""
    runtime: Runtime = memo["runtime"]
    runtime.indexed.set()
    state = state_of(memo)
    if state is None or state.orphans is not None:
        return
    meetings: kopf.Index[str, MeetingRecord] = indices["meetings_by_pool"]
    pools_by_key: kopf.Index[str, BridgePoolSpec | None] = indices["pools_by_key"]

    def inputs() -> tuple[dict[str, list[MeetingRecord]], dict[str, bool]]:
        pools = _usable_pools(pools_by_key)
        orphans = {k: list(store) for k, store in meetings.items() if not pools.get(k)}
        return orphans, pools

    health = state.health

    async def when_leading() -> None:  # cancelled by the cleanup handler
        await runtime.leading()
        await run_orphans(
            inputs,
            runtime.default_pool_key,
            runtime.settings,
            runtime.writer,
            runtime.wakers.event(ORPHANS),
            lambda: False,
            health,
        )

    state.orphans = asyncio.create_task(when_leading(), name="meetscale orphan meetings")


@kopf.index(GROUP, VERSION, "meetings")
async def meetings_by_pool(body: kopf.Body, memo: kopf.Memo, **_: Any) -> dict[str, MeetingRecord]:
    config: Settings = memo["runtime"].settings
    return {pool_key_of(body.get("spec"), config): MeetingRecord.from_body(body)}


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
    *, body: kopf.Body, type: str | None, spec: kopf.Spec, memo: kopf.Memo, **kwargs: Any
) -> None:
    if _unobserved(body, type):
        runtime: Runtime = memo["runtime"]
        key = pool_key_of(spec, runtime.settings)
        runtime.wakers.wake(key)
        _ensure_orphans(memo, kwargs)
        if not _usable_pools(kwargs["pools_by_key"]).get(key):
            runtime.wakers.wake(ORPHANS)


@kopf.on.event(GROUP, VERSION, "bridgepools")
async def pool_event(*, memo: kopf.Memo, **kwargs: Any) -> None:
    """A pool appeared, changed or went: its Meetings may have become (or stopped being)
    Meetings without a pool."""
    _ensure_orphans(memo, kwargs)
    memo["runtime"].wakers.wake(ORPHANS)


@kopf.on.event(GROUP, VERSION, "agencyquotas")
async def quota_event(*, body: kopf.Body, type: str | None, memo: kopf.Memo, **_: Any) -> None:
    if _unobserved(body, type):
        memo["runtime"].wakers.wake(full=True)


@kopf.on.event("", "v1", "namespaces")
async def namespace_event(*, memo: kopf.Memo, **kwargs: Any) -> None:
    # Kopf calls event handlers only once every index is filled, and every cluster has
    # namespaces: the first call tells the webhook and /readyz that the indexes are ready
    # (Runtime.indexed) and starts the orphans loop.
    _ensure_orphans(memo, kwargs)
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
    runtime.cross.index = meetings_by_pool  # quotas hold across every pool

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
        health=state.health if (state := state_of(memo)) else None,
        cross=runtime.cross,
    )
    runtime.wakers.forget(key)
    await asyncio.sleep(0)
