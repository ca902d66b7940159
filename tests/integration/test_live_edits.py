"""Quota and pool edits while Meetings are admitted, on the test bed (operator process,
kubectl as the IT centre). What each gives is in docs/faults.md:

- a quota lowered below what is admitted: the admitted keep their reservations, the quota's
  condition WithinLimits is False (OverCommitted) naming the peak and the limit, and a new
  Meeting in that window queues;
- maxBridges shrunk under booked load: the admitted Meeting keeps its reservation, the
  pool's BookingsCovered condition says what the bookings need and the new maximum, and a
  new Meeting then is Queued PoolFull;
- the pool deleted: its admitted Meetings are Pending PoolNotFound with a Warning, saying
  they were admitted and that their reservation went with the pool.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from tests.integration.test_faults import (
    GROUP_VERSION,
    apply,
    events_of,
    meeting,
    phase_is,
    pool,
    run_operator,  # noqa: F401 (fixture)
    soon,
    status_of,
    wait_for,
)

pytestmark = pytest.mark.cluster


def quota(ns: str, participants: int) -> dict:
    return {
        "apiVersion": GROUP_VERSION,
        "kind": "AgencyQuota",
        "metadata": {"name": ns},
        "spec": {
            "namespaceSelector": {"matchLabels": {"meetscale.io/agency": ns}},
            "limits": {
                "maxConcurrentParticipants": participants,
                "maxConcurrentMeetings": 10,
                "maxMeetingParticipants": 300,
            },
        },
    }


def condition(cp, kind: str, ns: str, name: str, ctype: str) -> dict:
    out = cp.kubectl("get", kind, name, "-n", ns, "-o", "json").stdout
    conds = (json.loads(out).get("status") or {}).get("conditions") or []
    return next((c for c in conds if c["type"] == ctype), {})


def test_quota_and_pool_edits_under_admitted_meetings(
    control_plane,
    crds,
    namespace,
    run_operator,  # noqa: F811 (the fixture imported above)
):
    cp, ns = control_plane, namespace
    cp.kubectl("label", "namespace", ns, f"meetscale.io/agency={ns}")
    small = {**pool(ns), "spec": {**pool(ns)["spec"], "participantsPerBridge": 100,
                                   "maxBridges": 5, "leadTimeSeconds": 600}}  # fmt: skip
    apply(cp, quota(ns, 1000), small)
    run_operator(MEETSCALE_PRE_JOIN_MARGIN_SECONDS="0")

    # --- the quota lowered below what is admitted
    later = soon(3)
    apply(cp, *(meeting(ns, f"hop-{i}", 150, later) for i in range(3)))
    for i in range(3):
        wait_for(phase_is(cp, ns, f"hop-{i}", "Admitted"), f"hop-{i} admitted")
    apply(cp, quota(ns, 300))
    cond = wait_for(
        lambda: (
            (c := condition(cp, "agencyquota", ns, ns, "WithinLimits")).get("status") == "False"
            and c
        ),
        "the quota over-committed",
    )
    assert cond["reason"] == "OverCommitted", cond
    assert "peak at 450 participants, above maxConcurrentParticipants 300" in cond["message"]
    apply(cp, meeting(ns, "hop-moi", 50, later))
    queued = wait_for(phase_is(cp, ns, "hop-moi", "Queued", "Admitted"), "hop-moi decided")
    assert (queued["phase"], queued["reason"]) == ("Queued", "QuotaExceeded"), queued
    for i in range(3):
        assert status_of(cp, ns, f"hop-{i}")["phase"] == "Admitted"
    apply(cp, quota(ns, 1000))

    # --- maxBridges shrunk under booked load (a 250 within the lead time needs 3 bridges)
    start = (datetime.now(UTC) + timedelta(minutes=5)).replace(microsecond=0).isoformat()
    apply(cp, meeting(ns, "giao-ban", 250, start))
    wait_for(phase_is(cp, ns, "giao-ban", "Admitted"), "giao-ban admitted")
    wait_for(
        lambda: (
            condition(cp, "bridgepool", ns, "default", "BookingsCovered").get("status") == "True"
        ),
        "the pool covering it",
    )
    cp.kubectl("patch", "bridgepool", "default", "-n", ns, "--type=merge",
               "-p", '{"spec": {"maxBridges": 2}}')  # fmt: skip
    cond = wait_for(
        lambda: (
            (c := condition(cp, "bridgepool", ns, "default", "BookingsCovered")).get("status")
            == "False"
            and c
        ),
        "BookingsCovered False",
    )
    assert cond["reason"] == "BookedDemandExceedsMax", cond
    assert "but maxBridges is 2" in cond["message"], cond
    assert status_of(cp, ns, "giao-ban")["phase"] == "Admitted"
    apply(cp, meeting(ns, "hop-them", 50, start))
    full = wait_for(phase_is(cp, ns, "hop-them", "Queued", "Admitted"), "hop-them decided")
    assert (full["phase"], full["reason"]) == ("Queued", "PoolFull"), full

    # --- the pool deleted
    cp.kubectl("delete", "bridgepool", "default", "-n", ns, "--wait=true", "--timeout=60s")
    for name in ("hop-0", "giao-ban"):
        status = wait_for(phase_is(cp, ns, name, "Pending"), f"{name} without its pool")
        assert status["reason"] == "PoolNotFound", status
        assert "Admitted before (" in status["message"], status
        assert "its reservation went with the pool" in status["message"], status
        wait_for(
            lambda n=name: [
                e for e in events_of(cp, ns, n) if e[:2] == ("Warning", "PoolNotFound")
            ],
            f"a PoolNotFound Warning on {name}",
        )
