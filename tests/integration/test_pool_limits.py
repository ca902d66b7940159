"""The bridge pods the operator owns, and minBridges/maxBridges as hard bounds."""

from __future__ import annotations

import time

import pytest

from tests.integration.test_pool_support import (
    POOL,
    pool_doc,
    wait_for,
)

pytestmark = pytest.mark.cluster
pytest_plugins = ["tests.integration.test_pool_support"]  # fixtures: bridges, kube


def test_bridge_pods_are_owned_and_carry_the_last_line_of_defence(
    control_plane, crds, namespace, operator, prometheus, bridges, kube
):
    kube.apply(pool_doc(namespace, prometheus.url, minBridges=2, drainTimeoutSeconds=7200))
    pods = wait_for(lambda: len(p := kube.pods()) == 2 and p, what="2 bridge pods")
    pool = kube.pool()
    for name, pod in pods.items():
        [owner] = pod["metadata"]["ownerReferences"]
        assert (owner["kind"], owner["name"], owner["uid"]) == (
            "BridgePool",
            POOL,
            pool["metadata"]["uid"],
        )
        assert owner["controller"] is True
        labels = pod["metadata"]["labels"]
        assert labels["meetscale.io/pool"] == POOL
        assert labels["meetscale.io/bridge"] == name
        assert labels["app.kubernetes.io/name"] == "jitsi-videobridge"
        # At least the drain timeout: the preStop hook may wait that long for the last one.
        assert pod["spec"]["terminationGracePeriodSeconds"] == 7200
        [jvb] = pod["spec"]["containers"]
        hook = " ".join(jvb["lifecycle"]["preStop"]["exec"]["command"])
        assert "POST" in hook and "http://127.0.0.1:8080/colibri/shutdown" in hook
        assert '"graceful-shutdown": true' in hook
    hashes = {p["metadata"]["labels"]["meetscale.io/template-hash"] for p in pods.values()}
    assert len(hashes) == 1

    # A template edit replaces the bridges one at a time (each drained, then removed).
    kube.patch_pool(
        {"template": {**pool["spec"]["template"], "metadata": {"labels": {"tier": "media"}}}}
    )

    def replaced() -> bool:
        now = kube.pods()
        return len(now) == 2 and all(
            p["metadata"]["labels"].get("tier") == "media" for p in now.values()
        )

    most = 0
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and not replaced():
        most = max(most, len(kube.pods()))
        time.sleep(0.2)
    assert replaced(), kube.pods().keys()
    assert most <= 3, f"{most} bridges at once: more than one surge bridge"
    assert set(kube.pods()).isdisjoint(pods)
    assert kube.events("DrainStarted")

    # Deleting the pool deletes what it owns.
    control_plane.kubectl("delete", "bridgepool", POOL, "-n", namespace, "--wait=true")
    wait_for(lambda: not kube.pods(), timeout=60, what="bridge pods garbage-collected")


def test_min_and_max_bridges_are_respected(
    control_plane, crds, namespace, operator, prometheus, bridges, kube
):
    kube.apply(pool_doc(namespace, prometheus.url, minBridges=2, maxBridges=3))
    a, b = sorted(wait_for(lambda: len(bridges.bridges()) == 2 and bridges.bridges()))

    # 300 participants want ceil(3.0 / 0.7 * 2) = 9 bridges: capped at 3.
    bridges.set_conference(a, "hoi-nghi-lon", 200)
    bridges.set_conference(b, "hoi-nghi-lon-2", 100)
    wait_for(lambda: kube.replicas() == 3, timeout=30, what="3 replicas")
    conds = wait_for(
        lambda: (c := kube.conditions())["ScaleLimited"]["reason"] == "AtMaximum" and c,
        what="ScaleLimited AtMaximum",
    )
    assert conds["ScaleLimited"]["status"] == "True"
    assert conds["AtMaximum"]["status"] == "True"
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        assert kube.replicas() == 3
        time.sleep(0.25)
    assert kube.status()["desired"] == 3

    # Everyone leaves: the live term wants 0, the pool keeps its 2 minimum bridges.
    bridges.set_conference(a, "hoi-nghi-lon", 0)
    bridges.set_conference(b, "hoi-nghi-lon-2", 0)
    wait_for(lambda: len(kube.pods()) == 2 and kube.replicas() == 2, timeout=40, what="back to 2")
    deadline = time.monotonic() + 6
    while time.monotonic() < deadline:
        assert len(kube.pods()) == 2 and kube.replicas() == 2
        assert len(kube.draining()) == 0
        time.sleep(0.25)
    conds = kube.conditions()
    assert conds["ScaleLimited"]["status"] == "True"
    assert conds["ScaleLimited"]["reason"] == "AtMinimum"
    assert conds["AtMaximum"]["status"] == "False"
