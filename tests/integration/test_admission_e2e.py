"""Admission end to end against the real apiserver: Meetings applied with kubectl, the
operator as a process, the verdicts read back with kubectl.

What each test pins down (the semantics are those of meetscale.decide.admit.plan):
- a parallel burst against a quota that fits exactly N meetings admits exactly N, also
  when the operator is SIGKILLed in the middle of the burst and restarted, and no
  meeting is ever admitted twice or un-admitted (a watch records every phase seen);
- a contended pool (2 bridges x 300): a provincial meeting goes ahead of normal ones
  created earlier; weighted fair share splits the pool near 2:1; cohort borrowing and
  reclaim;
- cancelling (spec.cancelled) and deleting free the quota for a queued meeting.

Tests that need several meetings to compete in one admission pass create them while
the operator is stopped and then start it: the operator does not run a pass before its
indexes hold every existing object (Kopf blocks handlers until they are populated), so
its first pass sees all of them at once. With the operator running, a burst is split
over several passes and the order of arrival decides, which is not what those tests are
about.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed

import pytest

from tests.integration.test_admission_support import (
    HOLDING,
    PhaseRecorder,
    admitted_event_counts,
    all_decided,
    apply,
    ever_admitted,
    meeting_doc,
    meetings,
    phases,
    pool_doc,
    quota_status,
    soon,
    unadmitted,
    wait_for,
)

pytestmark = pytest.mark.cluster
pytest_plugins = ["tests.integration.test_admission_support"]  # fixtures: agencies, operators

# ------------------------------------------------------------------------------ tests

BURST = 50
FITS = 20  # 20 x 25 participants = the quota's 500
BURST_PARTICIPANTS = 25
BURST_LIMIT = FITS * BURST_PARTICIPANTS


@pytest.mark.parametrize(
    "kill_midway", [False, True], ids=["operator-steady", "operator-sigkilled-midway"]
)
def test_parallel_burst_admits_exactly_what_fits(
    control_plane, namespace, agencies, operators, kill_midway
):
    cp = control_plane
    agencies.add(namespace, limit=BURST_LIMIT)
    apply(cp, pool_doc(namespace))
    operators.start()
    start = soon()
    docs = [meeting_doc(namespace, f"hop-{i:02d}", BURST_PARTICIPANTS, start) for i in range(BURST)]

    with PhaseRecorder(cp, [namespace]) as recorder:
        with ThreadPoolExecutor(max_workers=10) as pool:
            futures = [pool.submit(apply, cp, d) for d in docs]
            for done, fut in enumerate(as_completed(futures), start=1):
                fut.result()  # a refused create fails the test here
                if kill_midway and done == BURST // 2:
                    operators.kill()
        if kill_midway:
            assert not operators.running
            operators.start()

        wait_for(all_decided(cp, namespace, BURST), what=f"all {BURST} decided")
        # Let a few more passes run (resync is 5 s): a late second admission would show.
        wait_for(
            lambda: quota_status(cp, namespace).get("peakBookedParticipants") == BURST_LIMIT,
            what="quota status written",
        )
        time.sleep(7)
        final = phases(cp, namespace)

    admitted = sorted(n for n, p in final.items() if p in HOLDING)
    waiting = sorted(n for n, p in final.items() if p not in HOLDING)
    assert len(admitted) == FITS, (final, operators.logs()[-3000:])
    assert {final[n] for n in waiting} <= {"Queued", "Rejected"}, final

    objs = meetings(cp, namespace)
    for name in admitted:
        assert objs[name]["status"]["reservedParticipants"] == BURST_PARTICIPANTS
    for name in waiting:
        status = objs[name]["status"]
        assert status["reason"] == "QuotaExceeded", status
        assert f"limit {BURST_LIMIT}" in status["message"], status
        assert not status.get("reservedParticipants")
    positions = sorted(objs[n]["status"].get("queuePosition") or 0 for n in waiting)
    assert positions == list(range(1, len(waiting) + 1)), positions

    # Nothing was admitted twice, nor admitted and then taken back.
    assert not recorder.errors, recorder.errors
    assert ever_admitted(recorder.history) == {f"{namespace}/{n}" for n in admitted}
    assert unadmitted(recorder.history) == {}
    events = admitted_event_counts(cp, namespace)
    assert set(events) <= set(admitted), events
    assert all(c == 1 for c in events.values()), events

    status = quota_status(cp, namespace)
    assert status["participantsInUse"] == FITS * BURST_PARTICIPANTS, status
    assert status["peakBookedParticipants"] == FITS * BURST_PARTICIPANTS, status
    assert status["meetingsInUse"] == FITS, status
    assert status["admittedMeetings"] == FITS, status
    assert status["pendingMeetings"] == BURST - FITS, status


def test_provincial_meeting_goes_ahead_of_earlier_normal_ones(
    control_plane, namespace, agencies, operators
):
    cp = control_plane
    other = f"{namespace}-b"
    ubnd = agencies.add(namespace, limit=3000, maxPriorityClass="provincial")
    so = agencies.add(other, limit=3000, create_namespace=True)
    apply(cp, pool_doc(namespace, max_bridges=2))  # ceiling 600 participants
    start = soon(60)
    # Operator stopped: everything below competes in the first pass.
    apply(cp, *(meeting_doc(so, f"thuong-{i}", 200, start) for i in range(3)))
    time.sleep(1.1)  # creationTimestamp has whole seconds: make "earlier" unambiguous
    apply(cp, meeting_doc(ubnd, "khan-cap", 200, start, priorityClass="provincial"))
    operators.start()

    so_phases = wait_for(all_decided(cp, so, 3), what="normal meetings decided")
    ubnd_phases = wait_for(all_decided(cp, ubnd, 1), what="provincial meeting decided")
    created = {
        n: m["metadata"]["creationTimestamp"]
        for ns in (so, ubnd)
        for n, m in meetings(cp, ns).items()
    }
    assert created["khan-cap"] > max(created[f"thuong-{i}"] for i in range(3)), created

    assert ubnd_phases == {"khan-cap": "Admitted"}
    # First come, first served within the tier: thuong-0 and thuong-1 fill the rest.
    assert so_phases == {"thuong-0": "Admitted", "thuong-1": "Admitted", "thuong-2": "Queued"}
    status = meetings(cp, so)["thuong-2"]["status"]
    assert status["reason"] == "PoolFull", status
    assert "pool full" in status["message"] and "limit 600" in status["message"], status


FLOOD = 20  # meetings per agency
FLOOD_PARTICIPANTS = 30
FLOOD_CEILING = 600


def test_weighted_fair_share_splits_a_flooded_pool_two_to_one(
    control_plane, namespace, agencies, operators
):
    """Agencies of weight 2 and 1 each ask for 600 participants in one window of a
    600-participant pool. Fair share gives the next meeting to the agency whose booked
    units / weight is lowest, so after every admission the two shares differ by at most
    one meeting (30 units / weight): A ends within one meeting of 400, B of 200."""
    cp = control_plane
    other = f"{namespace}-b"
    heavy = agencies.add(namespace, limit=3000, weight=2)
    light = agencies.add(other, limit=3000, weight=1, create_namespace=True)
    apply(cp, pool_doc(namespace, max_bridges=2))
    start = soon(60)
    docs = [
        meeting_doc(ns, f"hop-{i:02d}", FLOOD_PARTICIPANTS, start)
        for i in range(FLOOD)
        for ns in (heavy, light)
    ]
    with ThreadPoolExecutor(max_workers=10) as pool:
        for fut in [pool.submit(apply, cp, d) for d in docs]:
            fut.result()
    operators.start()

    got = {ns: wait_for(all_decided(cp, ns, FLOOD), what=f"{ns} decided") for ns in (heavy, light)}
    held = {
        ns: FLOOD_PARTICIPANTS * sum(p in HOLDING for p in ph.values()) for ns, ph in got.items()
    }
    assert held[heavy] + held[light] == FLOOD_CEILING, held
    assert abs(held[heavy] - 2 * FLOOD_CEILING // 3) <= FLOOD_PARTICIPANTS, held
    assert abs(held[light] - FLOOD_CEILING // 3) <= FLOOD_PARTICIPANTS, held
    for ns in (heavy, light):
        for name, obj in meetings(cp, ns).items():
            if obj["status"]["phase"] not in HOLDING:
                assert obj["status"]["reason"] == "PoolFull", (name, obj["status"])


def test_cohort_borrowing_and_reclaim(control_plane, namespace, agencies, operators):
    """A (quota 300) borrows B's idle quota in their cohort; then B books within its own
    quota and is admitted although A borrowed it; A's admitted meetings are untouched."""
    cp = control_plane
    cohort = f"c-{secrets.token_hex(3)}"
    other = f"{namespace}-b"
    a = agencies.add(namespace, limit=300, cohort=cohort)
    b = agencies.add(other, limit=600, cohort=cohort, lendingLimit=400, create_namespace=True)
    apply(cp, pool_doc(namespace))  # 40 x 300: the pool is no constraint here
    operators.start()
    start = soon()

    # 3 x 150 = 450 > 300: the third borrows 150 of the cohort (capacity 300 + 400).
    apply(cp, *(meeting_doc(a, f"a-{i}", 150, start) for i in range(3)))
    got = wait_for(all_decided(cp, a, 3), what="A's meetings decided")
    assert set(got.values()) == {"Admitted"}, got
    msgs = [m["status"]["message"] for m in meetings(cp, a).values()]
    assert sum(f"borrowing 150 in cohort {cohort}" in m for m in msgs) == 1, msgs
    wait_for(
        lambda: quota_status(cp, a).get("participantsInUse") == 450,
        what="A's quota status at 450",
    )
    assert quota_status(cp, a)["borrowedParticipants"] == 150

    # 300 more would need 750 of the cohort's 700.
    apply(cp, meeting_doc(a, "a-big", 300, start))
    big = wait_for(
        lambda: (s := meetings(cp, a).get("a-big", {}).get("status") or {}).get("phase") and s,
        what="a-big decided",
    )
    assert big["phase"] == "Queued" and big["reason"] == "QuotaExceeded", big
    assert f"cohort {cohort}" in big["message"], big
    before = {n: m["status"] for n, m in meetings(cp, a).items() if n != "a-big"}

    # Reclaim: B books its own 600 (2 x 300) though A borrowed 150 of it.
    apply(cp, *(meeting_doc(b, f"b-{i}", 300, start) for i in range(2)))
    got_b = wait_for(all_decided(cp, b, 2), what="B's meetings decided")
    assert got_b == {"b-0": "Admitted", "b-1": "Admitted"}, (got_b, meetings(cp, b))
    wait_for(
        lambda: quota_status(cp, b).get("participantsInUse") == 600,
        what="B's quota status at 600",
    )
    time.sleep(6)  # one more resync: nothing of A's may change
    after = meetings(cp, a)
    assert {n: after[n]["status"] for n in before} == before
    assert after["a-big"]["status"]["phase"] == "Queued"
    assert quota_status(cp, a)["borrowedParticipants"] == 150
    assert quota_status(cp, b)["borrowedParticipants"] == 0


