"""The owned Deployment, and minBridges/maxBridges as hard bounds."""

from __future__ import annotations

import time

import pytest

from tests.integration.test_pool_support import (
    DEPLOYMENT,
    POOL,
    pool_doc,
    wait_for,
)

pytestmark = pytest.mark.cluster
pytest_plugins = ["tests.integration.test_pool_support"]  # fixtures: bridges, kube


def test_deployment_is_owned_and_carries_the_last_line_of_defence(
    control_plane, crds, namespace, operator, prometheus, kube
):
    kube.apply(pool_doc(namespace, prometheus.url, minBridges=2, drainTimeoutSeconds=7200))
    dep = wait_for(kube.deployment, what="Deployment")
    pool = kube.pool()
    [owner] = dep["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["uid"]) == (
        "BridgePool",
        POOL,
        pool["metadata"]["uid"],
    )
    assert owner["controller"] is True
    assert dep["metadata"]["name"] == DEPLOYMENT
    assert dep["spec"]["replicas"] == 2
    assert dep["spec"]["selector"]["matchLabels"] == {"meetscale.io/pool": POOL}
    tpl = dep["spec"]["template"]
    assert tpl["metadata"]["labels"]["meetscale.io/pool"] == POOL
    assert tpl["metadata"]["labels"]["app.kubernetes.io/name"] == "jitsi-videobridge"
    # At least the drain timeout: the preStop hook may wait that long for the last participant.
    assert tpl["spec"]["terminationGracePeriodSeconds"] == 7200
    [jvb] = tpl["spec"]["containers"]
    hook = " ".join(jvb["lifecycle"]["preStop"]["exec"]["command"])
    assert "POST" in hook and "http://127.0.0.1:8080/colibri/shutdown" in hook
    assert '"graceful-shutdown": true' in hook

    # A template edit rolls out to the Deployment.
    kube.patch_pool(
        {"template": {**pool["spec"]["template"], "metadata": {"labels": {"tier": "media"}}}}
    )
    wait_for(
        lambda: (
            (kube.deployment() or {})["spec"]["template"]["metadata"]["labels"].get("tier")
            == "media"
        ),
        what="template updated",
    )

    # Deleting the pool deletes what it owns.
    control_plane.kubectl("delete", "bridgepool", POOL, "-n", namespace, "--wait=true")
    wait_for(lambda: kube.deployment() is None, timeout=60, what="Deployment garbage-collected")


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
