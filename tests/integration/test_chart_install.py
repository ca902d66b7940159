"""The Helm chart on the test bed, as an ops team would install it: the CRD chart, then the
chart with two agencies (one namespace created by the chart, one existing before), then the
operator running with the chart's ServiceAccount token and environment; the webhook reached by
the apiserver through the chart's Service; admission, join-link and scaling scenarios; and at
the end the apiserver's audit log compared with every permission the chart grants. Both
profiles also pass a server-side dry run (with the Prometheus Operator's own CRDs installed).

One module-scoped release; the tests run in file order and the last one reads the audit log
that all of them produced."""

from __future__ import annotations

import base64
import json
import re
import secrets
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from testbed.bridges import BridgeHarness
from tests.chart import CHART, PROFILES
from tests.integration.chart_support import (
    Release,
    Replica,
    host_ip,
    install,
    install_crds,
    prometheus_operator_crds,
    secret_data,
    start_replica,
    uninstall,
)
from tests.integration.test_meeting_slice import meeting_doc
from tests.integration.test_pool_support import TEMPLATE, prom_sees, wait_for

pytestmark = pytest.mark.cluster
GROUP = "meetscale.io/v1alpha1"
NODE_PORTS = (31900, 31919)
QUOTA = {"maxConcurrentParticipants": 500, "maxConcurrentMeetings": 10,
         "maxMeetingParticipants": 300}  # fmt: skip


@dataclass
class Setup:
    release: Release
    kubeconfig: Path
    replica: Replica
    agencies: dict[str, str]  # agency name -> its namespace

    @property
    def cp(self) -> Any:
        return self.release.cp

    @property
    def ns(self) -> str:
        return self.release.namespace

    def as_staff(self, agency: str, *args: str, input: str | None = None):
        return self.cp.kubectl(
            *args, input=input, check=False, as_user="alice", as_groups=(f"agency:{agency}",)
        )

    def restart(self) -> Replica:
        self.replica.stop()
        self.replica = start_replica(self.release, self.release.pod_names()[0], self.kubeconfig)
        self.release.point_webhook_at(host_ip(), self.replica.webhook_port)
        return self.replica


@pytest.fixture(scope="module")
def setup(control_plane, tmp_path_factory) -> Iterator[Setup]:
    cp = control_plane
    install_crds(cp)
    tag = secrets.token_hex(3)
    agencies = {f"a-{tag}": f"t-ag-{tag}-a", f"b-{tag}": f"t-ag-{tag}-b"}
    (a, a_ns), (b, b_ns) = agencies.items()
    cp.kubectl("create", "namespace", b_ns)  # exists before the install, no label set on it
    values = {
        "agencies": [
            {"name": a, "displayName": "Sở Y tế", "namespaces": [a_ns], "createNamespaces": True,
             "groups": [f"agency:{a}"], "quota": {"limits": QUOTA, "maxPriorityClass": "high"}},
            {"name": b, "displayName": "Sở Giáo dục", "namespaces": [b_ns],
             "createNamespaces": False, "groups": [f"agency:{b}"], "quota": {"limits": QUOTA}},
        ]
    }  # fmt: skip
    release = install(cp, tmp_path_factory.mktemp("chart"), values, agency_namespaces=[a_ns, b_ns])
    replica = None
    try:
        kubeconfig = release.sa_kubeconfig()
        replica = start_replica(release, release.pod_names()[0], kubeconfig)
        release.point_webhook_at(host_ip(), replica.webhook_port)
        s = Setup(release, kubeconfig, replica, agencies)
        yield s
        replica = s.replica
    finally:
        if replica is not None:
            cp.kubectl("delete", "bridgepools", "--all", "-n", release.namespace,
                       "--wait=true", "--timeout=30s", check=False)  # fmt: skip
            replica.stop()
        uninstall(release)


def _pool(setup: Setup, prom_url: str, **spec: Any) -> dict[str, Any]:
    base = {
        "template": TEMPLATE, "participantsPerBridge": 100, "minBridges": 1, "maxBridges": 4,
        "targetStress": 0.7, "leadTimeSeconds": 60, "syncPeriodSeconds": 1,
        "protectionSeconds": 0, "drainTimeoutSeconds": 120,
        "behavior": {"scaleDown": {"stabilizationWindowSeconds": 3,
                                   "policies": [{"type": "Percent", "value": 100,
                                                 "periodSeconds": 1}]}},
        "prometheus": {"url": prom_url, "timeoutSeconds": 1},
        **spec,
    }  # fmt: skip
    return {"apiVersion": GROUP, "kind": "BridgePool",
            "metadata": {"name": "default", "namespace": setup.ns}, "spec": base}  # fmt: skip


