"""Two replicas of the chart's operator, one active: the Lease decides which one admits and
scales. Killing the active one (SIGKILL, no goodbye) hands over within the documented time,
leaseDurationSeconds + retryPeriodSeconds (15 + 2 s by default), and nothing is admitted or
scaled twice; a clean stop (SIGTERM) hands over at the standby's next try.

Both replicas run with the chart's ServiceAccount token and environment (tests/integration/
chart_support.py). A background thread samples both replicas' /readyz all along: never two
leaders at once. The pool's bridges are kwok's fake pods (no simulated videobridge needed):
what matters is who creates and deletes them."""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml

from tests.integration.chart_support import (
    Release,
    Replica,
    install,
    install_crds,
    metric_sum,
    start_replica,
    uninstall,
)
from tests.integration.test_meeting_slice import meeting_doc
from tests.integration.test_pool_support import TEMPLATE, wait_for

pytestmark = pytest.mark.cluster
LEASE, RETRY = 15, 2  # the chart's defaults (values.yaml leaderElection)
STOP_SECONDS = 10  # a clean stop waits for the daemons (cancellation_timeout) before releasing


class LeaderWatch(threading.Thread):
    """Samples which replicas lead, every 0.2 s, until stopped."""

    def __init__(self, replicas: list[Replica]) -> None:
        super().__init__(daemon=True)
        self.replicas = replicas
        self.samples: list[tuple[float, tuple[str, ...]]] = []
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            live = [r for r in list(self.replicas) if r.proc.poll() is None]
            self.samples.append((time.monotonic(), tuple(r.pod for r in live if r.leading())))
            time.sleep(0.2)

    def most_at_once(self) -> int:
        return max((len(leaders) for _, leaders in self.samples), default=0)


@pytest.fixture(scope="module")
def release(control_plane, tmp_path_factory) -> Iterator[tuple[Release, str, str]]:
    cp = control_plane
    install_crds(cp)
    tag = secrets.token_hex(3)
    agency, ns = f"ha-{tag}", f"t-ha-{tag}"
    values = {"agencies": [{
        "name": agency, "namespaces": [ns], "createNamespaces": True,
        "groups": [f"agency:{agency}"],
        "quota": {"limits": {"maxConcurrentParticipants": 2000, "maxConcurrentMeetings": 20,
                             "maxMeetingParticipants": 300}},
    }]}  # fmt: skip
    rel = install(cp, tmp_path_factory.mktemp("ha"), values, agency_namespaces=[ns])
    try:
        yield rel, agency, ns
    finally:
        cp.kubectl("delete", "bridgepools", "--all", "-n", rel.namespace, "--wait=false",
                   check=False)  # fmt: skip
        uninstall(rel)


def _book(cp: Any, agency: str, ns: str, name: str) -> None:
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=2)
    doc = meeting_doc(ns, name, 100, start)
    r = cp.kubectl("apply", "-f", "-", input=yaml.safe_dump(doc), as_user="alice",
                   as_groups=(f"agency:{agency}",), check=False)  # fmt: skip
    assert r.returncode == 0, r.stderr


def _meeting(cp: Any, ns: str, name: str) -> dict[str, Any]:
    return dict(json.loads(cp.kubectl("get", "meeting", name, "-n", ns, "-o", "json").stdout))


def _admitted_events(cp: Any, ns: str, name: str) -> int:
    out = cp.kubectl("get", "events", "-n", ns, "-o", "json",
                     "--field-selector", f"involvedObject.name={name}").stdout  # fmt: skip
    return sum(1 for e in json.loads(out)["items"] if e["reason"] == "Admitted")


def _decisions(replica: Replica) -> float:
    text = replica.metrics()
    return metric_sum(text, "meetscale_admission_decisions_total") + metric_sum(
        text, "meetscale_scale_decisions_total"
    )


def _bridges(cp: Any, ns: str) -> dict[str, str]:
    """The pool's bridge Pods (name -> uid): the operator creates and deletes them itself."""
    out = cp.kubectl("get", "pods", "-n", ns, "-l", "meetscale.io/pool=default", "-o", "json")
    return {p["metadata"]["name"]: p["metadata"]["uid"] for p in json.loads(out.stdout)["items"]}


def _only_leader(replicas: list[Replica]) -> Replica | None:
    leading = [r for r in replicas if r.proc.poll() is None and r.leading()]
    return leading[0] if len(leading) == 1 else None


