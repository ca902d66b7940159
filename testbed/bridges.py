"""Simulated videobridges for the bridge pods of a namespace, found by Prometheus.

    with BridgeHarness(kubeconfig, "ns", [prom.targets_file], log_dir=tmp) as bridges:
        bridges.wait_for(2)                        # two pods with a listening jvb-sim
        bridges.set_conference("pool-jvb-abc", "c1", 120)
        bridges.place("c2", 40)                    # like Jicofo: least-loaded, not draining

A background thread lists the pods labelled `meetscale.io/pool` every `poll` seconds. For
each Running pod with a pod IP (kwok gives loopback IPs from the bed's pod CIDR) it starts
`python -m meetscale jvb-sim --host <podIP> --port 8080 --name <pod>` (killed with the
harness, PR_SET_PDEATHSIG), restarts it if it exits while the pod lives, as the kubelet
restarts a container, and shows it in the pod's status as the kubelet does (the
container's `restartCount` up by one, its `lastState.terminated` with the exit code,
Ready False until the restarted bridge answers `/about/health`; kwok's stages leave a
Running pod's status alone), stops it when the pod is gone or terminating, and rewrites
the Prometheus file_sd targets: `<podIP>:8080` with the labels the chart's PodMonitor gives
its series under the Prometheus Operator (namespace, pod, container, endpoint and job, and
pool from the chart's relabeling; no label of the test bed's own). So the operator reaches
`http://<podIP>:8080` and queries Prometheus exactly as in production. Two live pods with
one IP (which the test bed's CIDR claim rules out) would make the second bridge fail to bind:
the harness then starts no bridge for the younger pod and says so in `errors`, instead of
restarting it forever.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import _proc
from .prometheus import _atomic_write

POOL_LABEL = "meetscale.io/pool"
DRAINING_LABEL = "meetscale.io/draining"
SIM_PORT = 8080
MUC_DOMAIN = "muc.meet.jitsi"  # docker-jitsi-meet's and jitsi-helm's default
log = logging.getLogger("testbed.bridges")


#: the chart's PodMonitor for the bridges (charts/meetscale/templates/observability.yaml):
#: the Prometheus Operator names its job `<namespace>/<name>` and labels each target with its
#: namespace, pod, container and the port's name (`endpoint`)
PODMONITOR = "meetscale-bridges"


def podmonitor_labels(namespace: str, pod: str, pool: str) -> dict[str, str]:
    """The target labels the chart's PodMonitor scrape of a bridge's `colibri` port yields:
    the Prometheus Operator's, and `pool` from the pod's meetscale.io/pool label (the chart's
    relabeling, which the dashboards group by; the operator's default queries need only
    namespace and pod)."""
    return {
        "job": f"{namespace}/{PODMONITOR}",
        "namespace": namespace,
        "pod": pod,
        "container": "jvb",
        "endpoint": "colibri",
        "pool": pool,
    }


@dataclass
class Bridge:
    """One simulated bridge: the pod it stands for and its jvb-sim process."""

    pod: str
    uid: str
    ip: str
    pool: str
    port: int
    proc: Any = None  # subprocess.Popen
    up: bool = False  # answered /about/health since (re)start
    restarts: int = 0
    started_at: float = field(default_factory=time.monotonic)
    draining_label: bool = False
    unready: bool = False  # the pod's status says Ready False (a restart), until it answers
    release: str | None = None  # videobridge.version.release, as the pod's env gives it

    @property
    def url(self) -> str:
        return f"http://{self.ip}:{self.port}"

    @property
    def target(self) -> str:
        return f"{self.ip}:{self.port}"


_RELEASE = re.compile(r"(?:^|\s)-Dvideobridge\.version\.release=(\S+)")
_VAR = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def pod_release(pod: dict[str, Any]) -> str | None:
    """The release a bridge of this pod reports, as the stock image would get it: the jvb
    container's VIDEOBRIDGE_DEBUG_OPTIONS (passed to java by jvb.sh), with $(VAR) expanded
    as the kubelet does from variables defined before it (literal values, and a downward-API
    metadata.name)."""
    spec = pod.get("spec") or {}
    containers = spec.get("containers") or []
    jvb = next((c for c in containers if c.get("name") == "jvb"), None)
    if jvb is None:
        return None
    known: dict[str, str] = {}
    for env in jvb.get("env") or []:
        name = env.get("name", "")
        if "value" in env:
            value = _VAR.sub(lambda m: known.get(m.group(1), m.group(0)), str(env["value"]))
        elif ((env.get("valueFrom") or {}).get("fieldRef") or {}).get("fieldPath") == (
            "metadata.name"
        ):
            value = (pod.get("metadata") or {}).get("name", "")
        else:
            continue
        known[name] = value
    found = _RELEASE.search(known.get("VIDEOBRIDGE_DEBUG_OPTIONS", ""))
    return found.group(1) if found else None


class BridgeHarness:
    def __init__(
        self,
        kubeconfig: str | os.PathLike[str],
        namespace: str,
        targets_files: Iterable[str | os.PathLike[str]],
        *,
        log_dir: str | os.PathLike[str],
        port: int = SIM_PORT,
        capacity: int | None = None,
        poll: float = 0.5,
        python: str = sys.executable,
        extra_args: Sequence[str] = (),
        pool: str | None = None,
    ) -> None:
        """``pool``: only that BridgePool's bridge pods (default: every pool's)."""
        self.kubeconfig = str(kubeconfig)
        self.selector = f"{POOL_LABEL}={pool}" if pool else POOL_LABEL
        self.namespace = namespace
        self.targets_files = [Path(p) for p in targets_files]
        self.log_dir = Path(log_dir)
        self.port = port
        self.capacity = capacity
        self.poll = poll
        self.python = python
        self.extra_args = list(extra_args)
        self._bridges: dict[str, Bridge] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._published: list[dict[str, Any]] | None = None
        self._api: Any = None
        self.errors: list[str] = []
        self.gone: list[str] = []  # pods whose bridge was stopped because the pod went away

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> BridgeHarness:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> BridgeHarness:
        from kubernetes import client, config

        api_client = config.new_client_from_config(config_file=self.kubeconfig)
        self._api = client.CoreV1Api(api_client)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._publish([])
        self._thread = threading.Thread(target=self._run, name="bridge-harness", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        with self._lock:
            procs = [b.proc for b in self._bridges.values() if b.proc is not None]
            self._bridges.clear()
        _proc.terminate(procs, grace=3.0)
        with contextlib.suppress(OSError):
            self._publish([])

    # ------------------------------------------------------------------ the loop

    def _run(self) -> None:
        # Children are spawned from this thread (PR_SET_PDEATHSIG follows the thread), and
        # stopped by stop() or when it exits.
        try:
            while not self._stop.is_set():
                try:
                    self._sync()
                except Exception as exc:  # the API may blip; the next poll retries
                    self.errors.append(f"{type(exc).__name__}: {exc}")
                    log.warning("bridge harness: %s", exc)
                self._stop.wait(self.poll)
        finally:
            with self._lock:
                procs = [b.proc for b in self._bridges.values() if b.proc is not None]
            _proc.terminate(procs, grace=3.0)

    def _pods(self) -> list[dict[str, Any]]:
        resp = self._api.list_namespaced_pod(
            self.namespace, label_selector=self.selector, _preload_content=False
        )
        return list(json.loads(resp.data).get("items") or [])

    def _sync(self) -> None:
        wanted: dict[str, dict[str, Any]] = {}
        for pod in self._pods():
            meta, status = pod.get("metadata") or {}, pod.get("status") or {}
            if meta.get("deletionTimestamp") or status.get("phase") != "Running":
                continue
            if not status.get("podIP"):
                continue
            wanted[meta["name"]] = pod
        self._drop_shared_ips(wanted)
        with self._lock:
            for name in [n for n in self._bridges if n not in wanted]:
                bridge = self._bridges.pop(name)
                _proc.terminate([bridge.proc], grace=2.0)
                self.gone.append(name)
                log.info("bridge %s stopped (pod gone)", name)
            for name, pod in wanted.items():
                meta, status = pod["metadata"], pod["status"]
                labels = meta.get("labels") or {}
                bridge = self._bridges.get(name)
                if bridge is not None and bridge.uid != meta.get("uid"):
                    _proc.terminate([bridge.proc], grace=2.0)
                    bridge = None
                if bridge is None:
                    bridge = Bridge(
                        pod=name,
                        uid=meta.get("uid", ""),
                        ip=status["podIP"],
                        pool=labels.get(POOL_LABEL, ""),
                        port=self.port,
                        release=pod_release(pod),
                    )
                    self._bridges[name] = bridge
                    self._spawn(bridge)
                bridge.draining_label = labels.get(DRAINING_LABEL) == "true"
                code = bridge.proc.poll()
                if code is not None:  # exited: restart, as the kubelet would
                    bridge.up = False
                    if time.monotonic() - bridge.started_at > 1.0:
                        bridge.restarts += 1
                        self._restarted(pod, code)
                        bridge.unready = True
                        self._spawn(bridge)
                elif not bridge.up:
                    bridge.up = _proc.http_get(bridge.url + "/about/health", timeout=0.5)[0] == 200
                    if bridge.up and bridge.unready:
                        self._set_ready(pod, True)
                        bridge.unready = False
            groups = [
                {
                    "targets": [b.target],
                    "labels": podmonitor_labels(self.namespace, b.pod, b.pool),
                }
                for b in sorted(self._bridges.values(), key=lambda b: b.pod)
                if b.up
            ]
        if groups != self._published:
            self._publish(groups)

    def _restarted(self, pod: dict[str, Any], exit_code: int) -> None:
        """The pod's status after its container exited and is started again, as the
        kubelet writes it: restartCount + 1, lastState terminated, not ready."""
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        statuses = []
        for was in (pod.get("status") or {}).get("containerStatuses") or []:
            cs = dict(was)
            cs["restartCount"] = int(cs.get("restartCount") or 0) + 1
            cs["lastState"] = {
                "terminated": {
                    "exitCode": exit_code if exit_code >= 0 else 128 - exit_code,
                    "reason": "Error",
                    "finishedAt": now,
                }
            }
            cs["ready"] = False
            cs["state"] = {"running": {"startedAt": now}}
            statuses.append(cs)
        self._patch_status(pod, {"containerStatuses": statuses}, ready=False)

    def _set_ready(self, pod: dict[str, Any], ready: bool) -> None:
        fresh = self._api.read_namespaced_pod_status(
            pod["metadata"]["name"], self.namespace, _preload_content=False
        )
        current = json.loads(fresh.data)
        statuses = [
            {**cs, "ready": ready}
            for cs in (current.get("status") or {}).get("containerStatuses") or []
        ]
        self._patch_status(current, {"containerStatuses": statuses}, ready=ready)

    def _patch_status(self, pod: dict[str, Any], status: dict[str, Any], *, ready: bool) -> None:
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        conditions = []
        for was in (pod.get("status") or {}).get("conditions") or []:
            c = dict(was)
            if c.get("type") in ("Ready", "ContainersReady"):
                c.update(status="True" if ready else "False", lastTransitionTime=now)
            conditions.append(c)
        self._api.patch_namespaced_pod_status(
            pod["metadata"]["name"],
            self.namespace,
            {"status": {**status, "conditions": conditions}},
        )

    def kill(self, pod: str) -> None:
        """SIGKILL the bridge of ``pod`` (its process dies; the harness restarts it)."""
        with self._lock:
            proc = self._bridges[pod].proc
        proc.kill()

    def _drop_shared_ips(self, wanted: dict[str, dict[str, Any]]) -> None:
        """Keep the oldest pod of each IP (the one whose bridge may already run)."""
        by_ip: dict[str, list[dict[str, Any]]] = {}
        for pod in wanted.values():
            by_ip.setdefault(pod["status"]["podIP"], []).append(pod)
        for ip, pods in by_ip.items():
            if len(pods) < 2:
                continue
            pods.sort(
                key=lambda p: (p["metadata"].get("creationTimestamp", ""), p["metadata"]["name"])
            )
            for pod in pods[1:]:
                name = pod["metadata"]["name"]
                del wanted[name]
                message = f"pod {name} has IP {ip} of live pod {pods[0]['metadata']['name']}"
                if message not in self.errors:
                    self.errors.append(message)
                    log.error("bridge harness: %s; no bridge started for it", message)

    def _spawn(self, bridge: Bridge) -> None:
        argv = [
            self.python,
            "-m",
            "meetscale",
            "jvb-sim",
            "--host",
            bridge.ip,
            "--port",
            str(bridge.port),
            "--name",
            bridge.pod,
            *(["--capacity", str(self.capacity)] if self.capacity else []),
            *(["--release", bridge.release] if bridge.release else []),
            *self.extra_args,
        ]
        bridge.proc = _proc.spawn(argv, self.log_dir / f"{bridge.pod}.log", die_with_parent=True)
        bridge.started_at = time.monotonic()
        bridge.up = False

    def _publish(self, groups: list[dict[str, Any]]) -> None:
        text = json.dumps(groups, indent=1)
        for path in self.targets_files:
            path.parent.mkdir(parents=True, exist_ok=True)
            _atomic_write(path, text)
        self._published = groups

    # ------------------------------------------------------------------ views

    def bridges(self) -> dict[str, Bridge]:
        """Pod name -> bridge, for pods whose jvb-sim answers."""
        with self._lock:
            return {n: b for n, b in self._bridges.items() if b.up}

    def wait_for(
        self, count: int, timeout: float = 60.0, *, exact: bool = True
    ) -> dict[str, Bridge]:
        """Wait until `count` bridges answer (exactly, or at least with exact=False)."""
        deadline = time.monotonic() + timeout
        while True:
            up = self.bridges()
            if len(up) == count or (not exact and len(up) >= count):
                return up
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{len(up)} bridges up after {timeout:.0f}s, wanted {count}: {sorted(up)}; "
                    f"errors: {self.errors[-3:]}"
                )
            time.sleep(0.2)

    def url(self, pod: str) -> str:
        with self._lock:
            return self._bridges[pod].url

    # ------------------------------------------------------------------ load

    def set_conference(
        self,
        pod: str,
        conference: str,
        participants: int,
        room: str | None = None,
        *,
        selected: bool = False,
    ) -> int:
        """PUT /sim/conferences/{id}; returns the HTTP status (409: refused, draining).
        ``room``: the Jitsi room it is (its `/debug` name is `room@muc.meet.jitsi`);
        ``selected``: Jicofo chose this bridge (a pin), so drain mode does not refuse it."""
        body: dict[str, Any] = {"participants": participants}
        if room is not None:
            body["name"] = f"{room}@{MUC_DOMAIN}"
        if selected:
            body["selected"] = True
        status, _ = _request("PUT", f"{self.url(pod)}/sim/conferences/{conference}", body)
        return status

    def state(self, pod: str) -> dict[str, Any]:
        status, body = _request("GET", f"{self.url(pod)}/sim/state")
        if status != 200 or not isinstance(body, dict):
            raise RuntimeError(f"GET /sim/state of {pod}: HTTP {status}")
        return body

    def place(self, conference: str, participants: int, room: str | None = None) -> str:
        """Start a conference where Jicofo would: the least-loaded bridge taking new ones."""
        candidates = []
        for pod in self.bridges():
            with contextlib.suppress(RuntimeError, OSError):
                st = self.state(pod)
                if st.get("accepts_new_conferences"):
                    candidates.append((st.get("participants", 0), pod))
        for _, pod in sorted(candidates):
            if self.set_conference(pod, conference, participants, room) in (200, 201):
                return pod
        raise RuntimeError(f"no bridge accepted conference {conference}")


def _request(method: str, url: str, body: Any = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with _proc.opener().open(req, timeout=5) as r:
            status, raw = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, raw.decode(errors="replace")
