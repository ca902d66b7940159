"""Fakes for the scaling shell's unit tests: a Kubernetes that keeps pods, Services and
Secrets in memory (as the apiserver would answer), a Prometheus that answers what the
bridges' loads are, and bridges that answer colibri calls. No cluster, no sockets."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from meetscale.clients.colibri import BridgeDebug, DebugConference
from meetscale.clients.kube.pool import KubeError
from meetscale.clients.prometheus import PromResult, PromUnavailable, PromValues
from meetscale.models.labels import (
    DRAIN_STARTED_ANNOTATION,
    DRAINING_LABEL,
    HELD_LABEL,
    POOL_LABEL,
)
from meetscale.scaling.inputs import PodRecord
from meetscale.times import parse_rfc3339

T0 = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)


@dataclass
class FakeKube:
    """The apiserver, as far as the pool scaler uses it."""

    namespace: str = "ns"
    pods: dict[str, dict[str, Any]] = field(default_factory=dict)
    services: dict[str, dict[str, Any]] = field(default_factory=dict)
    secrets: dict[str, set[str]] = field(default_factory=dict)
    refuse_pods: KubeError | None = None  # what the apiserver says to every pod create
    calls: list[str] = field(default_factory=list)
    allocated_elsewhere: set[int] = field(default_factory=set)
    restarts: dict[str, int] = field(default_factory=dict)  # pod -> its container's restarts
    lose_answers: bool = False  # pods are created, but the answer is lost (a timeout)
    policies: dict[str, dict[str, Any]] = field(default_factory=dict)  # NetworkPolicies

    async def create_pod(self, namespace: str, body: Mapping[str, Any]) -> str:
        name = body["metadata"]["name"]
        self.calls.append(f"create pod {name}")
        if self.refuse_pods is not None:
            raise self.refuse_pods
        self.pods[name] = {**body, "metadata": {**body["metadata"], "uid": f"uid-{name}"}}
        if self.lose_answers:
            raise KubeError("ApiUnreachable", f"creating bridge pod {name}: HTTP 0: timeout", 0)
        return f"uid-{name}"

    async def pod_exists(self, namespace: str, pod: str) -> bool | None:
        self.calls.append(f"get pod {pod}")
        if self.refuse_pods is not None and self.refuse_pods.status == 0:
            return None
        return pod in self.pods

    async def delete_pod(self, namespace: str, pod: str) -> None:
        self.calls.append(f"delete pod {pod}")
        self.pods.pop(pod, None)

    async def apply_network_policy(self, body: Mapping[str, Any]) -> None:
        self.calls.append(f"apply networkpolicy {body['metadata']['name']}")
        self.policies[body["metadata"]["name"]] = dict(body)

    async def delete_network_policy(self, namespace: str, name: str) -> None:
        if name in self.policies:
            self.calls.append(f"delete networkpolicy {name}")
        self.policies.pop(name, None)

    async def patch_pod(
        self,
        namespace: str,
        pod: str,
        *,
        labels: Mapping[str, str | None] | None = None,
        annotations: Mapping[str, str | None] | None = None,
    ) -> None:
        meta = self.pods[pod]["metadata"]
        for key, values in (("labels", labels), ("annotations", annotations)):
            have = meta.setdefault(key, {})
            for k, v in (values or {}).items():
                if v is None:
                    have.pop(k, None)
                else:
                    have[k] = v

    async def mark_draining(self, namespace: str, pod: str, started_at: datetime) -> None:
        self.calls.append(f"drain {pod}")
        await self.patch_pod(
            namespace,
            pod,
            labels={DRAINING_LABEL: "true"},
            annotations={DRAIN_STARTED_ANNOTATION: started_at.isoformat()},
        )

    async def unmark_draining(self, namespace: str, pod: str) -> None:
        self.calls.append(f"undrain {pod}")
        await self.patch_pod(
            namespace,
            pod,
            labels={DRAINING_LABEL: None},
            annotations={DRAIN_STARTED_ANNOTATION: None},
        )

    async def mark_held(self, namespace: str, pod: str, held: bool) -> None:
        await self.patch_pod(namespace, pod, labels={HELD_LABEL: "true" if held else None})

    async def list_bridge_services(self, namespace: str, pool: str) -> dict[str, int]:
        return {n: s["spec"]["ports"][0]["nodePort"] for n, s in self.services.items()}

    async def create_service(self, namespace: str, body: Mapping[str, Any]) -> int | None:
        port = body["spec"]["ports"][0]["nodePort"]
        taken = {s["spec"]["ports"][0]["nodePort"] for s in self.services.values()}
        if port in taken | self.allocated_elsewhere:
            return None
        self.services[body["metadata"]["name"]] = dict(body)
        return int(port)

    async def delete_service(self, namespace: str, name: str) -> None:
        self.calls.append(f"delete service {name}")
        self.services.pop(name, None)

    async def secret_keys(self, namespace: str, name: str) -> set[str] | None:
        return self.secrets.get(name)

    def ip(self, name: str) -> str:
        i = sorted(self.pods).index(name)
        return f"127.1.{i // 250}.{i % 250 + 1}"

    def url(self, name: str, port: int = 8080) -> str:
        return f"http://{self.ip(name)}:{port}"

    def records(self, ready: bool = True, at: datetime = T0) -> list[PodRecord]:
        """The pods index: every pod Running with an IP (ready unless told otherwise)."""
        out = []
        for name, pod in sorted(self.pods.items()):
            meta = pod["metadata"]
            body = {
                "metadata": {
                    "namespace": self.namespace,
                    "name": name,
                    "uid": meta["uid"],
                    "labels": meta.get("labels") or {},
                    "annotations": meta.get("annotations") or {},
                    "creationTimestamp": (at - timedelta(hours=1)).isoformat(),
                },
                "status": {
                    "phase": "Running",
                    "podIP": self.ip(name),
                    "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
                    "containerStatuses": [
                        {
                            "name": "jvb",
                            "restartCount": self.restarts.get(name, 0),
                            "lastState": (
                                {"terminated": {"exitCode": 137, "reason": "Error"}}
                                if self.restarts.get(name)
                                else {}
                            ),
                        }
                    ],
                },
            }
            out.append(PodRecord.from_body(body))
        return out


@dataclass
class FakeProm:
    """Prometheus: each pod's load (participants) as the bridges report it, or down."""

    loads: dict[str, int] = field(default_factory=dict)
    ppb: int = 100
    down: bool = False
    answer: PromResult | None = None  # given to every query instead (bad data, say)

    async def query(self, base_url: str, expr: str, *, timeout_s: float = 5.0, pool: str = ""):
        if self.down:
            return PromUnavailable("ConnectionError", "connection refused")
        if self.answer is not None:
            return self.answer
        if "stress" in expr:
            return PromValues({p: n / self.ppb for p, n in self.loads.items()})
        if "drain" in expr:
            return PromValues({p: 0.0 for p in self.loads})
        if "conferences" in expr:
            return PromValues({p: float(n > 0) for p, n in self.loads.items()})
        return PromValues({p: float(n) for p, n in self.loads.items()})

    async def close(self) -> None:
        return None


