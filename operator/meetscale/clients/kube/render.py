"""The objects the pool scaler owns, rendered from the BridgePool (pure): one Pod per bridge
and, for its media port, one NodePort Service.

The operator owns its bridge Pods directly, as CloudNativePG owns its instances: each
bridge gets its own UDP port, known before its Pod exists, so the stock `jitsi/jvb` image
reads it from its environment at start (JVB_PORT, JVB_ADVERTISE_IPS in its
`address#port` form); a scale-down removes exactly the drained Pod. With a `jitsi`
section the bridge container is rendered from it with docker-jitsi-meet's variable names
(tests/contract/fixtures/docker_jitsi_meet_jvb.yaml); `spec.template` adds to it (node
selector, tolerations, resources ...) or, without a `jitsi` section, is the whole Pod.
"""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any, Final

from meetscale.models import BridgePoolSpec
from meetscale.models.jitsi import JitsiSection
from meetscale.models.labels import BRIDGE_LABEL, GROUP_LABEL, POOL_LABEL, TEMPLATE_HASH_LABEL

__all__ = [
    "CONTAINER",
    "bridge_name",
    "bridge_pod",
    "bridge_service",
    "jvb_env",
    "template_hash",
]

CONTAINER: Final = "jvb"
MIN_GRACE_SECONDS: Final = 3600
PRESTOP_SCRIPT: Final = (
    "curl -fsS -m 5 -X POST -H 'Content-Type: application/json' "
    "-d '{{\"graceful-shutdown\": true}}' http://127.0.0.1:{port}/colibri/shutdown || true; "
    "while curl -fsS -m 5 -o /dev/null http://127.0.0.1:{port}/about/health; do sleep 5; done"
)


def bridge_name(pool: str, suffix: str) -> str:
    """A bridge's Pod (and Service) name: a valid Service name (DNS-1035, at most 63)."""
    stem = pool[:50]
    return f"{stem}-jvb-{suffix}" if stem[0].isalpha() else f"jvb-{stem}-{suffix}"


def _container(containers: list[dict[str, Any]]) -> dict[str, Any]:
    """The bridge's container: the one named `jvb`, else the first (one is added)."""
    for c in containers:
        if c.get("name") == CONTAINER:
            return c
    if not containers:
        containers.append({"name": CONTAINER})
    return containers[0]


DEBUG_OPTIONS = "VIDEOBRIDGE_DEBUG_OPTIONS"


def _env(name: str, value: str) -> dict[str, Any]:
    return {"name": name, "value": value}


