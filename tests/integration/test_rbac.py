"""What an agency's staff may do, with the Helm chart's own agency RBAC.

The chart (charts/meetscale) is rendered with `helm template` for two agencies, each with
one namespace and one group, and only its agency RBAC objects are applied: the
ClusterRole meetscale-agency-booker, a RoleBinding to it in each agency namespace, and a
per-agency ClusterRole + ClusterRoleBinding to read the agency's own AgencyQuota. Then
alice of agency A (`--as=alice --as-group=agency:<A>`) is checked twice: with
`kubectl auth can-i`, and by really trying, after which the object is read back as admin.
"""

from __future__ import annotations

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

from tests.integration.conftest import ROOT

pytestmark = pytest.mark.cluster

USER = "alice"
RBAC_KINDS = frozenset({"ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"})
AGENCY_PREFIX = "meetscale-agency"


@dataclass
class Env:
    cp: object
    own: str  # agency A: namespace and AgencyQuota name
    other: str  # agency B

    @property
    def group(self) -> str:
        return f"agency:{self.own}"

    def fill(self, text: str) -> str:
        return Template(text).substitute(own=self.own, other=self.other)

    def as_alice(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess:
        return self.cp.kubectl(
            *args, input=input, check=False, as_user=USER, as_groups=(self.group,)
        )

    def can_i(self, *args: str) -> str:
        r = self.as_alice("auth", "can-i", *args)
        answer = r.stdout.strip().splitlines()[0] if r.stdout.strip() else r.stderr.strip()
        assert answer in ("yes", "no"), f"kubectl auth can-i {args}: {r.stdout}{r.stderr}"
        assert (r.returncode == 0) == (answer == "yes")
        return answer


def _helm(cp) -> str:
    if cp.bin_dir is not None and (Path(cp.bin_dir) / "helm").exists():
        return str(Path(cp.bin_dir) / "helm")
    out = subprocess.run(
        [str(ROOT / "testbed/build.sh")], capture_output=True, text=True, check=True
    ).stdout
    return str(Path(out.strip().splitlines()[-1]) / "helm")


def agency_rbac(cp, agencies: list[str]) -> list[dict]:
    """The chart's agency RBAC objects for these agencies (one namespace and group each)."""
    argv = [_helm(cp), "template", "rbac-test", str(ROOT / "charts/meetscale")]
    argv += ["--namespace", "meetscale-system"]
    for i, name in enumerate(agencies):
        argv += [
            "--set", f"agencies[{i}].name={name}",
            "--set", f"agencies[{i}].namespaces[0]={name}",
            "--set", f"agencies[{i}].groups[0]=agency:{name}",
        ]  # fmt: skip
    rendered = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    docs = [d for d in yaml.safe_load_all(rendered) if d]
    return [
        d
        for d in docs
        if d["kind"] in RBAC_KINDS and d["metadata"]["name"].startswith(AGENCY_PREFIX)
    ]


def _meeting(namespace: str, name: str) -> dict:
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
    return {
        "apiVersion": "meetscale.io/v1alpha1",
        "kind": "Meeting",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "title": "Giao ban",
            "start": start.isoformat(),
            "durationMinutes": 60,
            "participants": 20,
        },
    }


def _quota(name: str) -> dict:
    return {
        "apiVersion": "meetscale.io/v1alpha1",
        "kind": "AgencyQuota",
        "metadata": {"name": name},
        "spec": {
            "namespaceSelector": {"matchLabels": {"meetscale.io/agency": name}},
            "limits": {
                "maxConcurrentParticipants": 500,
                "maxConcurrentMeetings": 10,
                "maxMeetingParticipants": 300,
            },
        },
    }


