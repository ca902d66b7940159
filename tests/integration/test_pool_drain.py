"""Scale-down never cuts a live meeting: drain the emptiest bridge, wait until it is empty
(or the drain timeout), then remove exactly that pod; load coming back cancels the drain.

Bridges take 100 participants at stress 1.0; target stress 0.7, tolerance 0.1."""

from __future__ import annotations

import time

import pytest

from tests.integration.test_pool_support import (
    POOL,
    metric,
    pool_doc,
    prom_sees,
    wait_for,
)

pytestmark = pytest.mark.cluster
pytest_plugins = ["tests.integration.test_pool_support"]  # fixtures: bridges, kube
DRAINING = "meetscale.io/draining"  # the label the operator's drain puts on a bridge Pod


def start_pool(kube, bridges, prometheus, namespace, n, **spec):
    """A pool held at n bridges by minBridges until the test lowers it."""
    kube.apply(pool_doc(namespace, prometheus.url, minBridges=n, **spec))
    up = wait_for(lambda: len(bridges.bridges()) == n and bridges.bridges(), what=f"{n} bridges")
    return sorted(up)


def uids(kube) -> dict[str, str]:
    return {name: p["metadata"]["uid"] for name, p in kube.pods().items()}


def test_scale_down_drains_the_emptiest_bridge_and_removes_exactly_it(
    control_plane, crds, namespace, operator, prometheus, bridges, kube
):
    a, b, c = start_pool(kube, bridges, prometheus, namespace, 3)
    load = {a: 50, b: 40, c: 5}
    for pod, n in load.items():
        bridges.set_conference(pod, f"conf-{pod[-5:]}", n)
    wait_for(lambda: prom_sees(prometheus, namespace, load), what="load scraped")
    before = uids(kube)

    # mean stress 0.317 vs 0.7: 2 bridges are enough; c hosts the fewest participants.
    kube.patch_pool({"minBridges": 1})
    wait_for(lambda: kube.draining() == {c}, timeout=30, what="c draining")
    assert kube.pods()[c]["metadata"]["labels"].get(DRAINING) == "true"
    assert DRAINING not in kube.pods()[a]["metadata"]["labels"]
    wait_for(lambda: bridges.state(c)["drain"], timeout=10, what="c in drain mode")
    assert not bridges.state(a)["drain"] and not bridges.state(b)["drain"]
    # A draining bridge takes no new conference.
    assert bridges.set_conference(c, "late-comer", 3) == 409

    # Its 5 participants stay: the pod is kept as long as they are there.
    time.sleep(6)
    assert kube.replicas() == 3
    assert set(kube.pods()) == {a, b, c}
    assert bridges.state(c)["participants"] == 5
    assert kube.status()["draining"] == 1
    assert kube.conditions()["Draining"]["status"] == "True"

    # The meeting ends: c (and only c) goes, the others keep their conferences.
    bridges.set_conference(c, f"conf-{c[-5:]}", 0)
    wait_for(lambda: set(kube.pods()) == {a, b}, timeout=30, what="c removed")
    assert kube.replicas() == 2
    assert {n: u for n, u in uids(kube).items()} == {a: before[a], b: before[b]}
    assert bridges.state(a)["participants"] == 50
    assert bridges.state(b)["participants"] == 40
    removed = kube.events("BridgeRemoved")
    assert removed and c in removed[0]["message"]
    assert kube.events("DrainStarted")
    assert not kube.events("DrainTimeout")
    # No second bridge is drained: 2 are needed (mean stress 0.45 is within bounds).
    time.sleep(4)
    assert set(kube.pods()) == {a, b} and not kube.draining()
    status = kube.status()
    assert status["lastScaleDirection"] == "Down"
    assert status["current"] == 2


def test_live_conference_is_kept_until_the_drain_timeout(
    control_plane, crds, namespace, operator, prometheus, bridges, kube
):
    timeout = 8
    a, c = start_pool(
        kube,
        bridges,
        prometheus,
        namespace,
        2,
        drainTimeoutSeconds=timeout,
        drainTimeoutAction="Remove",
    )
    load = {a: 50, c: 5}
    for pod, n in load.items():
        bridges.set_conference(pod, f"conf-{pod[-5:]}", n)
    wait_for(lambda: prom_sees(prometheus, namespace, load), what="load scraped")
    key = f"{namespace}/{POOL}"
    timeouts_before = metric(
        operator.metrics_url, "meetscale_pool_drain_timeouts_total", {"pool": key}
    )

    kube.patch_pool({"minBridges": 1})
    wait_for(lambda: kube.draining() == {c}, timeout=30, what="c draining")
    drain_seen = time.monotonic()
    # Never removed before the timeout while its meeting goes on.
    while time.monotonic() - drain_seen < timeout - 1.5:
        assert c in kube.pods(), "a bridge with a live conference was removed early"
        assert kube.replicas() == 2
        time.sleep(0.25)
    wait_for(lambda: c not in kube.pods(), timeout=20, interval=0.1, what="c removed")
    took = time.monotonic() - drain_seen
    assert took < timeout + 10
    assert set(kube.pods()) == {a}
    warn = kube.events("DrainTimeout")
    assert warn and warn[0]["type"] == "Warning" and "5 participants" in warn[0]["message"]
    assert (
        metric(operator.metrics_url, "meetscale_pool_drain_timeouts_total", {"pool": key})
        == timeouts_before + 1
    )
    print(f"drained bridge removed {took:.1f}s after its drain began (timeout {timeout}s)")


def test_load_returning_during_a_drain_cancels_it(
    control_plane, crds, namespace, operator, prometheus, bridges, kube
):
    a, b = start_pool(kube, bridges, prometheus, namespace, 2)
    load = {a: 60, b: 5}
    for pod, n in load.items():
        bridges.set_conference(pod, f"conf-{pod[-5:]}", n)
    wait_for(lambda: prom_sees(prometheus, namespace, load), what="load scraped")
    before = uids(kube)

    kube.patch_pool({"minBridges": 1})
    wait_for(lambda: kube.draining() == {b}, timeout=30, what="b draining")
    wait_for(lambda: bridges.state(b)["drain"], timeout=10, what="b in drain mode")

    # a's meeting grows past its bridge: 130 participants, stress 1.3, 2 bridges needed.
    bridges.set_conference(a, f"conf-{a[-5:]}", 130)
    most = 0
    deadline = time.monotonic() + 30
    while kube.draining() and time.monotonic() < deadline:
        most = max(most, kube.replicas() or 0)
        time.sleep(0.1)
    assert not kube.draining(), "drain not cancelled"
    wait_for(lambda: not bridges.state(b)["drain"], timeout=10, what="b out of drain mode")
    # The drained bridge came back instead of a new one.
    for _ in range(12):
        most = max(most, kube.replicas() or 0)
        time.sleep(0.25)
    assert most == 2
    assert uids(kube) == before
    assert bridges.set_conference(b, "new-conference", 10) == 201
    assert DRAINING not in kube.pods()[b]["metadata"]["labels"]
    cancelled = kube.events("DrainCancelled")
    assert cancelled and b in cancelled[0]["message"]
    assert kube.status()["lastScaleDirection"] == "Up"
