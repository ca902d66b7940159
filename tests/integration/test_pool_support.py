"""Shared pieces of the bridge pool tests (no tests here): the pool manifest, the simulated
bridges fixture, and readers for pools, pods, events and the operator's metrics.

Every pool test runs the operator as a process against the local control plane, one
`meetscale jvb-sim` per bridge pod (testbed.bridges), and a real Prometheus scraping them
every second through file-based service discovery. Pools sync every second with short
stabilization windows so that each test stays within a minute or two."""

from __future__ import annotations

import copy
import json
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from testbed.bridges import BridgeHarness

POOL = "pool"
ROOT = Path(__file__).resolve().parents[2]
GROUP, VERSION = "meetscale.io", "v1alpha1"
T = TypeVar("T")

TEMPLATE: dict[str, Any] = {
    "metadata": {"labels": {"app.kubernetes.io/name": "jitsi-videobridge"}},
    "spec": {
        "containers": [
            {
                "name": "jvb",
                "image": "jitsi/jvb:stable",
                "ports": [
                    {"containerPort": 8080, "name": "colibri"},
                    {"containerPort": 10000, "name": "media", "protocol": "UDP"},
                ],
            }
        ]
    },
}


def pool_doc(namespace: str, prom_url: str, **spec: Any) -> dict[str, Any]:
    """A test pool: 100 participants per bridge (the sims' capacity), 1 s sync, 3 s
    scale-down stabilization, no protection time; keyword arguments override spec keys."""
    base: dict[str, Any] = {
        "template": copy.deepcopy(TEMPLATE),
        "participantsPerBridge": 100,
        "minBridges": 1,
        "maxBridges": 5,
        "targetStress": 0.7,
        "tolerance": 0.1,
        "leadTimeSeconds": 60,
        "syncPeriodSeconds": 1,
        "protectionSeconds": 0,
        "drainTimeoutSeconds": 120,
        "behavior": {
            "scaleDown": {
                "stabilizationWindowSeconds": 3,
                "policies": [{"type": "Percent", "value": 100, "periodSeconds": 1}],
            }
        },
        "prometheus": {"url": prom_url, "timeoutSeconds": 1},
    }
    base.update(spec)
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "BridgePool",
        "metadata": {"name": POOL, "namespace": namespace},
        "spec": base,
    }


def wait_for(
    fn: Callable[[], T], timeout: float = 60.0, interval: float = 0.25, what: str = "condition"
) -> T:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; last={last!r}")


class Kube:
    """Fast reads through the Python client (kubectl costs a process per call)."""

    def __init__(self, control_plane: Any, namespace: str) -> None:
        from kubernetes import client

        self.cp = control_plane
        self.ns = namespace
        api = control_plane.api_client()
        self.core = client.CoreV1Api(api)
        self.custom = client.CustomObjectsApi(api)

    @staticmethod
    def _json(resp: Any) -> Any:
        return json.loads(resp.data)

    def apply(self, doc: dict[str, Any]) -> None:
        self.cp.kubectl("apply", "-f", "-", input=yaml.safe_dump(doc))

    def patch_pool(self, spec: dict[str, Any]) -> None:
        self.cp.kubectl(
            "patch", "bridgepool", POOL, "-n", self.ns, "--type=merge",
            "-p", json.dumps({"spec": spec}),
        )  # fmt: skip

    def pool(self) -> dict[str, Any]:
        return dict(
            self.custom.get_namespaced_custom_object(GROUP, VERSION, self.ns, "bridgepools", POOL)
        )

    def status(self) -> dict[str, Any]:
        return dict(self.pool().get("status") or {})

    def conditions(self) -> dict[str, dict[str, Any]]:
        return {c["type"]: c for c in self.status().get("conditions") or []}

    def replicas(self) -> int:
        """Bridge pods the operator runs: every one that is not terminating (drained ones
        included until they are removed)."""
        return len(self.pods())

    def pods(self) -> dict[str, dict[str, Any]]:
        """Bridge pods that are not terminating, by name."""
        resp = self.core.list_namespaced_pod(
            self.ns, label_selector=f"meetscale.io/pool={POOL}", _preload_content=False
        )
        return {
            p["metadata"]["name"]: p
            for p in self._json(resp)["items"]
            if not p["metadata"].get("deletionTimestamp")
        }

    def draining(self) -> set[str]:
        return {
            name
            for name, p in self.pods().items()
            if (p["metadata"].get("labels") or {}).get("meetscale.io/draining") == "true"
        }

    def held(self) -> set[str]:
        return {
            name
            for name, p in self.pods().items()
            if (p["metadata"].get("labels") or {}).get("meetscale.io/held") == "true"
        }

    def services(self) -> dict[str, dict[str, Any]]:
        resp = self.core.list_namespaced_service(
            self.ns, label_selector=f"meetscale.io/pool={POOL}", _preload_content=False
        )
        return {s["metadata"]["name"]: s for s in self._json(resp)["items"]}

    def events(self, reason: str | None = None) -> list[dict[str, Any]]:
        resp = self.core.list_namespaced_event(
            self.ns, field_selector=f"involvedObject.name={POOL}", _preload_content=False
        )
        items = self._json(resp)["items"]
        return [e for e in items if reason is None or e.get("reason") == reason]


def metric(url: str, name: str, labels: dict[str, str]) -> float:
    """The sum of the operator's /metrics samples matching these labels (0 when absent)."""
    with urllib.request.urlopen(url, timeout=5) as r:
        text = r.read().decode()
    total = 0.0
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                total += float(s.value)
    return total


@pytest.fixture
def agency(control_plane, crds, namespace):
    """The test namespace made an agency whose quota takes a 300-person meeting."""
    control_plane.kubectl("label", "namespace", namespace, f"meetscale.io/agency={namespace}")
    quota = yaml.safe_load((ROOT / "examples/quotas.yaml").read_text().split("---")[-1])
    quota["metadata"]["name"] = namespace
    quota["spec"]["namespaceSelector"] = {"matchLabels": {"meetscale.io/agency": namespace}}
    quota["spec"]["limits"].update(maxConcurrentParticipants=1000, maxMeetingParticipants=500)
    control_plane.kubectl("apply", "-f", "-", input=yaml.safe_dump(quota))
    yield namespace
    control_plane.kubectl("delete", "agencyquota", namespace, "--ignore-not-found", "--wait=false")


@pytest.fixture
def kube(control_plane: Any, namespace: str) -> Kube:
    return Kube(control_plane, namespace)


@pytest.fixture
def bridges(
    control_plane: Any, namespace: str, prometheus: Any, tmp_path: Path
) -> Iterator[BridgeHarness]:
    """A jvb-sim (capacity 100) per bridge pod of the test namespace, found by Prometheus."""
    with BridgeHarness(
        control_plane.kubeconfig,
        namespace,
        [prometheus.targets_file],
        log_dir=tmp_path / "bridges",
        capacity=100,
    ) as harness:
        yield harness


def loads(harness: BridgeHarness) -> dict[str, int]:
    return {pod: int(harness.state(pod)["participants"]) for pod in harness.bridges()}


def prom_sees(prometheus: Any, namespace: str, pods: dict[str, int]) -> bool:
    """Prometheus has scraped exactly these endpoint counts for these pods."""
    got = {
        s["metric"].get("pod"): int(float(s["value"][1]))
        for s in prometheus.query(f'jitsi_jvb_local_endpoints{{namespace="{namespace}"}}')
    }
    return all(got.get(p) == n for p, n in pods.items())
