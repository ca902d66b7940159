"""Prometheus down: nothing is scaled down and the pool says why; Prometheus back: the
pool resumes from where it was, without collapsing onto a partial first scrape."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from testbed import prometheus as testbed_prometheus
from testbed.bridges import BridgeHarness
from testbed.prometheus import Prometheus
from tests.integration.test_pool_support import (
    POOL,
    metric,
    pool_doc,
    wait_for,
)

pytestmark = pytest.mark.cluster
pytest_plugins = ["tests.integration.test_pool_support"]  # fixtures: bridges, kube


@pytest.fixture
def own_prometheus(prometheus, tmp_path: Path) -> Iterator[Prometheus]:
    """A Prometheus of this test only (it is stopped and restarted), keeping its data."""
    prom = Prometheus(workdir=tmp_path / "prom", scrape_interval="1s", keep_workdir=True)
    prom.start()
    try:
        yield prom
    finally:
        prom.stop()


def restart_on_same_port(prom: Prometheus, monkeypatch: pytest.MonkeyPatch) -> None:
    port = prom.port
    with monkeypatch.context() as mp:
        mp.setattr(testbed_prometheus._proc, "free_port", lambda: port)
        prom.start()


def test_prometheus_outage_holds_the_pool_and_recovery_resumes_it(
    control_plane, crds, namespace, operator, own_prometheus, kube, tmp_path, monkeypatch
):
    prom = own_prometheus
    key = f"{namespace}/{POOL}"
    with BridgeHarness(
        control_plane.kubeconfig,
        namespace,
        [prom.targets_file],
        log_dir=tmp_path / "bridges",
        capacity=100,
    ) as bridges:
        kube.apply(pool_doc(namespace, prom.url, minBridges=3))
        a, b, c = sorted(wait_for(lambda: len(bridges.bridges()) == 3 and bridges.bridges()))
        for pod in (a, b, c):  # stress 0.65 each: within tolerance of 0.7, 3 bridges
            bridges.set_conference(pod, f"conf-{pod[-5:]}", 65)
        kube.patch_pool({"minBridges": 1})
        wait_for(
            lambda: (
                kube.status().get("observedStress") == 0.65
                and kube.conditions()["ScalingActive"]["status"] == "True"
            ),
            what="load seen",
        )
        time.sleep(4)
        assert kube.replicas() == 3 and not kube.draining()

        # Prometheus goes away, and so do the participants: no scale-down without metrics.
        errors_before = metric(
            operator.metrics_url, "meetscale_prometheus_errors_total", {"pool": key}
        )
        prom.stop()
        for pod in (a, b, c):
            bridges.set_conference(pod, f"conf-{pod[-5:]}", 0)
        cond = wait_for(
            lambda: (c := kube.conditions()["PrometheusUnavailable"])["status"] == "True" and c,
            timeout=20,
            what="PrometheusUnavailable",
        )
        assert cond["reason"] == "ConnectionError"
        assert "not scaling down" in cond["message"]
        assert kube.conditions()["ScalingActive"]["status"] == "False"
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline:
            assert kube.replicas() == 3 and not kube.draining(), "scaled down blind"
            time.sleep(0.25)
        assert kube.status()["desired"] == 3
        assert (
            metric(operator.metrics_url, "meetscale_prometheus_errors_total", {"pool": key})
            > errors_before
        )

        # Back, with the meetings back: the pool resumes at 3, no collapse.
        for pod in (a, b, c):
            bridges.set_conference(pod, f"conf-{pod[-5:]}", 65)
        restart_on_same_port(prom, monkeypatch)
        wait_for(
            lambda: kube.conditions()["PrometheusUnavailable"]["status"] == "False",
            timeout=30,
            what="PrometheusUnavailable cleared",
        )
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline:
            assert kube.replicas() == 3 and not kube.draining(), "collapsed after the outage"
            time.sleep(0.25)
        assert kube.conditions()["ScalingActive"]["status"] == "True"

        # And it scales again: one bridge empties, 2 suffice (mean stress 0.43).
        bridges.set_conference(c, f"conf-{c[-5:]}", 0)
        wait_for(lambda: set(kube.pods()) == {a, b}, timeout=30, what="c drained and removed")
        assert kube.replicas() == 2