@dataclass
class FakeColibri:
    """The bridges' colibri API: their own endpoint count and drain mode."""

    kube: FakeKube
    loads: dict[str, int] = field(default_factory=dict)  # by pod name
    drain: dict[str, bool] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    rooms: dict[str, dict[str, int]] = field(default_factory=dict)  # pod -> room -> participants
    debug_api: bool = True  # False: JVB's videobridge.rest.debug.enabled = false (404)

    def _pod(self, base_url: str) -> str | None:
        return next((p for p in self.kube.pods if self.kube.url(p) == base_url), None)

    async def set_drain(self, base_url: str, enable: bool) -> bool:
        pod = self._pod(base_url)
        self.calls.append(f"drain {enable} {pod}")
        if pod is not None:
            self.drain[pod] = enable
        return True

    async def stats(self, base_url: str) -> dict[str, Any] | None:
        pod = self._pod(base_url)
        if pod is None:
            return None
        return {"local_endpoints": self.loads.get(pod, 0), "drain": self.drain.get(pod, True)}

    async def debug(self, base_url: str) -> BridgeDebug | None:
        pod = self._pod(base_url)
        if pod is None or not self.debug_api:
            return None
        confs = tuple(
            DebugConference(
                f"c{i}", f"{room}@muc.meet.jitsi", None, tuple(f"e{j}" for j in range(n))
            )
            for i, (room, n) in enumerate(sorted(self.rooms.get(pod, {}).items()))
        )
        return BridgeDebug("RUNNING", self.drain.get(pod, False), confs)

    async def close(self) -> None:
        return None


def pool_labels(pool: str) -> dict[str, str]:
    return {POOL_LABEL: pool}


def created_at(pod: dict[str, Any]) -> datetime | None:
    return parse_rfc3339((pod.get("metadata") or {}).get("creationTimestamp"))
