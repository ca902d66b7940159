"""The control plane failing under the operator: kube-apiserver stopped for 70 s (longer than
Kopf's watch retries, 54 s in all), and etcd paused (SIGSTOP) for 30 s, while Meetings are
created and a pool scales. On a control plane of
this test's own (the session's shared one is never disrupted).

What a user must see: Kopf's watches reconnect (a Meeting created afterwards is decided
at once), the passes resume (the pool follows the load again), nothing is half-written
(every Meeting's status is what one admission pass over the final state gives), and the
outage shows in the operator's metrics (`meetscale_apiserver_errors_total`,
`meetscale_apiserver_available`) and logs.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from meetscale.admission.statuses import plan_pool
from meetscale.config import Settings
from meetscale.models import BridgePoolSpec
from meetscale.records import MeetingRecord, QuotaRecord
from testbed import binaries
from testbed.bridges import BridgeHarness
from testbed.controlplane import ControlPlane
from tests.conftest_cluster import Cluster
from tests.integration.conftest import ROOT, start_operator
from tests.integration.test_pool_support import GROUP, POOL, VERSION, Kube, metric, pool_doc

pytestmark = pytest.mark.cluster
NS = "agency-a"
TIMEOUT = 90.0


def wait_for(fn: Any, what: str, timeout: float = TIMEOUT) -> Any:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = fn()
        except Exception as exc:  # the apiserver may still be coming back
            last = exc
        if last and not isinstance(last, Exception):
            return last
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; last={last!r}")


@pytest.fixture
def own_control_plane(control_plane) -> Iterator[tuple[ControlPlane, Cluster]]:
    """A control plane of this test only (it is disrupted), next to the session's."""
    cp = ControlPlane(bin_dir=control_plane.bin_dir or binaries.find_bin_dir())
    try:
        cp.start()
        cp.wait_ready(180)
        yield cp, Cluster(cp.kubeconfig, cp.bin_dir, cp)
    finally:
        cp.stop()


def meeting(name: str, hours: float) -> dict[str, Any]:
    start = (datetime.now(UTC) + timedelta(hours=hours)).replace(minute=0, second=0)
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Meeting",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "title": f"Họp {name}",
            "start": start.replace(microsecond=0).isoformat(),
            "durationMinutes": 60,
            "participants": 100,
            "pool": POOL,
        },
    }


def create_until_stored(cluster: Cluster, docs: list[dict[str, Any]]) -> threading.Thread:
    """Create these Meetings from a thread that retries while the control plane is down."""

    def run() -> None:
        for doc in docs:
            deadline = time.monotonic() + 2 * TIMEOUT
            while time.monotonic() < deadline:
                r = cluster.kubectl(
                    "apply", "-f", "-", input=yaml.safe_dump(doc), check=False, timeout=70
                )
                if r.returncode == 0:
                    break
                time.sleep(0.5)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def stored(cluster: Cluster, plural: str, namespace: str | None = None) -> list[dict[str, Any]]:
    scope = ["-n", namespace] if namespace else []
    return json.loads(cluster.kubectl("get", plural, *scope, "-o", "json").stdout)["items"]


def statuses_match_a_pass(cluster: Cluster) -> list[str]:
    """The Meetings whose stored status differs from what one admission pass over what
    is stored now would write (empty: nothing half-written)."""
    [pool] = stored(cluster, "bridgepools", NS)
    meetings = [MeetingRecord.from_body(m) for m in stored(cluster, "meetings", NS)]
    quotas = [QuotaRecord.from_body(q) for q in stored(cluster, "agencyquotas")]
    labels = {
        n["metadata"]["name"]: n["metadata"].get("labels") or {}
        for n in stored(cluster, "namespaces")
    }
    result = plan_pool(
        POOL,
        BridgePoolSpec.model_validate(pool["spec"]),
        meetings,
        quotas,
        labels,
        Settings().pre_join_margin,
        datetime.now(UTC),
    )
    return [f"{c.record.name}: {c.record.status} -> {c.status}" for c in result.changes]


def phases(cluster: Cluster) -> dict[str, str]:
    return {
        m["metadata"]["name"]: (m.get("status") or {}).get("phase", "")
        for m in stored(cluster, "meetings", NS)
    }


