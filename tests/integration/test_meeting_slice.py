"""The first vertical slice: a Meeting applied with kubectl gets a status from the operator,
and `kubectl get meetings` shows it in the printer columns."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.cluster
ROOT = Path(__file__).resolve().parents[2]


def wait_for(fn, timeout=30.0, interval=0.2, what="condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last={last!r}")


def apply(cp, doc: dict) -> None:
    cp.kubectl("apply", "-f", "-", input=yaml.safe_dump(doc))


def meeting_doc(namespace: str, name: str, participants: int, start: datetime) -> dict:
    doc = yaml.safe_load((ROOT / "examples/meeting.yaml").read_text())
    doc["metadata"].update(name=name, namespace=namespace)
    doc["spec"]["participants"] = participants
    doc["spec"]["start"] = start.isoformat(timespec="seconds")
    return doc


def status_of(cp, namespace: str, name: str) -> dict:
    out = cp.kubectl("get", "meeting", name, "-n", namespace, "-o", "json").stdout
    return json.loads(out).get("status") or {}


def test_example_meeting_is_admitted_and_listed(control_plane, agency, operator):
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
    apply(control_plane, meeting_doc(agency, "giao-ban-thu-hai", 120, start))

    status = wait_for(
        lambda: (
            (s := status_of(control_plane, agency, "giao-ban-thu-hai")).get("phase") == "Admitted"
            and s
        ),
        what="phase Admitted",
    )
    assert status["agency"] == agency
    assert status["reservedParticipants"] == 120
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["QuotaReserved"]["status"] == "True"
    assert conditions["QuotaReserved"]["reason"] == "Admitted"

    table = control_plane.kubectl("get", "meetings", "-n", agency).stdout.splitlines()
    assert table[0].split() == [
        "NAME",
        "AGENCY",
        "START",
        "PARTICIPANTS",
        "PRIORITY",
        "PHASE",
        "REASON",
        "JOINED",
        "AGE",
    ]
    # The agency by its display name (the example quota's "Sở Y tế"), its quota in -o wide.
    row = table[1]
    assert row.startswith("giao-ban-thu-hai") and " Sở Y tế " in row
    assert row.split()[5:9] == ["120", "normal", "Admitted", "Admitted"]
    wide = control_plane.kubectl("get", "meetings", "-n", agency, "-o", "wide").stdout
    assert "QUOTA" in wide.splitlines()[0] and f" {agency} " in wide.splitlines()[1]
    # The category lists all three kinds.
    everything = control_plane.kubectl("get", "meetscale", "-n", agency).stdout
    assert "meeting.meetscale.io/giao-ban-thu-hai" in everything
    assert "bridgepool.meetscale.io/default" in everything

    events = control_plane.kubectl(
        "get", "events", "-n", agency, "--field-selector", "involvedObject.name=giao-ban-thu-hai"
    ).stdout
    assert "Admitted" in events


def test_over_quota_meeting_is_queued_with_the_numbers(control_plane, agency, operator):
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=2)
    apply(control_plane, meeting_doc(agency, "first", 300, start))
    apply(control_plane, meeting_doc(agency, "second", 250, start))

    def decided():
        a, b = status_of(control_plane, agency, "first"), status_of(control_plane, agency, "second")
        return a.get("phase") and b.get("phase") and (a, b)

    first, second = wait_for(decided, what="both decided")
    assert first["phase"] == "Admitted"
    assert second["phase"] == "Queued"
    assert second["reason"] == "QuotaExceeded"
    assert "requested 250" in second["message"] and "limit 500" in second["message"]

    # Cancelling the first frees the quota and the queued one is admitted.
    control_plane.kubectl("delete", "meeting", "first", "-n", agency)
    wait_for(
        lambda: status_of(control_plane, agency, "second").get("phase") == "Admitted",
        what="second admitted after the first is deleted",
    )
    quota = json.loads(control_plane.kubectl("get", "agencyquota", agency, "-o", "json").stdout)
    wait_for(
        lambda: (
            json.loads(control_plane.kubectl("get", "agencyquota", agency, "-o", "json").stdout)[
                "status"
            ].get("peakBookedParticipants")
            == 250
        ),
        what="quota status peak booked 250",
    )
    assert quota["spec"]["limits"]["maxConcurrentParticipants"] == 500
