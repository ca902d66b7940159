"""One UDP address per bridge: a NodePort Service per bridge, allocated without collisions
from the pool's range before its pod exists, handed to the stock image in its environment
(JVB_PORT, JVB_ADVERTISE_IPS `address#port`), and deleted with the bridge."""

from __future__ import annotations

import pytest

from tests.integration.test_pool_support import (
    pool_doc,
    wait_for,
)

pytestmark = pytest.mark.cluster
pytest_plugins = ["tests.integration.test_pool_support"]  # fixtures: bridges, kube
LO, HI = 30100, 30109


def foreign_service(namespace: str, port: int) -> dict:
    """A Service of someone else holding a NodePort inside the pool's range."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "turn-server", "namespace": namespace},
        "spec": {
            "type": "NodePort",
            "selector": {"app": "turn"},
            "ports": [{"port": 3478, "protocol": "UDP", "nodePort": port}],
        },
    }


def test_each_bridge_gets_its_own_node_port_and_loses_it_with_the_pod(
    control_plane, crds, namespace, operator, prometheus, bridges, kube
):
    kube.apply(foreign_service(namespace, LO))
    kube.apply(
        pool_doc(
            namespace,
            prometheus.url,
            minBridges=3,
            perBridgeService={"enabled": True, "nodePortMin": LO, "nodePortMax": HI},
        )
    )
    wait_for(lambda: len(bridges.bridges()) == 3, what="3 bridges")
    services = wait_for(lambda: len(s := kube.services()) == 3 and s, what="3 Services")
    pods = kube.pods()
    pool_uid = kube.pool()["metadata"]["uid"]
    ports = {}
    for name, svc in services.items():
        [ref] = svc["metadata"]["ownerReferences"]
        assert (ref["kind"], ref["uid"]) == ("BridgePool", pool_uid)
        bridge = svc["metadata"]["labels"]["meetscale.io/bridge"]
        assert bridge == name and bridge in pods
        [port] = svc["spec"]["ports"]
        assert port["protocol"] == "UDP" and port["targetPort"] == port["nodePort"]
        ports[bridge] = port["nodePort"]
        # The Service selects its own pod alone, and the pod advertises that port.
        pod = pods[bridge]
        labels = pod["metadata"]["labels"]
        assert all(labels.get(k) == v for k, v in svc["spec"]["selector"].items())
        others = [p for n, p in pods.items() if n != bridge]
        assert not any(
            all(p["metadata"]["labels"].get(k) == v for k, v in svc["spec"]["selector"].items())
            for p in others
        )
        [jvb] = pod["spec"]["containers"]
        env = {e["name"]: e for e in jvb["env"]}
        assert env["JVB_PORT"]["value"] == str(port["nodePort"])
        assert env["JVB_ADVERTISE_IPS"]["value"] == f"$(MEETSCALE_NODE_IP)#{port['nodePort']}"
        assert env["MEETSCALE_NODE_IP"]["valueFrom"]["fieldRef"]["fieldPath"] == "status.hostIP"
        media = [p for p in jvb["ports"] if p["name"] == "media"]
        assert media == [{"name": "media", "containerPort": port["nodePort"], "protocol": "UDP"}]
    assert len(set(ports.values())) == 3
    assert all(LO < p <= HI for p in ports.values()), ports  # LO belongs to the TURN server

    # The pool shrinks to one bridge: the removed pods' Services go with them.
    kube.patch_pool({"minBridges": 1, "maxBridges": 1})
    wait_for(lambda: len(kube.pods()) == 1, timeout=40, what="1 bridge left")
    [left] = kube.pods()
    remaining = wait_for(
        lambda: len(s := kube.services()) == 1 and s, timeout=60, what="Services collected"
    )
    [svc] = remaining.values()
    assert svc["metadata"]["labels"]["meetscale.io/bridge"] == left
    assert svc["spec"]["ports"][0]["nodePort"] == ports[left]
    assert control_plane.kubectl(
        "get", "service", "turn-server", "-n", namespace, "-o", "jsonpath={.spec.ports[0].nodePort}"
    ).stdout == str(LO)
    # And a new bridge gets a port again (a freed one may be reused).
    kube.patch_pool({"minBridges": 2, "maxBridges": 2})
    services = wait_for(lambda: len(s := kube.services()) == 2 and s, timeout=40, what="2 Services")
    new_ports = sorted(s["spec"]["ports"][0]["nodePort"] for s in services.values())
    assert len(set(new_ports)) == 2 and all(LO < p <= HI for p in new_ports)
