"""Hostile input on the real apiserver: generated Meeting, AgencyQuota and BridgePool
manifests (valid, near-valid, garbage; tests/integration/fuzz_manifests.py) sent as an
agency clerk (impersonated, with the chart's agency RBAC) and as the IT centre (admin),
while a clerk keeps booking valid Meetings.

Each manifest is stored and then handled by the operator (it gets a status), or refused
with a message naming the field (HTTP 400/422), or refused by RBAC (403: a clerk may not
write quotas or pools); never a server error. Meanwhile the operator never crashes nor
stalls (/healthz, no traceback in its log) and keeps deciding the valid Meetings: the
decisions per second during the fuzz are printed. MEETSCALE_FUZZ_EXAMPLES (default 200)
bounds the run; benchmarks/bench_fuzz.py runs thousands.
"""

from __future__ import annotations

import itertools
import json
import os
import secrets
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.integration import fuzz_manifests as fm
from tests.integration.conftest import start_operator
from tests.integration.test_pool_support import metric
from tests.integration.test_rbac import agency_rbac

pytestmark = pytest.mark.cluster
EXAMPLES = int(os.environ.get("MEETSCALE_FUZZ_EXAMPLES", "200"))
CLERK = "clerk"
RUN_LABEL = "fuzz.meetscale.io/run"
FIELDS = ("spec", "metadata", *fm.MEETING_FIELDS, "limits", "namespaceSelector", "template")
PLURAL = {"Meeting": "meetings", "AgencyQuota": "agencyquotas", "BridgePool": "bridgepools"}


class Api:
    """The custom objects API as one user (impersonated for the clerk)."""

    def __init__(self, cp: Any, user: str | None = None, group: str | None = None) -> None:
        from kubernetes import client

        api = cp.api_client()
        if user:
            api.set_default_header("Impersonate-User", user)
            api.set_default_header("Impersonate-Group", group or "")
        self.custom = client.CustomObjectsApi(api)

    def create(self, body: dict[str, Any]) -> tuple[int, str]:
        from kubernetes.client.exceptions import ApiException

        plural = PLURAL[body["kind"]]
        ns = body["metadata"].get("namespace")
        try:
            if ns:
                self.custom.create_namespaced_custom_object(
                    "meetscale.io", "v1alpha1", ns, plural, body
                )
            else:
                self.custom.create_cluster_custom_object("meetscale.io", "v1alpha1", plural, body)
        except ApiException as exc:
            try:
                message = json.loads(exc.body or "{}").get("message", "")
            except ValueError:
                message = str(exc.body)
            return int(exc.status), str(message)
        return 201, ""

    def list(self, plural: str, ns: str | None, selector: str) -> list[dict[str, Any]]:
        if ns:
            got = self.custom.list_namespaced_custom_object(
                "meetscale.io", "v1alpha1", ns, plural, label_selector=selector
            )
        else:
            got = self.custom.list_cluster_custom_object(
                "meetscale.io", "v1alpha1", plural, label_selector=selector
            )
        return list(got["items"])


class Steady(threading.Thread):
    """A clerk booking a valid Meeting every `every` seconds, all along the fuzz."""

    def __init__(self, api: Api, ns: str, run: str, every: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.api, self.ns, self.run_id, self.every = api, ns, run, every
        self.halt = threading.Event()
        self.created: list[str] = []

    def run(self) -> None:
        for i in itertools.count():
            if self.halt.wait(self.every):
                return
            start = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=3 + i % 48)
            body = {
                "apiVersion": fm.GROUP_VERSION,
                "kind": "Meeting",
                "metadata": {"name": f"steady-{i}", "namespace": self.ns,
                             "labels": {RUN_LABEL: self.run_id}},
                "spec": {"title": "Giao ban", "start": start.isoformat(),
                         "durationMinutes": 30, "participants": 10},
            }  # fmt: skip
            if self.api.create(body)[0] == 201:
                self.created.append(f"steady-{i}")


@pytest.fixture
def hostile_env(control_plane, crds, namespace, tmp_path) -> Iterator[dict[str, Any]]:
    cp, ns = control_plane, namespace
    cp.kubectl("label", "namespace", ns, f"meetscale.io/agency={ns}")
    cp.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(agency_rbac(cp, [ns])))
    run = secrets.token_hex(3)
    admin = Api(cp)
    quota = {
        "apiVersion": fm.GROUP_VERSION, "kind": "AgencyQuota",
        "metadata": {"name": ns, "labels": {RUN_LABEL: run}},
        "spec": {"namespaceSelector": {"matchLabels": {"meetscale.io/agency": ns}},
                 "limits": {"maxConcurrentParticipants": 100000, "maxConcurrentMeetings": 10000,
                            "maxMeetingParticipants": 300}},
    }  # fmt: skip
    pool = {
        "apiVersion": fm.GROUP_VERSION, "kind": "BridgePool",
        "metadata": {"name": "default", "namespace": ns},
        "spec": {"template": fm.TEMPLATE, "minBridges": 0, "maxBridges": 1000},  # room for all
    }  # fmt: skip
    assert admin.create(quota)[0] == 201 and admin.create(pool)[0] == 201
    op = start_operator(Path(cp.kubeconfig), ns, tmp_path / "operator.log")
    try:
        yield {"cp": cp, "ns": ns, "run": run, "op": op, "admin": admin}
    finally:
        cp.kubectl("delete", "bridgepools", "--all", "-n", ns, "--wait=true", "--timeout=60s",
                   check=False, timeout=90)  # fmt: skip
        cp.kubectl("delete", "agencyquotas", "-l", f"{RUN_LABEL}={run}", "--wait=false",
                   check=False)  # fmt: skip
        op.proc.terminate()
        op.proc.wait(20)


