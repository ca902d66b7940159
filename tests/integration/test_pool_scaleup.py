"""Scale-up: ahead of a booked meeting, and reactively on load nobody booked.

Test pool: 100 participants per bridge (cap 70 at target stress 0.7), lead time 60 s,
1 s sync, Prometheus scraping every second."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from tests.integration.test_pool_support import (
    POOL,
    metric,
    pool_doc,
    wait_for,
)

pytestmark = pytest.mark.cluster
pytest_plugins = ["tests.integration.test_pool_support"]  # fixtures: bridges, kube
ROOT = Path(__file__).resolve().parents[2]
LEAD = 60
START_IN = 90
# A meeting larger than a bridge may open up to the pre-join margin early, so its bridges
# come from start - margin - lead; a short margin keeps a window with nothing to provision.
MARGIN = 10


@pytest.fixture
def operator_env() -> dict[str, str]:
    return {"MEETSCALE_PRE_JOIN_MARGIN_SECONDS": str(MARGIN)}


def ready_bridges(harness) -> int:
    return len(harness.bridges())


def test_booked_meeting_gets_its_bridges_before_it_starts(
    control_plane, agency, operator, prometheus, bridges, kube
):
    kube.apply(pool_doc(agency, prometheus.url, leadTimeSeconds=LEAD))
    wait_for(lambda: ready_bridges(bridges) == 1, what="the pool's first bridge")

    start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=START_IN)
    meeting = yaml.safe_load((ROOT / "examples/meeting.yaml").read_text())
    meeting["metadata"].update(name="hop-toan-tinh", namespace=agency)
    meeting["spec"].update(participants=300, start=start.isoformat(), durationMinutes=30, pool=POOL)
    kube.apply(meeting)

    # Admitted, counted as booked demand, but not provisioned before the lead time.
    wait_for(
        lambda: (
            kube.status().get("bookedParticipants") == 0
            and control_plane.kubectl(
                "get", "meeting", "hop-toan-tinh", "-n", agency, "-o", "jsonpath={.status.phase}"
            ).stdout
            == "Admitted"
        ),
        what="meeting admitted",
    )
    lead_begins = start - timedelta(seconds=LEAD + MARGIN)
    while datetime.now(UTC) < lead_begins - timedelta(seconds=3):
        assert kube.replicas() == 1, "scaled before the booking entered the lead time"
        time.sleep(1)

    # 300 participants > 100 per bridge: the meeting spans ceil(300/100) = 3 bridges. Until
    # it may open (start - MARGIN) they are held empty, out of Jicofo's selection (drain
    # mode), so that smaller conferences opening first cannot take them.
    wait_for(lambda: ready_bridges(bridges) == 3, timeout=START_IN, what="3 bridges ready")
    ready_at = datetime.now(UTC)
    assert ready_at < start, f"bridges ready {(ready_at - start).total_seconds():.1f}s late"
    opens = start - timedelta(seconds=MARGIN)
    held = wait_for(lambda: len(kube.held()) == 3 and kube.held(), timeout=20, what="3 held")
    assert datetime.now(UTC) < opens, "held only after the meeting could open"
    held_gauge = {"pool": f"{agency}/{POOL}", "state": "Held"}
    wait_for(
        lambda: metric(operator.metrics_url, "meetscale_pool_bridges", held_gauge) == 3,
        timeout=10,
        what="Held gauge at 3",
    )
    wait_for(lambda: kube.status().get("held") == 3, timeout=10, what="status.held at 3")
    wait_for(
        lambda: all(bridges.state(name)["drain"] for name in held),
        timeout=10,
        what="held bridges in drain mode",
    )
    wait_for(lambda: not kube.held(), timeout=START_IN, what="held bridges released")
    released_at = datetime.now(UTC)
    assert released_at >= opens - timedelta(seconds=1), "released before the meeting could open"
    wait_for(
        lambda: not any(bridges.state(name)["drain"] for name in held),
        timeout=10,
        what="released bridges out of drain mode",
    )
    # none of them is removed; once its conference may open the booked term keeps a spare
    # bridge beside them until it has (booked.spare)
    assert held <= set(kube.pods()), "a held bridge was removed"
    wait_for(lambda: kube.status().get("held") == 0, timeout=10, what="status.held back to 0")
    assert kube.events("BridgeHeld") and kube.events("BridgeReleased")
    status = kube.status()
    assert status["bookedParticipants"] == 300
    assert status["bookedBridges"] == 3 + 1
    assert status["desired"] == 3 + 1
    assert status["lastScaleDirection"] == "Up"
    assert status["lastScaleReason"] == "BookedDemand"
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["BookingsCovered"]["status"] == "True"
    events = kube.events("BookedDemand")
    assert events and "scale up" in events[0]["message"]
    # Seconds of margin the booking bought (lead time minus reaction).
    print(f"bridges ready {(start - ready_at).total_seconds():.1f}s before the meeting")


def test_unbooked_load_scales_up_within_a_scrape_and_a_sync_period(
    control_plane, crds, namespace, operator, prometheus, bridges, kube
):
    kube.apply(pool_doc(namespace, prometheus.url, minBridges=2, maxBridges=6))
    up = wait_for(lambda: len(bridges.bridges()) == 2 and bridges.bridges(), what="2 bridges")
    wait_for(
        lambda: kube.conditions().get("ScalingActive", {}).get("status") == "True",
        what="metrics flowing",
    )
    assert kube.replicas() == 2

    # The same 300 participants, this time unannounced, on the running bridges.
    first, second = sorted(up)
    t0 = time.monotonic()
    assert bridges.set_conference(first, "hop-dot-xuat", 150) == 201
    assert bridges.set_conference(second, "hop-dot-xuat-2", 150) == 201
    # mean stress 1.5 vs 0.7: ceil(1.5 / 0.7 * 2) = 5 bridges
    wait_for(lambda: (kube.replicas() or 0) > 2, timeout=30, interval=0.1, what="scale-up")
    reaction = time.monotonic() - t0
    wait_for(lambda: len(bridges.bridges()) == 5, timeout=60, what="5 bridges up")
    ready_after = time.monotonic() - t0
    status = kube.status()
    assert status["desired"] == 5
    assert status["lastScaleDirection"] == "Up"
    assert status["lastScaleReason"] == "LiveLoad"
    print(f"replicas raised {reaction:.2f}s after the load, 5 bridges up after {ready_after:.1f}s")
    # One scrape (1 s) + one sync period (1 s), plus slack for a busy 2-core machine.
    assert reaction < 5.0