def _meeting(setup: Setup, agency: str, name: str, participants: int) -> str:
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
    return yaml.safe_dump(meeting_doc(setup.agencies[agency], name, participants, start))


def _status(setup: Setup, namespace: str, name: str) -> dict[str, Any]:
    out = setup.cp.kubectl("get", "meeting", name, "-n", namespace, "-o", "json").stdout
    return dict(json.loads(out).get("status") or {})


def test_install_notes_and_objects(setup):
    r = setup.release
    assert f"Lease {r.namespace}/{r.name}-leader" in r.notes
    assert f"Service {r.namespace}/{r.name}-webhook" in r.notes
    assert "Sở Y tế" in r.notes and "WARNING" not in r.notes  # the CRDs were there first
    vwc = json.loads(
        setup.cp.kubectl(
            "get", "validatingwebhookconfiguration", f"{r.name}.meetscale.io", "-o", "json"
        ).stdout
    )
    for hook in vwc["webhooks"]:
        assert set(hook["clientConfig"]) == {"service", "caBundle"}, "service, not url"
    kopf_own = setup.cp.kubectl("get", "validatingwebhookconfiguration", "meetscale.io",
                                check=False)  # fmt: skip
    assert kopf_own.returncode != 0, "the operator registered a webhook of its own"
    created = next(iter(setup.agencies.values()))
    labels = json.loads(setup.cp.kubectl("get", "namespace", created, "-o", "json").stdout)
    assert labels["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"


def test_operator_fills_the_certificate_secret_and_the_ca_bundle(setup):
    r = setup.release
    data = secret_data(setup.cp, r.namespace, f"{r.name}-webhook-tls")
    assert set(data) == {"ca.crt", "ca.key", "tls.crt", "tls.key"}
    vwc = json.loads(
        setup.cp.kubectl(
            "get", "validatingwebhookconfiguration", f"{r.name}.meetscale.io", "-o", "json"
        ).stdout
    )
    assert {base64.b64decode(h["clientConfig"]["caBundle"]) for h in vwc["webhooks"]} == {
        data["ca.crt"]
    }


def test_agency_staff_book_and_the_webhook_refuses_through_the_service(setup, prometheus):
    cp, (a, b) = setup.cp, list(setup.agencies)
    cp.kubectl("apply", "-f", "-", input=yaml.safe_dump(_pool(setup, prometheus.url)))
    # The apiserver learns the EndpointSlice through an informer: retry for a few seconds.
    deadline = time.monotonic() + 30
    while True:
        r = setup.as_staff(a, "apply", "-f", "-", input=_meeting(setup, a, "qua-lon", 400))
        if r.returncode or time.monotonic() > deadline:
            break
        cp.kubectl("delete", "meeting", "qua-lon", "-n", setup.agencies[a])
        time.sleep(1)
    assert r.returncode != 0, "a 400-person meeting was accepted (maxMeetingParticipants 300)"
    assert "spec.participants" in r.stderr and "maxMeetingParticipants 300" in r.stderr, r.stderr
    for agency, name in ((a, "giao-ban"), (b, "hop-so")):
        r = setup.as_staff(agency, "apply", "-f", "-", input=_meeting(setup, agency, name, 120))
        assert r.returncode == 0, r.stderr
    for agency, name in ((a, "giao-ban"), (b, "hop-so")):
        ns = setup.agencies[agency]
        status = wait_for(
            lambda ns=ns, name=name: (
                (s := _status(setup, ns, name)).get("phase") == "Admitted" and s
            ),
            what=f"{name} admitted",
        )
        assert status["agency"] == agency  # b's namespace carries no label: selected by name


LINKS_POOL = "links"
APP_SECRET = b"an-app-secret-prosody-shares-32b"


def _secret(ns: str, name: str, data: dict[str, bytes]) -> dict[str, Any]:
    encoded = {k: base64.b64encode(v).decode() for k, v in data.items()}
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": ns},
            "data": encoded}  # fmt: skip


def _join_secret(setup: Setup, ns: str, name: str) -> dict[str, Any] | None:
    r = setup.cp.kubectl("get", "secret", f"{name}-join", "-n", ns, "-o", "json", check=False)
    return json.loads(r.stdout) if r.returncode == 0 else None


def _token_exp(doc: dict[str, Any]) -> int:
    token = base64.b64decode(doc["data"]["token"]).decode()
    payload = token.split(".")[1]
    return int(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["exp"])


