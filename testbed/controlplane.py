"""A real, local Kubernetes control plane: etcd, kube-apiserver, kube-controller-manager,
kube-scheduler and kwok (fake node + pod lifecycle), all on 127.0.0.1.

    cp = ControlPlane()            # temp workdir, binaries from the build.sh cache
    cp.start()
    cp.wait_ready(120)
    ... KUBECONFIG=cp.kubeconfig ...
    cp.stop()                      # kills everything, removes the workdir

Pods scheduled on the fake node get loopback pod IPs (127.1.0.0/16 by default, or
$MEETSCALE_POD_CIDR), so a process simulating a pod can bind its pod IP and be reached at
http://<podIP>:<port>. The CIDR is claimed host-wide while the bed runs (testbed.podcidr):
a second bed on the same host gets another one, so their pods never share an address.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from . import _proc, binaries, pki
from .podcidr import POD_CIDR, PodCidrClaim, PodCidrError, claim_pod_cidr

__all__ = ["POD_CIDR", "ControlPlane", "ControlPlaneError"]

NODE_NAME = "kwok-node-0"
KWOK_NODE_ANNOTATION = "kwok.x-k8s.io/node"
SA_ISSUER = "https://kubernetes.default.svc.cluster.local"
KWOK_STAGES = Path(__file__).resolve().parent / "kwok-stages.yaml"
_MARKER = ".meetscale-testbed"
# Audit only service accounts outside kube-system (the controllers' own are there), once per
# request when it completes.
AUDIT_POLICY = {
    "apiVersion": "audit.k8s.io/v1",
    "kind": "Policy",
    "omitStages": ["RequestReceived", "ResponseStarted", "Panic"],
    "rules": [
        {"level": "None", "userGroups": ["system:serviceaccounts:kube-system"]},
        {"level": "Metadata", "userGroups": ["system:serviceaccounts"]},
        {"level": "None"},
    ],
}
# Start order; stop() goes the other way round.
COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")


class ControlPlaneError(RuntimeError):
    """A component failed to start or to become ready."""


class ControlPlane:
    """Processes of one local control plane plus the files they use (certs, kubeconfigs,
    etcd data, logs), all in `workdir`.

    die_with_parent: children get PR_SET_PDEATHSIG so they die when the thread that called
    start() dies (pytest, or the `python -m testbed up` supervisor).
    """

    def __init__(
        self,
        workdir: str | os.PathLike | None = None,
        bin_dir: str | os.PathLike | None = None,
        *,
        die_with_parent: bool = True,
        pod_cidr: str | None = None,
        pod_cidr_lock_dir: str | os.PathLike | None = None,
        node_name: str = NODE_NAME,
        keep_workdir: bool | None = None,
    ) -> None:
        if workdir is None:
            workdir = tempfile.mkdtemp(prefix="meetscale-cp-")
        self.workdir = Path(workdir).resolve()
        self.bin_dir = Path(bin_dir) if bin_dir else binaries.find_bin_dir()
        self.die_with_parent = die_with_parent
        # None: $MEETSCALE_POD_CIDR, else the first free of 127.1.0.0/16, 127.2.0.0/16, ...
        # (claimed by start(); pod_cidr then names the claimed one).
        self.pod_cidr = pod_cidr
        self._pod_cidr_lock_dir = Path(pod_cidr_lock_dir) if pod_cidr_lock_dir else None
        self._pod_cidr_claim: PodCidrClaim | None = None
        self.node_name = node_name
        if keep_workdir is None:
            keep_workdir = os.environ.get("MEETSCALE_KEEP_WORKDIR") == "1"
        self.keep_workdir = keep_workdir
        self.ports: dict[str, int] = {}
        self.procs: dict[str, subprocess.Popen] = {}
        self.pki: pki.Pki | None = None
        self.started_at: float | None = None
        self.ready_seconds: float | None = None
        self._ssl: ssl.SSLContext | None = None

    # ----------------------------------------------------------------- paths & info
    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.ports['apiserver']}"

    @property
    def kubeconfig(self) -> Path:
        """Admin kubeconfig (O=system:masters), certs embedded."""
        return self.workdir / "admin.kubeconfig"

    @property
    def audit_log(self) -> Path:
        """The apiserver's audit log: one JSON event per request of a service account outside
        kube-system (Metadata level: who, verb, resource, namespace, name, response code)."""
        return self.workdir / "audit.log"

    def _audit_policy(self) -> Path:
        path = self.workdir / "audit-policy.yaml"
        path.write_text(json.dumps(AUDIT_POLICY))
        return path

    def log_path(self, component: str) -> Path:
        return self.workdir / "logs" / f"{component}.log"

    @property
    def pids(self) -> dict[str, int]:
        return {name: p.pid for name, p in self.procs.items()}

    def rss_bytes(self) -> int:
        """Summed resident memory of all running control-plane processes."""
        return sum(_proc.rss_bytes(p.pid) for p in self.procs.values() if p.poll() is None)

    def __enter__(self) -> ControlPlane:
        self.start()
        self.wait_ready()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # ----------------------------------------------------------------- lifecycle
    def start(self) -> None:
        """Generate certs, start etcd and the apiserver (waits until it serves), then the
        controller manager, scheduler and kwok, and register the fake node. Does not wait for
        those to be ready: call wait_ready()."""
        if self.procs:
            raise ControlPlaneError("already started")
        self.started_at = time.monotonic()
        try:
            self._pod_cidr_claim = claim_pod_cidr(
                self.pod_cidr,
                lock_dir=self._pod_cidr_lock_dir,
                owner=f"pid {os.getpid()}, workdir {self.workdir}",
            )
        except PodCidrError as exc:
            raise ControlPlaneError(str(exc)) from None
        self.pod_cidr = self._pod_cidr_claim.cidr
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / _MARKER).write_text(str(os.getpid()))
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        for name in ("etcd-client", "etcd-peer", "apiserver", "controller-manager", "scheduler"):
            self.ports[name] = _proc.free_port()
        self.pki = p = pki.generate(self.workdir / "pki")
        for client in pki.CLIENTS:
            pki.write_kubeconfig(
                self.workdir / f"{client}.kubeconfig", pki.kubeconfig(p, client, self.server)
            )
        self._ssl = ssl.create_default_context(cafile=str(p.ca_crt))
        self._ssl.load_cert_chain(str(p.crt("admin")), str(p.key("admin")))
        shutil.copyfile(KWOK_STAGES, self.workdir / "kwok.yaml")

        self._spawn("etcd", self._etcd_args())
        self._wait(
            "etcd",
            lambda: (
                _proc.http_get(f"http://127.0.0.1:{self.ports['etcd-client']}/health")[0] == 200
            ),
            30,
            "etcd /health",
        )
        self._spawn("kube-apiserver", self._apiserver_args())
        self._wait("kube-apiserver", self._apiserver_ready, 90, "kube-apiserver /readyz")
        # The controller manager gives up if the apiserver is not healthy within ~10 s, so it
        # and the rest start only now.
        self._spawn("kube-controller-manager", self._controller_manager_args())
        self._spawn("kube-scheduler", self._scheduler_args())
        # kwok reads ~/.kwok/kwok.yaml if it exists: give it a private HOME.
        env = dict(os.environ, HOME=str(self.workdir / "kwok-home"))
        self._spawn("kwok", self._kwok_args(), env=env)
        self._create_node()

    def wait_ready(self, timeout: float = 120.0) -> float:
        """Block until the apiserver's /readyz is ok, the fake node is Ready and the
        `default` ServiceAccount exists. Returns seconds since start(). Raises
        ControlPlaneError naming the component that is not ready, with its log's tail."""
        checks = (
            ("kube-apiserver", "apiserver /readyz", self._apiserver_ready),
            ("kwok", f"node {self.node_name} Ready=True", self._node_ready),
            ("kube-controller-manager", "ServiceAccount default/default", self._default_sa),
        )
        deadline = time.monotonic() + timeout
        while True:
            self._check_alive()
            pending = [(comp, what) for comp, what, ok in checks if not ok()]
            if not pending:
                break
            if time.monotonic() > deadline:
                comp, what = pending[0]
                raise ControlPlaneError(
                    f"control plane not ready after {timeout:.0f}s: {what} "
                    f"(component {comp}); not ready: {', '.join(w for _, w in pending)}\n"
                    f"--- last lines of {self.log_path(comp)}:\n{_proc.tail(self.log_path(comp))}"
                )
            time.sleep(0.25)
        assert self.started_at is not None
        self.ready_seconds = time.monotonic() - self.started_at
        return self.ready_seconds

    def stop(self) -> None:
        """SIGTERM the processes, SIGKILL after 5 s, reap them, remove the workdir.

        Clients go first, then the apiserver, then etcd: an apiserver whose etcd vanished
        hangs in its graceful shutdown (and etcd waits for its clients), ~1 s this way."""
        for p in self.procs.values():  # a paused component takes no SIGTERM
            if p.poll() is None:
                with contextlib.suppress(OSError):
                    os.kill(p.pid, signal.SIGCONT)
        stages = (
            ("kwok", "kube-scheduler", "kube-controller-manager"),
            ("kube-apiserver",),
            ("etcd",),
        )
        for stage in stages:
            _proc.terminate([self.procs.pop(n) for n in stage if n in self.procs], grace=5.0)
        _proc.terminate(list(self.procs.values()), grace=5.0)
        self.procs.clear()
        if self._pod_cidr_claim is not None:  # only now: no pod of ours is served any more
            self._pod_cidr_claim.release()
            self._pod_cidr_claim = None
        if not self.keep_workdir and (self.workdir / _MARKER).exists():
            shutil.rmtree(self.workdir, ignore_errors=True)

    # ----------------------------------------------------------------- faults
    def restart(self, component: str, down_seconds: float = 0.0, timeout: float = 90.0) -> float:
        """Stop ``component`` (SIGTERM, SIGKILL after 5 s), keep it down ``down_seconds``,
        start it again with the same arguments (and ports, certs, data), and for the
        apiserver wait until it serves /readyz. Returns the seconds it was down."""
        args = {
            "etcd": self._etcd_args,
            "kube-apiserver": self._apiserver_args,
            "kube-controller-manager": self._controller_manager_args,
            "kube-scheduler": self._scheduler_args,
        }[component]()
        t0 = time.monotonic()
        _proc.terminate([self.procs.pop(component)], grace=5.0)
        time.sleep(down_seconds)
        self._spawn(component, args, append=True)
        if component == "kube-apiserver":
            self._wait(component, self._apiserver_ready, timeout, "kube-apiserver /readyz")
        return time.monotonic() - t0

    def pause(self, component: str) -> None:
        """SIGSTOP ``component``: it holds its connections and answers nothing."""
        os.kill(self.procs[component].pid, signal.SIGSTOP)

    def resume(self, component: str) -> None:
        """SIGCONT ``component`` after :meth:`pause`."""
        os.kill(self.procs[component].pid, signal.SIGCONT)

    def dead_components(self) -> dict[str, int]:
        """Components whose process exited, with their exit codes."""
        return {n: p.returncode for n, p in self.procs.items() if p.poll() is not None}

    # ----------------------------------------------------------------- kubectl & API
    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 60
    ) -> subprocess.CompletedProcess:
        return subprocess.run(
            [
                str(self.bin_dir / "kubectl"),
                f"--kubeconfig={self.kubeconfig}",
                f"--cache-dir={self.workdir / 'kube-cache'}",
                *args,
            ],
            input=input,
            capture_output=True,
            text=True,
            check=check,
            timeout=timeout,
        )

    def api(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict | str]:
        """Minimal admin API call; returns (status, parsed JSON or text); status 0 = no conn."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.server + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with _proc.opener(self._ssl).open(req, timeout=5) as r:
                status, raw = r.status, r.read()
        except urllib.error.HTTPError as e:
            status, raw = e.code, e.read()
        except OSError:
            return 0, ""
        text = raw.decode(errors="replace")
        try:
            return status, json.loads(text)
        except ValueError:
            return status, text

    # ----------------------------------------------------------------- internals
    def _spawn(
        self, name: str, args: list[str], env: dict[str, str] | None = None, append: bool = False
    ) -> None:
        argv = [str(self.bin_dir / name), *args]
        log = self.log_path(name)
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("a" if append else "w") as f:
            f.write("# " + " ".join(argv) + "\n")
        self.procs[name] = _proc.spawn(
            argv, log, die_with_parent=self.die_with_parent, env=env, cwd=self.workdir
        )

    def _check_alive(self) -> None:
        for name, code in self.dead_components().items():
            raise ControlPlaneError(
                f"{name} exited with code {code}\n--- last lines of {self.log_path(name)}:\n"
                f"{_proc.tail(self.log_path(name))}"
            )

    def _wait(self, component: str, ok, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not ok():
            self._check_alive()
            if time.monotonic() > deadline:
                raise ControlPlaneError(
                    f"{what} not ready after {timeout:.0f}s (component {component})\n"
                    f"--- last lines of {self.log_path(component)}:\n"
                    f"{_proc.tail(self.log_path(component))}"
                )
            time.sleep(0.1)

    def _apiserver_ready(self) -> bool:
        status, body = self.api("GET", "/readyz")
        return status == 200 and body == "ok"

    def _node_ready(self) -> bool:
        status, node = self.api("GET", f"/api/v1/nodes/{self.node_name}")
        if status != 200 or not isinstance(node, dict):
            return False
        conditions = node.get("status", {}).get("conditions") or []
        return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)

    def _default_sa(self) -> bool:
        return self.api("GET", "/api/v1/namespaces/default/serviceaccounts/default")[0] == 200

    def _create_node(self) -> None:
        status, body = self.api("POST", "/api/v1/nodes", node_manifest(self.node_name))
        if status not in (201, 409):
            raise ControlPlaneError(f"creating node {self.node_name} failed: {status} {body}")

    def _etcd_args(self) -> list[str]:
        client = f"http://127.0.0.1:{self.ports['etcd-client']}"
        peer = f"http://127.0.0.1:{self.ports['etcd-peer']}"
        return [
            "--name=node0",
            f"--data-dir={self.workdir / 'etcd'}",
            f"--listen-client-urls={client}",
            f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=node0={peer}",
            "--initial-cluster-state=new",
            "--auto-compaction-retention=1",
            "--quota-backend-bytes=2147483648",
            "--unsafe-no-fsync=true",  # throwaway data: don't pay for fsync
            "--log-level=warn",
        ]

    def _apiserver_args(self) -> list[str]:
        p = self.pki
        assert p is not None
        return [
            f"--etcd-servers=http://127.0.0.1:{self.ports['etcd-client']}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={self.ports['apiserver']}",
            f"--cert-dir={self.workdir / 'apiserver-certs'}",
            f"--tls-cert-file={p.apiserver_crt}",
            f"--tls-private-key-file={p.apiserver_key}",
            f"--client-ca-file={p.ca_crt}",
            "--authorization-mode=Node,RBAC",
            f"--service-account-issuer={SA_ISSUER}",
            f"--service-account-key-file={p.sa_pub}",
            f"--service-account-signing-key-file={p.sa_key}",
            f"--service-cluster-ip-range={pki.SERVICE_CIDR}",
            "--allow-privileged=true",
            # Endpoints may not hold loopback IPs, so the `kubernetes` Service endpoint
            # (the advertise address 127.0.0.1) can't be reconciled: don't try.
            "--endpoint-reconciler-type=none",
            "--profiling=false",
            # Webhooks and aggregated APIs registered through a Service are called at one of
            # the Service's EndpointSlice addresses instead of its ClusterIP: there is no
            # kube-proxy here to route a ClusterIP (k8s.io/kubernetes
            # cmd/kube-apiserver/app/server.go buildServiceResolver).
            "--enable-aggregator-routing=true",
            # What service accounts do (not the control plane's own), for the least-privilege
            # test: audit.log next to the kubeconfig.
            f"--audit-policy-file={self._audit_policy()}",
            f"--audit-log-path={self.audit_log}",
            "--audit-log-format=json",
            "--audit-log-maxsize=200",
        ]

    def _controller_manager_args(self) -> list[str]:
        p = self.pki
        assert p is not None
        return [
            f"--kubeconfig={self.workdir / 'kube-controller-manager.kubeconfig'}",
            "--leader-elect=false",
            "--use-service-account-credentials=true",
            f"--service-account-private-key-file={p.sa_key}",
            f"--root-ca-file={p.ca_crt}",
            f"--cluster-signing-cert-file={p.ca_crt}",
            f"--cluster-signing-key-file={p.ca_key}",
            f"--service-cluster-ip-range={pki.SERVICE_CIDR}",
            "--bind-address=127.0.0.1",
            f"--secure-port={self.ports['controller-manager']}",
            "--profiling=false",
            # Client-side rate limits (20 qps) slow startup: with per-controller credentials
            # it creates ~40 ServiceAccounts and tokens first.
            "--kube-api-qps=1000",
            "--kube-api-burst=2000",
        ]

    def _scheduler_args(self) -> list[str]:
        return [
            f"--kubeconfig={self.workdir / 'kube-scheduler.kubeconfig'}",
            "--leader-elect=false",
            "--bind-address=127.0.0.1",
            f"--secure-port={self.ports['scheduler']}",
            "--profiling=false",
            "--kube-api-qps=1000",
            "--kube-api-burst=2000",
        ]

    def _kwok_args(self) -> list[str]:
        return [
            f"--kubeconfig={self.workdir / 'kwok.kubeconfig'}",
            f"--config={self.workdir / 'kwok.yaml'}",
            "--manage-all-nodes=false",
            f"--manage-nodes-with-annotation-selector={KWOK_NODE_ANNOTATION}=fake",
            "--node-ip=127.0.0.1",
            f"--cidr={self.pod_cidr}",
            "--node-lease-duration-seconds=40",
        ]


def node_manifest(name: str = NODE_NAME) -> dict:
    """A fake node as the kwok docs describe it, without the NoSchedule taint, roomy."""
    resources = {"cpu": "64", "memory": "256Gi", "pods": "1000", "ephemeral-storage": "1Ti"}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {KWOK_NODE_ANNOTATION: "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {
                "kubernetes.io/arch": "amd64",
                "kubernetes.io/os": "linux",
                "kubernetes.io/hostname": name,
                "kubernetes.io/role": "agent",
                "node-role.kubernetes.io/agent": "",
                "type": "kwok",
            },
        },
        "spec": {},
        "status": {"capacity": resources, "allocatable": resources, "phase": "Running"},
    }
