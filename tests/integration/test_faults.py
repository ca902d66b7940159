"""Faults a user would notice, end to end on the test bed's apiserver with the operator as a
process (kubectl in, statuses and events out):

- a Meeting stored with an absurd date (before the CRD bounded dates; here: stored under
  the CRD as it was) no longer stops its pool: it is Rejected/InvalidSpec naming the
  field, the others are decided, /healthz stays ok, and fixing its date gets it decided;
- a Meeting naming a pool that does not exist (webhook down) is Pending/PoolNotFound with
  an event naming spec.pool and the pools that exist, and is decided once the pool exists;
- un-cancelling a Meeting whose slot was taken meanwhile decides it again (Queued) and
  says so, instead of leaving it Cancelled.
What the webhook refuses at apply time is in test_bad_input.py.
"""

from __future__ import annotations

import copy
import json
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.conftest import ROOT, OperatorProcess, start_operator

pytestmark = pytest.mark.cluster

GROUP_VERSION = "meetscale.io/v1alpha1"
TIMEOUT = 90.0  # the machine is shared; a decision normally takes well under a second


def wait_for(fn: Callable[[], Any], what: str, timeout: float = TIMEOUT) -> Any:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; last={last!r}")


def apply(cp, *docs: dict) -> None:
    cp.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(docs))


def meeting(ns: str, name: str, participants: int, start: str, **spec: Any) -> dict:
    return {
        "apiVersion": GROUP_VERSION,
        "kind": "Meeting",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "title": f"Họp {name}",
            "start": start,
            "durationMinutes": 60,
            "participants": participants,
            **spec,
        },
    }


def pool(ns: str, name: str = "default") -> dict:
    return {
        "apiVersion": GROUP_VERSION,
        "kind": "BridgePool",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "minBridges": 0,
            "maxBridges": 10,
            "template": {"spec": {"containers": [{"name": "jvb", "image": "jitsi/jvb"}]}},
        },
    }


def soon(hours: float = 2) -> str:
    return (datetime.now(UTC) + timedelta(hours=hours)).replace(microsecond=0).isoformat()


def status_of(cp, ns: str, name: str) -> dict:
    out = cp.kubectl("get", "meeting", name, "-n", ns, "-o", "json").stdout
    return json.loads(out).get("status") or {}


def phase_is(cp, ns: str, name: str, *phases: str) -> Callable[[], dict | None]:
    def check() -> dict | None:
        status = status_of(cp, ns, name)
        return status if status.get("phase") in phases else None

    return check


def events_of(cp, ns: str, name: str) -> list[tuple[str, str, str]]:
    out = cp.kubectl(
        "get", "events", "-n", ns, "--field-selector", f"involvedObject.name={name}", "-o", "json"
    ).stdout
    return [(e["type"], e["reason"], e["message"]) for e in json.loads(out)["items"]]


@pytest.fixture
def agency(control_plane, crds, namespace) -> Iterator[str]:
    """The test namespace as an agency (quota 500 participants) with pool `default`."""
    cp = control_plane
    cp.kubectl("label", "namespace", namespace, f"meetscale.io/agency={namespace}")
    quota = {
        "apiVersion": GROUP_VERSION,
        "kind": "AgencyQuota",
        "metadata": {"name": namespace},
        "spec": {
            "namespaceSelector": {"matchLabels": {"meetscale.io/agency": namespace}},
            "limits": {
                "maxConcurrentParticipants": 500,
                "maxConcurrentMeetings": 10,
                "maxMeetingParticipants": 400,
            },
        },
    }
    apply(cp, quota, pool(namespace))
    yield namespace
    cp.kubectl("delete", "agencyquota", namespace, "--ignore-not-found", "--wait=false")


@pytest.fixture
def run_operator(control_plane, namespace, tmp_path) -> Iterator[Callable[..., OperatorProcess]]:
    """Starts the operator (pools in the test namespace) with extra MEETSCALE_* settings;
    at the end deletes the pools while it runs (Kopf's finalizer) and stops it."""
    started: list[OperatorProcess] = []

    def start(**env: str) -> OperatorProcess:
        op = start_operator(Path(control_plane.kubeconfig), namespace, tmp_path / "op.log", **env)
        started.append(op)
        return op

    yield start
    for op in started:
        control_plane.kubectl(
            "delete", "bridgepools", "--all", "-n", namespace, "--wait=true", "--timeout=60s",
            check=False, timeout=90,
        )  # fmt: skip
        op.proc.terminate()
        try:
            op.proc.wait(30)
        except subprocess.TimeoutExpired:
            op.proc.kill()
            op.proc.wait(10)