@pytest.fixture(scope="module")
def env(control_plane) -> Iterator[Env]:
    cp = control_plane
    cp.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "crds"))
    for crd in ("meetings", "agencyquotas", "bridgepools"):
        cp.kubectl("wait", "--for=condition=Established", f"crd/{crd}.meetscale.io")
    own = f"t-rbac-{secrets.token_hex(4)}"
    other = f"{own}-b"
    rbac = agency_rbac(cp, [own, other])
    kinds = sorted((d["kind"], d["metadata"]["name"]) for d in rbac)
    # The chart's contract: the shared booker role, one quota reader (+ binding) and one
    # namespace RoleBinding per agency.
    assert kinds == sorted(
        [("ClusterRole", "meetscale-agency-booker")]
        + [(k, f"meetscale-agency-{a}-quota-reader") for a in (own, other)
           for k in ("ClusterRole", "ClusterRoleBinding")]
        + [("RoleBinding", "meetscale-agency-booker")] * 2
    ), kinds  # fmt: skip
    booker_existed = (
        cp.kubectl("get", "clusterrole", "meetscale-agency-booker", check=False).returncode == 0
    )
    mine = [
        d
        for d in rbac
        if not (booker_existed and d["kind"] == "ClusterRole" and "booker" in d["metadata"]["name"])
    ]
    e = Env(cp, own, other)
    try:
        for ns in (own, other):
            cp.kubectl("create", "namespace", ns)
            cp.kubectl("label", "namespace", ns, f"meetscale.io/agency={ns}")
        cp.kubectl("apply", "-f", "-", input=yaml.safe_dump_all([_quota(own), _quota(other)]))
        cp.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(rbac))
        # The RBAC authorizer reads from an informer: wait until the binding is seen.
        deadline = time.monotonic() + 30
        while e.can_i("create", "meetings.meetscale.io", "-n", own) != "yes":
            assert time.monotonic() < deadline, "RoleBinding not effective within 30 s"
            time.sleep(0.3)
        yield e
    finally:
        cp.kubectl(
            "delete", "-f", "-", "--ignore-not-found", "--wait=false",
            input=yaml.safe_dump_all(mine), check=False,
        )  # fmt: skip
        for name in (own, other, f"{own}-extra"):
            cp.kubectl("delete", "agencyquota", name, "--ignore-not-found", "--wait=false")
        for ns in (own, other):
            cp.kubectl("delete", "namespace", ns, "--ignore-not-found", "--wait=false")
        cp.kubectl(
            "wait", "--for=delete", f"namespace/{own}", f"namespace/{other}",
            "--timeout=90s", check=False, timeout=120,
        )  # fmt: skip


# ------------------------------------------------------------------------ kubectl auth can-i

M = "meetings.meetscale.io"
Q = "agencyquotas.meetscale.io"
CAN_I = [
    # id, can-i arguments ($own/$other filled in), expected answer
    ("create-meetings-own-ns", f"create {M} -n $own", "yes"),
    ("get-meetings-own-ns", f"get {M} -n $own", "yes"),
    ("list-meetings-own-ns", f"list {M} -n $own", "yes"),
    ("watch-meetings-own-ns", f"watch {M} -n $own", "yes"),
    ("update-meetings-own-ns", f"update {M} -n $own", "yes"),
    ("patch-meetings-own-ns", f"patch {M} -n $own", "yes"),
    ("delete-meetings-own-ns", f"delete {M} -n $own", "yes"),
    ("read-events-own-ns", "list events -n $own", "yes"),
    ("create-meetings-other-ns", f"create {M} -n $other", "no"),
    ("get-meetings-other-ns", f"get {M} -n $other", "no"),
    ("patch-meetings-other-ns", f"patch {M} -n $other", "no"),
    ("delete-meetings-other-ns", f"delete {M} -n $other", "no"),
    ("list-meetings-all-namespaces", f"list {M} --all-namespaces", "no"),
    ("patch-meetings-status-own-ns", f"patch {M} --subresource=status -n $own", "no"),
    ("update-meetings-status-own-ns", f"update {M} --subresource=status -n $own", "no"),
    ("get-own-quota", f"get {Q}/$own", "yes"),
    ("get-other-quota", f"get {Q}/$other", "no"),
    ("list-quotas", f"list {Q}", "no"),
    ("watch-quotas", f"watch {Q}", "no"),
    ("create-quotas", f"create {Q}", "no"),
    ("patch-own-quota", f"patch {Q}/$own", "no"),
    ("update-own-quota", f"update {Q}/$own", "no"),
    ("delete-own-quota", f"delete {Q}/$own", "no"),
    ("patch-own-quota-status", f"patch {Q}/$own --subresource=status", "no"),
    ("create-bridgepools-own-ns", "create bridgepools.meetscale.io -n $own", "no"),
    ("create-rolebindings-own-ns", "create rolebindings -n $own", "no"),
    # join links: a Meeting's Secret is read by name; nothing else about Secrets
    ("get-secrets-own-ns", "get secrets -n $own", "yes"),
    ("get-secrets-other-ns", "get secrets -n $other", "no"),
    ("list-secrets-own-ns", "list secrets -n $own", "no"),
    ("create-secrets-own-ns", "create secrets -n $own", "no"),
    ("delete-secrets-own-ns", "delete secrets -n $own", "no"),
]