def jvb_env(jitsi: JitsiSection, port: int | None) -> list[dict[str, Any]]:
    """The stock image's environment for one bridge (docker-jitsi-meet's names)."""
    j = jitsi.with_defaults()
    secret = {"name": j.auth_secret}
    env: list[dict[str, Any]] = [
        _env("XMPP_SERVER", j.xmpp_server),
        _env("XMPP_AUTH_DOMAIN", j.auth_domain or ""),
        _env("XMPP_INTERNAL_MUC_DOMAIN", j.internal_muc_domain or ""),
        _env("JVB_BREWERY_MUC", j.brewery_muc),
        {
            "name": "JVB_AUTH_USER",
            "valueFrom": {"secretKeyRef": {**secret, "key": "JVB_AUTH_USER"}},
        },
        {
            "name": "JVB_AUTH_PASSWORD",
            "valueFrom": {"secretKeyRef": {**secret, "key": "JVB_AUTH_PASSWORD"}},
        },
        _env("COLIBRI_REST_ENABLED", "true"),
        _env("SHUTDOWN_REST_ENABLED", "true"),
        _env("JVB_ADVERTISE_PRIVATE_CANDIDATES", str(j.advertise_private_candidates).lower()),
        # Octo's relay id, as jitsi-helm gives its own bridges: read by the image only under
        # ENABLE_OCTO (which jitsi-helm's common ConfigMap sets with octo.enabled); without it
        # every bridge would relay as "" and no conference could span two of them
        {"name": "JVB_OCTO_RELAY_ID", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
    ]
    return env + port_env(port, j.advertise_address)


def port_env(port: int | None, address: str | None) -> list[dict[str, Any]]:
    """JVB_PORT and JVB_ADVERTISE_IPS (``address#port``: clients reach this bridge at its
    own port on the node, or on ``address``); nothing without a port of its own."""
    if port is None:
        return []
    host = address or "$(MEETSCALE_NODE_IP)"
    env = [_env("JVB_PORT", str(port)), _env("JVB_ADVERTISE_IPS", f"{host}#{port}")]
    if address is None:
        node_ip = {"fieldRef": {"fieldPath": "status.hostIP"}}
        env.insert(0, {"name": "MEETSCALE_NODE_IP", "valueFrom": node_ip})
    return env


#: the system property that gives a bridge its release (jicofo_rest.yaml, bridge_version)
RELEASE_PROPERTY = "-Dvideobridge.version.release=$(MEETSCALE_RELEASE)"
#: a bridge's release: its Pod name, or its spanning group's (set on the Pod, not the template)
RELEASE_VAR = "MEETSCALE_RELEASE"


def release_env(container: dict[str, Any]) -> list[dict[str, Any]]:
    """A release of its own for each bridge of a pinned pool: its Pod name (a spanning
    group's bridges: the group's, see :func:`bridge_pod`), through jvb.sh's
    VIDEOBRIDGE_DEBUG_OPTIONS (kept, with the property added, when the template sets it)."""
    given = next(
        (e.get("value") for e in container.get("env") or [] if e.get("name") == DEBUG_OPTIONS),
        None,
    )
    options = f"{given} {RELEASE_PROPERTY}" if given else RELEASE_PROPERTY
    pod_name = {"fieldRef": {"fieldPath": "metadata.name"}}
    return [
        {"name": "MEETSCALE_POD_NAME", "valueFrom": pod_name},
        _env(RELEASE_VAR, "$(MEETSCALE_POD_NAME)"),
        _env(DEBUG_OPTIONS, options),
    ]


def _merge_env(container: dict[str, Any], env: list[dict[str, Any]]) -> None:
    mine = {e["name"] for e in env}
    kept = [e for e in container.get("env") or [] if e.get("name") not in mine]
    container["env"] = env + kept


def _pod_template(spec: BridgePoolSpec, port: int | None) -> dict[str, Any]:
    """The pod as the pool renders it for a bridge with ``port`` (None: no port of its own)."""
    tpl: dict[str, Any] = copy.deepcopy(dict(spec.template))
    pspec = tpl.setdefault("spec", {})
    pspec.setdefault(
        "terminationGracePeriodSeconds", max(MIN_GRACE_SECONDS, spec.drain_timeout_seconds)
    )
    jvb = _container(pspec.setdefault("containers", []))
    if spec.jitsi is not None:
        jvb.setdefault("image", spec.jitsi.image)
        _merge_env(jvb, jvb_env(spec.jitsi, port))
        refs = [{"configMapRef": {"name": n}} for n in spec.jitsi.env_from_config_maps]
        jvb["envFrom"] = refs + list(jvb.get("envFrom") or [])
    elif port is not None:
        _merge_env(jvb, port_env(port, None))
    if spec.placement.mode == "Pinned":
        _merge_env(jvb, release_env(jvb))
    ports = [p for p in jvb.get("ports") or [] if p.get("name") not in ("colibri", "media")]
    ports.append({"name": "colibri", "containerPort": spec.colibri_port, "protocol": "TCP"})
    if port is not None:
        ports.append({"name": "media", "containerPort": port, "protocol": "UDP"})
    jvb["ports"] = ports
    lifecycle = jvb.setdefault("lifecycle", {})
    lifecycle.setdefault(
        "preStop",
        {"exec": {"command": ["/bin/sh", "-c", PRESTOP_SCRIPT.format(port=spec.colibri_port)]}},
    )
    return tpl


def template_hash(spec: BridgePoolSpec) -> str:
    """What a bridge's pod is made from, whatever its own port (but whether it has one: a
    pool that starts giving bridges a port of their own replaces those without): bridges
    whose hash differs from the pool's are replaced one at a time."""
    own_port = 0 if spec.jitsi is not None or spec.per_bridge_service.enabled else None
    raw = json.dumps(_pod_template(spec, own_port), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def bridge_pod(
    pool: str,
    namespace: str,
    name: str,
    spec: BridgePoolSpec,
    owner: dict[str, Any],
    port: int | None,
    group: str | None = None,
) -> dict[str, Any]:
    """The Pod of bridge ``name``, owned by the BridgePool (``owner``: its ownerReference).
    ``group``: in a pinned pool, the release of the spanning group it is started for
    (:mod:`meetscale.decide.scale.groups`), labelled and given to the bridge instead of its
    Pod name; the template hash stays the pool's."""
    tpl = _pod_template(spec, port)
    meta = tpl.get("metadata") or {}
    extra: dict[str, str] = {}
    if group is not None and spec.placement.mode == "Pinned":
        extra[GROUP_LABEL] = group
        for e in _container(tpl["spec"]["containers"]).get("env") or []:
            if e.get("name") == RELEASE_VAR:
                e["value"] = group
    labels = {
        **(meta.get("labels") or {}),
        POOL_LABEL: pool,
        BRIDGE_LABEL: name,
        TEMPLATE_HASH_LABEL: template_hash(spec),
        "app.kubernetes.io/managed-by": "meetscale",
        **extra,
    }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": labels,
            "annotations": dict(meta.get("annotations") or {}),
            "ownerReferences": [owner],
        },
        "spec": tpl["spec"],
    }


