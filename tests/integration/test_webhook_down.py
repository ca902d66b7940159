"""The webhook unreachable (the operator SIGKILLed: its webhook configuration stays, with
failure policy Ignore): Meetings created meanwhile pass the CRD schema only, and are
validated and decided when the operator is back; one the webhook would have refused is
Rejected with the webhook's own message, and holds nothing.

On the test bed: kube-apiserver calling the operator's webhook, kubectl as the clerk."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from tests.integration.conftest import start_operator
from tests.integration.test_faults import GROUP_VERSION, meeting, phase_is, pool, soon, wait_for

pytestmark = pytest.mark.cluster
DENIED = "denied the request: "


@pytest.fixture
def clerk_agency(control_plane, crds, namespace) -> Iterator[str]:
    """The test namespace as an agency: 500 participants at once, 300 per meeting,
    240 minutes, 60 days ahead, priority up to high; its pool `default`."""
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
                "maxMeetingParticipants": 300,
                "maxMeetingDurationMinutes": 240,
                "maxBookAheadDays": 60,
            },
        },
    }
    cp.kubectl("apply", "-f", "-", input=yaml.safe_dump_all([quota, pool(namespace)]))
    yield namespace
    cp.kubectl("delete", "agencyquota", namespace, "--ignore-not-found", "--wait=false")


def try_apply(cp, doc: dict) -> subprocess.CompletedProcess[str]:
    return cp.kubectl("apply", "-f", "-", input=yaml.safe_dump(doc), check=False)


def refusal(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0, result.stdout
    assert DENIED in result.stderr, result.stderr
    return result.stderr.split(DENIED, 1)[1].strip()


def same_but_now(a: str, b: str) -> bool:
    """Equal but for the `(now ...,` each was judged at."""
    now = re.compile(r"\(now [^,]+,")
    return now.sub("(now _,", a) == now.sub("(now _,", b)


def test_meetings_created_while_the_webhook_is_down_are_judged_in_its_words(
    control_plane, clerk_agency, tmp_path: Path
):
    cp, ns = control_plane, clerk_agency
    past = (datetime.now(UTC) - timedelta(minutes=30)).replace(microsecond=0).isoformat()
    far = (datetime.now(UTC) + timedelta(days=100)).replace(microsecond=0).isoformat()
    bad = {
        "in-the-past": ("StartInPast", meeting(ns, "in-the-past", 50, past)),
        "too-far": ("TooFarAhead", meeting(ns, "too-far", 50, far)),
        "too-large": ("MeetingTooLarge", meeting(ns, "too-large", 350, soon())),
        "too-long": ("MeetingTooLong", meeting(ns, "too-long", 50, soon(), durationMinutes=300)),
        "provincial": (
            "PriorityNotAllowed",
            meeting(ns, "provincial", 50, soon(), priorityClass="provincial"),
        ),
    }
    op = start_operator(Path(cp.kubeconfig), ns, tmp_path / "op-1.log")
    try:
        apply_ok = meeting(ns, "before", 100, soon())
        assert try_apply(cp, apply_ok).returncode == 0
        wait_for(phase_is(cp, ns, "before", "Admitted"), "the webhook's operator deciding")
        said = {name: refusal(try_apply(cp, doc)) for name, (_, doc) in bad.items()}
    finally:
        op.kill()  # no clean-up: the webhook configuration stays, its server is gone

    # Down: the schema still refuses what it can (participants below 1)...
    schema = try_apply(cp, meeting(ns, "zero", 0, soon()))
    assert schema.returncode != 0 and "spec.participants" in schema.stderr, schema.stderr
    assert DENIED not in schema.stderr
    # ...and the rest is stored unchecked
    for name, (_, doc) in bad.items():
        stored = try_apply(cp, doc)
        assert stored.returncode == 0, f"{name}: {stored.stderr}"
    assert try_apply(cp, meeting(ns, "while-down", 150, soon())).returncode == 0

    op = start_operator(Path(cp.kubeconfig), ns, tmp_path / "op-2.log")
    try:
        for name, (reason, _) in bad.items():
            status = wait_for(phase_is(cp, ns, name, "Rejected", "Admitted", "Queued"), name)
            assert (status["phase"], status["reason"]) == ("Rejected", reason), status
            assert same_but_now(status["message"], said[name]), (status["message"], said[name])
        # it holds nothing: 150 + 100 fit in 500 beside the refused 350
        status = wait_for(phase_is(cp, ns, "while-down", "Admitted", "Queued"), "while-down")
        assert status["phase"] == "Admitted", status
        print({name: said[name] for name in bad})
    finally:
        cp.kubectl(
            "delete", "bridgepools", "--all", "-n", ns, "--wait=true", "--timeout=60s",
            check=False, timeout=90,
        )  # fmt: skip
        op.proc.terminate()
        try:
            op.proc.wait(30)
        except subprocess.TimeoutExpired:
            op.kill()
