"""The Helm chart on the test bed (no tests here): install a release, and run its operator
replicas as plain processes with the chart's own ServiceAccount token (never the admin's) and
the environment the chart's Deployment gives them.

kwok runs the Deployment's pods as fakes (loopback pod IPs, nothing listens). The real
replicas are processes on this machine, each named after one fake pod (POD_NAME, the Lease
holder identity). The webhook Service gets one EndpointSlice written here, pointing at the
replica's webhook port on this machine's own non-loopback IPv4 address: the apiserver, started
with --enable-aggregator-routing, calls a Service at one of its EndpointSlice addresses, and
refuses loopback addresses in EndpointSlices (k8s.io/kubernetes pkg/apis/discovery/validation
validateEndpoints -> core ValidateEndpointIP: "may not be in the loopback range").
"""

from __future__ import annotations

import base64
import contextlib
import ipaddress
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from testbed._proc import free_port, spawn
from tests.chart import CHART, CRDS_CHART, helm

ROOT = Path(__file__).resolve().parents[2]
CRDS_RELEASE = "meetscale-crds"
# The Prometheus Operator's CRDs (ServiceMonitor, PodMonitor, PrometheusRule) for the server-side
# dry run of the chart's monitoring objects, from its Go module (example/prometheus-operator-crd).
PROMETHEUS_OPERATOR = "github.com/prometheus-operator/prometheus-operator@v0.89.0"
MONITORING_CRDS = ("servicemonitors", "podmonitors", "prometheusrules")
CRD_NAMES = ("meetings.meetscale.io", "agencyquotas.meetscale.io", "bridgepools.meetscale.io")


def host_ip() -> str:
    """This machine's IPv4 address on its default route (the apiserver reaches it; an
    EndpointSlice accepts it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(("203.0.113.1", 9))  # no packet is sent: it only picks the route
        ip = s.getsockname()[0]
    if ipaddress.ip_address(ip).is_loopback:
        raise AssertionError("no non-loopback IPv4 address: the webhook Service needs one")
    return str(ip)


def prometheus_operator_crds() -> list[Path]:
    """The CRD files of ServiceMonitor, PodMonitor and PrometheusRule, from the Prometheus
    Operator's Go module (`go mod download`, through the Go module proxy, cached)."""
    env = {**os.environ, "GOFLAGS": "-mod=mod", "GOSUMDB": "off", "GO111MODULE": "on"}
    with tempfile.TemporaryDirectory() as outside_any_module:  # go.mod files stay untouched
        r = subprocess.run(["go", "mod", "download", "-json", PROMETHEUS_OPERATOR], env=env,
                           cwd=outside_any_module, capture_output=True, text=True,
                           check=False, timeout=300)  # fmt: skip
    if r.returncode != 0:
        raise AssertionError(f"go mod download {PROMETHEUS_OPERATOR} failed:\n{r.stdout}{r.stderr}")
    crds = Path(json.loads(r.stdout)["Dir"]) / "example/prometheus-operator-crd"
    return [crds / f"monitoring.coreos.com_{name}.yaml" for name in MONITORING_CRDS]


def run(cp: Any, *args: str, input: str | None = None) -> str:
    return str(cp.kubectl(*args, input=input).stdout)


def helm_cmd(cp: Any, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    argv = [helm(), f"--kubeconfig={cp.kubeconfig}", *args]
    r = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=timeout)
    if r.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed:\n{r.stdout}{r.stderr}")
    return r


def install_crds(cp: Any) -> None:
    """The meetscale-crds release. CRDs applied earlier with kubectl (other tests' `crds`
    fixture, or an install from the old chart's crds/) are adopted first, as docs/chart.md
    tells operators to do: Helm's ownership label and annotations."""
    for crd in CRD_NAMES:
        exists = cp.kubectl("get", "crd", crd, check=False).returncode == 0
        if exists:
            cp.kubectl("label", "--overwrite", "crd", crd, "app.kubernetes.io/managed-by=Helm")
            cp.kubectl(
                "annotate", "--overwrite", "crd", crd,
                f"meta.helm.sh/release-name={CRDS_RELEASE}",
                "meta.helm.sh/release-namespace=default",
            )  # fmt: skip
    helm_cmd(cp, "upgrade", "--install", CRDS_RELEASE, str(CRDS_CHART), "-n", "default", "--wait")
    for crd in CRD_NAMES:
        cp.kubectl("wait", "--for=condition=Established", f"crd/{crd}", "--timeout=60s")