def test_join_links_under_the_chart_account(setup, prometheus):
    """A pool with token settings (and the Secrets it names, in the pool namespace): an
    admitted Meeting gets its join-link Secret in its agency's namespace, which that agency's
    staff read and another agency's cannot; an edited window mints it again; a cancel
    removes it. No bridges: the pool has minBridges 0 and the meeting is hours away."""
    cp, ns, (a, b) = setup.cp, setup.ns, list(setup.agencies)
    lo, hi = NODE_PORTS
    jitsi = {
        "xmppServer": "jitsi-prosody.jitsi.svc",
        "authSecret": "jvb-account",
        "publicUrl": "https://hop.nghean.gov.vn",
        "jwt": {"appId": "meetscale-chart", "secret": {"name": "jitsi-jwt", "key": "secret"}},
    }
    pool = _pool(
        setup,
        prometheus.url,
        minBridges=0,
        maxBridges=1,
        jitsi=jitsi,
        perBridgeService={"enabled": True, "nodePortMin": lo, "nodePortMax": hi},
    )
    pool["metadata"]["name"] = LINKS_POOL
    docs = [_secret(ns, "jitsi-jwt", {"secret": APP_SECRET}),
            _secret(ns, "jvb-account", {"JVB_AUTH_USER": b"jvb", "JVB_AUTH_PASSWORD": b"pw"}),
            pool]  # fmt: skip
    cp.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(docs))
    a_ns = setup.agencies[a]
    meeting = yaml.safe_load(_meeting(setup, a, "lien-ket", 100))
    meeting["spec"]["pool"] = LINKS_POOL
    refusals: list[str] = []

    def booked() -> bool:  # the webhook knows the new pool once its index has seen it
        r = setup.as_staff(a, "apply", "-f", "-", input=yaml.safe_dump(meeting))
        refusals.append(r.stderr)
        return r.returncode == 0

    try:
        wait_for(booked, timeout=30, what="lien-ket booked")
    except AssertionError:
        raise AssertionError(refusals[-1]) from None
    doc = wait_for(lambda: _join_secret(setup, a_ns, "lien-ket"), what="the join-link Secret")
    url = base64.b64decode(doc["data"]["url"]).decode()
    assert url.startswith(f"https://hop.nghean.gov.vn/{a_ns}-lien-ket?jwt="), url

    def read_as(agency: str) -> Any:
        return setup.as_staff(agency, "get", "secret", "lien-ket-join", "-n", a_ns,
                              "-o", "jsonpath={.data.url}")  # fmt: skip

    mine = read_as(a)
    assert mine.returncode == 0 and base64.b64decode(mine.stdout).decode() == url, mine.stderr
    theirs = read_as(b)
    assert theirs.returncode != 0 and "forbidden" in theirs.stderr.lower(), theirs.stderr

    before, longer = _token_exp(doc), meeting["spec"]["durationMinutes"] + 30
    cp.kubectl("patch", "meeting", "lien-ket", "-n", a_ns, "--type=merge",
               "-p", json.dumps({"spec": {"durationMinutes": longer}}))  # fmt: skip
    wait_for(
        lambda: (d := _join_secret(setup, a_ns, "lien-ket")) and _token_exp(d) == before + 1800,
        what="the join link minted again for the longer window",
    )
    cp.kubectl("patch", "meeting", "lien-ket", "-n", a_ns, "--type=merge",
               "-p", json.dumps({"spec": {"cancelled": True}}))  # fmt: skip
    wait_for(lambda: _join_secret(setup, a_ns, "lien-ket") is None, what="the link removed")


def test_restart_reuses_the_certificate(setup):
    r = setup.release
    before = secret_data(setup.cp, r.namespace, f"{r.name}-webhook-tls")
    setup.restart()
    assert secret_data(setup.cp, r.namespace, f"{r.name}-webhook-tls") == before
    a = next(iter(setup.agencies))
    deadline = time.monotonic() + 30
    while True:  # the restarted replica answers the webhook with the same certificate
        out = setup.as_staff(a, "apply", "-f", "-", input=_meeting(setup, a, "qua-lon-2", 350))
        if out.returncode or time.monotonic() > deadline:
            break
        setup.cp.kubectl("delete", "meeting", "qua-lon-2", "-n", setup.agencies[a])
        time.sleep(1)
    assert "maxMeetingParticipants 300" in out.stderr, out.stderr


