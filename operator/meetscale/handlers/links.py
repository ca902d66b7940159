"""Kopf registration of the join links: Meeting events mark the Meeting for its pool's loop,
and one loop per BridgePool (a daemon next to admission and scaling) keeps the Secrets
(meetscale.links)."""

from __future__ import annotations

import asyncio
from typing import Any

import kopf

from meetscale import GROUP, VERSION
from meetscale.clients.kube.secrets import Secrets
from meetscale.links.loop import LinkWakers, run_links
from meetscale.links.secrets import LinkKeeper
from meetscale.records import MeetingRecord, QuotaRecord
from meetscale.runtime import Runtime, pool_key_of


@kopf.on.startup()
async def join_links_startup(memo: kopf.Memo, **_: Any) -> None:
    memo["join_links"] = LinkWakers()


@kopf.on.event(GROUP, VERSION, "meetings")
async def join_link_event(
    *,
    type: str | None,
    uid: str | None,
    namespace: str | None,
    name: str | None,
    spec: kopf.Spec,
    memo: kopf.Memo,
    **_: Any,
) -> None:
    runtime: Runtime = memo["runtime"]
    wakers: LinkWakers = memo["join_links"]
    if uid:
        gone = (namespace or "", name or "") if type == "DELETED" else None
        wakers.touch(pool_key_of(spec, runtime.settings), uid, gone)


@kopf.daemon(GROUP, VERSION, "bridgepools", cancellation_timeout=10)
async def join_links(
    *,
    namespace: str | None,
    name: str,
    uid: str | None,
    spec: kopf.Spec,
    stopped: kopf.DaemonStopped,
    memo: kopf.Memo,
    **kwargs: Any,
) -> None:
    """The join-link loop of this pool; it runs on the leader replica only."""
    runtime: Runtime = memo["runtime"]
    if not await runtime.lead(stopped):
        return
    wakers: LinkWakers = memo["join_links"]
    meetings_by_pool: kopf.Index[str, MeetingRecord] = kwargs["meetings_by_pool"]
    quotas_by_name: kopf.Index[str, QuotaRecord] = kwargs["quotas_by_name"]
    ns = namespace or ""
    key = f"{ns}/{name}"
    ref = {"name": name, "namespace": ns, "uid": uid}

    def names() -> dict[str, str]:
        return {
            q.name: q.spec.display_name or q.name
            for store in quotas_by_name.values()
            for q in store
            if q.spec is not None
        }

    keeper = LinkKeeper(
        ns,
        key,
        Secrets(runtime.api),
        runtime.writer,
        runtime.settings.pre_join_margin,
        lambda reason, message, warning: runtime.writer.event(
            "BridgePool", ref, reason, message, warning
        ),
    )

    async def wake_when_stopped() -> None:  # a stop must not wait for the next full pass
        await stopped.wait()
        wakers.event(key).set()

    waiter = asyncio.create_task(wake_when_stopped())
    try:
        await run_links(
            keeper,
            lambda: runtime.pool_spec(spec),
            lambda: list(meetings_by_pool.get(key, [])),
            names,
            wakers,
            lambda: bool(stopped),
            runtime.settings.join_link_resync_seconds,
        )
    finally:
        waiter.cancel()
        wakers.forget(key)
