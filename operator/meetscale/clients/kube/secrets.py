"""Secret reads and writes of the join-link keeper, through the operator's one apiserver
session. Every call is idempotent or says what it found (absent, taken), so a pass that fails
half-way is repeated by the next one."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from meetscale import metrics as m
from meetscale.clients.kube.aio import AsyncApi
from meetscale.clients.kube.pool import KubeError

__all__ = ["Secrets"]


def _path(namespace: str, name: str | None = None) -> str:
    base = f"/api/v1/namespaces/{namespace}/secrets"
    return f"{base}/{name}" if name else base


class Secrets:
    def __init__(self, api: AsyncApi) -> None:
        self._api = api

    @staticmethod
    def _error(what: str, status: int, doc: Any) -> KubeError:
        m.kube_write_errors.labels(kind="secrets").inc()
        message = doc.get("message") if isinstance(doc, dict) else str(doc)[:300]
        reason = doc.get("reason") if isinstance(doc, dict) else None
        reason = reason or ("ApiUnreachable" if status == 0 else "ApiError")
        return KubeError(str(reason), f"{what}: HTTP {status}: {message}", status)

    async def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The Secret, or None when it does not exist."""
        status, doc = await self._api.call("GET", _path(namespace, name))
        if status == 404:
            return None
        if status != 200 or not isinstance(doc, dict):
            raise self._error(f"reading Secret {namespace}/{name}", status, doc)
        return doc

    async def create(self, namespace: str, body: Mapping[str, Any]) -> str | None:
        """Create it: its uid; None when a Secret of that name exists already."""
        name = body["metadata"]["name"]
        status, doc = await self._api.call("POST", _path(namespace), body)
        if status in (200, 201) and isinstance(doc, dict):
            return str((doc.get("metadata") or {}).get("uid") or "")
        if status == 409:
            return None
        raise self._error(f"creating Secret {namespace}/{name}", status, doc)

    async def replace(self, namespace: str, body: Mapping[str, Any]) -> str | None:
        """Replace it (an unconditional update: no resourceVersion): its uid; None when it
        does not exist."""
        name = body["metadata"]["name"]
        status, doc = await self._api.call("PUT", _path(namespace, name), body)
        if status == 200 and isinstance(doc, dict):
            return str((doc.get("metadata") or {}).get("uid") or "")
        if status == 404:
            return None
        raise self._error(f"replacing Secret {namespace}/{name}", status, doc)

    async def delete(self, namespace: str, name: str, uid: str | None = None) -> bool:
        """Delete it (only the object of that uid, when given); False when it was not there
        (or another object has the name now)."""
        body = None
        if uid:
            body = {"apiVersion": "v1", "kind": "DeleteOptions", "preconditions": {"uid": uid}}
        status, doc = await self._api.call("DELETE", _path(namespace, name), body)
        if status in (200, 202):
            return True
        if status == 404 or (uid and status == 409):
            return False
        raise self._error(f"deleting Secret {namespace}/{name}", status, doc)