@dataclass
class Release:
    cp: Any
    name: str
    namespace: str
    workdir: Path
    values: dict[str, Any]
    notes: str = ""
    agency_namespaces: list[str] = field(default_factory=list)

    @property
    def sa(self) -> str:
        return self.name  # fullname: the release name contains "meetscale"

    @property
    def sa_user(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.sa}"

    def deployment(self) -> dict[str, Any]:
        return dict(json.loads(run(self.cp, "get", "deploy", self.name, "-n", self.namespace,
                                   "-o", "json")))  # fmt: skip

    def pod_names(self) -> list[str]:
        out = run(self.cp, "get", "pods", "-n", self.namespace, "-o", "json",
                  "-l", f"app.kubernetes.io/instance={self.name}")  # fmt: skip
        return sorted(p["metadata"]["name"] for p in json.loads(out)["items"])

    def chart_env(self) -> dict[str, str]:
        """MEETSCALE_* variables exactly as the chart's Deployment sets them."""
        (container,) = self.deployment()["spec"]["template"]["spec"]["containers"]
        return {e["name"]: e["value"] for e in container["env"] if "value" in e}

    def sa_kubeconfig(self) -> Path:
        """A kubeconfig with a token of the chart's ServiceAccount (TokenRequest)."""
        token = run(self.cp, "create", "token", self.sa, "-n", self.namespace,
                    "--duration=3h").strip()  # fmt: skip
        admin = yaml.safe_load(Path(self.cp.kubeconfig).read_text())
        cluster = admin["clusters"][0]["cluster"]
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "testbed", "cluster": cluster}],
            "users": [{"name": self.sa, "user": {"token": token}}],
            "contexts": [{"name": "sa", "context": {"cluster": "testbed", "user": self.sa}}],
            "current-context": "sa",
        }
        path = self.workdir / f"{self.sa}.kubeconfig"
        path.write_text(yaml.safe_dump(config))
        return path

    def point_webhook_at(self, ip: str, port: int) -> None:
        """The webhook Service's endpoint: this machine's address and the replica's port."""
        doc = {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {
                "name": f"{self.name}-webhook-testbed",
                "namespace": self.namespace,
                "labels": {
                    "kubernetes.io/service-name": f"{self.name}-webhook",
                    "endpointslice.kubernetes.io/managed-by": "meetscale-tests",
                },
            },
            "addressType": "IPv4",
            "endpoints": [{"addresses": [ip], "conditions": {"ready": True}}],
            "ports": [{"name": "webhook", "port": port, "protocol": "TCP"}],
        }
        self.cp.kubectl("apply", "-f", "-", input=yaml.safe_dump(doc))


def install(
    cp: Any, workdir: Path, values: dict[str, Any], *, agency_namespaces: list[str] = ()
) -> Release:
    """A release meetscale-<hex> in a new namespace of the same name (the pool namespace)."""
    name = f"meetscale-{secrets.token_hex(3)}"
    workdir.mkdir(parents=True, exist_ok=True)
    values_file = workdir / "values.yaml"
    values_file.write_text(yaml.safe_dump(values, allow_unicode=True))
    cp.kubectl("create", "namespace", name)
    r = helm_cmd(
        cp, "install", name, str(CHART), "-n", name, "-f", str(values_file),
        "--wait", "--timeout=180s",
    )  # fmt: skip
    return Release(cp, name, name, workdir, values, r.stdout, list(agency_namespaces))


