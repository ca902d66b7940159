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

import json
import secrets
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.conftest import OperatorProcess, start_operator

pytestmark = pytest.mark.cluster

GROUP_VERSION = "meetscale.io/v1alpha1"
HOLDING = frozenset({"Admitted", "Running"})
DECIDED = frozenset({"Admitted", "Running", "Queued", "Rejected", "Cancelled", "Finished"})
# The operator holds quota from start minus this margin (MEETSCALE_PRE_JOIN_MARGIN_SECONDS).
PRE_JOIN_MARGIN = timedelta(minutes=10)
DECISION_TIMEOUT = 90.0  # the machine is shared; a pass normally takes well under a second


# ------------------------------------------------------------------------------ helpers


def wait_for(fn: Callable[[], Any], timeout: float = DECISION_TIMEOUT, what: str = "") -> Any:
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


def soon(minutes: float = 9) -> datetime:
    """A start that is in the future but whose quota window (start - 10 min margin) already
    contains now, so the reservation counts in `participantsInUse`."""
    return datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=minutes)


def meeting_doc(
    namespace: str,
    name: str,
    participants: int,
    start: datetime,
    minutes: int = 120,
    **spec: Any,
) -> dict:
    return {
        "apiVersion": GROUP_VERSION,
        "kind": "Meeting",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "title": f"Họp {name}",
            "start": start.isoformat(timespec="seconds"),
            "durationMinutes": minutes,
            "participants": participants,
            **spec,
        },
    }


def pool_doc(namespace: str, max_bridges: int = 40, per_bridge: int = 300) -> dict:
    return {
        "apiVersion": GROUP_VERSION,
        "kind": "BridgePool",
        "metadata": {"name": "default", "namespace": namespace},
        "spec": {
            "participantsPerBridge": per_bridge,
            "minBridges": 1,
            "maxBridges": max_bridges,
            "template": {"spec": {"containers": [{"name": "jvb", "image": "jitsi/jvb"}]}},
        },
    }


def meetings(cp, namespace: str) -> dict[str, dict]:
    """name -> the Meeting object, for every Meeting in the namespace."""
    out = cp.kubectl("get", "meetings", "-n", namespace, "-o", "json").stdout
    return {m["metadata"]["name"]: m for m in json.loads(out)["items"]}


def phases(cp, namespace: str) -> dict[str, str]:
    return {n: (m.get("status") or {}).get("phase", "") for n, m in meetings(cp, namespace).items()}


def quota_status(cp, name: str) -> dict:
    out = cp.kubectl("get", "agencyquota", name, "-o", "json").stdout
    return json.loads(out).get("status") or {}


def all_decided(cp, namespace: str, count: int) -> Callable[[], dict[str, str] | None]:
    def check() -> dict[str, str] | None:
        got = phases(cp, namespace)
        if len(got) == count and all(p in DECIDED for p in got.values()):
            return got
        return None

    return check


# ------------------------------------------------------------------------------ fixtures


@dataclass
class Agencies:
    """Agencies (labelled namespaces + an AgencyQuota each) made by a test; removed after."""

    cp: Any
    quotas: list[str] = field(default_factory=list)
    namespaces: list[str] = field(default_factory=list)

    def add(
        self,
        namespace: str,
        *,
        limit: int,
        create_namespace: bool = False,
        max_meetings: int = 100,
        max_meeting: int = 1000,
        **spec: Any,
    ) -> str:
        """Make `namespace` an agency whose AgencyQuota is named after it."""
        if create_namespace:
            self.cp.kubectl("create", "namespace", namespace)
            self.namespaces.append(namespace)
        self.cp.kubectl(
            "label", "namespace", namespace, f"meetscale.io/agency={namespace}", "--overwrite"
        )
        self.quotas.append(namespace)
        apply(
            self.cp,
            {
                "apiVersion": GROUP_VERSION,
                "kind": "AgencyQuota",
                "metadata": {"name": namespace},
                "spec": {
                    "namespaceSelector": {"matchLabels": {"meetscale.io/agency": namespace}},
                    "limits": {
                        "maxConcurrentParticipants": limit,
                        "maxConcurrentMeetings": max_meetings,
                        "maxMeetingParticipants": max_meeting,
                    },
                    **spec,
                },
            },
        )
        return namespace

    def cleanup(self) -> None:
        for name in self.quotas:
            self.cp.kubectl("delete", "agencyquota", name, "--ignore-not-found", "--wait=false")
        for ns in self.namespaces:
            self.cp.kubectl("delete", "namespace", ns, "--ignore-not-found", "--wait=false")
        if self.namespaces:
            self.cp.kubectl(
                "wait", "--for=delete", *(f"namespace/{n}" for n in self.namespaces),
                "--timeout=90s", check=False, timeout=120,
            )  # fmt: skip


