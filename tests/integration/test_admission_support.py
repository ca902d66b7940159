"""Shared pieces of the admission end-to-end tests (no tests here): kubectl helpers, the
agencies and operators fixtures, and the phase recorder (a watch on every Meeting)."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
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