def test_pool_scales_up_and_drains_down_under_the_chart_account(setup, prometheus, tmp_path):
    cp, ns = setup.cp, setup.ns
    lo, hi = NODE_PORTS
    with BridgeHarness(
        cp.kubeconfig, ns, [prometheus.targets_file], log_dir=tmp_path / "bridges", capacity=100
    ) as bridges:
        pool = _pool(
            setup,
            prometheus.url,
            minBridges=2,
            perBridgeService={"enabled": True, "nodePortMin": lo, "nodePortMax": hi},
        )
        cp.kubectl("apply", "-f", "-", input=yaml.safe_dump(pool))  # fmt: skip

        def settled() -> dict[str, int] | None:
            # The bridge of the admission scenario had no port of its own: it is replaced.
            found = _services(cp, ns)
            return found if len(found) == 2 and set(bridges.bridges()) == set(found) else None

        services = wait_for(settled, timeout=150, what="2 bridges, each with its own Service")
        up = sorted(services)
        assert all(lo <= port <= hi for port in services.values())
        busy, idle = up
        bridges.set_conference(busy, "giao-ban", 50)
        bridges.set_conference(idle, "le-ky-niem", 5)
        wait_for(lambda: prom_sees(prometheus, ns, {busy: 50, idle: 5}), what="load scraped")
        cp.kubectl("patch", "bridgepool", "default", "-n", ns, "--type=merge",
                   "-p", '{"spec":{"minBridges":1}}')  # fmt: skip
        wait_for(lambda: _labels(cp, ns, idle).get("meetscale.io/draining") == "true",
                 timeout=30, what="the idle bridge draining")  # fmt: skip
        bridges.set_conference(idle, "le-ky-niem", 0)
        wait_for(lambda: set(bridges.bridges()) == {busy}, timeout=60, what="idle bridge gone")
        assert bridges.state(busy)["participants"] == 50
    status = json.loads(cp.kubectl("get", "bridgepool", "default", "-n", ns, "-o", "json")
                        .stdout)["status"]  # fmt: skip
    assert status["lastScaleDirection"] == "Down" and status["ready"] == 1


def _services(cp: Any, ns: str) -> dict[str, int]:
    out = cp.kubectl("get", "services", "-n", ns, "-l", "meetscale.io/bridge", "-o", "json")
    return {s["metadata"]["name"]: s["spec"]["ports"][0]["nodePort"]
            for s in json.loads(out.stdout)["items"]}  # fmt: skip


def _labels(cp: Any, ns: str, pod: str) -> dict[str, str]:
    out = cp.kubectl("get", "pod", pod, "-n", ns, "-o", "json", check=False)
    return (
        dict(json.loads(out.stdout)["metadata"].get("labels") or {}) if out.returncode == 0 else {}
    )


PROFILE_NAMESPACES = {
    "shared-cluster": ["meetscale-system", "jitsi", "ubnd-tinh", "so-y-te", "so-y-te-cdc",
                       "so-giao-duc"],
    "agency-self-hosted": ["so-y-te"],
}  # fmt: skip
PROFILE_RELEASE_NS = {"shared-cluster": "meetscale-system", "agency-self-hosted": "so-y-te"}


