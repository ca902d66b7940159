"""Writes of the pool scaler: the bridge Pods it owns, their media-port Services, drain and
hold marks, a confidential pool's NetworkPolicy, and reads of the Secrets a pool refers to.

Every write is idempotent (create-or-confirm, merge patches of a few keys, deletes that
accept 404), so a pass that fails half-way is simply repeated by the next one. Objects are
rendered by :mod:`meetscale.clients.kube.render`; each is owned by its BridgePool
(ownerReference), so deleting the pool removes them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from meetscale import metrics as m
from meetscale.clients.kube.aio import MERGE_PATCH, AsyncApi
from meetscale.models.labels import (
    BRIDGE_LABEL,
    DRAIN_STARTED_ANNOTATION,
    DRAINING_LABEL,
    HELD_LABEL,
    POOL_LABEL,
)
from meetscale.times import rfc3339

__all__ = ["KubeError", "OwnerRef", "PoolKube"]

log = logging.getLogger("meetscale.pool")

APPLY_PATCH = "application/apply-patch+yaml"  # server-side apply (JSON is YAML)
FIELD_MANAGER = "meetscale"


class KubeError(Exception):
    """An API call failed; ``reason`` is one CamelCase word for status and events."""

    def __init__(self, reason: str, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.status = status


@dataclass(frozen=True, slots=True)
class OwnerRef:
    api_version: str
    kind: str
    name: str
    uid: str

    def to_wire(self, *, controller: bool = True) -> dict[str, Any]:
        return {
            "apiVersion": self.api_version,
            "kind": self.kind,
            "name": self.name,
            "uid": self.uid,
            "controller": controller,
            "blockOwnerDeletion": controller,
        }


def _node_port(svc: Mapping[str, Any]) -> int | None:
    for port in (svc.get("spec") or {}).get("ports") or []:
        if isinstance(port.get("nodePort"), int):
            return int(port["nodePort"])
    return None


class PoolKube:
    """API writes of the pool scaler, through the operator's one apiserver session."""

    def __init__(self, api: AsyncApi) -> None:
        self._api = api

    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        content_type: str | None = None,
        query: Mapping[str, str] | None = None,
    ) -> tuple[int, Any]:
        """(HTTP status, parsed JSON); status 0 when the apiserver could not be reached."""
        return await self._api.call(method, path, body, content_type=content_type, query=query)

    @staticmethod
    def _error(kind: str, what: str, status: int, doc: Any) -> KubeError:
        m.kube_write_errors.labels(kind=kind).inc()
        message = doc.get("message") if isinstance(doc, dict) else str(doc)[:300]
        reason = doc.get("reason") if isinstance(doc, dict) else None
        if not reason:
            reason = "ApiUnreachable" if status == 0 else "ApiError"
        return KubeError(reason, f"{what}: HTTP {status}: {message}", status)

    # ------------------------------------------------------------------ pods

    async def create_pod(self, namespace: str, body: Mapping[str, Any]) -> str:
        """Create a bridge Pod; its uid. KubeError (with the apiserver's words) otherwise:
        a template the Pod schema refuses is reported as the apiserver says it."""
        name = body["metadata"]["name"]
        status, doc = await self.request("POST", f"/api/v1/namespaces/{namespace}/pods", body)
        if status in (200, 201) and isinstance(doc, dict):
            return str((doc.get("metadata") or {}).get("uid", ""))
        raise self._error("pods", f"creating bridge pod {namespace}/{name}", status, doc)

    async def pod_exists(self, namespace: str, pod: str) -> bool | None:
        """Whether the Pod exists (None: the apiserver did not say)."""
        status, _ = await self.request("GET", f"/api/v1/namespaces/{namespace}/pods/{pod}")
        if status == 200:
            return True
        return False if status == 404 else None

    async def delete_pod(self, namespace: str, pod: str) -> None:
        """Delete a bridge Pod (its preStop hook shuts the bridge down gracefully)."""
        path = f"/api/v1/namespaces/{namespace}/pods/{pod}"
        status, doc = await self.request("DELETE", path)
        if status not in (200, 202, 404):
            raise self._error("pods", f"deleting bridge pod {namespace}/{pod}", status, doc)

    async def patch_pod(
        self,
        namespace: str,
        pod: str,
        *,
        labels: Mapping[str, str | None] | None = None,
        annotations: Mapping[str, str | None] | None = None,
    ) -> None:
        """Merge-patch labels/annotations of a pod (None removes a key)."""
        meta: dict[str, Any] = {}
        if labels:
            meta["labels"] = dict(labels)
        if annotations:
            meta["annotations"] = dict(annotations)
        status, doc = await self.request(
            "PATCH",
            f"/api/v1/namespaces/{namespace}/pods/{pod}",
            {"metadata": meta},
            content_type=MERGE_PATCH,
        )
        if status != 200:
            raise self._error("pods", f"patching pod {namespace}/{pod}", status, doc)

    async def mark_draining(self, namespace: str, pod: str, started_at: datetime) -> None:
        await self.patch_pod(
            namespace,
            pod,
            labels={DRAINING_LABEL: "true"},
            annotations={DRAIN_STARTED_ANNOTATION: rfc3339(started_at)},
        )

    async def unmark_draining(self, namespace: str, pod: str) -> None:
        await self.patch_pod(
            namespace,
            pod,
            labels={DRAINING_LABEL: None},
            annotations={DRAIN_STARTED_ANNOTATION: None},
        )

    async def mark_held(self, namespace: str, pod: str, held: bool) -> None:
        await self.patch_pod(namespace, pod, labels={HELD_LABEL: "true" if held else None})

    # ------------------------------------------------------------------ media-port Services

    async def list_bridge_services(self, namespace: str, pool: str) -> dict[str, int]:
        """Bridge name -> NodePort of the pool's per-bridge Services."""
        status, doc = await self.request(
            "GET",
            f"/api/v1/namespaces/{namespace}/services",
            query={"labelSelector": f"{POOL_LABEL}={pool},{BRIDGE_LABEL}"},
        )
        if status != 200 or not isinstance(doc, dict):
            raise self._error("services", f"listing Services in {namespace}", status, doc)
        out: dict[str, int] = {}
        for svc in doc.get("items") or []:
            port = _node_port(svc)
            bridge = ((svc.get("metadata") or {}).get("labels") or {}).get(BRIDGE_LABEL)
            if bridge and port is not None:
                out[str(bridge)] = port
        return out

    async def create_service(self, namespace: str, body: Mapping[str, Any]) -> int | None:
        """Create a bridge's NodePort Service; its port, or None when that port is taken
        (the apiserver's allocator answers 422 "provided port is already allocated").
        An existing Service of that name (an earlier pass) is adopted with its port."""
        name = body["metadata"]["name"]
        status, doc = await self.request("POST", f"/api/v1/namespaces/{namespace}/services", body)
        if status in (200, 201) and isinstance(doc, dict):
            return _node_port(doc)
        if status == 409:
            path = f"/api/v1/namespaces/{namespace}/services/{name}"
            status, doc = await self.request("GET", path)
            if status == 200 and isinstance(doc, dict):
                return _node_port(doc)
        message = doc.get("message", "") if isinstance(doc, dict) else str(doc)
        if status == 422 and "allocated" in message:
            return None
        raise self._error("services", f"creating Service {namespace}/{name}", status, doc)

    async def delete_service(self, namespace: str, name: str) -> None:
        path = f"/api/v1/namespaces/{namespace}/services/{name}"
        status, doc = await self.request("DELETE", path)
        if status not in (200, 202, 404):
            raise self._error("services", f"deleting Service {namespace}/{name}", status, doc)

    # ------------------------------------------------------------------ NetworkPolicy

    async def apply_network_policy(self, body: Mapping[str, Any]) -> None:
        """Create or update a NetworkPolicy (server-side apply, the operator's field
        manager: a second apply of the same body changes nothing)."""
        meta = body["metadata"]
        path = (
            f"/apis/networking.k8s.io/v1/namespaces/{meta['namespace']}"
            f"/networkpolicies/{meta['name']}"
        )
        status, doc = await self.request(
            "PATCH",
            path,
            body,
            content_type=APPLY_PATCH,
            query={"fieldManager": FIELD_MANAGER, "force": "true"},
        )
        if status not in (200, 201):
            what = f"applying NetworkPolicy {meta['namespace']}/{meta['name']}"
            raise self._error("networkpolicies", what, status, doc)

    async def delete_network_policy(self, namespace: str, name: str) -> None:
        path = f"/apis/networking.k8s.io/v1/namespaces/{namespace}/networkpolicies/{name}"
        status, doc = await self.request("DELETE", path)
        if status not in (200, 202, 404):
            what = f"deleting NetworkPolicy {namespace}/{name}"
            raise self._error("networkpolicies", what, status, doc)

    # ------------------------------------------------------------------ Secrets

    async def secret_keys(self, namespace: str, name: str) -> set[str] | None:
        """The keys of a Secret (values are not kept), or None when it does not exist."""
        status, doc = await self.request("GET", f"/api/v1/namespaces/{namespace}/secrets/{name}")
        if status == 404:
            return None
        if status != 200 or not isinstance(doc, dict):
            raise self._error("secrets", f"reading Secret {namespace}/{name}", status, doc)
        return set((doc.get("data") or {}).keys()) | set((doc.get("stringData") or {}).keys())
