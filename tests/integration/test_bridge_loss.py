"""A bridge lost while it hosts conferences, on the test bed (operator process, simulated
bridges, real Prometheus):

- its pod deleted (by someone else): the pool creates a bridge in its place, a Warning
  `BridgeLost` names it and what it hosted, and no busy bridge is removed or drained;
- its bridge process dying: the kubelet starts the container again (the test bed's harness
  does what the kubelet does: the pod's restartCount, Ready False until the bridge answers
  again), a Warning `BridgeRestarted` names it and what it hosted, its old load no longer
  counts, and no busy bridge is removed or drained.

Jicofo moves the participants of a bridge that is gone to other bridges; the test does that
for it (`place`: the least-loaded bridge taking conferences).
"""

from __future__ import annotations

import time

import pytest

from tests.integration.test_pool_support import loads, pool_doc, wait_for

pytestmark = pytest.mark.cluster
pytest_plugins = ["tests.integration.test_pool_support"]  # fixtures: bridges, kube


def steady(kube, seconds: float, pods: set[str]) -> None:
    """For ``seconds``: exactly these pods, none draining."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert set(kube.pods()) == pods and not kube.draining(), sorted(kube.pods())
        time.sleep(0.25)


def warning(kube, reason: str, about: str) -> str:
    found = wait_for(
        lambda: [e for e in kube.events(reason) if about in e["message"]],
        timeout=30,
        what=f"{reason} about {about}",
    )
    assert found[0]["type"] == "Warning"
    return str(found[0]["message"])


def test_a_bridge_lost_while_hosting_is_replaced_and_nothing_busy_goes(
    control_plane, operator, bridges, prometheus, kube, namespace
):
    kube.apply(pool_doc(namespace, prometheus.url, minBridges=3))
    a, b, c = sorted(wait_for(lambda: len(bridges.bridges()) == 3 and bridges.bridges()))
    for pod, n in ((a, 50), (b, 40), (c, 30)):
        bridges.set_conference(pod, f"hop-{pod[-6:]}", n)
    wait_for(lambda: kube.status().get("observedParticipants") == 120, what="loads seen")
    time.sleep(2)  # two passes that saw every load

    # --- c's pod deleted
    control_plane.kubectl("delete", "pod", c, "-n", namespace, "--wait=false")
    wait_for(lambda: c not in bridges.bridges(), what="c's bridge gone")
    bridges.place(f"hop-{c[-6:]}", 30)  # Jicofo moves its participants
    message = warning(kube, "BridgeLost", c)
    assert "while hosting 30 participants in 1 conferences" in message, message
    pods = wait_for(
        lambda: len(kube.pods()) == 3 and c not in kube.pods() and set(kube.pods()),
        what="a bridge in c's place",
    )
    assert {a, b} <= pods
    wait_for(lambda: len(bridges.bridges()) == 3, what="the new bridge up")
    steady(kube, 3, pods)

    # --- b's bridge process dies; the kubelet (here: the harness) starts it again
    before = loads(bridges)
    bridges.kill(b)
    message = warning(kube, "BridgeRestarted", b)
    assert "restart 1, exit code 137" in message, message
    assert f"while hosting {before[b]} participants" in message, message
    bridges.place(f"hop-{b[-6:]}", before[b])  # Jicofo moves them off the bridge that died
    wait_for(
        lambda: (
            kube.pods()[b]["status"]["containerStatuses"][0]["restartCount"] == 1
            and any(
                x["type"] == "Ready" and x["status"] == "True"
                for x in kube.pods()[b]["status"]["conditions"]
            )
        ),
        what="b ready again",
    )
    steady(kube, 4, pods)
    after = loads(bridges)
    assert sum(after.values()) == 120, after  # everybody has a bridge
    assert a not in bridges.gone and b not in bridges.gone