def names_a_field(message: str) -> bool:
    return any(f in message for f in FIELDS)


def handled(obj: dict[str, Any]) -> bool:
    """The operator wrote a status on it."""
    status = obj.get("status") or {}
    return bool(status.get("phase") or status.get("conditions") or "observedGeneration" in status)


def test_generated_manifests_are_handled_or_refused_naming_the_field(hostile_env):
    env = hostile_env
    cp, ns, run, op = env["cp"], env["ns"], env["run"], env["op"]
    admin, clerk = env["admin"], Api(cp, CLERK, f"agency:{ns}")
    counter = itertools.count()
    outcomes: Counter[str] = Counter()
    unnamed: list[tuple[str, int, str]] = []
    steady = Steady(clerk, ns, run)
    decisions_before = metric(op.metrics_url, "meetscale_admission_decisions_total", {})

    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(st.data())
    def one(data: st.DataObject) -> None:
        who, what = data.draw(st.sampled_from(
            [("clerk", "Meeting")] * 5 + [("ops", "Meeting"), ("ops", "AgencyQuota"),
             ("ops", "BridgePool"), ("clerk", "AgencyQuota"), ("clerk", "BridgePool")]
        ))  # fmt: skip
        if what == "Meeting":
            kind, body = data.draw(fm.meeting(ns, "default"))
        elif what == "AgencyQuota":
            kind, body = data.draw(fm.quota())
        else:
            kind, body = data.draw(fm.pool(ns))
        body["metadata"].update(name=f"fz-{next(counter)}", labels={RUN_LABEL: run})
        status, message = (clerk if who == "clerk" else admin).create(body)
        outcomes[f"{who} {what} {kind} -> {status}"] += 1
        assert status < 500, f"{status} {message}: {json.dumps(body)[:500]}"
        if status in (400, 422) and not names_a_field(message):
            unnamed.append((what, status, message))
        if status == 403:
            assert who == "clerk" and what != "Meeting", message

    steady.start()
    t0 = time.monotonic()
    one()
    fuzz_seconds = time.monotonic() - t0
    steady.halt.set()
    steady.join(10)
    decisions = metric(op.metrics_url, "meetscale_admission_decisions_total", {})
    rate = (decisions - decisions_before) / fuzz_seconds
    latency = metric(op.metrics_url, "meetscale_admission_latency_seconds_sum", {}) / max(
        1.0, metric(op.metrics_url, "meetscale_admission_latency_seconds_count", {})
    )

    # every stored object is handled: the operator wrote its status
    selector = f"{RUN_LABEL}={run}"
    stored: dict[str, list[dict[str, Any]]] = {}

    def all_handled() -> bool:
        stored["meetings"] = admin.list("meetings", ns, selector)
        stored["quotas"] = admin.list("agencyquotas", None, selector)
        stored["pools"] = admin.list("bridgepools", ns, selector)
        return all(handled(o) for items in stored.values() for o in items)

    deadline = time.monotonic() + 90
    while not all_handled() and time.monotonic() < deadline:
        time.sleep(1)
    waiting = [
        (o["kind"], o["metadata"]["name"], o.get("spec"))
        for items in stored.values()
        for o in items
        if not handled(o)
    ]
    assert not waiting, f"{len(waiting)} stored objects without a status: {waiting[:5]}"
    phases = Counter(
        "{phase} {reason}".format(**{"phase": "", "reason": "", **(o.get("status") or {})})
        for o in stored["meetings"]
    )
    steady_phase = {
        o["metadata"]["name"]: o["status"]["phase"]
        for o in stored["meetings"]
        if o["metadata"]["name"].startswith("steady-")
    }
    assert set(steady_phase) == set(steady.created)
    assert set(steady_phase.values()) == {"Admitted"}, Counter(steady_phase.values())

    assert op.proc.poll() is None, "the operator died"
    with urllib.request.urlopen(op.health_url, timeout=5) as resp:
        assert resp.status == 200
    assert "Traceback" not in op.logs(), op.logs()[-3000:]
    assert not unnamed, unnamed[:5]
    print(json.dumps({
        "examples": EXAMPLES,
        "fuzz seconds": round(fuzz_seconds, 1),
        "decisions per second during the fuzz": round(rate, 1),
        "mean seconds from a Meeting's creation to its decision": round(latency, 2),
        "valid Meetings booked meanwhile": len(steady.created),
        "stored": {k: len(v) for k, v in stored.items()},
        "meeting phases": dict(phases),
        "outcomes": dict(sorted(outcomes.items())),
    }, ensure_ascii=False))  # fmt: skip
