"""The validating webhook answers at `kubectl apply` time and is removed on a clean exit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import yaml

from tests.integration.test_meeting_slice import meeting_doc

pytestmark = pytest.mark.cluster


def test_too_large_meeting_refused_at_apply_time(control_plane, agency, operator):
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
    doc = meeting_doc(agency, "too-big", 400, start)  # quota's maxMeetingParticipants is 300
    deadline = datetime.now(UTC) + timedelta(seconds=30)
    while True:  # the webhook registers shortly after the operator starts
        r = control_plane.kubectl("apply", "-f", "-", input=yaml.safe_dump(doc), check=False)
        if r.returncode or datetime.now(UTC) > deadline:
            break
        control_plane.kubectl("delete", "meeting", "too-big", "-n", agency)
    assert r.returncode != 0
    assert "spec.participants" in r.stderr
    assert "maxMeetingParticipants 300" in r.stderr and "400" in r.stderr
    got = control_plane.kubectl("get", "meeting", "too-big", "-n", agency, check=False)
    assert got.returncode != 0 and "NotFound" in got.stderr


def test_webhook_configuration_removed_on_clean_exit(control_plane, agency, operator):
    def names():
        return control_plane.kubectl(
            "get", "validatingwebhookconfigurations,mutatingwebhookconfigurations", "-o", "name"
        ).stdout.split()

    deadline = datetime.now(UTC) + timedelta(seconds=30)
    while "validatingwebhookconfiguration.admissionregistration.k8s.io/meetscale.io" not in (
        names()
    ):
        assert datetime.now(UTC) < deadline, names()
    control_plane.kubectl("delete", "bridgepools", "--all", "-n", agency)
    operator.proc.terminate()
    operator.proc.wait(30)
    assert not [n for n in names() if n.endswith("/meetscale.io")]
