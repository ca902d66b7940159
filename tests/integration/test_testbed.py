"""The local test bed itself: versions, scheduling onto the kwok node with loopback pod IPs
that no two live pods share (within a bed, and across two beds on one host), RBAC,
ServiceAccounts, Prometheus scraping, and that stopping leaves no process behind."""

from __future__ import annotations

import http.server
import ipaddress
import json
import os
import random
import secrets
import signal
import subprocess
import sys
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from testbed import _proc, binaries
from testbed.controlplane import ControlPlane, ControlPlaneError

pytestmark = pytest.mark.cluster

ROOT = Path(__file__).resolve().parents[2]


def wait_until(predicate, timeout: float = 60, interval: float = 0.5, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def test_kubectl_and_server_versions(control_plane):
    want = binaries.read_versions()["KUBE_VERSION"]
    assert want == "v1.36.3"
    v = json.loads(control_plane.kubectl("version", "-o", "json").stdout)
    assert v["clientVersion"]["gitVersion"] == want
    assert v["serverVersion"]["gitVersion"] == want


def test_deployment_pods_become_ready_with_loopback_ips(control_plane, namespace):
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": namespace},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "registry.invalid/x:1"}]},
            },
        },
    }
    control_plane.kubectl("apply", "-f", "-", input=yaml.safe_dump(deployment))
    control_plane.kubectl(
        "rollout", "status", "deployment/web", "-n", namespace, "--timeout=60s", timeout=90
    )

    def ready_pods():
        out = control_plane.kubectl("get", "pods", "-n", namespace, "-l", "app=web", "-o", "json")
        pods = json.loads(out.stdout)["items"]
        ready = [
            p
            for p in pods
            if p["status"].get("phase") == "Running"
            and p["status"].get("podIP")
            and any(
                c["type"] == "Ready" and c["status"] == "True"
                for c in p["status"].get("conditions", [])
            )
        ]
        return ready if len(ready) == len(pods) == 2 else None

    try:
        pods = wait_until(ready_pods, timeout=30, interval=0.5, what="2 Ready pods with IPs")
    except AssertionError:
        dump = control_plane.kubectl("get", "pods,rs,deploy", "-n", namespace, "-o", "yaml")
        raise AssertionError(f"pods not ready:\n{dump.stdout}") from None
    ips = []
    for pod in pods:
        assert pod["spec"]["nodeName"] == "kwok-node-0"
        ip = ipaddress.ip_address(pod["status"]["podIP"])
        assert ip.is_loopback and ip in _pod_network(control_plane), (ip, pod["status"])
        ips.append(str(ip))
    assert len(set(ips)) == 2, ips

    # The point of loopback pod IPs: a process standing in for the pod can bind its IP and
    # is reachable at http://<podIP>:<port> without any network setup.
    server = http.server.HTTPServer((ips[0], 0), _MetricsHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://{ips[0]}:{server.server_port}/metrics"
        with _proc.opener().open(url, timeout=5) as r:
            assert b"testbed_probe" in r.read()
    finally:
        server.shutdown()
        server.server_close()


def _pod_network(cluster) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """The bed's pod CIDR (an external bed reused via MEETSCALE_KUBECONFIG: any loopback)."""
    bed = cluster.control_plane
    return ipaddress.ip_network(bed.pod_cidr if bed is not None else "127.0.0.0/8")


def _pod(name: str) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "ip-churn"}},
        "spec": {
            "containers": [{"name": "c", "image": "registry.invalid/x:1"}],
            "terminationGracePeriodSeconds": 0,
        },
    }