@pytest.mark.parametrize("profile", PROFILES, ids=[p.stem for p in PROFILES])
def test_profile_passes_a_server_side_dry_run(setup, profile):
    """Every object of the profile, as the apiserver would store it: schemas of the CRDs
    (ours and the Prometheus Operator's), RBAC, webhook and PDB validation."""
    cp = setup.cp
    for crd in prometheus_operator_crds():
        cp.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(crd), timeout=120)
    created = []
    for ns in PROFILE_NAMESPACES[profile.stem]:
        if cp.kubectl("get", "namespace", ns, check=False).returncode != 0:
            cp.kubectl("create", "namespace", ns)
            created.append(ns)
    try:
        release_ns = PROFILE_RELEASE_NS[profile.stem]
        rendered = subprocess.run(
            [str(Path(cp.bin_dir) / "helm"), "template", "meetscale", str(CHART),
             "-n", release_ns, "-f", str(profile)],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        docs = [d for d in yaml.safe_load_all(rendered) if d]
        for doc in docs:  # as helm install does: namespaced objects go to the release namespace
            if doc["kind"] not in CLUSTER_SCOPED:
                doc["metadata"].setdefault("namespace", release_ns)
        r = cp.kubectl("apply", "--dry-run=server", "-f", "-", input=yaml.safe_dump_all(docs),
                       check=False, timeout=120)  # fmt: skip
        assert r.returncode == 0, r.stderr
        kinds = {line.split("/")[0] for line in r.stdout.splitlines() if "/" in line}
        assert "agencyquota.meetscale.io" in kinds, r.stdout
        assert len(r.stdout.splitlines()) == len(docs), r.stdout
        if profile.stem == "shared-cluster":
            assert {"servicemonitor.monitoring.coreos.com", "podmonitor.monitoring.coreos.com",
                    "prometheusrule.monitoring.coreos.com"} <= kinds, r.stdout  # fmt: skip
    finally:
        for ns in created:
            cp.kubectl("delete", "namespace", ns, "--wait=true", "--timeout=90s", check=False,
                       timeout=120)  # fmt: skip


CLUSTER_SCOPED = {
    "Namespace", "ClusterRole", "ClusterRoleBinding", "ValidatingWebhookConfiguration",
    "AgencyQuota", "CustomResourceDefinition",
}  # fmt: skip


# ---------------------------------------------------------------------- least privilege

VERBS = ("get", "list", "watch", "create", "update", "patch", "delete")


def _granted(setup: Setup) -> list[dict[str, Any]]:
    """The rules of files/operator-rbac.yaml with their scope's namespaces (None: any)."""
    name = setup.release.name
    helpers = {"webhookConfiguration": f"{name}.meetscale.io", "lease": f"{name}-leader",
               "webhookSecret": f"{name}-webhook-tls"}  # fmt: skip
    text = (CHART / "files/operator-rbac.yaml").read_text()
    text = re.sub(r'\{\{ include "meetscale\.(\w+)" \. \}\}', lambda m: helpers[m[1]], text)
    source = yaml.safe_load(text)
    where = {"cluster": None, "poolNamespace": [setup.ns], "releaseNamespace": [setup.ns],
             "agencyNamespaces": list(setup.agencies.values())}  # fmt: skip
    out = []
    for scope, rules in source.items():
        for rule in rules:
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    for verb in rule["verbs"]:
                        out.append({"scope": scope, "group": group, "resource": resource,
                                    "verb": verb, "namespaces": where[scope],
                                    "names": rule.get("resourceNames"),
                                    "reserved": rule.get("reserved")})  # fmt: skip
    return out


def _used(setup: Setup) -> list[dict[str, Any]]:
    """What the chart's ServiceAccount did, from the apiserver's audit log."""
    log = Path(setup.cp.kubeconfig).parent / "audit.log"
    assert log.exists(), f"no audit log at {log}: the test bed's apiserver audits requests"
    used = []
    for line in log.read_text().splitlines():
        event = json.loads(line)
        ref = event.get("objectRef")
        if event["user"]["username"] != setup.release.sa_user or not ref:
            continue
        resource = ref["resource"] + (f"/{ref['subresource']}" if ref.get("subresource") else "")
        used.append({"group": ref.get("apiGroup", ""), "resource": resource,
                     "verb": event["verb"], "namespace": ref.get("namespace"),
                     "name": ref.get("name"),
                     "code": event.get("responseStatus", {}).get("code")})  # fmt: skip
    return used


def test_every_granted_permission_is_used_and_nothing_else_is_asked(setup):
    """Runs last: the scenarios above are what the operator did with the chart's account."""
    used, granted = _used(setup), _granted(setup)
    assert used, "no request of the chart's ServiceAccount in the audit log"
    forbidden = sorted({(u["verb"], u["group"], u["resource"], u["namespace"])
                        for u in used if u["code"] == 403})  # fmt: skip
    assert not forbidden, f"the operator was refused (missing permissions): {forbidden}"

    def covers(g: dict[str, Any], u: dict[str, Any]) -> bool:
        return (
            (g["group"], g["resource"], g["verb"]) == (u["group"], u["resource"], u["verb"])
            and (g["namespaces"] is None or u["namespace"] in g["namespaces"])
            and (g["names"] is None or u["name"] in g["names"])
        )

    # A request is owed to the narrowest rule that allows it: one naming the object
    # (resourceNames) if there is one, else every rule that allows it.
    used_rules: list[dict[str, Any]] = []
    for u in used:
        rules = [g for g in granted if covers(g, u)]
        named = [g for g in rules if g["names"]]
        used_rules += named or rules
    unused = [g for g in granted if not any(g is r for r in used_rules)]
    never = sorted(f"{g['scope']}: {g['verb']} {g['group'] or 'core'}/{g['resource']}"
                   for g in unused if not g["reserved"])  # fmt: skip
    reserved_used = sorted(f"{g['scope']}: {g['verb']} {g['group'] or 'core'}/{g['resource']}"
                           for g in granted if g["reserved"] and g not in unused)  # fmt: skip
    assert not never, "granted but never used (drop from files/operator-rbac.yaml):\n" + "\n".join(
        never
    )
    assert not reserved_used, "used, yet marked reserved (drop the mark):\n" + "\n".join(
        reserved_used
    )