def _meeting_crd_without_date_bounds() -> dict:
    crd = yaml.safe_load((ROOT / "crds/meetscale.io_meetings.yaml").read_text())
    old = copy.deepcopy(crd)
    props = old["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    for field in ("start", "end"):
        props["properties"][field].pop("x-kubernetes-validations")
    # Without the bounds, the window rules of the object would fail to evaluate (overflow).
    props["x-kubernetes-validations"] = [
        r for r in props["x-kubernetes-validations"] if "duration('24h')" not in r["rule"]
    ]
    return old


def test_a_stored_meeting_with_an_absurd_date_does_not_stop_its_pool(
    control_plane, agency, run_operator
):
    cp, ns = control_plane, agency
    bad = {
        "year-1": meeting(ns, "year-1", 50, "0001-01-01T00:05:00+00:00"),
        "year-9999": meeting(ns, "year-9999", 50, "9999-12-31T23:00:00+00:00"),
    }
    # A server-side dry run of a Meeting never stored: which CRD is in force.
    probe = yaml.safe_dump(meeting(ns, "probe", 50, "0001-01-01T00:05:00+00:00"))
    try:
        # The Meeting CRD as it was before dates were bounded; no operator (so no webhook).
        cp.kubectl("apply", "--server-side", "--force-conflicts", "-f", "-",
                   input=yaml.safe_dump(_meeting_crd_without_date_bounds()))  # fmt: skip
        wait_for(
            lambda: (
                cp.kubectl(
                    "apply", "--dry-run=server", "-f", "-", input=probe, check=False
                ).returncode
                == 0
            ),
            "the unbounded CRD to be in force",
        )
        apply(cp, *bad.values())
    finally:
        cp.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "crds"))
    wait_for(
        lambda: (
            cp.kubectl("apply", "--dry-run=server", "-f", "-", input=probe, check=False).returncode
            != 0
        ),
        "the bounded CRD to be in force again",
    )
    apply(cp, meeting(ns, "good", 100, soon()))
    op = run_operator()

    good = wait_for(phase_is(cp, ns, "good", "Admitted", "Queued", "Rejected"), "good decided")
    assert good["phase"] == "Admitted", good
    for name, shown in (("year-1", "0001-01-01T00:05:00+00:00"),
                        ("year-9999", "9999-12-31T23:00:00+00:00")):  # fmt: skip
        status = wait_for(phase_is(cp, ns, name, "Rejected"), f"{name} rejected")
        assert status["reason"] == "InvalidSpec", status
        assert f"spec.start {shown} is outside the allowed range" in status["message"]
        assert "2000-01-01T00:00:00Z .. 2100-01-01T00:00:00Z" in status["message"]
        assert any(
            t == "Warning" and r == "InvalidSpec" and shown in m
            for t, r, m in events_of(cp, ns, name)
        ), events_of(cp, ns, name)
    with urllib.request.urlopen(op.health_url, timeout=5) as resp:
        assert resp.status == 200
    assert "date value out of range" not in op.logs()

    # The pool goes on deciding; the stored bad Meeting can still be labelled (the webhook
    # lets an unchanged spec through) and, once its date is fixed, it is decided again.
    apply(cp, meeting(ns, "later", 100, soon(3)))
    assert wait_for(phase_is(cp, ns, "later", "Admitted"), "later admitted")
    cp.kubectl("label", "meeting", "year-1", "-n", ns, "checked=yes")
    cp.kubectl("patch", "meeting", "year-1", "-n", ns, "--type=merge",
               "-p", json.dumps({"spec": {"start": soon(4)}}))  # fmt: skip
    fixed = wait_for(phase_is(cp, ns, "year-1", "Admitted"), "year-1 decided after its fix")
    assert fixed["message"].startswith("spec edited after it was refused as invalid"), fixed


def test_meeting_naming_a_missing_pool_says_so_until_the_pool_exists(
    control_plane, agency, run_operator
):
    cp, ns = control_plane, agency
    run_operator(MEETSCALE_WEBHOOK_ENABLED="false")  # as when the webhook is down
    apply(cp, meeting(ns, "lost", 100, soon(), pool="no-such-pool"))
    status = wait_for(phase_is(cp, ns, "lost", "Pending"), "lost gets a status")
    assert status["reason"] == "PoolNotFound", status
    assert f'spec.pool "no-such-pool" names no BridgePool in namespace {ns}' in status["message"]
    assert "BridgePools there: default" in status["message"]
    assert status["pool"] == "no-such-pool" and status["observedGeneration"] == 1
    wait_for(
        lambda: [e for e in events_of(cp, ns, "lost") if e[:2] == ("Warning", "PoolNotFound")],
        "a PoolNotFound event",
    )
    apply(cp, pool(ns, "no-such-pool"))
    admitted = wait_for(phase_is(cp, ns, "lost", "Admitted"), "lost decided by the new pool")
    assert admitted["pool"] == "no-such-pool", admitted


def test_uncancelled_meeting_whose_slot_was_taken_is_decided_again(
    control_plane, agency, run_operator
):
    cp, ns = control_plane, agency
    run_operator()
    start = soon()
    apply(cp, meeting(ns, "first", 300, start))
    assert wait_for(phase_is(cp, ns, "first", "Admitted"), "first admitted")
    cp.kubectl("patch", "meeting", "first", "-n", ns, "--type=merge",
               "-p", '{"spec":{"cancelled":true}}')  # fmt: skip
    wait_for(phase_is(cp, ns, "first", "Cancelled"), "first cancelled")
    apply(cp, meeting(ns, "second", 300, start))
    assert wait_for(phase_is(cp, ns, "second", "Admitted"), "second takes the slot")

    cp.kubectl("patch", "meeting", "first", "-n", ns, "--type=merge",
               "-p", '{"spec":{"cancelled":false}}')  # fmt: skip
    status = wait_for(phase_is(cp, ns, "first", "Queued", "Admitted"), "first decided again")
    assert (status["phase"], status["reason"]) == ("Queued", "QuotaExceeded"), status
    assert status["message"].startswith("un-cancelled (spec.cancelled is false again)"), status
    assert "booked 300, limit 500" in status["message"]
    wait_for(
        lambda: [e for e in events_of(cp, ns, "first") if "un-cancelled" in e[2]],
        "an event saying it was un-cancelled",
    )
    # Cancelling the one that took the slot lets it in.
    cp.kubectl("patch", "meeting", "second", "-n", ns, "--type=merge",
               "-p", '{"spec":{"cancelled":true}}')  # fmt: skip
    assert wait_for(phase_is(cp, ns, "first", "Admitted"), "first admitted after all")
