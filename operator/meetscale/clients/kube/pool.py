"""Writes of the pool scaler: the owned videobridge Deployment, its replica count, drain marks
on pods, per-bridge NodePort Services, and the bridges' own colibri REST API.

Every write is idempotent (create-or-confirm, merge patches of a few keys), so a pass that
fails half-way is simply repeated by the next one.

The Deployment `<pool>-jvb` is created from `spec.template` and owned by the BridgePool
(ownerReference, controller=true): the operator alone sets its replicas and its template.
The template gets, when absent, the pool label, a long `terminationGracePeriodSeconds` and a
preStop hook asking the bridge for a graceful shutdown (`POST /colibri/shutdown`), which then
waits until the bridge has exited: the last line of defence if a pod is deleted while it still
hosts participants.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from meetscale import metrics as m
from meetscale.clients.kube.aio import MERGE_PATCH, AsyncApi
from meetscale.models import BridgePoolSpec

log = logging.getLogger("meetscale.pool")

POOL_LABEL: Final = "meetscale.io/pool"
DRAINING_LABEL: Final = "meetscale.io/draining"
# kept out of Jicofo's selection (drain mode) for a booked meeting about to open; not removed
HELD_LABEL: Final = "meetscale.io/held"
BRIDGE_LABEL: Final = "meetscale.io/bridge"
DRAIN_STARTED_ANNOTATION: Final = "meetscale.io/drain-started-at"
ADVERTISED_PORT_ANNOTATION: Final = "meetscale.io/advertised-port"
TEMPLATE_HASH_ANNOTATION: Final = "meetscale.io/template-hash"
DELETION_COST_ANNOTATION: Final = "controller.kubernetes.io/pod-deletion-cost"
# Pods in service carry no cost (0). A draining pod is cheaper to delete than any of them, and
# a drained pod about to be removed is the cheapest of all, so lowering replicas by k removes
# exactly the k pods marked for removal (the ReplicaSet controller ranks by cost after
# readiness; the scaler only lowers replicas when every other pod is ready).
COST_DRAINING: Final = -1_000_000
COST_REMOVE: Final = -2_147_483_648  # min int32
MEDIA_PORT_DEFAULT: Final = 10000
BRIDGE_INFO_VOLUME: Final = "meetscale-bridge"
BRIDGE_INFO_PATH: Final = "/etc/meetscale"
MIN_GRACE_SECONDS: Final = 3600
JSON_PATCH: Final = "application/json-patch+json"

PRESTOP_SCRIPT: Final = (
    "curl -fsS -m 5 -X POST -H 'Content-Type: application/json' "
    "-d '{{\"graceful-shutdown\": true}}' http://127.0.0.1:{port}/colibri/shutdown || true; "
    "while curl -fsS -m 5 -o /dev/null http://127.0.0.1:{port}/about/health; do sleep 5; done"
)

_DNS1035 = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")


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


@dataclass(frozen=True, slots=True)
class DeploymentView:
    """What the scaler needs of its Deployment."""

    name: str
    replicas: int
    generation: int
    observed_generation: int
    created: bool = False
    template_updated: bool = False

    @property
    def settled(self) -> bool:
        """The Deployment controller has seen the latest spec."""
        return self.observed_generation >= self.generation


def deployment_name(pool: str) -> str:
    return f"{pool}-jvb"


def _jvb_container(containers: list[dict[str, Any]]) -> dict[str, Any] | None:
    for c in containers:
        if c.get("name") == "jvb":
            return c
    return containers[0] if containers else None


def media_port(spec: BridgePoolSpec) -> int:
    """The bridge's UDP media port: the container port named `media`, else 10000."""
    containers = (spec.template.get("spec") or {}).get("containers") or []
    jvb = _jvb_container(list(containers))
    for port in (jvb or {}).get("ports") or []:
        if port.get("name") == "media" and isinstance(port.get("containerPort"), int):
            return int(port["containerPort"])
    return MEDIA_PORT_DEFAULT


def render_template(pool: str, spec: BridgePoolSpec) -> dict[str, Any]:
    """The pod template of the Deployment: spec.template plus what the operator needs."""
    tpl: dict[str, Any] = copy.deepcopy(dict(spec.template))
    meta = tpl.setdefault("metadata", {})
    meta.setdefault("labels", {})[POOL_LABEL] = pool
    pspec = tpl.setdefault("spec", {})
    pspec.setdefault(
        "terminationGracePeriodSeconds", max(MIN_GRACE_SECONDS, spec.drain_timeout_seconds)
    )
    jvb = _jvb_container(pspec.setdefault("containers", []))
    if jvb is not None:
        lifecycle = jvb.setdefault("lifecycle", {})
        lifecycle.setdefault(
            "preStop",
            {
                "exec": {
                    "command": [
                        "/bin/sh",
                        "-c",
                        PRESTOP_SCRIPT.format(port=spec.colibri_port),
                    ]
                }
            },
        )
        if spec.per_bridge_service.enabled:
            # The advertised NodePort reaches the bridge as a file, updated in place
            # (downward API), since it is allocated after the pod exists.
            volumes = pspec.setdefault("volumes", [])
            if not any(v.get("name") == BRIDGE_INFO_VOLUME for v in volumes):
                volumes.append(
                    {
                        "name": BRIDGE_INFO_VOLUME,
                        "downwardAPI": {
                            "items": [
                                {
                                    "path": "advertised-port",
                                    "fieldRef": {
                                        "fieldPath": (
                                            f"metadata.annotations['{ADVERTISED_PORT_ANNOTATION}']"
                                        )
                                    },
                                }
                            ]
                        },
                    }
                )
            mounts = jvb.setdefault("volumeMounts", [])
            if not any(v.get("name") == BRIDGE_INFO_VOLUME for v in mounts):
                mounts.append(
                    {"name": BRIDGE_INFO_VOLUME, "mountPath": BRIDGE_INFO_PATH, "readOnly": True}
                )
    return tpl


