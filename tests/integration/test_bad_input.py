"""Invalid Meetings, AgencyQuotas and BridgePools are refused at `kubectl apply` time, with a
message that names the field and the limit, and nothing is stored (an edit leaves the
stored object as it was).

The manifests are data, in bad_manifests/ (one per case, with a comment saying what is
wrong); `$name` placeholders are filled from the module's agency. Most cases are refused
by the CRD schema (OpenAPI types, bounds, patterns, CEL rules) or by kubectl's strict
field validation; the ones marked `webhook` depend on the agency's quota, on stored
state (which pools exist) or on the apiserver's own validation of the pod template a
BridgePool becomes (a dry run), so only the operator's validating webhook can refuse
them.

One agency for the whole module: namespace t-bad-<hex> selected by AgencyQuota t-bad-<hex>
(maxConcurrentParticipants 500, maxMeetingParticipants 300, maxMeetingDurationMinutes 120,
maxBookAheadDays 30, maxPriorityClass normal), BridgePool `default`, two admitted
meetings (keep-200 and keep-250, 450 of the 500 in one window), and the operator with its
webhook enabled.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from string import Template

import pytest
import yaml

from testbed._proc import free_port
from tests.integration.conftest import ROOT, start_operator

pytestmark = pytest.mark.cluster

MANIFESTS = Path(__file__).resolve().parent / "bad_manifests"
GROUP_VERSION = "meetscale.io/v1alpha1"


@dataclass(frozen=True)
class Case:
    file: str  # bad_manifests/<file>.yaml
    expect: tuple[str, ...]  # substrings of kubectl's stderr ($placeholders filled in)
    webhook: bool = False  # only the validating webhook can refuse it
    edit: bool = False  # changes an object the module created (must stay unchanged)


C = Case
CASES = [
    # Meeting: types, required fields, bounds (CRD schema)
    C("meeting-participants-string", ("spec.participants", "must be of type integer")),
    C("meeting-participants-float", ("spec.participants", "must be of type integer")),
    C("meeting-participants-zero", ("spec.participants", "greater than or equal to 1")),
    C("meeting-participants-negative", ("spec.participants", "greater than or equal to 1")),
    C("meeting-participants-absurd", ("spec.participants", "less than or equal to 5000")),
    C("meeting-missing-title", ("spec.title", "Required value")),
    C("meeting-missing-start", ("spec.start", "Required value")),
    C("meeting-missing-participants", ("spec.participants", "Required value")),
    C("meeting-start-not-a-date", ("spec.start", "must be of type date-time")),
    C("meeting-start-without-timezone", ("spec.start", "must be of type date-time")),
    C("meeting-duration-zero", ("spec.durationMinutes", "greater than or equal to 1")),
    C("meeting-duration-absurd", ("spec.durationMinutes", "less than or equal to 1440")),
    C("meeting-unknown-priority", ("spec.priorityClass", 'Unsupported value: "urgent"')),
    C("meeting-title-too-long", ("spec.title", "may not be more than 200 bytes")),
    C("meeting-title-1mb", ("spec.title", "may not be more than 200 bytes")),
    C("meeting-title-empty", ("spec.title", "at least 1 chars long")),
    C("meeting-bad-pool-name", ("spec.pool", "should match '^[a-z0-9]")),
    C("meeting-confidential-string", ("spec.confidential", "must be of type boolean")),
    C("meeting-bad-name", ("metadata.name", "RFC 1123")),
    # Meeting: the window (CEL rules of the CRD)
    C("meeting-end-before-start", ("spec.end must be after spec.start",)),
    C("meeting-end-and-duration", ("exactly one of spec.end and spec.durationMinutes",)),
    C("meeting-neither-end-nor-duration", ("exactly one of spec.end and spec.durationMinutes",)),
    C("meeting-end-beyond-24h", ("spec.end - spec.start must be at most 24h (1440 minutes)",)),
    # Meeting: dates whose arithmetic overflows (CEL rules of the CRD)
    C(
        "meeting-start-year-1",
        (
            'spec.start: Invalid value: "0001-01-01T00:05:00+00:00"',
            "spec.start is outside the "
            "allowed range 2000-01-01T00:00:00Z .. 2100-01-01T00:00:00Z (end excluded)",
        ),
    ),
    C(
        "meeting-start-year-9999",
        (
            'spec.start: Invalid value: "9999-12-31T23:00:00+00:00"',
            "spec.start is outside the allowed range 2000-01-01T00:00:00Z .. 2100-01-01T00:00:00Z",
        ),
    ),
    C(
        "meeting-end-year-9999",
        (
            'spec.end: Invalid value: "9999-12-31T23:00:00+00:00"',
            "spec.end is outside the allowed range 2000-01-01T00:00:00Z .. 2100-01-01T00:00:00Z",
        ),
    ),
    # Meeting: not part of the API at all (kubectl strict field validation, discovery)
    C("meeting-spoofed-agency", ('unknown field "spec.agency"',)),
    C("meeting-wrong-apiversion", ('no matches for kind "Meeting"', "meetscale.io/v1beta9")),
    # Meeting: against the agency's quota and the clock (validating webhook)
    C(
        "meeting-larger-than-agency-allows",
        ("spec.participants", "400", "maxMeetingParticipants 300 of quota $quota"),
        webhook=True,
    ),
    C(
        "meeting-longer-than-agency-allows",
        ("spec.durationMinutes", "180", "maxMeetingDurationMinutes 120 of quota $quota"),
        webhook=True,
    ),
    C(
        "meeting-too-far-ahead",
        ("spec.start", "maxBookAheadDays 30 of quota $quota"),
        webhook=True,
    ),
    C("meeting-start-in-past", ("spec.start", "in the past", "at most 5 minutes"), webhook=True),
    C("meeting-already-over", ("spec.start", "is over"), webhook=True),
    C(
        "meeting-priority-above-agency",
        ("spec.priorityClass", "provincial", "maxPriorityClass normal", "of quota $quota"),
        webhook=True,
    ),
    C(
        "meeting-unknown-pool",
        (
            'spec.pool "no-such-pool" names no BridgePool in namespace $namespace',
            "BridgePools there: default",
        ),
        webhook=True,
    ),
    C(
        "meeting-namespace-without-agency",
        ("metadata.namespace", "$unlabelled", "selected by no AgencyQuota"),
        webhook=True,
    ),
    C(
        "edit-meeting-grow-beyond-quota",
        ("spec.participants", "requested 300", "booked 250", "limit 500", "quota $quota"),
        webhook=True,
        edit=True,
    ),
    C("edit-meeting-end-before-start", ("spec.end must be after spec.start",), edit=True),
    # AgencyQuota (CRD schema)
    C("quota-missing-limits", ("spec.limits", "Required value")),
    C("quota-missing-selector", ("spec.namespaceSelector", "Required value")),
    C("quota-limits-string", ("spec.limits", "must be of type object")),
    C(
        "quota-negative-participants",
        ("spec.limits.maxConcurrentParticipants", "greater than or equal to 0"),
    ),
    C(
        "quota-absurd-participants",
        ("spec.limits.maxConcurrentParticipants", "less than or equal to 1000000"),
    ),
    C("quota-max-meeting-zero", ("spec.limits.maxMeetingParticipants", "greater than or equal")),
    C("quota-absurd-book-ahead", ("spec.limits.maxBookAheadDays", "less than or equal to 3650")),
    C("quota-weight-zero", ("spec.weight", "greater than or equal to 1")),
    C("quota-weight-absurd", ("spec.weight", "less than or equal to 1000")),
    C("quota-lending-without-cohort", ("spec.lendingLimit needs spec.cohort",)),
    C("quota-borrowing-without-cohort", ("spec.borrowingLimit needs spec.cohort",)),
    C(
        "quota-unknown-max-priority-class",
        ("spec.maxPriorityClass", 'Unsupported value: "emperor"'),
    ),
    C("quota-bad-cohort-name", ("spec.cohort", "should match")),
    C(
        "quota-bad-selector-operator",
        ("spec.namespaceSelector.matchExpressions[0].operator", 'Unsupported value: "Like"'),
    ),
    C(
        "quota-selector-in-without-values",
        (
            "spec.namespaceSelector.matchExpressions[0].values",
            "operator In needs at least one value (got none): it would select nothing",
        ),
    ),
    C(
        "quota-selector-exists-with-values",
        ("spec.namespaceSelector.matchExpressions[0].values", "operator Exists takes no values"),
    ),
    C(
        "quota-selector-cyrillic-value",
        (
            "spec.namespaceSelector.matchLabels.meetscale.io/agency",
            'Invalid value: "s\u043e-y-te"',
            "should match '^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$$'",
        ),
    ),
    C(
        "quota-selector-bad-key",
        ("spec.namespaceSelector.matchLabels", "every key of matchLabels must be a label key"),
    ),
    # AgencyQuota (validating webhook)
    C(
        "quota-empty-namespace-selector",
        ("spec.namespaceSelector", "must not be empty"),
        webhook=True,
    ),
    C(
        "edit-quota-empty-namespace-selector",
        ("spec.namespaceSelector", "must not be empty"),
        webhook=True,
        edit=True,
    ),
    # BridgePool (CRD schema)
    C("pool-min-above-max", ("spec.minBridges must be <= spec.maxBridges",)),
    C("edit-pool-min-above-max", ("spec.minBridges must be <= spec.maxBridges",), edit=True),
    C("pool-missing-template", ("spec.template is required without spec.jitsi",)),
    C("pool-max-bridges-zero", ("spec.maxBridges", "greater than or equal to 1")),
    C("pool-negative-min-bridges", ("spec.minBridges", "greater than or equal to 0")),
    C("pool-target-stress-above-one", ("spec.targetStress", "less than or equal to 1")),
    C("pool-spare-bridges-absurd", ("spec.spareBridges", "less than or equal to 10")),
    C("pool-pinned-without-jicofo", ("spec.placement.jicofoUrl is required with mode Pinned",)),
    C(
        "pool-participants-per-bridge-absurd",
        ("spec.participantsPerBridge", "less than or equal to 10000"),
    ),
    C("pool-bad-prometheus-url", ("spec.prometheus.url", "should match '^https?://'")),
    C(
        "pool-bad-policy-type",
        ("spec.behavior.scaleUp.policies[0].type", 'Unsupported value: "Hours"'),
    ),
    C("pool-bad-name", ("metadata.name", "RFC 1123")),
    # BridgePool (validating webhook)
    C(
        "pool-node-ports-reversed",
        ("spec.perBridgeService", "nodePortMax must be >= nodePortMin"),
        webhook=True,
    ),
    C(
        "pool-template-containers-string",
        (
            "spec.template.spec.containers: must be a non-empty list of containers",
            "(got 'jvb' (a string))",
        ),
        webhook=True,
    ),
    C(
        "pool-template-image-whitespace",
        (
            "spec.template.spec.containers[0].image: must not have leading or trailing whitespace",
            "(got ' jitsi/jvb:stable' (a string))",
        ),
        webhook=True,
    ),
    C(
        "pool-template-invalid-container",
        (
            "spec.template: the apiserver refuses the pod template",
            'spec.template.spec.containers[0].name: Invalid value: "JVB"',
            "a lowercase RFC 1123 label must consist of",
        ),
        webhook=True,
    ),
    C(
        "edit-pool-template-invalid",
        (
            "spec.template: the apiserver refuses the pod template",
            'spec.template.spec.containers[0].volumeMounts[0].name: Not found: "jvb-config"',
        ),
        webhook=True,
        edit=True,
    ),
]


# ------------------------------------------------------------------------------ module setup

QUOTA_LIMITS = {
    "maxConcurrentParticipants": 500,
    "maxConcurrentMeetings": 10,
    "maxMeetingParticipants": 300,
    "maxMeetingDurationMinutes": 120,
    "maxBookAheadDays": 30,
}
WEBHOOK_WAIT = 90.0


@dataclass
class Env:
    cp: object
    namespace: str
    unlabelled: str
    values: dict[str, str]
    originals: dict[tuple[str, str], dict]  # (kind, name) -> the manifest the module applied
    operator_log: Path

    def render(self, text: str) -> str:
        return Template(text).substitute(self.values)


def _apply(cp, doc: dict) -> None:
    cp.kubectl("apply", "-f", "-", input=yaml.safe_dump(doc))


def _meeting(namespace: str, name: str, participants: int, start: str) -> dict:
    return {
        "apiVersion": GROUP_VERSION,
        "kind": "Meeting",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "title": "Giao ban",
            "start": start,
            "durationMinutes": 60,
            "participants": participants,
        },
    }


def _phase(cp, namespace: str, name: str) -> str:
    out = cp.kubectl("get", "meeting", name, "-n", namespace, "-o", "json").stdout
    return (json.loads(out).get("status") or {}).get("phase", "")


def _wait(fn, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if got := fn():
            return got
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


@pytest.fixture(scope="module")
def env(control_plane, tmp_path_factory) -> Iterator[Env]:
    cp = control_plane
    cp.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "crds"))
    for crd in ("meetings", "agencyquotas", "bridgepools"):
        cp.kubectl("wait", "--for=condition=Established", f"crd/{crd}.meetscale.io")
    ns = f"t-bad-{secrets.token_hex(4)}"
    unlabelled = f"{ns}-none"
    now = datetime.now(UTC).replace(microsecond=0)
    start = now + timedelta(hours=1)

    def iso(t: datetime) -> str:
        return t.isoformat(timespec="seconds")

    values = {
        "namespace": ns,
        "quota": ns,
        "unlabelled": unlabelled,
        "start": iso(start),
        "end": iso(start + timedelta(minutes=60)),
        "end_before_start": iso(start - timedelta(hours=1)),
        "end_in_2_days": iso(start + timedelta(days=2)),
        "start_in_60_days": iso(now + timedelta(days=60)),
        "start_1h_ago": iso(now - timedelta(hours=1)),
        "start_2_days_ago": iso(now - timedelta(days=2)),
        "long_title": "x" * 201,
        "huge_title": "x" * 2**20,
    }
    quota = {
        "apiVersion": GROUP_VERSION,
        "kind": "AgencyQuota",
        "metadata": {"name": ns},
        "spec": {
            "namespaceSelector": {"matchLabels": {"meetscale.io/agency": ns}},
            "limits": QUOTA_LIMITS,
            "maxPriorityClass": "normal",
        },
    }
    pool = yaml.safe_load((ROOT / "examples/pool.yaml").read_text())
    pool["metadata"]["namespace"] = ns
    keep = [_meeting(ns, f"keep-{n}", n, values["start"]) for n in (200, 250)]
    log = tmp_path_factory.mktemp("bad-input") / "operator.log"
    op = None
    try:
        for name in (ns, unlabelled):
            cp.kubectl("create", "namespace", name)
        cp.kubectl("label", "namespace", ns, f"meetscale.io/agency={ns}")
        _apply(cp, quota)
        account = yaml.safe_load((ROOT / "examples/jvb-account.yaml").read_text())
        account["metadata"]["namespace"] = ns
        _apply(cp, account)
        _apply(cp, pool)
        op = start_operator(
            Path(cp.kubeconfig),
            ns,
            log,
            MEETSCALE_WEBHOOK_ENABLED="true",
            MEETSCALE_WEBHOOK_PORT=str(free_port()),
        )
        # The webhook registers itself shortly after start; probe with a server-side dry run.
        probe = yaml.safe_dump(_meeting(ns, "probe", 400, values["start"]))

        def webhook_answers() -> bool:
            r = cp.kubectl("apply", "--dry-run=server", "-f", "-", input=probe, check=False)
            return r.returncode != 0 and "maxMeetingParticipants" in r.stderr

        # If it never answers, the webhook cases fail and say so; the schema cases still run.
        with contextlib.suppress(AssertionError):
            _wait(webhook_answers, WEBHOOK_WAIT, "the validating webhook to answer")
        for doc in keep:
            _apply(cp, doc)
        for doc in keep:
            name = doc["metadata"]["name"]
            _wait(lambda n=name: _phase(cp, ns, n) == "Admitted", 90, f"{name} Admitted")
        originals = {("AgencyQuota", ns): quota, ("BridgePool", "default"): pool}
        originals |= {("Meeting", d["metadata"]["name"]): d for d in keep}
        yield Env(cp, ns, unlabelled, values, originals, log)
    finally:
        if op is not None and op.proc.poll() is None:
            cp.kubectl(
                "delete", "bridgepools", "--all", "-n", ns, "--wait=true", "--timeout=60s",
                check=False, timeout=90,
            )  # fmt: skip
            op.proc.terminate()
            try:
                op.proc.wait(30)
            except subprocess.TimeoutExpired:
                op.proc.kill()
                op.proc.wait(10)
        cp.kubectl("delete", "agencyquota", ns, "--ignore-not-found", "--wait=false")
        for name in (ns, unlabelled):
            cp.kubectl("delete", "namespace", name, "--ignore-not-found", "--wait=false")
        cp.kubectl(
            "wait", "--for=delete", f"namespace/{ns}", f"namespace/{unlabelled}",
            "--timeout=90s", check=False, timeout=120,
        )  # fmt: skip


# ------------------------------------------------------------------------------ the table


def _stored(cp, kind: str, name: str, namespace: str | None):
    args = ["get", f"{kind.lower()}s.meetscale.io", name, "-o", "json"]
    if namespace:
        args += ["-n", namespace]
    return cp.kubectl(*args, check=False)


def test_table_covers_every_manifest():
    files = {p.stem for p in MANIFESTS.glob("*.yaml")}
    listed = [c.file for c in CASES]
    assert len(listed) == len(set(listed))
    assert files == set(listed)
    assert len(CASES) >= 25


@pytest.mark.parametrize(
    "case", CASES, ids=[f"{c.file}{'-webhook' if c.webhook else ''}" for c in CASES]
)
def test_invalid_manifest_is_refused_and_not_stored(env, case):
    cp = env.cp
    text = env.render((MANIFESTS / f"{case.file}.yaml").read_text())
    doc = yaml.safe_load(text)
    kind, meta = doc["kind"], doc["metadata"]
    name, namespace = meta["name"], meta.get("namespace")
    before = None
    if case.edit:
        got = _stored(cp, kind, name, namespace)
        assert got.returncode == 0, got.stderr
        before = json.loads(got.stdout)

    r = cp.kubectl("apply", "-f", "-", input=text, check=False)
    try:
        hint = " (only the validating webhook can refuse this)" if case.webhook else ""
        assert r.returncode != 0, f"accepted{hint}: {r.stdout}"
        for part in case.expect:
            assert env.render(part) in r.stderr, f"{part!r} not in:\n{r.stderr[:3000]}"
        after = _stored(cp, kind, name, namespace)
        if before is None:
            assert after.returncode != 0, f"stored anyway: {after.stdout[:2000]}"
            assert "NotFound" in after.stderr or "not found" in after.stderr, after.stderr
        else:
            assert after.returncode == 0, after.stderr
            stored = json.loads(after.stdout)
            # The operator keeps writing status and its own annotations (resourceVersion moves);
            # the refused apply must not have reached the spec or kubectl's applied record.
            assert stored["metadata"]["generation"] == before["metadata"]["generation"]
            assert stored["spec"] == before["spec"]
            assert _applied(stored) == _applied(before)
    finally:
        _undo(env, case, kind, name, namespace, before)


def _applied(obj: dict) -> str | None:
    annotations = obj["metadata"].get("annotations") or {}
    return annotations.get("kubectl.kubernetes.io/last-applied-configuration")


def _undo(env: Env, case: Case, kind: str, name: str, namespace: str | None, before) -> None:
    """Whatever a wrongly accepted manifest changed, so that one failure stays one."""
    cp = env.cp
    if before is None:
        args = ["delete", f"{kind.lower()}s.meetscale.io", name, "--ignore-not-found"]
        cp.kubectl(*args, *(["-n", namespace] if namespace else []), check=False, timeout=90)
        return
    now = _stored(cp, kind, name, namespace)
    if now.returncode == 0 and json.loads(now.stdout)["spec"] != before["spec"]:
        original = env.originals[(kind, name)]
        cp.kubectl("apply", "-f", "-", input=yaml.safe_dump(original), check=False)