def test_cancel_and_delete_free_the_quota(control_plane, namespace, agencies, operators):
    cp = control_plane
    ns = agencies.add(namespace, limit=500)
    apply(cp, pool_doc(namespace))
    operators.start()
    start = soon()

    def phase_of(name: str) -> Callable[[], str | None]:
        return lambda: (meetings(cp, ns).get(name, {}).get("status") or {}).get("phase") or None

    apply(cp, meeting_doc(ns, "first", 300, start))
    assert wait_for(phase_of("first"), what="first decided") == "Admitted"
    apply(cp, meeting_doc(ns, "second", 250, start))
    assert wait_for(phase_of("second"), what="second decided") == "Queued"

    cp.kubectl(
        "patch", "meeting", "first", "-n", ns, "--type=merge", "-p", '{"spec":{"cancelled":true}}'
    )
    wait_for(lambda: phase_of("first")() == "Cancelled", what="first Cancelled")
    wait_for(lambda: phase_of("second")() == "Admitted", what="second admitted after cancel")
    first = meetings(cp, ns)["first"]["status"]
    assert first["reason"] == "Cancelled" and not first.get("reservedParticipants"), first
    wait_for(
        lambda: quota_status(cp, ns).get("participantsInUse") == 250,
        what="quota in use 250 after the cancel",
    )

    apply(cp, meeting_doc(ns, "third", 300, start))
    assert wait_for(phase_of("third"), what="third decided") == "Queued"
    cp.kubectl("delete", "meeting", "second", "-n", ns)
    wait_for(lambda: phase_of("third")() == "Admitted", what="third admitted after delete")
    wait_for(
        lambda: quota_status(cp, ns).get("participantsInUse") == 300,
        what="quota in use 300 after the delete",
    )
    status = quota_status(cp, ns)
    assert status["peakBookedParticipants"] == 300
    assert status["admittedMeetings"] == 1 and status["pendingMeetings"] == 0, status
    # The cancelled meeting keeps its record and its verdict.
    assert phase_of("first")() == "Cancelled"