DEPLOYMENT_STRATEGY: Final = {
    "type": "RollingUpdate",
    "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
}


def template_hash(template: Mapping[str, Any]) -> str:
    raw = json.dumps([template, DEPLOYMENT_STRATEGY], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def render_deployment(
    pool: str, namespace: str, spec: BridgePoolSpec, owner: OwnerRef, replicas: int
) -> dict[str, Any]:
    tpl = render_template(pool, spec)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": deployment_name(pool),
            "namespace": namespace,
            "labels": {POOL_LABEL: pool, "app.kubernetes.io/managed-by": "meetscale"},
            "annotations": {TEMPLATE_HASH_ANNOTATION: template_hash(tpl)},
            "ownerReferences": [owner.to_wire()],
        },
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {POOL_LABEL: pool}},
            "strategy": DEPLOYMENT_STRATEGY,
            "template": tpl,
        },
    }


def service_name(pod: str) -> str:
    """The per-bridge Service's name: the pod's name if it is a valid Service name."""
    if _DNS1035.match(pod):
        return pod
    digest = hashlib.sha256(pod.encode()).hexdigest()[:8]
    stem = re.sub(r"[^-a-z0-9]", "-", pod.lower()).strip("-")[:50].strip("-") or "bridge"
    if not stem[0].isalpha():
        stem = "b-" + stem[:48]
    return f"{stem}-{digest}"


def _ts(t: datetime) -> str:
    return t.isoformat(timespec="seconds")


