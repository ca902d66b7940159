"""Prometheus down, and Prometheus answering garbage, on the test bed (operator process, real
Prometheus scraping simulated bridges).

- Down: four bridges seen seconds before the outage, two hosting 20 and 10; a 700-person
  booking then gives what the core gives with those loads (9), not what it gives with the
  bridges taken as empty (7), and events say when the outage starts and ends. The bridges
  run with their debug API off (JVB's `videobridge.rest.debug.enabled = false`): with it
  on, the operator reads their counts from `GET /debug` itself.
- Garbage (a proxy in front of the real Prometheus spoils its answers: testbed/promproxy.py):
  NaN, +Inf, a negative value, a series twice, a 6 MiB body, a 30 s stall, a matrix. Each
  time the pool's condition names the reason, nothing is drained although good data would
  drain two bridges, a pass never takes much longer than the query timeout, and the
  operator's memory stays bounded; good data again and the scale-down goes ahead.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from meetscale.adapt import pool_params
from meetscale.decide.scale import BridgeState, ScaleHistory, decide_scale
from meetscale.models import BridgePoolSpec
from meetscale.records import MeetingRecord
from meetscale.scaling.scaler import live_scale_inputs
from testbed import _proc
from testbed.bridges import BridgeHarness
from testbed.prometheus import Prometheus
from testbed.promproxy import GarblingProxy
from tests.integration.test_pool_prometheus import restart_on_same_port
from tests.integration.test_pool_support import (
    GROUP,
    POOL,
    VERSION,
    metric,
    pool_doc,
    prom_sees,
    wait_for,
)

pytestmark = pytest.mark.cluster
pytest_plugins = ["tests.integration.test_pool_support"]  # fixtures: kube
MARGIN = timedelta(minutes=10)  # the operator's default pre-join margin


@pytest.fixture
def own_prometheus(tmp_path: Path) -> Iterator[Prometheus]:
    """A Prometheus of this test only (it is stopped and restarted)."""
    prom = Prometheus(workdir=tmp_path / "prom", scrape_interval="1s", keep_workdir=True)
    prom.start()
    try:
        yield prom
    finally:
        prom.stop()


@pytest.fixture
def big_agency(control_plane, crds, namespace):
    """The test namespace made an agency whose quota takes a 700-person meeting."""
    control_plane.kubectl("label", "namespace", namespace, f"meetscale.io/agency={namespace}")
    quota = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "AgencyQuota",
        "metadata": {"name": namespace},
        "spec": {
            "namespaceSelector": {"matchLabels": {"meetscale.io/agency": namespace}},
            "limits": {
                "maxConcurrentParticipants": 1000,
                "maxConcurrentMeetings": 10,
                "maxMeetingParticipants": 800,
            },
        },
    }
    control_plane.kubectl("apply", "-f", "-", input=yaml.safe_dump(quota))
    yield namespace
    control_plane.kubectl("delete", "agencyquota", namespace, "--ignore-not-found", "--wait=false")


def meeting_doc(namespace: str, name: str, participants: int, start: datetime) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Meeting",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "title": "Hội nghị trực tuyến toàn tỉnh",
            "start": start.isoformat(),
            "durationMinutes": 60,
            "participants": participants,
            "pool": POOL,
        },
    }


def core_desired(pool: dict[str, Any], meeting: dict[str, Any], loads: list[int]) -> int:
    """What the core gives for this booking over bridges with these loads, metrics down."""
    now = datetime.now(UTC)
    spec = BridgePoolSpec.model_validate(pool["spec"])
    body = {
        **meeting,
        "metadata": {**meeting["metadata"], "uid": "u", "creationTimestamp": now.isoformat()},
        "status": {"phase": "Admitted"},
    }
    bridges = [
        BridgeState(f"b{i}", True, False, now - timedelta(hours=1), endpoints=n, conferences=1)
        for i, n in enumerate(loads)
    ]
    i = live_scale_inputs(
        pool_params(spec, MARGIN), bridges, [MeetingRecord.from_body(body)], now, False
    )
    return decide_scale(
        i.params, i.bridges, i.booked, ScaleHistory(), now, metrics_ok=False
    ).desired


def events(kube, reason: str) -> list[dict[str, Any]]:
    return kube.events(reason)


def test_prometheus_down_keeps_the_last_seen_loads_for_a_700_person_booking(
    control_plane, big_agency, operator, own_prometheus, kube, tmp_path, monkeypatch
):
    prom, ns = own_prometheus, big_agency
    with BridgeHarness(
        control_plane.kubeconfig,
        ns,
        [prom.targets_file],
        log_dir=tmp_path / "bridges",
        capacity=100,
        pool=POOL,
        extra_args=["--no-debug-api"],
    ) as bridges:
        pool = pool_doc(ns, prom.url, minBridges=4, maxBridges=10)
        kube.apply(pool)
        four = sorted(wait_for(lambda: len(bridges.bridges()) == 4 and bridges.bridges()))
        bridges.set_conference(four[0], "hop-a", 20)
        bridges.set_conference(four[1], "hop-b", 10)
        loads = dict(zip(four, (20, 10, 0, 0), strict=True))
        wait_for(lambda: prom_sees(prom, ns, loads), what="every bridge's load scraped")
        wait_for(lambda: kube.status().get("observedParticipants") == 30, what="30 seen")
        time.sleep(2)  # two more passes (sync 1 s) seeing all four

        prom.stop()
        cond = wait_for(
            lambda: (c := kube.conditions()["PrometheusUnavailable"])["status"] == "True" and c,
            timeout=20,
            what="PrometheusUnavailable",
        )
        assert cond["reason"] == "ConnectionError"
        assert f"the loads of {', '.join(four)} are the last seen" in cond["message"]
        [down] = wait_for(lambda: events(kube, "PrometheusUnavailable"), timeout=10)
        assert down["type"] == "Warning" and down["message"].startswith("ConnectionError:")

        start = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=5)
        booking = meeting_doc(ns, "hoi-nghi-toan-tinh", 700, start)
        with_loads = core_desired(pool, booking, [20, 10, 0, 0])
        blind = core_desired(pool, booking, [0, 0, 0, 0])
        # seven empty bridges beside the two busy ones, and a spare while it is to open
        assert (with_loads, blind) == (9 + 1, 7 + 1)
        kube.apply(booking)
        wait_for(
            lambda: (
                control_plane.kubectl(
                    "get",
                    "meeting",
                    "hoi-nghi-toan-tinh",
                    "-n",
                    ns,
                    "-o",
                    "jsonpath={.status.phase}",
                ).stdout
                == "Admitted"
            ),
            what="the booking admitted",
        )
        wait_for(
            lambda: (
                kube.status().get("bookedBridges") == with_loads and kube.replicas() == with_loads
            ),
            timeout=40,
            what=f"{with_loads} bridges for the booking",
        )
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:  # it stays there: not fewer, not more, none drained
            assert kube.replicas() == with_loads and not kube.draining()
            assert kube.status()["bookedBridges"] == with_loads
            time.sleep(0.5)

        restart_on_same_port(prom, monkeypatch)
        [up] = wait_for(lambda: events(kube, "PrometheusAvailable"), timeout=30)
        assert up["type"] == "Normal"
        assert up["message"].startswith("per-bridge metrics are available again (ConnectionError")
        wait_for(
            lambda: (
                (c := kube.conditions()["PrometheusUnavailable"])["status"] == "False"
                and c["reason"] == "PrometheusAvailable"
            ),
            timeout=10,
            what="condition PrometheusAvailable",
        )


GARBAGE = [
    ("nan", "NaNResult"),
    ("inf", "NaNResult"),
    ("negative", "NegativeValue"),
    ("duplicate", "DuplicateSeries"),
    ("huge", "ResponseTooLarge"),
    ("stall", "Timeout"),
    ("matrix", "BadResponse"),
]


def reconcile_seconds(url: str, key: str) -> tuple[float, float]:
    labels = {"pool": key}
    return (
        metric(url, "meetscale_pool_reconcile_seconds_sum", labels),
        metric(url, "meetscale_pool_reconcile_seconds_count", labels),
    )


def test_prometheus_garbage_scales_nothing_down_in_bounded_time_and_memory(
    control_plane, crds, namespace, operator, prometheus, kube, tmp_path
):
    key = f"{namespace}/{POOL}"
    with (
        GarblingProxy(prometheus.url) as proxy,
        BridgeHarness(
            control_plane.kubeconfig,
            namespace,
            [prometheus.targets_file],
            log_dir=tmp_path / "bridges",
            capacity=100,
            pool=POOL,
        ) as bridges,
    ):
        kube.apply(pool_doc(namespace, proxy.url, minBridges=3))
        a, *_ = sorted(wait_for(lambda: len(bridges.bridges()) == 3 and bridges.bridges()))
        bridges.set_conference(a, "hop-a", 10)  # mean stress 0.03: one bridge would do
        wait_for(lambda: kube.status().get("observedParticipants") == 10, what="10 seen")
        pods = set(kube.pods())

        for mode, reason in GARBAGE:
            proxy.mode = mode
            if mode == GARBAGE[0][0]:
                kube.patch_pool({"minBridges": 1})  # from now on good data would drain two
            before = reconcile_seconds(operator.metrics_url, key)
            wait_for(
                lambda: kube.conditions()["PrometheusUnavailable"]["reason"] == reason,  # noqa: B023
                timeout=20,
                what=f"{mode}: condition {reason}",
            )
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline:
                assert set(kube.pods()) == pods and not kube.draining(), f"{mode}: scaled down"
                time.sleep(0.25)
            after = reconcile_seconds(operator.metrics_url, key)
            total, count = after[0] - before[0], after[1] - before[1]
            assert count >= 1, f"{mode}: no pass finished"
            # timeoutSeconds 1 for the whole query, the four queries at once
            assert total / count < 2.5, f"{mode}: a pass took {total / count:.1f}s"
            rss = _proc.rss_bytes(operator.proc.pid)
            assert rss < 300 * 1024 * 1024, f"{mode}: operator RSS {rss / 2**20:.0f} MiB"
            print(f"{mode}: {reason}, {count:.0f} passes of {total / count:.2f}s on average, "
                  f"RSS {rss / 2**20:.0f} MiB")  # fmt: skip

        proxy.mode = "pass"
        wait_for(
            lambda: kube.conditions()["PrometheusUnavailable"]["status"] == "False",
            timeout=20,
            what="good data again",
        )
        wait_for(lambda: len(kube.pods()) == 1, timeout=40, what="scaled down to one")
        assert a in kube.pods()