def test_live_pods_never_share_an_ip(control_plane, namespace):
    """300 pod creations through the scheduler, and after each batch of 50 most pods are
    deleted while the next batch is created: kwok hands the freed IPs out again (which is
    what lets a bridge of a deleted pod collide with a new one), but never the IP of a pod
    that still exists."""
    from kubernetes import client

    api = client.CoreV1Api(control_plane.api_client())
    network = _pod_network(control_plane)
    rng = random.Random(17)
    holders: dict[str, set[str]] = {}  # IP -> every pod that had it
    created = 0
    with ThreadPoolExecutor(8) as pool:
        for batch in range(6):
            names = [f"churn-{batch}-{i}" for i in range(50)]
            list(pool.map(lambda n: api.create_namespaced_pod(namespace, _pod(n)), names))
            created += len(names)

            def all_have_ips() -> dict[str, str] | None:
                pods = api.list_namespaced_pod(namespace, label_selector="app=ip-churn").items
                ips = {p.metadata.name: p.status.pod_ip for p in pods}
                return ips if all(ips.values()) else None

            live = wait_until(all_have_ips, timeout=120, interval=0.3, what="pod IPs")
            shared = {
                ip: sorted(n for n, i in live.items() if i == ip)
                for ip in set(live.values())
                if list(live.values()).count(ip) > 1
            }
            assert not shared, f"batch {batch}: live pods share IPs: {shared}"
            for name, ip in live.items():
                assert ipaddress.ip_address(ip) in network, (name, ip, network)
                holders.setdefault(ip, set()).add(name)
            doomed = rng.sample(sorted(live), k=int(len(live) * 0.85))
            list(
                pool.map(
                    lambda n: api.delete_namespaced_pod(n, namespace, grace_period_seconds=0),
                    doomed,
                )
            )
    assert created == 300
    reused = [ip for ip, pods in holders.items() if len(pods) > 1]
    assert reused, "no IP was handed out twice: the test did not exercise kwok's recycling"


def test_two_beds_side_by_side_give_pods_different_ips(control_plane, tmp_path, monkeypatch):
    """A second bed on the same host claims another loopback CIDR, so the first pods of
    both beds (kwok counts each from .0.1) do not both get 127.1.0.1; naming the CIDR the
    first bed holds in MEETSCALE_POD_CIDR is refused before anything starts."""
    first = control_plane.control_plane
    if first is None:
        pytest.skip("reusing an external cluster: its CIDR is claimed by another process")
    monkeypatch.setenv("MEETSCALE_POD_CIDR", first.pod_cidr)
    clash = ControlPlane(tmp_path / "clash", first.bin_dir)
    with pytest.raises(ControlPlaneError, match="held by another test bed") as refused:
        clash.start()
    assert f"MEETSCALE_POD_CIDR={first.pod_cidr!r}" in str(refused.value)
    assert not clash.procs and not (tmp_path / "clash").exists()
    monkeypatch.delenv("MEETSCALE_POD_CIDR")

    second = ControlPlane(tmp_path / "second", first.bin_dir)
    try:
        second.start()
        second.wait_ready(180)
        assert second.pod_cidr != first.pod_cidr
        ips = {}
        for bed in (first, second):
            name = f"side-by-side-{secrets.token_hex(3)}"
            status, body = bed.api("POST", "/api/v1/namespaces/default/pods", _pod(name))
            assert status == 201, body

            def pod_ip(bed=bed, name=name) -> str | None:
                _, pod = bed.api("GET", f"/api/v1/namespaces/default/pods/{name}")
                return pod.get("status", {}).get("podIP") if isinstance(pod, dict) else None

            ips[bed.pod_cidr] = wait_until(pod_ip, timeout=60, interval=0.2, what="pod IP")
            bed.api("DELETE", f"/api/v1/namespaces/default/pods/{name}?gracePeriodSeconds=0")
        for cidr, ip in ips.items():
            assert ipaddress.ip_address(ip) in ipaddress.ip_network(cidr), (ip, cidr)
        assert len(set(ips.values())) == 2, ips
    finally:
        second.stop()


def test_rbac_is_enforced(control_plane):
    denied = control_plane.kubectl("auth", "can-i", "create", "pods", "--as=someone", check=False)
    assert denied.stdout.strip() == "no" and denied.returncode != 0
    also_denied = control_plane.kubectl(
        "auth", "can-i", "list", "secrets", "-A", as_user="someone", check=False
    )
    assert also_denied.stdout.strip() == "no"
    admin = control_plane.kubectl("auth", "can-i", "create", "pods")
    assert admin.stdout.strip() == "yes"
    forbidden = control_plane.kubectl("get", "pods", as_user="someone", check=False)
    assert forbidden.returncode != 0 and "Forbidden" in forbidden.stderr


def test_default_service_account_appears_in_new_namespace(control_plane):
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    api = client.CoreV1Api(control_plane.api_client())
    name = f"t-sa-{os.getpid()}-{int(time.time())}"
    api.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    try:

        def has_default_sa():
            try:
                return api.read_namespaced_service_account("default", name)
            except ApiException as e:
                if e.status == 404:
                    return None
                raise

        sa = wait_until(has_default_sa, timeout=30, interval=0.2, what="ServiceAccount default")
        assert sa.metadata.name == "default"
    finally:
        api.delete_namespace(name)