def _pointer(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


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

    # ------------------------------------------------------------------ Deployment

    async def ensure_deployment(
        self,
        namespace: str,
        pool: str,
        spec: BridgePoolSpec,
        owner: OwnerRef,
        initial_replicas: int,
    ) -> DeploymentView:
        """Create the pool's Deployment if missing; bring its template up to date.

        Raises KubeError with reason `DeploymentNotOwned` for a Deployment of that name
        that this BridgePool does not own (it is left alone)."""
        name = deployment_name(pool)
        path = f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}"
        status, doc = await self.request("GET", path)
        if status == 404:
            body = render_deployment(pool, namespace, spec, owner, initial_replicas)
            status, doc = await self.request(
                "POST", f"/apis/apps/v1/namespaces/{namespace}/deployments", body
            )
            if status == 409:  # created meanwhile (another pass): read it back
                status, doc = await self.request("GET", path)
            elif status in (200, 201):
                log.info("pool %s/%s: created Deployment %s", namespace, pool, name)
                return _deployment_view(doc, created=True)
        if status != 200 or not isinstance(doc, dict):
            raise self._error("deployments", f"Deployment {namespace}/{name}", status, doc)
        meta = doc.get("metadata") or {}
        if not any(r.get("uid") == owner.uid for r in meta.get("ownerReferences") or []):
            raise KubeError(
                "DeploymentNotOwned",
                f"Deployment {namespace}/{name} exists and is not owned by this BridgePool; "
                "delete or rename it",
            )
        tpl = render_template(pool, spec)
        digest = template_hash(tpl)
        annotations = meta.get("annotations") or {}
        if annotations.get(TEMPLATE_HASH_ANNOTATION) == digest:
            return _deployment_view(doc)
        ops: list[dict[str, Any]] = [
            {"op": "replace", "path": "/spec/template", "value": tpl},
            {"op": "replace", "path": "/spec/strategy", "value": DEPLOYMENT_STRATEGY},
        ]
        if meta.get("annotations") is None:
            ops.append(
                {
                    "op": "add",
                    "path": "/metadata/annotations",
                    "value": {TEMPLATE_HASH_ANNOTATION: digest},
                }
            )
        else:
            ops.append(
                {
                    "op": "add",
                    "path": f"/metadata/annotations/{_pointer(TEMPLATE_HASH_ANNOTATION)}",
                    "value": digest,
                }
            )
        status, doc = await self.request("PATCH", path, ops, content_type=JSON_PATCH)
        if status != 200 or not isinstance(doc, dict):
            raise self._error("deployments", f"updating Deployment {namespace}/{name}", status, doc)
        log.info("pool %s/%s: updated the pod template of %s", namespace, pool, name)
        return _deployment_view(doc, template_updated=True)

    async def set_replicas(self, namespace: str, pool: str, replicas: int) -> None:
        name = deployment_name(pool)
        status, doc = await self.request(
            "PATCH",
            f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}",
            {"spec": {"replicas": replicas}},
            content_type=MERGE_PATCH,
        )
        if status != 200:
            raise self._error("deployments", f"scaling {namespace}/{name}", status, doc)

    # ------------------------------------------------------------------ pods

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
            annotations={
                DRAIN_STARTED_ANNOTATION: _ts(started_at),
                DELETION_COST_ANNOTATION: str(COST_DRAINING),
            },
        )

    async def mark_removable(self, namespace: str, pod: str) -> None:
        await self.patch_pod(
            namespace, pod, annotations={DELETION_COST_ANNOTATION: str(COST_REMOVE)}
        )

    async def mark_held(self, namespace: str, pod: str, held: bool) -> None:
        await self.patch_pod(namespace, pod, labels={HELD_LABEL: "true" if held else None})

    async def unmark_draining(self, namespace: str, pod: str) -> None:
        await self.patch_pod(
            namespace,
            pod,
            labels={DRAINING_LABEL: None},
            annotations={DRAIN_STARTED_ANNOTATION: None, DELETION_COST_ANNOTATION: None},
        )

    # ------------------------------------------------------------------ per-bridge Services

    async def list_bridge_services(self, namespace: str, pool: str) -> dict[str, int]:
        """Pod name -> NodePort of the pool's per-bridge Services (from their owner)."""
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
            for ref in (svc.get("metadata") or {}).get("ownerReferences") or []:
                if ref.get("kind") == "Pod" and port is not None:
                    out[str(ref.get("name"))] = port
        return out

    async def ensure_bridge_service(
        self,
        namespace: str,
        pool: str,
        pod: str,
        pod_uid: str,
        port_range: tuple[int, int],
        taken: set[int],
        target_port: int,
        max_attempts: int = 64,
    ) -> int | None:
        """A NodePort Service for one bridge pod, owned by the pod (garbage-collected with it).

        The NodePort is the lowest free one of ``port_range`` not in ``taken``; the apiserver's
        allocator is the judge of collisions (a port allocated elsewhere answers 422 and the
        next one is tried, ``taken`` learns it). Labels the pod so that the Service selects it
        alone and annotates the advertised port. Returns the port, or None when the range is
        exhausted."""
        svc = service_name(pod)
        lo, hi = port_range
        attempts = 0
        port: int | None = None
        for candidate in range(lo, hi + 1):
            if candidate in taken:
                continue
            if attempts >= max_attempts:
                break
            attempts += 1
            body = {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {
                    "name": svc,
                    "namespace": namespace,
                    "labels": {POOL_LABEL: pool, BRIDGE_LABEL: svc},
                    "ownerReferences": [
                        OwnerRef("v1", "Pod", pod, pod_uid).to_wire(controller=False)
                    ],
                },
                "spec": {
                    "type": "NodePort",
                    "externalTrafficPolicy": "Local",
                    "selector": {POOL_LABEL: pool, BRIDGE_LABEL: svc},
                    "ports": [
                        {
                            "name": "media",
                            "protocol": "UDP",
                            "port": target_port,
                            "targetPort": target_port,
                            "nodePort": candidate,
                        }
                    ],
                },
            }
            status, doc = await self.request(
                "POST", f"/api/v1/namespaces/{namespace}/services", body
            )
            if status in (200, 201):
                port = candidate
                break
            if status == 409:  # ours from an earlier pass: adopt its port
                status, doc = await self.request(
                    "GET", f"/api/v1/namespaces/{namespace}/services/{svc}"
                )
                port = _node_port(doc) if status == 200 and isinstance(doc, dict) else None
                if port is None:
                    raise self._error("services", f"reading Service {namespace}/{svc}", status, doc)
                break
            message = doc.get("message", "") if isinstance(doc, dict) else str(doc)
            if status == 422 and "allocated" in message:
                taken.add(candidate)
                continue
            raise self._error("services", f"creating Service {namespace}/{svc}", status, doc)
        if port is None:
            return None
        taken.add(port)
        await self.patch_pod(
            namespace,
            pod,
            labels={BRIDGE_LABEL: svc},
            annotations={ADVERTISED_PORT_ANNOTATION: str(port)},
        )
        return port


def _node_port(svc: Mapping[str, Any]) -> int | None:
    for port in (svc.get("spec") or {}).get("ports") or []:
        if isinstance(port.get("nodePort"), int):
            return int(port["nodePort"])
    return None


def _deployment_view(
    doc: Mapping[str, Any], *, created: bool = False, template_updated: bool = False
) -> DeploymentView:
    meta = doc.get("metadata") or {}
    return DeploymentView(
        name=str(meta.get("name", "")),
        replicas=int((doc.get("spec") or {}).get("replicas") or 0),
        generation=int(meta.get("generation") or 0),
        observed_generation=int((doc.get("status") or {}).get("observedGeneration") or 0),
        created=created,
        template_updated=template_updated,
    )
