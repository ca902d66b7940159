"""Status and event writes. Every status write is a merge patch of the status subresource,
so repeating one is harmless; a failed write is counted and retried on the next pass."""

from __future__ import annotations

import logging
from typing import Any

from meetscale import GROUP, VERSION
from meetscale import metrics as m
from meetscale.clients.kube.aio import ApiError, AsyncApi

log = logging.getLogger("meetscale.clients.kube")


class StatusWriter:
    def __init__(self, api: AsyncApi) -> None:
        self.api = api

    async def meeting_status(self, namespace: str, name: str, status: dict[str, Any]) -> bool:
        return await self._patch("meetings", namespace, name, status)

    async def quota_status(self, name: str, status: dict[str, Any]) -> bool:
        return await self._patch("agencyquotas", None, name, status)

    async def pool_status(self, namespace: str, name: str, status: dict[str, Any]) -> bool:
        return await self._patch("bridgepools", namespace, name, status)

    def event(
        self, kind: str, ref: dict[str, Any], reason: str, message: str, warning: bool
    ) -> None:
        """An Event on the object, posted in the background (never delays a decision)."""
        involved = {"apiVersion": f"{GROUP}/{VERSION}", "kind": kind, **ref}
        self.api.post_event(involved, reason, message, warning)

    async def _patch(
        self, plural: str, namespace: str | None, name: str, status: dict[str, Any]
    ) -> bool:
        try:
            await self.api.patch_status(GROUP, VERSION, plural, namespace, name, status)
        except ApiError as exc:
            if exc.status == 404:  # deleted meanwhile: nothing to write
                return False
            m.status_write_errors.labels(kind=plural).inc()
            log.warning("status patch %s %s/%s failed: %s", plural, namespace, name, exc.reason)
            return False
        return True