@pytest.mark.parametrize(("args", "expected"), [c[1:] for c in CAN_I], ids=[c[0] for c in CAN_I])
def test_can_i(env, args, expected):
    assert env.can_i(*env.fill(args).split()) == expected


# ------------------------------------------------------------------------ real attempts


@dataclass(frozen=True)
class Attempt:
    id: str
    argv: str  # kubectl arguments as alice ($own/$other filled in; split on spaces)
    allowed: bool
    target: tuple[str, str, str] | None  # (resource, "$own"/"$other"/"", name) read as admin
    effect: str  # created | changed | deleted | unchanged | absent | none
    stdin: dict | None = None  # manifest for `apply -f -` (a template: see _stdin)
    prepare: bool = False  # the admin creates the target Meeting first
    patch: dict | None = None  # body for `patch --type=merge -p`


TITLE = {"spec": {"title": "Đổi giờ họp"}}
STATUS = {"status": {"phase": "Admitted", "reservedParticipants": 20}}
LIMIT = {"spec": {"limits": {"maxConcurrentParticipants": 100000}}}
ATTEMPTS = [
    Attempt("create-meeting-own-ns", "apply -f -", True, ("meeting", "$own", "by-alice"),
            "created", stdin={"meeting": ("$own", "by-alice")}),
    Attempt("edit-meeting-own-ns", "patch meeting edit-me -n $own --type=merge", True,
            ("meeting", "$own", "edit-me"), "changed", prepare=True, patch=TITLE),
    Attempt("delete-meeting-own-ns", "delete meeting delete-me -n $own", True,
            ("meeting", "$own", "delete-me"), "deleted", prepare=True),
    Attempt("create-meeting-other-ns", "apply -f -", False, ("meeting", "$other", "sneaky"),
            "absent", stdin={"meeting": ("$other", "sneaky")}),
    Attempt("edit-meeting-other-ns", "patch meeting theirs -n $other --type=merge", False,
            ("meeting", "$other", "theirs"), "unchanged", prepare=True, patch=TITLE),
    Attempt("delete-meeting-other-ns", "delete meeting theirs-too -n $other", False,
            ("meeting", "$other", "theirs-too"), "unchanged", prepare=True),
    Attempt("list-meetings-other-ns", "get meetings -n $other", False, None, "none"),
    Attempt("list-meetings-all-namespaces", "get meetings --all-namespaces", False, None, "none"),
    Attempt("patch-meeting-status-own-ns",
            "patch meeting status-me -n $own --subresource=status --type=merge", False,
            ("meeting", "$own", "status-me"), "unchanged", prepare=True, patch=STATUS),
    Attempt("get-own-quota", "get agencyquota $own -o json", True, ("agencyquota", "", "$own"),
            "unchanged"),
    Attempt("get-other-quota", "get agencyquota $other", False, None, "none"),
    Attempt("list-quotas", "get agencyquotas", False, None, "none"),
    Attempt("create-quota", "apply -f -", False, ("agencyquota", "", "$own-extra"), "absent",
            stdin={"quota": "$own-extra"}),
    Attempt("raise-own-quota", "patch agencyquota $own --type=merge", False,
            ("agencyquota", "", "$own"), "unchanged", patch=LIMIT),
    Attempt("delete-own-quota", "delete agencyquota $own", False, ("agencyquota", "", "$own"),
            "unchanged"),
    Attempt("delete-other-quota", "delete agencyquota $other", False,
            ("agencyquota", "", "$other"), "unchanged"),
    Attempt("patch-own-quota-status", "patch agencyquota $own --subresource=status --type=merge",
            False, ("agencyquota", "", "$own"), "unchanged",
            patch={"status": {"participantsInUse": 0}}),
]  # fmt: skip


def _read(env: Env, target: tuple[str, str, str]) -> dict | None:
    resource, ns, name = target
    args = ["get", resource, env.fill(name), "-o", "json"]
    if ns:
        args += ["-n", env.fill(ns)]
    r = env.cp.kubectl(*args, check=False)
    if r.returncode:
        assert "NotFound" in r.stderr, r.stderr
        return None
    return json.loads(r.stdout)