def bridge_service(
    pool: str, namespace: str, name: str, owner: dict[str, Any], port: int
) -> dict[str, Any]:
    """The NodePort Service of bridge ``name``'s media port (the same number inside and on
    the node, so the bridge advertises the port clients use)."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {POOL_LABEL: pool, BRIDGE_LABEL: name},
            "ownerReferences": [owner],
        },
        "spec": {
            "type": "NodePort",
            "externalTrafficPolicy": "Local",
            "selector": {POOL_LABEL: pool, BRIDGE_LABEL: name},
            "ports": [
                {
                    "name": "media",
                    "protocol": "UDP",
                    "port": port,
                    "targetPort": port,
                    "nodePort": port,
                }
            ],
        },
    }


def network_policy_name(pool: str) -> str:
    return f"{pool}-bridges"


def bridge_network_policy(
    pool: str,
    namespace: str,
    spec: BridgePoolSpec,
    owner: dict[str, Any],
    operator_namespace: str | None,
) -> dict[str, Any]:
    """A confidential pool's NetworkPolicy: its bridges take media (UDP) from anyone (the
    participants) and TCP only from `spec.networkPolicy.allowFrom`, by default the pods of
    the pool's namespace and of the operator's."""
    peers = [dict(p) for p in spec.network_policy.allow_from]
    if not peers:
        peers = [{"podSelector": {}}]
        if operator_namespace and operator_namespace != namespace:
            peers.append(
                {
                    "namespaceSelector": {
                        "matchLabels": {"kubernetes.io/metadata.name": operator_namespace}
                    }
                }
            )
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {
            "name": network_policy_name(pool),
            "namespace": namespace,
            "labels": {POOL_LABEL: pool, "app.kubernetes.io/managed-by": "meetscale"},
            "ownerReferences": [owner],
        },
        "spec": {
            "podSelector": {"matchLabels": {POOL_LABEL: pool}},
            "policyTypes": ["Ingress"],
            "ingress": [{"ports": [{"protocol": "UDP"}]}, {"from": peers}],
        },
    }