class _MetricsHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"# TYPE testbed_probe gauge\ntestbed_probe 42\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_prometheus_scrapes_file_sd_targets(prometheus):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _MetricsHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        target = f"127.0.0.1:{server.server_port}"
        prometheus.set_targets(
            [{"targets": [target], "labels": {"pod": "jvb-0", "namespace": "probe"}}]
        )
        assert json.loads(prometheus.targets_file.read_text())[0]["targets"] == [target]
        # Prometheus' discovery manager batches updates every 5 s; scrapes are every 1 s.
        result = prometheus.wait_for(
            'testbed_probe{job="jitsi-videobridge",pod="jvb-0",namespace="probe"}', timeout=30
        )
        assert result[0]["value"][1] == "42"
        assert result[0]["metric"]["instance"] == target
        # ... and straight through the HTTP API, as the operator would query it.
        url = f"{prometheus.url}/api/v1/query?query=testbed_probe"
        with _proc.opener().open(url, timeout=5) as r:
            data = json.load(r)
        assert data["status"] == "success"
        assert data["data"]["result"][0]["value"][1] == "42"
    finally:
        prometheus.set_targets([])
        server.shutdown()
        server.server_close()


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        if _proc.pid_alive(pid) and text in " ".join(_proc.pid_cmdline(pid)):
            found.append(pid)
    return found


def test_stop_leaves_no_process_behind(control_plane, tmp_path):
    """A second, independent control plane: stop() ends all its processes and its workdir."""
    cp = ControlPlane(tmp_path / "cp", control_plane.bin_dir or binaries.find_bin_dir())
    try:
        cp.start()
        cp.wait_ready(180)
        pids = cp.pids
        assert set(pids) == {
            "etcd",
            "kube-apiserver",
            "kube-controller-manager",
            "kube-scheduler",
            "kwok",
        }
        assert all(_proc.pid_alive(p) for p in pids.values())
        assert cp.rss_bytes() > 0
    finally:
        cp.stop()
    assert not [p for p in pids.values() if _proc.pid_alive(p)]
    assert not _processes_mentioning(str(tmp_path / "cp"))
    assert not (tmp_path / "cp").exists()


def test_processes_die_with_their_parent(control_plane, tmp_path):
    """SIGKILL the Python process that started a control plane: its processes follow."""
    workdir = tmp_path / "orphan"
    script = textwrap.dedent(
        f"""
        import json, sys, time
        from testbed.controlplane import ControlPlane
        cp = ControlPlane({str(workdir)!r}, {str(control_plane.bin_dir or "")!r} or None)
        cp.start()
        print(json.dumps(cp.pids), flush=True)
        time.sleep(600)
        """
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        line = parent.stdout.readline()
        assert line, "child control plane failed to start"
        pids = json.loads(line)
        assert all(_proc.pid_alive(p) for p in pids.values())
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        parent.stdout.close()
    wait_until(
        lambda: not [p for p in pids.values() if _proc.pid_alive(p)],
        timeout=10,
        interval=0.1,
        what=f"orphans {pids} to die",
    )
    assert not _processes_mentioning(str(workdir))


def _listening_addresses(pid: int) -> set[str]:
    """host:port of the TCP sockets pid listens on (from /proc/net/tcp{,6})."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            cols = line.split()
            if cols[3] != "0A" or cols[9] not in inodes:  # 0A = LISTEN
                continue
            hexip, hexport = cols[1].split(":")
            raw = bytes.fromhex(hexip)
            # /proc stores the address as native-endian 32-bit words.
            words = [raw[i : i + 4][::-1] for i in range(0, len(raw), 4)]
            ip = ipaddress.ip_address(b"".join(words))
            if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
                ip = ip.ipv4_mapped
            found.add(f"{ip}:{int(hexport, 16)}")
    return found


def test_everything_listens_on_loopback_only(control_plane, prometheus):
    if control_plane.control_plane is None:
        pytest.skip("reusing an external cluster")
    pids = dict(control_plane.control_plane.pids, prometheus=prometheus.pid)
    for name, pid in pids.items():
        addrs = _listening_addresses(pid)
        if name not in ("kwok",):  # kwok serves nothing without --server-address
            assert addrs, f"{name} listens nowhere?"
        for addr in addrs:
            assert ipaddress.ip_address(addr.rsplit(":", 1)[0]).is_loopback, (name, addr)
