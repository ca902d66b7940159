"""Status and event writes. Every write is a merge patch of the status subresource, so
repeating one is harmless; a failed write is counted and retried on the next pass."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import kopf
import kubernetes

from meetscale import GROUP, VERSION
from meetscale import metrics as m

log = logging.getLogger("meetscale.kube")


class StatusWriter:
    def __init__(self, api: kubernetes.client.ApiClient, concurrency: int) -> None:
        self.api = api
        self._objects = kubernetes.client.CustomObjectsApi(api)
        self._sem = asyncio.Semaphore(concurrency)

    async def meeting_status(self, namespace: str, name: str, status: dict[str, Any]) -> bool:
        return await self._patch("meetings", namespace, name, status)

    async def quota_status(self, name: str, status: dict[str, Any]) -> bool:
        return await self._patch("agencyquotas", None, name, status)

    async def pool_status(self, namespace: str, name: str, status: dict[str, Any]) -> bool:
        return await self._patch("bridgepools", namespace, name, status)

    async def _patch(
        self, plural: str, namespace: str | None, name: str, status: dict[str, Any]
    ) -> bool:
        body = {"status": status}
        async with self._sem:
            try:
                if namespace is None:
                    await asyncio.to_thread(
                        self._objects.patch_cluster_custom_object_status,
                        GROUP,
                        VERSION,
                        plural,
                        name,
                        body,
                    )
                else:
                    await asyncio.to_thread(
                        self._objects.patch_namespaced_custom_object_status,
                        GROUP,
                        VERSION,
                        namespace,
                        plural,
                        name,
                        body,
                    )
            except kubernetes.client.ApiException as exc:
                if exc.status == 404:  # deleted meanwhile: nothing to write
                    return False
                m.status_write_errors.labels(kind=plural).inc()
                log.warning("status patch %s %s/%s failed: %s", plural, namespace, name, exc.reason)
                return False
        return True


def post_event(ref: dict[str, Any], kind: str, reason: str, message: str, warning: bool) -> None:
    """An event on the object, through Kopf's event poster (non-blocking)."""
    raw: Any = {"apiVersion": f"{GROUP}/{VERSION}", "kind": kind, "metadata": ref}
    body = kopf.Body(raw)
    kopf.event(body, type="Warning" if warning else "Normal", reason=reason, message=message)