def test_killed_leader_hands_over_without_double_admission_or_scaling(release, prometheus):
    rel, agency, ns = release
    cp = rel.cp
    kubeconfig = rel.sa_kubeconfig()
    first, second = rel.pod_names()
    replicas = [start_replica(rel, first, kubeconfig), start_replica(rel, second, kubeconfig)]
    watch = LeaderWatch(replicas)
    watch.start()
    try:
        # colibriPort: no process listens there, so nothing of another test bed's simulated
        # bridges (same loopback pod IPs) is ever called.
        spec = {"template": TEMPLATE, "minBridges": 2, "maxBridges": 4, "syncPeriodSeconds": 1,
                "colibriPort": 18080,
                "prometheus": {"url": prometheus.url}}  # fmt: skip
        meta = {"name": "default", "namespace": rel.namespace}
        pool = {"apiVersion": "meetscale.io/v1alpha1", "kind": "BridgePool", "metadata": meta,
                "spec": spec}  # fmt: skip
        cp.kubectl("apply", "-f", "-", input=yaml.safe_dump(pool))
        leader = wait_for(lambda: _only_leader(replicas), timeout=30, what="one leader")
        standby = next(r for r in replicas if r is not leader)
        wait_for(lambda: len(_bridges(cp, rel.namespace)) == 2, what="2 bridges")
        names = [f"hop-{i}" for i in range(3)]
        for name in names:
            _book(cp, agency, ns, name)
        for name in names:
            wait_for(lambda n=name: _meeting(cp, ns, n).get("status", {}).get("phase")
                     == "Admitted", what=f"{name} admitted")  # fmt: skip
        assert _decisions(standby) == 0, "the standby decided something"
        assert _decisions(leader) >= 3
        before = {n: _meeting(cp, ns, n)["metadata"]["resourceVersion"] for n in names}
        bridges = _bridges(cp, rel.namespace)
        assert len(bridges) == 2

        leader.stop(sig="kill")  # no clean-up, no Lease release
        killed_at = time.monotonic()
        wait_for(standby.leading, timeout=LEASE + RETRY + 10, interval=0.1,
                 what="the standby leading")  # fmt: skip
        handover = time.monotonic() - killed_at
        print(f"hand-over after SIGKILL of the leader: {handover:.1f} s")
        assert handover <= LEASE + RETRY + 1, f"hand-over took {handover:.1f} s"
        # Whatever the old leader decided stays decided: not written or announced again.
        _book(cp, agency, ns, "hop-sau")
        wait_for(lambda: _meeting(cp, ns, "hop-sau").get("status", {}).get("phase")
                 == "Admitted", what="a new booking admitted by the new leader")  # fmt: skip
        time.sleep(3)  # a few passes of the new leader
        after = {n: _meeting(cp, ns, n)["metadata"]["resourceVersion"] for n in names}
        assert after == before, "the new leader rewrote decisions of the old one"
        assert {n: _admitted_events(cp, ns, n) for n in names} == dict.fromkeys(names, 1)
        assert _bridges(cp, rel.namespace) == bridges, "bridges created or deleted again"

        # The killed replica comes back (as Kubernetes would restart it): it stands by.
        revived = start_replica(rel, leader.pod, kubeconfig)
        replicas.append(revived)
        time.sleep(2 * RETRY + 1)
        assert not revived.leading() and standby.leading()

        # A clean stop releases the Lease: the other takes over at its next try.
        stopped_at = time.monotonic()  # from the signal: the stop itself is in the time
        standby.stop(sig="term")
        wait_for(revived.leading, timeout=STOP_SECONDS + RETRY + 10, interval=0.1,
                 what="the revived replica leading")  # fmt: skip
        clean = time.monotonic() - stopped_at
        print(f"hand-over after SIGTERM of the leader: {clean:.1f} s")
        assert clean <= STOP_SECONDS + RETRY + 1, f"hand-over took {clean:.1f} s"
        holder = json.loads(cp.kubectl("get", "lease", f"{rel.name}-leader", "-n",
                                       rel.namespace, "-o", "json").stdout)["spec"]  # fmt: skip
        assert holder["holderIdentity"] == revived.pod
        assert holder["leaseTransitions"] >= 2
    finally:
        watch.halt.set()
        watch.join(5)
        cp.kubectl("delete", "bridgepools", "--all", "-n", rel.namespace, "--wait=true",
                   "--timeout=30s", check=False)  # fmt: skip
        for r in replicas:
            r.stop(sig="term")
    assert watch.samples and watch.most_at_once() == 1, "two replicas led at once"