@pytest.fixture
def agencies(control_plane, crds) -> Iterator[Agencies]:
    made = Agencies(control_plane)
    yield made
    made.cleanup()


class Operators:
    """The operator process of one test, which may stop, be killed and start again.

    Teardown deletes the test's BridgePools while an operator runs (they carry Kopf's
    finalizer) and then stops it cleanly, which also removes its webhook configuration."""

    def __init__(self, cp, pool_namespace: str, log: Path) -> None:
        self.cp = cp
        self.pool_namespace = pool_namespace
        self.log = log
        self.current: OperatorProcess | None = None

    @property
    def running(self) -> bool:
        return self.current is not None and self.current.proc.poll() is None

    def start(self) -> OperatorProcess:
        assert not self.running, "operator already running"
        self.current = start_operator(Path(self.cp.kubeconfig), self.pool_namespace, self.log)
        return self.current

    def kill(self) -> None:
        """SIGKILL: no cleanup of any kind."""
        assert self.current is not None
        self.current.kill()

    def logs(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def teardown(self) -> None:
        if not self.running:
            self.start()
        assert self.current is not None
        self.cp.kubectl(
            "delete", "bridgepools", "--all", "-n", self.pool_namespace, "--wait=true",
            "--timeout=60s", timeout=90,
        )  # fmt: skip
        self.current.proc.terminate()
        try:
            self.current.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.current.proc.kill()
            self.current.proc.wait(10)


@pytest.fixture
def operators(control_plane, crds, namespace, tmp_path) -> Iterator[Operators]:
    ops = Operators(control_plane, namespace, tmp_path / "operator.log")
    yield ops
    ops.teardown()


class PhaseRecorder:
    """Every phase a watch sees for each Meeting of some namespaces (consecutive repeats
    collapsed), so a test can tell what happened, not only where it ended."""

    def __init__(self, cp, namespaces: list[str]) -> None:
        from kubernetes import client

        self._api = client.CustomObjectsApi(cp.api_client())
        self._namespaces = namespaces
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self.history: dict[str, list[str]] = {}
        self.errors: list[str] = []

    def __enter__(self) -> PhaseRecorder:
        for ns in self._namespaces:
            t = threading.Thread(target=self._watch, args=(ns,), daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(15)

    def _record(self, obj: dict) -> None:
        key = f"{obj['metadata']['namespace']}/{obj['metadata']['name']}"
        phase = (obj.get("status") or {}).get("phase") or "Pending"
        with self._lock:
            seen = self.history.setdefault(key, [])
            if not seen or seen[-1] != phase:
                seen.append(phase)

    def _watch(self, namespace: str) -> None:
        from kubernetes import watch
        from kubernetes.client.exceptions import ApiException

        args = ("meetscale.io", "v1alpha1", namespace, "meetings")
        rv = ""
        while not self._stop.is_set():
            try:
                if not rv:
                    listed = self._api.list_namespaced_custom_object(*args)
                    for obj in listed["items"]:
                        self._record(obj)
                    rv = listed["metadata"]["resourceVersion"]
                w = watch.Watch()
                for ev in w.stream(
                    self._api.list_namespaced_custom_object,
                    *args,
                    resource_version=rv,
                    timeout_seconds=2,
                ):
                    obj = ev["object"]
                    if ev["type"] == "ERROR":
                        rv = ""
                        break
                    rv = obj["metadata"]["resourceVersion"]
                    if ev["type"] in ("ADDED", "MODIFIED"):
                        self._record(obj)
                    if self._stop.is_set():
                        w.stop()
            except ApiException as e:
                if e.status == 410:  # too old: list again
                    rv = ""
                    continue
                self.errors.append(f"{namespace}: {e.status} {e.reason}")
                time.sleep(0.5)


def ever_admitted(history: dict[str, list[str]]) -> set[str]:
    return {k for k, seen in history.items() if HOLDING & set(seen)}


def unadmitted(history: dict[str, list[str]]) -> dict[str, list[str]]:
    """Meetings that held a reservation and later lost it without being cancelled."""
    out = {}
    for key, seen in history.items():
        first = next((i for i, p in enumerate(seen) if p in HOLDING), None)
        if first is not None and any(p not in HOLDING | {"Finished"} for p in seen[first:]):
            out[key] = seen
    return out


def admitted_event_counts(cp, namespace: str) -> dict[str, int]:
    """How many times each Meeting was announced Admitted (events, counting repeats)."""
    out = cp.kubectl(
        "get", "events", "-n", namespace, "--field-selector", "reason=Admitted", "-o", "json"
    ).stdout
    counts: dict[str, int] = {}
    for ev in json.loads(out)["items"]:
        if ev["involvedObject"].get("kind") != "Meeting":
            continue
        name = ev["involvedObject"]["name"]
        counts[name] = counts.get(name, 0) + int(ev.get("count") or 1)
    return counts


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