def uninstall(release: Release) -> None:
    cp = release.cp
    # BridgePools carry Kopf's finalizer: the replicas are gone by now, so drop it.
    out = cp.kubectl("get", "bridgepools", "-n", release.namespace, "-o", "name", check=False)
    for pool in out.stdout.split():
        cp.kubectl("patch", pool, "-n", release.namespace, "--type=merge",
                   "-p", '{"metadata":{"finalizers":null}}', check=False)  # fmt: skip
    with contextlib.suppress(AssertionError):
        helm_cmd(cp, "uninstall", release.name, "-n", release.namespace, "--wait")
    for ns in [release.namespace, *release.agency_namespaces]:  # kept by the chart on purpose
        cp.kubectl("delete", "namespace", ns, "--wait=false", "--ignore-not-found", check=False)
    for ns in [release.namespace, *release.agency_namespaces]:
        cp.kubectl("wait", "--for=delete", f"namespace/{ns}", "--timeout=90s", check=False,
                   timeout=120)  # fmt: skip


@dataclass
class Replica:
    """One operator replica: a `meetscale run` process standing for one of the chart's pods."""

    pod: str
    proc: subprocess.Popen[bytes]
    log: Path
    metrics_url: str
    health_url: str
    webhook_port: int

    def logs(self) -> str:
        return self.log.read_text(errors="replace")

    def get(self, path: str) -> tuple[int, Any]:
        try:
            with urllib.request.urlopen(self.health_url + path, timeout=2) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"{}")
        except OSError:
            return 0, None

    def ready(self) -> dict[str, Any] | None:
        status, body = self.get("/readyz")
        return body if status == 200 else None

    def leading(self) -> bool:
        status, body = self.get("/readyz")
        return status in (200, 503) and bool(body and body.get("leader"))

    def metrics(self) -> str:
        try:
            with urllib.request.urlopen(self.metrics_url, timeout=2) as r:
                return str(r.read().decode())
        except OSError:
            return ""

    def stop(self, sig: str = "term", timeout: float = 40) -> int:
        if self.proc.poll() is None:
            (self.proc.terminate if sig == "term" else self.proc.kill)()
        return self.proc.wait(timeout)


def start_replica(release: Release, pod: str, kubeconfig: Path, **env: str) -> Replica:
    """`meetscale run` with the chart's environment and ServiceAccount; listen addresses moved
    to this machine (metrics and probes on loopback, the webhook on the host address)."""
    metrics_port, health_port, webhook_port = free_port(), free_port(), free_port()
    environ = {
        **{k: v for k, v in os.environ.items() if not k.startswith("MEETSCALE_")},
        **release.chart_env(),
        "KUBECONFIG": str(kubeconfig),
        "POD_NAME": pod,
        "MEETSCALE_METRICS_HOST": "127.0.0.1",
        "MEETSCALE_METRICS_PORT": str(metrics_port),
        "MEETSCALE_HEALTH_HOST": "127.0.0.1",
        "MEETSCALE_HEALTH_PORT": str(health_port),
        "MEETSCALE_WEBHOOK_HOST": host_ip(),
        "MEETSCALE_WEBHOOK_PORT": str(webhook_port),
        "MEETSCALE_ADMISSION_RESYNC_SECONDS": "5",
        **env,
    }
    log = release.workdir / f"{pod}-{secrets.token_hex(2)}.log"
    proc = spawn([sys.executable, "-m", "meetscale", "run"], log, env=environ, cwd=ROOT)
    replica = Replica(
        pod, proc, log, f"http://127.0.0.1:{metrics_port}/metrics",
        f"http://127.0.0.1:{health_port}", webhook_port,
    )  # fmt: skip
    deadline = time.monotonic() + 90
    while replica.ready() is None:
        if proc.poll() is not None:
            raise AssertionError(
                f"replica {pod} exited {proc.returncode}:\n{replica.logs()[-4000:]}"
            )
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"replica {pod} not ready in 90 s:\n{replica.logs()[-4000:]}")
        time.sleep(0.3)
    return replica


def secret_data(cp: Any, namespace: str, name: str) -> dict[str, bytes]:
    doc = json.loads(run(cp, "get", "secret", name, "-n", namespace, "-o", "json"))
    return {k: base64.b64decode(v) for k, v in (doc.get("data") or {}).items()}


def metric_sum(text: str, name: str, **labels: str) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    total = 0.0
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                total += float(s.value)
    return total
