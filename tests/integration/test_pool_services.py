"""One UDP address per bridge: a NodePort Service per bridge pod, allocated without
collisions from the pool's range, owned by the pod and garbage-collected with it."""

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
    ports = {}
    for svc in services.values():
        [ref] = svc["metadata"]["ownerReferences"]
        assert ref["kind"] == "Pod" and ref["name"] in pods
        assert ref["uid"] == pods[ref["name"]]["metadata"]["uid"]
        [port] = svc["spec"]["ports"]
        assert port["protocol"] == "UDP" and port["targetPort"] == 10000
        ports[ref["name"]] = port["nodePort"]
        # The Service selects its own pod alone, and the pod knows its advertised port.
        pod = pods[ref["name"]]
        labels = pod["metadata"]["labels"]
        assert all(labels.get(k) == v for k, v in svc["spec"]["selector"].items())
        others = [p for n, p in pods.items() if n != ref["name"]]
        assert not any(
            all(p["metadata"]["labels"].get(k) == v for k, v in svc["spec"]["selector"].items())
            for p in others
        )
        assert pod["metadata"]["annotations"]["meetscale.io/advertised-port"] == str(
            port["nodePort"]
        )
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
    assert svc["metadata"]["ownerReferences"][0]["name"] == left
    assert svc["spec"]["ports"][0]["nodePort"] == ports[left]
    assert control_plane.kubectl(
        "get", "service", "turn-server", "-n", namespace, "-o", "jsonpath={.spec.ports[0].nodePort}"
    ).stdout == str(LO)
    # And a new bridge gets a port again (a freed one may be reused).
    kube.patch_pool({"minBridges": 2, "maxBridges": 2})
    services = wait_for(lambda: len(s := kube.services()) == 2 and s, timeout=40, what="2 Services")
    new_ports = sorted(s["spec"]["ports"][0]["nodePort"] for s in services.values())
    assert len(set(new_ports)) == 2 and all(LO < p <= HI for p in new_ports)