def test_apiserver_restart_and_etcd_pause_while_admitting_and_scaling(
    own_control_plane, prometheus, tmp_path: Path
):
    cp, cluster = own_control_plane
    cluster.kubectl("apply", "--server-side", "-f", str(ROOT / "crds"))
    for crd in ("meetings", "agencyquotas", "bridgepools"):
        cluster.kubectl("wait", "--for=condition=Established", f"crd/{crd}.{GROUP}")
    cluster.kubectl("create", "namespace", NS)
    cluster.kubectl("label", "namespace", NS, f"meetscale.io/agency={NS}")
    wait_for(
        lambda: cluster.kubectl("get", "sa", "default", "-n", NS, check=False).returncode == 0,
        "the namespace's ServiceAccount",
    )
    quota = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "AgencyQuota",
        "metadata": {"name": NS},
        "spec": {
            "namespaceSelector": {"matchLabels": {"meetscale.io/agency": NS}},
            "limits": {
                "maxConcurrentParticipants": 300,
                "maxConcurrentMeetings": 10,
                "maxMeetingParticipants": 300,
            },
        },
    }
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(quota))
    op = start_operator(cp.kubeconfig, NS, tmp_path / "operator.log")
    kube = Kube(cluster, NS)
    try:
        with BridgeHarness(
            cp.kubeconfig, NS, [prometheus.targets_file], log_dir=tmp_path / "bridges",
            capacity=100, pool=POOL,
        ) as bridges:  # fmt: skip
            kube.apply(pool_doc(NS, prometheus.url, minBridges=1))
            [first] = wait_for(lambda: list(bridges.bridges()) or None, "the first bridge")
            before = [meeting(f"a{i}", 2) for i in range(4)]  # 3 fit in 300, 1 queued
            for doc in before:
                kube.apply(doc)
            wait_for(lambda: all(phases(cluster).values()), "the first Meetings decided")

            # --- kube-apiserver down for 70 s: Meetings created meanwhile, load rises
            writer = create_until_stored(cluster, [meeting("b0", 4), meeting("b1", 4)])
            bridges.set_conference(first, "hop", 90)  # stress 0.9: a second bridge
            t_restart = time.monotonic()
            down = cp.restart("kube-apiserver", down_seconds=70)
            writer.join(TIMEOUT)
            wait_for(lambda: len(kube.pods()) == 2, "the scale-up after the restart")
            wait_for(lambda: len(bridges.bridges()) == 2, "the second bridge up")
            wait_for(lambda: len(phases(cluster)) == 6 and all(phases(cluster).values()), "b*")

            after_restart = time.monotonic()

            # --- etcd paused 30 s: a Meeting created meanwhile, load moves
            cp.pause("etcd")
            paused_at = time.monotonic()
            writer = create_until_stored(cluster, [meeting("c0", 4), meeting("c1", 4)])
            second = next(p for p in bridges.bridges() if p != first)
            bridges.set_conference(second, "hop-2", 40)
            time.sleep(max(0.0, 30 - (time.monotonic() - paused_at)))
            cp.resume("etcd")
            resumed = time.monotonic()
            writer.join(TIMEOUT)
            wait_for(lambda: len(phases(cluster)) == 8 and all(phases(cluster).values()), "c*")
            wait_for(
                lambda: kube.status().get("observedParticipants") == 130,
                "the pool's passes going on (130 participants seen)",
            )
            # the watches are back: a Meeting created now is decided at once
            t0 = time.monotonic()
            kube.apply(meeting("d0", 6))
            wait_for(lambda: phases(cluster).get("d0") == "Admitted", "d0", timeout=15)
            decided_in = time.monotonic() - t0

            got = phases(cluster)
            assert sorted(got.values()).count("Admitted") == 3 + 2 + 1 + 1, got
            assert [n for n, p in got.items() if p == "Queued"] == ["a3", "c1"], got
            assert statuses_match_a_pass(cluster) == []
            assert metric(op.metrics_url, "meetscale_apiserver_errors_total", {}) > 0
            assert metric(op.metrics_url, "meetscale_apiserver_available", {}) == 1
            logs = op.logs()
            assert "apiserver unavailable (" in logs and "apiserver available again" in logs
            # Kopf gave up on its watch requests during the outage, began again, and the
            # operator went on without a restart
            assert "failed; escalating" in logs and op.proc.poll() is None
            print(json.dumps({
                "apiserver down s": round(down, 1),
                "from the restart to 2 bridges and b* decided s":
                    round(after_restart - t_restart, 1),
                "from etcd resumed to c* decided and the pool's status current s":
                    round(t0 - resumed, 1),
                "d0 decided s": round(decided_in, 2),
            }))  # fmt: skip
    finally:
        cluster.kubectl(
            "delete", "bridgepools", "--all", "-n", NS, "--wait=true", "--timeout=60s",
            check=False, timeout=90,
        )  # fmt: skip
        op.proc.terminate()
        try:
            op.proc.wait(20)
        except subprocess.TimeoutExpired:
            op.kill()