def _stdin(env: Env, spec: dict | None) -> str | None:
    if spec is None:
        return None
    if "meeting" in spec:
        ns, name = spec["meeting"]
        return yaml.safe_dump(_meeting(env.fill(ns), name))
    return yaml.safe_dump(_quota(env.fill(spec["quota"])))


@pytest.mark.parametrize("attempt", ATTEMPTS, ids=[a.id for a in ATTEMPTS])
def test_real_attempt(env, attempt):
    if attempt.prepare:
        assert attempt.target is not None
        _, ns, name = attempt.target
        env.cp.kubectl("apply", "-f", "-", input=yaml.safe_dump(_meeting(env.fill(ns), name)))
    before = _read(env, attempt.target) if attempt.target else None
    argv = env.fill(attempt.argv).split()
    if attempt.patch is not None:
        argv += ["-p", json.dumps(attempt.patch)]
    r = env.as_alice(*argv, input=_stdin(env, attempt.stdin))
    if attempt.allowed:
        assert r.returncode == 0, r.stderr
    else:
        assert r.returncode != 0, f"alice was allowed: {r.stdout}"
        assert "forbidden" in r.stderr.lower(), r.stderr
        assert f'User "{USER}" cannot' in r.stderr, r.stderr
    after = _read(env, attempt.target) if attempt.target else None
    if attempt.effect == "created":
        assert before is None and after is not None
    elif attempt.effect == "changed":
        assert before is not None and after is not None
        assert after["spec"]["title"] == TITLE["spec"]["title"]
    elif attempt.effect == "deleted":
        assert before is not None and after is None
    elif attempt.effect == "unchanged":
        assert before is not None and after is not None
        assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
        if attempt.id == "get-own-quota":
            assert json.loads(r.stdout)["metadata"]["name"] == env.own
    elif attempt.effect == "absent":
        assert before is None and after is None
    else:
        assert attempt.effect == "none" and attempt.target is None


# ------------------------------------------------------------------------ the operator's Secrets

OPERATOR_SA = "system:serviceaccount:meetscale-system:rbac-test-meetscale"


def test_operator_writes_secrets_only_in_agency_namespaces(env):
    """The chart lets the operator's ServiceAccount write Secrets in agency namespaces (its
    join links) through per-namespace RoleBindings (to the ClusterRole of the scope
    agencyNamespaces of files/operator-rbac.yaml), and nowhere else."""
    cp = env.cp
    argv = [_helm(cp), "template", "rbac-test", str(ROOT / "charts/meetscale")]
    argv += ["--namespace", "meetscale-system"]
    argv += [
        "--set",
        f"agencies[0].name={env.own}",
        "--set",
        f"agencies[0].namespaces[0]={env.own}",
    ]
    argv += ["--set", f"agencies[0].groups[0]=agency:{env.own}"]
    rendered = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    wanted = {
        ("ClusterRole", "rbac-test-meetscale-operator-agency", None),
        ("RoleBinding", "rbac-test-meetscale-operator", env.own),
    }
    mine = [
        d
        for d in yaml.safe_load_all(rendered)
        if d and (d["kind"], d["metadata"]["name"], d["metadata"].get("namespace")) in wanted
    ]
    assert sorted(d["kind"] for d in mine) == ["ClusterRole", "RoleBinding"]
    cp.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(mine))
    try:

        def can(verb: str, ns: str) -> str:
            r = cp.kubectl(
                "auth", "can-i", verb, "secrets", "-n", ns, check=False, as_user=OPERATOR_SA
            )
            return r.stdout.strip()

        deadline = time.monotonic() + 30
        while can("create", env.own) != "yes":
            assert time.monotonic() < deadline, "RoleBinding not effective within 30 s"
            time.sleep(0.3)
        assert [can(v, env.own) for v in ("get", "create", "update", "delete")] == ["yes"] * 4
        assert can("list", env.own) == "no"
        assert [can(v, ns) for v in ("create", "get") for ns in (env.other, "kube-system")] == [
            "no"
        ] * 4
    finally:
        cp.kubectl("delete", "-f", "-", "--ignore-not-found", input=yaml.safe_dump_all(mine))
